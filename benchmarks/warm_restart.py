"""What a deploy costs a 16-shard bot at ``max_concurrency`` 1: a cold restart (IDENTIFY) against a warm one (RESUME).

Real bot processes (``python -m hikari_shard.testing.restart``: an unchanged ``hikari.GatewayBot`` with
``hikari_shard.install()``) on the gateway emulator, which enforces Discord's identify bucket rule,
under a steady stream of ``MESSAGE_CREATE`` to every shard (one per shard every ``--tick`` seconds),
each process running ``--uptime`` seconds once live, then stopped with SIGTERM as a deploy stops it:

1. a bot without a session store starts and is stopped (it closes with 1001, as hikari does);
2. a bot with the SQLite store starts: a **cold** restart (nothing saved), and is stopped (resumable);
3. a bot on the same store starts: a **warm** restart;
4. and 5. the same two with the Redis store (``--redis URL``, or a ``redis-server`` this script
   starts on 127.0.0.1 when it is installed).

For each restart: seconds from the new process's start until every shard received its first live
dispatch (one dispatched after the process started), the IDENTIFYs and RESUMEs the emulator saw,
and the dispatches lost (dispatched to the bot's shards from the old process's SIGTERM until the new
one was live on every shard, received by neither).

    python benchmarks/warm_restart.py            # about 5 minutes: three cold starts at 16 x 5.25 s
    python benchmarks/warm_restart.py --json out.json
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import pathlib
import sys
import tempfile
import time
import typing

from hikari_shard.testing import GatewayEmulator, make_bot_token
from hikari_shard.testing.redis import redis_server
from hikari_shard.testing.restart import BotProcess, message


class Stream:
    """One MESSAGE_CREATE per shard every ``tick`` seconds; remembers when each index was dispatched, where."""

    def __init__(self, emulator: GatewayEmulator, shard_count: int, tick: float) -> None:
        self.emulator = emulator
        self.shard_count = shard_count
        self.tick = tick
        self.sent: list[tuple[float, int, int]] = []  # (time.time(), shard, index)
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        index = 0
        while True:
            now = time.time()
            for shard_id in range(self.shard_count):
                with contextlib.suppress(LookupError):  # that shard has not identified yet
                    await self.emulator.dispatch("MESSAGE_CREATE", message(index, shard_id=shard_id), shard_id=shard_id)
                    self.sent.append((now, shard_id, index))
            index += 1
            await asyncio.sleep(self.tick)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


def received(*processes: BotProcess) -> set[tuple[int, int]]:
    return {(line["shard"], line["index"]) for p in processes for line in p.lines() if line["event"] == "message"}


def live_at(process: BotProcess, stream: Stream) -> float:
    """When every shard had received a message dispatched after ``process`` started (``inf`` if one has not)."""
    sent_at = {(shard, index): t for t, shard, index in stream.sent}
    first: dict[int, float] = {}
    for line in process.lines():
        if line["event"] != "message":
            continue
        key = (line["shard"], line["index"])
        if sent_at.get(key, 0.0) >= process.started_at and key[0] not in first:
            first[key[0]] = line["t"]
    if len(first) < stream.shard_count:
        return float("inf")
    return max(first.values())


async def run_restart(
    old: BotProcess | None,
    new: BotProcess,
    emulator: GatewayEmulator,
    stream: Stream,
    *,
    timeout: float,  # noqa: ASYNC109 - the wait's bound, handed to BotProcess.wait_for
) -> dict[str, typing.Any]:
    """Stop ``old`` (SIGTERM), start ``new``, wait until it is live on every shard; what it cost."""
    stopped_at = time.time()
    if old is not None:
        code = await old.terminate()
        assert code == 0, old.stderr()
    identifies, resumes = sum(emulator.identifies.values()), sum(emulator.resumes.values())
    new.start()
    await new.wait_for(lambda: live_at(new, stream) < float("inf"), what="live traffic on every shard", timeout=timeout)
    live = live_at(new, stream)
    got = received(new) | (received(old) if old is not None else set())
    window = [(shard, index) for t, shard, index in stream.sent if stopped_at <= t <= live]
    return {
        "seconds_to_live": round(live - new.started_at, 2),
        "identifies": sum(emulator.identifies.values()) - identifies,
        "resumes": sum(emulator.resumes.values()) - resumes,
        "lost": sum(1 for key in window if key not in got),
        "dispatched_meanwhile": len(window),
    }


async def main_async(args: argparse.Namespace, redis_url: str | None) -> dict[str, typing.Any]:
    token = make_bot_token()
    folder = pathlib.Path(tempfile.mkdtemp(prefix="warm-restart-"))
    timeout = args.shards * 6.0 + 30.0
    async with GatewayEmulator(
        token=token, shard_count=args.shards, max_concurrency=1, enforce_identify_buckets=True
    ) as emulator:
        stream = Stream(emulator, args.shards, args.tick)
        stream.start()
        processes: list[BotProcess] = []

        def bot(name: str, sessions: str | None) -> BotProcess:
            out = folder / f"{name}.jsonl"
            process = BotProcess(rest_url=emulator.rest_url, token=token, out=out, sessions=sessions)
            processes.append(process)
            return process

        results: dict[str, typing.Any] = {}
        try:
            first = bot("first", None)
            cold = args.shards * 5.25
            print(f"starting a {args.shards}-shard bot without a store (cold, ~{cold:.0f}s)...", flush=True)
            await run_restart(None, first, emulator, stream, timeout=timeout)
            await asyncio.sleep(args.uptime)
            previous = first
            stores = [("sqlite", str(folder / "sessions.sqlite3"))]
            if redis_url is not None:
                stores.append(("redis", redis_url))
            for name, spec in stores:
                for kind in ("cold", "warm"):
                    print(f"restart: {kind}, {name} store...", flush=True)
                    new = bot(f"{name}-{kind}", spec)
                    results[f"{kind} ({name})"] = await run_restart(previous, new, emulator, stream, timeout=timeout)
                    print(f"  {results[f'{kind} ({name})']}", flush=True)
                    await asyncio.sleep(args.uptime)
                    previous = new
            await previous.terminate()
        finally:
            await stream.stop()
            for process in processes:
                process.kill()
        results["bucket violations"] = len(emulator.bucket_violations)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shards", type=int, default=16)
    parser.add_argument("--tick", type=float, default=0.1, help="seconds between dispatches to each shard")
    parser.add_argument(
        "--uptime",
        type=float,
        default=6.0,
        help="seconds each bot runs once live before it is restarted (over 5: the first bot shares no queue)",
    )
    parser.add_argument("--redis", help="a Redis server to use (default: start redis-server on loopback)")
    parser.add_argument("--no-redis", action="store_true", help="only the SQLite store")
    parser.add_argument("--json", type=pathlib.Path, help="also write the results here")
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        redis_url = None if args.no_redis else args.redis or stack.enter_context(redis_server())
        results = asyncio.run(main_async(args, redis_url))
    print(f"\n{'restart':<16} {'s to live':>10} {'IDENTIFYs':>10} {'RESUMEs':>8} {'lost':>6} {'sent meanwhile':>15}")
    for name, row in results.items():
        if isinstance(row, dict):
            print(
                f"{name:<16} {row['seconds_to_live']:>10} {row['identifies']:>10} {row['resumes']:>8} "
                f"{row['lost']:>6} {row['dispatched_meanwhile']:>15}"
            )
    print(f"identify bucket violations seen by the emulator: {results['bucket violations']}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    sys.exit(main())
