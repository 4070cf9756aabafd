"""Peak memory of inflating one large message: a decompression bomb, and a ~4.5 MiB GUILD_CREATE.

Each measurement runs in a fresh subprocess (``python benchmarks/inflate_memory.py``), which reads
the compressed frame from a file, makes the inflator, warms it up with one small message, and
only then feeds the large frame, so what it reports is that one call's growth:

* ``rss``: the process's peak resident memory during the call minus its resident memory just
  before it, in MiB: Linux's ``VmHWM`` (what ``ru_maxrss`` reports, but of this process's own
  memory: ``ru_maxrss`` keeps the parent's peak across ``exec``), reset to the current size by
  writing ``5`` to ``/proc/self/clear_refs`` before the call.  Counts every allocator, and
  transient copies inside ``realloc``.
* ``traced``: ``tracemalloc``'s peak during the call minus its size before (the buffers of both
  builds use Python's allocator), in MiB.  Its own process, so tracing does not disturb ``rss``.

The decompressed message itself stays alive until the call returns, so a peak a little over the
message's size is the floor: ``message`` is that size.  The bomb is 200 MiB of zeros against the
default 64 MiB ``max_message_size``: the call raises, and what it allocated on the way counts.

Usage::

    .venv/bin/python benchmarks/inflate_memory.py                       # every row, both builds
    .venv/bin/python benchmarks/inflate_memory.py --impl compiled --case guild

Linux only (``/proc/self/status``, ``/proc/self/clear_refs``).
"""

from __future__ import annotations

import argparse
import gc
import importlib
import pathlib
import random
import subprocess
import sys
import tempfile
import time
import typing
import zlib

MiB: typing.Final = 1024 * 1024
GUILD_BYTES: typing.Final = int(4.5 * MiB)
BOMB_BYTES: typing.Final = 200 * MiB
IMPLS: typing.Final = {"compiled": "hikari_shard._fastpath.inflate", "pure": "hikari_shard._pure.inflate"}
INFLATORS: typing.Final = {"zlib-stream": "ZlibStreamInflator", "zstd-stream": "ZstdStreamInflator"}


def _zstd() -> typing.Any:
    try:
        from compression import zstd  # type: ignore[import-not-found]
    except ImportError:
        from backports import zstd  # type: ignore[no-redef]
    return zstd


def _guild_create() -> bytes:
    import orjson

    from hikari_shard.testing import corpus

    data = corpus.large_guild_create(random.Random(24), 81384788765712384, target_bytes=GUILD_BYTES)
    return orjson.dumps({"op": 0, "s": 2, "t": "GUILD_CREATE", "d": data})


WARM_UP: typing.Final = b'{"op":11}'
"""The small message each stream starts with (the inflator as a connection leaves it: its scratch exists)."""


def _stream(scheme: str, large: typing.Iterable[bytes]) -> tuple[bytes, bytes]:
    """Two frames of one ``scheme`` stream: :data:`WARM_UP`, then the concatenation of ``large``."""
    if scheme == "zlib-stream":
        compressor = zlib.compressobj(9)
        first = compressor.compress(WARM_UP) + compressor.flush(zlib.Z_SYNC_FLUSH)
        return first, b"".join(map(compressor.compress, large)) + compressor.flush(zlib.Z_SYNC_FLUSH)
    zstd = _zstd()
    zcompressor = zstd.ZstdCompressor()
    first = zcompressor.compress(WARM_UP) + zcompressor.flush(zstd.ZstdCompressor.FLUSH_BLOCK)
    return first, b"".join(map(zcompressor.compress, large)) + zcompressor.flush(zstd.ZstdCompressor.FLUSH_BLOCK)


def build_inputs(directory: pathlib.Path, schemes: list[str]) -> dict[tuple[str, str], tuple[pathlib.Path, int]]:
    """Write each case's two frames to ``directory``: ``(scheme, case) -> (path, decompressed size)``."""
    guild = _guild_create()
    inputs = {}
    for scheme in schemes:
        for case, chunks, size in (
            ("guild", [guild], len(guild)),
            ("bomb", (bytes(MiB) for _ in range(BOMB_BYTES // MiB)), BOMB_BYTES),
        ):
            first, large = _stream(scheme, chunks)
            path = directory / f"{scheme}-{case}.bin"
            path.write_bytes(len(first).to_bytes(4, "little") + first + large)
            inputs[scheme, case] = (path, size)
    return inputs


def _status(field: str) -> int:
    """A ``kB`` line of ``/proc/self/status`` (``VmRSS``, ``VmHWM``), in bytes."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise LookupError(field)


def child(impl: str, scheme: str, path: str, mode: str) -> None:
    """Feed the frame at ``path`` once and print the growth: ``<bytes> <seconds> <message length or -1>``."""
    import tracemalloc

    from hikari import errors

    inflate = importlib.import_module(IMPLS[impl])
    inflator = getattr(inflate, INFLATORS[scheme])()
    data = pathlib.Path(path).read_bytes()
    split = 4 + int.from_bytes(data[:4], "little")
    first, frame = data[4:split], data[split:]
    del data
    assert inflator.feed(first) == WARM_UP
    gc.collect()
    gc.disable()
    if mode == "traced":
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
    else:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as clear_refs:
            clear_refs.write("5")  # VmHWM := VmRSS
        before = _status("VmRSS")
    started = time.perf_counter()
    try:
        length = len(inflator.feed(frame) or b"")
    except errors.GatewayTransportError:
        length = -1
    elapsed = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1] if mode == "traced" else _status("VmHWM")
    growth = peak - before
    print(growth, elapsed, length)


def measure(impl: str, scheme: str, path: pathlib.Path, mode: str) -> tuple[int, float, int]:
    done = subprocess.run(
        [sys.executable, __file__, "--child", impl, scheme, str(path), mode],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    growth, elapsed, length = done.stdout.split()
    return int(growth), float(elapsed), int(length)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--impl", default="compiled,pure", help="compiled, pure (comma-separated)")
    parser.add_argument("--scheme", default="zlib-stream,zstd-stream", help="zlib-stream, zstd-stream")
    parser.add_argument("--case", default="bomb,guild", help="bomb, guild")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    schemes = args.scheme.split(",")
    from hikari_shard._fastpath import inflate as compiled

    print(f"compiled: zlib-stream by {compiled.STREAM_DECOMPRESSOR}, zstd-stream by {compiled.ZSTD_DECOMPRESSOR}")
    print(f"{'impl':9} {'scheme':12} {'case':6} {'message MiB':>11} {'rss MiB':>8} {'traced MiB':>10} {'ms':>7}")
    with tempfile.TemporaryDirectory() as directory:
        inputs = build_inputs(pathlib.Path(directory), schemes)
        for impl in args.impl.split(","):
            for scheme in schemes:
                for case in args.case.split(","):
                    path, _ = inputs[scheme, case]
                    rss, elapsed, length = measure(impl, scheme, path, "rss")
                    traced, _, _ = measure(impl, scheme, path, "traced")
                    message = "refused" if length < 0 else f"{length / MiB:.2f}"
                    print(
                        f"{impl:9} {scheme:12} {case:6} {message:>11} {rss / MiB:8.2f} {traced / MiB:10.2f} "
                        f"{elapsed * 1000:7.1f}",
                        flush=True,
                    )


if __name__ == "__main__":
    main()
