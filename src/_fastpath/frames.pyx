"""Client-side RFC 6455 frame parsing, compiled twin of :mod:`hikari_shard._pure.frames`.

The pure module is the reference: it documents the API and the behaviour, defines the public
constants (imported from it here) and is what the differential tests compare this one against.

The per-frame work is plain C over the chunk's bytes; the only Python calls are creating the
payload ``bytes`` and calling ``on_message``, and not even that one when ``on_message`` is a compiled
:class:`~hikari_shard._fastpath.router.Router`'s ``feed_frame``: that is called in C (cimported
from ``router.pxd``).  The message buffer is ``PyMem`` memory (visible to
:mod:`tracemalloc`), grown by doubling but never past the end of the frame being read.  A one-frame
message split across reads skips it: its ``bytes`` object is allocated when the first payload bytes
arrive (up to 1 MiB) and filled in place.
"""

from __future__ import annotations


cimport cython
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_CheckExact, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.mem cimport PyMem_Free, PyMem_Realloc
from libc.stdint cimport uint64_t
from libc.string cimport memcpy

from hikari import errors

from hikari_shard._fastpath.router cimport Router
from hikari_shard._pure import frames as _reference

__all__ = _reference.__all__
DEFAULT_MAX_MESSAGE_SIZE = _reference.DEFAULT_MAX_MESSAGE_SIZE
OP_CONTINUATION = _reference.OP_CONTINUATION
OP_TEXT = _reference.OP_TEXT
OP_BINARY = _reference.OP_BINARY
OP_CLOSE = _reference.OP_CLOSE
OP_PING = _reference.OP_PING
OP_PONG = _reference.OP_PONG

cdef enum:
    _OP_CONTINUATION = 0
    _OP_TEXT = 1
    _OP_BINARY = 2
    _OP_CLOSE = 8
    _OP_PING = 9
    _OP_PONG = 10
    _MAX_CONTROL_PAYLOAD = 125
    _MAX_HEADER = 10
    # Parser states.
    _HEADER = 0
    _CONTROL_PAYLOAD = 1
    _DATA_PAYLOAD = 2

cdef Py_ssize_t _BUFFER_KEEP = 1024 * 1024
"""A message buffer that grew past this size is dropped after its message instead of reused."""
cdef Py_ssize_t _BUFFER_MIN = 4096
"""The smallest message buffer allocated."""
cdef Py_ssize_t _DIRECT_MAX = 1024 * 1024
"""A one-frame message up to this size that is split across reads is gathered straight into its own
``bytes`` object, allocated from the frame's declared length when its first bytes arrive: one copy
instead of two.  So a server lying about a length makes us allocate at most this much ahead of data."""


cdef inline Py_ssize_t _header_size(unsigned char second_byte) noexcept nogil:
    cdef unsigned char length = second_byte & 0x7F
    if length < 126:
        return 2
    return 4 if length == 126 else 10


cdef object _error(str reason):
    return errors.GatewayTransportError(f"websocket: {reason}")


@cython.final
cdef class FrameParser:
    """Parses the server-to-client frames of one websocket connection.

    The same API as :class:`hikari_shard._pure.frames.FrameParser`, which documents it.
    """

    cdef object _on_message
    cdef Router _router
    """The compiled router whose ``feed_frame`` ``_on_message`` is: called in C, without a Python call."""
    cdef Py_ssize_t _max_message_size
    cdef bint _closed
    cdef int _state
    cdef unsigned char _header[_MAX_HEADER]
    """The first bytes of a header that did not arrive whole."""
    cdef Py_ssize_t _header_used
    cdef int _opcode
    """The opcode of the frame being read (of its message, for a continuation frame)."""
    cdef bint _fin
    """Whether the frame being read is the last of its message."""
    cdef Py_ssize_t _remaining
    """Payload bytes of the frame being read that have not arrived yet."""
    cdef int _fragmented_opcode
    """``OP_TEXT`` or ``OP_BINARY`` while a fragmented message is open, else 0."""
    cdef unsigned char* _message
    """The payload of the unfinished data message (``PyMem`` memory, ``_capacity`` bytes)."""
    cdef Py_ssize_t _capacity
    cdef Py_ssize_t _used
    cdef bytes _direct
    """The payload of a one-frame message split across reads, filled in place (see ``_DIRECT_MAX``)."""
    cdef unsigned char _control[_MAX_CONTROL_PAYLOAD]
    """The payload of a control frame that did not arrive whole."""
    cdef Py_ssize_t _control_used

    def __cinit__(self):
        self._message = NULL
        self._capacity = 0

    def __dealloc__(self):
        PyMem_Free(self._message)

    def __init__(self, on_message, *, max_message_size=DEFAULT_MAX_MESSAGE_SIZE) -> None:
        cdef Py_ssize_t limit = max_message_size
        if limit < 1:
            raise ValueError(f"max_message_size must be at least 1 byte, not {limit}")
        self._on_message = on_message
        owner = getattr(on_message, "__self__", None)
        self._router = owner if type(owner) is Router and on_message == owner.feed_frame else None
        self._max_message_size = limit
        self._closed = False
        self._state = _HEADER
        self._header_used = 0
        self._opcode = 0
        self._fin = True
        self._remaining = 0
        self._fragmented_opcode = 0
        self._used = 0
        self._control_used = 0
        self._direct = None

    @property
    def closed(self) -> bool:
        """Whether the parser is done: a close frame was delivered, or an error was raised."""
        return self._closed

    @property
    def buffered(self) -> int:
        """The number of bytes held for an incomplete frame or fragmented message."""
        return self._header_used + self._used + self._control_used

    @cython.annotation_typing(False)
    def feed_data(self, data: bytes) -> None:
        """Parse the next bytes received from the server (any bytes-like object, split anywhere)."""
        if self._closed:
            return
        if not PyBytes_CheckExact(data):
            data = bytes(data)
        try:
            # ``data`` stays referenced by this frame, so the pointer outlives every callback.
            self._feed(<const unsigned char*> PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data))
        except BaseException:
            self._close()
            raise

    cdef int _feed(self, const unsigned char* data, Py_ssize_t size) except -1:
        cdef Py_ssize_t pos = 0
        cdef Py_ssize_t available, take, need, remaining, end
        cdef const unsigned char* header
        cdef bytes payload
        while True:
            if self._state == _HEADER:
                available = size - pos
                if self._header_used == 0 and available >= 2 and available >= _header_size(data[pos + 1]):
                    header = data + pos
                    pos += _header_size(data[pos + 1])
                else:
                    if available == 0:
                        return 0
                    if self._header_used < 2:
                        take = min(2 - self._header_used, available)
                        memcpy(self._header + self._header_used, data + pos, take)
                        self._header_used += take
                        pos += take
                        if self._header_used < 2:
                            return 0
                        self._check_start(self._header[0], self._header[1])
                    need = _header_size(self._header[1]) - self._header_used
                    take = min(need, size - pos)
                    memcpy(self._header + self._header_used, data + pos, take)
                    self._header_used += take
                    pos += take
                    if take < need:
                        return 0
                    header = self._header
                    self._header_used = 0
                self._begin_frame(header)

            remaining = self._remaining
            available = size - pos
            if self._state == _DATA_PAYLOAD:
                if remaining <= available and self._fin and self._used == 0 and self._fragmented_opcode == 0:
                    # The whole message is this frame and the frame is wholly inside the chunk.
                    payload = PyBytes_FromStringAndSize(<const char*> data + pos, remaining)
                    pos += remaining
                    self._state = _HEADER
                    self._call_on_message(payload)
                    continue
                take = min(remaining, available)
                if take:
                    if self._used == 0 and self._fin and self._fragmented_opcode == 0 and remaining <= _DIRECT_MAX:
                        # A one-frame message split across reads: fill its own bytes object, one copy.
                        self._direct = PyBytes_FromStringAndSize(NULL, remaining)
                    end = self._used + take
                    if self._direct is not None:
                        memcpy(PyBytes_AS_STRING(self._direct) + self._used, data + pos, take)
                    else:
                        if end > self._capacity:
                            self._grow(end)
                        memcpy(self._message + self._used, data + pos, take)
                    self._used = end
                    pos += take
                    self._remaining = remaining = remaining - take
                if remaining:
                    return 0
                self._state = _HEADER
                if self._direct is not None:
                    payload = self._direct
                    self._direct = None
                    self._used = 0
                    self._call_on_message(payload)
                elif self._fin:
                    self._deliver_message()
            else:  # _CONTROL_PAYLOAD
                if remaining <= available and self._control_used == 0:
                    payload = PyBytes_FromStringAndSize(<const char*> data + pos, remaining)
                    pos += remaining
                else:
                    take = min(remaining, available)
                    memcpy(self._control + self._control_used, data + pos, take)
                    self._control_used += take
                    pos += take
                    self._remaining = remaining = remaining - take
                    if remaining:
                        return 0
                    payload = PyBytes_FromStringAndSize(<const char*> self._control, self._control_used)
                    self._control_used = 0
                self._state = _HEADER
                if self._opcode == _OP_CLOSE:
                    self._close()
                    self._call_on_message(payload)
                    return 0
                self._call_on_message(payload)

    cdef inline int _call_on_message(self, bytes payload) except -1:
        """``on_message(opcode, payload)``: a C call when it is a compiled router's ``feed_frame``."""
        if self._router is not None:
            return self._router._feed_frame(self._opcode, payload)
        self._on_message(self._opcode, payload)
        return 0

    cdef int _check_start(self, unsigned char first, unsigned char second) except -1:
        """Accept a valid frame header start in C; otherwise the pure twin's ``_check_start`` raises the error."""
        cdef int opcode = first & 0x0F
        if not (first & 0x70 or second & 0x80):
            if opcode >= _OP_CLOSE:
                if opcode <= _OP_PONG and first & 0x80 and second & 0x7F <= _MAX_CONTROL_PAYLOAD:
                    return 0
            elif opcode == _OP_CONTINUATION:
                if self._fragmented_opcode != 0:
                    return 0
            elif opcode <= _OP_BINARY and self._fragmented_opcode == 0:
                return 0
        _reference._check_start(first, second, self._fragmented_opcode)
        return 0

    cdef int _begin_frame(self, const unsigned char* header) except -1:
        """Take a whole frame header and get ready for its payload."""
        cdef unsigned char first = header[0]
        self._check_start(first, header[1])
        cdef int opcode = first & 0x0F
        cdef uint64_t length = header[1] & 0x7F
        if length == 126:
            length = (<uint64_t> header[2] << 8) | header[3]
        elif length == 127:
            length = (
                (<uint64_t> header[2] << 56) | (<uint64_t> header[3] << 48) | (<uint64_t> header[4] << 40)
                | (<uint64_t> header[5] << 32) | (<uint64_t> header[6] << 24) | (<uint64_t> header[7] << 16)
                | (<uint64_t> header[8] << 8) | <uint64_t> header[9]
            )
            if length >> 63:
                raise _error("a frame declares a 64-bit payload length with the most significant bit set")
        self._opcode = opcode
        if opcode >= _OP_CLOSE:
            if opcode == _OP_CLOSE and length == 1:
                raise _error("a close frame has a 1-byte payload (a close code takes 2)")
            self._remaining = <Py_ssize_t> length
            self._state = _CONTROL_PAYLOAD
            return 0
        if length > <uint64_t> (self._max_message_size - self._used):
            raise _error(
                f"message too big: a {length}-byte frame after {self._used} buffered bytes "
                f"goes over the {self._max_message_size} byte limit"
            )
        self._remaining = <Py_ssize_t> length
        cdef bint fin = first & 0x80
        self._fin = fin
        if opcode == _OP_CONTINUATION:
            self._opcode = self._fragmented_opcode
            if fin:
                self._fragmented_opcode = 0
        elif not fin:
            self._fragmented_opcode = opcode
        self._state = _DATA_PAYLOAD
        return 0

    cdef int _grow(self, Py_ssize_t needed) except -1:
        """Make room for ``needed`` bytes: double, but never past the end of the frame being read."""
        cdef Py_ssize_t capacity = self._capacity * 2
        cdef Py_ssize_t frame_end = self._used + self._remaining
        if capacity < _BUFFER_MIN:
            capacity = _BUFFER_MIN
        if capacity > frame_end:
            capacity = frame_end
        if capacity < needed:
            capacity = needed
        cdef unsigned char* grown = <unsigned char*> PyMem_Realloc(self._message, capacity)
        if grown == NULL:
            raise MemoryError(f"cannot grow the websocket message buffer to {capacity} bytes")
        self._message = grown
        self._capacity = capacity
        return 0

    cdef int _deliver_message(self) except -1:
        cdef bytes payload = PyBytes_FromStringAndSize(<const char*> self._message, self._used)
        self._used = 0
        if self._capacity > _BUFFER_KEEP:
            self._release_buffer()
        self._call_on_message(payload)
        return 0

    cdef void _release_buffer(self) noexcept:
        PyMem_Free(self._message)
        self._message = NULL
        self._capacity = 0

    cdef void _close(self) noexcept:
        self._closed = True
        self._state = _HEADER
        self._header_used = 0
        self._used = 0
        self._control_used = 0
        self._fragmented_opcode = 0
        self._direct = None
        self._release_buffer()
