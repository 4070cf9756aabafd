"""The identify queue and the day's IDENTIFY budget.

Discord allows one IDENTIFY per *bucket* per 5 s, a shard's bucket being ``shard_id %
max_concurrency``, and a daily number of them (``session_start_limit``); a bot that goes over the
daily limit has its token reset.  Every IDENTIFY of our shard (start-up, after INVALID_SESSION or a
failed resume, ``start()`` after ``close()``) first takes its bucket's slot from an
:class:`IdentifyQueue`, then one IDENTIFY of the :class:`IdentifyBudget`.  RESUME takes neither.

- :class:`LocalIdentifyQueue`: in-process, the default.
- :class:`SQLiteIdentifyQueue`: slots in the session store's SQLite file, for the processes of one host.
- :class:`RedisIdentifyQueue`: slots in Redis (its clock holds them), for bots on several machines.
"""

from __future__ import annotations

__all__ = (
    "IDENTIFY_INTERVAL",
    "IdentifyBudget",
    "IdentifyQueue",
    "LocalIdentifyQueue",
    "RedisIdentifyQueue",
    "SQLiteIdentifyQueue",
    "open_queue",
)

import asyncio
import collections
import logging
import os
import time
import typing

from hikari_shard import sessions

IDENTIFY_INTERVAL: typing.Final = 5.0
"""Discord: one IDENTIFY per bucket per this many seconds."""
DEFAULT_INTERVAL: typing.Final = IDENTIFY_INTERVAL + 0.25
"""The slot each queue holds: Discord's 5 s and a margin for the network's jitter."""


class IdentifyQueue(typing.Protocol):
    """Where a shard waits for its bucket's IDENTIFY slot; implement it to share slots anywhere else."""

    async def acquire(self, user_id: int, shard_id: int, max_concurrency: int) -> None:
        """Return when this shard may send IDENTIFY now; its bucket is then held for the queue's interval."""

    async def close(self) -> None:
        """Release the queue's connections."""


def _bucket_locks() -> collections.defaultdict[tuple[int, int, int], asyncio.Lock]:
    """One lock per (bot, max_concurrency, bucket): asyncio.Lock wakes its waiters in order."""
    return collections.defaultdict(asyncio.Lock)


class LocalIdentifyQueue:
    """The in-process queue: first come, first served within each bucket.

    Parameters
    ----------
    interval
        How long each IDENTIFY holds its bucket, in seconds.
    """

    __slots__ = ("_locks", "_next_free", "interval")

    def __init__(self, *, interval: float = DEFAULT_INTERVAL) -> None:
        self.interval = interval
        self._locks = _bucket_locks()
        self._next_free: dict[tuple[int, int, int], float] = {}

    async def acquire(self, user_id: int, shard_id: int, max_concurrency: int) -> None:
        key = (user_id, max_concurrency, shard_id % max_concurrency)
        async with self._locks[key]:
            wait = self._next_free.get(key, 0.0) - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            self._next_free[key] = time.monotonic() + self.interval

    async def close(self) -> None:
        """Nothing to release."""


class SQLiteIdentifyQueue:
    """Slots in a SQLite file (the session store's), shared by the processes of one host.

    Parameters
    ----------
    path
        The file (created with mode 0600 if missing).
    interval
        How long each IDENTIFY holds its bucket, in seconds.
    timeout
        The longest one database call waits.
    """

    __slots__ = ("_file", "_local", "interval")

    def __init__(
        self, path: str | os.PathLike[str], *, interval: float = DEFAULT_INTERVAL, timeout: float = 2.0
    ) -> None:
        self._file = sessions.SQLiteFile(path, timeout=timeout)
        self._local = _bucket_locks()  # keeps this process's waiters in order
        self.interval = interval

    async def acquire(self, user_id: int, shard_id: int, max_concurrency: int) -> None:
        bucket = shard_id % max_concurrency

        def take() -> float:
            """0 when the slot was taken, else how long until it frees."""
            with self._file.transaction() as db:
                row = db.execute(
                    "SELECT next_free FROM identify_slots WHERE user_id = ? AND max_concurrency = ? AND bucket = ?",
                    (user_id, max_concurrency, bucket),
                ).fetchone()
                now = time.time()
                if row is not None and row[0] > now:
                    return float(row[0]) - now
                db.execute(
                    "INSERT OR REPLACE INTO identify_slots (user_id, max_concurrency, bucket, next_free) "
                    "VALUES (?, ?, ?, ?)",
                    (user_id, max_concurrency, bucket, now + self.interval),
                )
                return 0.0

        async with self._local[user_id, max_concurrency, bucket]:
            while True:
                wait = await self._file.run(take)
                if wait <= 0:
                    return
                await asyncio.sleep(wait)

    async def close(self) -> None:
        """Nothing to release."""


class RedisIdentifyQueue:
    """Slots in Redis (``SET NX PX``: Redis' clock holds them), shared by every host of a bot.

    Parameters
    ----------
    url
        The server, e.g. ``redis://127.0.0.1:6379/0``.
    prefix
        Prepended to every key: ``<prefix>:identify:<user id>:<max concurrency>:<bucket>``.
    interval
        How long each IDENTIFY holds its bucket, in seconds.
    timeout
        The longest one Redis call waits.
    client
        A ``redis.asyncio.Redis`` client to use instead of one made from ``url``.
    """

    __slots__ = ("_client", "_local", "_owned", "interval", "prefix", "timeout")

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        prefix: str = "hikari-shard",
        interval: float = DEFAULT_INTERVAL,
        timeout: float = 1.0,
        client: typing.Any = None,
    ) -> None:
        self._owned = client is None
        self._client = sessions.redis_client(url, timeout) if client is None else client
        self._local = _bucket_locks()
        self.prefix = prefix
        self.interval = interval
        self.timeout = timeout

    async def acquire(self, user_id: int, shard_id: int, max_concurrency: int) -> None:
        bucket = shard_id % max_concurrency
        key = f"{self.prefix}:identify:{user_id}:{max_concurrency}:{bucket}"
        milliseconds = max(1, round(self.interval * 1000))
        async with self._local[user_id, max_concurrency, bucket]:
            while True:
                async with asyncio.timeout(self.timeout):
                    if await self._client.set(key, b"1", nx=True, px=milliseconds):
                        return
                    left = await self._client.pttl(key)
                await asyncio.sleep(left / 1000 if left > 0 else 0.01)

    async def close(self) -> None:
        if self._owned:
            await self._client.aclose()


def open_queue(spec: str | os.PathLike[str]) -> IdentifyQueue:
    """The shared queue on the SQLite file or Redis server a ``sessions=`` spec names."""
    if sessions.is_redis_url(spec):
        return RedisIdentifyQueue(typing.cast("str", spec))
    return SQLiteIdentifyQueue(sessions.sqlite_path(spec))


class IdentifyBudget:
    """The day's IDENTIFYs (Discord's ``session_start_limit``), never spent below a reserve.

    Parameters
    ----------
    total
        IDENTIFYs allowed per window.
    remaining
        IDENTIFYs left in this window.
    reset_after
        Seconds until the window resets.
    reserve
        IDENTIFYs kept back: when spending one would leave fewer, :meth:`spend` waits for the reset.
    """

    __slots__ = ("_remaining", "_reserve", "_resets_at", "_total", "_waiting")

    def __init__(self, total: int, remaining: int, reset_after: float, *, reserve: int = 2) -> None:
        self._total = total
        self._remaining = remaining
        self._reserve = reserve
        self._resets_at = time.time() + reset_after
        self._waiting = 0

    def __repr__(self) -> str:
        return f"IdentifyBudget(remaining={self.remaining}, total={self.total}, reserve={self.reserve})"

    @property
    def total(self) -> int:
        """IDENTIFYs allowed per window."""
        return self._total

    @property
    def remaining(self) -> int:
        """IDENTIFYs left in this window."""
        return self._remaining

    @property
    def reserve(self) -> int:
        """IDENTIFYs never spent."""
        return self._reserve

    @property
    def resets_at(self) -> float:
        """``time.time()`` of the window's reset."""
        return self._resets_at

    @property
    def waiting(self) -> bool:
        """Whether an IDENTIFY is waiting for the reset now."""
        return self._waiting > 0

    def update(self, total: int, remaining: int, reset_after: float) -> None:
        """Take in a fresh ``session_start_limit`` (from ``GET /gateway/bot``)."""
        self._total = total
        self._remaining = remaining
        self._resets_at = time.time() + reset_after

    async def spend(self, logger: logging.Logger) -> None:
        """Spend one IDENTIFY, first waiting for the window's reset if only the reserve is left."""
        while self._remaining - 1 < self._reserve:
            wait = self._resets_at - time.time()
            if wait <= 0:
                # A new window (Discord's is a day); a budget no bigger than the reserve waits for the next.
                self._remaining = self._total
                self._resets_at = time.time() + 86_400.0
                continue
            logger.warning(
                "only %s of %s IDENTIFYs left today (keeping %s in reserve): waiting %.0fs for the reset "
                "instead of identifying",
                self.remaining,
                self.total,
                self.reserve,
                wait,
            )
            self._waiting += 1
            try:
                await asyncio.sleep(wait)
            finally:
                self._waiting -= 1
        self._remaining -= 1
