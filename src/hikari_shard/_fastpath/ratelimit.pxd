# The C types that Cython adds when it compiles src/hikari_shard/_pure/ratelimit.py into
# hikari_shard._fastpath.ratelimit (setup.py).  The logic lives only in that .py file.

cimport cython


cdef object _closed_error()


@cython.final
cdef class CommandRateLimiter:
    cdef double[::1] _sends
    cdef Py_ssize_t _head
    cdef Py_ssize_t _count
    cdef Py_ssize_t _limit
    cdef Py_ssize_t _normal_cap
    cdef double _period
    cdef object _clock
    cdef list _priority_waiters
    cdef list _normal_waiters
    cdef object _error
    cdef object _loop
    cdef object _timer
    cdef double _timer_due

    @cython.locals(cap=Py_ssize_t, now=double, period=double, limit=Py_ssize_t, head=Py_ssize_t, count=Py_ssize_t, index=Py_ssize_t)
    cdef inline bint _try_acquire(self, bint priority) except -1

    @cython.locals(period=double, head=Py_ssize_t, count=Py_ssize_t)
    cdef inline void _expire(self, double now) noexcept

    cdef inline double _nth(self, Py_ssize_t index) noexcept

    @cython.locals(index=Py_ssize_t)
    cdef inline void _record(self, double now) noexcept

    @cython.locals(now=double, queue=list, cap=Py_ssize_t)
    cdef _pump(self)

    cdef _arm_timer(self, double due, double now)

    cdef _cancel_timer(self)

    cdef _abandon(self, object future, list queue)

    @cython.locals(sends=double[::1], index=Py_ssize_t, slot=Py_ssize_t, following=Py_ssize_t)
    cdef _refund(self, double granted_at)
