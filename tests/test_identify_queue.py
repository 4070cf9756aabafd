"""The identify queues (local, SQLite, Redis) and the day's IDENTIFY budget.

Discord allows one IDENTIFY per bucket (``shard_id % max_concurrency``) per 5 s and a daily number of
them; a bot that goes over has its token reset.  A user would notice a broken queue as shards that
IDENTIFY too fast (rate limited, or a reset token), or that wait on another bucket for no reason.
The tests use a short interval so they stay fast.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import pathlib
import socket
import sqlite3
import time
import typing

import pytest

from hikari_shard import identify
from hikari_shard.identify import (
    IDENTIFY_INTERVAL,
    IdentifyBudget,
    LocalIdentifyQueue,
    RedisIdentifyQueue,
    SQLiteIdentifyQueue,
    open_queue,
)
from hikari_shard.sessions import SessionRecord, SQLiteSessionStore
from processes import run_workers

if typing.TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

USER_ID: typing.Final = 175928847299117063
INTERVAL: typing.Final = 0.2
TOLERANCE: typing.Final = 0.02  # clock reads and Redis' millisecond expiry
TIMEOUT: typing.Final = 0.5
SLACK: typing.Final = 3.0  # a no-hang bound for a loaded machine, not a speed check

Queue: typing.TypeAlias = LocalIdentifyQueue | SQLiteIdentifyQueue | RedisIdentifyQueue


@pytest.fixture(params=["local", "sqlite", "redis"])
async def queue(request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> AsyncIterator[Queue]:
    made: Queue
    if request.param == "redis":
        url = request.getfixturevalue("redis_url")
        made = RedisIdentifyQueue(url, prefix=request.getfixturevalue("redis_prefix"), interval=INTERVAL)
    elif request.param == "sqlite":
        made = SQLiteIdentifyQueue(tmp_path / "sessions.sqlite3", interval=INTERVAL)
    else:
        made = LocalIdentifyQueue(interval=INTERVAL)
    try:
        yield made
    finally:
        await made.close()


def test_the_default_interval_is_discords_with_a_margin() -> None:
    assert IDENTIFY_INTERVAL == 5.0
    for queue in (LocalIdentifyQueue(), SQLiteIdentifyQueue("unused.sqlite3"), RedisIdentifyQueue()):
        assert IDENTIFY_INTERVAL < queue.interval <= IDENTIFY_INTERVAL + 1.0


async def _grant_times(queue: Queue, shard_ids: list[int], max_concurrency: int) -> dict[int, list[float]]:
    """Acquire for every shard at once; the wall-clock grant times, by bucket."""
    grants: dict[int, list[float]] = {}

    async def one(shard_id: int) -> None:
        await queue.acquire(USER_ID, shard_id, max_concurrency)
        grants.setdefault(shard_id % max_concurrency, []).append(time.time())

    async with asyncio.timeout(30):
        await asyncio.gather(*(one(shard_id) for shard_id in shard_ids))
    return {bucket: sorted(times) for bucket, times in grants.items()}


def _assert_spaced(times: list[float]) -> None:
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    assert all(gap >= INTERVAL - TOLERANCE for gap in gaps), f"grants of one bucket too close: {gaps}"


async def test_each_bucket_is_held_for_the_interval_and_buckets_are_independent(queue: Queue) -> None:
    grants = await _grant_times(queue, [0, 1, 2, 3, 4, 5], max_concurrency=2)
    assert sorted(grants) == [0, 1]
    for times in grants.values():
        assert len(times) == 3
        _assert_spaced(times)
    # Bucket 1's first shard does not wait for bucket 0's slot: both start in the first interval.
    assert abs(grants[0][0] - grants[1][0]) < INTERVAL


async def test_waiters_of_one_bucket_leave_in_order(queue: Queue) -> None:
    order: list[int] = []

    async def one(shard_id: int) -> None:
        await queue.acquire(USER_ID, shard_id, 2)
        order.append(shard_id)

    async with asyncio.timeout(30):
        tasks = []
        for shard_id in (0, 2, 4, 6):
            tasks.append(asyncio.create_task(one(shard_id)))
            await asyncio.sleep(0.01)  # each is queued before the next arrives
        await asyncio.gather(*tasks)
    assert order == [0, 2, 4, 6]


async def test_bots_and_concurrencies_have_their_own_slots(queue: Queue) -> None:
    async with asyncio.timeout(INTERVAL + SLACK):
        await queue.acquire(USER_ID, 0, 1)
        started = time.monotonic()
        await queue.acquire(USER_ID + 1, 0, 1)  # another bot
        await queue.acquire(USER_ID, 0, 16)  # the same bot after a max_concurrency change
        await queue.acquire(USER_ID, 1, 16)
    assert time.monotonic() - started < INTERVAL


async def test_the_sqlite_queue_shares_the_session_stores_file(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "sessions.sqlite3"
    store = SQLiteSessionStore(path)
    queue = SQLiteIdentifyQueue(path, interval=INTERVAL)
    saved = SessionRecord(USER_ID, 0, 1, "abc", 3, "wss://127.0.0.1/", 513, 1.0)
    try:
        await store.save(saved)
        await queue.acquire(USER_ID, 0, 1)
        assert await store.load(USER_ID, 0, 1) == saved
    finally:
        await queue.close()
        await store.close()
    with contextlib.closing(sqlite3.connect(path)) as db:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        (slots,) = db.execute("SELECT count(*) FROM identify_slots").fetchone()
    assert {"sessions", "identify_slots"} <= tables
    assert slots == 1


def test_open_queue_picks_the_backend(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "s.sqlite3"
    for spec in (str(path), path, f"sqlite:///{path}"):
        assert isinstance(open_queue(spec), SQLiteIdentifyQueue)
    for url in ("redis://127.0.0.1:1/0", "rediss://127.0.0.1:1/0", "unix:///tmp/nothing.sock"):
        assert isinstance(open_queue(url), RedisIdentifyQueue)  # lazily connected: nothing is sent here


# -- failures raise in time --------------------------------------------------------------------------
@contextlib.contextmanager
def _raises_within(seconds: float) -> Iterator[None]:
    started = time.monotonic()
    with pytest.raises(Exception) as info:
        yield
    elapsed = time.monotonic() - started
    assert elapsed < seconds, f"raised {info.value!r} only after {elapsed:.1f}s"


def _closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_a_redis_queue_raises_within_the_timeout_when_redis_is_down() -> None:
    queue = RedisIdentifyQueue(f"redis://127.0.0.1:{_closed_port()}/0", interval=INTERVAL, timeout=TIMEOUT)
    try:
        with _raises_within(TIMEOUT + SLACK):
            await queue.acquire(USER_ID, 0, 1)
    finally:
        await queue.close()


async def test_a_redis_queue_raises_within_the_timeout_when_redis_never_answers() -> None:
    writers: list[asyncio.StreamWriter] = []

    async def accept(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    queue = RedisIdentifyQueue(f"redis://127.0.0.1:{port}/0", interval=INTERVAL, timeout=TIMEOUT)
    try:
        with _raises_within(TIMEOUT + SLACK):
            await queue.acquire(USER_ID, 0, 1)
        assert writers, "the queue never connected to the silent server"
    finally:
        await queue.close()
        for writer in writers:
            writer.close()
        server.close()
        await server.wait_closed()


async def test_a_sqlite_queue_raises_within_the_timeout_when_the_file_is_locked(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "sessions.sqlite3"
    queue = SQLiteIdentifyQueue(path, interval=INTERVAL, timeout=TIMEOUT)
    try:
        await queue.acquire(USER_ID, 0, 1)
        with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as other:
            other.execute("BEGIN EXCLUSIVE")
            try:
                with _raises_within(TIMEOUT + SLACK):
                    await queue.acquire(USER_ID, 1, 2)
            finally:
                other.execute("ROLLBACK")
    finally:
        await queue.close()


# -- two processes -----------------------------------------------------------------------------------
WORKER: typing.Final = """
import asyncio, sys, time
from hikari_shard import identify

spec, prefix, interval = sys.argv[1], sys.argv[2], float(sys.argv[3])
shard_ids = [int(s) for s in sys.argv[4].split(",")]

async def main():
    if spec.startswith("redis://"):
        queue = identify.RedisIdentifyQueue(spec, prefix=prefix, interval=interval, timeout=10.0)
    else:
        queue = identify.SQLiteIdentifyQueue(spec, interval=interval, timeout=10.0)
    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)

    async def one(shard_id):
        for _ in range(ROUNDS):
            await queue.acquire(175928847299117063, shard_id, 2)
            print(shard_id, repr(time.time()), flush=True)

    try:
        await asyncio.gather(*(one(s) for s in shard_ids))
    finally:
        await queue.close()

asyncio.run(main())
"""
ROUNDS: typing.Final = 3


async def _two_processes(spec: str, prefix: str) -> dict[int, list[float]]:
    script = WORKER.replace("ROUNDS", str(ROUNDS))
    # Each bucket (shard_id % 2) has a shard in each process: {0, 1} and {2, 3}.
    outputs = await run_workers(script, [[spec, prefix, str(INTERVAL), "0,1"], [spec, prefix, str(INTERVAL), "2,3"]])
    grants: dict[int, list[float]] = {}
    for output in outputs:
        for line in output.splitlines():
            shard_id, at = line.split()
            grants.setdefault(int(shard_id) % 2, []).append(float(at))
    return {bucket: sorted(times) for bucket, times in grants.items()}


def _assert_two_process_grants(grants: dict[int, list[float]]) -> None:
    assert sorted(grants) == [0, 1]
    for times in grants.values():
        assert len(times) == 2 * ROUNDS
        _assert_spaced(times)


async def test_two_processes_share_sqlite_slots(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "sessions.sqlite3"
    first = SQLiteIdentifyQueue(path, interval=INTERVAL)  # the file exists, as after a first run
    await first.acquire(USER_ID + 1, 0, 1)
    await first.close()
    _assert_two_process_grants(await _two_processes(str(path), "-"))


async def test_two_processes_share_redis_slots(redis_url: str, redis_prefix: str) -> None:
    _assert_two_process_grants(await _two_processes(redis_url, redis_prefix))


# -- the day's budget --------------------------------------------------------------------------------
async def _until_waiting(budget: IdentifyBudget) -> None:
    for _ in range(int(SLACK / 0.01)):
        if budget.waiting:
            return
        await asyncio.sleep(0.01)
    msg = "spend() did not start waiting for the reset"
    raise AssertionError(msg)


async def test_the_budget_waits_for_the_reset_instead_of_spending_the_reserve(
    caplog: pytest.LogCaptureFixture,
) -> None:
    logger = logging.getLogger("hikari.gateway.test")
    budget = IdentifyBudget(total=1000, remaining=3, reset_after=0.5, reserve=2)
    assert (budget.total, budget.remaining, budget.reserve, budget.waiting) == (1000, 3, 2, False)
    resets_at = budget.resets_at
    assert resets_at == pytest.approx(time.time() + 0.5, abs=0.25)
    with caplog.at_level(logging.WARNING, logger.name):
        async with asyncio.timeout(SLACK):
            await budget.spend(logger)
        assert budget.remaining == 2
        assert not caplog.records
        second = asyncio.create_task(budget.spend(logger))
        await _until_waiting(budget)
        assert budget.remaining == 2  # nothing spent while waiting
        assert len(caplog.records) == 1
        warning = caplog.records[0]
        assert warning.levelno == logging.WARNING
        assert "2" in warning.getMessage()
        assert "reset" in warning.getMessage()
        async with asyncio.timeout(SLACK):
            await second
    assert time.time() >= resets_at
    assert not budget.waiting
    assert budget.remaining == 999
    assert budget.resets_at > resets_at


async def test_the_budget_never_spends_below_the_reserve() -> None:
    logger = logging.getLogger("hikari.gateway.test")
    budget = IdentifyBudget(total=10, remaining=10, reset_after=3600.0, reserve=2)
    async with asyncio.timeout(SLACK):
        for _ in range(8):
            await budget.spend(logger)
    assert budget.remaining == 2
    blocked = asyncio.create_task(budget.spend(logger))
    try:
        await _until_waiting(budget)
        assert budget.remaining == 2
        # A fresh session_start_limit (GET /gateway/bot after the reset) lets it go on.
        budget.update(total=10, remaining=10, reset_after=3600.0)
        assert budget.remaining == 10
    finally:
        blocked.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await blocked
    assert not budget.waiting


def test_identify_exports() -> None:
    assert set(identify.__all__) >= {
        "IDENTIFY_INTERVAL",
        "IdentifyQueue",
        "LocalIdentifyQueue",
        "SQLiteIdentifyQueue",
        "RedisIdentifyQueue",
        "IdentifyBudget",
        "open_queue",
    }


def test_the_budgets_counts_are_read_only() -> None:
    budget = IdentifyBudget(total=10, remaining=5, reset_after=60.0)
    for name in ("remaining", "total", "reserve", "waiting", "resets_at"):
        with pytest.raises(AttributeError):
            setattr(budget, name, 0)


async def test_a_budget_no_bigger_than_its_reserve_never_spends() -> None:
    budget = IdentifyBudget(total=2, remaining=0, reset_after=0.0, reserve=2)
    spending = asyncio.ensure_future(budget.spend(logging.getLogger("test")))
    await asyncio.sleep(0.05)
    assert budget.waiting
    assert not spending.done()
    spending.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await spending
    assert budget.remaining == 2
