# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Read ``op``, ``s`` and ``t`` from a gateway payload without decoding it (compiled).

Same API and same result on every input as the pure twin :mod:`hikari_shard._pure.scan`, whose
module documentation is the full specification.

:func:`scan` walks the members of the top-level JSON object in one C loop over the buffer and
returns ``(op, s, t)``, or ``None`` when it is unsure, in which case the caller decodes the payload
fully (with orjson).  The result routes the payload, so it is never wrong: every input that is not
plainly one of the accepted shapes gives ``None``.

* Leading/trailing JSON whitespace is allowed around one top-level object.
* Top-level keys must not contain backslash escapes (one could spell ``op``).
* ``op``: digits only, no leading zero, at most 18 digits, required.  ``s``: the same or ``null``.
  ``t``: ``null`` or printable ASCII without escapes.  A repeated ``op``/``s``/``t`` gives ``None``.
* Other values are skipped structurally: strings honour escapes, brackets must match and nest at
  most 512 levels (the top-level object is level 1), a bare top-level value is a run of
  ``A-Z a-z 0-9 + - .``.
* Early stop: once ``op``, ``s`` and ``t`` have all been read, a following member ``"d"`` (exactly,
  no escapes) whose value opens with ``{`` or ``[`` is not walked when the buffer ends, but for
  whitespace, with the matching closer after that bracket and then ``}``: ``(op, s, t)`` is
  returned at once.  Discord sends ``d`` last, so skipping it (most of the work) is avoided; when
  the end check fails the walk goes on as above.

What is not checked: the JSON grammar *inside* skipped values (``{"op":0,"d":{"a":tru}}`` gives
``(0, None, None)``; the consumer that decodes ``d`` rejects such a payload anyway), and after an
early stop the structure of ``d`` and the members after it: ``{"t":"A","s":1,"op":0,"d":{},
"t":"B","x":{}}`` gives the first ``t``, ``"A"``, where orjson keeps the last (RFC 8259 section 4
leaves repeated names to the implementation; Discord never repeats a key), and a payload cut just
after a closer inside ``d`` (``{"op":0,"s":1,"t":null,"d":{"a":{}}``) is not seen as truncated.

Event names (``t``) up to 64 bytes are kept in a 256-slot direct-mapped cache, so a repeated name
costs no allocation.
"""

from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_CheckExact, PyBytes_GET_SIZE
from cpython.unicode cimport PyUnicode_DecodeASCII
from libc.string cimport memchr, memcmp

cdef extern from "Python.h":
    Py_ssize_t PyUnicode_GET_LENGTH(object)
    void* PyUnicode_DATA(object)

__all__ = ("MAX_DEPTH", "scan")

cdef enum:
    _MAX_DEPTH_C = 512
    _CACHE_SLOTS = 256
    _CACHE_MAX_LEN = 64
    # Nested containers below the top-level object: level 2 .. MAX_DEPTH.
    _STACK_SIZE = _MAX_DEPTH_C - 1

    _KEY_OTHER = 0
    _KEY_OP = 1
    _KEY_S = 2
    _KEY_T = 3

    # _CLASS table bits
    _C_WS = 1
    _C_SCALAR = 2
    _C_STRUCT = 4  # " { } [ ]  (what matters inside a skipped container)
    _C_TCHAR = 8   # printable ASCII other than " and backslash


cdef struct _Found:
    long long op
    long long s
    Py_ssize_t t_start
    Py_ssize_t t_len
    bint has_s
    bint has_t


cdef unsigned char _CLASS[256]
cdef list _T_CACHE = [None] * _CACHE_SLOTS


cdef void _init_tables() noexcept:
    cdef int c
    for c in range(256):
        _CLASS[c] = 0
    for c in b" \t\n\r":
        _CLASS[c] |= _C_WS
    for c in b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+-.":
        _CLASS[c] |= _C_SCALAR
    for c in b'"{}[]':
        _CLASS[c] |= _C_STRUCT
    for c in range(0x20, 0x7F):
        if c != 0x22 and c != 0x5C:
            _CLASS[c] |= _C_TCHAR


_init_tables()

MAX_DEPTH = _MAX_DEPTH_C
"""Deepest nesting accepted, counting the top-level object as 1; deeper payloads give ``None``."""


cdef inline Py_ssize_t _skip_ws(const unsigned char* p, Py_ssize_t i, Py_ssize_t n) noexcept nogil:
    while i < n and (_CLASS[p[i]] & _C_WS):
        i += 1
    return i


cdef inline Py_ssize_t _skip_string(const unsigned char* p, Py_ssize_t i, Py_ssize_t n) noexcept nogil:
    """``p[i]`` is an opening quote; return the index past the closing one, or -1 if unterminated."""
    cdef const unsigned char* q
    cdef Py_ssize_t j, backslashes
    i += 1
    while i < n:
        q = <const unsigned char*>memchr(p + i, 0x22, <size_t>(n - i))
        if q == NULL:
            return -1
        j = q - p
        # The quote is escaped if an odd run of backslashes precedes it (the run cannot reach back
        # past the opening quote).
        backslashes = 0
        while p[j - 1 - backslashes] == 0x5C:
            backslashes += 1
        if not (backslashes & 1):
            return j + 1
        i = j + 1
    return -1


cdef inline Py_ssize_t _skip_container(const unsigned char* p, Py_ssize_t i, Py_ssize_t n) noexcept nogil:
    """``p[i]`` opens an object or array; return the index past its end, or -1 if malformed or too deep."""
    cdef unsigned char stack[_STACK_SIZE]
    cdef Py_ssize_t depth = 0
    cdef unsigned char c
    stack[0] = 0x7D if p[i] == 0x7B else 0x5D
    depth = 1
    i += 1
    while True:
        while i < n and not (_CLASS[p[i]] & _C_STRUCT):
            i += 1
        if i >= n:
            return -1
        c = p[i]
        if c == 0x22:
            i = _skip_string(p, i, n)
            if i < 0:
                return -1
        elif c == 0x7B or c == 0x5B:
            if depth >= _STACK_SIZE:
                return -1
            stack[depth] = 0x7D if c == 0x7B else 0x5D
            depth += 1
            i += 1
        else:
            depth -= 1
            if stack[depth] != c:
                return -1
            i += 1
            if depth == 0:
                return i


cdef inline Py_ssize_t _read_uint(
    const unsigned char* p, Py_ssize_t i, Py_ssize_t n, long long* out
) noexcept nogil:
    """Read 1..18 digits without a leading zero at ``i``; return the index past them, or -1."""
    cdef Py_ssize_t start = i
    cdef long long value = 0
    while i < n and 0x30 <= p[i] <= 0x39:
        value = value * 10 + (p[i] - 0x30)
        i += 1
        if i - start > 18:
            return -1
    if i == start or (p[start] == 0x30 and i - start > 1):
        return -1
    out[0] = value
    return i


cdef inline bint _is_null(const unsigned char* p, Py_ssize_t i, Py_ssize_t n) noexcept nogil:
    return n - i >= 4 and p[i] == 0x6E and p[i + 1] == 0x75 and p[i + 2] == 0x6C and p[i + 3] == 0x6C


cdef inline bint _d_closes_last(const unsigned char* p, Py_ssize_t n, Py_ssize_t opener) noexcept nogil:
    """Whether the buffer ends (but for whitespace) with the closer of the bracket at ``opener``, then ``}``."""
    cdef Py_ssize_t end = n - 1
    while end > opener and (_CLASS[p[end]] & _C_WS):
        end -= 1
    if end <= opener or p[end] != 0x7D:
        return False
    end -= 1
    while end > opener and (_CLASS[p[end]] & _C_WS):
        end -= 1
    return end > opener and p[end] == (0x7D if p[opener] == 0x7B else 0x5D)


cdef inline bint _stops_at_d(const unsigned char* p, Py_ssize_t i, Py_ssize_t n) noexcept nogil:
    """Early stop: whether the member at ``i`` is ``"d"`` holding a container that closes last."""
    if n - i < 4 or p[i] != 0x22 or p[i + 1] != 0x64 or p[i + 2] != 0x22:
        return False
    i = _skip_ws(p, i + 3, n)
    if i >= n or p[i] != 0x3A:
        return False
    i = _skip_ws(p, i + 1, n)
    return i < n and (p[i] == 0x7B or p[i] == 0x5B) and _d_closes_last(p, n, i)


cdef bint _walk(const unsigned char* p, Py_ssize_t n, _Found* found) noexcept nogil:
    """Walk the top-level object; return True with ``found`` filled in, or False when unsure."""
    cdef Py_ssize_t i, key_start, key_len
    cdef unsigned char c
    cdef int key
    cdef bint seen_op = False, seen_s = False, seen_t = False

    found.op = 0
    found.s = 0
    found.t_start = 0
    found.t_len = 0
    found.has_s = False
    found.has_t = False
    i = _skip_ws(p, 0, n)
    if i >= n or p[i] != 0x7B:
        return False
    i = _skip_ws(p, i + 1, n)
    while True:
        # Key: a string without escapes.
        if i >= n or p[i] != 0x22:
            return False
        i += 1
        key_start = i
        while i < n and p[i] != 0x22:
            if p[i] == 0x5C:
                return False
            i += 1
        if i >= n:
            return False
        key_len = i - key_start
        i = _skip_ws(p, i + 1, n)
        if i >= n or p[i] != 0x3A:
            return False
        i = _skip_ws(p, i + 1, n)
        if i >= n:
            return False

        key = _KEY_OTHER
        if key_len == 1:
            if p[key_start] == 0x73:
                key = _KEY_S
            elif p[key_start] == 0x74:
                key = _KEY_T
        elif key_len == 2 and p[key_start] == 0x6F and p[key_start + 1] == 0x70:
            key = _KEY_OP

        if key == _KEY_OP:
            if seen_op:
                return False
            seen_op = True
            i = _read_uint(p, i, n, &found.op)
            if i < 0:
                return False
        elif key == _KEY_S:
            if seen_s:
                return False
            seen_s = True
            if _is_null(p, i, n):
                i += 4
            else:
                i = _read_uint(p, i, n, &found.s)
                if i < 0:
                    return False
                found.has_s = True
        elif key == _KEY_T:
            if seen_t:
                return False
            seen_t = True
            if _is_null(p, i, n):
                i += 4
            else:
                if p[i] != 0x22:
                    return False
                i += 1
                found.t_start = i
                while i < n and (_CLASS[p[i]] & _C_TCHAR):
                    i += 1
                if i >= n or p[i] != 0x22:
                    return False
                found.t_len = i - found.t_start
                found.has_t = True
                i += 1
        else:
            c = p[i]
            if c == 0x22:
                i = _skip_string(p, i, n)
            elif c == 0x7B or c == 0x5B:
                i = _skip_container(p, i, n)
            elif _CLASS[c] & _C_SCALAR:
                while i < n and (_CLASS[p[i]] & _C_SCALAR):
                    i += 1
            else:
                return False
            if i < 0:
                return False

        i = _skip_ws(p, i, n)
        if i >= n:
            return False
        c = p[i]
        if c == 0x2C:
            i = _skip_ws(p, i + 1, n)
            if seen_op and seen_s and seen_t and _stops_at_d(p, i, n):
                return True
        elif c == 0x7D:
            break
        else:
            return False

    return seen_op and _skip_ws(p, i + 1, n) == n


cdef str _event_name(const unsigned char* p, Py_ssize_t length):
    cdef size_t h = 2166136261u
    cdef Py_ssize_t k
    cdef object cached
    cdef str name
    if length > _CACHE_MAX_LEN:
        return PyUnicode_DecodeASCII(<const char*>p, length, NULL)
    for k in range(length):
        h = (h ^ p[k]) * 16777619u
    h = (h ^ <size_t>length) & (_CACHE_SLOTS - 1)
    cached = _T_CACHE[h]
    if (
        cached is not None
        and PyUnicode_GET_LENGTH(cached) == length
        and memcmp(PyUnicode_DATA(cached), p, <size_t>length) == 0
    ):
        return <str>cached
    name = PyUnicode_DecodeASCII(<const char*>p, length, NULL)
    _T_CACHE[h] = name
    return name


cdef object _scan_buffer(const unsigned char* p, Py_ssize_t n):
    cdef _Found found
    if not _walk(p, n, &found):
        return None
    return (
        found.op,
        found.s if found.has_s else None,
        _event_name(p + found.t_start, found.t_len) if found.has_t else None,
    )


def scan(payload):
    """Read ``op``, ``s`` and ``t`` from the top level of a JSON gateway payload.

    The same function as :func:`hikari_shard._pure.scan.scan`, which documents it: ``(op, s, t)``,
    or ``None`` when the payload must be decoded fully; `TypeError` if it is not bytes-like.
    """
    cdef Py_buffer view
    if PyBytes_CheckExact(payload):
        return _scan_buffer(<const unsigned char*>PyBytes_AS_STRING(payload), PyBytes_GET_SIZE(payload))
    try:
        PyObject_GetBuffer(payload, &view, PyBUF_SIMPLE)
    except BufferError:  # e.g. a non-contiguous memoryview
        payload = bytes(memoryview(payload))
        return _scan_buffer(<const unsigned char*>PyBytes_AS_STRING(payload), PyBytes_GET_SIZE(payload))
    try:
        return _scan_buffer(<const unsigned char*>view.buf, view.len)
    finally:
        PyBuffer_Release(&view)
