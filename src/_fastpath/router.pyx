# cython: language_level=3, boundscheck=False, wraparound=False
"""Per-message routing, compiled. Same API and behaviour as ``hikari_shard/_pure/router.py``.

The per-dispatch path (inflate -> scan -> skip, or loads -> checks -> seq -> consume) makes only
the Python calls it is meant to make: the inflator, the scanner, ``wants``, the JSON decoder and
``consume_raw_event``.
"""

import cython
from cpython.bytes cimport PyBytes_GET_SIZE
from cpython.dict cimport PyDict_Clear, PyDict_GetItem, PyDict_GetItemWithError, PyDict_Next, PyDict_SetItem, PyDict_Size
from cpython.exc cimport PyErr_Clear, PyErr_Occurred
from cpython.object cimport PyObject
from libc.stdint cimport uint64_t

cdef extern from "Python.h":
    # Borrowed-reference forms, so looking at a decoded payload's keys touches no reference count.
    bint _is_str "PyUnicode_CheckExact"(PyObject*)
    bint _is_int "PyLong_CheckExact"(PyObject*)
    Py_ssize_t _str_len "PyUnicode_GET_LENGTH"(PyObject*)
    Py_UCS4 _str_char "PyUnicode_READ_CHAR"(PyObject*, Py_ssize_t)
    long long _as_long_long "PyLong_AsLongLong"(PyObject*)

cdef extern from *:
    """
    /* Every change to a dict (insert, replace, delete, clear) gives it a new ma_version_tag on
       CPython 3.11-3.13 (PEP 509; deprecated in 3.12, gone in 3.14): a C-level test of "has this
       dict changed since". 3.14 has no such field, so there the decision is never cached. */
    #if PY_VERSION_HEX < 0x030E0000 && !defined(PYPY_VERSION)
    #define HS_HAVE_DICT_VERSION 1
    #if defined(__GNUC__)
    #pragma GCC diagnostic push
    #pragma GCC diagnostic ignored "-Wdeprecated-declarations"
    #elif defined(_MSC_VER)
    #pragma warning(push)
    #pragma warning(disable: 4996)
    #endif
    static inline uint64_t hs_dict_version(PyObject *d) { return ((PyDictObject *)d)->ma_version_tag; }
    #if defined(__GNUC__)
    #pragma GCC diagnostic pop
    #elif defined(_MSC_VER)
    #pragma warning(pop)
    #endif
    #else
    #define HS_HAVE_DICT_VERSION 0
    static inline uint64_t hs_dict_version(PyObject *d) { (void)d; return 0; }
    #endif
    """
    bint HS_HAVE_DICT_VERSION
    uint64_t hs_dict_version(object d)

from hikari import errors

from hikari_shard._pure.router import ALWAYS_DECODED, CloseFrame, PingFrame, level_cache

__all__ = ("ALWAYS_DECODED", "CloseFrame", "PingFrame", "Router", "level_cache")

cdef int TRACE = 5
cdef int _OP_TEXT = 1
cdef int _OP_BINARY = 2
cdef int _OP_CLOSE = 8
cdef int _OP_PING = 9
cdef int _OP_PONG = 10
cdef int _INFLATED = -1  # the pure twin's handle() goes through feed_frame with it
cdef str _READY = "READY"
cdef frozenset _ALWAYS = ALWAYS_DECODED
cdef str _KEY_OP = "op"
cdef str _KEY_T = "t"
cdef str _KEY_S = "s"
cdef str _KEY_D = "d"
cdef object _TRUE = True
cdef object _FALSE = False
cdef object _TRACE_LEVEL = 5
cdef object _ZERO = 0
cdef Py_ssize_t _MAX_DECISIONS = 512  # event names a server could invent; Discord has ~80


cdef object _bad_payload(str what):
    return errors.GatewayTransportError(f"received an invalid gateway payload: {what}")


cdef inline bint _is_special(object name) except -1:
    """``name in ALWAYS_DECODED`` (READY, RESUMED, RATE_LIMITED), most names answered by length and first letter."""
    cdef Py_ssize_t length = _str_len(<PyObject*>name)
    if (length == 5 or length == 7 or length == 12) and _str_char(<PyObject*>name, 0) == 0x52:  # "R"
        return name in _ALWAYS
    return False


cdef inline bint _is_dispatch(PyObject* op) except -1:
    """``op == 0`` for an exact int: the small-int singleton first, a real comparison otherwise."""
    return op == <PyObject*>_ZERO or <object>op == 0


cdef long long _seq_value(PyObject* value) except? -1:
    """A dispatch's ``s`` (an exact int) as a C integer; beyond 64 bits it is an invalid payload, as in the pure twin."""
    cdef long long seq = _as_long_long(value)
    if seq == -1 and PyErr_Occurred() is not NULL:
        PyErr_Clear()
        raise _bad_payload(f"dispatch 's' is out of range: {<object>value}")
    return seq


@cython.final
cdef class _Tally:
    """One event name's dispatch count: a C integer bumped in place (no int object per dispatch)."""

    cdef Py_ssize_t n


@cython.final
cdef class Router:
    """Route the messages of one gateway connection (see the pure twin for the parameters).

    Its C attributes and methods are declared in ``src/hikari_shard/_fastpath/router.pxd``.
    """

    def __init__(
        self,
        *,
        shard,
        consume,
        on_special,
        loads,
        consumers,
        scan,
        inflator,
        expect_binary,
        logger,
        redact,
        pending,
    ):
        self._shard = shard
        self._consume = consume
        self._on_special = on_special
        self._loads = loads
        self._scan = scan if consumers is not None else None
        if consumers is not None:
            self._listeners = consumers.listeners
            self._waiters = consumers.waiters
            self._consumers = consumers.consumers
            self._by_name = consumers.by_name
            self._payload_types = consumers.payload_event_types
            self._decisions = {}
            self._listeners_version = hs_dict_version(self._listeners)
            self._waiters_version = hs_dict_version(self._waiters)
        self._inflator = inflator
        self._inflate = inflator.feed if inflator is not None else None
        self._expect_binary = expect_binary
        self._logger = logger
        self._is_enabled_for = logger.isEnabledFor
        self._log_cache = level_cache(logger)
        self._log_version = 0
        self._redact = redact
        self.pending = pending
        self._append = pending.append
        self._has_seq = False
        self.skipped = 0
        self.waiter = None
        self.closed = False
        self._tallies = {}
        self.messages = 0
        self.bytes_received = 0
        self.bytes_inflated = 0
        self.largest = 0
        self.recorder = None

    @property
    def seq(self):
        """The last sequence number seen (``None`` before the first)."""
        return self._seq if self._has_seq else None

    @seq.setter
    def seq(self, value):
        if value is None:
            self._has_seq = False
        else:
            self._seq = value
            self._has_seq = True

    def close(self):
        """Ignore every later message; the shard resumes from :attr:`seq` on a new connection."""
        self.closed = True

    cdef void _push(self, object item) except *:
        self._append(item)
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def push(self, item):
        """Append ``item`` to :attr:`pending` and wake the waiter (used for errors from the socket too)."""
        self._push(item)

    def feed_frame(self, int opcode, payload):
        """Process one websocket message (opcode and whole payload)."""
        self._feed_frame(opcode, payload)

    cdef int _feed_frame(self, int opcode, object payload) except -1:
        """:meth:`feed_frame`, which the compiled frames module calls without a Python call."""
        cdef object raw
        if self.closed:
            return 0
        if opcode == _OP_BINARY:
            if self._expect_binary is False:
                raise errors.GatewayTransportError("Unexpected message type received BINARY, expected TEXT")
            self.bytes_received += len(payload)
            if self._inflate is not None:
                raw = self._inflate(payload)
                if raw is None:
                    return 0
                self._handle(raw)
            else:
                self._handle(payload)
        elif opcode == _OP_TEXT:
            if self._expect_binary is True:
                raise errors.GatewayTransportError("Unexpected message type received TEXT, expected BINARY")
            self.bytes_received += len(payload)
            self._handle(payload)
        elif opcode == _INFLATED:
            self._handle(payload)
        elif opcode == _OP_CLOSE:
            code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005
            reason = payload[2:].decode("utf-8", "replace")
            self._push(CloseFrame(code, reason))
        elif opcode == _OP_PING:
            self._push(PingFrame(bytes(payload)))
        elif opcode != _OP_PONG:
            raise errors.GatewayTransportError(f"unexpected websocket opcode {opcode}")
        return 0

    def handle(self, raw):
        """Process one inflated JSON payload."""
        self._handle(raw)

    cdef bint _wanted(self, object name) except -1:
        """The pure ConsumerIndex.wants: one dict lookup while the listeners and waiters are unchanged.

        A consumer's ``is_enabled`` and the ShardPayloadEvent check change only when hikari adds
        or removes a key of ``_listeners`` or ``_waiters`` (its group counts move with the keys;
        ``is_caching`` is fixed), so the answer per name is kept until either dict changes.
        """
        cdef PyObject* found
        cdef bint wanted
        if not HS_HAVE_DICT_VERSION:
            return self._wants_now(name)
        if (
            hs_dict_version(self._listeners) != self._listeners_version
            or hs_dict_version(self._waiters) != self._waiters_version
        ):
            PyDict_Clear(self._decisions)
            self._listeners_version = hs_dict_version(self._listeners)
            self._waiters_version = hs_dict_version(self._waiters)
        else:
            found = PyDict_GetItemWithError(self._decisions, name)
            if found is not NULL:
                return found == <PyObject*>_TRUE
        wanted = self._wants_now(name)
        if PyDict_Size(self._decisions) >= _MAX_DECISIONS:
            PyDict_Clear(self._decisions)
        PyDict_SetItem(self._decisions, name, True if wanted else False)
        return wanted

    cdef bint _wants_now(self, object name) except -1:
        """The pure ConsumerIndex.wants, inlined: would hikari's event manager consume ``name``?"""
        cdef PyObject* found
        if self._listeners or self._waiters:
            for event_type in self._payload_types:
                if event_type in self._listeners or event_type in self._waiters:
                    return True
        found = PyDict_GetItem(self._by_name, name)
        if found is NULL:
            consumer = self._consumers.get(name.lower())
            self._by_name[name] = consumer
        else:
            consumer = <object>found
        if consumer is None:
            return False  # hikari raises LookupError for it and ignores the event
        return bool(consumer.is_enabled)

    cdef bint _trace_enabled(self) except -1:
        """``logger.isEnabledFor(TRACE)``: a C-level look at its own cache when that says no.

        logging empties that cache in place on every level change (``_clear_cache``), which gives
        it a new version tag, so a "no" read from it stands while its version is unchanged.
        """
        cdef PyObject* found
        if self._log_cache is not None:
            if HS_HAVE_DICT_VERSION and hs_dict_version(self._log_cache) == self._log_version:
                return False
            found = PyDict_GetItemWithError(self._log_cache, _TRACE_LEVEL)
            if found == <PyObject*>_FALSE:
                self._log_version = hs_dict_version(self._log_cache)
                return False  # isEnabledFor returns this cached False (or False for a disabled logger)
        return bool(self._is_enabled_for(TRACE))

    cdef bint _is_duplicate(self, long long seq, object name) except -1:
        """The pure twin's ``_is_duplicate`` on C integers (READY is compared only when it matters)."""
        cdef long long last
        if not self._has_seq:
            return False
        last = self._seq
        if seq > last:
            if seq != last + 1 and name != _READY:
                self._logger.warning("sequence gap: expected seq %s, received %s for %s", last + 1, seq, name)
            return False
        if name == _READY:
            return False
        self._logger.debug("dropping %s with seq %s already seen (last seq %s)", name, seq, last)
        return True

    cdef inline void _set_seq(self, long long seq) noexcept:
        self._seq = seq
        self._has_seq = True

    @property
    def events(self):
        """Dispatches by event name since :meth:`take_events` (a new dict, see the pure twin)."""
        return {name: (<_Tally>tally).n for name, tally in self._tallies.items()}

    def take_events(self):
        """:attr:`events`, and start counting again from zero."""
        events = self.events
        self._tallies = {}
        return events

    cdef inline int _count(self, object name, object raw) except -1:
        cdef _Tally tally
        cdef PyObject* item = PyDict_GetItemWithError(self._tallies, name)
        if item is NULL:
            tally = _Tally()
            self._tallies[name] = tally
        else:
            tally = <_Tally>item
        tally.n += 1
        if self.recorder is not None:
            self.recorder(raw)
        return 0

    cdef int _handle(self, object raw) except -1:
        cdef tuple header
        cdef object name, seq, payload, data
        cdef PyObject* key
        cdef PyObject* value
        cdef PyObject* op_item = NULL
        cdef PyObject* t_item = NULL
        cdef PyObject* s_item = NULL
        cdef PyObject* d_item = NULL
        cdef Py_ssize_t position = 0, length
        cdef Py_UCS4 first
        cdef long long seq_c = 0
        cdef bint has_seq = False, special
        cdef Py_ssize_t size = len(raw)
        self.messages += 1
        self.bytes_inflated += size
        if size > self.largest:
            self.largest = size
        if self._scan is not None:
            header = self._scan(raw)
            if header is not None and header[0] == 0:
                name = header[2]
                if name is not None and not _is_special(name) and not self._wanted(name):
                    seq = header[1]
                    if seq is not None:
                        seq_c = _seq_value(<PyObject*>seq)
                        if self._is_duplicate(seq_c, name):
                            return 0
                        self._set_seq(seq_c)
                    self.skipped += 1
                    self._count(name, raw)
                    if self._trace_enabled():
                        self._logger.log(TRACE, "skipped dispatch %s [seq:%s, size:%s], nothing consumes it", name, seq, size)
                    return 0

        if self._trace_enabled():
            self._logger.log(TRACE, "received payload with size %s\n    %s", len(raw), self._redact(raw))

        try:
            payload = self._loads(raw)
        except Exception as ex:  # orjson/json raise ValueErrors, msgspec its DecodeError, a user loads anything
            raise errors.GatewayTransportError(
                f"invalid JSON ({type(ex).__name__}: {ex}) in a payload of {len(raw)} bytes"
            ) from None
        if type(payload) is not dict:
            raise _bad_payload(f"expected a JSON object, got {type(payload).__name__}")

        # One pass over the members (Discord sends four) finds op, t, s and d by their keys' length
        # and letters, in place of four hash lookups; a key that is not an exact str (a user's
        # loads) sends it to the lookups.
        while PyDict_Next(payload, &position, &key, &value):
            if not _is_str(key):
                op_item = PyDict_GetItem(payload, _KEY_OP)
                t_item = PyDict_GetItem(payload, _KEY_T)
                s_item = PyDict_GetItem(payload, _KEY_S)
                d_item = PyDict_GetItem(payload, _KEY_D)
                break
            length = _str_len(key)
            if length == 1:
                first = _str_char(key, 0)
                if first == 0x74:  # t
                    t_item = value
                elif first == 0x73:  # s
                    s_item = value
                elif first == 0x64:  # d
                    d_item = value
            elif length == 2 and _str_char(key, 0) == 0x6F and _str_char(key, 1) == 0x70:  # op
                op_item = value

        if op_item is NULL or not _is_int(op_item):
            raise _bad_payload(f"'op' must be an integer, got {type(<object>op_item if op_item is not NULL else None).__name__}")
        if not _is_dispatch(op_item):
            self._push(payload)
            return 0

        if t_item is NULL or not _is_str(t_item):
            raise _bad_payload(
                f"dispatch 't' must be a string, got {type(<object>t_item if t_item is not NULL else None).__name__}"
            )
        name = <object>t_item
        if d_item is NULL:
            raise _bad_payload(f"dispatch {name} has no 'd'")
        if s_item is not NULL and s_item != <PyObject*>None:
            if not _is_int(s_item):
                raise _bad_payload(f"dispatch 's' must be an integer, got {type(<object>s_item).__name__}")
            seq_c = _seq_value(s_item)
            has_seq = True
        data = <object>d_item
        special = _is_special(name)
        if has_seq:
            if not self._is_duplicate(seq_c, name):
                self._set_seq(seq_c)
            elif not special:
                return 0
            # READY/RESUMED/RATE_LIMITED are never deduplicated away: the handshake depends on them.
        self._count(name, raw)
        if special:
            self._on_special(name, data)
        try:
            self._consume(name, self._shard, data)
        except LookupError:
            self._logger.debug("ignoring unknown event %s", name)
        return 0
