"""``hikari_shard._fastpath.zlibng``: zlib-ng's C API under the compiled zlib-stream inflator.

It replaces ``zlib_ng.decompressobj().decompress`` there, so it must give the same bytes as that on
every stream the inflator can hand it (whole sync-flushed messages, any size, any bytes-like type,
with and without ``max_length``) and fail with ``zlib_ng.error`` where that fails.  It does not
import where zlib-ng's C API cannot be reached (Windows); where the extensions are required on
Linux, it must import (tests/helpers.py: load_c_api_module).
"""

from __future__ import annotations

import random
import subprocess
import sys
import types
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from zlib_ng import zlib_ng

from helpers import DAMAGE_MESSAGES, load_c_api_module, outcomes_after_damage
from hikari_shard import _fast


@pytest.fixture(scope="module")
def zlibng() -> types.ModuleType:
    return load_c_api_module("zlibng")


def sync_flushed(messages: list[bytes], level: int = 6) -> list[bytes]:
    compressor = zlib.compressobj(level)
    return [compressor.compress(message) + compressor.flush(zlib.Z_SYNC_FLUSH) for message in messages]


def test_the_compiled_inflator_uses_it(zlibng: types.ModuleType) -> None:
    compiled = _fast.load("compiled").inflate
    assert f"zlib-ng {zlibng.ZLIBNG_VERSION} (C API)" == compiled.STREAM_DECOMPRESSOR
    assert zlibng.ZLIBNG_VERSION == zlib_ng.ZLIBNG_RUNTIME_VERSION
    assert _fast.load("pure").inflate.STREAM_DECOMPRESSOR.endswith(".decompressobj")
    assert zlibng.error is zlib_ng.error


@settings(max_examples=60, deadline=None)
@given(st.lists(st.binary(max_size=3000), min_size=1, max_size=8), st.integers(0, 9))
def test_same_bytes_as_zlib_message_by_message(zlibng: types.ModuleType, messages: list[bytes], level: int) -> None:
    ours, reference = zlibng.decompressobj(), zlib_ng.decompressobj()
    for frame in sync_flushed(messages, level):
        assert ours.decompress(frame) == reference.decompress(frame)


@pytest.mark.parametrize("size", [0, 1, 65_535, 65_536, 65_537, 300_000, 3 * 1024 * 1024])
def test_sizes_around_the_scratch_and_gil_thresholds(zlibng: types.ModuleType, size: int) -> None:
    """Outputs that fill the 64 KiB scratch exactly, grow it, and pass the 1 MiB kept; inputs over 64 KiB."""
    # Random bytes repeated at a distance beyond zlib's 32 KiB window: the frames are about as long
    # as the messages, so the larger ones also take the GIL-releasing path.
    message = (random.Random(size).randbytes(70_000) * (size // 70_000 + 1))[:size]
    decompress = zlibng.decompressobj().decompress
    frames = sync_flushed([message, b"after", message])
    assert (len(frames[0]) >= 65_536) is (size >= 65_500)  # stored blocks add a few bytes
    assert [decompress(frame) for frame in frames] == [message, b"after", message]


def test_any_bytes_like_input(zlibng: types.ModuleType) -> None:
    frames = sync_flushed([b'{"op":11}', b'{"op":1}', b'{"op":7}'])
    decompress = zlibng.decompressobj().decompress
    assert decompress(bytearray(frames[0])) == b'{"op":11}'
    assert decompress(memoryview(frames[1])) == b'{"op":1}'
    assert decompress(memoryview(b"xx" + frames[2])[2:]) == b'{"op":7}'
    with pytest.raises(TypeError):
        decompress("not bytes")
    with pytest.raises(BufferError):
        decompress(memoryview(bytes(8))[::2])


@pytest.mark.parametrize("max_length", [1, 100, 65_536, 65_537, 10**6])
def test_max_length_bounds_the_output(zlibng: types.ModuleType, max_length: int) -> None:
    message = b"a" * 200_000
    (frame,) = sync_flushed([message])
    assert zlibng.decompressobj().decompress(frame, max_length) == message[:max_length]
    assert zlibng.decompressobj().decompress(frame, 0) == message  # 0 or less: no bound, like zlib
    assert zlibng.decompressobj().decompress(frame, -1) == message


def test_corrupt_data_is_zlib_error_and_stays_broken(zlibng: types.ModuleType) -> None:
    decompress = zlibng.decompressobj().decompress
    with pytest.raises(zlib_ng.error, match=r"Error -3 while decompressing data: incorrect header check"):
        decompress(b"\xff" * 16)
    good = sync_flushed([b"fine"])[0]
    with pytest.raises(zlib_ng.error):
        decompress(good)  # the stream is past its header: zlib keeps failing, as zlib's object does


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"x\xf9\x00\x00\x00\xff\xff", id="preset dictionary (Z_NEED_DICT, no message)"),
        pytest.param(b"\xff" * 16, id="bad header (a message)"),
    ],
)
def test_errors_read_as_zlib_ngs(zlibng: types.ModuleType, data: bytes) -> None:
    # The same text as zlib_ng's wrapper: the shard's GatewayTransportError quotes it, in both builds.
    with pytest.raises(zlib_ng.error) as theirs:
        zlib_ng.decompressobj().decompress(data)
    with pytest.raises(zlib_ng.error) as ours:
        zlibng.decompressobj().decompress(data)
    assert str(ours.value) == str(theirs.value)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_damaged_streams_fail_like_zlib(zlibng: types.ModuleType, data: st.DataObject) -> None:
    """Flipped bytes in a later message: zlib_ng and zlibng give the same bytes, or both raise zlib_ng.error."""
    frames = sync_flushed(DAMAGE_MESSAGES)
    decompressors = (zlib_ng.decompressobj(), zlibng.decompressobj())
    outcomes = outcomes_after_damage(data.draw, frames, decompressors, zlib_ng.error)
    assert outcomes[0] == outcomes[1]


def test_truncated_input_gives_what_it_can(zlibng: types.ModuleType) -> None:
    (frame,) = sync_flushed([b"x" * 5000 + bytes(range(256)) * 20])
    for cut in (1, 2, 10, len(frame) // 2, len(frame) - 1):
        assert zlibng.decompressobj().decompress(frame[:cut]) == zlib_ng.decompressobj().decompress(frame[:cut])


def test_end_of_stream(zlibng: types.ModuleType) -> None:
    """A finished stream (Discord's never finishes) sets eof; what follows the end is ignored."""
    whole = zlib.compress(b"the end")
    ours = zlibng.decompressobj()
    assert not ours.eof
    assert ours.decompress(whole + b"trailing") == b"the end"
    assert ours.eof
    assert ours.decompress(b"more") == b""
    assert ours.decompress(b"") == b""


def test_without_the_c_apis_the_compiled_inflators_fall_back() -> None:
    """Where zlibng and libzstd do not import (Windows), the compiled inflators use the modules' own objects."""
    pytest.importorskip("hikari_shard._fastpath.inflate")
    script = """
import sys
sys.modules["hikari_shard._fastpath.zlibng"] = None  # importing it now raises ImportError
sys.modules["hikari_shard._fastpath.libzstd"] = None
import zlib
from hikari_shard._fastpath import inflate
assert inflate.STREAM_DECOMPRESSOR == "zlib_ng.zlib_ng.decompressobj", inflate.STREAM_DECOMPRESSOR
assert inflate.ZSTD_DECOMPRESSOR in {None, "backports.zstd.ZstdDecompressor", "compression.zstd.ZstdDecompressor"}
compressor = zlib.compressobj()
frames = [compressor.compress(m) + compressor.flush(zlib.Z_SYNC_FLUSH) for m in (b'{"op":11}', b'{"op":1}')]
inflator = inflate.ZlibStreamInflator()
assert [inflator.feed(frame) for frame in frames] == [b'{"op":11}', b'{"op":1}']
print("ok")
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
