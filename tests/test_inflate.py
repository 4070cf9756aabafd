"""Gateway decompression: every payload the shard reads went through one of these inflators.

If one of these fails, a bot would notice events that never arrive (a message stuck in the
fragment buffer), garbled payloads (a lost zlib context), or the process swelling to gigabytes
when a hostile or broken peer sends a decompression bomb instead of a clean transport error.
"""

from __future__ import annotations

import functools
import itertools
import json
import random
import tracemalloc
import types
import typing
import zlib

import pytest
from hikari import errors
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hikari_shard._pure import inflate as pure_inflate

try:
    from compression import zstd  # type: ignore[import-not-found]
except ImportError:
    try:
        from backports import zstd  # type: ignore[no-redef]
    except ImportError:
        zstd = None

needs_zstd = pytest.mark.skipif(zstd is None, reason="no zstd module (install hikari-shard[zstd])")

ST_SETTINGS: typing.Final = settings(
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow], deadline=None
)
SUFFIX: typing.Final = b"\x00\x00\xff\xff"
MiB: typing.Final = 1024 * 1024


def payload(sequence: int, size: int = 40) -> bytes:
    """A gateway-looking JSON payload, repetitive like the real thing."""
    document = {
        "op": 0,
        "s": sequence,
        "t": "MESSAGE_CREATE",
        "d": {"id": str(80351110224678912 + sequence), "content": "hello there " * size, "tts": False},
    }
    return json.dumps(document).encode()


def zlib_stream(messages: typing.Iterable[bytes], level: int = 6) -> list[bytes]:
    """Compress messages the way Discord's zlib-stream does: one context, a sync flush per message."""
    compressor = zlib.compressobj(level)
    return [compressor.compress(message) + compressor.flush(zlib.Z_SYNC_FLUSH) for message in messages]


def zstd_stream(messages: typing.Iterable[bytes], **options: int) -> list[bytes]:
    """Compress messages the way Discord's zstd-stream does: one context, a flushed block per message."""
    assert zstd is not None
    parameters = {getattr(zstd.CompressionParameter, name): value for name, value in options.items()}
    compressor = zstd.ZstdCompressor(options=parameters or None)
    return [compressor.compress(message) + compressor.flush(zstd.ZstdCompressor.FLUSH_BLOCK) for message in messages]


def feed_all(inflator: typing.Any, frames: typing.Iterable[bytes]) -> list[bytes]:
    return [message for message in map(inflator.feed, frames) if message is not None]


def outcome(inflator: typing.Any, frames: typing.Iterable[bytes]) -> tuple[list[bytes | None], str | None]:
    """Every return value of ``feed`` until the first error, and that error's text."""
    returned: list[bytes | None] = []
    try:
        for frame in frames:
            returned.append(inflator.feed(frame))
    except errors.GatewayTransportError as ex:
        return returned, str(ex)
    return returned, None


@functools.cache
def zeros_bomb() -> bytes:
    """200 MB of zeros, about 2 MB compressed: a zlib-stream frame (it ends with the sync flush)."""
    compressor = zlib.compressobj(1)
    block = bytes(MiB)
    return b"".join(compressor.compress(block) for _ in range(200)) + compressor.flush(zlib.Z_SYNC_FLUSH)


@functools.cache
def zstd_zeros_bomb() -> bytes:
    """200 MB of zeros, a few KB compressed: one zstd-stream frame."""
    assert zstd is not None
    compressor = zstd.ZstdCompressor()
    block = bytes(MiB)
    return b"".join(compressor.compress(block) for _ in range(200)) + compressor.flush(zstd.ZstdCompressor.FLUSH_BLOCK)


def peak_allocation(function: typing.Callable[[], object]) -> int:
    """The peak Python heap growth while ``function`` runs (bytes objects included)."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        baseline = tracemalloc.get_traced_memory()[0]
        try:
            function()
        except errors.GatewayTransportError:
            pass
        return tracemalloc.get_traced_memory()[1] - baseline
    finally:
        tracemalloc.stop()


# ----------------------------------------------------------------------------------------------
# The module surface


def test_constants_and_surface(impl: types.SimpleNamespace) -> None:
    module = impl.inflate
    assert 64 * MiB == module.DEFAULT_MAX_MESSAGE_SIZE
    assert module.ZLIB_SUFFIX == SUFFIX
    assert set(module.__all__) == set(pure_inflate.__all__)
    assert module.zstd_available() is (zstd is not None)
    for name in ("ZlibStreamInflator", "ZstdStreamInflator", "PayloadZlibInflator"):
        cls = getattr(module, name)
        for member in ("feed", "reset", "pending"):
            assert hasattr(cls, member), f"{name}.{member}"


@pytest.mark.parametrize("name", ["ZlibStreamInflator", "PayloadZlibInflator"])
@pytest.mark.parametrize("size", [0, -1])
def test_max_message_size_must_be_positive(impl: types.SimpleNamespace, name: str, size: int) -> None:
    with pytest.raises(ValueError, match="max_message_size"):
        getattr(impl.inflate, name)(size)


# ----------------------------------------------------------------------------------------------
# zlib-stream


def test_zlib_single_frame(impl: types.SimpleNamespace) -> None:
    inflator = impl.inflate.ZlibStreamInflator()
    (frame,) = zlib_stream([payload(1)])
    assert inflator.feed(frame) == payload(1)
    assert inflator.pending == 0


def test_zlib_many_messages_share_one_context(impl: types.SimpleNamespace) -> None:
    messages = [payload(sequence) for sequence in range(300)]
    frames = zlib_stream(messages)
    # Later frames lean on earlier ones' history: a fresh context cannot read them.
    with pytest.raises(zlib.error):
        zlib.decompressobj().decompress(frames[-1])
    assert feed_all(impl.inflate.ZlibStreamInflator(), frames) == messages


def test_zlib_fragmented_at_every_byte_boundary(impl: types.SimpleNamespace) -> None:
    messages = [payload(1), payload(2, size=200), payload(3)]
    first, middle, last = zlib_stream(messages)
    for cut in range(1, len(middle)):
        inflator = impl.inflate.ZlibStreamInflator()
        assert inflator.feed(first) == messages[0]
        assert inflator.feed(middle[:cut]) is None, cut
        assert inflator.pending == cut
        assert inflator.feed(middle[cut:]) == messages[1], cut
        assert inflator.pending == 0
        assert inflator.feed(last) == messages[2], cut


def test_zlib_one_byte_frames(impl: types.SimpleNamespace) -> None:
    messages = [payload(sequence) for sequence in range(5)]
    inflator = impl.inflate.ZlibStreamInflator()
    frames = [frame[index : index + 1] for frame in zlib_stream(messages) for index in range(len(frame))]
    assert feed_all(inflator, frames) == messages
    assert inflator.pending == 0


def test_zlib_empty_frames_change_nothing(impl: types.SimpleNamespace) -> None:
    inflator = impl.inflate.ZlibStreamInflator()
    (frame,) = zlib_stream([payload(1)])
    assert inflator.feed(b"") is None
    assert inflator.pending == 0
    assert inflator.feed(frame[:10]) is None
    assert inflator.feed(b"") is None
    assert inflator.pending == 10
    assert inflator.feed(frame[10:]) == payload(1)
    assert inflator.feed(b"") is None


def test_zlib_empty_message(impl: types.SimpleNamespace) -> None:
    assert feed_all(impl.inflate.ZlibStreamInflator(), zlib_stream([b"", b"x", b""])) == [b"", b"x", b""]


@pytest.mark.parametrize("kind", [bytearray, memoryview])
def test_any_bytes_like_frame_is_accepted(
    impl: types.SimpleNamespace, kind: typing.Callable[[bytes], typing.Any]
) -> None:
    first, second = zlib_stream([payload(1), payload(2)])
    inflator = impl.inflate.ZlibStreamInflator()
    assert inflator.feed(kind(first)) == payload(1)
    assert inflator.feed(kind(second[:7])) is None
    assert inflator.feed(kind(second[7:])) == payload(2)
    assert impl.inflate.PayloadZlibInflator().feed(kind(zlib.compress(payload(3)))) == payload(3)
    if zstd is not None:
        (frame,) = zstd_stream([payload(4)])
        assert impl.inflate.ZstdStreamInflator().feed(kind(frame)) == payload(4)


def test_zlib_message_exactly_at_the_limit_passes(impl: types.SimpleNamespace) -> None:
    message = b"a" * 1000
    frames = zlib_stream([message, message])
    inflator = impl.inflate.ZlibStreamInflator(1000)
    assert inflator.feed(frames[0]) == message
    assert inflator.feed(frames[1][:5]) is None
    assert inflator.feed(frames[1][5:]) == message


def test_zlib_message_one_byte_over_the_limit_fails(impl: types.SimpleNamespace) -> None:
    (frame,) = zlib_stream([b"a" * 1001])
    with pytest.raises(errors.GatewayTransportError, match=r"more than the 1000 byte limit"):
        impl.inflate.ZlibStreamInflator(1000).feed(frame)


def test_zlib_corrupt_frame(impl: types.SimpleNamespace) -> None:
    inflator = impl.inflate.ZlibStreamInflator()
    secret = b"token-Mjg0NjA3ODQ2NzA4NjcxNjgw"
    with pytest.raises(errors.GatewayTransportError, match="corrupt") as caught:
        inflator.feed(b"\x00\x00" + secret + SUFFIX)
    assert secret.decode() not in str(caught.value)
    assert f"{len(secret) + 6} bytes" in str(caught.value)


def test_zlib_unusable_after_an_error_until_reset(impl: types.SimpleNamespace) -> None:
    inflator = impl.inflate.ZlibStreamInflator()
    with pytest.raises(errors.GatewayTransportError):
        inflator.feed(b"not zlib at all" + SUFFIX)
    (frame,) = zlib_stream([payload(1)])
    with pytest.raises(errors.GatewayTransportError, match="reset"):
        inflator.feed(frame)
    inflator.reset()
    assert inflator.feed(frame) == payload(1)


def test_zlib_truncated_message_waits_for_more(impl: types.SimpleNamespace) -> None:
    (frame,) = zlib_stream([payload(1)])
    inflator = impl.inflate.ZlibStreamInflator()
    assert inflator.feed(frame[: -len(SUFFIX)]) is None
    assert inflator.pending == len(frame) - len(SUFFIX)


def test_zlib_bomb_is_stopped_near_the_limit(impl: types.SimpleNamespace) -> None:
    bomb = zeros_bomb()
    inflator = impl.inflate.ZlibStreamInflator(MiB)
    peak = peak_allocation(lambda: inflator.feed(bomb))
    assert peak < 3 * MiB + len(bomb), f"a 200 MB bomb with a 1 MiB cap allocated {peak} bytes"
    with pytest.raises(errors.GatewayTransportError, match=r"more than the 1048576 byte limit"):
        impl.inflate.ZlibStreamInflator(MiB).feed(bomb)


def test_zlib_fragmented_bomb_is_stopped_near_the_limit(impl: types.SimpleNamespace) -> None:
    bomb = zeros_bomb()
    inflator = impl.inflate.ZlibStreamInflator(4 * MiB)
    size = 64 * 1024

    def run() -> None:
        for start in range(0, len(bomb), size):
            inflator.feed(bomb[start : start + size])

    peak = peak_allocation(run)
    assert peak < 16 * MiB, f"a 200 MB bomb with a 4 MiB cap allocated {peak} bytes"


def test_zlib_buffered_fragments_are_capped(impl: types.SimpleNamespace) -> None:
    inflator = impl.inflate.ZlibStreamInflator(1000)
    assert inflator.feed(b"\x78\x9c" + bytes(600)) is None
    with pytest.raises(errors.GatewayTransportError, match=r"1202 compressed bytes buffered.*1000 byte limit"):
        inflator.feed(bytes(600))
    assert inflator.pending == 0


def test_zlib_reset_forgets_buffer_and_context(impl: types.SimpleNamespace) -> None:
    inflator = impl.inflate.ZlibStreamInflator()
    old = zlib_stream([payload(1), payload(2)])
    assert inflator.feed(old[0]) == payload(1)
    assert inflator.feed(old[1][:5]) is None
    inflator.reset()
    assert inflator.pending == 0
    new = zlib_stream([payload(7), payload(8)])
    assert feed_all(inflator, new) == [payload(7), payload(8)]


def test_zlib_big_fragmented_message_then_small_ones(impl: types.SimpleNamespace) -> None:
    # Incompressible, so the fragment buffer grows past 1 MiB and is replaced afterwards.
    noise = random.Random(7).randbytes(3 * MiB // 2)
    messages = [noise, payload(1), payload(2, size=500)]
    inflator = impl.inflate.ZlibStreamInflator()
    frames = [frame[start : start + 4096] for frame in zlib_stream(messages) for start in range(0, len(frame), 4096)]
    assert feed_all(inflator, frames) == messages


# ----------------------------------------------------------------------------------------------
# zstd-stream


@needs_zstd
def test_zstd_multi_message_stream(impl: types.SimpleNamespace) -> None:
    messages = [payload(sequence) for sequence in range(100)]
    inflator = impl.inflate.ZstdStreamInflator()
    returned = [inflator.feed(frame) for frame in zstd_stream(messages)]
    assert returned == messages
    assert inflator.pending == 0


@needs_zstd
def test_zstd_incomplete_block_returns_none_then_the_message(impl: types.SimpleNamespace) -> None:
    first, second = zstd_stream([payload(1), payload(2)])
    inflator = impl.inflate.ZstdStreamInflator()
    assert inflator.feed(first[:10]) is None
    assert inflator.pending == 10
    assert inflator.feed(b"") is None
    assert inflator.feed(first[10:]) == payload(1)
    assert inflator.pending == 0
    assert inflator.feed(second) == payload(2)


@needs_zstd
def test_zstd_limit(impl: types.SimpleNamespace) -> None:
    exact, over = zstd_stream([b"z" * 1000, b"z" * 1001])
    inflator = impl.inflate.ZstdStreamInflator(1000)
    assert inflator.feed(exact) == b"z" * 1000
    with pytest.raises(errors.GatewayTransportError, match=r"more than the 1000 byte limit"):
        inflator.feed(over)
    with pytest.raises(errors.GatewayTransportError, match="reset"):
        inflator.feed(exact)


@needs_zstd
def test_zstd_bomb_is_stopped_near_the_limit(impl: types.SimpleNamespace) -> None:
    bomb = zstd_zeros_bomb()
    inflator = impl.inflate.ZstdStreamInflator(MiB)
    peak = peak_allocation(lambda: inflator.feed(bomb))
    assert peak < 3 * MiB, f"a 200 MB bomb with a 1 MiB cap allocated {peak} bytes"
    with pytest.raises(errors.GatewayTransportError, match=r"more than the 1048576 byte limit"):
        impl.inflate.ZstdStreamInflator(MiB).feed(bomb)


@needs_zstd
def test_zstd_refuses_a_window_far_beyond_the_limit(impl: types.SimpleNamespace) -> None:
    # A 64 MiB window would be allocated up front, however small the messages are.
    (frame,) = zstd_stream([payload(1)], window_log=26)
    with pytest.raises(errors.GatewayTransportError, match="corrupt"):
        impl.inflate.ZstdStreamInflator(MiB).feed(frame)
    assert impl.inflate.ZstdStreamInflator().feed(frame) == payload(1)


@needs_zstd
def test_zstd_corrupt_then_reset(impl: types.SimpleNamespace) -> None:
    inflator = impl.inflate.ZstdStreamInflator()
    with pytest.raises(errors.GatewayTransportError, match="zstd-stream: corrupt"):
        inflator.feed(b"definitely not zstd")
    inflator.reset()
    assert feed_all(inflator, zstd_stream([payload(1), payload(2)])) == [payload(1), payload(2)]


@needs_zstd
def test_zstd_output_free_frames_are_capped(impl: types.SimpleNamespace) -> None:
    # One compressed block (random raw data would stream out byte by byte instead).
    rng = random.Random(3)
    (frame,) = zstd_stream([json.dumps([rng.randrange(10**9) for _ in range(2000)]).encode()])
    assert len(frame) > 1600
    inflator = impl.inflate.ZstdStreamInflator(1000)
    assert inflator.feed(frame[:800]) is None
    with pytest.raises(errors.GatewayTransportError, match=r"1600 compressed bytes without any output"):
        inflator.feed(frame[800:1600])


def test_zstd_missing_module_says_what_to_install(impl: types.SimpleNamespace, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(impl.inflate, "_zstd", None)
    assert not impl.inflate.zstd_available()
    with pytest.raises(RuntimeError, match=r"hikari-shard\[zstd\]"):
        impl.inflate.ZstdStreamInflator()


# ----------------------------------------------------------------------------------------------
# payload compression


def test_payload_each_frame_is_a_whole_stream(impl: types.SimpleNamespace) -> None:
    inflator = impl.inflate.PayloadZlibInflator()
    for sequence in range(5):
        assert inflator.feed(zlib.compress(payload(sequence))) == payload(sequence)
        assert inflator.pending == 0
    inflator.reset()
    assert inflator.feed(zlib.compress(b"")) == b""


def test_payload_truncated_and_corrupt(impl: types.SimpleNamespace) -> None:
    inflator = impl.inflate.PayloadZlibInflator()
    whole = zlib.compress(payload(1))
    with pytest.raises(errors.GatewayTransportError, match=rf"of {len(whole) - 3} bytes is truncated"):
        inflator.feed(whole[:-3])
    with pytest.raises(errors.GatewayTransportError, match="truncated"):
        inflator.feed(b"")
    with pytest.raises(errors.GatewayTransportError, match="payload zlib: corrupt"):
        inflator.feed(b"\x00" + whole)
    # Stateless: one bad frame does not spoil the next.
    assert inflator.feed(whole) == payload(1)


def test_payload_limit_and_bomb(impl: types.SimpleNamespace) -> None:
    inflator = impl.inflate.PayloadZlibInflator(1000)
    assert inflator.feed(zlib.compress(b"p" * 1000)) == b"p" * 1000
    with pytest.raises(errors.GatewayTransportError, match=r"more than the 1000 byte limit"):
        inflator.feed(zlib.compress(b"p" * 1001))
    bomb = zeros_bomb()
    peak = peak_allocation(lambda: impl.inflate.PayloadZlibInflator(MiB).feed(bomb))
    assert peak < 3 * MiB + len(bomb), f"a 200 MB bomb with a 1 MiB cap allocated {peak} bytes"


# ----------------------------------------------------------------------------------------------
# compiled and pure agree on everything


messages_strategy = st.lists(
    st.one_of(
        st.binary(max_size=3000),
        st.builds(payload, st.integers(0, 10**6), st.integers(0, 300)),
    ),
    min_size=1,
    max_size=12,
)


@st.composite
def fragmented(draw: st.DrawFn, frames: list[bytes]) -> list[bytes]:
    """Split every frame at random points (empty pieces included)."""
    pieces: list[bytes] = []
    for frame in frames:
        cuts = sorted(draw(st.lists(st.integers(0, len(frame)), max_size=4)))
        bounds = [0, *cuts, len(frame)]
        pieces.extend(frame[start:end] for start, end in itertools.pairwise(bounds))
    return pieces


@ST_SETTINGS
@given(messages=messages_strategy, level=st.sampled_from([0, 1, 6, 9]), data=st.data())
def test_twins_agree_on_zlib_streams(
    compiled: types.SimpleNamespace, pure: types.SimpleNamespace, messages: list[bytes], level: int, data: st.DataObject
) -> None:
    frames = data.draw(fragmented(zlib_stream(messages, level)))
    expected = outcome(pure.inflate.ZlibStreamInflator(), frames)
    assert [message for message in expected[0] if message is not None] == messages
    assert outcome(compiled.inflate.ZlibStreamInflator(), frames) == expected


@ST_SETTINGS
@given(messages=messages_strategy, limit=st.integers(1, 4000), data=st.data())
def test_twins_agree_on_damaged_and_oversized_zlib_streams(
    compiled: types.SimpleNamespace, pure: types.SimpleNamespace, messages: list[bytes], limit: int, data: st.DataObject
) -> None:
    flips = data.draw(st.lists(st.tuples(st.integers(0, 10**6), st.integers(1, 255)), max_size=3))
    stream = bytearray(b"".join(zlib_stream(messages)))
    for position, mask in flips:
        stream[position % len(stream)] ^= mask
    frames = data.draw(fragmented([bytes(stream)]))
    assert outcome(compiled.inflate.ZlibStreamInflator(limit), frames) == outcome(
        pure.inflate.ZlibStreamInflator(limit), frames
    )
    payloads = [zlib.compress(message) for message in messages]
    if flips:
        payloads[0] = bytes(stream[: len(payloads[0])])
    assert outcome(compiled.inflate.PayloadZlibInflator(limit), payloads) == outcome(
        pure.inflate.PayloadZlibInflator(limit), payloads
    )


@needs_zstd
@ST_SETTINGS
@given(messages=messages_strategy, limit=st.integers(1, 4000), data=st.data())
def test_twins_agree_on_zstd_streams(
    compiled: types.SimpleNamespace,
    pure: types.SimpleNamespace,
    messages: list[bytes],
    limit: int,
    data: st.DataObject,
) -> None:
    frames = data.draw(fragmented(zstd_stream(messages)))
    expected = outcome(pure.inflate.ZstdStreamInflator(), frames)
    assert b"".join(message for message in expected[0] if message is not None) == b"".join(messages)
    assert outcome(compiled.inflate.ZstdStreamInflator(), frames) == expected
    assert outcome(compiled.inflate.ZstdStreamInflator(limit), frames) == outcome(
        pure.inflate.ZstdStreamInflator(limit), frames
    )
