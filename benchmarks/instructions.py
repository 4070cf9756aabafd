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

The gate (CI's ``instructions`` workflow, and developers before a commit)::

    .venv/bin/python benchmarks/instructions.py --short --check          # full decode, zlib-stream: minutes
    .venv/bin/python benchmarks/instructions.py --scenario full,selective,bot --client hikari,compiled,pure --check

``--check`` compares the run with ``benchmarks/instructions_baseline.json``: it fails when a row of
ours (compiled or pure) costs more than :data:`GROWTH_LIMIT` over the baseline's, and prints
whether issue 12's targets (:data:`FULL_ABOVE_FLOOR`, :data:`SELECTIVE_ABOVE_BOUND`, bot and pure
never above stock) are met; ``--enforce-targets`` makes an unmet target fail too.  The baseline is
regenerated with the second command and ``--write-baseline`` instead of ``--check``, and committed
(a reviewed change: its diff shows every row that moved).

Two things keep the counts the same from run to run (within ~0.1% on full decode): every process
under callgrind hashes with ``PYTHONHASHSEED=0`` (:data:`FIXED_HASH_SEED`; a random seed moved a
row by ~1%), and freezes its imports before it starts (:func:`_freeze_imports`; one full garbage
collection more in one of the two runs moved a row by up to 7,000).  Bot and selective, where
hikari's listener tasks interleave with reads, still move by a few hundred.

Counted instructions are not time (cache misses, branch mispredictions and system calls are not
in them), so the wall-clock benchmark stays the measure of speed; this one says where the
instructions go and what is left to win.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import dataclasses
import gc
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

# --- the gate (``--check``): what a change may cost, and the targets of issue 12 -----------------
GROWTH_LIMIT: typing.Final = 0.03
"""``--check`` fails when one of our rows (compiled or pure) costs more than 3% over the baseline."""
FULL_ABOVE_FLOOR: typing.Final = 0.04
"""Target: ours (compiled) on full decode within 4% of the floor (inflate + ``orjson.loads``)."""
SELECTIVE_ABOVE_BOUND: typing.Final = 3_000
"""Target: ours (compiled) selective at most 3,000 instructions above the floor + hikari's own work."""
OURS: typing.Final = ("compiled", "pure")
DEFAULT_BASELINE: typing.Final = pathlib.Path(__file__).resolve().parent / "instructions_baseline.json"
SHORT: typing.Final = {"scenario": "full", "compression": "zlib-stream", "client": "hikari,compiled"}
"""``--short``: the developer's check before a commit (one scenario, one compression, a few minutes)."""


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


# --- the gate: results against the committed baseline and the targets ----------------------------

Key = tuple[str, str, str]


@dataclasses.dataclass(frozen=True)
class Check:
    """One line of ``--check``'s table."""

    kind: str
    """``growth`` (ours against the baseline) or ``target`` (issue 12's targets, from this run alone)."""
    scenario: str
    compression: str
    client: str
    now: float
    limit: float | None
    """The most ``now`` may be (``None``: nothing to compare with)."""
    reference: str
    """What ``limit`` derives from, e.g. ``baseline 54,524 + 3%``."""
    fails: bool
    """Whether this line makes the check fail (targets only with ``enforce_targets``)."""
    change: float | None = None
    """``now`` against the baseline's figure (growth lines), e.g. ``0.012`` for +1.2%."""

    @property
    def met(self) -> bool:
        return self.limit is not None and self.now <= self.limit

    @property
    def status(self) -> str:
        if self.limit is None:
            return "NO BASELINE"
        over = self.now - self.limit
        if self.kind == "growth":
            return "ok" if over <= 0 else "BROKEN"
        if over <= 0:
            return f"met ({-over:,.0f} to spare)"
        return f"NOT MET (by {over:,.0f})" if self.fails else f"not met (by {over:,.0f})"


def _rows(results: dict[str, typing.Any]) -> dict[Key, dict[str, typing.Any]]:
    return {(row["scenario"], row["compression"], row["client"]): row for row in results["rows"]}


def check(
    results: dict[str, typing.Any], baseline: dict[str, typing.Any], *, enforce_targets: bool = False
) -> list[Check]:
    """Compare a run's ``results`` with ``baseline`` (both as ``--json`` writes them) and with the targets.

    Every row of ours (compiled, pure) in ``results`` must cost at most :data:`GROWTH_LIMIT` more
    than the same row of ``baseline``; a row the baseline lacks fails too (write it with
    ``--write-baseline``). The targets are judged on ``results`` alone, wherever it holds what
    they need, and fail only with ``enforce_targets``.
    """
    if (results.get("small"), results.get("large")) != (baseline.get("small"), baseline.get("large")):
        msg = (
            f"the run used streams of {results.get('small')}/{results.get('large')} dispatches, the baseline"
            f" {baseline.get('small')}/{baseline.get('large')}: the counts are not comparable"
        )
        raise ValueError(msg)
    rows = _rows(results)
    base = _rows(baseline)
    lines: list[Check] = []
    for key, row in rows.items():
        scenario, compression, client = key
        if client not in OURS:
            continue
        now = row["instructions"]
        if key in base:
            was = base[key]["instructions"]
            limit: float | None = was * (1 + GROWTH_LIMIT)
            reference = f"baseline {was:,.0f} + {GROWTH_LIMIT:.0%}"
        else:
            was, limit, reference = None, None, "no such row in the baseline"
        fails = limit is None or now > limit
        change = now / was - 1 if was else None
        lines.append(Check("growth", scenario, compression, client, now, limit, reference, fails, change))

    def target(key: Key, limit: float, reference: str) -> None:
        now = rows[key]["instructions"]
        lines.append(Check("target", *key, now, limit, reference, enforce_targets and now > limit))

    for (scenario, compression, client), row in rows.items():
        if client != "floor":
            continue
        compiled = (scenario, compression, "compiled")
        floor = row["instructions"]
        if scenario == "full" and compiled in rows:
            target(compiled, floor * (1 + FULL_ABOVE_FLOOR), f"floor {floor:,.0f} + {FULL_ABOVE_FLOOR:.0%}")
        elif scenario == "selective" and compiled in rows and "hikari_consumed_work" in row:
            bound = floor + row["hikari_consumed_work"]
            target(compiled, bound + SELECTIVE_ABOVE_BOUND, f"bound {bound:,.0f} + {SELECTIVE_ABOVE_BOUND:,}")
    for scenario, compression, client in rows:
        stock = rows.get((scenario, compression, "hikari"))
        if stock is None or client not in OURS or (client == "compiled" and scenario != "bot"):
            continue  # targets: the bot never above stock, the pure build never above stock anywhere
        target((scenario, compression, client), stock["instructions"], f"stock {stock['instructions']:,.0f}")
    return lines


def check_table(lines: list[Check]) -> str:
    """The table ``--check`` prints: one line per row compared, failures marked."""
    header = (
        f"{'check':7} {'scenario':10} {'compression':12} {'client':9} {'now':>9} {'change':>7} {'limit':>9}"
        f"  {'limit from':28} status"
    )
    out = [header, "-" * len(header)]
    for line in lines:
        limit = f"{line.limit:9,.0f}" if line.limit is not None else f"{'-':>9}"
        change = f"{line.change:+7.1%}" if line.change is not None else f"{'':7}"
        out.append(
            f"{line.kind:7} {line.scenario:10} {line.compression:12} {line.client:9} {line.now:9,.0f} {change} {limit}"
            f"  {line.reference:28} {line.status}"
        )
    broken = [line for line in lines if line.fails]
    targets = [line for line in lines if line.kind == "target"]
    met = sum(line.met for line in targets)
    if targets:
        enforced = "" if any(t.fails for t in targets) or met == len(targets) else " (not enforced: --enforce-targets)"
        out.append(f"targets met: {met} of {len(targets)}{enforced}")
    out.append(f"FAILED: {len(broken)} row(s) broke the gate" if broken else "passed")
    return "\n".join(out)


def merge_baseline(baseline: dict[str, typing.Any] | None, results: dict[str, typing.Any]) -> dict[str, typing.Any]:
    """``baseline`` with every row of ``results`` put in (replacing the same scenario, compression, client).

    A floor row measured without what its other fields need (a run without the ``hikari`` client,
    or selective without full) keeps the baseline's ``hikari_skip`` and ``hikari_consumed_work``,
    which come from hikari's runs alone, and its ``ceiling`` is worked out again from the merged
    rows: stock / floor on full decode, stock / (floor + hikari's work) selective.
    """
    if baseline is None or (baseline.get("small"), baseline.get("large")) != (results["small"], results["large"]):
        baseline = {"small": results["small"], "large": results["large"], "rows": []}
    rows = _rows(baseline)
    measured = _rows(results)
    rows.update({key: row for key, row in measured.items() if key[2] != "floor"})
    for key, row in measured.items():
        previous = rows.get(key)
        if key[2] != "floor" or previous is None or set(previous) <= set(row):
            rows[key] = row
            continue
        floor = {**previous, **row}
        stock = rows.get((key[0], key[1], "hikari"))  # this run's, else the baseline's
        if stock is None:
            floor.pop("ceiling", None)
        elif key[0] == "selective" and "hikari_consumed_work" in floor:
            floor["ceiling"] = stock["instructions"] / (floor["instructions"] + floor["hikari_consumed_work"])
        elif key[0] != "selective":
            floor["ceiling"] = stock["instructions"] / floor["instructions"]
        rows[key] = floor
    order = {name: index for index, name in enumerate((*SCENARIOS, *COMPRESSIONS, *CLIENTS, "floor"))}
    merged = sorted(rows.values(), key=lambda r: (order[r["scenario"]], order[r["compression"]], order[r["client"]]))
    return {"small": results["small"], "large": results["large"], "rows": merged}


# --- the processes that run under valgrind -------------------------------------------------------


def _freeze_imports() -> None:
    """Move every object alive so far (the imported modules, ~50,000 of them) out of the collector's reach.

    A full collection traverses every tracked object, so one costs ~20 million instructions here
    and whether the collector's thresholds trigger one in the short run, the long one, both or
    neither is an accident of allocation counts: one extra full collection in the long run of a
    client added ~7,000 instructions per dispatch to it.  Frozen, the imports are not traversed;
    what the run allocates is (young collections, and full ones over it), as in a long-running bot.
    Every process measured here calls this once its imports are done.
    """
    gc.collect()
    gc.freeze()


def _run_client(spec_json: str) -> None:
    from hikari_shard.bench import client

    spec = client.RunSpec(**json.loads(spec_json))
    _freeze_imports()
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

    _freeze_imports()

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
    _freeze_imports()
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


FIXED_HASH_SEED: typing.Final = "0"
"""Every run under callgrind hashes str and bytes with this seed: with a random one, dict and set
probing (and so the count) changes from run to run by several hundred instructions per dispatch."""


def _valgrind(args: list[str], env: dict[str, str], out: str = "/dev/null") -> int:
    command = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable, __file__, *args]
    done = subprocess.run(command, env={**env, "PYTHONHASHSEED": FIXED_HASH_SEED}, capture_output=True, check=False)
    if done.returncode != 0:
        tail = done.stderr.decode(errors="replace").strip().splitlines()[-5:]
        msg = f"{' '.join(args[:2])} failed (exit {done.returncode}): {' | '.join(tail)}"
        raise RuntimeError(msg)
    return collected(done.stderr)


def _profile_path(directory: str | None, key: tuple[str, str, str, int]) -> str:
    """Where callgrind writes a run's profile: nowhere, or ``DIR/<scenario>-<compression>-<client>-<size>.out``."""
    if directory is None:
        return "/dev/null"
    pathlib.Path(directory).mkdir(parents=True, exist_ok=True)
    return str(pathlib.Path(directory) / ("-".join(str(part) for part in key if part) + ".out"))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", default="full,selective", help="full, selective, bot (comma-separated)")
    parser.add_argument("--compression", default=",".join(COMPRESSIONS))
    parser.add_argument("--client", default="hikari,compiled", help="hikari, compiled, pure")
    parser.add_argument("--small", type=int, default=1000, help="dispatches in the short stream")
    parser.add_argument("--large", type=int, default=5000, help="dispatches in the long stream")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument(
        "--short",
        action="store_true",
        help="the check before a commit: --scenario full --compression zlib-stream --client hikari,compiled"
        " (a few minutes; compare with --check)",
    )
    parser.add_argument(
        "--check",
        nargs="?",
        const=str(DEFAULT_BASELINE),
        metavar="BASELINE",
        help=f"fail (exit 1) when a row of ours costs more than {GROWTH_LIMIT:.0%}% over BASELINE's"
        f" (default {DEFAULT_BASELINE.name}); print the targets' status",
    )
    parser.add_argument(
        "--enforce-targets", action="store_true", help="with --check: also fail when a target of issue 12 is not met"
    )
    parser.add_argument(
        "--write-baseline",
        nargs="?",
        const=str(DEFAULT_BASELINE),
        metavar="BASELINE",
        help=f"put this run's rows into BASELINE (default {DEFAULT_BASELINE.name}), replacing the same rows",
    )
    parser.add_argument("--results", metavar="JSON", help="use a run's --json output instead of measuring")
    parser.add_argument(
        "--keep-profiles",
        metavar="DIR",
        help="keep callgrind's profile of every run in DIR (read them with callgrind_annotate: where the"
        " instructions go, per function; subtract the short run's from the long one's for one dispatch)",
    )
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
    if args.short:
        for option, value in SHORT.items():
            if getattr(args, option) == parser.get_default(option):  # what is given explicitly stays
                setattr(args, option, value)
    if args.results:
        results = json.loads(pathlib.Path(args.results).read_text())
    else:
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
        results = _measure(args, scenarios, compressions, clients)
        if args.json:
            pathlib.Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    if args.write_baseline:
        path = pathlib.Path(args.write_baseline)
        previous = json.loads(path.read_text()) if path.exists() else None
        path.write_text(json.dumps(merge_baseline(previous, results), indent=2) + "\n")
        print(f"\nwrote {len(results['rows'])} rows into {path}", file=sys.stderr)
    if args.check:
        try:
            lines = check(
                results, json.loads(pathlib.Path(args.check).read_text()), enforce_targets=args.enforce_targets
            )
        except ValueError as ex:
            sys.exit(f"--check {args.check}: {ex}")
        print(f"\nagainst {args.check}:")
        print(check_table(lines))
        if any(line.fails for line in lines):
            sys.exit(1)


def _measure(
    args: argparse.Namespace, scenarios: list[str], compressions: list[str], clients: list[str]
) -> dict[str, typing.Any]:
    """Run everything under callgrind, print the table and return the rows (``--json``'s content)."""
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
                    for mode in ("baseline", *(m for m in ("full", "selective") if m in scenarios)):
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
                futures = {
                    pool.submit(_valgrind, *job, _profile_path(args.keep_profiles, key)): key
                    for key, job in jobs.items()
                }
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
        floors = {
            mode: per_dispatch(("floor", compression, mode)) - baseline
            for mode in ("full", "selective")
            if mode in scenarios
        }
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
    return results


if __name__ == "__main__":
    main()
