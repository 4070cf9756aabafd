"""What recording costs the receive path: the router over a zlib-stream, not recording vs recording.

Feeds the same compressed corpus (``--dispatches``, seed 0) through a fresh router of each
implementation, full decode and selective decode, alternately without a recorder and with
:func:`hikari_shard.record`'s callback attached, ``--rounds`` times each, and prints the fastest
round of each (the least disturbed by other processes) in microseconds per dispatch, with the
ratio.  Writing the file (redaction included) happens at close, off the hot path, and is timed
separately.

Wall-clock time on a shared machine is noisy; ``--instructions`` counts instead, under callgrind
like ``instructions.py``: one pass over a ``--small`` and a ``--large`` stream, recorder off and on,
and the difference per dispatch (set-up excluded).

Usage (from ``./dev build``'s .venv)::

    .venv/bin/python benchmarks/record_overhead.py --dispatches 5000 --rounds 15
    .venv/bin/python benchmarks/record_overhead.py --instructions --small 1000 --large 3000
"""

from __future__ import annotations

import argparse
import logging
import os
import pathlib
import pickle
import subprocess
import sys
import tempfile
import time
import typing

import orjson

sys.path.insert(0, str(pathlib.Path(__file__).parent))

from bench_helpers import compress_stream, load
from hikari_shard import recorder
from hikari_shard.bench import recording
from hikari_shard.testing import build_corpus
from hikari_shard.testing.hot_paths import make_router
from instructions import collected

WANTED: typing.Final = ("MESSAGE_CREATE", "INTERACTION_CREATE")
_LOGGER: typing.Final = logging.getLogger("record_overhead")


def _run(modules: typing.Any, frames: list[bytes], *, selective: bool, record_to: typing.Any) -> float:
    router = make_router(
        modules,
        wanting=WANTED if selective else None,
        inflator=modules.inflate.ZlibStreamInflator(),
        expect_binary=True,
        logger=_LOGGER,
    )
    if record_to is not None:
        router.recorder = record_to._callback
    feed = router.feed_frame
    start = time.perf_counter()
    for frame in frames:
        feed(2, frame)
    return time.perf_counter() - start


def _frames(dispatches: int) -> tuple[list[bytes], list[bytes]]:
    corpus = build_corpus(seed=0, dispatches=dispatches)
    payloads = [recording.envelope(n, s, orjson.dumps(d)) for s, (n, d) in enumerate(corpus.dispatches, 2)]
    return payloads, compress_stream("zlib-stream", payloads)


def _run_once(client: str, frames_file: str, selective: bool, record: bool) -> None:
    frames = pickle.loads(pathlib.Path(frames_file).read_bytes())
    with tempfile.TemporaryDirectory() as directory:
        handle = recorder.Recording(
            None, pathlib.Path(directory) / "r.jsonl", limit_bytes=1 << 30, duration=None, redact=True
        )
        _run(load(client), frames, selective=selective, record_to=handle if record else None)


def _instructions(args: argparse.Namespace) -> None:
    print(f"instructions per dispatch (marginal between {args.small} and {args.large} dispatches, seed 0)")
    print(f"{'client':9} {'decode':10} {'off':>10} {'recording':>10} {'ratio':>7}")
    # The streams are compressed here, once: the process under callgrind only unpickles and routes them.
    directory = tempfile.mkdtemp()
    files = {}
    for size in (args.small, args.large):
        files[size] = pathlib.Path(directory) / f"frames-{size}.pickle"
        files[size].write_bytes(pickle.dumps(_frames(size)[1]))
    for client in args.client.split(","):
        for selective in (False, True):
            per: dict[bool, float] = {}
            for record in (False, True):
                counts = []
                for size in (args.small, args.large):
                    run = [client, str(files[size]), str(int(selective)), str(int(record))]
                    command = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable]
                    done = subprocess.run(
                        [*command, __file__, "--run", *run], capture_output=True, check=True, env=dict(os.environ)
                    )
                    counts.append(collected(done.stderr))
                per[record] = (counts[1] - counts[0]) / (args.large - args.small)
            mode = "selective" if selective else "full"
            print(f"{client:9} {mode:10} {per[False]:10,.0f} {per[True]:10,.0f} {per[True] / per[False]:7.3f}")


def main() -> None:
    """Run the measurement and print the table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dispatches", type=int, default=5_000)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--client", default="compiled,pure")
    parser.add_argument("--instructions", action="store_true", help="count instructions under callgrind instead")
    parser.add_argument("--small", type=int, default=1_000)
    parser.add_argument("--large", type=int, default=3_000)
    parser.add_argument("--run", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        client, frames_file, selective, record = args.run
        _run_once(client, frames_file, selective == "1", record == "1")
        return
    if args.instructions:
        _instructions(args)
        return
    payloads, frames = _frames(args.dispatches)
    print(f"{len(payloads)} dispatches, {sum(map(len, payloads)) / 1e6:.1f} MB of JSON, best of {args.rounds} rounds")
    print(f"{'client':9} {'decode':10} {'off us/disp':>12} {'recording':>10} {'ratio':>7}")
    with tempfile.TemporaryDirectory() as directory:
        for client in args.client.split(","):
            modules = load(client)
            for selective in (False, True):
                best = {"off": float("inf"), "on": float("inf")}
                for number in range(args.rounds):
                    best["off"] = min(best["off"], _run(modules, frames, selective=selective, record_to=None))
                    target = pathlib.Path(directory) / f"{client}-{selective}-{number}.jsonl"
                    handle = recorder.Recording(None, target, limit_bytes=1 << 30, duration=None, redact=True)
                    best["on"] = min(best["on"], _run(modules, frames, selective=selective, record_to=handle))
                    assert handle.dispatches == len(payloads)
                    if number == 0:
                        start = time.perf_counter()
                        handle.close()
                        closing = time.perf_counter() - start
                off, on = (best[key] / len(payloads) * 1e6 for key in ("off", "on"))
                mode = "selective" if selective else "full"
                print(f"{client:9} {mode:10} {off:12.2f} {on:10.2f} {on / off:7.3f}")
                print(f"{'':9} {'':10} close (redact + write {len(payloads)} lines): {closing:.2f} s")


if __name__ == "__main__":
    main()
