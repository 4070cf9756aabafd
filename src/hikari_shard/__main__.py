"""The command line: ``hikari-shard info`` and ``hikari-shard bench`` (also ``python -m hikari_shard``)."""

from __future__ import annotations

import argparse
import sys
import typing

import hikari

from hikari_shard import __version__, _fast


def _info(_: argparse.Namespace) -> int:
    print(f"hikari-shard {__version__} (hikari {hikari.__version__}, Python {sys.version.split()[0]})")
    print(f"hot paths: {_fast.IMPLEMENTATION}")
    if _fast.NO_EXTENSIONS_REASON:
        print(f"  why: {_fast.NO_EXTENSIONS_REASON}")
    print(f"zstd-stream available: {_fast.inflate.zstd_available()}")
    return 0


def main(argv: typing.Sequence[str] | None = None) -> int:
    """Run the command line."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == "bench":
        from hikari_shard.bench import cli  # noqa: PLC0415

        return cli.main(args[1:])

    parser = argparse.ArgumentParser(prog="hikari-shard", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("info", help="print the version and which hot-path implementation is in use")
    sub.add_parser("bench", help="benchmark hikari's stock shard against ours (see `hikari-shard bench --help`)")
    ns = parser.parse_args(args)
    return _info(ns)


if __name__ == "__main__":
    sys.exit(main())
