# The C interface of hikari_shard._fastpath.router, the hand-written src/_fastpath/router.pyx
# (setup.py): what other compiled modules may cimport.  frames calls Router._feed_frame directly,
# without a Python call, when its on_message is a Router's feed_frame.  A cdef class with a .pxd
# declares all its C attributes and methods here; their code stays in the .pyx.

cimport cython
from libc.stdint cimport uint64_t


@cython.final
cdef class Router:
    cdef object _shard
    cdef object _consume
    cdef object _on_special
    cdef object _loads
    cdef dict _listeners
    cdef dict _waiters
    cdef dict _consumers
    cdef dict _by_name
    cdef dict _decisions
    cdef uint64_t _listeners_version
    cdef uint64_t _waiters_version
    cdef tuple _payload_types
    cdef object _scan
    cdef object _inflator
    cdef object _inflate
    cdef object _expect_binary
    cdef object _logger
    cdef object _is_enabled_for
    cdef dict _log_cache
    cdef uint64_t _log_version  # the version of _log_cache when it last said "no" (0: never)
    cdef object _redact
    cdef public object pending
    cdef object _append
    cdef long long _seq  # the last sequence number seen, when _has_seq
    cdef bint _has_seq
    cdef public Py_ssize_t skipped
    cdef public object waiter
    cdef public bint closed
    # Receive-path statistics (hikari_shard.stats reads them; see the pure twin for each one).
    cdef dict _tallies
    cdef public Py_ssize_t messages
    cdef public Py_ssize_t bytes_received
    cdef public Py_ssize_t bytes_inflated
    cdef public Py_ssize_t largest
    cdef public object recorder

    cdef int _feed_frame(self, int opcode, object payload) except -1
    cdef void _push(self, object item) except *
    cdef bint _wanted(self, object name) except -1
    cdef bint _wants_now(self, object name) except -1
    cdef bint _trace_enabled(self) except -1
    cdef bint _is_duplicate(self, long long seq, object name) except -1
    cdef void _set_seq(self, long long seq) noexcept
    cdef int _count(self, object name, object raw) except -1
    cdef int _handle(self, object raw) except -1
