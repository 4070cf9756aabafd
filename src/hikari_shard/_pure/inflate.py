# cython: annotation_typing=False
"""Gateway payload decompression: one source for both implementations.

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

This file is the pure-Python implementation, and Cython compiles the same file into
``hikari_shard._fastpath.inflate`` with the C types declared in
``src/hikari_shard/_fastpath/inflate.pxd`` (see ``setup.py``).  Keep it plain Python: no
``cython`` import, nothing that only one of the two can run, but for one choice made at import:
compiled, the stream inflators call zlib-ng's and libzstd's C APIs (``_c_api_module``).  The only
Python call on the hot path is the decompressor's ``decompress`` (a bound method kept on the
instance).
"""

from __future__ import annotations

__all__ = (
    "DEFAULT_MAX_MESSAGE_SIZE",
    "STREAM_DECOMPRESSOR",
    "ZLIB_SUFFIX",
    "ZSTD_DECOMPRESSOR",
    "PayloadZlibInflator",
    "ZlibStreamInflator",
    "ZstdStreamInflator",
    "zstd_available",
)

import importlib
import logging
import operator
import typing

from hikari import errors

from hikari_shard import _c_api

_LOGGER: typing.Final = logging.getLogger("hikari_shard")

try:
    from zlib_ng import zlib_ng as _zlib
except ImportError:  # pragma: no cover - zlib-ng is a dependency, stdlib zlib is the safety net
    import zlib as _zlib  # type: ignore[no-redef]

# zlib-ng's stub declares ``error`` as an instance; it is the exception class.
_ZLIB_ERROR: typing.Final = typing.cast("type[Exception]", _zlib.error)


_C_API_REFUSED: typing.Final[dict[str, str]] = {}
"""Why a C API module was not used although it could be reached (an untested library version), by name."""


def _c_api_module(name: str) -> typing.Any:
    """``hikari_shard._fastpath.<name>`` when this file runs compiled and that module imports, else ``None``.

    zlibng and libzstd call zlib-ng's and libzstd's C APIs without the per-call costs of their
    Python wrappers (argument parsing, GIL release, output resizing).  They do not import where
    the C API cannot be reached (Windows), nor where the library's version is outside the range
    the tests ran on (:mod:`hikari_shard._c_api`): that one is logged at WARNING, once, and kept in
    :data:`_C_API_REFUSED` for ``info``.  The pure build never uses them.
    """
    if __name__ != "hikari_shard._fastpath.inflate":
        return None
    try:
        return importlib.import_module(f"hikari_shard._fastpath.{name}")
    except _c_api.UntestedLibraryError as ex:
        _C_API_REFUSED[name] = str(ex)
        _LOGGER.warning("not calling %s's C API, falling back to its Python module: %s", name, ex)
        return None
    except ImportError:  # pragma: no cover - no reachable C API here (Windows)
        return None


def _refused(name: str) -> str:
    reason = _C_API_REFUSED.get(name)
    return f" (C API not used: {reason})" if reason else ""


# The zlib-stream decompressor: zlibng where it imports, else zlib-ng's decompressobj.
_stream_zlib: typing.Any = _c_api_module("zlibng") or _zlib
_STREAM_ERRORS: typing.Final[tuple[type[Exception], ...]] = (_ZLIB_ERROR, _stream_zlib.error)
STREAM_DECOMPRESSOR: typing.Final[str] = (
    f"zlib-ng {_stream_zlib.ZLIBNG_VERSION} (C API)"
    if _stream_zlib is not _zlib
    else f"{_zlib.__name__}.decompressobj{_refused('zlibng')}"
)
"""What inflates zlib-stream here: ``python -m hikari_shard info`` prints it."""

try:
    from compression import zstd as _zstd  # type: ignore[import-not-found]
except ImportError:
    try:
        from backports import zstd as _zstd  # type: ignore[no-redef]
    except ImportError:
        _zstd = None

# The zstd-stream decompressor: libzstd where it imports, else the zstd module's ZstdDecompressor.
_zstd_c: typing.Any = _c_api_module("libzstd") if _zstd is not None else None
ZSTD_DECOMPRESSOR: typing.Final[str | None] = (
    None
    if _zstd is None
    else f"libzstd {_zstd_c.ZSTD_VERSION} (C API)"
    if _zstd_c is not None
    else f"{_zstd.__name__}.ZstdDecompressor{_refused('libzstd')}"
)
"""What inflates zstd-stream here (``None`` without a zstd module): ``python -m hikari_shard info`` prints it."""

DEFAULT_MAX_MESSAGE_SIZE: typing.Final[int] = 64 * 1024 * 1024
"""Largest decompressed message accepted, in bytes.

The largest real ``GUILD_CREATE`` fits more than ten times over.
"""
ZLIB_SUFFIX: typing.Final[bytes] = b"\x00\x00\xff\xff"
"""The ``Z_SYNC_FLUSH`` marker that ends every message of a zlib-stream connection."""

_DEFLATE_MAX_RATIO: typing.Final[int] = 1032
"""Deflate never expands one compressed byte into more than this many (zlib's FAQ)."""
_DEFLATE_SLACK: typing.Final[int] = 64 * 1024
"""Output headroom for the few bits zlib may carry over from the previous frame."""
_BUFFER_KEEP: typing.Final[int] = 1024 * 1024
"""A fragment buffer that grew past this size is dropped after its message instead of reused."""
_MIN_ZSTD_WINDOW_LOG: typing.Final[int] = 23
"""Zstandard windows up to 8 MiB are always accepted, whatever the message cap."""
_MAX_ZSTD_WINDOW_LOG: typing.Final[int] = 30
"""The largest window Zstandard accepts on every platform (1 GiB)."""


def zstd_available() -> bool:
    """Whether zstd-stream compression can be used.

    Returns
    -------
    bool
        `True` if :mod:`compression.zstd` (Python 3.14+) or :mod:`backports.zstd` is importable.
    """
    return _zstd is not None


def _check_max_message_size(max_message_size: int) -> int:
    value = operator.index(max_message_size)
    if value < 1:
        msg = f"max_message_size must be at least 1 byte, not {value}"
        raise ValueError(msg)
    return value


def _too_big(scheme: str, max_message_size: int, compressed: int) -> errors.GatewayTransportError:
    return errors.GatewayTransportError(
        f"{scheme}: a message decompressed to more than the {max_message_size} byte limit "
        f"(from {compressed} compressed bytes)"
    )


def _corrupt(scheme: str, compressed: int, ex: Exception) -> errors.GatewayTransportError:
    return errors.GatewayTransportError(f"{scheme}: corrupt compressed data in {compressed} bytes ({ex})")


def _unusable(scheme: str) -> errors.GatewayTransportError:
    return errors.GatewayTransportError(
        f"{scheme}: the inflator is unusable after an earlier error; reset() it for a new connection"
    )


class _Broken:
    """Stands in for a failed decompressor's ``decompress`` so the hot path needs no extra check."""

    __slots__ = ("_scheme",)

    def __init__(self, scheme: str) -> None:
        self._scheme = scheme

    def __call__(self, data: object, max_length: int = -1) -> bytes:
        raise _unusable(self._scheme)


class ZlibStreamInflator:
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

    __slots__ = ("_buffer", "_decompress", "_max_length", "_max_message_size", "_uncapped_size", "_used")

    _SCHEME = "zlib-stream"

    def __init__(self, max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE) -> None:
        max_message_size = _check_max_message_size(max_message_size)
        self._max_message_size = max_message_size
        self._max_length = max_message_size + 1
        # Data this short cannot inflate past the cap, so it skips the max_length argument (and its cost).
        self._uncapped_size = (
            (max_message_size - _DEFLATE_SLACK) // _DEFLATE_MAX_RATIO if max_message_size > _DEFLATE_SLACK else -1
        )
        self._buffer = bytearray()
        self._used = 0
        self._decompress: typing.Callable[..., bytes] = _stream_zlib.decompressobj().decompress

    @property
    def pending(self) -> int:
        """The number of compressed bytes buffered for an unfinished message."""
        return self._used

    def reset(self) -> None:
        """Forget everything for a new connection: a fresh zlib context and an empty buffer."""
        self._decompress = _stream_zlib.decompressobj().decompress
        self._used = 0
        if len(self._buffer) > _BUFFER_KEEP:
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
        if type(frame) is not bytes:  # a bytearray, memoryview, ... (never on the hot path)
            return self.feed(bytes(frame))
        # A slice and a comparison: a quarter of what a call to bytes.endswith costs (argument tuple and parsing).
        if self._used or frame[-4:] != ZLIB_SUFFIX:
            return self._feed_fragment(frame)
        return self._inflate(frame, len(frame))

    def _inflate(self, data: bytes | memoryview, compressed: int) -> bytes:
        try:
            if compressed <= self._uncapped_size:
                message = self._decompress(data)
            else:
                message = self._decompress(data, self._max_length)
        except _STREAM_ERRORS as ex:
            self._fail()
            raise _corrupt(self._SCHEME, compressed, ex) from ex
        if len(message) > self._max_message_size:
            self._fail()
            raise _too_big(self._SCHEME, self._max_message_size, compressed)
        return message

    def _feed_fragment(self, frame: bytes) -> bytes | None:
        used = self._used
        end = used + len(frame)
        if end > self._max_message_size:
            self._fail()
            msg = (
                f"{self._SCHEME}: {end} compressed bytes buffered without the end of a message, "
                f"over the {self._max_message_size} byte limit"
            )
            raise errors.GatewayTransportError(msg)
        buffer = self._buffer
        # Overwrites what the last message left behind and only grows the bytearray when needed.
        buffer[used:end] = frame
        self._used = end
        if not buffer.endswith(ZLIB_SUFFIX, 0, end):
            return None
        self._used = 0
        with memoryview(buffer) as whole, whole[:end] as data:
            message = self._inflate(data, end)
        if len(buffer) > _BUFFER_KEEP:
            self._buffer = bytearray()
        return message

    def _fail(self) -> None:
        self._decompress = _Broken(self._SCHEME)
        self._used = 0


class ZstdStreamInflator:
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

    __slots__ = ("_decompress", "_max_length", "_max_message_size", "_pending", "_window_log_max")

    _SCHEME = "zstd-stream"

    def __init__(self, max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE) -> None:
        if _zstd is None:
            msg = "zstd-stream compression needs a zstd module: install hikari-shard[zstd] (or use Python 3.14+)"
            raise RuntimeError(msg)
        max_message_size = _check_max_message_size(max_message_size)
        self._max_message_size = max_message_size
        self._max_length = max_message_size + 1
        self._window_log_max = min(max((max_message_size - 1).bit_length(), _MIN_ZSTD_WINDOW_LOG), _MAX_ZSTD_WINDOW_LOG)
        self._pending = 0
        self._decompress: typing.Callable[..., bytes] = self._new_decompress()

    def _new_decompress(self) -> typing.Callable[..., bytes]:
        assert _zstd is not None
        if _zstd_c is not None:
            return _zstd_c.Decompressor(self._window_log_max).decompress  # type: ignore[no-any-return]
        options = {_zstd.DecompressionParameter.window_log_max: self._window_log_max}
        return _zstd.ZstdDecompressor(options=options).decompress  # type: ignore[no-any-return]

    @property
    def pending(self) -> int:
        """The number of compressed bytes fed since the last output."""
        return self._pending

    def reset(self) -> None:
        """Forget everything for a new connection: a fresh Zstandard context."""
        self._decompress = self._new_decompress()
        self._pending = 0

    def feed(self, frame: bytes) -> bytes | None:
        """Take one binary websocket frame's payload, as :meth:`ZlibStreamInflator.feed` does.

        Returns the decompressed output of this frame (and of any earlier frames that yielded
        none), or `None` if the frame produced no output yet.
        """
        try:
            message = self._decompress(frame, self._max_length)
        except (_zstd.ZstdError, EOFError) as ex:  # type: ignore[union-attr]
            compressed = self._pending + len(frame)
            self._fail()
            raise _corrupt(self._SCHEME, compressed, ex) from ex
        if not message:
            self._pending += len(frame)
            if self._pending > self._max_message_size:
                compressed = self._pending
                self._fail()
                msg = (
                    f"{self._SCHEME}: {compressed} compressed bytes without any output, "
                    f"over the {self._max_message_size} byte limit"
                )
                raise errors.GatewayTransportError(msg)
            return None
        if len(message) > self._max_message_size:
            compressed = self._pending + len(frame)
            self._fail()
            raise _too_big(self._SCHEME, self._max_message_size, compressed)
        self._pending = 0
        return message

    def _fail(self) -> None:
        self._decompress = _Broken(self._SCHEME)
        self._pending = 0


class PayloadZlibInflator:
    """Inflates payload compression: each binary frame is a complete zlib stream of one message.

    Parameters
    ----------
    max_message_size
        The largest decompressed message accepted, in bytes.
    """

    __slots__ = ("_max_length", "_max_message_size")

    _SCHEME = "payload zlib"

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
        decompressor = _zlib.decompressobj()
        try:
            message = decompressor.decompress(frame, self._max_length)
        except _ZLIB_ERROR as ex:
            raise _corrupt(self._SCHEME, len(frame), ex) from ex
        if len(message) > self._max_message_size:
            raise _too_big(self._SCHEME, self._max_message_size, len(frame))
        if not decompressor.eof:
            msg = f"{self._SCHEME}: the compressed payload of {len(frame)} bytes is truncated"
            raise errors.GatewayTransportError(msg)
        return message
