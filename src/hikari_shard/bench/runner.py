"""Orchestrate a benchmark: build the stream, start the gateway and the clients, run the rounds.

Every process is local: the gateway (:mod:`hikari_shard.bench.server`) in one process, and one
worker (:mod:`hikari_shard.bench.worker`) per client: hikari's stock shard, ours with the compiled
hot paths, ours with the pure twins (``HIKARI_SHARD_NO_EXTENSIONS=1``).  Runs go one at a time,
so a client only shares the machine with the gateway, and the clients take turns within every
round (in a rotating order) so that they share the machine's noise.
"""

from __future__ import annotations

__all__ = ("Options", "Stream", "build_stream", "run_bench")

import collections
import contextlib
import dataclasses
import os
import pathlib
import queue
import subprocess
import sys
import tempfile
import threading
import time
import typing

import orjson

from hikari_shard.bench import client as client_module
from hikari_shard.bench import recording
from hikari_shard.bench import server as server_module

if typing.TYPE_CHECKING:
    from collections.abc import Callable, Sequence

_START_TIMEOUT: typing.Final = 120.0
_SENTINEL_SEED: typing.Final = 1
_PACKAGE_ROOT: typing.Final = str(pathlib.Path(__file__).resolve().parents[2])
"""The directory that holds the ``hikari_shard`` package, put on the children's ``PYTHONPATH``."""


@dataclasses.dataclass(frozen=True, slots=True)
class Options:
    """What to run (the command line's options)."""

    scenarios: tuple[str, ...]
    compressions: tuple[str, ...]
    events: int | None
    """Dispatches in the stream (``None``: all of a replay, or the default)."""
    rounds: int
    seed: int
    replay: str | None = None
    smoke: bool = False
    clients: tuple[str, ...] = client_module.CLIENTS

    def combos(self) -> list[tuple[str, str]]:
        """Return the ``(scenario, compression)`` pairs to run, in report order.

        Every scenario with every compression; with ``smoke``, one compression per scenario,
        taken in turn, so that every scenario and every compression still runs once.
        """
        if not self.smoke:
            return [(scenario, compression) for scenario in self.scenarios for compression in self.compressions]
        count = max(len(self.scenarios), len(self.compressions))
        return [
            (self.scenarios[i % len(self.scenarios)], self.compressions[i % len(self.compressions)])
            for i in range(count)
        ]


@dataclasses.dataclass(frozen=True, slots=True)
class Stream:
    """The dispatches every client receives after READY, already encoded.

    ``events[window_start]`` and ``events[-1]`` are the MESSAGE_CREATE marks; every dispatch before the
    first mark is a GUILD_CREATE (setup, not timed).
    """

    events: list[tuple[str, bytes]]
    window_start: int
    source: str

    @property
    def window_events(self) -> int:
        """Dispatches in the timed window: every one after the start mark, the end mark included."""
        return len(self.events) - 1 - self.window_start

    def window_json_bytes(self) -> int:
        """Bytes of JSON the client inflates and reads in the timed window (whole payloads, as sent)."""
        return sum(
            len(recording.envelope(name, seq, data))
            for seq, (name, data) in enumerate(self.events[self.window_start + 1 :], self.window_start + 3)
        )

    def count(self, name: str) -> int:
        """Return how many dispatches are called ``name``."""
        return sum(1 for event, _ in self.events if event == name)

    def run_spec(
        self, *, client: str, scenario: str, compression: str, url: str, rest_url: str, timeout: float | None = None
    ) -> client_module.RunSpec:
        """Return the run of ``client`` receiving this stream from the gateway at ``url``.

        ``timeout`` defaults to what the stream's length calls for.
        """
        return client_module.RunSpec(
            client=client,
            scenario=scenario,
            compression=compression,
            url=url,
            rest_url=rest_url,
            dispatches=len(self.events),
            window_start=self.window_start,
            messages=self.count("MESSAGE_CREATE"),
            interactions=self.count("INTERACTION_CREATE"),
            timeout=_timeout(self) if timeout is None else timeout,
        )

    def mix(self) -> dict[str, int]:
        """Return dispatches per event name in the window, most frequent first."""
        counter = collections.Counter(name for name, _ in self.events[self.window_start + 1 :])
        return dict(counter.most_common())


def _sentinel(body: Sequence[tuple[str, typing.Any]], seed: int) -> typing.Any:
    for name, data in body:
        if name == "MESSAGE_CREATE":
            return data
    from hikari_shard.testing import corpus  # noqa: PLC0415

    extra = corpus.build_corpus(seed=seed, dispatches=200, guilds=1, guild_members=20)
    return next(data for name, data in extra.dispatches if name == "MESSAGE_CREATE")


def build_stream(options: Options, *, default_events: int) -> Stream:
    """Build the stream: a generated corpus (``--seed``) or a recording (``--replay``), with the two marks.

    Parameters
    ----------
    options
        The run's options.
    default_events
        Dispatches to generate when ``options.events`` is ``None``.

    Returns
    -------
    Stream
        The encoded stream.

    Raises
    ------
    hikari_shard.bench.recording.RecordingError
        If the recording cannot be used (a token in it, a wrong format, no dispatches).
    """
    if options.replay is not None:
        dispatches = recording.read_recording(options.replay)
        if options.events is not None:
            dispatches = dispatches[: options.events]
        lead = 0
        while lead < len(dispatches) and dispatches[lead][0] == "GUILD_CREATE":
            lead += 1
        leading, body = dispatches[:lead], dispatches[lead:]
        if not body:
            msg = f"{options.replay}: no dispatch to replay after the GUILD_CREATEs"
            raise recording.RecordingError(msg)
        source = f"replay of {pathlib.Path(options.replay).name}"
    else:
        from hikari_shard.testing import corpus  # noqa: PLC0415

        count = options.events if options.events is not None else default_events
        generated = corpus.build_corpus(seed=options.seed, dispatches=count)
        leading = [("GUILD_CREATE", guild) for guild in generated.guild_creates]
        body = generated.dispatches
        source = f"corpus (seed {options.seed})"
    mark = orjson.dumps(_sentinel(body, options.seed))
    events = [(name, orjson.dumps(data)) for name, data in leading]
    events.append(("MESSAGE_CREATE", mark))
    events.extend((name, orjson.dumps(data)) for name, data in body)
    events.append(("MESSAGE_CREATE", mark))
    return Stream(events=events, window_start=len(leading), source=source)


class _Lines:
    """Lines of a child's stdout, read by a thread so waiting for one can time out (on every OS)."""

    __slots__ = ("_queue", "_thread")

    def __init__(self, pipe: typing.IO[bytes]) -> None:
        self._queue: queue.Queue[bytes | None] = queue.Queue()
        self._thread = threading.Thread(target=self._pump, args=(pipe,), daemon=True)
        self._thread.start()

    def _pump(self, pipe: typing.IO[bytes]) -> None:
        with contextlib.suppress(OSError, ValueError):
            for line in pipe:
                self._queue.put(line)
        self._queue.put(None)

    def get(self, timeout: float) -> bytes | None:
        """Return the next line, or ``None`` at the end of the output or after ``timeout``."""
        try:
            return self._queue.get(timeout=max(timeout, 0.0))
        except queue.Empty:
            return None

    def drain(self) -> list[bytes]:
        """Return every line already read."""
        lines: list[bytes] = []
        while True:
            try:
                line = self._queue.get_nowait()
            except queue.Empty:
                return lines
            if line is not None:
                lines.append(line)


class _Child:
    """A child process we started, spoken to with lines of JSON; stopped by its own pid only."""

    __slots__ = ("_log", "lines", "log_path", "process")

    def __init__(self, argv: list[str], *, env: dict[str, str], log_path: pathlib.Path) -> None:
        self.log_path = log_path
        self._log = log_path.open("wb")
        self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log, env=env
        )
        assert self.process.stdout is not None
        self.lines = _Lines(self.process.stdout)

    def send(self, line: bytes) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line + b"\n")
        self.process.stdin.flush()

    def close(self, *, command: bytes | None = None) -> None:
        process = self.process
        with contextlib.suppress(OSError, ValueError):
            if command is not None and process.poll() is None:
                self.send(command)
            assert process.stdin is not None
            process.stdin.close()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
        self._log.close()

    def log_tail(self, secret: str, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.replace(secret, "<token>").splitlines()[-lines:]) if secret else text


def _child_env(token: str, **overrides: str | None) -> dict[str, str]:
    env = dict(os.environ)
    env[server_module.TOKEN_ENV] = token
    path = env.get("PYTHONPATH")
    env["PYTHONPATH"] = _PACKAGE_ROOT + (os.pathsep + path if path else "")
    for key, value in overrides.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


_CLIENT_ENV: typing.Final[dict[str, dict[str, str | None]]] = {
    "hikari": {"HIKARI_SHARD_NO_EXTENSIONS": None},
    "compiled": {"HIKARI_SHARD_NO_EXTENSIONS": None, "HIKARI_SHARD_REQUIRE_EXTENSIONS": "1"},
    "pure": {"HIKARI_SHARD_NO_EXTENSIONS": "1", "HIKARI_SHARD_REQUIRE_EXTENSIONS": None},
}


def _process_cpu(pid: int) -> float | None:
    """CPU seconds (user + system) a process of ours has used so far, from ``/proc`` (Linux), else ``None``."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as file:
            fields = file.read().rsplit(b")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, AttributeError):
        return None


def _timeout(stream: Stream) -> float:
    return 60.0 + 0.005 * len(stream.events)


def _measure(result: dict[str, typing.Any], stream: Stream, json_bytes: int) -> dict[str, typing.Any]:
    wall = result.get("wall_s")
    cpu = result.get("cpu_s")
    events = stream.window_events
    measured: dict[str, typing.Any] = {
        "ok": False,
        "error": result.get("error") or "not every dispatch was delivered",
        "window_events": events,
        "events_per_s": None,
        "mb_per_s": None,
        "cpu_us_per_dispatch": None,
        "cpu_busy": None,
        "peak_rss_mib": result["peak_rss_bytes"] / 1048576 if result.get("peak_rss_bytes") else None,
    }
    if result.get("delivered") and isinstance(wall, float) and isinstance(cpu, float) and wall > 0:
        measured.update(
            ok=True,
            error=None,
            events_per_s=events / wall,
            mb_per_s=json_bytes / wall / 1e6,
            cpu_us_per_dispatch=cpu / events * 1e6,
            cpu_busy=cpu / wall,
        )
    measured.update(result)
    return measured


def run_bench(
    options: Options,
    *,
    default_events: int,
    progress: Callable[[str, int, int], None],
) -> dict[str, typing.Any]:
    """Run the benchmark and return every measurement (the ``--json`` document, minus the environment).

    Parameters
    ----------
    options
        What to run.
    default_events
        Dispatches to generate when ``options.events`` is ``None``.
    progress
        Called as ``progress(label, done, total)`` before each step.

    Returns
    -------
    dict
        ``stream``, ``runs`` (one per run), ``server`` (one per stream sent), ``skipped_clients``,
        ``logs`` (tails of the logs of failed processes).

    Raises
    ------
    hikari_shard.bench.recording.RecordingError
        If ``--replay`` was given a recording that cannot be used.
    RuntimeError
        If the gateway process does not start.
    """
    from hikari_shard.testing import corpus, emulator  # noqa: PLC0415

    combos = options.combos()
    total = len(combos) * options.rounds * len(options.clients)
    progress("building the stream", 0, total)
    stream = build_stream(options, default_events=default_events)
    json_bytes = stream.window_json_bytes()
    token = emulator.make_bot_token(corpus.DEFAULT_USER_ID)  # throwaway, never printed
    document: dict[str, typing.Any] = {
        "stream": {
            "source": stream.source,
            "dispatches": len(stream.events),
            "setup_dispatches": stream.window_start,
            "window_events": stream.window_events,
            "window_json_bytes": json_bytes,
            "mean_dispatch_bytes": json_bytes / stream.window_events,
            "mix": stream.mix(),
        },
        "runs": [],
        "server": [],
        "skipped_clients": {},
        "logs": {},
    }
    with tempfile.TemporaryDirectory(prefix="hikari-shard-bench-") as tmp:
        directory = pathlib.Path(tmp)
        stream_path = directory / "stream.jsonl"
        recording.write_stream(stream_path, stream.events)
        progress("starting the gateway and the clients", 0, total)
        gateway = _Child(
            [sys.executable, "-m", "hikari_shard.bench.server", "--stream", str(stream_path)],
            env=_child_env(token),
            log_path=directory / "server.log",
        )
        workers: dict[str, _Child] = {}
        try:
            url_line = gateway.lines.get(_START_TIMEOUT)
            rest_line = gateway.lines.get(_START_TIMEOUT)
            if not url_line or not rest_line:
                msg = f"the gateway process did not start:\n{gateway.log_tail(token)}"
                raise RuntimeError(msg)
            url, rest_url = url_line.decode().strip(), rest_line.decode().strip()
            for name in options.clients:
                workers[name] = _Child(
                    [sys.executable, "-m", "hikari_shard.bench.worker"],
                    env=_child_env(token, **_CLIENT_ENV[name]),
                    log_path=directory / f"worker-{name}.log",
                )
            clients: list[str] = []
            for name, worker in workers.items():
                hello = worker.lines.get(_START_TIMEOUT)
                hot_paths = orjson.loads(hello).get("hot_paths") if hello else None
                wanted = None if name == "hikari" else name  # hikari's shard runs with either
                if hot_paths is None or (wanted is not None and hot_paths != wanted):
                    why = f"runs the {hot_paths} hot paths" if hot_paths else "did not start"
                    document["skipped_clients"][name] = f"the {name} client {why}: {worker.log_tail(token, 5)}"
                    continue
                clients.append(name)

            total = len(combos) * options.rounds * len(clients)
            done = 0
            for round_index in range(options.rounds):
                for combo_index, (scenario, compression) in enumerate(combos):
                    shift = (round_index + combo_index) % max(len(clients), 1)
                    for name in clients[shift:] + clients[:shift]:
                        progress(f"{scenario} {compression} {name} (round {round_index + 1})", done, total)
                        spec = stream.run_spec(
                            client=name, scenario=scenario, compression=compression, url=url, rest_url=rest_url
                        )
                        began = time.perf_counter()
                        gateway_cpu = _process_cpu(gateway.process.pid)
                        result = _run_one(workers[name], spec, token)
                        result["run_s"] = time.perf_counter() - began  # the whole run: fork, connect, stream, close
                        gateway_after = _process_cpu(gateway.process.pid)
                        if gateway_cpu is not None and gateway_after is not None:
                            result["gateway_cpu_s"] = gateway_after - gateway_cpu  # the whole run, prepare included
                        run = {"round": round_index + 1, "scenario": scenario, "compression": compression}
                        run["client"] = name
                        run.update(_measure(result, stream, json_bytes))
                        document["runs"].append(run)
                        if not run["ok"]:
                            document["logs"][f"worker-{name}"] = workers[name].log_tail(token)
                        done += 1
            progress("done", done, total)
        finally:
            for worker in workers.values():
                worker.close()
            gateway.close(command=b"quit")
            for line in gateway.lines.drain():
                with contextlib.suppress(orjson.JSONDecodeError):
                    if line.startswith(b"{"):
                        entry = orjson.loads(line)
                        if entry.get("event") == "sent":
                            document["server"].append(entry)
    return document


def _run_one(worker: _Child, spec: client_module.RunSpec, token: str) -> dict[str, typing.Any]:
    if worker.process.poll() is not None:
        return {"delivered": False, "error": f"the worker process exited: {worker.log_tail(token, 5)}"}
    worker.send(orjson.dumps(dataclasses.asdict(spec)))
    line = worker.lines.get(spec.timeout + 60.0)
    if not line:
        worker.process.kill()  # a late answer must not be taken for the next run's
        return {"delivered": False, "error": f"no answer from the worker process: {worker.log_tail(token, 5)}"}
    try:
        result: dict[str, typing.Any] = orjson.loads(line)
    except orjson.JSONDecodeError:
        return {"delivered": False, "error": "the worker process answered something else than JSON"}
    return result
