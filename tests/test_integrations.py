"""hikari-shard under the multi-process shard managers: hikari-orchestrator and hikari-clusters.

Each test runs an engine for real, on loopback, with the gateway emulator standing in for Discord:
the engine's server and two worker processes, two shards, ``max_concurrency`` 1.  A user would notice
a failure as: workers that silently run hikari's own shard (``install()`` not reaching the worker
processes), shards that never connect or never deliver events, or IDENTIFYs closer than the 5 s
Discord allows per concurrency bucket.

- hikari-orchestrator: ``run_server`` (TLS on ``localhost``) and two ``hikari_orchestrator.Bot`` workers in
  fresh (spawned) interpreters, each calling ``hikari_shard.integrations.orchestrator.setup``.
- hikari-clusters: a brain and a server in one process; the server starts one single-shard cluster
  process per shard through ``hikari_shard.integrations.clusters.ClusterLauncher``.

The worker processes report what they see on stdout, one JSON object per line: the class of the shard
that delivered each ``ShardReadyEvent`` and ``DMTypingEvent`` (a worker-side check: the emulator cannot
tell the shards apart).  This file is also that harness: the tests start
``python tests/test_integrations.py {orchestrator,clusters} ...`` in a new process group and kill the
whole group when they end.

Both engines are test dependencies (the ``test`` extra pins the versions CI runs). Without one, its
tests skip and name it, except under ``HIKARI_SHARD_REQUIRE_ENGINES=1`` (``.ci/run`` sets it), where they fail.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import pathlib
import pickle
import signal
import socket
import sys
import time
import typing

import hikari
import pytest

import engine_harness as harness
from helpers import require_engine

if typing.TYPE_CHECKING:
    from hikari_shard.testing.emulator import GatewayEmulator

HARNESS: typing.Final = pathlib.Path(__file__).resolve()
SHARD_COUNT: typing.Final = 2
PROCESSES: typing.Final = 2
STARTUP_TIMEOUT: typing.Final = 40.0
EVENT_TIMEOUT: typing.Final = 10.0
IDENTIFY_INTERVAL: typing.Final = 5.0
OUR_MODULE: typing.Final = "hikari_shard.shard"
INTENTS: typing.Final = hikari.Intents.ALL_UNPRIVILEGED
IPC_TOKEN: typing.Final = "hikari-shard-test"

posix_only = pytest.mark.skipif(sys.platform == "win32", reason="the harness runs in a POSIX process group")


# -- worker side: runs in the engines' worker processes ------------------------------------------------


def _wait_for_port(host: str, port: int, *, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=1.0):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def _orchestrator_worker(host: str, port: int, token: str, ca_cert: bytes) -> None:
    """One worker process, as a user starts it on each machine: a ``hikari_orchestrator.Bot``."""
    import hikari_orchestrator

    from hikari_shard.integrations import orchestrator

    _wait_for_port(host, port, timeout=STARTUP_TIMEOUT)
    bot = hikari_orchestrator.Bot(f"{host}:{port}", token, ca_cert=ca_cert, local_shard_count=1)
    orchestrator.setup(bot)
    harness.report_events(bot)
    bot.run()


def _run_orchestrator(rest_url: str, token: str, shard_count: int, processes: int) -> None:
    import multiprocessing

    import hikari_orchestrator
    from hikari_orchestrator import _ssl

    # The orchestrator server asks "Discord" for GET /gateway/bot at hikari's default REST URL.
    hikari.urls.REST_API_URL = rest_url
    # TLS with the orchestrator's own self-signed certificate for "localhost": its workers authenticate with
    # call credentials, which gRPC only sends over a secure channel.
    ca_cert, private_key = _ssl.gen_ca()
    host, port = "localhost", harness.free_port()
    # Fresh interpreters (spawn): install() in this process would not reach them.
    context = multiprocessing.get_context("spawn")
    for _ in range(processes):
        context.Process(target=_orchestrator_worker, args=(host, port, token, ca_cert), daemon=True).start()
    hikari_orchestrator.run_server(
        token, f"{host}:{port}", intents=INTENTS, ca_cert=ca_cert, private_key=private_key, shard_count=shard_count
    )


def _run_clusters(rest_url: str, token: str, shard_count: int, port: int) -> None:
    # Brain and Server come from our module: hikari-clusters 1.2.0 cannot be imported with hikari 2.7 first.
    from hikari_shard.integrations.clusters import Brain, ClusterLauncher, Server

    launcher = ClusterLauncher(
        harness.ReportingBot,
        bot_init_kwargs={
            "token": token,
            "rest_url": rest_url,
            "intents": INTENTS,
            "banner": None,
            "logs": "WARNING",
            "suppress_optimization_warning": True,
        },
        bot_start_kwargs={"check_for_updates": False},
    )

    async def main() -> None:
        # One server running one single-shard cluster per shard: a process per shard.
        brain = Brain("127.0.0.1", port, IPC_TOKEN, 1, shard_count, 1)
        server = Server("127.0.0.1", port, IPC_TOKEN, launcher)
        await brain.start()
        await server.start()
        await brain.join()

    asyncio.run(main())


def _harness_main(argv: list[str]) -> None:
    engine, rest_url, token, shard_count, extra = argv
    if engine == "orchestrator":
        _run_orchestrator(rest_url, token, int(shard_count), int(extra))
    elif engine == "clusters":
        _run_clusters(rest_url, token, int(shard_count), int(extra))
    else:
        msg = f"unknown engine {engine!r}"
        raise SystemExit(msg)


# -- test side -----------------------------------------------------------------------------------------


class _Harness:
    """The harness process (and everything it starts, in its process group) and what it reports."""

    def __init__(self, proc: asyncio.subprocess.Process, log: pathlib.Path) -> None:
        self._proc = proc
        self._log = log
        self.records: list[dict[str, typing.Any]] = []

    def diagnostics(self) -> str:
        tail = self._log.read_text(errors="replace")[-4_000:] if self._log.exists() else ""
        return f"harness reported {self.records}\n--- harness stderr (tail) ---\n{tail}"

    async def collect(self, kind: str, count: int, *, timeout: float) -> list[dict[str, typing.Any]]:  # noqa: ASYNC109
        """Read reports until ``count`` of ``kind`` arrived; fail after ``timeout`` seconds."""
        assert self._proc.stdout is not None
        deadline = time.monotonic() + timeout
        while len(found := [record for record in self.records if record["kind"] == kind]) < count:
            remaining = deadline - time.monotonic()
            try:
                line = await asyncio.wait_for(self._proc.stdout.readline(), max(remaining, 0.0))
            except TimeoutError:
                pytest.fail(f"only {len(found)} of {count} {kind!r} reports after {timeout}s\n{self.diagnostics()}")
            if not line:
                pytest.fail(f"the harness exited ({self._proc.returncode}) early\n{self.diagnostics()}")
            with contextlib.suppress(ValueError):
                record = json.loads(line)
                if isinstance(record, dict) and "kind" in record:
                    self.records.append(record)
        return found

    async def stop(self) -> None:
        """Kill the harness and every process it started (they share its process group)."""
        for sig in (signal.SIGTERM, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._proc.pid, sig)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._proc.wait(), 3.0)


@contextlib.asynccontextmanager
async def _harness(tmp_path: pathlib.Path, *args: object) -> typing.AsyncIterator[_Harness]:
    log = tmp_path / "harness.log"
    with log.open("wb") as stderr:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            str(HARNESS),
            *map(str, args),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=stderr,
            start_new_session=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    harness = _Harness(proc, log)
    try:
        yield harness
    finally:
        await harness.stop()


async def _check_cluster_of_our_shards(harness: _Harness, emulator: GatewayEmulator) -> None:
    """Every shard started in a worker process through our class, receives events, and identified in turn."""
    ready = await harness.collect("ready", SHARD_COUNT, timeout=STARTUP_TIMEOUT)
    diagnostics = harness.diagnostics()
    assert sorted(record["shard"] for record in ready) == list(range(SHARD_COUNT)), diagnostics
    assert {record["module"] for record in ready} == {OUR_MODULE}, diagnostics
    assert len({record["pid"] for record in ready}) == PROCESSES, diagnostics
    assert os.getpid() not in {record["pid"] for record in ready}

    # Discord's side: one session per shard, identified with the right shard pair, nothing else.
    identified = [
        payload["d"]["shard"]
        for connection in emulator.connections
        for payload in connection.received
        if payload["op"] == 2
    ]
    assert sorted(identified) == [[shard_id, SHARD_COUNT] for shard_id in range(SHARD_COUNT)]
    assert len(emulator.connections) == SHARD_COUNT, emulator.connections
    times = sorted(emulator.identify_times)
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    assert all(gap >= IDENTIFY_INTERVAL for gap in gaps), f"IDENTIFYs {gaps} s apart with max_concurrency 1"

    # Events reach the bot through the shard that owns the session.
    for shard_id in range(SHARD_COUNT):
        await emulator.dispatch(
            "TYPING_START",
            {"channel_id": str(900 + shard_id), "user_id": str(1_000 + shard_id), "timestamp": int(time.time())},
            shard_id=shard_id,
        )
    typing_reports = await harness.collect("typing", SHARD_COUNT, timeout=EVENT_TIMEOUT)
    assert sorted((record["shard"], record["user"]) for record in typing_reports) == [
        (shard_id, 1_000 + shard_id) for shard_id in range(SHARD_COUNT)
    ], harness.diagnostics()
    assert {record["module"] for record in typing_reports} == {OUR_MODULE}
    by_shard = {record["shard"]: record["pid"] for record in ready}
    assert all(by_shard[record["shard"]] == record["pid"] for record in typing_reports)


@pytest.fixture
async def emulator() -> typing.AsyncIterator[GatewayEmulator]:
    from hikari_shard.testing.emulator import GatewayEmulator, make_bot_token

    async with GatewayEmulator(token=make_bot_token(), shard_count=SHARD_COUNT, max_concurrency=1) as emulator:
        yield emulator


@posix_only
async def test_orchestrator_workers_run_our_shards(emulator: GatewayEmulator, tmp_path: pathlib.Path) -> None:
    require_engine("hikari_orchestrator", "hikari-orchestrator")
    async with _harness(tmp_path, "orchestrator", emulator.rest_url, emulator.token, SHARD_COUNT, PROCESSES) as h:
        await _check_cluster_of_our_shards(h, emulator)


@posix_only
async def test_clusters_run_our_shards(emulator: GatewayEmulator, tmp_path: pathlib.Path) -> None:
    require_engine("hikari_clusters", "hikari-clusters")
    async with _harness(tmp_path, "clusters", emulator.rest_url, emulator.token, SHARD_COUNT, harness.free_port()) as h:
        await _check_cluster_of_our_shards(h, emulator)


_callback_bots: list[object] = []


def _record_callback(bot: object) -> None:
    _callback_bots.append(bot)


async def test_orchestrator_bot_works_with_hikari_2_7() -> None:
    require_engine("hikari_orchestrator", "hikari-orchestrator")
    import hikari_orchestrator
    from hikari_orchestrator import _client

    import hikari_shard
    from hikari_shard.integrations import orchestrator
    from hikari_shard.testing.emulator import make_bot_token

    # hikari 2.7's GatewayBotAware and GatewayShard gained abstract members hikari-orchestrator 0.2.1 lacks.
    bot = hikari_orchestrator.Bot("localhost:1", make_bot_token(), intents=INTENTS, global_shard_count=2)
    remote = _client._RemoteShard(bot._manager, 1, INTENTS, 2)
    assert remote.capabilities is hikari.GatewayCapabilities.NONE
    bot._shards[1] = remote
    with pytest.raises(NotImplementedError, match="another process"):
        await bot.request_channel_info(1 << 22, fields=())  # a guild of shard 1

    # The callback travels to the worker processes pickled; it installs our shard, then runs the user's.
    callback = pickle.loads(pickle.dumps(orchestrator.wrap(_record_callback)))
    try:
        callback(bot)
        callback(bot)
        assert hikari_shard.installed()
        assert _callback_bots == [bot, bot]
        # One READY reporter however often setup runs, and Bot.start's `await dispatch(...)` works on hikari 2.7.
        assert len(bot.event_manager.get_listeners(hikari.ShardReadyEvent)) == 1
        await bot.event_manager.dispatch(bot.event_factory.deserialize_starting_event())
    finally:
        hikari_shard.uninstall()
        _callback_bots.clear()


def test_cluster_launcher_pickles() -> None:
    # hikari-clusters pickles the launcher into each cluster process when it does not fork (spawn, forkserver).
    require_engine("hikari_clusters", "hikari-clusters")
    from hikari_shard.integrations import clusters

    launcher = clusters.ClusterLauncher(
        harness.ReportingBot,
        bot_init_kwargs={"token": "t"},
        bot_start_kwargs={"a": 1},
        sessions=pathlib.Path("s.sqlite3"),
    )
    copy = pickle.loads(pickle.dumps(launcher))
    assert type(copy) is clusters.ClusterLauncher
    assert (copy.bot_class, copy.bot_init_kwargs, copy.bot_start_kwargs) == (
        harness.ReportingBot,
        {"token": "t"},
        {"a": 1},
    )
    assert (copy.sessions, copy.max_session_age) == ("s.sqlite3", None)
    assert copy.cluster_class is clusters.Cluster


if __name__ == "__main__":
    _harness_main(sys.argv[1:])
