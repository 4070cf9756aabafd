"""Peak memory of the C-API decompressors (``zlibng``, ``libzstd``) on one large output.

Both allocate with Python's allocator (``PyMem_Realloc`` for the scratch buffer, ``bytes`` for the
result), so ``tracemalloc`` sees every byte of their output buffers.  Output over the 1 MiB
scratch goes into the result ``bytes`` directly, grown in 1 MiB steps: one call's peak is its
output plus at most the scratch and one step, never twice the output (the scratch used to double
and then be copied, so a bomb peaked at twice ``max_length``).  These bounds are on memory, not
time.  ``benchmarks/inflate_memory.py`` measures the same in fresh processes, resident memory too.
"""

from __future__ import annotations

import random
import tracemalloc
import types
import typing
import zlib

import pytest

from helpers import load_c_api_module

try:
    from compression import zstd  # type: ignore[import-not-found]
except ImportError:
    try:
        from backports import zstd  # type: ignore[no-redef]
    except ImportError:
        zstd = None

MiB: typing.Final = 1024 * 1024
CAP: typing.Final = 16 * MiB
"""The bombs' ``max_length`` (a quarter of the default 64 MiB message cap, to keep the test quick)."""
LARGE: typing.Final = 4 * MiB + 512 * 1024
"""A start-up GUILD_CREATE's size."""
SCRATCH: typing.Final = MiB + 1024
"""What a decompressor keeps between calls once it has inflated 1 MiB: its scratch buffer."""
OVERHEAD: typing.Final = 2 * MiB + 512 * 1024
"""The most one call may allocate beyond its output: the 1 MiB scratch, one 1 MiB step, and slack."""


@pytest.fixture(scope="module")
def zlibng() -> types.ModuleType:
    return load_c_api_module("zlibng")


@pytest.fixture(scope="module")
def libzstd() -> types.ModuleType:
    if zstd is None:
        pytest.skip("no zstd module (install hikari-shard[zstd])")
    return load_c_api_module("libzstd", verified=zstd.__name__ == "backports.zstd")


def large_message() -> bytes:
    """``LARGE`` bytes that compress about as well as gateway JSON (to roughly a third)."""
    rng = random.Random(24)
    words = [rng.randbytes(rng.randrange(2, 9)).hex().encode() for _ in range(4000)]
    return b" ".join(rng.choices(words, k=LARGE // 8))[:LARGE]


def zlib_frames(*messages: bytes) -> list[bytes]:
    compressor = zlib.compressobj(9)
    return [compressor.compress(message) + compressor.flush(zlib.Z_SYNC_FLUSH) for message in messages]


def zstd_frames(*messages: bytes) -> list[bytes]:
    assert zstd is not None
    compressor = zstd.ZstdCompressor()
    return [compressor.compress(message) + compressor.flush(zstd.ZstdCompressor.FLUSH_BLOCK) for message in messages]


def zeros(size: int) -> typing.Iterator[bytes]:
    for _ in range(size // MiB):
        yield bytes(MiB)


def zlib_bomb() -> list[bytes]:
    """A small message, then 4 * CAP of zeros (about 64 KB compressed), as one stream."""
    compressor = zlib.compressobj(9)
    first = compressor.compress(b'{"op":11}') + compressor.flush(zlib.Z_SYNC_FLUSH)
    bomb = b"".join(map(compressor.compress, zeros(4 * CAP))) + compressor.flush(zlib.Z_SYNC_FLUSH)
    return [first, bomb]


def zstd_bomb() -> list[bytes]:
    assert zstd is not None
    compressor = zstd.ZstdCompressor()
    first = compressor.compress(b'{"op":11}') + compressor.flush(zstd.ZstdCompressor.FLUSH_BLOCK)
    bomb = b"".join(map(compressor.compress, zeros(4 * CAP))) + compressor.flush(zstd.ZstdCompressor.FLUSH_BLOCK)
    return [first, bomb]


def peak_of(function: typing.Callable[[], bytes]) -> tuple[int, int, bytes]:
    """``function()``'s peak traced allocation, what it still holds after returning, and its result."""
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        result = function()
        current, peak = tracemalloc.get_traced_memory()
        return peak - before, current - before, result
    finally:
        tracemalloc.stop()


def decompressors(
    zlibng: types.ModuleType, libzstd: types.ModuleType | None
) -> list[tuple[str, typing.Any, typing.Any]]:
    pairs = [("zlibng", zlibng.decompressobj(), zlib_frames)]
    if libzstd is not None:
        pairs.append(("libzstd", libzstd.Decompressor(27), zstd_frames))
    return pairs


@pytest.mark.parametrize("library", ["zlibng", "libzstd"])
def test_a_bomb_peaks_at_the_limit_not_twice_it(library: str, request: pytest.FixtureRequest) -> None:
    module = request.getfixturevalue(library)
    first, bomb = zlib_bomb() if library == "zlibng" else zstd_bomb()
    decompress = (module.decompressobj() if library == "zlibng" else module.Decompressor(27)).decompress
    assert decompress(first) == b'{"op":11}'  # the scratch exists, as on a live connection
    peak, held, message = peak_of(lambda: decompress(bomb, CAP + 1))
    assert message == bytes(CAP + 1)
    assert held <= CAP + 1 + SCRATCH  # the result trimmed to size, and the scratch, grown to 1 MiB and kept
    assert peak < CAP + OVERHEAD, f"{library}: a bomb against a {CAP} byte limit peaked at {peak} bytes"


@pytest.mark.parametrize("library", ["zlibng", "libzstd"])
def test_a_large_message_peaks_at_its_size_plus_a_constant(library: str, request: pytest.FixtureRequest) -> None:
    module = request.getfixturevalue(library)
    message = large_message()
    frames = zlib_frames(b'{"op":11}', message) if library == "zlibng" else zstd_frames(b'{"op":11}', message)
    decompress = (module.decompressobj() if library == "zlibng" else module.Decompressor(27)).decompress
    assert decompress(frames[0]) == b'{"op":11}'
    peak, held, result = peak_of(lambda: decompress(frames[1], 64 * MiB + 1))
    assert result == message
    assert held <= len(message) + SCRATCH
    assert peak < len(message) + OVERHEAD, f"{library}: a {len(message)} byte message peaked at {peak} bytes"


def test_the_compiled_inflators_keep_the_bounds(compiled: types.SimpleNamespace) -> None:
    """Through ``ZlibStreamInflator`` / ``ZstdStreamInflator`` of the compiled build, where they use the C APIs."""
    inflate = compiled.inflate
    if not inflate.STREAM_DECOMPRESSOR.endswith("(C API)"):
        pytest.skip("the compiled zlib-stream inflator does not use zlib-ng's C API here")
    message = large_message()
    inflator = inflate.ZlibStreamInflator()
    first, frame = zlib_frames(b'{"op":11}', message)
    assert inflator.feed(first) == b'{"op":11}'
    peak, _, result = peak_of(lambda: inflator.feed(frame))
    assert result == message
    assert peak < len(message) + OVERHEAD
    if inflate.ZSTD_DECOMPRESSOR is not None and inflate.ZSTD_DECOMPRESSOR.endswith("(C API)"):
        zinflator = inflate.ZstdStreamInflator()
        first, frame = zstd_frames(b'{"op":11}', message)
        assert zinflator.feed(first) == b'{"op":11}'
        peak, _, result = peak_of(lambda: zinflator.feed(frame))
        assert result == message
        assert peak < len(message) + OVERHEAD


@pytest.mark.parametrize("library", ["zlibng", "libzstd"])
def test_an_error_after_the_output_moved_into_its_bytes_frees_it(library: str, request: pytest.FixtureRequest) -> None:
    """Corrupt data 2 MiB into a message: the error is raised, and the partial result is not kept."""
    module = request.getfixturevalue(library)
    message = large_message()
    if library == "zlibng":
        (frame,) = zlib_frames(message)
        decompress, error = module.decompressobj().decompress, module.error
        # Stored deflate blocks would pass anything: damage the Huffman-coded data near the end.
        damaged = frame[: len(frame) * 3 // 4] + bytes(b ^ 0x55 for b in frame[len(frame) * 3 // 4 : -8]) + frame[-8:]
    else:
        (frame,) = zstd_frames(message)
        decompress, error = module.Decompressor(27).decompress, module.error
        damaged = frame[: len(frame) * 3 // 4] + bytes(b ^ 0x55 for b in frame[len(frame) * 3 // 4 :])

    def run() -> bytes:
        with pytest.raises(error):
            decompress(damaged)
        return b""

    _, held, _ = peak_of(run)
    assert held < MiB + 64 * 1024, f"{library} kept {held} bytes after the error (its scratch is 1 MiB)"


@pytest.mark.parametrize("size", [MiB - 1, MiB, MiB + 1, 2 * MiB - 1, 2 * MiB, 2 * MiB + 1, 3 * MiB + 12_345])
def test_outputs_around_the_scratch_and_step_sizes(
    zlibng: types.ModuleType, size: int, request: pytest.FixtureRequest
) -> None:
    """The same bytes out, then a small message (the scratch is the output buffer again), for both libraries."""
    libzstd = request.getfixturevalue("libzstd") if zstd is not None else None
    message = (random.Random(size).randbytes(50_000) * (size // 50_000 + 1))[:size]
    for name, decompressor, frames_of in decompressors(zlibng, libzstd):
        frames = frames_of(message, b"after", message)
        assert decompressor.decompress(frames[0]) == message, name
        assert decompressor.decompress(frames[1]) == b"after", name
        assert decompressor.decompress(frames[2], 64 * MiB) == message, name


@pytest.mark.parametrize("max_length", [MiB, MiB + 1, MiB + 2, 2 * MiB, 2 * MiB + 1, 3 * MiB - 7])
def test_max_length_past_the_scratch(zlibng: types.ModuleType, max_length: int, request: pytest.FixtureRequest) -> None:
    libzstd = request.getfixturevalue("libzstd") if zstd is not None else None
    message = bytes(range(256)) * (4 * MiB // 256)
    for name, decompressor, frames_of in decompressors(zlibng, libzstd):
        (frame,) = frames_of(message)
        assert decompressor.decompress(frame, max_length) == message[:max_length], name
