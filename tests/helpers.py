"""Shared test helpers: a recording event manager, a shard factory for either implementation, leak checks."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib
import importlib.util
import itertools
import os
import sys
import time
import types
import typing

import hikari
import pytest
from hikari.impl import config

from hikari_shard import _install
from hikari_shard.shard import GatewayShardImpl
from hikari_shard.testing import GatewayEmulator, make_bot_token

TOKEN: typing.Final = make_bot_token()
TIMEOUT: typing.Final = 5.0
OURS: typing.Final = GatewayShardImpl
STOCK: typing.Final = _install.ORIGINAL


def require_engine(module: str, package: str) -> None:
    """Skip unless ``module`` (a multi-process engine) is installed; fail instead under CI.

    ``find_spec``, not ``importorskip``: hikari-clusters 1.2.0 raises TypeError when imported with hikari 2.7
    (our integration module imports it with a fix), so it must not be imported here.
    """
    if importlib.util.find_spec(module) is not None:
        return
    if os.environ.get("HIKARI_SHARD_REQUIRE_ENGINES") == "1" or os.environ.get("CI") == "true":
        pytest.fail(f"{package} is not installed; HIKARI_SHARD_REQUIRE_ENGINES=1 or CI=true makes it required")
    pytest.skip(f"{package} is not installed (`pip install {package}`, or the `test` extra)")


class Recorder:
    """A minimal event manager: records every raw dispatch and every dispatched event."""

    def __init__(self) -> None:
        self.raw: list[tuple[str, typing.Any]] = []
        self.events: list[object] = []

    def consume_raw_event(self, name: str, shard: object, data: typing.Any) -> None:
        self.raw.append((name, data))

    def dispatch(self, event: object, *, return_tasks: bool = False) -> asyncio.Future[typing.Any]:
        self.events.append(event)
        future = asyncio.get_running_loop().create_future()
        future.set_result([])
        return future

    def names(self) -> list[str]:
        return [name for name, _ in self.raw]

    def data_of(self, name: str) -> list[typing.Any]:
        return [data for n, data in self.raw if n == name]

    def count(self, name: str) -> int:
        return len(self.data_of(name))

    def ids(self, name: str = "MESSAGE_CREATE") -> list[int]:
        """The ``k`` tag of every consumed ``name`` dispatch, in order."""
        return [data["k"] for data in self.data_of(name)]


class EventFactory:
    """Stands in for hikari's event factory for the two events a shard itself creates."""

    def deserialize_connected_event(self, shard: object) -> str:
        return "connected"

    def deserialize_disconnected_event(self, shard: object) -> str:
        return "disconnected"


def make_shard(
    emulator: GatewayEmulator | typing.Any,
    *,
    cls: type[typing.Any] = OURS,
    manager: object | None = None,
    token: str = TOKEN,
    url: str | None = None,
    **kwargs: typing.Any,
) -> typing.Any:
    """A shard of ``cls`` for ``emulator`` (anything with a ``url``: the emulator, or a test's own peer)."""
    return cls(
        intents=kwargs.pop("intents", hikari.Intents.ALL_UNPRIVILEGED),
        http_settings=kwargs.pop("http_settings", None) or config.HTTPSettings(),
        proxy_settings=kwargs.pop("proxy_settings", None) or config.ProxySettings(),
        event_manager=manager if manager is not None else Recorder(),
        event_factory=EventFactory(),
        token=token,
        url=url if url is not None else emulator.url,
        **kwargs,
    )


@contextlib.asynccontextmanager
async def running(shard: typing.Any) -> typing.AsyncIterator[typing.Any]:
    await asyncio.wait_for(shard.start(), TIMEOUT)
    try:
        yield shard
    finally:
        if shard.is_alive:
            await asyncio.wait_for(shard.close(), TIMEOUT)


async def until(predicate: typing.Callable[[], object], *, timeout: float = TIMEOUT, what: str = "condition") -> None:  # noqa: ASYNC109
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            msg = f"timed out waiting for {what}"
            raise AssertionError(msg)
        await asyncio.sleep(0.01)


# -- leak checks -----------------------------------------------------------------------------------


async def fill_command_limit(shard: typing.Any) -> tuple[int, asyncio.Future[None]]:
    """Send presence updates until one has to wait on the rate limit.

    Returns how many went out at once, and the command still waiting (not awaited).
    """
    sent = 0
    while True:
        sending = asyncio.ensure_future(shard.update_presence(status=hikari.Status.IDLE))
        for _ in range(3):
            await asyncio.sleep(0)
        if not sending.done():
            return sent, sending
        sending.result()
        sent += 1
        assert sent <= 120, "the rate limit never kicked in"


def _task_file(task: asyncio.Task[typing.Any]) -> str:
    code = getattr(task.get_coro(), "cr_code", None)
    return code.co_filename if code is not None else ""


def client_tasks(*, server_files: typing.Sequence[str] = ()) -> list[asyncio.Task[typing.Any]]:
    """Running tasks that are not the caller nor a server's (the emulator's, aiohttp's, or in ``server_files``)."""
    current = asyncio.current_task()
    servers = ("web_protocol.py", "emulator.py", *server_files)
    return [
        task
        for task in asyncio.all_tasks()
        if task is not current and not task.done() and not _task_file(task).endswith(servers)
    ]


async def assert_no_client_tasks(when: str, *, server_files: typing.Sequence[str] = ()) -> None:
    """No client task may outlive close(): cancelled ones get two loop iterations to finish, no more."""
    for _ in range(2):
        await asyncio.sleep(0)
    left = client_tasks(server_files=server_files)
    assert not left, f"tasks still running {when}: {[task.get_coro() for task in left]}"


def open_fds() -> dict[int, str]:
    fds = {}
    for name in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            fds[int(name)] = os.readlink(f"/proc/self/fd/{name}")
    return fds


@contextlib.asynccontextmanager
async def no_leaks() -> typing.AsyncIterator[None]:
    """Everything started inside (shards, servers) must be gone afterwards: tasks and fds."""
    before = open_fds()
    yield
    current = asyncio.current_task()
    deadline = time.monotonic() + 3.0
    for attempt in itertools.count():
        if attempt == 10:
            gc.collect()  # slow with a big heap: only when something seems left behind
        tasks = [task for task in asyncio.all_tasks() if task is not current and not task.done()]
        after = open_fds()
        if not tasks and len(after) <= len(before):
            return
        if time.monotonic() > deadline:
            new = {fd: target for fd, target in after.items() if before.get(fd) != target}
            pytest.fail(f"left behind: tasks {[task.get_coro() for task in tasks]}, fds {new}")
        await asyncio.sleep(0.02)


def load_c_api_module(name: str, *, verified: bool = True) -> types.ModuleType:
    """A compiled module that calls a C library found at run time (``zlibng``, ``libzstd``).

    It fails (never skips) when the extensions are required on Linux, where the ``zlib_ng`` and
    zstd wheels are known to export the C API (checked on their lowest and newest versions);
    elsewhere (macOS unverified, Windows never), or when not ``verified`` for the library at hand,
    a module that does not import skips the test.
    """
    try:
        return importlib.import_module(f"hikari_shard._fastpath.{name}")
    except ImportError as ex:
        required = os.environ.get("HIKARI_SHARD_REQUIRE_EXTENSIONS", "") not in {"", "0"}
        if required and verified and sys.platform.startswith("linux"):
            pytest.fail(f"hikari_shard._fastpath.{name} does not import: {ex}")
        pytest.skip(f"hikari_shard._fastpath.{name} does not import: {ex}")


DAMAGE_MESSAGES: typing.Final[list[bytes]] = [
    b'{"op":0,"t":"A","d":{"k":"first"}}',
    b'{"op":0,"t":"B","d":{"k":"second one"}}',
] * 2
"""Four messages for :func:`outcomes_after_damage`: compress them as one stream, a frame each."""


def outcomes_after_damage(
    draw: typing.Callable[[typing.Any], int],
    frames: list[bytes],
    decompressors: typing.Iterable[typing.Any],
    error: type[Exception],
) -> list[object]:
    """Each decompressor's answer to ``frames[2]`` with 1-4 bytes flipped, after ``frames[:2]``.

    ``draw`` is hypothesis's ``data.draw``; the answer is the output, or ``"error"`` for ``error``.
    """
    from hypothesis import strategies as st

    damaged = bytearray(frames[2])
    for _ in range(draw(st.integers(1, 4))):
        damaged[draw(st.integers(0, len(damaged) - 1))] ^= draw(st.integers(1, 255))
    outcomes: list[object] = []
    for decompressor in decompressors:
        for frame in frames[:2]:
            decompressor.decompress(frame)
        try:
            outcomes.append(decompressor.decompress(bytes(damaged)))
        except error:
            outcomes.append("error")
    return outcomes
