"""End to end over loopback, like ``hikari-shard bench``: a gateway process streams, a shard consumes.

The gateway (:mod:`hikari_shard.bench.server`) runs in its own process with ``--hold``: each new
connection gets READY, then its stream is encoded and compressed and held.  A round connects a fresh
shard (not timed), then the timed part writes ``go`` to the gateway and waits until the counting
event manager has seen every dispatch: inflate, decode, route, consume, with the socket in between.

hikari's stock shard, ours compiled and ours pure run in this process; the pure twin is switched in
by swapping :mod:`hikari_shard._fast`'s modules (``conftest.hot_paths``), which the shard reads when
it connects.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import subprocess
import sys
import threading
import typing

import hikari
import orjson
import pytest
from hikari.impl import config

from bench_helpers import hot_paths, load
from hikari_shard import _install
from hikari_shard import shard as our_shard
from hikari_shard.bench import client, recording
from hikari_shard.bench import server as bench_server
from hikari_shard.testing import corpus, emulator

if typing.TYPE_CHECKING:
    import pathlib

    from pytest_benchmark.fixture import BenchmarkFixture

EVENTS = 2_000
ROUNDS = 5
TIMEOUT = 60.0


class Gateway(typing.NamedTuple):
    url: str
    token: str
    process: subprocess.Popen[bytes]
    dispatches: int
    reports: queue.Queue[dict[str, typing.Any]]

    def wait_held(self) -> None:
        """Wait until the gateway has prepared (encoded, compressed) the stream of the new connection."""
        while self.reports.get(timeout=TIMEOUT).get("event") != "held":
            pass

    def go(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(b"go\n")
        self.process.stdin.flush()


def _pump(pipe: typing.IO[bytes], reports: queue.Queue[dict[str, typing.Any]]) -> None:
    for line in pipe:
        with contextlib.suppress(orjson.JSONDecodeError):
            reports.put(orjson.loads(line))


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> typing.Iterator[Gateway]:
    generated = corpus.build_corpus(seed=0, dispatches=EVENTS)
    mark = next(data for name, data in generated.dispatches if name == "MESSAGE_CREATE")
    # No GUILD_CREATE first: everything after READY is timed.
    stream = [("MESSAGE_CREATE", mark), *generated.dispatches, ("MESSAGE_CREATE", mark)]
    path: pathlib.Path = tmp_path_factory.mktemp("e2e") / "stream.jsonl"
    recording.write_stream(path, stream)
    token = emulator.make_bot_token(corpus.DEFAULT_USER_ID)
    env = dict(os.environ, **{bench_server.TOKEN_ENV: token})
    process = subprocess.Popen(
        [sys.executable, "-m", "hikari_shard.bench.server", "--stream", str(path), "--hold", "--max-seconds", "900"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=env,
    )
    assert process.stdout is not None
    url = process.stdout.readline().decode().strip()
    process.stdout.readline()  # the REST URL
    assert url.startswith("ws://127.0.0.1:"), url
    reports: queue.Queue[dict[str, typing.Any]] = queue.Queue()
    threading.Thread(target=_pump, args=(process.stdout, reports), daemon=True).start()
    try:
        yield Gateway(url, token, process, len(stream), reports)
    finally:
        assert process.stdin is not None
        with contextlib.suppress(OSError):
            process.stdin.write(b"quit\n")
            process.stdin.close()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def _shard_class(implementation: str) -> typing.Any:
    return _install.ORIGINAL if implementation == "hikari" else our_shard.GatewayShardImpl


@pytest.mark.parametrize("compression", ["zlib-stream", "zstd-stream"])
@pytest.mark.parametrize("implementation", ["hikari", "compiled", "pure"])
def test_end_to_end(benchmark: BenchmarkFixture, gateway: Gateway, implementation: str, compression: str) -> None:
    benchmark.group = f"end to end over loopback, {compression} ({gateway.dispatches:,} dispatches per round)"
    benchmark.extra_info["implementation"] = implementation
    if implementation != "hikari":
        load(implementation)  # skips when the compiled extensions are not built
    loop = asyncio.new_event_loop()
    state: dict[str, typing.Any] = {}
    rates: list[float] = []

    def close() -> None:
        shard = state.pop("shard", None)
        if shard is not None:
            loop.run_until_complete(asyncio.wait_for(shard.close(), TIMEOUT))

    def setup() -> tuple[tuple[object, ...], dict[str, object]]:
        close()
        window = client.Window(start=2, end=gateway.dispatches + 1)  # READY is counted first
        shard = _shard_class(implementation)(
            compression=client.COMPRESSIONS[compression],
            event_manager=client.CountingEventManager(window),
            event_factory=client.NoEvents(),
            intents=hikari.Intents.ALL,
            http_settings=config.HTTPSettings(),
            proxy_settings=config.ProxySettings(),
            token=gateway.token,
            url=gateway.url,
        )
        loop.run_until_complete(asyncio.wait_for(shard.start(), TIMEOUT))
        state["shard"] = shard
        gateway.wait_held()
        return (window,), {}

    def stream(window: client.Window) -> None:
        gateway.go()
        loop.run_until_complete(asyncio.wait_for(window.done.wait(), TIMEOUT))
        assert window.count == gateway.dispatches + 1
        rates.append((gateway.dispatches - 1) / (window.wall_end - window.wall_start))

    context = hot_paths(implementation) if implementation != "hikari" else contextlib.nullcontext()
    try:
        with context:
            benchmark.pedantic(stream, setup=setup, rounds=ROUNDS, warmup_rounds=1, iterations=1)
            close()
    finally:
        loop.close()
    benchmark.extra_info["events_per_s_median"] = sorted(rates)[len(rates) // 2]
