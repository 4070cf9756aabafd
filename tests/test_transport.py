"""The frame feed that replaces aiohttp's websocket reader: order, errors, the end of the socket."""

from __future__ import annotations

import asyncio
import collections
import typing

import orjson
import pytest
from hikari import errors
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hikari_shard import _fast, _transport
from hikari_shard.testing import encode_frame
from hikari_shard.testing.hot_paths import make_router as inert_router


class Consumer:
    def __init__(self) -> None:
        self.seqs: list[int] = []

    def consume_raw_event(self, name: str, shard: object, data: typing.Any) -> None:
        self.seqs.append(data["i"])


def make_router(consumer: Consumer, pending: collections.deque[typing.Any]) -> typing.Any:
    return inert_router(_fast, consume=consumer.consume_raw_event, pending=pending)


def make_feed() -> tuple[_transport._FrameFeed, Consumer, collections.deque[typing.Any], None]:
    consumer = Consumer()
    pending: collections.deque[typing.Any] = collections.deque()
    router = make_router(consumer, pending)
    feed = _transport._FrameFeed(1 << 20)
    feed.attach(router)
    return feed, consumer, pending, None


def stream(start: int, stop: int) -> bytes:
    return b"".join(
        encode_frame(1, orjson.dumps({"op": 0, "t": "X", "s": i + 1, "d": {"i": i, "pad": "x" * 300}}))
        for i in range(start, stop)
    )


async def settle() -> None:
    for _ in range(1000):
        await asyncio.sleep(0)


async def test_a_big_chunk_is_routed_at_once_in_order() -> None:
    """A whole TCP chunk (asyncio reads up to 256 KiB) is parsed, inflated and consumed in data_received."""
    feed, consumer, _, _ = make_feed()
    assert feed.feed_data(stream(0, 1000)) == (False, b"")
    feed.feed_data(stream(1000, 1010))
    assert consumer.seqs == list(range(1010))


async def test_an_error_stops_the_feed_and_reaches_the_shard() -> None:
    feed, consumer, pending, _ = make_feed()
    # True tells aiohttp's protocol to drop the rest of the connection's bytes.
    assert feed.feed_data(stream(0, 100) + encode_frame(1, b"{not json") + stream(100, 200)) == (True, b"")
    assert consumer.seqs == list(range(100))  # everything before the bad payload, nothing after
    assert isinstance(pending[-1], errors.GatewayTransportError)
    feed.feed_data(stream(200, 201))
    assert consumer.seqs == list(range(100))


async def test_eof_after_the_data() -> None:
    feed, consumer, pending, _ = make_feed()
    feed.feed_data(stream(0, 500))
    feed.feed_eof()
    assert consumer.seqs == list(range(500))
    assert isinstance(pending[-1], errors.GatewayConnectionError)


async def test_bytes_before_the_router_is_attached_are_kept() -> None:
    consumer = Consumer()
    feed = _transport._FrameFeed(1 << 20)
    feed.feed_data(stream(0, 3))
    feed.attach(make_router(consumer, collections.deque()))
    await settle()
    assert consumer.seqs == [0, 1, 2]


async def test_control_frames_between_data_messages() -> None:
    """Ping and close reach the async side in order with the data; a pong is dropped.

    The compiled build splits frames with our parser, the pure one with aiohttp's reader feeding
    the router directly (``_RoutedQueue``): both queue the same items.
    """
    feed, consumer, pending, _ = make_feed()
    close = (4000).to_bytes(2, "big") + b"bye"
    feed.feed_data(stream(0, 2) + encode_frame(9, b"p-1") + encode_frame(10, b"pong") + stream(2, 3))
    assert consumer.seqs == [0, 1, 2]
    assert list(pending) == [_fast.router.PingFrame(b"p-1")]
    feed.feed_data(encode_frame(8, close))
    assert pending[-1] == _fast.router.CloseFrame(4000, "bye")


async def test_an_oversized_message_is_a_transport_error() -> None:
    consumer = Consumer()
    pending: collections.deque[typing.Any] = collections.deque()
    feed = _transport._FrameFeed(1000)
    feed.attach(make_router(consumer, pending))
    big = orjson.dumps({"op": 0, "t": "X", "s": 2, "d": {"i": 1, "pad": "x" * 2000}})
    assert feed.feed_data(stream(0, 1) + encode_frame(2, big) + stream(2, 3)) == (True, b"")
    assert consumer.seqs == [0]
    assert len(pending) == 1
    assert isinstance(pending[0], errors.GatewayTransportError)
    assert "1000" in str(pending[0])  # the limit is named


async def test_a_frame_with_reserved_bits_is_a_transport_error() -> None:
    """No extension is negotiated: a frame with RSV1 set (permessage-deflate) is a protocol violation."""
    feed, consumer, pending, _ = make_feed()
    frame = bytearray(encode_frame(1, b'{"op": 11}'))
    frame[0] |= 0x40
    assert feed.feed_data(stream(0, 1) + bytes(frame)) == (True, b"")
    assert consumer.seqs == [0]
    assert isinstance(pending[-1], errors.GatewayTransportError)


def test_the_installed_aiohttps_reader_routes_and_a_changed_one_is_not_taken_over(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """aiohttp's reader is not public API: the pure build checks it delivers to our queue before taking over."""
    _transport._reader_routes.cache_clear()
    assert _transport._reader_routes()

    class Changed:  # a reader whose queue is fed some other way: nothing reaches ours
        def __init__(self, queue: object, *args: object, **kwargs: object) -> None:
            pass

        def feed_data(self, data: bytes) -> tuple[bool, bytes]:
            return False, b""

    _transport._reader_routes.cache_clear()
    monkeypatch.setattr(_transport, "_AiohttpReader", Changed)
    try:
        assert not _transport._reader_routes()
        monkeypatch.setattr(_transport, "_AiohttpReader", None)
        _transport._reader_routes.cache_clear()
        assert not _transport._reader_routes()
    finally:
        _transport._reader_routes.cache_clear()


@st.composite
def _websocket_stream(draw: st.DrawFn) -> tuple[bytes, list[int]]:
    """Messages a server may send (text/binary, some fragmented, pings and pongs between fragments), and cut points."""
    frames: list[bytes] = []
    for _ in range(draw(st.integers(1, 6))):
        if draw(st.booleans()):
            frames.append(encode_frame(draw(st.sampled_from((9, 10))), draw(st.binary(max_size=125))))
        opcode = draw(st.sampled_from((1, 2)))
        size = draw(st.sampled_from((0, 1, 125, 126, 127, 65535, 65536, 70000)))
        payload = bytes(draw(st.integers(0, 255)) for _ in range(3)) * (size // 3) + b"x" * (size % 3)
        pieces = draw(st.integers(1, 3))
        bounds = sorted(draw(st.lists(st.integers(0, size), min_size=pieces - 1, max_size=pieces - 1)))
        parts = [payload[a:b] for a, b in zip([0, *bounds], [*bounds, size], strict=True)]
        for i, part in enumerate(parts):
            frames.append(encode_frame(opcode if i == 0 else 0, part, fin=i == len(parts) - 1))
            if i < len(parts) - 1 and draw(st.booleans()):
                frames.append(encode_frame(9, b"mid-message"))
    data = b"".join(frames)
    return data, sorted(draw(st.lists(st.integers(0, len(data)), max_size=8)))


@given(_websocket_stream())
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
def test_the_pure_builds_framing_delivers_what_our_parser_does(case: tuple[bytes, list[int]]) -> None:
    """aiohttp's reader feeding a ``_RoutedQueue`` (the pure build) agrees with our reference parser, split anyhow."""
    from hikari_shard._pure import frames

    data, cuts = case
    chunks = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
    ours: list[object] = []

    def on_message(opcode: int, payload: bytes) -> None:
        if opcode == frames.OP_PING:
            ours.append(_fast.router.PingFrame(bytes(payload)))
        elif opcode != frames.OP_PONG:
            ours.append((opcode, bytes(payload)))

    parser = frames.FrameParser(on_message, max_message_size=1 << 20)
    probe = _transport._Probe()
    reader = _transport._new_aiohttp_reader(probe, 1 << 20)
    for chunk in chunks:
        parser.feed_data(chunk)
        assert reader.feed_data(chunk) == (False, b"")
    assert probe.items == ours
