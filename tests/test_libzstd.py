"""``hikari_shard._fastpath.libzstd``: libzstd's C API under the compiled zstd-stream inflator.

It replaces ``ZstdDecompressor(...).decompress`` of the zstd module there, so it must give the same
bytes on every stream the inflator can hand it (flushed blocks, any size, any bytes-like type, with
and without ``max_length``), honour the window cap, and fail with ``ZstdError`` where that fails.
"""

from __future__ import annotations

import random
import types
import typing

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import DAMAGE_MESSAGES, load_c_api_module, outcomes_after_damage
from hikari_shard import _fast

try:
    from compression import zstd  # type: ignore[import-not-found]
except ImportError:
    try:
        from backports import zstd  # type: ignore[no-redef]
    except ImportError:
        zstd = None

pytestmark = pytest.mark.skipif(zstd is None, reason="no zstd module (install hikari-shard[zstd])")
WINDOW_LOG: int = 27


@pytest.fixture(scope="module")
def libzstd() -> types.ModuleType:
    # Verified for backports.zstd's wheels; Python 3.14's own _zstd may link libzstd in other ways.
    return load_c_api_module("libzstd", verified=zstd is not None and zstd.__name__ == "backports.zstd")


def flushed(messages: list[bytes], **options: int) -> list[bytes]:
    parameters = {getattr(zstd.CompressionParameter, name): value for name, value in options.items()}
    compressor = zstd.ZstdCompressor(options=parameters or None)
    return [compressor.compress(message) + compressor.flush(zstd.ZstdCompressor.FLUSH_BLOCK) for message in messages]


def reference() -> typing.Any:
    return zstd.ZstdDecompressor(options={zstd.DecompressionParameter.window_log_max: WINDOW_LOG})


def test_the_compiled_inflator_uses_it(libzstd: types.ModuleType) -> None:
    assert f"libzstd {libzstd.ZSTD_VERSION} (C API)" == _fast.load("compiled").inflate.ZSTD_DECOMPRESSOR
    assert _fast.load("pure").inflate.ZSTD_DECOMPRESSOR.endswith(".ZstdDecompressor")
    assert libzstd.error is zstd.ZstdError
    assert ".".join(str(part) for part in zstd.zstd_version_info) == libzstd.ZSTD_VERSION


@settings(max_examples=60, deadline=None)
@given(st.lists(st.binary(max_size=3000), min_size=1, max_size=8), st.integers(1, 19))
def test_same_bytes_as_the_zstd_module(libzstd: types.ModuleType, messages: list[bytes], level: int) -> None:
    ours, theirs = libzstd.Decompressor(WINDOW_LOG), reference()
    for frame in flushed(messages, compression_level=level):
        assert ours.decompress(frame) == theirs.decompress(frame)


@pytest.mark.parametrize("size", [0, 1, 65_535, 65_536, 65_537, 300_000, 3 * 1024 * 1024])
def test_sizes_around_the_scratch_and_gil_thresholds(libzstd: types.ModuleType, size: int) -> None:
    message = (random.Random(size).randbytes(70_000) * (size // 70_000 + 1))[:size]
    decompress = libzstd.Decompressor(WINDOW_LOG).decompress
    frames = flushed([message, b"after", message], window_log=16)  # a small window: repeats stay long
    assert [decompress(frame) for frame in frames] == [message, b"after", message]


def test_a_block_split_over_frames(libzstd: types.ModuleType) -> None:
    (frame,) = flushed([b"x" * 5000 + bytes(range(256)) * 40])
    decompress = libzstd.Decompressor(WINDOW_LOG).decompress
    outputs = [decompress(frame[:10]), decompress(frame[10:-3]), decompress(frame[-3:])]
    assert b"".join(outputs) == b"x" * 5000 + bytes(range(256)) * 40
    theirs = reference().decompress
    assert [len(part) for part in outputs] == [
        len(theirs(frame[:10])),
        *[len(theirs(part)) for part in (frame[10:-3], frame[-3:])],
    ]


def test_any_bytes_like_input(libzstd: types.ModuleType) -> None:
    frames = flushed([b'{"op":11}', b'{"op":1}', b'{"op":7}'])
    decompress = libzstd.Decompressor(WINDOW_LOG).decompress
    assert decompress(bytearray(frames[0])) == b'{"op":11}'
    assert decompress(memoryview(frames[1])) == b'{"op":1}'
    assert decompress(memoryview(b"xx" + frames[2])[2:]) == b'{"op":7}'
    with pytest.raises(TypeError):
        decompress("not bytes")


@pytest.mark.parametrize("max_length", [0, 1, 100, 65_536, 65_537, 10**6])
def test_max_length_bounds_the_output(libzstd: types.ModuleType, max_length: int) -> None:
    message = b"a" * 200_000
    (frame,) = flushed([message])
    assert libzstd.Decompressor(WINDOW_LOG).decompress(frame, max_length) == message[:max_length]
    assert libzstd.Decompressor(WINDOW_LOG).decompress(frame, -1) == message


def test_window_beyond_the_cap_is_refused(libzstd: types.ModuleType) -> None:
    (frame,) = flushed([b"y" * 1000], window_log=WINDOW_LOG + 1)
    with pytest.raises(zstd.ZstdError):
        reference().decompress(frame)
    with pytest.raises(zstd.ZstdError, match="Frame requires too much memory"):
        libzstd.Decompressor(WINDOW_LOG).decompress(frame)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_damaged_streams_fail_like_the_zstd_module(libzstd: types.ModuleType, data: st.DataObject) -> None:
    """Flipped bytes in a later message: the zstd module and libzstd give the same bytes, or both raise ZstdError."""
    frames = flushed(DAMAGE_MESSAGES)
    decompressors = (reference(), libzstd.Decompressor(WINDOW_LOG))
    outcomes = outcomes_after_damage(data.draw, frames, decompressors, zstd.ZstdError)
    assert outcomes[0] == outcomes[1]


def test_end_of_frame(libzstd: types.ModuleType) -> None:
    """A finished frame (Discord's stream never finishes) sets eof; another call raises EOFError, as zstd's does."""
    whole = zstd.compress(b"the end")
    ours = libzstd.Decompressor(WINDOW_LOG)
    assert not ours.eof
    assert ours.decompress(whole) == b"the end"
    assert ours.eof
    with pytest.raises(EOFError):
        ours.decompress(b"more")
    theirs = reference()
    theirs.decompress(whole)
    with pytest.raises(EOFError):
        theirs.decompress(b"more")
