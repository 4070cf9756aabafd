"""Each hot path on the same 2,000-dispatch stream: ours compiled, ours pure, and hikari's equivalent.

Every benchmark call processes the whole stream (``conftest.DISPATCHES`` messages), so the times of a
group compare directly.  hikari's side is the code its shard runs for the same job: stdlib
``zlib.decompressobj`` / ``ZstdDecompressor`` for inflating, ``orjson.loads`` plus the poll loop's dict
lookups for routing, aiohttp's websocket reader for framing, and two ``WindowedBurstRateLimiter`` for
sending.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import typing
import zlib

import orjson
import pytest
from hikari.impl import rate_limits

from bench_helpers import DISPATCHES, SUFFIX, load, zstd_module
from hikari_shard.testing.hot_paths import make_router

if typing.TYPE_CHECKING:
    from pytest_benchmark.fixture import BenchmarkFixture

IMPLEMENTATIONS = ("hikari", "compiled", "pure")
WANTED = frozenset(("MESSAGE_CREATE", "INTERACTION_CREATE"))
_LOGGER = logging.getLogger("hikari_shard.benchmarks")


def _label(benchmark: BenchmarkFixture, group: str, implementation: str) -> None:
    benchmark.group = f"{group} ({DISPATCHES:,} dispatches per call)"
    benchmark.extra_info["implementation"] = implementation
    benchmark.extra_info["dispatches"] = DISPATCHES


# -- inflate ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_inflate_zlib_stream(benchmark: BenchmarkFixture, implementation: str, zlib_frames: list[bytes]) -> None:
    _label(benchmark, "inflate zlib-stream", implementation)
    if implementation == "hikari":

        def run() -> int:
            # hikari's _GatewayZlibStreamTransport: stdlib zlib, one decompressobj per connection.
            decompress = zlib.decompressobj().decompress
            size = 0
            for frame in zlib_frames:
                if frame.endswith(SUFFIX):
                    size += len(decompress(frame))
            return size

    else:
        inflator_class = load(implementation).inflate.ZlibStreamInflator

        def run() -> int:
            feed = inflator_class().feed
            size = 0
            for frame in zlib_frames:
                size += len(feed(frame))
            return size

    assert benchmark(run) > DISPATCHES * 100


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_inflate_zstd_stream(benchmark: BenchmarkFixture, implementation: str, zstd_frames: list[bytes]) -> None:
    _label(benchmark, "inflate zstd-stream", implementation)
    if implementation == "hikari":
        assert zstd_module is not None

        def run() -> int:
            # hikari's _GatewayZstdStreamTransport: one ZstdDecompressor per connection.
            decompress = zstd_module.ZstdDecompressor().decompress
            return sum(len(decompress(frame)) for frame in zstd_frames)

    else:
        inflator_class = load(implementation).inflate.ZstdStreamInflator

        def run() -> int:
            feed = inflator_class().feed
            return sum(len(feed(frame)) for frame in zstd_frames)

    assert benchmark(run) > DISPATCHES * 100


# -- scan: op, s and t of a payload ------------------------------------------------------------------


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_scan(benchmark: BenchmarkFixture, implementation: str, payloads: list[bytes]) -> None:
    _label(benchmark, "scan op/s/t", implementation)
    if implementation == "hikari":
        loads = orjson.loads

        def run() -> int:
            # hikari learns op, t and s by decoding the whole payload.
            count = 0
            for raw in payloads:
                payload = loads(raw)
                if payload["op"] == 0 and payload["t"] and payload["s"]:
                    count += 1
            return count

    else:
        scan = load(implementation).scan.scan

        def run() -> int:
            count = 0
            for raw in payloads:
                header = scan(raw)
                if header is not None and header[0] == 0 and header[2] and header[1]:
                    count += 1
            return count

    assert benchmark(run) == DISPATCHES


# -- router: a connection's messages to consume_raw_event ---------------------------------------------


class _Counter:
    __slots__ = ("count",)

    def __init__(self) -> None:
        self.count = 0

    def consume(self, name: str, shard: object, data: object) -> None:
        self.count += 1


def _hikari_poll(frames: list[bytes], counter: _Counter, *, wanted: frozenset[str] | None) -> int:
    # hikari's receive_json + _poll_events per message, without the awaits: inflate, decode it all,
    # look at op, t, d and s, hand it on (hikari's event manager then drops what nobody wants).
    decompress = zlib.decompressobj().decompress
    loads = orjson.loads
    consume = counter.consume
    seq = None
    for frame in frames:
        payload = loads(decompress(frame))
        assert isinstance(payload, dict)
        op = payload["op"]
        if op == 0:
            name = payload["t"]
            data = payload["d"]
            seq = payload["s"]
            _LOGGER.log(5, "dispatching %s with seq %s", name, seq)
            if wanted is None or name in wanted:
                consume(name, None, data)
    return typing.cast("int", seq)


def _our_router(implementation: str, counter: _Counter, *, selective: bool) -> typing.Any:
    modules = load(implementation)
    return make_router(
        modules,
        wanting=WANTED if selective else None,
        consume=counter.consume,
        inflator=modules.inflate.ZlibStreamInflator(),
        expect_binary=True,
        logger=_LOGGER,
    )


@pytest.mark.parametrize("selective", [False, True], ids=["full", "selective"])
@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_router(
    benchmark: BenchmarkFixture, implementation: str, selective: bool, zlib_frames: list[bytes], payloads: list[bytes]
) -> None:
    _label(benchmark, f"router zlib-stream, {'selective' if selective else 'full'} decode", implementation)
    wanted = WANTED if selective else None
    expected = sum(1 for raw in payloads if wanted is None or orjson.loads(raw)["t"] in wanted)
    if implementation == "hikari":

        def run() -> int:
            counter = _Counter()
            _hikari_poll(zlib_frames, counter, wanted=wanted)
            return counter.count

    else:

        def run() -> int:
            counter = _Counter()
            feed = _our_router(implementation, counter, selective=selective).feed_frame
            for frame in zlib_frames:
                feed(2, frame)
            return counter.count

    assert benchmark(run) == expected


# -- frames: TCP chunks to websocket messages ------------------------------------------------------


class _Protocol:
    """The bit of aiohttp's protocol its reader's queue uses (never pauses here)."""

    __slots__ = ()
    _reading_paused = False

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_frames(benchmark: BenchmarkFixture, implementation: str, socket_chunks: list[bytes]) -> None:
    _label(benchmark, "frames: 64 KiB socket reads to messages", implementation)
    if implementation == "hikari":
        # hikari reads through aiohttp's websocket reader (compiled when aiohttp ships it).
        reader_module = pytest.importorskip("aiohttp._websocket.reader")
        loop = asyncio.new_event_loop()

        def run() -> int:
            queue = reader_module.WebSocketDataQueue(_Protocol(), 2**30, loop=loop)
            feed = reader_module.WebSocketReader(queue, 0, compress=False, decode_text=False).feed_data
            for chunk in socket_chunks:
                feed(chunk)
            return len(queue._buffer)

        try:
            assert benchmark(run) == DISPATCHES
        finally:
            loop.close()
        return

    parser_class = load(implementation).frames.FrameParser

    def run() -> int:
        messages: list[bytes] = []
        append = messages.append
        feed = parser_class(lambda opcode, payload: append(payload)).feed_data
        for chunk in socket_chunks:
            feed(chunk)
        return len(messages)

    assert benchmark(run) == DISPATCHES


def test_frames_as_the_pure_build_reads(benchmark: BenchmarkFixture, socket_chunks: list[bytes]) -> None:
    """What the pure build frames with: aiohttp's reader, each message handed on by ``_RoutedQueue``.

    ``_pure/frames.py`` (the ``pure`` row) is the reference twin of the compiled parser; the pure
    build takes the socket over with aiohttp's own reader instead, which costs less.
    """
    _label(benchmark, "frames: 64 KiB socket reads to messages", "pure build (aiohttp's reader, routed)")
    from hikari_shard import _transport

    if not _transport._reader_routes():
        pytest.skip("this aiohttp's reader does not route: the pure build awaits ws.receive()")

    class Router:
        __slots__ = ("feed_frame", "push")

        def __init__(self, messages: list[bytes]) -> None:
            self.feed_frame = lambda opcode, payload: messages.append(payload)
            self.push = messages.append

    def run() -> int:
        messages: list[bytes] = []
        feed = _transport._new_aiohttp_reader(Router(messages), 0).feed_data
        for chunk in socket_chunks:
            feed(chunk)
        return len(messages)

    assert benchmark(run) == DISPATCHES


# -- rate limit: the check before every send --------------------------------------------------------

SENDS = 10_000


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_ratelimit(benchmark: BenchmarkFixture, implementation: str) -> None:
    benchmark.group = f"ratelimit: {SENDS:,} sends that are allowed"
    benchmark.extra_info["implementation"] = implementation
    # A clock 0.6 s further on at every call: 100 sends per 60 s window, always under the limit, so
    # every call takes the fast path, with the window sliding (old sends expiring) as in a live shard.
    if implementation == "hikari":

        def run() -> int:
            # hikari's _send_json for a non-priority send: two windowed limiters, each checked then
            # decremented (WindowedBurstRateLimiter.acquire when not limited, minus the await).
            non_priority = rate_limits.WindowedBurstRateLimiter("non-priority", 60.0, 117)
            total = rate_limits.WindowedBurstRateLimiter("total", 60.0, 120)
            clock = itertools.count(0.0, 0.6).__next__
            allowed = 0
            for _ in range(SENDS):
                now = clock()
                if non_priority.throttle_task is None and not non_priority.is_rate_limited(now):
                    non_priority.remaining -= 1
                    if total.throttle_task is None and not total.is_rate_limited(now):
                        total.remaining -= 1
                        allowed += 1
            return allowed

    else:
        limiter_class = load(implementation).ratelimit.CommandRateLimiter

        def run() -> int:
            limiter = limiter_class(120, 60.0, 3, clock=itertools.count(0.0, 0.6).__next__)
            try_acquire = limiter.try_acquire
            allowed = 0
            for _ in range(SENDS):
                if try_acquire():
                    allowed += 1
            return allowed

    assert benchmark(run) == SENDS
