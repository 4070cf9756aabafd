"""``hikari-shard bench``: hikari's stock shard against ours, side by side, over loopback."""

from __future__ import annotations

__all__ = ("main",)

import argparse
import sys
import time
import typing

import orjson

from hikari_shard.bench import client as client_module
from hikari_shard.bench import recording, report, runner

if typing.TYPE_CHECKING:
    from collections.abc import Sequence

DEFAULT_EVENTS: typing.Final = 5_000
DEFAULT_ROUNDS: typing.Final = 3
SMOKE_EVENTS: typing.Final = 2_000
DEFAULT_COMPRESSIONS: typing.Final = ("zlib-stream", "zstd-stream")

_DESCRIPTION: typing.Final = """\
Benchmark hikari's stock gateway shard (hikari.impl.shard.GatewayShardImpl) against hikari-shard's,
with its compiled hot paths and with their pure-Python twins, on the same realistic traffic.

A gateway emulator runs in its own process on 127.0.0.1 and, to every client that identifies,
streams the whole stream (a generated corpus or --replay FILE), encoded and compressed before the
first byte is sent.  Each run is one client in its own process, timed from the first to the last
dispatch of the stream: events/s, MB/s of JSON, the client's CPU per dispatch, its peak RSS.  The
clients take turns in every round, and the table shows the median and the spread over the rounds
and the ratio to hikari.  The benchmark reports; it never fails on speed (exit status 1 means a run
did not receive every dispatch, 2 a bad option or recording).

scenarios:
  full       a bare shard and a minimal event manager that counts consume_raw_event calls:
             every dispatch is inflated, decoded and routed (the gateway path alone)
  bot        a real hikari.GatewayBot (default cache, intents ALL) with a MessageCreateEvent
             listener; hikari builds the shard, the bench swaps the class hikari looks up
             (hikari.impl.shard.GatewayShardImpl, as hikari_shard.install() does)
  selective  the same bot without a cache (CacheComponents.NONE) and with listeners on
             MessageCreateEvent and InteractionCreateEvent only: hikari's event manager ignores
             the rest, which our shard then never decodes
"""

_EPILOG: typing.Final = """\
--replay FILE formats (told apart by the first byte):
  JSON lines   one whole gateway payload per line, as the gateway sent it:
               {"op":0,"t":"MESSAGE_CREATE","s":42,"d":{...}}
               Only op 0 is replayed, in file order, without READY/RESUMED; "s" is renumbered.
  zlib-stream  the raw bytes of one compress=zlib-stream connection: the payload of every binary
               websocket message, concatenated in order from the first (the zlib header, 0x78).
  A recording is refused if it holds a bot token: a string shaped like one
  ([\\w-]{23,28}\\.[\\w-]{6,7}\\.[\\w-]{27,}) or any "token" key but INTERACTION_CREATE's d.token.
  Leading GUILD_CREATEs are sent before the timed window. The bench's own stream file (written
  for the gateway process) uses the JSON lines format.

examples:
  hikari-shard bench                                   # all scenarios, zlib-stream and zstd-stream
  hikari-shard bench --scenario full --compression none --events 20000 --rounds 5
  hikari-shard bench --smoke --json bench.json         # CI: a few thousand events, one round
  hikari-shard bench --replay traffic.jsonl --scenario selective
"""


def _choices(value: str, allowed: Sequence[str], what: str) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(part.strip() for part in value.split(",") if part.strip()))
    if "all" in names:
        return tuple(allowed)
    unknown = [name for name in names if name not in allowed]
    if unknown or not names:
        msg = f"unknown {what} {', '.join(unknown) or value!r}; choose from {', '.join(allowed)} or all"
        raise argparse.ArgumentTypeError(msg)
    return names


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        msg = f"must be at least 1, not {number}"
        raise argparse.ArgumentTypeError(msg)
    return number


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hikari-shard bench",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--scenario",
        type=lambda value: _choices(value, client_module.SCENARIOS, "scenario"),
        default=client_module.SCENARIOS,
        metavar="NAME[,NAME]",
        help="full, bot, selective or all (default: all)",
    )
    parser.add_argument(
        "--compression",
        type=lambda value: _choices(value, tuple(client_module.COMPRESSIONS), "compression"),
        default=None,
        metavar="NAME[,NAME]",
        help="zlib-stream, zstd-stream, none or all (default: zlib-stream,zstd-stream; all with --smoke)",
    )
    parser.add_argument(
        "--client",
        type=lambda value: _choices(value, client_module.CLIENTS, "client"),
        default=client_module.CLIENTS,
        metavar="NAME[,NAME]",
        help="hikari (the stock shard), compiled, pure or all (default: all)",
    )
    parser.add_argument(
        "--events",
        type=_positive,
        default=None,
        metavar="N",
        help=(
            f"dispatches timed per run (default: {DEFAULT_EVENTS:,}, {SMOKE_EVENTS:,} with --smoke; "
            "with --replay: the whole recording, or its first N dispatches)"
        ),
    )
    parser.add_argument(
        "--rounds",
        type=_positive,
        default=None,
        metavar="R",
        help=f"rounds; every client runs every scenario once per round (default: {DEFAULT_ROUNDS}, 1 with --smoke)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the generated corpus (default: 0)")
    parser.add_argument("--replay", metavar="FILE", help="stream a recording of real traffic instead (see below)")
    parser.add_argument(
        "--json",
        metavar="FILE",
        help="also write every measurement, the summary and the environment (versions, CPUs) as JSON",
    )
    parser.add_argument(
        "--smoke",
        action="store_true",
        help=(
            f"a quick check for CI: {SMOKE_EVENTS:,} events, one round, each scenario with one compression in turn "
            "(full/zlib-stream, bot/zstd-stream, ...)"
        ),
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    return parser


class _Progress:
    """A one-line progress bar on stderr (a line per step when stderr is not a terminal)."""

    __slots__ = ("_enabled", "_started", "_tty", "_width")

    def __init__(self, *, enabled: bool) -> None:
        self._enabled = enabled
        self._tty = sys.stderr.isatty()
        self._width = 0
        self._started = time.perf_counter()

    def __call__(self, label: str, done: int, total: int) -> None:
        if not self._enabled:
            return
        elapsed = time.perf_counter() - self._started
        if not self._tty:
            sys.stderr.write(f"[{done}/{total}] {elapsed:5.1f}s {label}\n")
            sys.stderr.flush()
            return
        size = 24
        filled = size * done // total if total else 0
        text = f"\r[{'#' * filled}{'.' * (size - filled)}] {done}/{total} {elapsed:5.1f}s {label}"
        self._width = max(self._width, len(text))
        sys.stderr.write(text.ljust(self._width))
        sys.stderr.flush()

    def close(self) -> None:
        if self._enabled and self._tty and self._width:
            sys.stderr.write("\r" + " " * self._width + "\r")
            sys.stderr.flush()


def _zstd_available() -> bool:
    from hikari_shard import _fast  # noqa: PLC0415

    return bool(_fast.inflate.zstd_available())


def main(argv: list[str]) -> int:
    """Run ``hikari-shard bench`` (``argv`` without the ``bench`` word).

    Parameters
    ----------
    argv
        The options; ``--help`` lists them.

    Returns
    -------
    int
        0 when every run received every dispatch, 1 when one did not, 2 on a bad option or recording.
    """
    args = _parser().parse_args(argv)
    compressions: tuple[str, ...] = args.compression or (
        tuple(client_module.COMPRESSIONS) if args.smoke else DEFAULT_COMPRESSIONS
    )
    if "zstd-stream" in compressions and not _zstd_available():
        print("zstd-stream skipped: no zstd module (pip install 'hikari-shard[zstd]')", file=sys.stderr)
        compressions = tuple(name for name in compressions if name != "zstd-stream")
        if not compressions:
            return 2
    options = runner.Options(
        scenarios=args.scenario,
        compressions=compressions,
        events=args.events if args.events is not None else (SMOKE_EVENTS if args.smoke and not args.replay else None),
        rounds=args.rounds if args.rounds is not None else (1 if args.smoke else DEFAULT_ROUNDS),
        seed=args.seed,
        replay=args.replay,
        smoke=args.smoke,
        clients=args.client,
    )
    progress = _Progress(enabled=not args.no_progress)
    started = time.perf_counter()
    try:
        results = runner.run_bench(options, default_events=DEFAULT_EVENTS, progress=progress)
    except recording.RecordingError as ex:
        progress.close()
        print(f"hikari-shard bench: {ex}", file=sys.stderr)
        return 2
    except (RuntimeError, OSError) as ex:
        progress.close()
        print(f"hikari-shard bench: {ex}", file=sys.stderr)
        return 1
    progress.close()
    document: dict[str, typing.Any] = {
        "environment": report.environment(),
        "config": {
            "scenarios": list(options.scenarios),
            "compressions": list(options.compressions),
            "clients": list(options.clients),
            "combos": [list(combo) for combo in options.combos()],
            "events": options.events,
            "rounds": options.rounds,
            "seed": options.seed if options.replay is None else None,
            "replay": options.replay,
            "smoke": options.smoke,
        },
        **results,
        "summary": report.summarize(results["runs"]),
        "elapsed_s": time.perf_counter() - started,
    }
    print(report.format_report(document))
    print(f"({document['elapsed_s']:.1f}s)")
    if args.json:
        with open(args.json, "wb") as file:
            file.write(orjson.dumps(document, option=orjson.OPT_INDENT_2))
    return 0 if all(run["ok"] for run in document["runs"]) else 1
