"""The websocket frame parser: every gateway message the shard sees went through it.

If one of these fails, a bot would notice missing or corrupted events (a frame split across TCP
reads delivered wrong, a fragmented GUILD_CREATE glued together wrong), a heartbeat ping lost in
the middle of a large message, a hostile or broken server making the process allocate gigabytes,
or the shard carrying on after the server said goodbye.
"""

from __future__ import annotations

import asyncio
import base64
import os
import random
import tracemalloc
import types
import typing

import pytest
from aiohttp import web
from hikari import errors
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from hikari_shard._pure import frames as pure_frames
from hikari_shard.testing import encode_frame
from hikari_shard.testing.hot_paths import load_or_skip, make_router

OP_CONTINUATION: typing.Final = 0
OP_TEXT: typing.Final = 1
OP_BINARY: typing.Final = 2
OP_CLOSE: typing.Final = 8
OP_PING: typing.Final = 9
OP_PONG: typing.Final = 10

HYPOTHESIS: typing.Final = settings(
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow], deadline=None
)

Message = tuple[int, bytes]


def _compiled() -> types.ModuleType:
    return load_or_skip("compiled").frames


@pytest.fixture(params=["compiled", "pure"], scope="module")
def frames_impl(request: pytest.FixtureRequest) -> types.ModuleType:
    """Both implementations of the frame parser (``hikari_shard._fastpath.frames`` and its pure twin)."""
    if request.param == "compiled":
        return _compiled()
    return pure_frames


@pytest.fixture(scope="module")
def compiled_frames() -> types.ModuleType:
    return _compiled()


# --------------------------------------------------------------------------------------------------
# Helpers


class Recorder:
    """An ``on_message`` that keeps what it is given and checks it is plain ``bytes``."""

    def __init__(self) -> None:
        self.messages: list[Message] = []

    def __call__(self, opcode: int, payload: bytes) -> None:
        assert type(opcode) is int
        assert type(payload) is bytes
        self.messages.append((opcode, payload))


def parser(impl: types.ModuleType, **kwargs: typing.Any) -> tuple[typing.Any, Recorder]:
    recorder = Recorder()
    return impl.FrameParser(recorder, **kwargs), recorder


def feed_chunks(p: typing.Any, data: bytes, cuts: typing.Iterable[int]) -> None:
    start = 0
    for cut in sorted(cuts):
        p.feed_data(data[start:cut])
        start = cut
    p.feed_data(data[start:])


def outcome(impl: types.ModuleType, stream: bytes, cuts: typing.Iterable[int], max_message_size: int) -> typing.Any:
    """Everything observable after feeding ``stream`` in pieces: messages, error, closed, buffered."""
    p, recorder = parser(impl, max_message_size=max_message_size)
    error = None
    try:
        feed_chunks(p, stream, cuts)
    except errors.GatewayTransportError as ex:
        error = str(ex)
        assert p.closed
    return recorder.messages, error, p.closed, p.buffered


# A stream exercising every length form, control frames between fragments and empty frames.
SMALL_STREAM_FRAMES: typing.Final = [
    (encode_frame(OP_BINARY, b"hello"), [(OP_BINARY, b"hello")]),
    (encode_frame(OP_TEXT, b""), [(OP_TEXT, b"")]),
    (encode_frame(OP_BINARY, bytes(range(125))), [(OP_BINARY, bytes(range(125)))]),
    (encode_frame(OP_BINARY, bytes(126)), [(OP_BINARY, bytes(126))]),
    (encode_frame(OP_TEXT, b"sixteen", length_bits=16), [(OP_TEXT, b"sixteen")]),
    (encode_frame(OP_TEXT, b"sixty-four", length_bits=64), [(OP_TEXT, b"sixty-four")]),
    (encode_frame(OP_PING, b"are you there"), [(OP_PING, b"are you there")]),
    (encode_frame(OP_BINARY, b"frag-1 ", fin=False), []),
    (encode_frame(OP_PONG, b""), [(OP_PONG, b"")]),
    (encode_frame(OP_CONTINUATION, b"", fin=False), []),
    (encode_frame(OP_PING, b"x" * 125), [(OP_PING, b"x" * 125)]),
    (encode_frame(OP_CONTINUATION, b"frag-2 " * 30, fin=False, length_bits=64), []),
    (encode_frame(OP_CONTINUATION, b"frag-3"), [(OP_BINARY, b"frag-1 " + b"frag-2 " * 30 + b"frag-3")]),
    (encode_frame(OP_BINARY, bytes(range(256)) * 2), [(OP_BINARY, bytes(range(256)) * 2)]),
    (encode_frame(OP_CLOSE, b"\x0f\xa0bye"), [(OP_CLOSE, b"\x0f\xa0bye")]),
]
SMALL_STREAM: typing.Final = b"".join(f for f, _ in SMALL_STREAM_FRAMES)
SMALL_EXPECTED: typing.Final = [m for _, ms in SMALL_STREAM_FRAMES for m in ms]


# --------------------------------------------------------------------------------------------------
# Well-formed traffic


@pytest.mark.parametrize("length", [0, 1, 125, 126, 65535, 65536, 1 << 20])
@pytest.mark.parametrize("opcode", [OP_TEXT, OP_BINARY])
def test_single_frame_every_length_form(frames_impl: types.ModuleType, opcode: int, length: int) -> None:
    payload = random.Random(length).randbytes(length)
    p, recorder = parser(frames_impl)
    p.feed_data(encode_frame(opcode, payload))
    assert recorder.messages == [(opcode, payload)]
    assert p.buffered == 0
    assert not p.closed


@pytest.mark.parametrize("length_bits", [16, 64])
def test_non_minimal_length_forms_are_accepted(frames_impl: types.ModuleType, length_bits: int) -> None:
    p, recorder = parser(frames_impl)
    p.feed_data(encode_frame(OP_BINARY, b"abc", length_bits=length_bits))
    assert recorder.messages == [(OP_BINARY, b"abc")]


@pytest.mark.parametrize(
    ("opcode", "payload"),
    [(OP_PING, b""), (OP_PING, b"p" * 125), (OP_PONG, b""), (OP_PONG, b"q" * 125), (OP_CLOSE, b""),
     (OP_CLOSE, b"\x03\xe8"), (OP_CLOSE, b"\x0f\xa4" + b"r" * 123)],
)  # fmt: skip
def test_control_frames(frames_impl: types.ModuleType, opcode: int, payload: bytes) -> None:
    p, recorder = parser(frames_impl)
    p.feed_data(encode_frame(opcode, payload))
    assert recorder.messages == [(opcode, payload)]
    assert p.closed == (opcode == OP_CLOSE)


def test_many_frames_in_one_chunk(frames_impl: types.ModuleType) -> None:
    rng = random.Random(1)
    expected = [(rng.choice((OP_TEXT, OP_BINARY)), rng.randbytes(rng.randrange(0, 2500))) for _ in range(400)]
    p, recorder = parser(frames_impl)
    p.feed_data(b"".join(encode_frame(op, payload) for op, payload in expected))
    assert recorder.messages == expected
    assert p.buffered == 0


def test_accepts_bytearray_and_memoryview(frames_impl: types.ModuleType) -> None:
    p, recorder = parser(frames_impl)
    p.feed_data(bytearray(encode_frame(OP_TEXT, b"one")))
    p.feed_data(memoryview(encode_frame(OP_TEXT, b"two")))
    assert recorder.messages == [(OP_TEXT, b"one"), (OP_TEXT, b"two")]


def test_every_split_position(frames_impl: types.ModuleType) -> None:
    for cut in range(len(SMALL_STREAM) + 1):
        p, recorder = parser(frames_impl)
        feed_chunks(p, SMALL_STREAM, [cut])
        assert recorder.messages == SMALL_EXPECTED, f"split at {cut}"
        assert p.closed


def test_every_pair_of_split_positions_around_headers(frames_impl: types.ModuleType) -> None:
    # Three chunks, both cuts within the first 40 bytes (headers, 16- and 64-bit lengths, payloads).
    head = b"".join(f for f, _ in SMALL_STREAM_FRAMES[3:7])
    expected = [m for _, ms in SMALL_STREAM_FRAMES[3:7] for m in ms]
    offset = len(SMALL_STREAM_FRAMES[3][0]) - 2  # start near the end of the 126-byte frame
    for first in range(offset, len(head) + 1):
        for second in range(first, len(head) + 1):
            p, recorder = parser(frames_impl)
            feed_chunks(p, head, [first, second])
            assert recorder.messages == expected, (first, second)
            assert p.buffered == 0


def test_byte_by_byte(frames_impl: types.ModuleType) -> None:
    big = random.Random(2).randbytes(65536)
    stream = encode_frame(OP_BINARY, big) + SMALL_STREAM
    p, recorder = parser(frames_impl)
    for i in range(len(stream)):
        p.feed_data(stream[i : i + 1])
    assert recorder.messages == [(OP_BINARY, big), *SMALL_EXPECTED]
    assert p.closed


def test_empty_feed_is_harmless(frames_impl: types.ModuleType) -> None:
    p, recorder = parser(frames_impl)
    p.feed_data(b"")
    p.feed_data(b"\x82")
    p.feed_data(b"")
    p.feed_data(b"\x01x")
    assert recorder.messages == [(OP_BINARY, b"x")]


def test_buffered_counts_partial_frames(frames_impl: types.ModuleType) -> None:
    p, _ = parser(frames_impl)
    p.feed_data(b"\x82\x7f\x00")  # half a 64-bit length
    assert p.buffered == 3
    p, _ = parser(frames_impl)
    p.feed_data(encode_frame(OP_BINARY, bytes(1000))[:504])  # 4 header bytes, 500 payload bytes
    assert p.buffered == 500
    p, _ = parser(frames_impl)
    p.feed_data(
        encode_frame(OP_TEXT, b"abc", fin=False) + encode_frame(OP_CONTINUATION, b"defg", fin=False) + b"\x89\x05pi"
    )
    assert p.buffered == 7 + 2  # two fragments and the ping's first two payload bytes
    p.feed_data(b"ng!\x80")  # the rest of the ping, then the first byte of the next header
    assert p.buffered == 7 + 1  # the fragments and the first byte of the next header


def test_fragmented_message_with_interleaved_control_frames(frames_impl: types.ModuleType) -> None:
    stream = (
        encode_frame(OP_TEXT, b'{"op":0,', fin=False)
        + encode_frame(OP_PING, b"ping-1")
        + encode_frame(OP_CONTINUATION, b'"d":', fin=False)
        + encode_frame(OP_PONG, b"pong-1")
        + encode_frame(OP_CONTINUATION, b"", fin=False)
        + encode_frame(OP_CONTINUATION, b"{}}")
        + encode_frame(OP_BINARY, b"after")
    )
    expected = [(OP_PING, b"ping-1"), (OP_PONG, b"pong-1"), (OP_TEXT, b'{"op":0,"d":{}}'), (OP_BINARY, b"after")]
    p, recorder = parser(frames_impl)
    p.feed_data(stream)
    assert recorder.messages == expected
    # A control frame split across reads while a fragmented message is open.
    for cut in range(len(stream) + 1):
        p, recorder = parser(frames_impl)
        feed_chunks(p, stream, [cut])
        assert recorder.messages == expected, cut


def test_fragmented_message_of_empty_frames(frames_impl: types.ModuleType) -> None:
    p, recorder = parser(frames_impl)
    p.feed_data(
        encode_frame(OP_BINARY, fin=False) + encode_frame(OP_CONTINUATION, fin=False) + encode_frame(OP_CONTINUATION)
    )
    assert recorder.messages == [(OP_BINARY, b"")]
    p.feed_data(encode_frame(OP_TEXT, b"next"))  # the empty message was closed properly
    assert recorder.messages[-1] == (OP_TEXT, b"next")


def test_reused_buffer_never_leaks_into_earlier_or_later_messages(frames_impl: types.ModuleType) -> None:
    p, recorder = parser(frames_impl)
    long = b"L" * 5000
    p.feed_data(encode_frame(OP_BINARY, long[:2500], fin=False) + encode_frame(OP_CONTINUATION, long[2500:]))
    p.feed_data(encode_frame(OP_BINARY, b"sh", fin=False) + encode_frame(OP_CONTINUATION, b"ort"))
    big = encode_frame(OP_BINARY, b"B" * 3000)
    p.feed_data(big[:100])  # an unfragmented frame split across reads also goes through the buffer
    p.feed_data(big[100:])
    assert recorder.messages == [(OP_BINARY, long), (OP_BINARY, b"short"), (OP_BINARY, b"B" * 3000)]


def test_message_of_exactly_max_message_size_is_accepted(frames_impl: types.ModuleType) -> None:
    p, recorder = parser(frames_impl, max_message_size=1000)
    p.feed_data(encode_frame(OP_BINARY, b"a" * 1000))
    p.feed_data(encode_frame(OP_BINARY, b"b" * 600, fin=False) + encode_frame(OP_CONTINUATION, b"c" * 400))
    p.feed_data(encode_frame(OP_PING, b"p" * 125))  # the limit is about data messages; control frames have their own
    assert [len(payload) for _, payload in recorder.messages] == [1000, 1000, 125]


@pytest.mark.parametrize("value", [0, -1])
def test_max_message_size_must_be_positive(frames_impl: types.ModuleType, value: int) -> None:
    with pytest.raises(ValueError, match="at least 1 byte"):
        frames_impl.FrameParser(Recorder(), max_message_size=value)


def test_constants(frames_impl: types.ModuleType) -> None:
    assert (
        frames_impl.OP_CONTINUATION,
        frames_impl.OP_TEXT,
        frames_impl.OP_BINARY,
        frames_impl.OP_CLOSE,
        frames_impl.OP_PING,
        frames_impl.OP_PONG,
    ) == (0, 1, 2, 8, 9, 10)
    assert set(frames_impl.__all__) == set(pure_frames.__all__)


# --------------------------------------------------------------------------------------------------
# Closing


def test_close_is_delivered_then_everything_after_is_ignored(frames_impl: types.ModuleType) -> None:
    p, recorder = parser(frames_impl)
    p.feed_data(
        encode_frame(OP_BINARY, b"before")
        + encode_frame(OP_CLOSE, b"\x0f\xa4")
        + encode_frame(OP_BINARY, b"after")
        + b"\xff"
    )
    assert recorder.messages == [(OP_BINARY, b"before"), (OP_CLOSE, b"\x0f\xa4")]
    assert p.closed
    assert p.buffered == 0
    p.feed_data(encode_frame(OP_BINARY, b"later") + b"garbage that would be an error")
    assert recorder.messages == [(OP_BINARY, b"before"), (OP_CLOSE, b"\x0f\xa4")]


def test_parser_is_closed_while_close_is_delivered(frames_impl: types.ModuleType) -> None:
    seen: list[bool] = []
    p = frames_impl.FrameParser(lambda opcode, payload: seen.append(p.closed))
    p.feed_data(encode_frame(OP_PING) + encode_frame(OP_CLOSE))
    assert seen == [False, True]


def test_close_during_a_fragmented_message_drops_it(frames_impl: types.ModuleType) -> None:
    p, recorder = parser(frames_impl)
    p.feed_data(
        encode_frame(OP_TEXT, b"part", fin=False)
        + encode_frame(OP_CLOSE, b"\x03\xe8")
        + encode_frame(OP_CONTINUATION, b"x")
    )
    assert recorder.messages == [(OP_CLOSE, b"\x03\xe8")]
    assert p.buffered == 0


class Boom(Exception):
    pass


def test_callback_exception_propagates_and_closes(frames_impl: types.ModuleType) -> None:
    delivered: list[Message] = []
    boom = Boom("the consumer failed")

    def on_message(opcode: int, payload: bytes) -> None:
        delivered.append((opcode, payload))
        if payload == b"second":
            raise boom

    p = frames_impl.FrameParser(on_message)
    stream = encode_frame(OP_TEXT, b"first") + encode_frame(OP_TEXT, b"second") + encode_frame(OP_TEXT, b"third")
    with pytest.raises(Boom) as info:
        p.feed_data(stream + encode_frame(OP_BINARY, b"partial")[:4])
    assert info.value is boom
    assert p.closed
    assert p.buffered == 0
    p.feed_data(encode_frame(OP_TEXT, b"fourth"))
    assert delivered == [(OP_TEXT, b"first"), (OP_TEXT, b"second")]


@pytest.mark.parametrize("where", ["whole", "buffered", "control"])
def test_callback_exception_from_each_delivery_path(frames_impl: types.ModuleType, where: str) -> None:
    def on_message(opcode: int, payload: bytes) -> None:
        raise Boom(where)

    p = frames_impl.FrameParser(on_message)
    data = {
        "whole": encode_frame(OP_BINARY, b"x"),
        "buffered": encode_frame(OP_BINARY, b"x", fin=False) + encode_frame(OP_CONTINUATION, b"y"),
        "control": encode_frame(OP_PING, b"x"),
    }[where]
    with pytest.raises(Boom):
        p.feed_data(data)
    assert p.closed


def test_a_routers_feed_frame_as_on_message(impl: types.SimpleNamespace) -> None:
    """The compiled parser calls a compiled router's ``feed_frame`` in C: the same deliveries, in order."""
    router = make_router(impl)
    p = impl.frames.FrameParser(router.feed_frame)
    hello = b'{"op":10,"d":{"heartbeat_interval":41250}}'
    ack = b'{"op":11,"d":null}'
    first = encode_frame(OP_TEXT, hello)
    stream = (
        first
        + encode_frame(OP_PING, b"hi")
        + encode_frame(OP_TEXT, ack[:5], fin=False)
        + encode_frame(OP_CONTINUATION, ack[5:])
        + encode_frame(OP_PONG)
        + encode_frame(OP_CLOSE, b"\x03\xe8bye")
        + encode_frame(OP_TEXT, b"after the close")
    )
    p.feed_data(stream[: len(first) - 3])  # a one-frame message split across reads
    p.feed_data(stream[len(first) - 3 :])
    assert list(router.pending) == [
        {"op": 10, "d": {"heartbeat_interval": 41250}},
        impl.router.PingFrame(b"hi"),
        {"op": 11, "d": None},
        impl.router.CloseFrame(1000, "bye"),
    ]
    assert (router.messages, p.closed) == (2, True)


def test_a_routers_error_propagates_and_closes(impl: types.SimpleNamespace) -> None:
    router = make_router(impl, expect_binary=True)
    p = impl.frames.FrameParser(router.feed_frame)
    with pytest.raises(errors.GatewayTransportError, match="received TEXT, expected BINARY"):
        p.feed_data(encode_frame(OP_TEXT, b"{}") + encode_frame(OP_PING))
    assert p.closed
    assert not router.pending  # the ping after the refused frame is never delivered


# --------------------------------------------------------------------------------------------------
# Protocol errors

SECRET: typing.Final = b"TOKEN-DO-NOT-LOG"

ERRORS: typing.Final = {
    "masked frame": (encode_frame(OP_BINARY, SECRET, mask=b"\x01\x02\x03\x04"), "masked"),
    "rsv1": (encode_frame(OP_BINARY, SECRET, rsv=4), "reserved bits"),
    "rsv2": (encode_frame(OP_BINARY, SECRET, rsv=2), "reserved bits"),
    "rsv3": (encode_frame(OP_TEXT, SECRET, rsv=1), "reserved bits"),
    "rsv on control": (encode_frame(OP_PING, SECRET, rsv=4), "reserved bits"),
    **{
        f"opcode {op:#x}": (encode_frame(op, SECRET), f"unknown opcode {op:#x}")
        for op in (3, 4, 5, 6, 7, 11, 12, 13, 14, 15)
    },
    "fragmented ping": (encode_frame(OP_PING, SECRET, fin=False), "fragmented"),
    "fragmented close": (encode_frame(OP_CLOSE, b"\x03\xe8", fin=False), "fragmented"),
    "ping of 126": (encode_frame(OP_PING, SECRET * 8, length_bits=16), "more than 125"),
    "pong of 126 in 64 bits": (encode_frame(OP_PONG, SECRET, length_bits=64), "more than 125"),
    "close of 1 byte": (encode_frame(OP_CLOSE, b"\x03"), "1-byte payload"),
    "continuation first": (encode_frame(OP_CONTINUATION, SECRET), "without a started message"),
    "continuation after finished": (
        encode_frame(OP_BINARY, b"do", fin=False)
        + encode_frame(OP_CONTINUATION, b"ne")
        + encode_frame(OP_CONTINUATION, SECRET),
        "without a started",
    ),
    "new text in fragmented": (
        encode_frame(OP_TEXT, SECRET, fin=False) + encode_frame(OP_TEXT, SECRET),
        "fragmented message is open",
    ),
    "new binary in fragmented": (
        encode_frame(OP_BINARY, SECRET, fin=False) + encode_frame(OP_BINARY, SECRET, fin=False),
        "fragmented message is open",
    ),
    "frame over limit": (encode_frame(OP_BINARY, SECRET * 70), "message too big"),
    "fragments over limit": (
        encode_frame(OP_BINARY, SECRET * 40, fin=False) + encode_frame(OP_CONTINUATION, SECRET * 30),
        "message too big",
    ),
    "64-bit top bit": (encode_frame(OP_BINARY, declared=1 << 63, length_bits=64), "most significant bit"),
    "64-bit all ones": (encode_frame(OP_BINARY, declared=(1 << 64) - 1, length_bits=64), "most significant bit"),
}


@pytest.mark.parametrize("case", list(ERRORS))
def test_protocol_errors(frames_impl: types.ModuleType, case: str) -> None:
    data, reason = ERRORS[case]
    stream = encode_frame(OP_TEXT, b"before") + data
    delivered = [(OP_TEXT, b"before")] + ([(OP_BINARY, b"done")] if case == "continuation after finished" else [])
    for chunks in ([len(stream)], list(range(1, len(stream)))):  # whole, then byte by byte
        p, recorder = parser(frames_impl, max_message_size=1024)
        with pytest.raises(errors.GatewayTransportError, match=reason) as info:
            feed_chunks(p, stream, chunks)
        assert SECRET.decode() not in str(info.value)
        assert recorder.messages == delivered
        assert p.closed
        assert p.buffered == 0
        p.feed_data(encode_frame(OP_TEXT, b"ignored"))
        assert recorder.messages == delivered


def test_huge_declared_length_is_refused_from_the_header_alone(frames_impl: types.ModuleType) -> None:
    header = encode_frame(OP_BINARY, declared=1 << 62, length_bits=64)
    assert len(header) == 10
    tracemalloc.start()
    try:
        p, recorder = parser(frames_impl)
        with pytest.raises(errors.GatewayTransportError, match="message too big"):
            p.feed_data(header)  # not a single payload byte follows
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 * 1024
    assert recorder.messages == []
    assert p.closed


@pytest.mark.parametrize(
    ("declared", "bound"),
    [
        (60 << 20, 1 << 20),  # under the 64 MiB default: memory follows what arrived
        (1 << 20, (1 << 20) + (64 << 10)),  # the compiled parser may allocate a split frame of <= 1 MiB up front
    ],
)
def test_declared_length_allocates_little_ahead_of_the_data(
    frames_impl: types.ModuleType, declared: int, bound: int
) -> None:
    start = encode_frame(OP_BINARY, declared=declared, length_bits=64) + bytes(4096)
    tracemalloc.start()
    try:
        p, recorder = parser(frames_impl)
        p.feed_data(start)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert p.buffered == 4096
    assert peak < bound
    assert recorder.messages == []


@pytest.mark.parametrize("length", [(1 << 20) - 1, 1 << 20, (1 << 20) + 1, 3 << 20])
def test_large_frames_split_across_reads(frames_impl: types.ModuleType, length: int) -> None:
    # Around the 1 MiB point where the compiled parser stops filling the message's bytes in place.
    payload = random.Random(length).randbytes(length)
    stream = encode_frame(OP_BINARY, payload) + encode_frame(OP_TEXT, b"next")
    p, recorder = parser(frames_impl)
    feed_chunks(p, stream, range(65536, len(stream), 65536))
    assert recorder.messages == [(OP_BINARY, payload), (OP_TEXT, b"next")]
    assert p.buffered == 0


# --------------------------------------------------------------------------------------------------
# Properties

data_message = st.tuples(st.sampled_from([OP_TEXT, OP_BINARY]), st.binary(max_size=3000))
control_message = st.tuples(st.sampled_from([OP_PING, OP_PONG]), st.binary(max_size=125))


@st.composite
def framed_traffic(draw: st.DrawFn) -> tuple[bytes, list[Message], bool]:
    """Messages, fragmented at random with control frames between fragments; optionally ending in CLOSE."""
    stream = bytearray()
    delivered: list[Message] = []
    for _ in range(draw(st.integers(0, 12))):
        if draw(st.booleans()):
            opcode, payload = draw(control_message)
            stream += encode_frame(opcode, payload)  # control frames must use the 7-bit length form
            delivered.append((opcode, payload))
            continue
        opcode, payload = draw(data_message)
        cuts = sorted(draw(st.lists(st.integers(0, len(payload)), max_size=4)))
        pieces = [payload[a:b] for a, b in zip([0, *cuts], [*cuts, len(payload)], strict=True)]
        for index, piece in enumerate(pieces):
            last = index == len(pieces) - 1
            length_bits = draw(st.sampled_from([None, None, 16, 64])) if len(piece) < 65536 else None
            stream += encode_frame(OP_CONTINUATION if index else opcode, piece, fin=last, length_bits=length_bits)
            if not last and draw(st.integers(0, 3)) == 0:
                ping, ping_payload = draw(control_message)
                stream += encode_frame(ping, ping_payload)
                delivered.append((ping, ping_payload))
        delivered.append((opcode, payload))
    closes = draw(st.booleans())
    if closes:
        stream += encode_frame(OP_CLOSE, b"\x0f\xa0")
        delivered.append((OP_CLOSE, b"\x0f\xa0"))
    return bytes(stream), delivered, closes


def chunk_cuts(size: int) -> st.SearchStrategy[list[int]]:
    return st.lists(st.integers(0, size), max_size=20)


@settings(HYPOTHESIS, max_examples=150)
@given(traffic=framed_traffic(), data=st.data())
def test_random_traffic_round_trips(
    frames_impl: types.ModuleType, traffic: tuple[bytes, list[Message], bool], data: st.DataObject
) -> None:
    stream, expected, closes = traffic
    p, recorder = parser(frames_impl)
    feed_chunks(p, stream, data.draw(chunk_cuts(len(stream))))
    assert recorder.messages == expected
    assert p.closed == closes
    assert p.buffered == 0


@st.composite
def hostile_stream(draw: st.DrawFn) -> bytes:
    """Mostly valid traffic (so parsing gets deep into the stream), with one kind of damage now and then."""
    stream = bytearray()
    fragmented = False
    for _ in range(draw(st.integers(1, 12))):
        # 0 junk, 1 any opcode, 2 control without FIN, 3 close of 1 byte allowed, 4 declared length lies,
        # 5 control in a 16/64-bit length form, 6 reserved bits, 7 masked; anything else is a valid frame.
        damage = draw(st.integers(0, 40))
        if damage == 0:
            stream += draw(st.binary(min_size=1, max_size=16))
            continue
        if damage == 1:
            opcode = draw(st.integers(0, 15))
        elif draw(st.integers(0, 3)) == 0:
            opcode = draw(st.sampled_from([OP_PING, OP_PONG, OP_PING, OP_PONG, OP_CLOSE]))
        else:
            opcode = OP_CONTINUATION if fragmented else draw(st.sampled_from([OP_TEXT, OP_BINARY]))
        limit = 125 if opcode >= OP_CLOSE else 600
        size = draw(st.one_of(st.sampled_from([0, 1, 2, 3, 16, 100, 125]), st.integers(0, limit)))
        payload = draw(st.binary(min_size=size, max_size=size))
        fin = damage != 2 if opcode >= OP_CLOSE else draw(st.integers(0, 2)) > 0
        if opcode == OP_CLOSE and len(payload) == 1 and damage != 3:
            payload = b""
        declared = None
        if damage == 4:
            declared = draw(st.sampled_from([1, 126, 1000, 65536, 1 << 40, 1 << 62, 1 << 63, (1 << 64) - 1]))
        length = len(payload) if declared is None else declared
        length_bits = None
        if opcode < OP_CLOSE or damage == 5:
            length_bits = draw(st.sampled_from([None, None, 16, 64])) if length < 65536 else 64
        stream += encode_frame(
            opcode,
            payload,
            fin=fin,
            rsv=draw(st.sampled_from([1, 2, 4])) if damage == 6 else 0,
            mask=draw(st.sampled_from([b"\x00\x00\x00\x00", b"\xde\xad\xbe\xef"])) if damage == 7 else None,
            length_bits=length_bits,
            declared=declared,
        )
        if opcode in (OP_TEXT, OP_BINARY, OP_CONTINUATION):
            fragmented = not fin
    return bytes(stream)


@settings(HYPOTHESIS, max_examples=300)
@given(
    stream=st.one_of(hostile_stream(), st.binary(max_size=400)),
    max_message_size=st.one_of(st.sampled_from([1, 2, 3, 16, 100, 125, 126, 200, 250]), st.integers(1, 5000)),
    compiled_cuts=st.lists(st.integers(0, 8000), max_size=20),
    pure_cuts=st.lists(st.integers(0, 8000), max_size=20),
)
@example(encode_frame(OP_CLOSE, b"\x03\xe8!"), 100, [], [3])
@example(encode_frame(OP_PING, b"p", length_bits=16), 100, [3], [])
@example(encode_frame(OP_BINARY, declared=1 << 63, length_bits=64) + b"xx", 100, [], [5])
@example(encode_frame(OP_TEXT, b"ab", fin=False) + encode_frame(OP_CONTINUATION, b"cde"), 5, [], [])
@example(encode_frame(OP_TEXT, b"ab", fin=False) + encode_frame(OP_CONTINUATION, b"cdef"), 5, [9], [])
def test_compiled_and_pure_agree_on_anything(
    compiled_frames: types.ModuleType,
    stream: bytes,
    max_message_size: int,
    compiled_cuts: list[int],
    pure_cuts: list[int],
) -> None:
    result = outcome(compiled_frames, stream, [min(cut, len(stream)) for cut in compiled_cuts], max_message_size)
    assert outcome(pure_frames, stream, [min(cut, len(stream)) for cut in pure_cuts], max_message_size) == result
    # How the bytes are split never changes the result.
    assert outcome(compiled_frames, stream, [], max_message_size) == result


# --------------------------------------------------------------------------------------------------
# A real peer


async def test_frames_from_a_real_aiohttp_server(frames_impl: types.ModuleType) -> None:
    rng = random.Random(3)
    sent: list[Message] = [
        (OP_BINARY, rng.randbytes(10)),
        (OP_BINARY, rng.randbytes(200)),
        (OP_BINARY, rng.randbytes(2000)),
        (OP_TEXT, b'{"op":10,"d":{"heartbeat_interval":41250}}'),
        (OP_BINARY, rng.randbytes(70_000)),  # 64-bit length, spans many TCP reads
        (OP_PING, b"still there?"),
        (OP_TEXT, "é 😀 ".encode() * 100),  # 16-bit length
        (OP_BINARY, b""),
    ]

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(compress=False, autoping=False)
        await ws.prepare(request)
        for opcode, payload in sent:
            if opcode == OP_BINARY:
                await ws.send_bytes(payload)
            elif opcode == OP_TEXT:
                await ws.send_str(payload.decode())
            else:
                await ws.ping(payload)
        await ws.close(code=4000, message=b"reconnect")
        return ws

    app = web.Application()
    app.router.add_get("/", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = runner.addresses[0][1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        response = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert response.startswith(b"HTTP/1.1 101")
        p, recorder = parser(frames_impl)
        raw = bytearray()
        while not p.closed:
            chunk = await asyncio.wait_for(reader.read(4096), 5)
            assert chunk, "the server hung up before its close frame"
            raw += chunk
            p.feed_data(chunk)
        # Answer the close (masked, as a client must), then hang up.
        writer.write(encode_frame(OP_CLOSE, b"\x0f\xa0", mask=b"\x11\x22\x33\x44"))
        writer.close()
        await writer.wait_closed()
    finally:
        await runner.cleanup()

    assert recorder.messages == [*sent, (OP_CLOSE, b"\x0f\xa0reconnect")]
    # The captured bytes parse the same fed in one go and fed in 1-byte pieces.
    for cuts in ([], range(1, len(raw))):
        p, again = parser(frames_impl)
        feed_chunks(p, bytes(raw), cuts)
        assert again.messages == recorder.messages
