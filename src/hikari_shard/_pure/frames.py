"""Client-side RFC 6455 frame parsing, pure-Python twin of ``src/_fastpath/frames.pyx``.

:class:`FrameParser` is fed the raw bytes the gateway's TCP connection delivers (after the HTTP
upgrade) and calls ``on_message(opcode, payload)`` once per complete message:

* text and binary messages whole, with websocket fragmentation (a frame without FIN, then
  continuation frames) reassembled in one reused buffer.  A message that is one frame lying
  wholly inside the fed chunk is handed over as a single slice of that chunk, copied once;
* ping, pong and close frames as they arrive, even between the fragments of a data message.

Chunks may be split anywhere: whatever belongs to an unfinished frame is kept until the next
:meth:`FrameParser.feed_data`.  No extension is negotiated, so every reserved bit must be zero; a
server never masks its frames.  Text is not checked for UTF-8 and close codes are not checked
either: the payloads are handed over as they came, for the JSON decoder and the shard to judge.

A protocol violation raises :class:`hikari.errors.GatewayTransportError` whose message names the
violation and the sizes involved, never payload bytes.  An oversized frame is refused from its
header alone, before any of its payload is buffered.  After an error, a delivered close frame or
an exception from ``on_message``, the parser is closed and ignores whatever it is fed.
"""

from __future__ import annotations

__all__ = (
    "DEFAULT_MAX_MESSAGE_SIZE",
    "OP_BINARY",
    "OP_CLOSE",
    "OP_CONTINUATION",
    "OP_PING",
    "OP_PONG",
    "OP_TEXT",
    "FrameParser",
)

import operator
import typing

from hikari import errors

DEFAULT_MAX_MESSAGE_SIZE: typing.Final[int] = 64 * 1024 * 1024
"""Largest message accepted, in bytes (the payload of all its frames together)."""

OP_CONTINUATION: typing.Final[int] = 0
"""A later fragment of a fragmented text or binary message."""
OP_TEXT: typing.Final[int] = 1
"""A text message (UTF-8, not validated here)."""
OP_BINARY: typing.Final[int] = 2
"""A binary message: what the gateway sends when transport compression is on."""
OP_CLOSE: typing.Final[int] = 8
"""A close frame: an optional 2-byte big-endian close code and a UTF-8 reason."""
OP_PING: typing.Final[int] = 9
"""A ping frame; the client should answer with a pong carrying the same payload."""
OP_PONG: typing.Final[int] = 10
"""A pong frame."""

_MAX_CONTROL_PAYLOAD: typing.Final[int] = 125
"""RFC 6455 section 5.5: control frames carry at most 125 bytes and are never fragmented."""
_BUFFER_KEEP: typing.Final[int] = 1024 * 1024
"""A message buffer that grew past this size is dropped after its message instead of reused."""
_KNOWN_OPCODES: typing.Final[frozenset[int]] = frozenset(
    (OP_CONTINUATION, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG)
)

# Parser states.
_HEADER: typing.Final[int] = 0
_CONTROL_PAYLOAD: typing.Final[int] = 1
_DATA_PAYLOAD: typing.Final[int] = 2


def _header_size(second_byte: int) -> int:
    length = second_byte & 0x7F
    return 2 if length < 126 else 4 if length == 126 else 10


def _error(reason: str) -> errors.GatewayTransportError:
    return errors.GatewayTransportError(f"websocket: {reason}")


def _check_start(first: int, second: int, fragmented_opcode: int) -> None:
    """Validate the first two bytes of a frame header, given the opcode of the open fragmented message.

    The compiled twin accepts a valid header in C and calls this to raise the error otherwise.
    """
    if first & 0x70:
        raise _error(f"a frame has reserved bits set (0x{first & 0x70:02x}) but no extension was negotiated")
    opcode = first & 0x0F
    if opcode not in _KNOWN_OPCODES:
        raise _error(f"a frame has the unknown opcode 0x{opcode:x}")
    if second & 0x80:
        raise _error("the server sent a masked frame (a server must never mask)")
    if opcode >= OP_CLOSE:
        if not first & 0x80:
            raise _error(f"a control frame (opcode 0x{opcode:x}) is fragmented")
        if second & 0x7F > _MAX_CONTROL_PAYLOAD:
            raise _error(f"a control frame (opcode 0x{opcode:x}) declares more than 125 payload bytes")
    elif opcode == OP_CONTINUATION:
        if not fragmented_opcode:
            raise _error("a continuation frame arrived without a started message")
    elif fragmented_opcode:
        raise _error(f"a new data frame (opcode 0x{opcode:x}) arrived while a fragmented message is open")


class FrameParser:
    """Parses the server-to-client frames of one websocket connection.

    Parameters
    ----------
    on_message
        Called as ``on_message(opcode, payload)`` for every complete message: :data:`OP_TEXT` or
        :data:`OP_BINARY` with the whole (reassembled) message, :data:`OP_PING`, :data:`OP_PONG`
        or :data:`OP_CLOSE` with the control frame's payload.  Its return value is ignored; an
        exception it raises propagates out of :meth:`feed_data` and closes the parser.
    max_message_size
        The largest message accepted, in bytes.  A frame whose declared length would take its
        message over this limit is refused from its header, before anything is buffered.

    Raises
    ------
    ValueError
        If ``max_message_size`` is below 1.
    """

    __slots__ = (
        "_closed",
        "_control",
        "_fin",
        "_fragmented_opcode",
        "_header",
        "_max_message_size",
        "_message",
        "_on_message",
        "_opcode",
        "_remaining",
        "_state",
        "_used",
    )

    def __init__(
        self, on_message: typing.Callable[[int, bytes], object], *, max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE
    ) -> None:
        max_message_size = operator.index(max_message_size)
        if max_message_size < 1:
            msg = f"max_message_size must be at least 1 byte, not {max_message_size}"
            raise ValueError(msg)
        self._on_message = on_message
        self._max_message_size = max_message_size
        self._closed = False
        self._state = _HEADER
        self._header = bytearray()
        """The first bytes of a header that did not arrive whole."""
        self._opcode = 0
        """The opcode of the frame being read."""
        self._fin = True
        """Whether the frame being read is the last of its message."""
        self._remaining = 0
        """Payload bytes of the frame being read that have not arrived yet."""
        self._fragmented_opcode = 0
        """:data:`OP_TEXT` or :data:`OP_BINARY` while a fragmented message is open, else 0."""
        self._message = bytearray()
        """The payload of the unfinished data message; a high-water mark, ``_used`` is what counts."""
        self._used = 0
        self._control = bytearray()
        """The payload of a control frame that did not arrive whole."""

    @property
    def closed(self) -> bool:
        """Whether the parser is done: a close frame was delivered, or an error was raised.

        Once closed, :meth:`feed_data` ignores what it is given.
        """
        return self._closed

    @property
    def buffered(self) -> int:
        """The number of bytes held for an incomplete frame or fragmented message."""
        return len(self._header) + self._used + len(self._control)

    def feed_data(self, data: bytes) -> None:
        """Parse the next bytes received from the server.

        Parameters
        ----------
        data
            The bytes, split anywhere (any bytes-like object is accepted).

        Raises
        ------
        hikari.errors.GatewayTransportError
            If the server broke the websocket protocol or sent a message over the size limit.
        Exception
            Whatever ``on_message`` raised.
        """
        if self._closed:
            return
        if type(data) is not bytes:
            data = bytes(data)
        try:
            self._feed(data)
        except BaseException:
            self._close()
            raise

    def _feed(self, data: bytes) -> None:
        size = len(data)
        pos = 0
        while True:
            if self._state == _HEADER:
                available = size - pos
                if not self._header and available >= 2 and available >= _header_size(data[pos + 1]):
                    header = data
                    start = pos
                    pos += _header_size(data[pos + 1])
                else:
                    if not available:
                        return
                    partial = self._header
                    if len(partial) < 2:
                        take = min(2 - len(partial), available)
                        partial += data[pos : pos + take]
                        pos += take
                        if len(partial) < 2:
                            return
                        _check_start(partial[0], partial[1], self._fragmented_opcode)
                    need = _header_size(partial[1]) - len(partial)
                    take = min(need, size - pos)
                    partial += data[pos : pos + take]
                    pos += take
                    if take < need:
                        return
                    header = bytes(partial)
                    start = 0
                    partial.clear()
                self._begin_frame(header, start)

            remaining = self._remaining
            available = size - pos
            if self._state == _DATA_PAYLOAD:
                if remaining <= available and self._fin and not self._used and not self._fragmented_opcode:
                    # The whole message is this frame and the frame is wholly inside the chunk.
                    end = pos + remaining
                    payload = data[pos:end]
                    pos = end
                    self._state = _HEADER
                    self._on_message(self._opcode, payload)
                    continue
                take = min(remaining, available)
                if take:
                    end = self._used + take
                    with memoryview(data) as view:
                        self._message[self._used : end] = view[pos : pos + take]
                    self._used = end
                    pos += take
                    self._remaining = remaining = remaining - take
                if remaining:
                    return
                self._state = _HEADER
                if self._fin:
                    self._deliver_message()
            else:  # _CONTROL_PAYLOAD
                control = self._control
                if remaining <= available and not control:
                    end = pos + remaining
                    payload = data[pos:end]
                    pos = end
                else:
                    take = min(remaining, available)
                    control += data[pos : pos + take]
                    pos += take
                    self._remaining = remaining = remaining - take
                    if remaining:
                        return
                    payload = bytes(control)
                    control.clear()
                self._state = _HEADER
                self._deliver_control(payload)
                if self._closed:
                    return

    def _begin_frame(self, header: bytes, start: int) -> None:
        """Take a whole frame header at ``header[start:]`` and get ready for its payload."""
        first = header[start]
        second = header[start + 1]
        _check_start(first, second, self._fragmented_opcode)
        opcode = first & 0x0F
        length = second & 0x7F
        if length == 126:
            length = int.from_bytes(header[start + 2 : start + 4], "big")
        elif length == 127:
            length = int.from_bytes(header[start + 2 : start + 10], "big")
            if length >> 63:
                raise _error("a frame declares a 64-bit payload length with the most significant bit set")
        self._opcode = opcode
        self._remaining = length
        if opcode >= OP_CLOSE:
            if opcode == OP_CLOSE and length == 1:
                raise _error("a close frame has a 1-byte payload (a close code takes 2)")
            self._state = _CONTROL_PAYLOAD
            return
        if length > self._max_message_size - self._used:
            raise _error(
                f"message too big: a {length}-byte frame after {self._used} buffered bytes "
                f"goes over the {self._max_message_size} byte limit"
            )
        fin = bool(first & 0x80)
        self._fin = fin
        if opcode == OP_CONTINUATION:
            self._opcode = self._fragmented_opcode
            if fin:
                self._fragmented_opcode = 0
        elif not fin:
            self._fragmented_opcode = opcode
        self._state = _DATA_PAYLOAD

    def _deliver_message(self) -> None:
        with memoryview(self._message) as view, view[: self._used] as used:
            payload = used.tobytes()
        self._used = 0
        if len(self._message) > _BUFFER_KEEP:
            self._message = bytearray()
        self._on_message(self._opcode, payload)

    def _deliver_control(self, payload: bytes) -> None:
        if self._opcode == OP_CLOSE:
            self._close()
        self._on_message(self._opcode, payload)

    def _close(self) -> None:
        self._closed = True
        self._state = _HEADER
        self._header = bytearray()
        self._message = bytearray()
        self._used = 0
        self._control = bytearray()
        self._fragmented_opcode = 0
