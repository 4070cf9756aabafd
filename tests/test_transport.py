"""The frame feed that replaces aiohttp's websocket reader: order, errors, the end of the socket."""

from __future__ import annotations

import asyncio
import collections
import typing

import orjson
import pytest
from hikari import errors

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
