"""Helpers shared by the benchmark modules (constants, compression, implementation loading)."""

from __future__ import annotations

import contextlib
import typing
import zlib

from hikari_shard import _fast
from hikari_shard.testing.hot_paths import load_or_skip as load

try:
    from zlib_ng import zlib_ng as deflate_module
except ImportError:  # the same API
    deflate_module = zlib  # type: ignore[assignment]

try:
    from compression import zstd as zstd_module  # Python 3.14+
except ImportError:
    try:
        from backports import zstd as zstd_module
    except ImportError:
        zstd_module = None

DISPATCHES = 2_000
"""Dispatches per benchmark call: every benchmark processes the same stream."""
SEED = 0
SUFFIX = b"\x00\x00\xff\xff"


def compress_stream(compression: str, payloads: list[bytes]) -> list[bytes]:
    """The payloads as one ``zlib-stream`` or ``zstd-stream`` connection sends them: one context, a flush each."""
    if compression == "zlib-stream":
        deflater = deflate_module.compressobj()
        return [deflater.compress(payload) + deflater.flush(zlib.Z_SYNC_FLUSH) for payload in payloads]
    if zstd_module is None:
        msg = "no zstd module"
        raise RuntimeError(msg)
    compressor = zstd_module.ZstdCompressor()
    return [compressor.compress(payload, mode=zstd_module.ZstdCompressor.FLUSH_BLOCK) for payload in payloads]


@contextlib.contextmanager
def hot_paths(name: str) -> typing.Iterator[None]:
    """Make newly built shards of this process use implementation ``name`` (test-only).

    The shard reads :mod:`hikari_shard._fast`'s attributes when it builds a connection, so swapping
    them switches the implementation in-process; ``hikari-shard bench`` instead runs the pure twin in
    a process started with ``HIKARI_SHARD_NO_EXTENSIONS=1``, as a user would.
    """
    modules = load(name)
    names = (*_fast.HOT_PATHS, "IMPLEMENTATION")
    saved = {attr: getattr(_fast, attr) for attr in names}
    for attr in _fast.HOT_PATHS:
        setattr(_fast, attr, getattr(modules, attr))
    _fast.IMPLEMENTATION = name  # type: ignore[misc]
    try:
        yield
    finally:
        for attr, value in saved.items():
            setattr(_fast, attr, value)
