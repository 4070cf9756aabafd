"""Shared data for the benchmarks: one realistic corpus, encoded the ways the gateway sends it.

Run with ``PYTHONPATH=src python -m pytest benchmarks/ --benchmark-only``.  Each hot path is
measured for our compiled implementation, its pure twin and, where hikari has one, the code path
hikari 2.7's shard runs for the same job; ``benchmark.group`` puts the three side by side.
"""

from __future__ import annotations

import orjson
import pytest

from bench_helpers import DISPATCHES, SEED, compress_stream, zstd_module
from hikari_shard.bench import recording
from hikari_shard.testing import corpus, encode_frame


@pytest.fixture(scope="session")
def payloads() -> list[bytes]:
    """The dispatch stream, one whole gateway payload (JSON) per message, as the gateway sends it."""
    generated = corpus.build_corpus(seed=SEED, dispatches=DISPATCHES)
    return [
        recording.envelope(name, seq, orjson.dumps(data)) for seq, (name, data) in enumerate(generated.dispatches, 2)
    ]


@pytest.fixture(scope="session")
def zlib_frames(payloads: list[bytes]) -> list[bytes]:
    """The stream as zlib-stream websocket messages: one deflate context, a sync flush per payload."""
    return compress_stream("zlib-stream", payloads)


@pytest.fixture(scope="session")
def zstd_frames(payloads: list[bytes]) -> list[bytes]:
    """The stream as zstd-stream websocket messages: one frame, a flushed block per payload."""
    if zstd_module is None:
        pytest.skip("no zstd module")
    return compress_stream("zstd-stream", payloads)


@pytest.fixture(scope="session")
def socket_chunks(zlib_frames: list[bytes]) -> list[bytes]:
    """The zlib-stream messages as binary websocket frames, cut into 64 KiB reads like a TCP socket's."""
    wire = b"".join(encode_frame(2, frame) for frame in zlib_frames)
    size = 64 * 1024
    return [wire[start : start + size] for start in range(0, len(wire), size)]
