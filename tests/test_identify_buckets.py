"""One identify queue for every IDENTIFY of a bot, across its processes, and a guard on the day's budget.

A user would notice a failure as Discord refusing IDENTIFYs (two shards of one ``shard_id %
max_concurrency`` bucket within 5 s: INVALID_SESSION, then a retry storm), or as a token reset after
a reconnect storm spent the day's ``session_start_limit``.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import pathlib
import typing

import hikari
import pytest

from helpers import TOKEN, until
from hikari_shard import _context, identify
from hikari_shard.testing import GatewayEmulator
from hikari_shard.testing.restart import BotProcess

SHARD_COUNT: typing.Final = 4
MAX_CONCURRENCY: typing.Final = 2


@pytest.fixture(params=["sqlite", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> str:
    if request.param == "redis":
        return str(request.getfixturevalue("redis_url"))
    return str(tmp_path / "bot.sqlite3")


def bucket_gaps(log: list[tuple[float, int]]) -> dict[int, list[float]]:
    """Seconds between consecutive IDENTIFYs of each bucket."""
    times: dict[int, list[float]] = {}
    for at, shard_id in sorted(log):
        times.setdefault(shard_id % MAX_CONCURRENCY, []).append(at)
    return {bucket: [round(b - a, 2) for a, b in itertools.pairwise(at)] for bucket, at in times.items()}


@pytest.mark.real_identify_queue
async def test_two_processes_never_identify_two_shards_of_one_bucket_within_5s(
    store: str, tmp_path: pathlib.Path
) -> None:
    async with GatewayEmulator(
        token=TOKEN, shard_count=SHARD_COUNT, max_concurrency=MAX_CONCURRENCY, enforce_identify_buckets=True
    ) as emulator:
        # Shards {0, 2} and {1, 3}: each process owns one shard of each bucket (hikari's consecutive windows would
        # identify 0 and 2 together, 5 s after nothing: both bucket 0).
        bots = [
            BotProcess(
                rest_url=emulator.rest_url, token=TOKEN, out=tmp_path / f"{i}.jsonl", sessions=store, shards=(ids, 4)
            )
            for i, ids in enumerate(([0, 2], [1, 3]))
        ]
        for bot in bots:
            bot.start()
        try:
            for bot in bots:
                await bot.wait_for(lambda bot=bot: len(bot.handshakes("ready")) == 2, what="READY", timeout=40)
            # A storm: every session invalidated at once; all four must identify again.
            for shard_id in range(SHARD_COUNT):
                session = emulator.latest_session(shard_id)
                assert session is not None and session.connection is not None
                await session.connection.send_invalid_session(False)

            def ready_twice(bot: BotProcess) -> bool:
                return sum(line["event"] == "ready" for line in bot.lines()) == 4

            for bot in bots:
                await bot.wait_for(lambda bot=bot: ready_twice(bot), what="READY after INVALID_SESSION", timeout=40)
            for bot in bots:
                await bot.terminate()
        finally:
            for bot in bots:
                bot.kill()
    start = min(at for at, _ in emulator.identify_log)
    trace = [(round(at - start, 2), shard_id, shard_id % MAX_CONCURRENCY) for at, shard_id in emulator.identify_log]
    print("IDENTIFY trace (s, shard, bucket):", trace)  # shown with -s, for the record
    assert emulator.bucket_violations == []
    assert emulator.identifies == dict.fromkeys(range(SHARD_COUNT), 2)
    gaps = bucket_gaps(emulator.identify_log)
    assert all(gap >= identify.IDENTIFY_INTERVAL for bucket in gaps.values() for gap in bucket), gaps
    assert sorted(gaps) == [0, 1]


async def test_the_budget_guard_stops_identifying_at_the_reserve_and_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    limit = {"total": 1000, "remaining": 3, "reset_after": 3_600_000}
    async with GatewayEmulator(token=TOKEN, session_start_limit=limit) as emulator:
        import hikari_shard

        bot = hikari_shard.GatewayBot(TOKEN, rest_url=emulator.rest_url, banner=None, intents=hikari.Intents.GUILDS)
        await asyncio.wait_for(bot.start(check_for_updates=False), 10)
        try:
            shard = bot.shards[0]
            budget = typing.cast("_context.GatewayContext", shard._context).budget  # type: ignore[attr-defined]
            assert budget is not None
            assert budget.remaining == 2
            with caplog.at_level(logging.WARNING, "hikari.gateway.0"):
                for _ in range(3):  # a storm: each INVALID_SESSION asks for a new IDENTIFY
                    session = emulator.latest_session(0)
                    assert session is not None
                    if session.connection is not None:
                        await session.connection.send_invalid_session(False)
                    await asyncio.sleep(0)
                await until(lambda: budget.waiting, what="the guard waiting for the reset", timeout=10)
            assert emulator.identifies[0] == 1, "an IDENTIFY was spent below the reserve"
            assert budget.remaining == 2
            assert any("IDENTIFYs left today" in r.getMessage() for r in caplog.records)
            assert shard.stats.identifies == 1
            assert shard.stats.identify_waits == 1
            assert shard.stats.waiting_for_budget == 1
        finally:
            await asyncio.wait_for(bot.close(), 10)
    assert emulator.session_start_limit["remaining"] == 2
