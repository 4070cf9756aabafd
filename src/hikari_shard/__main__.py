"""The command line: ``hikari-shard info``, ``bench`` and ``redact`` (also ``python -m hikari_shard``)."""

from __future__ import annotations

import argparse
import pathlib
import sys
import typing

import hikari

from hikari_shard import __version__, _fast


def _info(_: argparse.Namespace) -> int:
    print(f"hikari-shard {__version__} (hikari {hikari.__version__}, Python {sys.version.split()[0]})")
    print(f"hot paths: {_fast.IMPLEMENTATION}")
    if _fast.NO_EXTENSIONS_REASON:
        print(f"  why: {_fast.NO_EXTENSIONS_REASON}")
    import asyncio  # noqa: PLC0415

    from hikari_shard import _transport  # noqa: PLC0415 - aiohttp, only for this line

    if not asyncio.run(_transport.probe_takeover()):  # one loopback connection: does aiohttp call set_parser?
        print("websocket takeover: NOT confirmed on a loopback connection (ws.receive() reads)")
    else:
        print("websocket takeover: confirmed on a loopback connection")
    print(f"websocket frames read by: {_transport.frame_reader()}")
    print(f"zlib-stream inflated by: {_fast.inflate.STREAM_DECOMPRESSOR}")
    print(f"zstd-stream available: {_fast.inflate.zstd_available()}")
    if _fast.inflate.ZSTD_DECOMPRESSOR is not None:
        print(f"zstd-stream inflated by: {_fast.inflate.ZSTD_DECOMPRESSOR}")
    return 0


def _redact(args: argparse.Namespace) -> int:
    from hikari_shard import redact  # noqa: PLC0415
    from hikari_shard.bench import recording  # noqa: PLC0415

    try:
        count = redact.redact_file(args.source, args.target)
        recording.check_no_token(args.target.read_bytes().splitlines(), source=str(args.target))
    except (OSError, ValueError) as ex:
        print(f"hikari-shard redact: {ex}", file=sys.stderr)
        return 2
    print(f"wrote {count} redacted payloads to {args.target}")
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
    redact = sub.add_parser(
        "redact",
        help="redact a JSON-lines recording (free text and ids replaced, sizes kept) so it can be shared",
        description="Redact a JSON-lines recording (one gateway payload per line), e.g. one made with "
        "hikari_shard.record(..., redact=False): free text replaced by same-length placeholders, ids "
        "remapped consistently, sizes and key order kept. SOURCE is not changed.",
    )
    redact.add_argument("source", type=pathlib.Path, metavar="SOURCE")
    redact.add_argument("target", type=pathlib.Path, metavar="TARGET")
    ns = parser.parse_args(args)
    if ns.command == "redact":
        return _redact(ns)
    return _info(ns)


if __name__ == "__main__":
    sys.exit(main())
