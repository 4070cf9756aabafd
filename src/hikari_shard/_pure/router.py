"""Per-message routing, pure-Python twin of ``src/_fastpath/router.pyx``.

A :class:`Router` takes each websocket message of one connection (:meth:`Router.feed_frame`),
inflates it, reads ``op``/``s``/``t``, tracks the sequence number and hands every dispatch to the
event manager's ``consume_raw_event`` in order, synchronously.  A dispatch that nothing consumes
is not JSON-decoded at all when a scanner is given (selective decode).  Everything the async side
of the shard must act on (HELLO, HEARTBEAT, RECONNECT, INVALID_SESSION, HEARTBEAT_ACK, a close or
ping frame) is appended to :attr:`Router.pending` and wakes :attr:`Router.waiter`.

Errors (a broken compression stream, invalid JSON, a payload of the wrong shape, a frame of the
wrong type) raise :class:`hikari.errors.GatewayTransportError` out of :meth:`Router.feed_frame`;
the payloads before the bad one have been consumed and their seq recorded, so the shard resumes
from exactly there.
"""

from __future__ import annotations

__all__ = ("ALWAYS_DECODED", "CloseFrame", "PingFrame", "Router", "level_cache")

import logging
import typing

from hikari import errors

from hikari_shard._pure.frames import OP_BINARY as _OP_BINARY
from hikari_shard._pure.frames import OP_CLOSE as _OP_CLOSE
from hikari_shard._pure.frames import OP_PING as _OP_PING
from hikari_shard._pure.frames import OP_PONG as _OP_PONG
from hikari_shard._pure.frames import OP_TEXT as _OP_TEXT

if typing.TYPE_CHECKING:
    import asyncio
    import collections

TRACE: typing.Final[int] = 5
_DISPATCH: typing.Final[int] = 0
_READY: typing.Final[str] = "READY"
_MISSING: typing.Final = object()
_INFLATED: typing.Final[int] = -1
"""The opcode :meth:`Router.handle` passes to :meth:`Router.feed_frame`: a payload already inflated."""
_SEQ_MIN: typing.Final[int] = -(2**63)
_SEQ_MAX: typing.Final[int] = 2**63 - 1
"""A sequence number outside a signed 64-bit integer is an invalid payload (the compiled twin keeps it in C)."""

ALWAYS_DECODED: typing.Final[frozenset[str]] = frozenset(("READY", "RESUMED", "RATE_LIMITED"))
"""Dispatches the shard itself reads: always decoded, and passed to ``on_special`` before consumption."""


class CloseFrame(typing.NamedTuple):
    """The server sent a close frame."""

    code: int
    reason: str


class PingFrame(typing.NamedTuple):
    """The server sent a ping; the shard answers with a pong carrying ``payload``."""

    payload: bytes


def _bad_payload(what: str) -> errors.GatewayTransportError:
    return errors.GatewayTransportError(f"received an invalid gateway payload: {what}")


def _type_name(value: object) -> str:
    return type(value).__name__


def level_cache(logger: logging.Logger) -> dict[int, bool] | None:
    """The dict ``logging.Logger.isEnabledFor`` caches its answers in, or ``None``.

    logging empties that dict in place on every level change (``Manager._clear_cache``), so while
    it holds ``False`` for a level, ``isEnabledFor`` answers ``False`` for it without being called
    (a disabled logger answers ``False`` too).  ``None`` when ``logger`` answers ``isEnabledFor``
    some other way (a subclass or an instance overriding it): then it is always called.  Both
    routers read it; the compiled one also tracks the dict's version.
    """
    cache = getattr(logger, "_cache", None)
    if type(cache) is not dict or getattr(type(logger), "isEnabledFor", None) is not logging.Logger.isEnabledFor:
        return None
    if "isEnabledFor" in getattr(logger, "__dict__", ()):
        return None
    return cache


class Router:
    """Route the messages of one gateway connection.

    Parameters
    ----------
    shard
        Passed as the second argument of ``consume``.
    consume
        ``event_manager.consume_raw_event``.
    on_special
        Called with ``(name, data)`` for READY, RESUMED and RATE_LIMITED before ``consume``.
    loads
        The JSON decoder (bytes in).
    consumers
        A :class:`~hikari_shard._consumers.ConsumerIndex` saying whether a dispatch will be
        consumed; ``None`` decodes everything.
    scan
        The op/s/t scanner; ``None`` decodes everything.
    inflator
        The connection's inflator, or ``None`` without transport/payload compression.
    expect_binary
        ``True``: only BINARY frames are valid, ``False``: only TEXT, ``None``: both.
    logger
        The shard's logger (payloads are logged at TRACE level, redacted).
    redact
        Removes the token from a payload before it is logged.
    pending
        The deque to append control items to.
    """

    __slots__ = (
        "_consume",
        "_expect_binary",
        "_inflator",
        "_loads",
        "_log_cache",
        "_logger",
        "_on_special",
        "_redact",
        "_scan",
        "_shard",
        "_wants",
        "bytes_inflated",
        "bytes_received",
        "closed",
        "events",
        "largest",
        "messages",
        "pending",
        "recorder",
        "seq",
        "skipped",
        "waiter",
    )

    def __init__(
        self,
        *,
        shard: object,
        consume: typing.Callable[[str, typing.Any, typing.Any], object],
        on_special: typing.Callable[[str, typing.Any], object],
        loads: typing.Callable[[bytes], typing.Any],
        consumers: typing.Any,
        scan: typing.Callable[[bytes], tuple[int, int | None, str | None] | None] | None,
        inflator: typing.Any,
        expect_binary: bool | None,
        logger: logging.Logger,
        redact: typing.Callable[[bytes], bytes],
        pending: collections.deque[typing.Any],
    ) -> None:
        self._shard = shard
        self._consume = consume
        self._on_special = on_special
        self._loads = loads
        self._wants = consumers.wants if consumers is not None else None
        self._scan = scan if consumers is not None else None
        self._inflator = inflator
        self._expect_binary = expect_binary
        self._logger = logger
        log_cache = level_cache(logger)
        self._log_cache: dict[int, bool] = {} if log_cache is None else log_cache  # {}: always ask isEnabledFor
        self._redact = redact
        self.pending = pending
        self.seq: int | None = None
        """The last sequence number seen."""
        self.skipped = 0
        """How many dispatches were not decoded because nothing consumes them."""
        self.waiter: asyncio.Future[None] | None = None
        """Set by the async side while it waits for :attr:`pending` to fill."""
        self.closed = False
        """Once set (:meth:`close`), every later message is ignored: the connection is being dropped."""
        self.events: dict[str, int] = {}
        """Dispatches by event name, decoded or skipped, duplicates left out (:meth:`take_events` hands them over)."""
        self.messages = 0
        """JSON payloads handled (every opcode), after inflating."""
        self.bytes_received = 0
        """Bytes of the websocket data messages (BINARY and TEXT), as received (compressed)."""
        self.bytes_inflated = 0
        """Bytes of JSON handled, after inflating."""
        self.largest = 0
        """The largest JSON payload handled, in bytes."""
        self.recorder: typing.Callable[[bytes], object] | None = None
        """Called with the raw JSON of every dispatch not dropped as a duplicate (hikari_shard.recorder)."""

    def close(self) -> None:
        """Ignore every later message; the shard resumes from :attr:`seq` on a new connection."""
        self.closed = True

    def push(self, item: object) -> None:
        """Append ``item`` to :attr:`pending` and wake the waiter (used for errors from the socket too)."""
        self.pending.append(item)
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def feed_frame(self, opcode: int, payload: bytes) -> None:
        """Process one websocket message (opcode and whole payload)."""
        if self.closed:
            return
        if opcode == _OP_BINARY:
            if self._expect_binary is False:
                msg = "Unexpected message type received BINARY, expected TEXT"
                raise errors.GatewayTransportError(msg)
            self.bytes_received += len(payload)
            inflator = self._inflator
            if inflator is None:
                raw = payload
            else:
                raw = inflator.feed(payload)
                if raw is None:
                    return
        elif opcode == _OP_TEXT:
            if self._expect_binary:
                msg = "Unexpected message type received TEXT, expected BINARY"
                raise errors.GatewayTransportError(msg)
            self.bytes_received += len(payload)
            raw = payload
        elif opcode == _INFLATED:
            raw = payload
        else:
            self._feed_control(opcode, payload)
            return

        # One inflated JSON payload, handled here rather than in a method of its own: a Python
        # call per message is worth saving in the pure build (the compiled twin's is a C call).
        size = len(raw)
        self.messages += 1
        self.bytes_inflated += size
        if size > self.largest:  # noqa: PLR1730 - a comparison, not a call to max(), per message
            self.largest = size
        scan = self._scan
        if scan is not None:
            header = scan(raw)
            if header is not None and header[0] == _DISPATCH:
                name = header[2]
                if name is not None and name not in ALWAYS_DECODED and not self._wants(name):  # type: ignore[misc]
                    self._skip(name, header[1], raw)
                    return

        # A dict lookup answers "not at TRACE" (nearly always) without calling into logging.
        if self._log_cache.get(TRACE) is not False and self._logger.isEnabledFor(TRACE):
            self._logger.log(TRACE, "received payload with size %s\n    %s", size, self._redact(raw))

        try:
            decoded = self._loads(raw)
        except Exception as ex:  # orjson/json raise ValueErrors, msgspec its DecodeError, a user loads anything
            msg = f"invalid JSON ({_type_name(ex)}: {ex}) in a payload of {size} bytes"
            raise errors.GatewayTransportError(msg) from None
        if type(decoded) is not dict:
            raise _bad_payload(f"expected a JSON object, got {_type_name(decoded)}")

        try:  # Discord sends all four members: subscripts, no method calls
            op = decoded["op"]
            name = decoded["t"]
            seq = decoded["s"]
            data = decoded["d"]
        except KeyError:
            op, name, seq, data = decoded.get("op"), decoded.get("t"), decoded.get("s"), decoded.get("d", _MISSING)
        if op is not _DISPATCH:  # 0 is CPython's cached int: one identity test answers nearly every payload
            if type(op) is not int:
                raise _bad_payload(f"'op' must be an integer, got {_type_name(op)}")
            if op != _DISPATCH:
                self.push(decoded)
                return

        if type(name) is not str:
            raise _bad_payload(f"dispatch 't' must be a string, got {_type_name(name)}")
        if data is _MISSING:
            raise _bad_payload(f"dispatch {name} has no 'd'")
        if seq is not None:
            if type(seq) is not int:
                raise _bad_payload(f"dispatch 's' must be an integer, got {_type_name(seq)}")
            last = self.seq
            # The next seq (nearly every dispatch) is in range when the last one was, and is no duplicate.
            if last is not None and seq == last + 1 and seq <= _SEQ_MAX:
                self.seq = seq
            elif not _SEQ_MIN <= seq <= _SEQ_MAX:
                raise _bad_payload(f"dispatch 's' is out of range: {seq}")
            elif not self._is_duplicate(seq, name):
                self.seq = seq
            elif name not in ALWAYS_DECODED:
                return
            # READY/RESUMED/RATE_LIMITED are never deduplicated away: the handshake depends on them.
        self._count(name, raw)
        if name in ALWAYS_DECODED:
            self._on_special(name, data)
        try:
            self._consume(name, self._shard, data)
        except LookupError:
            self._logger.debug("ignoring unknown event %s", name)

    def handle(self, raw: bytes) -> None:
        """Process one inflated JSON payload (what :meth:`feed_frame` does after inflating)."""
        self.feed_frame(_INFLATED, raw)

    def _feed_control(self, opcode: int, payload: bytes) -> None:
        if opcode == _OP_CLOSE:
            code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005
            reason = payload[2:].decode("utf-8", "replace")
            self.push(CloseFrame(code, reason))
        elif opcode == _OP_PING:
            self.push(PingFrame(bytes(payload)))
        elif opcode != _OP_PONG:
            msg = f"unexpected websocket opcode {opcode}"
            raise errors.GatewayTransportError(msg)

    def _skip(self, name: str, seq: int | None, raw: bytes) -> None:
        """A dispatch nothing consumes, not decoded: its seq is tracked and it is counted."""
        if seq is not None:
            if self._is_duplicate(seq, name):
                return
            self.seq = seq
        self.skipped += 1
        self._count(name, raw)
        if self._log_cache.get(TRACE) is not False and self._logger.isEnabledFor(TRACE):
            self._logger.log(TRACE, "skipped dispatch %s [seq:%s, size:%s], nothing consumes it", name, seq, len(raw))

    def _is_duplicate(self, seq: int, name: str) -> bool:
        last = self.seq
        if last is None or name == _READY:
            return False
        if seq <= last:
            self._logger.debug("dropping %s with seq %s already seen (last seq %s)", name, seq, last)
            return True
        if seq != last + 1:
            self._logger.warning("sequence gap: expected seq %s, received %s for %s", last + 1, seq, name)
        return False

    def take_events(self) -> dict[str, int]:
        """:attr:`events`, and start counting again from zero."""
        events, self.events = self.events, {}
        return events

    def _count(self, name: str, raw: bytes) -> None:
        try:
            self.events[name] += 1
        except KeyError:
            self.events[name] = 1
        recorder = self.recorder  # read once: a recording's watcher thread may clear it meanwhile
        if recorder is not None:
            recorder(raw)
