# cython: annotation_typing=False
"""The gateway command rate limiter: one source for both implementations.

Discord allows 120 gateway commands per 60 seconds on one connection.  :class:`CommandRateLimiter`
enforces that with a sliding window over the moments slots were granted (hikari's stock limiter
uses fixed windows), and keeps a few slots that only priority commands (heartbeats) may take, so a
burst of presence updates can never starve the heartbeat and get the shard disconnected.

This file is the pure-Python implementation, and Cython compiles the same file into
``hikari_shard._fastpath.ratelimit`` with the C types declared in
``src/hikari_shard/_fastpath/ratelimit.pxd`` (see ``setup.py``).  Keep it plain Python: no
``cython`` import, nothing that only one of the two can run.
"""

from __future__ import annotations

__all__ = ("CommandRateLimiter",)

import array
import asyncio
import math
import operator
import time
import typing

from hikari import errors


def _closed_error() -> errors.ComponentStateConflictError:
    return errors.ComponentStateConflictError("the gateway command rate limiter is closed")


class CommandRateLimiter:
    """A sliding-window limiter for commands sent on one gateway connection.

    A send is recorded at the moment its slot is granted.  Within any ``period`` seconds at most
    ``limit`` slots are granted, and a non-priority slot only while fewer than
    ``limit - reserved`` are in use, so ``reserved`` slots are always left for priority sends.
    Waiting priority callers are served before non-priority ones, each class in arrival order.

    Parameters
    ----------
    limit
        The most sends in any ``period``-long window.
    period
        The window length, in seconds.
    reserved
        Slots of every window that only priority sends may take.
    clock
        The monotonic clock, in seconds, that sends are timed with.  Timers for waiters run on the
        event loop for the same span of time.

    Raises
    ------
    ValueError
        If ``limit`` is below 1, ``reserved`` is not in ``[0, limit)``, or ``period`` is not a
        positive finite number.
    """

    __slots__ = (
        "_clock",
        "_count",
        "_error",
        "_head",
        "_limit",
        "_loop",
        "_normal_cap",
        "_normal_waiters",
        "_period",
        "_priority_waiters",
        "_sends",
        "_timer",
        "_timer_due",
    )

    def __init__(
        self,
        limit: int = 120,
        period: float = 60.0,
        reserved: int = 3,
        *,
        clock: typing.Callable[[], float] = time.monotonic,
    ) -> None:
        limit = operator.index(limit)
        reserved = operator.index(reserved)
        period = float(period)
        if limit < 1:
            msg = f"limit must be at least 1, not {limit}"
            raise ValueError(msg)
        if not 0 <= reserved < limit:
            msg = f"reserved must be at least 0 and below limit ({limit}), not {reserved}"
            raise ValueError(msg)
        if not (period > 0 and math.isfinite(period)):
            msg = f"period must be a positive number of seconds, not {period}"
            raise ValueError(msg)
        self._limit = limit
        self._normal_cap = limit - reserved
        self._period = period
        self._clock = clock
        self._sends = array.array("d", [0.0]) * limit
        """Ring buffer of grant times: ``_count`` of them from ``_head`` are in the window, oldest first."""
        self._head = 0
        self._count = 0
        self._priority_waiters: list[asyncio.Future[float]] = []
        self._normal_waiters: list[asyncio.Future[float]] = []
        self._error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_due = 0.0

    @property
    def remaining(self) -> int:
        """The number of non-priority slots free right now."""
        self._expire(self._clock())
        return max(self._normal_cap - self._count, 0)

    @property
    def waiting(self) -> int:
        """The number of callers queued in :meth:`acquire`."""
        return len(self._priority_waiters) + len(self._normal_waiters)

    def try_acquire(self, priority: bool = False) -> bool:
        """Take a slot now if one is free and nobody of equal or higher priority is waiting.

        Parameters
        ----------
        priority
            Whether the send may use the reserved slots and jump non-priority waiters.

        Returns
        -------
        bool
            `True` if a slot was taken (and recorded), `False` if the caller has to wait, or the
            limiter is closed.
        """
        return self._try_acquire(priority)

    def _try_acquire(self, priority: bool) -> bool:
        if priority:
            if self._priority_waiters or self._error is not None:
                return False
            cap = self._limit
        else:
            if self._normal_waiters or self._priority_waiters or self._error is not None:
                return False
            cap = self._normal_cap
        # _expire and _record, written out: this runs before every send.
        now = self._clock()
        period = self._period
        limit = self._limit
        head = self._head
        count = self._count
        while count and self._sends[head] + period <= now:
            head += 1
            if head == limit:
                head = 0
            count -= 1
        self._head = head
        if count >= cap:
            self._count = count
            return False
        index = head + count
        self._sends[index - limit if index >= limit else index] = now
        self._count = count + 1
        return True

    async def acquire(self, *, priority: bool = False) -> None:
        """Wait for a slot and take it.

        Parameters
        ----------
        priority
            Whether the send may use the reserved slots and jump non-priority waiters.

        Raises
        ------
        BaseException
            The error given to :meth:`close` (by default
            :class:`hikari.errors.ComponentStateConflictError`) if the limiter is or gets closed.
        """
        if self._error is not None:
            raise self._error
        if self._try_acquire(priority):
            return
        loop = asyncio.get_running_loop()
        self._loop = loop
        future: asyncio.Future[float] = loop.create_future()
        queue = self._priority_waiters if priority else self._normal_waiters
        queue.append(future)
        self._pump()
        try:
            await future
        except BaseException:
            self._abandon(future, queue)
            raise

    def close(self, error: BaseException | None = None) -> None:
        """Fail every waiter, and every later :meth:`acquire` until :meth:`reset`.

        Parameters
        ----------
        error
            The exception to raise in waiters.  Defaults to a
            :class:`hikari.errors.ComponentStateConflictError` saying the limiter is closed.
        """
        self._error = error = _closed_error() if error is None else error
        self._cancel_timer()
        waiters = self._priority_waiters + self._normal_waiters
        self._priority_waiters.clear()
        self._normal_waiters.clear()
        for future in waiters:
            if not future.done():
                future.set_exception(error)

    def reset(self) -> None:
        """Forget the window for a new connection and reopen after :meth:`close`.

        Callers still waiting keep their place and are served as slots allow.
        """
        self._error = None
        self._head = 0
        self._count = 0
        self._pump()

    def _expire(self, now: float) -> None:
        """Drop the grants that have left the window by ``now``."""
        period = self._period
        head = self._head
        count = self._count
        while count and self._sends[head] + period <= now:
            head += 1
            if head == self._limit:
                head = 0
            count -= 1
        self._head = head
        self._count = count

    def _nth(self, index: int) -> float:
        """The grant time ``index`` places from the oldest in the window."""
        index += self._head
        if index >= self._limit:
            index -= self._limit
        return self._sends[index]

    def _record(self, now: float) -> None:
        index = self._head + self._count
        if index >= self._limit:
            index -= self._limit
        self._sends[index] = now
        self._count += 1

    def _pump(self) -> None:
        """Grant slots to waiters in order while the window allows, then time the next grant."""
        if self._error is not None:
            return
        now = self._clock()
        self._expire(now)
        for queue, cap in ((self._priority_waiters, self._limit), (self._normal_waiters, self._normal_cap)):
            while queue:
                if queue[0].done():  # cancelled; its task removes nothing that is still here
                    del queue[0]
                    continue
                if self._count >= cap:
                    # The head may go once enough sends leave the window to bring it under its cap.
                    self._arm_timer(self._nth(self._count - cap) + self._period, now)
                    return
                queue.pop(0).set_result(now)
                self._record(now)
        self._cancel_timer()

    def _arm_timer(self, due: float, now: float) -> None:
        if self._timer is not None:
            if self._timer_due == due:
                return
            self._timer.cancel()
        assert self._loop is not None
        self._timer_due = due
        self._timer = self._loop.call_at(self._loop.time() + (due - now), self._on_timer)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _on_timer(self) -> None:
        self._timer = None
        self._pump()

    def _abandon(self, future: asyncio.Future[float], queue: list[asyncio.Future[float]]) -> None:
        """Clean up after a waiter that stopped waiting without taking its slot (cancelled)."""
        if not future.done() or future.cancelled():
            try:
                queue.remove(future)
            except ValueError:
                pass
        elif future.exception() is None:
            # Granted, but cancelled before it could run: hand the slot back.
            self._refund(future.result())
        self._pump()

    def _refund(self, granted_at: float) -> None:
        """Take the grant made at ``granted_at`` out of the window, closing the gap it leaves."""
        self._expire(self._clock())
        index = self._count - 1
        while index >= 0 and self._nth(index) != granted_at:
            index -= 1
        if index < 0:
            return
        sends = self._sends
        while index < self._count - 1:
            slot = self._head + index
            following = slot + 1
            sends[slot % self._limit] = sends[following % self._limit]
            index += 1
        self._count -= 1
