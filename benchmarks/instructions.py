"""Instructions per dispatch under callgrind: hikari's stock shard, ours, and the floor under both.

Wall-clock benchmarks on a shared 2-vCPU machine spread by 30-50% between rounds; instruction
counts do not move at all.  This script runs each client of ``hikari-shard bench`` once under
``valgrind --tool=callgrind`` on a short stream and once on a long one (same corpus generator,
same seed), against the benchmark's gateway (which runs natively, in its own process).  The
difference of the two counts divided by the difference in dispatches is the marginal cost of
one dispatch: connection set-up, imports and READY cancel out.

It also counts the *floor* the same way: a tight loop over the same stream's compressed messages
that only inflates each one (zlib-ng or zstd, as our shard does) and ``orjson.loads`` it, minus
the same loop without that work.  No shard can receive a dispatch for less than the full floor,
so ``stock / floor`` is the highest speed-up any shard can reach on this corpus (a ceiling, not a
target).  The selective floor inflates everything and decodes only MESSAGE_CREATE and
INTERACTION_CREATE; hikari's own work on those (deserialising them, listener tasks) is added to
it: stock's selective cost minus stock's full-decode cost, minus what hikari's event manager spends
skipping the dispatches nothing consumes (counted on its own, ``--run-skip``; our shard never calls
it for those), so the selective ceiling is ``stock / (floor + hikari's work on consumed events)``.

Usage (needs valgrind; about 15 minutes for everything on 2 cores)::

    ./dev build    # once: .venv with the package and its compiled extensions
    .venv/bin/python benchmarks/instructions.py --scenario full,selective,bot
    .venv/bin/python benchmarks/instructions.py --scenario full --compression zstd-stream --client hikari,pure

Counted instructions are not time (cache misses, branch mispredictions and system calls are not
in them), so the wall-clock benchmark stays the measure of speed; this one says where the
instructions go and what is left to win.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import dataclasses
import json
import os
import pathlib
import pickle
import re
import shutil
import subprocess
import sys
import tempfile
import typing

SCENARIOS = ("full", "selective", "bot")
COMPRESSIONS = ("zlib-stream", "zstd-stream")
CLIENTS = ("hikari", "compiled", "pure")
CONSUMED_IN_SELECTIVE = frozenset(("MESSAGE_CREATE", "INTERACTION_CREATE"))
_COLLECTED = re.compile(rb"Collected : (\d+)")
_MIN_SMALL = 500
_MIN_SPAN = 2_000
_SKIPS_SMALL = 20_000
_SKIPS_LARGE = 120_000


def marginal(small: tuple[int, int], large: tuple[int, int]) -> float:
    """Return the instructions one more dispatch costs, from ``(dispatches, instructions)`` at two lengths."""
    (n_small, ir_small), (n_large, ir_large) = small, large
    if n_large <= n_small:
        msg = "the long stream must have more dispatches than the short one"
        raise ValueError(msg)
    return (ir_large - ir_small) / (n_large - n_small)


def collected(stderr: bytes) -> int:
    """Return the instruction count callgrind printed on ``stderr``."""
    found = _COLLECTED.findall(stderr)
    if not found:
        msg = "callgrind printed no instruction count"
        raise ValueError(msg)
    return int(found[-1])


# --- the processes that run under valgrind -------------------------------------------------------


def _run_client(spec_json: str) -> None:
    from hikari_shard.bench import client

    spec = client.RunSpec(**json.loads(spec_json))
    result = asyncio.run(client.run(spec))
    if not result.get("delivered"):
        sys.exit(f"run failed: {result.get('error') or result}")


def _run_floor(path: str, mode: str) -> None:
    import orjson

    with open(path, "rb") as file:
        compression, names, messages = pickle.load(file)
    decompress = _decompressor(compression)
    loads = orjson.loads
    sink: list[object] = [None]

    def consume(value: object) -> None:
        sink[0] = value

    if mode == "baseline":  # the loop alone, subtracted from the other two
        for message in messages:
            consume(message)
    elif mode == "full":  # inflate and decode everything
        for message in messages:
            consume(loads(decompress(message)))
    else:  # selective: inflate everything, decode only what the selective scenario consumes
        for name, message in zip(names, messages, strict=True):
            raw = decompress(message)
            consume(loads(raw) if name in CONSUMED_IN_SELECTIVE else raw)
    sink[0] = None


def _run_skip(count: str) -> None:
    import hikari
    from hikari.impl import config

    from hikari_shard.testing import make_bot_token

    bot = hikari.GatewayBot(
        make_bot_token(1),
        banner=None,
        logs=None,
        suppress_optimization_warning=True,
        intents=hikari.Intents.ALL,
        cache_settings=config.CacheSettings(components=hikari.api.CacheComponents.NONE),
    )

    async def listener(_: hikari.Event) -> None:
        return None

    bot.subscribe(hikari.MessageCreateEvent, listener)
    bot.subscribe(hikari.InteractionCreateEvent, listener)
    consume = bot.event_manager.consume_raw_event
    names = ("PRESENCE_UPDATE", "TYPING_START", "GUILD_MEMBER_UPDATE", "MESSAGE_REACTION_ADD")
    payload = {"user": {"id": "1"}}
    shard = typing.cast("typing.Any", None)  # a skipped dispatch never reaches the shard
    for index in range(int(count)):
        consume(names[index & 3], shard, payload)


# --- the parent ----------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Stream:
    stream: typing.Any
    """The :class:`hikari_shard.bench.runner.Stream` the gateway sends."""
    path: pathlib.Path
    unconsumed_share: float
    """Share of the timed dispatches that the selective scenario's listeners do not consume."""


def _decompressor(compression: str) -> typing.Callable[[bytes], bytes]:
    """The bound ``decompress`` of a new stream decompressor, as our shard uses (zlib-ng, zstd)."""
    from bench_helpers import deflate_module, zstd_module

    if compression == "zlib-stream":
        return deflate_module.decompressobj().decompress
    return zstd_module.ZstdDecompressor().decompress


def _build(events: int, directory: pathlib.Path) -> _Stream:
    from bench_helpers import compress_stream
    from hikari_shard.bench import recording, runner

    options = runner.Options(scenarios=("full",), compressions=("zlib-stream",), events=events, rounds=1, seed=0)
    stream = runner.build_stream(options, default_events=events)
    path = directory / f"stream-{events}.jsonl"
    recording.write_stream(path, stream.events)
    body = stream.events[stream.window_start :]
    payloads = [recording.envelope(name, seq, data) for seq, (name, data) in enumerate(body, 2)]
    for compression in COMPRESSIONS:
        with open(directory / f"floor-{events}-{compression}.pickle", "wb") as file:
            pickle.dump((compression, [name for name, _ in body], compress_stream(compression, payloads)), file)
    unconsumed = sum(name not in CONSUMED_IN_SELECTIVE for name, _ in body) / len(body)
    return _Stream(stream=stream, path=path, unconsumed_share=unconsumed)


def _valgrind(args: list[str], env: dict[str, str]) -> int:
    command = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable, __file__, *args]
    done = subprocess.run(command, env=env, capture_output=True, check=False)
    if done.returncode != 0:
        tail = done.stderr.decode(errors="replace").strip().splitlines()[-5:]
        msg = f"{' '.join(args[:2])} failed (exit {done.returncode}): {' | '.join(tail)}"
        raise RuntimeError(msg)
    return collected(done.stderr)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", default="full,selective", help="full, selective, bot (comma-separated)")
    parser.add_argument("--compression", default=",".join(COMPRESSIONS))
    parser.add_argument("--client", default="hikari,compiled", help="hikari, compiled, pure")
    parser.add_argument("--small", type=int, default=1000, help="dispatches in the short stream")
    parser.add_argument("--large", type=int, default=5000, help="dispatches in the long stream")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("--run-client", help=argparse.SUPPRESS)
    parser.add_argument("--run-floor", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--run-skip", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.run_client:
        _run_client(args.run_client)
        return
    if args.run_floor:
        _run_floor(*args.run_floor)
        return
    if args.run_skip:
        _run_skip(args.run_skip)
        return
    if args.small < _MIN_SMALL or args.large - args.small < _MIN_SPAN:
        # Shorter streams let the corpus's opening mix and one-off costs (a GC pass, a resize) show
        # through: 50 and 150 dispatches put stock below the floor.
        parser.error(f"use --small >= {_MIN_SMALL} and --large >= --small + {_MIN_SPAN}")
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is not installed (Debian: apt install valgrind)")
    scenarios = [s for s in args.scenario.split(",") if s]
    compressions = [c for c in args.compression.split(",") if c]
    clients = [c for c in args.client.split(",") if c]
    for value, allowed in ((scenarios, SCENARIOS), (compressions, COMPRESSIONS), (clients, CLIENTS)):
        if not set(value) <= set(allowed):
            parser.error(f"choose from {', '.join(allowed)}")

    from hikari_shard.bench import runner
    from hikari_shard.testing import corpus, emulator

    token = emulator.make_bot_token(corpus.DEFAULT_USER_ID)  # throwaway, never printed
    with tempfile.TemporaryDirectory(prefix="hikari-shard-instructions-") as tmp:
        directory = pathlib.Path(tmp)
        streams = {size: _build(size, directory) for size in (args.small, args.large)}
        servers: dict[int, tuple[subprocess.Popen[bytes], str, str]] = {}
        env = runner._child_env(token)
        try:
            for size, built in streams.items():
                server = subprocess.Popen(
                    [sys.executable, "-m", "hikari_shard.bench.server", "--stream", str(built.path)],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.DEVNULL,
                    env=env,
                )
                assert server.stdout is not None
                url = server.stdout.readline().decode().strip()
                rest_url = server.stdout.readline().decode().strip()
                servers[size] = (server, url, rest_url)

            jobs: dict[tuple[str, str, str, int], tuple[list[str], dict[str, str]]] = {}
            if "selective" in scenarios:  # hikari's event manager skipping a dispatch nothing consumes
                for size in (_SKIPS_SMALL, _SKIPS_LARGE):
                    jobs[("skip", "", "", size)] = (["--run-skip", str(size)], env)
            for compression in compressions:
                for size in streams:
                    floor_path = str(directory / f"floor-{size}-{compression}.pickle")
                    for mode in ("baseline", "full", "selective"):
                        jobs[("floor", compression, mode, size)] = (["--run-floor", floor_path, mode], env)
                for scenario in scenarios:
                    for name in clients:
                        for size, built in streams.items():
                            _, url, rest_url = servers[size]
                            spec = built.stream.run_spec(
                                client=name,
                                scenario=scenario,
                                compression=compression,
                                url=url,
                                rest_url=rest_url,
                                timeout=3600.0,
                            )
                            client_env = runner._child_env(token, **runner._CLIENT_ENV[name])
                            jobs[(scenario, compression, name, size)] = (
                                ["--run-client", json.dumps(dataclasses.asdict(spec))],
                                client_env,
                            )
            print(f"{len(jobs)} runs under callgrind, {args.jobs} at a time...", file=sys.stderr)
            counts: dict[tuple[str, str, str, int], int] = {}
            with concurrent.futures.ThreadPoolExecutor(max_workers=max(args.jobs, 1)) as pool:
                futures = {pool.submit(_valgrind, *job): key for key, job in jobs.items()}
                for future in concurrent.futures.as_completed(futures):
                    counts[futures[future]] = future.result()
        finally:
            for server, _, _ in servers.values():
                server.kill()
                server.wait()

    def per_dispatch(key: tuple[str, str, str]) -> float:
        return marginal(
            (len(streams[args.small].stream.events), counts[(*key, args.small)]),
            (len(streams[args.large].stream.events), counts[(*key, args.large)]),
        )

    results: dict[str, typing.Any] = {"small": args.small, "large": args.large, "rows": []}
    print(f"\ninstructions per dispatch (marginal between {args.small} and {args.large} dispatches, seed 0)")
    print(f"{'scenario':10} {'compression':12} {'client':10} {'instr/dispatch':>15} {'vs stock':>9}")
    for compression in compressions:
        baseline = per_dispatch(("floor", compression, "baseline"))
        floors = {mode: per_dispatch(("floor", compression, mode)) - baseline for mode in ("full", "selective")}
        for scenario in scenarios:
            stock = per_dispatch((scenario, compression, "hikari")) if "hikari" in clients else None
            for name in clients:
                value = per_dispatch((scenario, compression, name))
                ratio = f"{stock / value:.2f}x" if stock else ""
                print(f"{scenario:10} {compression:12} {name:10} {value:15,.0f} {ratio:>9}")
                results["rows"].append(
                    {"scenario": scenario, "compression": compression, "client": name, "instructions": value}
                )
            if scenario not in floors:
                continue
            floor = floors[scenario]
            row = {"scenario": scenario, "compression": compression, "client": "floor", "instructions": floor}
            if scenario == "full" and stock:
                row["ceiling"] = stock / floor
                print(f"{scenario:10} {compression:12} {'floor':10} {floor:15,.0f} {stock / floor:>8.2f}x  <- ceiling")
            elif scenario == "selective" and stock and "full" in scenarios and "hikari" in clients:
                # What stock spends beyond its full-decode path is hikari's event manager: its work on the
                # consumed dispatches (no shard can remove it) plus skipping the others (ours avoids that).
                skip = marginal(
                    (_SKIPS_SMALL, counts[("skip", "", "", _SKIPS_SMALL)]),
                    (_SKIPS_LARGE, counts[("skip", "", "", _SKIPS_LARGE)]),
                )
                share = streams[args.large].unconsumed_share
                consumed_work = stock - per_dispatch(("full", compression, "hikari")) - share * skip
                bound = floor + consumed_work
                row.update(hikari_skip=skip, hikari_consumed_work=consumed_work, ceiling=stock / bound)
                print(f"{scenario:10} {compression:12} {'floor':10} {floor:15,.0f}   inflate all, decode consumed")
                print(f"{'':10} {'':12} {'+ hikari':10} {bound:15,.0f} {stock / bound:>8.2f}x  <- ceiling")
                print(
                    f"{'':24}(hikari: {consumed_work:,.0f} on consumed dispatches; {skip:,.0f} to skip one"
                    f" of the {share:.0%} nothing consumes)"
                )
            else:
                print(f"{scenario:10} {compression:12} {'floor':10} {floor:15,.0f}")
            results["rows"].append(row)
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
