# cython: annotation_typing=False
"""Gateway payload decompression, compiled twin of :mod:`hikari_shard._pure.inflate`.

Three inflators, one per compression scheme the gateway speaks:

* :class:`ZlibStreamInflator` for ``compress=zlib-stream``: one zlib context for the whole
  connection, a message ends where a frame ends with :data:`ZLIB_SUFFIX`.
* :class:`ZstdStreamInflator` for ``compress=zstd-stream``: one Zstandard context for the whole
  connection, each frame flushes one message.
* :class:`PayloadZlibInflator` for payload compression: each binary frame is a whole zlib stream.

Every inflator caps the decompressed size of a message at ``max_message_size`` and asks the
decompressor for at most one byte more, so a decompression bomb is stopped before it allocates
much more than the cap.  Failures raise :class:`hikari.errors.GatewayTransportError`; the message
says what went wrong and the sizes involved, never the payload itself.

The only Python calls on the hot path are the decompressor's ``decompress`` (a bound method kept
on the instance) and ``len`` of its result; the suffix test and the fragment copy are plain C.
"""

from __future__ import annotations

__all__ = (
    "DEFAULT_MAX_MESSAGE_SIZE",
    "ZLIB_SUFFIX",
    "PayloadZlibInflator",
    "ZlibStreamInflator",
    "ZstdStreamInflator",
    "zstd_available",
)

cimport cython
from cpython.buffer cimport PyBUF_READ
from cpython.bytearray cimport PyByteArray_AS_STRING, PyByteArray_GET_SIZE, PyByteArray_Resize
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_CheckExact, PyBytes_GET_SIZE
from cpython.memoryview cimport PyMemoryView_FromMemory
from libc.string cimport memcpy

import typing

from hikari import errors

try:
    from zlib_ng import zlib_ng as _zlib
except ImportError:  # pragma: no cover - zlib-ng is a dependency, stdlib zlib is the safety net
    import zlib as _zlib

try:
    from compression import zstd as _zstd
except ImportError:
    try:
        from backports import zstd as _zstd
    except ImportError:
        _zstd = None

DEFAULT_MAX_MESSAGE_SIZE: typing.Final[int] = 64 * 1024 * 1024
"""Largest decompressed message accepted, in bytes.

The largest real ``GUILD_CREATE`` fits more than ten times over.
"""
ZLIB_SUFFIX: typing.Final[bytes] = b"\x00\x00\xff\xff"
"""The ``Z_SYNC_FLUSH`` marker that ends every message of a zlib-stream connection."""

cdef Py_ssize_t _DEFLATE_MAX_RATIO = 1032
"""Deflate never expands one compressed byte into more than this many (zlib's FAQ)."""
cdef Py_ssize_t _DEFLATE_SLACK = 64 * 1024
"""Output headroom for the few bits zlib may carry over from the previous frame."""
cdef Py_ssize_t _BUFFER_KEEP = 1024 * 1024
"""A fragment buffer that grew past this size is dropped after its message instead of reused."""
cdef int _MIN_ZSTD_WINDOW_LOG = 23
"""Zstandard windows up to 8 MiB are always accepted, whatever the message cap."""
cdef int _MAX_ZSTD_WINDOW_LOG = 30
"""The largest window Zstandard accepts on every platform (1 GiB)."""


def zstd_available() -> bool:
    """Whether zstd-stream compression can be used.

    Returns
    -------
    bool
        `True` if :mod:`compression.zstd` (Python 3.14+) or :mod:`backports.zstd` is importable.
    """
    return _zstd is not None


cdef inline bint _ends_with_suffix(const unsigned char* data, Py_ssize_t size) noexcept:
    return size >= 4 and data[size - 4] == 0x00 and data[size - 3] == 0x00 and data[size - 2] == 0xFF and data[size - 1] == 0xFF


cdef Py_ssize_t _check_max_message_size(object max_message_size) except -1:
    cdef Py_ssize_t value = max_message_size
    if value < 1:
        raise ValueError(f"max_message_size must be at least 1 byte, not {value}")
    return value


cdef object _too_big(str scheme, Py_ssize_t max_message_size, Py_ssize_t compressed):
    return errors.GatewayTransportError(
        f"{scheme}: a message decompressed to more than the {max_message_size} byte limit "
        f"(from {compressed} compressed bytes)"
    )


cdef object _corrupt(str scheme, Py_ssize_t compressed, object ex):
    return errors.GatewayTransportError(f"{scheme}: corrupt compressed data in {compressed} bytes ({ex})")


cdef object _unusable(str scheme):
    return errors.GatewayTransportError(
        f"{scheme}: the inflator is unusable after an earlier error; reset() it for a new connection"
    )


@cython.final
cdef class _Broken:
    """Stands in for a failed decompressor's ``decompress`` so the hot path needs no extra check."""

    cdef str _scheme

    def __cinit__(self, str scheme):
        self._scheme = scheme

    def __call__(self, data, max_length=-1):
        raise _unusable(self._scheme)


@cython.final
cdef class ZlibStreamInflator:
    """Inflates Discord's ``zlib-stream`` transport compression.

    The whole connection is one zlib stream; a message ends at a frame that ends with
    :data:`ZLIB_SUFFIX`.  A message that fits one frame is decompressed straight from that frame.
    Fragments of a longer message are gathered in one bytearray that is reused for the next
    fragmented message, unless it grew past 1 MiB.

    Parameters
    ----------
    max_message_size
        The largest decompressed message accepted, in bytes.  Compressed fragments buffered for
        one message are held to the same limit.
    """

    cdef object _decompress
    """The bound ``decompress`` of this connection's zlib context."""
    cdef object _max_length
    """``max_message_size + 1`` as a Python int, handed to every ``decompress`` call."""
    cdef Py_ssize_t _max_message_size
    cdef Py_ssize_t _uncapped_size
    """Data of at most this many bytes cannot inflate past the cap, so it skips ``max_length`` (and its cost)."""
    cdef bytearray _buffer
    """Fragments of the unfinished message; its length is a high-water mark, ``_used`` is what counts."""
    cdef Py_ssize_t _used

    def __init__(self, max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE) -> None:
        self._max_message_size = _check_max_message_size(max_message_size)
        self._max_length = self._max_message_size + 1
        self._uncapped_size = (
            (self._max_message_size - _DEFLATE_SLACK) // _DEFLATE_MAX_RATIO
            if self._max_message_size > _DEFLATE_SLACK
            else -1
        )
        self._buffer = bytearray()
        self._used = 0
        self._decompress = _zlib.decompressobj().decompress

    @property
    def pending(self) -> int:
        """The number of compressed bytes buffered for an unfinished message."""
        return self._used

    def reset(self) -> None:
        """Forget everything for a new connection: a fresh zlib context and an empty buffer."""
        self._decompress = _zlib.decompressobj().decompress
        self._used = 0
        if PyByteArray_GET_SIZE(self._buffer) > _BUFFER_KEEP:
            self._buffer = bytearray()

    def feed(self, frame: bytes) -> bytes | None:
        """Take one binary websocket frame.

        Parameters
        ----------
        frame
            The frame's payload.

        Returns
        -------
        bytes | None
            The decompressed message if this frame completes one, else `None`.

        Raises
        ------
        hikari.errors.GatewayTransportError
            If the stream is corrupt or a message is bigger than ``max_message_size``.
        """
        if not PyBytes_CheckExact(frame):
            frame = bytes(frame)
        cdef Py_ssize_t size = PyBytes_GET_SIZE(frame)
        if self._used == 0 and _ends_with_suffix(<const unsigned char*> PyBytes_AS_STRING(frame), size):
            return self._inflate(frame, size)
        return self._feed_fragment(frame, size)

    cdef bytes _inflate(self, object data, Py_ssize_t compressed):
        cdef bytes message
        try:
            if compressed <= self._uncapped_size:
                message = self._decompress(data)
            else:
                message = self._decompress(data, self._max_length)
        except _zlib.error as ex:
            self._fail()
            raise _corrupt("zlib-stream", compressed, ex) from ex
        if PyBytes_GET_SIZE(message) > self._max_message_size:
            self._fail()
            raise _too_big("zlib-stream", self._max_message_size, compressed)
        return message

    cdef object _feed_fragment(self, bytes frame, Py_ssize_t size):
        cdef Py_ssize_t end = self._used + size
        if end > self._max_message_size:
            self._fail()
            raise errors.GatewayTransportError(
                f"zlib-stream: {end} compressed bytes buffered without the end of a message, "
                f"over the {self._max_message_size} byte limit"
            )
        cdef bytearray buffer = self._buffer
        # Overwrites what the last message left behind and only grows the bytearray when needed.
        if end > PyByteArray_GET_SIZE(buffer):
            PyByteArray_Resize(buffer, end)
        cdef char* start = PyByteArray_AS_STRING(buffer)
        memcpy(start + self._used, PyBytes_AS_STRING(frame), size)
        self._used = end
        if not _ends_with_suffix(<const unsigned char*> start, end):
            return None
        self._used = 0
        # A view of raw memory exports nothing, so it cannot pin the bytearray; it dies before the
        # bytearray is next touched.
        message = self._inflate(PyMemoryView_FromMemory(start, end, PyBUF_READ), end)
        if PyByteArray_GET_SIZE(buffer) > _BUFFER_KEEP:
            self._buffer = bytearray()
        return message

    cdef int _fail(self) except -1:
        self._decompress = _Broken("zlib-stream")
        self._used = 0
        return 0


@cython.final
cdef class ZstdStreamInflator:
    """Inflates Discord's ``zstd-stream`` transport compression.

    The whole connection is one Zstandard stream and the server flushes it after every message,
    so each frame normally yields exactly one message.  A frame that yields nothing yet (an
    incomplete block) is kept inside the decompressor and counts as pending.

    Parameters
    ----------
    max_message_size
        The largest decompressed message accepted, in bytes.  It also bounds the compressed bytes
        pending without output, and the Zstandard window (never below 8 MiB).

    Raises
    ------
    RuntimeError
        If neither :mod:`compression.zstd` nor :mod:`backports.zstd` is installed.
    """

    cdef object _decompress
    cdef object _max_length
    cdef Py_ssize_t _max_message_size
    cdef Py_ssize_t _pending
    cdef int _window_log_max

    def __init__(self, max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE) -> None:
        if _zstd is None:
            raise RuntimeError(
                "zstd-stream compression needs a zstd module: install hikari-shard[zstd] (or use Python 3.14+)"
            )
        self._max_message_size = _check_max_message_size(max_message_size)
        self._max_length = self._max_message_size + 1
        self._window_log_max = min(
            max((<object> (self._max_message_size - 1)).bit_length(), _MIN_ZSTD_WINDOW_LOG), _MAX_ZSTD_WINDOW_LOG
        )
        self._pending = 0
        self._decompress = self._new_decompress()

    cdef object _new_decompress(self):
        options = {_zstd.DecompressionParameter.window_log_max: self._window_log_max}
        return _zstd.ZstdDecompressor(options=options).decompress

    @property
    def pending(self) -> int:
        """The number of compressed bytes fed since the last output."""
        return self._pending

    def reset(self) -> None:
        """Forget everything for a new connection: a fresh Zstandard context."""
        self._decompress = self._new_decompress()
        self._pending = 0

    def feed(self, frame: bytes) -> bytes | None:
        """Take one binary websocket frame.

        Parameters
        ----------
        frame
            The frame's payload.

        Returns
        -------
        bytes | None
            The decompressed output of this frame (and of any earlier frames that yielded none),
            or `None` if the frame produced no output yet.

        Raises
        ------
        hikari.errors.GatewayTransportError
            If the stream is corrupt or a message is bigger than ``max_message_size``.
        """
        if not PyBytes_CheckExact(frame):
            frame = bytes(frame)
        cdef Py_ssize_t size = PyBytes_GET_SIZE(frame)
        cdef Py_ssize_t compressed
        cdef bytes message
        try:
            message = self._decompress(frame, self._max_length)
        except (_zstd.ZstdError, EOFError) as ex:
            compressed = self._pending + size
            self._fail()
            raise _corrupt("zstd-stream", compressed, ex) from ex
        cdef Py_ssize_t length = PyBytes_GET_SIZE(message)
        if length == 0:
            self._pending += size
            if self._pending > self._max_message_size:
                compressed = self._pending
                self._fail()
                raise errors.GatewayTransportError(
                    f"zstd-stream: {compressed} compressed bytes without any output, "
                    f"over the {self._max_message_size} byte limit"
                )
            return None
        if length > self._max_message_size:
            compressed = self._pending + size
            self._fail()
            raise _too_big("zstd-stream", self._max_message_size, compressed)
        self._pending = 0
        return message

    cdef int _fail(self) except -1:
        self._decompress = _Broken("zstd-stream")
        self._pending = 0
        return 0


@cython.final
cdef class PayloadZlibInflator:
    """Inflates payload compression: each binary frame is a complete zlib stream of one message.

    Parameters
    ----------
    max_message_size
        The largest decompressed message accepted, in bytes.
    """

    cdef object _max_length
    cdef Py_ssize_t _max_message_size

    def __init__(self, max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE) -> None:
        self._max_message_size = _check_max_message_size(max_message_size)
        self._max_length = self._max_message_size + 1

    @property
    def pending(self) -> int:
        """Always ``0``: nothing is carried from one frame to the next."""
        return 0

    def reset(self) -> None:
        """Nothing to forget; present for the common inflator interface."""

    def feed(self, frame: bytes) -> bytes:
        """Decompress one binary websocket frame holding a whole zlib stream.

        Parameters
        ----------
        frame
            The frame's payload.

        Returns
        -------
        bytes
            The decompressed message.

        Raises
        ------
        hikari.errors.GatewayTransportError
            If the stream is corrupt or truncated, or the message is bigger than ``max_message_size``.
        """
        if not PyBytes_CheckExact(frame):
            frame = bytes(frame)
        cdef Py_ssize_t size = PyBytes_GET_SIZE(frame)
        cdef bytes message
        decompressor = _zlib.decompressobj()
        try:
            message = decompressor.decompress(frame, self._max_length)
        except _zlib.error as ex:
            raise _corrupt("payload zlib", size, ex) from ex
        if PyBytes_GET_SIZE(message) > self._max_message_size:
            raise _too_big("payload zlib", self._max_message_size, size)
        if not decompressor.eof:
            raise errors.GatewayTransportError(f"payload zlib: the compressed payload of {size} bytes is truncated")
        return message
