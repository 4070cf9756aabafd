"""One measured run: a client connects to the benchmark's gateway and consumes the whole stream.

The client is hikari's stock shard or ours, whichever the process imports (ours uses the compiled
or the pure hot paths as :mod:`hikari_shard._fast` chose at import time), in one of three
scenarios:

``full``
    A bare shard (built directly, like the tests do) whose event manager is :class:`CountingEventManager`,
    a minimal stand-in whose ``consume_raw_event`` only counts.  Every dispatch is decoded: the
    cost of the gateway path alone (inflate, JSON, routing).
``bot``
    A real ``hikari.GatewayBot`` with its default cache and one ``MessageCreateEvent`` listener.  hikari
    builds the shard itself; the benchmark only swaps the class hikari looks up
    (``hikari.impl.shard.GatewayShardImpl``, what :func:`hikari_shard.install` replaces) for a subclass that
    forces the compression under test.
``selective``
    The same bot without a cache (``CacheComponents.NONE``) and with listeners on ``MessageCreateEvent``
    and ``InteractionCreateEvent`` only: hikari's real ``EventManagerImpl`` ignores everything else, so our
    shard skips decoding it.

The stream starts with a MESSAGE_CREATE (the start mark) and ends with one (the end mark); the
window timed is from the first to the last, with ``time.perf_counter`` (wall) and
``time.process_time`` (this process's CPU).
"""

from __future__ import annotations

__all__ = ("CLIENTS", "COMPRESSIONS", "SCENARIOS", "CountingEventManager", "NoEvents", "RunSpec", "Window", "run")

import asyncio
import contextlib
import dataclasses
import logging
import os
import time
import typing

import hikari
from hikari.api import shard as shard_api
from hikari.impl import config
from hikari.impl import shard as hikari_shard_module

from hikari_shard import _fast, _install
from hikari_shard import shard as our_shard
from hikari_shard.bench import server as bench_server

if typing.TYPE_CHECKING:
    from collections.abc import Mapping

SCENARIOS: typing.Final = ("full", "bot", "selective")
"""Every scenario, in the order the report lists them."""
COMPRESSIONS: typing.Final[Mapping[str, shard_api.GatewayCompression | None]] = {
    "zlib-stream": shard_api.GatewayCompression.TRANSPORT_ZLIB_STREAM,
    "zstd-stream": shard_api.GatewayCompression.TRANSPORT_ZSTD_STREAM,
    "none": None,
}
"""The ``--compression`` names and the shard's ``compression=`` for each."""
CLIENTS: typing.Final = ("hikari", "compiled", "pure")
"""hikari's stock shard, ours with the compiled hot paths, ours with the pure-Python twins."""

_START_TIMEOUT: typing.Final = 30.0
_CLOSE_TIMEOUT: typing.Final = 15.0


@dataclasses.dataclass(frozen=True, slots=True)
class RunSpec:
    """What one run does (sent as JSON to the worker process that runs it)."""

    client: str
    """``"hikari"``, ``"compiled"`` or ``"pure"`` (the last two must match the process's hot paths)."""
    scenario: str
    """One of :data:`SCENARIOS`."""
    compression: str
    """One of :data:`COMPRESSIONS`."""
    url: str
    """The gateway URL."""
    rest_url: str
    """The REST URL (``GET /gateway/bot`` for the bot scenarios)."""
    dispatches: int
    """Dispatches the server streams after READY."""
    window_start: int
    """Index in the stream of the start mark (every dispatch before it is a GUILD_CREATE)."""
    messages: int
    """MESSAGE_CREATE dispatches in the stream, both marks included; the last one is the end mark."""
    interactions: int
    """INTERACTION_CREATE dispatches in the stream."""
    timeout: float
    """Seconds the stream may take once the client is connected."""


def _machine_cpu() -> tuple[float, float] | None:
    """Return (busy, total) jiffies of every CPU of the machine (Linux), to tell other load from waiting."""
    try:
        with open("/proc/stat", "rb") as file:
            fields = [float(value) for value in file.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0.0)  # idle + iowait
    total = sum(fields[:8])  # guest time is already counted in user
    return total - idle, total


def _preempted() -> int:
    """Return how often this process was preempted (involuntary context switches), or 0 where unknown."""
    try:
        import resource  # noqa: PLC0415 - not on Windows
    except ImportError:
        return 0
    return resource.getrusage(resource.RUSAGE_SELF).ru_nivcsw


class Window:
    """Counts events; reads the clocks at the ``start``-th and the ``end``-th."""

    __slots__ = (
        "count",
        "cpu_end",
        "cpu_start",
        "done",
        "end",
        "machine_end",
        "machine_start",
        "next_mark",
        "preempted_end",
        "preempted_start",
        "start",
        "wall_end",
        "wall_start",
    )

    def __init__(self, start: int, end: int) -> None:
        self.count = 0
        self.start = start
        self.end = end
        self.next_mark = start
        self.wall_start = self.wall_end = 0.0
        self.cpu_start = self.cpu_end = 0.0
        self.machine_start: tuple[float, float] | None = None
        self.machine_end: tuple[float, float] | None = None
        self.preempted_start = self.preempted_end = 0
        self.done = asyncio.Event()

    def machine_busy(self) -> float | None:
        """Share of the whole machine's CPU time that was busy (anything, any process) in the window."""
        if self.machine_start is None or self.machine_end is None:
            return None
        total = self.machine_end[1] - self.machine_start[1]
        return (self.machine_end[0] - self.machine_start[0]) / total if total > 0 else None

    def hit(self) -> None:
        self.count = count = self.count + 1
        if count == self.next_mark:
            self._mark(count)

    def _mark(self, count: int) -> None:
        if count == self.start:
            self.machine_start = _machine_cpu()
            self.preempted_start = _preempted()
            self.wall_start = time.perf_counter()
            self.cpu_start = time.process_time()
            self.next_mark = self.end
        if count == self.end:
            self.cpu_end = time.process_time()
            self.wall_end = time.perf_counter()
            self.preempted_end = _preempted()
            self.machine_end = _machine_cpu()
            self.next_mark = -1
            self.done.set()


class CountingEventManager:
    """The least an event manager can be: ``consume_raw_event`` counts, ``dispatch`` does nothing.

    It is not hikari's, so our shard decodes every dispatch for it, like hikari's does.
    """

    __slots__ = ("_window",)

    def __init__(self, window: Window) -> None:
        self._window = window

    def consume_raw_event(self, name: str, shard: object, payload: object) -> None:
        self._window.hit()

    async def dispatch(self, event: object, *, return_tasks: bool = False) -> list[object]:
        return []


class NoEvents:
    """The event factory of a bare shard: it only asks for the (dis)connected events."""

    __slots__ = ()

    def deserialize_connected_event(self, shard: object) -> None:
        return None

    def deserialize_disconnected_event(self, shard: object) -> None:
        return None


def _shard_class(client: str) -> typing.Any:
    if client == "hikari":
        return _install.ORIGINAL  # hikari's own class, even if install() was called
    if client != _fast.IMPLEMENTATION:
        msg = f"this process runs the {_fast.IMPLEMENTATION} hot paths, the run asked for {client}"
        raise RuntimeError(msg)
    return our_shard.GatewayShardImpl


def _with_compression(base: typing.Any, compression: shard_api.GatewayCompression | None) -> typing.Any:
    def __init__(self: typing.Any, **kwargs: typing.Any) -> None:
        kwargs["compression"] = compression
        base.__init__(self, **kwargs)

    return type(base.__name__, (base,), {"__slots__": (), "__init__": __init__, "__module__": __name__})


def _result(spec: RunSpec, window: Window, shard: object, **extra: typing.Any) -> dict[str, typing.Any]:
    router = getattr(shard, "_router", None)
    skipped = getattr(router, "skipped", None)
    complete = window.next_mark == -1
    result: dict[str, typing.Any] = {
        "complete": complete,
        "counted": window.count,
        "final_seq": getattr(shard, "_seq", None),
        "expected_seq": spec.dispatches + 1,
        "wall_s": window.wall_end - window.wall_start if complete else None,
        "cpu_s": window.cpu_end - window.cpu_start if complete else None,
        "machine_busy": window.machine_busy() if complete else None,
        "preempted": window.preempted_end - window.preempted_start if complete else None,
        "skipped_decodes": skipped if isinstance(skipped, int) else None,
        "shard_class": f"{type(shard).__mro__[1].__module__}.{type(shard).__mro__[1].__qualname__}"
        if type(shard).__module__ == __name__
        else f"{type(shard).__module__}.{type(shard).__qualname__}",
    }
    result.update(extra)
    return result


async def _run_full(spec: RunSpec, token: str) -> dict[str, typing.Any]:
    # The counting manager sees READY first, then every streamed dispatch.
    window = Window(start=spec.window_start + 2, end=spec.dispatches + 1)
    shard = _shard_class(spec.client)(
        compression=COMPRESSIONS[spec.compression],
        event_manager=CountingEventManager(window),
        event_factory=NoEvents(),
        intents=hikari.Intents.ALL,
        http_settings=config.HTTPSettings(),
        proxy_settings=config.ProxySettings(),
        token=token,
        url=spec.url,
    )
    await asyncio.wait_for(shard.start(), _START_TIMEOUT)
    try:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(window.done.wait(), spec.timeout)
        delivered = window.count == spec.dispatches + 1
        return _result(spec, window, shard, delivered=delivered and getattr(shard, "_seq", None) == spec.dispatches + 1)
    finally:
        await asyncio.wait_for(shard.close(), _CLOSE_TIMEOUT)


async def _run_bot(spec: RunSpec, token: str) -> dict[str, typing.Any]:
    # hikari's GatewayBot builds its shards with hikari.impl.shard.GatewayShardImpl (what install() replaces).
    original = hikari_shard_module.GatewayShardImpl
    hikari_shard_module.GatewayShardImpl = _with_compression(  # type: ignore[misc]
        _shard_class(spec.client), COMPRESSIONS[spec.compression]
    )
    try:
        return await _run_bot_with_shard_class(spec, token)
    finally:
        hikari_shard_module.GatewayShardImpl = original  # type: ignore[misc]


async def _run_bot_with_shard_class(spec: RunSpec, token: str) -> dict[str, typing.Any]:
    selective = spec.scenario == "selective"
    cache_settings = config.CacheSettings(components=hikari.api.CacheComponents.NONE) if selective else None
    bot = hikari.GatewayBot(
        token,
        rest_url=spec.rest_url,
        banner=None,
        logs=None,
        suppress_optimization_warning=True,
        intents=hikari.Intents.ALL,
        cache_settings=cache_settings,
    )
    window = Window(start=1, end=spec.messages)
    interactions = [0]

    async def on_message(_: hikari.MessageCreateEvent) -> None:
        window.hit()

    async def on_interaction(_: hikari.InteractionCreateEvent) -> None:
        interactions[0] += 1

    bot.subscribe(hikari.MessageCreateEvent, on_message)
    if selective:
        bot.subscribe(hikari.InteractionCreateEvent, on_interaction)
    await asyncio.wait_for(bot.start(check_for_updates=False), _START_TIMEOUT)
    shard = bot.shards[0]
    try:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(window.done.wait(), spec.timeout)
        await asyncio.sleep(0)  # listener tasks created before the end mark's have all run by now
        delivered = window.count == spec.messages and getattr(shard, "_seq", None) == spec.dispatches + 1
        if selective:
            delivered = delivered and interactions[0] == spec.interactions
        return _result(spec, window, shard, delivered=delivered, interactions=interactions[0] if selective else None)
    finally:
        await asyncio.wait_for(bot.close(), _CLOSE_TIMEOUT)


async def run(spec: RunSpec) -> dict[str, typing.Any]:
    """Run ``spec`` in this process and measure it.

    Parameters
    ----------
    spec
        The run.

    Returns
    -------
    dict
        ``delivered`` (every dispatch arrived and was counted), ``complete`` (both marks seen),
        ``wall_s`` and ``cpu_s`` over the window, ``final_seq``, ``skipped_decodes`` (ours), and
        ``error`` if the run failed.
    """
    token = os.environ.get(bench_server.TOKEN_ENV, "")
    if not token:
        return {"delivered": False, "error": f"${bench_server.TOKEN_ENV} is not set"}
    logging.getLogger("hikari").setLevel(logging.WARNING)
    logging.getLogger("hikari_shard").setLevel(logging.WARNING)
    try:
        if spec.scenario == "full":
            return await _run_full(spec, token)
        if spec.scenario in {"bot", "selective"}:
            return await _run_bot(spec, token)
        return {"delivered": False, "error": f"unknown scenario {spec.scenario!r}"}
    except Exception as ex:
        return {"delivered": False, "error": f"{type(ex).__name__}: {ex}"[:500]}
