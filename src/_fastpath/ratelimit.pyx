# cython: annotation_typing=False
"""The gateway command rate limiter, compiled twin of :mod:`hikari_shard._pure.ratelimit`.

Discord allows 120 gateway commands per 60 seconds on one connection.  :class:`CommandRateLimiter`
enforces that with a sliding window over the moments slots were granted (hikari's stock limiter
uses fixed windows), and keeps a few slots that only priority commands (heartbeats) may take, so a
burst of presence updates can never starve the heartbeat and get the shard disconnected.

The window is a C ring buffer of grant times.  :meth:`CommandRateLimiter.try_acquire` is pure C
when the clock is :func:`time.monotonic` (read through CPython's C API instead of a Python call).
"""

from __future__ import annotations

__all__ = ("CommandRateLimiter",)

cimport cython
from cpython.list cimport PyList_GET_SIZE
from cpython.mem cimport PyMem_Free, PyMem_Malloc
from cpython.time cimport monotonic
from libc.math cimport isfinite

import asyncio
import time

from hikari import errors


cdef object _closed_error():
    return errors.ComponentStateConflictError("the gateway command rate limiter is closed")


@cython.final
cdef class CommandRateLimiter:
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

    cdef double* _sends
    """Ring buffer of ``_limit`` grant times; ``_count`` of them from ``_head`` are in the window, oldest first."""
    cdef Py_ssize_t _head
    cdef Py_ssize_t _count
    cdef Py_ssize_t _limit
    cdef Py_ssize_t _normal_cap
    cdef double _period
    cdef object _clock
    cdef bint _native_clock
    """``clock`` is :func:`time.monotonic`, so it is read in C."""
    cdef list _priority_waiters
    cdef list _normal_waiters
    cdef object _error
    cdef object _loop
    cdef object _timer
    cdef double _timer_due

    def __cinit__(self):
        self._sends = NULL

    def __init__(self, limit: int = 120, period: float = 60.0, reserved: int = 3, *, clock=time.monotonic) -> None:
        cdef Py_ssize_t limit_ = limit
        cdef Py_ssize_t reserved_ = reserved
        cdef double period_ = period
        if limit_ < 1:
            raise ValueError(f"limit must be at least 1, not {limit_}")
        if not 0 <= reserved_ < limit_:
            raise ValueError(f"reserved must be at least 0 and below limit ({limit_}), not {reserved_}")
        if not (period_ > 0 and isfinite(period_)):
            raise ValueError(f"period must be a positive number of seconds, not {period_}")
        cdef double* sends = <double*> PyMem_Malloc(limit_ * sizeof(double))
        if sends is NULL:
            raise MemoryError
        PyMem_Free(self._sends)
        self._sends = sends
        self._head = 0
        self._count = 0
        self._limit = limit_
        self._normal_cap = limit_ - reserved_
        self._period = period_
        self._clock = clock
        self._native_clock = clock is time.monotonic
        self._priority_waiters = []
        self._normal_waiters = []
        self._error = None
        self._loop = None
        self._timer = None
        self._timer_due = 0.0

    def __dealloc__(self):
        PyMem_Free(self._sends)

    @property
    def remaining(self) -> int:
        """The number of non-priority slots free right now."""
        self._expire(self._now())
        return max(self._normal_cap - self._count, 0)

    @property
    def waiting(self) -> int:
        """The number of callers queued in :meth:`acquire`."""
        return PyList_GET_SIZE(self._priority_waiters) + PyList_GET_SIZE(self._normal_waiters)

    def try_acquire(self, bint priority=False) -> bool:
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

    async def acquire(self, *, bint priority=False) -> None:
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
        future = loop.create_future()
        cdef list queue = self._priority_waiters if priority else self._normal_waiters
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
        if error is None:
            error = _closed_error()
        self._error = error
        self._cancel_timer()
        cdef list waiters = self._priority_waiters + self._normal_waiters
        del self._priority_waiters[:]
        del self._normal_waiters[:]
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

    cdef inline bint _try_acquire(self, bint priority) except -1:
        cdef Py_ssize_t cap
        if priority:
            if PyList_GET_SIZE(self._priority_waiters) or self._error is not None:
                return 0
            cap = self._limit
        else:
            if (
                PyList_GET_SIZE(self._normal_waiters)
                or PyList_GET_SIZE(self._priority_waiters)
                or self._error is not None
            ):
                return 0
            cap = self._normal_cap
        cdef double now = self._now()
        self._expire(now)
        if self._count >= cap:
            return 0
        self._record(now)
        return 1

    cdef inline double _now(self) except? -1.0:
        if self._native_clock:
            return monotonic()
        return self._clock()

    cdef inline void _expire(self, double now) noexcept:
        while self._count and self._sends[self._head] + self._period <= now:
            self._head += 1
            if self._head == self._limit:
                self._head = 0
            self._count -= 1

    cdef inline double _nth(self, Py_ssize_t index) noexcept:
        """The grant time ``index`` places from the oldest in the window."""
        index += self._head
        if index >= self._limit:
            index -= self._limit
        return self._sends[index]

    cdef inline void _record(self, double now) noexcept:
        cdef Py_ssize_t index = self._head + self._count
        if index >= self._limit:
            index -= self._limit
        self._sends[index] = now
        self._count += 1

    cdef int _pump(self) except -1:
        """Grant slots to waiters in order while the window allows, then time the next grant."""
        if self._error is not None:
            return 0
        cdef double now = self._now()
        self._expire(now)
        cdef list queue
        cdef Py_ssize_t cap
        for queue, cap in ((self._priority_waiters, self._limit), (self._normal_waiters, self._normal_cap)):
            while PyList_GET_SIZE(queue):
                head = queue[0]
                if head.done():  # cancelled; its task removes nothing that is still here
                    queue.pop(0)
                    continue
                if self._count >= cap:
                    # The head may go once enough sends leave the window to bring it under its cap.
                    self._arm_timer(self._nth(self._count - cap) + self._period, now)
                    return 0
                queue.pop(0)
                head.set_result(now)
                self._record(now)
        self._cancel_timer()
        return 0

    cdef int _arm_timer(self, double due, double now) except -1:
        if self._timer is not None:
            if self._timer_due == due:
                return 0
            self._timer.cancel()
        self._timer_due = due
        self._timer = self._loop.call_at(self._loop.time() + (due - now), self._on_timer)
        return 0

    cdef int _cancel_timer(self) except -1:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        return 0

    def _on_timer(self) -> None:
        self._timer = None
        self._pump()

    cdef int _abandon(self, object future, list queue) except -1:
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
        return 0

    cdef int _refund(self, double granted_at) except -1:
        self._expire(self._now())
        cdef Py_ssize_t index = self._count - 1
        while index >= 0 and self._nth(index) != granted_at:
            index -= 1
        if index < 0:
            return 0
        cdef Py_ssize_t slot, following
        while index < self._count - 1:
            slot = (self._head + index) % self._limit
            following = (self._head + index + 1) % self._limit
            self._sends[slot] = self._sends[following]
            index += 1
        self._count -= 1
        return 0
