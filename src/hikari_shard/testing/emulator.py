"""A local Discord gateway (v10) and the bit of REST a bot needs to find it.

:class:`GatewayEmulator` is a real aiohttp websocket server on ``127.0.0.1`` that speaks the server side
of Discord's gateway v10: HELLO, IDENTIFY/READY, heartbeats, RESUME with replay of missed dispatches,
INVALID_SESSION, RECONNECT, the documented close codes, and all three compression schemes
(``zlib-stream`` and ``zstd-stream`` transport compression, and per-payload zlib).  It also answers
``GET /gateway/bot``, so a stock ``hikari.GatewayBot(token, rest_url=emulator.rest_url)`` finds and
connects to it on its own.

It is meant for tests: every payload a client sends is recorded (token redacted), every connection
and session can be inspected, and faults can be injected (server close codes, dropped TCP connections,
malformed frames, unacknowledged heartbeats, invalid sessions).

Examples
--------
```py
async with GatewayEmulator(guild_ids=[123]) as emulator:
    bot = hikari.GatewayBot(emulator.token, rest_url=emulator.rest_url, banner=None)
    await bot.start(check_for_updates=False)
    await emulator.dispatch("MESSAGE_CREATE", message_payload)
    ...
    await bot.close()
```

Run it in another process with ``python -m hikari_shard.testing.emulator --port 0 --token T``: the
gateway URL is printed on the first line of stdout, the REST URL on the second, and it serves until it
is killed.  A small control API (see :func:`main`) lets that other process dispatch events and inject
faults.
"""

from __future__ import annotations

__all__ = (
    "CLOSE_ALREADY_AUTHENTICATED",
    "CLOSE_AUTHENTICATION_FAILED",
    "CLOSE_DECODE_ERROR",
    "CLOSE_DISALLOWED_INTENTS",
    "CLOSE_INVALID_API_VERSION",
    "CLOSE_INVALID_INTENTS",
    "CLOSE_INVALID_SEQ",
    "CLOSE_INVALID_SHARD",
    "CLOSE_NOT_AUTHENTICATED",
    "CLOSE_RATE_LIMITED",
    "CLOSE_SESSION_TIMED_OUT",
    "CLOSE_SHARDING_REQUIRED",
    "CLOSE_UNKNOWN_ERROR",
    "CLOSE_UNKNOWN_OPCODE",
    "OP_DISPATCH",
    "OP_HEARTBEAT",
    "OP_HEARTBEAT_ACK",
    "OP_HELLO",
    "OP_IDENTIFY",
    "OP_INVALID_SESSION",
    "OP_PRESENCE_UPDATE",
    "OP_RECONNECT",
    "OP_REQUEST_CHANNEL_INFO",
    "OP_REQUEST_GUILD_MEMBERS",
    "OP_RESUME",
    "OP_VOICE_STATE_UPDATE",
    "REDACTED",
    "Compression",
    "EmulatedConnection",
    "EmulatedSession",
    "GatewayEmulator",
    "encode_frame",
    "main",
    "make_bot_token",
    "user_id_from_token",
)

import argparse
import asyncio
import base64
import binascii
import collections
import contextlib
import datetime
import logging
import secrets
import signal
import struct
import sys
import typing
import zlib

import aiohttp
import orjson
from aiohttp import web

try:
    from zlib_ng import zlib_ng as _deflate
except ImportError:  # pragma: no cover - zlib-ng is a dependency, stdlib zlib is the same API
    _deflate = zlib  # type: ignore[assignment]

_zstd: typing.Any
if sys.version_info >= (3, 14):  # pragma: no cover - depends on the interpreter
    from compression import zstd as _zstd
else:
    try:
        from backports import zstd as _zstd
    except ImportError:  # pragma: no cover - optional dependency
        _zstd = None

if typing.TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping, Sequence

Compression = typing.Literal["zlib-stream", "zstd-stream", "payload"] | None
"""The compression of a connection: transport ``zlib-stream``/``zstd-stream``, per-``payload`` zlib, or none."""

_LOGGER: typing.Final = logging.getLogger("hikari_shard.testing.emulator")

# Opcodes (https://discord.com/developers/docs/topics/opcodes-and-status-codes#gateway-gateway-opcodes)
OP_DISPATCH: typing.Final[int] = 0
OP_HEARTBEAT: typing.Final[int] = 1
OP_IDENTIFY: typing.Final[int] = 2
OP_PRESENCE_UPDATE: typing.Final[int] = 3
OP_VOICE_STATE_UPDATE: typing.Final[int] = 4
OP_RESUME: typing.Final[int] = 6
OP_RECONNECT: typing.Final[int] = 7
OP_REQUEST_GUILD_MEMBERS: typing.Final[int] = 8
OP_INVALID_SESSION: typing.Final[int] = 9
OP_HELLO: typing.Final[int] = 10
OP_HEARTBEAT_ACK: typing.Final[int] = 11
OP_REQUEST_CHANNEL_INFO: typing.Final[int] = 43

# Close codes (https://discord.com/developers/docs/topics/opcodes-and-status-codes#gateway-gateway-close-event-codes)
CLOSE_UNKNOWN_ERROR: typing.Final[int] = 4000
CLOSE_UNKNOWN_OPCODE: typing.Final[int] = 4001
CLOSE_DECODE_ERROR: typing.Final[int] = 4002
CLOSE_NOT_AUTHENTICATED: typing.Final[int] = 4003
CLOSE_AUTHENTICATION_FAILED: typing.Final[int] = 4004
CLOSE_ALREADY_AUTHENTICATED: typing.Final[int] = 4005
CLOSE_INVALID_SEQ: typing.Final[int] = 4007
CLOSE_RATE_LIMITED: typing.Final[int] = 4008
CLOSE_SESSION_TIMED_OUT: typing.Final[int] = 4009
CLOSE_INVALID_SHARD: typing.Final[int] = 4010
CLOSE_SHARDING_REQUIRED: typing.Final[int] = 4011
CLOSE_INVALID_API_VERSION: typing.Final[int] = 4012
CLOSE_INVALID_INTENTS: typing.Final[int] = 4013
CLOSE_DISALLOWED_INTENTS: typing.Final[int] = 4014

REDACTED: typing.Final[str] = "<redacted>"
"""What replaces the bot token in every recorded payload."""

_GATEWAY_VERSION: typing.Final[int] = 10
_MAX_CLIENT_PAYLOAD: typing.Final[int] = 4096
"""Discord closes with 4002 when a client payload is larger than this many bytes."""
_RATE_LIMIT_COUNT: typing.Final[int] = 120
_RATE_LIMIT_WINDOW: typing.Final[float] = 60.0
_CLOSE_TIMEOUT: typing.Final[float] = 2.0
_CLOSE_CODE: typing.Final = struct.Struct("!H")
"""How long a server-side close waits for the client's close frame."""
_ZLIB_SUFFIX: typing.Final[bytes] = b"\x00\x00\xff\xff"
_CLIENT_OPS: typing.Final[frozenset[int]] = frozenset(
    (
        OP_HEARTBEAT,
        OP_IDENTIFY,
        OP_PRESENCE_UPDATE,
        OP_VOICE_STATE_UPDATE,
        OP_RESUME,
        OP_REQUEST_GUILD_MEMBERS,
        OP_REQUEST_CHANNEL_INFO,
    )
)
_CLIENT_CLOSE_INVALIDATES: typing.Final[frozenset[int]] = frozenset((1000, 1001))
"""Per Discord's docs, a client closing with 1000/1001 ends its session; any other code keeps it resumable."""
_SERVER_CLOSE_INVALIDATES: typing.Final[frozenset[int]] = frozenset(
    (
        CLOSE_AUTHENTICATION_FAILED,
        CLOSE_INVALID_SEQ,
        CLOSE_SESSION_TIMED_OUT,
        CLOSE_INVALID_SHARD,
        CLOSE_SHARDING_REQUIRED,
        CLOSE_INVALID_API_VERSION,
        CLOSE_INVALID_INTENTS,
        CLOSE_DISALLOWED_INTENTS,
    )
)
"""Server close codes after which Discord requires a new session."""
_GUILDS_INTENT: typing.Final[int] = 1 << 0
_DEFAULT_USER_ID: typing.Final[int] = 1_000_000_000_000_000_001
_USERNAME: typing.Final[str] = "emulated-bot"
_TRACE: typing.Final[list[str]] = ['["hikari-shard-emulator",{"micros":0}]']
_REPLAY_SKIPPED: typing.Final[frozenset[str]] = frozenset(("READY", "RESUMED"))
_DISCORD_EPOCH_MS: typing.Final[int] = 1_420_070_400_000

# Writer queue item kinds
_FRAMES: typing.Final[int] = 0
_CLOSE: typing.Final[int] = 1
_BARRIER: typing.Final[int] = 2
_STOP: typing.Final[int] = 3

_WRITE_BATCH: typing.Final[int] = 256 * 1024
"""Queued frames are written to the socket together, up to this many bytes per write."""
_DISPATCH_MANY_CHUNK: typing.Final[int] = 512
_HIGH_WATER: typing.Final[int] = 4 * 1024 * 1024
_LOW_WATER: typing.Final[int] = 1024 * 1024
_OPCODE_TEXT: typing.Final[int] = 0x1
_OPCODE_BINARY: typing.Final[int] = 0x2
_HEADER16: typing.Final = struct.Struct("!BBH")
_HEADER64: typing.Final = struct.Struct("!BBQ")
_Item = tuple[int, typing.Any, "asyncio.Future[None] | None"]


def make_bot_token(user_id: int = _DEFAULT_USER_ID) -> str:
    """Make a token shaped like a real bot token for ``user_id``.

    ``hikari.GatewayBot`` parses the bot's id out of the first segment of its token, so it refuses
    tokens like ``"emulator-token"``; pass the result of this function to both the emulator and the bot.

    Parameters
    ----------
    user_id
        The bot user's id, encoded in the first segment.

    Returns
    -------
    str
        ``base64(user_id).<timestamp-ish>.<random>``, the same shape Discord uses.
    """
    head = base64.b64encode(str(user_id).encode()).decode().rstrip("=")
    return f"{head}.emulat.{secrets.token_urlsafe(27)}"


def user_id_from_token(token: str) -> int | None:
    """Read the user id encoded in a real-shaped bot token.

    Parameters
    ----------
    token
        A bot token.

    Returns
    -------
    int | None
        The id, or `None` if the token does not encode one.
    """
    segment = token.split(".", 1)[0]
    try:
        raw = base64.b64decode(segment + "=" * (-len(segment) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None
    return int(raw) if raw.isdigit() else None


def _snowflake_now(increment: int = 0) -> int:
    now_ms = int(datetime.datetime.now(tz=datetime.UTC).timestamp() * 1000)
    return ((now_ms - _DISCORD_EPOCH_MS) << 22) | (increment & 0xFFF)


def _iso_now() -> str:
    return datetime.datetime.now(tz=datetime.UTC).isoformat()


def _redact(value: typing.Any, token: str) -> typing.Any:
    # Any string containing the token is replaced whole: the token must never reach a record.
    if isinstance(value, str):
        return REDACTED if token and token in value else value
    if isinstance(value, dict):
        return {k: _redact(v, token) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact(v, token) for v in value]
    return value


def encode_frame(
    opcode: int,
    payload: bytes = b"",
    *,
    fin: bool = True,
    rsv: int = 0,
    mask: bytes | None = None,
    length_bits: int | None = None,
    declared: int | None = None,
) -> bytes:
    """Encode one websocket frame (RFC 6455 section 5.2), by default as a server sends it.

    The emulator frames its messages with this itself, so a burst of queued messages reaches the
    socket in one write; tests use the keywords to build frames a server must not send.

    Parameters
    ----------
    opcode
        The frame's opcode (``1`` text, ``2`` binary, ``8`` close, ``9`` ping, ...).
    payload
        The unmasked payload.
    fin
        Whether this is the last frame of its message.
    rsv
        The three reserved bits, as a number from 0 to 7.
    mask
        A 4-byte masking key (as a client sends), or `None` for an unmasked frame.
    length_bits
        Force the 7-, 16- or 64-bit length form; by default the shortest one that fits.
    declared
        Write this length in the header instead of the payload's real one.

    Returns
    -------
    bytes
        The header followed by the (masked, if ``mask`` is given) payload.
    """
    length = len(payload) if declared is None else declared
    if length_bits is None:
        length_bits = 7 if length < 126 else 16 if length < 1 << 16 else 64
    first = (0x80 if fin else 0) | (rsv << 4) | opcode
    mask_bit = 0 if mask is None else 0x80
    if length_bits == 7:
        header = bytes((first, mask_bit | length))
    elif length_bits == 16:
        header = _HEADER16.pack(first, mask_bit | 126, length)
    else:
        header = _HEADER64.pack(first, mask_bit | 127, length)
    if mask is None:
        return header + payload
    return header + mask + bytes(byte ^ mask[index % 4] for index, byte in enumerate(payload))


def _claimed_shard_id(d: typing.Any) -> int:
    # The shard id an IDENTIFY asks for, or -1 if it names none (or a malformed one).
    shard = d.get("shard", [0, 1]) if isinstance(d, dict) else None
    if isinstance(shard, list) and len(shard) == 2 and type(shard[0]) is int:
        return shard[0]
    return -1


def _split_zlib_message(data: bytes, size: int) -> list[bytes]:
    # Split one Z_SYNC_FLUSH-terminated message into chunks of at most `size` bytes such that no
    # prefix but the whole message ends with 00 00 ff ff (clients look for that suffix to know a
    # message is complete, exactly as with Discord's own fragmented messages).
    chunks: list[bytes] = []
    start = 0
    end_of_data = len(data)
    while start < end_of_data:
        end = min(start + size, end_of_data)
        if end < end_of_data and data.endswith(_ZLIB_SUFFIX, 0, end):
            end = end - 1 if end - 1 > start else end + 1
        chunks.append(data[start:end])
        start = end
    return chunks


class _Notifier:
    """Wake every coroutine waiting for some state to change."""

    __slots__ = ("_waiters",)

    def __init__(self) -> None:
        self._waiters: list[asyncio.Future[None]] = []

    def notify(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def wait_until(
        self,
        predicate: Callable[[], typing.Any],
        *,
        timeout: float,  # noqa: ASYNC109 - a deadline for the whole wait
        describe: Callable[[], str],
    ) -> typing.Any:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not (result := predicate()):
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(describe())
            waiter = loop.create_future()
            self._waiters.append(waiter)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(waiter, remaining)
        return result


class EmulatedSession:
    """A gateway session: created by an accepted IDENTIFY, continued by RESUME.

    Every dispatch sent in the session is stored, so a RESUME replays exactly what the client missed,
    even when the events were dispatched while no connection was attached.

    Attributes
    ----------
    session_id
        The id sent in READY (and expected back in RESUME).
    shard_id
        The shard this session belongs to.
    shard_count
        The shard count given in IDENTIFY.
    intents
        The intents given in IDENTIFY.
    seq
        The sequence number of the last dispatch of this session (READY is 1).
    events
        Every dispatch of the session, in order, as ``(seq, name, data)``.
    resumable
        Whether a RESUME of this session would be accepted.  It becomes `False` after
        ``send_invalid_session(False)``, a client close with 1000/1001, or a server close with a code
        after which Discord requires a new session (4004, 4007, 4009-4014).
        It also becomes `False` once the client has been away for the emulator's ``session_timeout``.
    connection
        The connection currently attached to the session, or `None` while the client is away.
    detached_at
        ``loop.time()`` when the last connection left the session (the client disconnected or got a
        resumable INVALID_SESSION), or `None` while a connection is attached.
    """

    __slots__ = (
        "_expiry",
        "connection",
        "detached_at",
        "events",
        "intents",
        "resumable",
        "seq",
        "session_id",
        "shard_count",
        "shard_id",
    )

    def __init__(self, session_id: str, shard_id: int, shard_count: int, intents: int) -> None:
        self.session_id = session_id
        self.shard_id = shard_id
        self.shard_count = shard_count
        self.intents = intents
        self.seq = 0
        self.events: list[tuple[int, str, typing.Any]] = []
        self.resumable = True
        self.connection: EmulatedConnection | None = None
        self.detached_at: float | None = None
        self._expiry: asyncio.TimerHandle | None = None

    def __repr__(self) -> str:
        return (
            f"EmulatedSession(session_id={self.session_id!r}, shard_id={self.shard_id}, seq={self.seq}, "
            f"resumable={self.resumable})"
        )

    def _attach(self, connection: EmulatedConnection) -> None:
        self.connection = connection
        self.detached_at = None
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None

    def _detach(self, connection: EmulatedConnection, timeout: float | None) -> None:
        # Only the attached connection detaches the session: a stale one (replaced by a RESUME on a
        # newer connection) leaving must not start the clock.
        if self.connection is not connection:
            return
        self.connection = None
        loop = asyncio.get_running_loop()
        self.detached_at = loop.time()
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None
        if timeout is not None and self.resumable:
            self._expiry = loop.call_later(timeout, self._expire)

    def _expire(self) -> None:
        self._expiry = None
        if self.connection is None and self.resumable:
            _LOGGER.debug("session %s timed out while its client was away", self.session_id)
            self.resumable = False

    def _expired(self, now: float, timeout: float | None) -> bool:
        # The timer may not have run yet when a RESUME arrives right at the deadline.
        return timeout is not None and self.detached_at is not None and now - self.detached_at >= timeout

    def _dispatch_nowait(self, name: str, data: typing.Any, *, wait: bool) -> tuple[int, asyncio.Future[None] | None]:
        # Allocating the seq, storing the event and queueing it on the live connection happen without
        # yielding to the loop, so concurrent dispatches and resume replays can never reorder.
        self.seq += 1
        seq = self.seq
        self.events.append((seq, name, data))
        connection = self.connection
        if connection is None or not connection._alive:
            return seq, None
        return seq, connection._enqueue_payload({"t": name, "s": seq, "op": OP_DISPATCH, "d": data}, wait=wait)

    async def dispatch(self, name: str, data: typing.Any) -> int:
        """Dispatch an event in this session.

        The event is stored for replay; if a connection is attached it is sent right away.  Sending
        errors (the client went away) are not raised: the event will be replayed on resume.

        Parameters
        ----------
        name
            The event name (``t``), e.g. ``"MESSAGE_CREATE"``.
        data
            The event data (``d``), any JSON-serialisable value.

        Returns
        -------
        int
            The sequence number of the event.
        """
        seq, future = self._dispatch_nowait(name, data, wait=True)
        if future is not None:
            with contextlib.suppress(ConnectionError):
                await future
        return seq


class EmulatedConnection:
    """One websocket connection accepted by the emulator.

    Attributes
    ----------
    index
        The position of this connection in :attr:`GatewayEmulator.connections`.
    query
        The query string of the connection request (``v``, ``encoding``, ``compress``).
    compression
        ``"zlib-stream"``/``"zstd-stream"`` (transport compression from the ``compress`` query),
        ``"payload"`` (``"compress": true`` in IDENTIFY) or `None`.
    split_frames
        With ``zlib-stream``, split every message into websocket messages of at most this many bytes.
        Defaults to the emulator's ``split_frames``; may be changed while connected.
    received
        Every payload the client sent, decoded, in order, with the token replaced by ``"<redacted>"``.
        Frames that are not valid JSON are not recorded (they close the connection with 4002), nor is
        anything sent after the emulator decided to close the connection.
    session
        The session identified or resumed on this connection, or `None`.
    shard_id
        The shard id of that session, or `None`.
    close_code
        The code of the client's close frame, if it sent one (initiating the close or answering ours).
    close_reason
        The reason of the client's close frame, if it sent one.
    server_close_code
        The code the emulator closed this connection with, if it did.
    closed
        Whether the connection is over.
    """

    __slots__ = (
        "_alive",
        "_authenticated",
        "_close_timer",
        "_closed_event",
        "_deflater",
        "_emulator",
        "_notifier",
        "_payload_compress",
        "_pending",
        "_recent",
        "_transport",
        "_wakeup",
        "_writer_task",
        "_ws",
        "_zstd_compressor",
        "ack_heartbeats_override",
        "close_code",
        "close_reason",
        "closed",
        "compression",
        "index",
        "query",
        "received",
        "server_close_code",
        "session",
        "shard_id",
        "split_frames",
    )

    def __init__(
        self,
        emulator: GatewayEmulator,
        ws: web.WebSocketResponse,
        transport: asyncio.BaseTransport | None,
        query: dict[str, str],
    ) -> None:
        self._emulator = emulator
        self._ws = ws
        self._transport = transport
        self._alive = True
        self._authenticated = False
        self._closed_event = asyncio.Event()
        self._close_timer: asyncio.TimerHandle | None = None
        self._notifier = _Notifier()
        self._payload_compress = False
        self._pending: collections.deque[_Item] = collections.deque()
        self._wakeup = asyncio.Event()
        self._recent: collections.deque[float] = collections.deque()
        self._writer_task: asyncio.Task[None] | None = None
        self._deflater: typing.Any = None
        self._zstd_compressor: typing.Any = None
        self.index = len(emulator.connections)
        self.query = query
        compress = query.get("compress")
        self.compression: Compression = compress if compress in {"zlib-stream", "zstd-stream"} else None
        self.split_frames = emulator.split_frames
        self.received: list[dict[str, typing.Any]] = []
        self.session: EmulatedSession | None = None
        self.shard_id: int | None = None
        self.close_code: int | None = None
        self.close_reason: str | None = None
        self.server_close_code: int | None = None
        self.closed = False
        self.ack_heartbeats_override: bool | None = None
        """Per-connection override of the emulator's ``ack_heartbeats`` (`None` follows the emulator)."""

    def __repr__(self) -> str:
        return (
            f"EmulatedConnection(shard_id={self.shard_id}, compression={self.compression!r}, "
            f"received={len(self.received)}, closed={self.closed}, close_code={self.close_code})"
        )

    @property
    def ack_heartbeats(self) -> bool:
        """Whether heartbeats on this connection are answered with HEARTBEAT_ACK.

        Follows :attr:`GatewayEmulator.ack_heartbeats` until set on the connection.
        """
        if self.ack_heartbeats_override is None:
            return self._emulator.ack_heartbeats
        return self.ack_heartbeats_override

    @ack_heartbeats.setter
    def ack_heartbeats(self, value: bool) -> None:
        self.ack_heartbeats_override = value

    # Public API

    async def wait_for_op(
        self,
        op: int,
        *,
        timeout: float = 5.0,  # noqa: ASYNC109 - a documented timeout, like asyncio.wait_for's
        count: int = 1,
    ) -> dict[str, typing.Any]:
        """Wait until the client has sent ``count`` payloads with opcode ``op``.

        Parameters
        ----------
        op
            The opcode to wait for.
        timeout
            How long to wait, in seconds.
        count
            How many payloads with this opcode must have been received in total.

        Returns
        -------
        dict
            The last payload with this opcode (token redacted).

        Raises
        ------
        TimeoutError
            If they did not arrive in time.
        ConnectionError
            If the connection closed before they arrived.
        """

        def ready() -> dict[str, typing.Any] | None:
            matching = [payload for payload in self.received if payload.get("op") == op]
            if len(matching) >= count:
                return matching[-1]
            if self.closed:
                msg = (
                    f"connection closed (client code {self.close_code}, server code {self.server_close_code}) "
                    f"after {len(matching)} of {count} payloads with op {op}"
                )
                raise ConnectionError(msg)
            return None

        return typing.cast(
            "dict[str, typing.Any]",
            await self._notifier.wait_until(
                ready,
                timeout=timeout,
                describe=lambda: (
                    f"op {op} x{count} not received within {timeout}s; received ops "
                    f"{[payload.get('op') for payload in self.received]}"
                ),
            ),
        )

    async def wait_closed(self, *, timeout: float = 5.0) -> None:  # noqa: ASYNC109 - documented timeout
        """Wait until the connection is over.

        Raises
        ------
        TimeoutError
            If it is still open after ``timeout`` seconds.
        """
        try:
            await asyncio.wait_for(self._closed_event.wait(), timeout)
        except TimeoutError:
            msg = f"connection still open after {timeout}s"
            raise TimeoutError(msg) from None

    async def dispatch(self, name: str, data: typing.Any) -> int:
        """Dispatch an event in this connection's session (stored for replay, like every dispatch).

        Returns
        -------
        int
            The sequence number of the event.

        Raises
        ------
        RuntimeError
            If no session was identified or resumed on this connection.
        """
        if self.session is None:
            msg = "no session on this connection yet (wait for IDENTIFY/RESUME first)"
            raise RuntimeError(msg)
        return await self.session.dispatch(name, data)

    async def send_payload(self, payload: dict[str, typing.Any]) -> None:
        """Send any payload, encoded and compressed like every other payload of this connection.

        It does not touch the session's sequence: to send a dispatch that counts, use :meth:`dispatch`.

        Raises
        ------
        ConnectionError
            If the connection is closed.
        """
        future = self._enqueue_payload(payload, wait=True)
        assert future is not None
        await future

    async def send_raw(self, data: bytes | str, *, binary: bool = True) -> None:
        """Send one websocket message as given, bypassing encoding and compression (malformed frames).

        Note that data sent this way does not go through the connection's zlib/zstd stream, so the
        client's decompressor state is not advanced by it.

        Parameters
        ----------
        data
            The message content.
        binary
            Send a binary message (the default) or a text message.

        Raises
        ------
        ConnectionError
            If the connection is closed.
        """
        raw = data.encode() if isinstance(data, str) else bytes(data)
        future = self._enqueue(_FRAMES, encode_frame(_OPCODE_BINARY if binary else _OPCODE_TEXT, raw), wait=True)
        assert future is not None
        await future

    async def send_reconnect(self) -> None:
        """Send RECONNECT (op 7): the client should close and resume its session."""
        await self.send_payload({"t": None, "s": None, "op": OP_RECONNECT, "d": None})

    async def send_invalid_session(self, resumable: bool) -> None:
        """Send INVALID_SESSION (op 9) with ``d=resumable``.

        The session is detached from this connection (dispatches are stored until a RESUME), and the
        connection goes back to unauthenticated, so the client may IDENTIFY or RESUME again.  With
        ``resumable=False`` the session can no longer be resumed.
        """
        self._invalidate(resumable=resumable)
        await self.send_payload({"t": None, "s": None, "op": OP_INVALID_SESSION, "d": resumable})

    async def request_heartbeat(self) -> None:
        """Send HEARTBEAT (op 1): the client must answer with a heartbeat right away."""
        await self.send_payload({"t": None, "s": None, "op": OP_HEARTBEAT, "d": None})

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close the connection from the server side with ``code`` and wait until it is over.

        Everything queued before is sent first; then the close frame; then the emulator waits (up to 2 s)
        for the client's close frame (recorded in :attr:`close_code`) before closing the TCP connection.
        Codes after which Discord requires a new session (4004, 4007, 4009-4014) make the session
        non-resumable.
        """
        future = self._close_nowait(code, reason)
        if future is not None:
            with contextlib.suppress(ConnectionError):
                await future
        await self.wait_closed(timeout=_CLOSE_TIMEOUT + 3)

    async def drop(self) -> None:
        """Drop the TCP connection abruptly: no close frame, like a network failure or a crashed node."""
        self._alive = False
        if self._transport is not None:
            self._transport.abort()  # type: ignore[attr-defined]
        await self.wait_closed(timeout=_CLOSE_TIMEOUT + 3)

    # Internals

    def _enqueue(self, kind: int, arg: typing.Any, *, wait: bool) -> asyncio.Future[None] | None:
        if not self._alive:
            if not wait:
                return None
            msg = "the connection is closed"
            raise ConnectionError(msg)
        future = asyncio.get_running_loop().create_future() if wait else None
        self._pending.append((kind, arg, future))
        self._wakeup.set()
        return future

    def _encode(self, payload: dict[str, typing.Any]) -> bytes:
        raw = orjson.dumps(payload)
        if self.compression == "zlib-stream":
            if self._deflater is None:
                self._deflater = _deflate.compressobj()
            data = self._deflater.compress(raw) + self._deflater.flush(zlib.Z_SYNC_FLUSH)
            if self.split_frames:
                # Each chunk its own websocket message, as Discord's fragmented payloads look to a client.
                chunks = _split_zlib_message(data, self.split_frames)
                return b"".join(encode_frame(_OPCODE_BINARY, chunk) for chunk in chunks)
            return encode_frame(_OPCODE_BINARY, data)
        if self.compression == "zstd-stream":
            if self._zstd_compressor is None:
                self._zstd_compressor = _zstd.ZstdCompressor()
            return encode_frame(
                _OPCODE_BINARY, self._zstd_compressor.compress(raw, mode=_zstd.ZstdCompressor.FLUSH_BLOCK)
            )
        if self._payload_compress:
            return encode_frame(_OPCODE_BINARY, _deflate.compress(raw))
        return encode_frame(_OPCODE_TEXT, raw)

    def _enqueue_payload(self, payload: dict[str, typing.Any], *, wait: bool) -> asyncio.Future[None] | None:
        if not self._alive:
            if not wait:
                return None
            msg = "the connection is closed"
            raise ConnectionError(msg)
        # Encoded (and compressed, advancing the stream) at queue time, so in queue order.
        return self._enqueue(_FRAMES, self._encode(payload), wait=wait)

    def _close_nowait(self, code: int, reason: str) -> asyncio.Future[None] | None:
        if not self._alive or self.server_close_code is not None:
            return None
        self.server_close_code = code
        if code in _SERVER_CLOSE_INVALIDATES and self.session is not None:
            self.session.resumable = False
        future = self._enqueue(_CLOSE, (code, reason), wait=True)
        self._alive = False  # nothing may be queued after the close frame
        return future

    async def _close_from_reader(self, code: int, reason: str) -> None:
        _LOGGER.debug("closing connection: %s %s", code, reason)
        future = self._close_nowait(code, reason)
        if future is not None:
            with contextlib.suppress(ConnectionError):
                await future

    def _invalidate(self, *, resumable: bool) -> None:
        session = self.session
        if session is not None:
            if not resumable:
                session.resumable = False
            session._detach(self, self._emulator.session_timeout)
        self._authenticated = False

    def _write(self, data: bytes) -> None:
        transport = self._transport
        if transport is None or transport.is_closing():
            msg = "cannot write to a closing transport"
            raise ConnectionResetError(msg)
        transport.write(data)  # type: ignore[attr-defined]

    async def _drain(self) -> None:
        transport = self._transport
        if transport is None or transport.get_write_buffer_size() < _HIGH_WATER:  # type: ignore[attr-defined]
            await asyncio.sleep(0)  # let the rest of the loop run between batches
            return
        # asyncio transports offer no public "wait until drained", so poll the buffer size.
        while not transport.is_closing() and transport.get_write_buffer_size() > _LOW_WATER:  # type: ignore[attr-defined]  # noqa: ASYNC110
            await asyncio.sleep(0.001)

    async def _write_loop(self) -> None:
        pending = self._pending
        failed: BaseException | None = None
        while True:
            if not pending:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            kind, arg, future = pending.popleft()
            if kind == _STOP:
                break
            futures = [future] if future is not None else []
            try:
                if failed is not None:
                    raise failed
                if kind == _FRAMES:
                    # Coalesce consecutive queued messages into one socket write.
                    chunks = [arg]
                    size = len(arg)
                    while pending and pending[0][0] == _FRAMES and size < _WRITE_BATCH:
                        _, more, more_future = pending.popleft()
                        chunks.append(more)
                        size += len(more)
                        if more_future is not None:
                            futures.append(more_future)
                    self._write(b"".join(chunks) if len(chunks) > 1 else arg)
                elif kind == _CLOSE:
                    # Only the close frame: the reader keeps reading until the client answers with its own
                    # (recorded as close_code), then the TCP connection is closed, as Discord does.
                    code, reason = arg
                    await self._ws.send_frame(_CLOSE_CODE.pack(code) + reason.encode(), aiohttp.WSMsgType.CLOSE)
                    self._close_timer = asyncio.get_running_loop().call_later(_CLOSE_TIMEOUT, self._abort)
                    failed = ConnectionError("the connection is closed")
            except Exception as ex:
                if failed is None:
                    failed = ConnectionError(f"the connection is closed ({ex})")
                self._alive = False
                for item in futures:
                    if not item.done():
                        item.set_exception(ConnectionError(str(failed)))
            else:
                for item in futures:
                    if not item.done():
                        item.set_result(None)
                if kind == _FRAMES:
                    await self._drain()

    def _abort(self) -> None:
        if self._transport is not None and not self.closed:
            self._transport.abort()  # type: ignore[attr-defined]

    async def _run(self) -> None:
        self._writer_task = asyncio.create_task(self._write_loop(), name="gateway emulator writer")
        try:
            first = self._emulator.before_hello.popleft() if self._emulator.before_hello else None
            if first == "reconnect":
                self._enqueue_payload({"t": None, "s": None, "op": OP_RECONNECT, "d": None}, wait=False)
            elif first is None and await self._check_query():
                self._enqueue_payload(
                    {
                        "t": None,
                        "s": None,
                        "op": OP_HELLO,
                        "d": {
                            "heartbeat_interval": max(1, round(self._emulator.heartbeat_interval * 1000)),
                            "_trace": _TRACE,
                        },
                    },
                    wait=False,
                )
            await self._read_loop()
        finally:
            await self._teardown()

    async def _check_query(self) -> bool:
        query = self.query
        if query.get("v") != str(_GATEWAY_VERSION):
            await self._close_from_reader(CLOSE_INVALID_API_VERSION, "Invalid API version.")
            return False
        if query.get("encoding", "json") != "json":
            await self._close_from_reader(CLOSE_DECODE_ERROR, "The emulator only speaks the json encoding.")
            return False
        compress = query.get("compress")
        if compress not in {None, "", "zlib-stream", "zstd-stream"}:
            await self._close_from_reader(CLOSE_UNKNOWN_ERROR, f"Unknown compression {compress!r}.")
            return False
        if compress == "zstd-stream" and _zstd is None:
            await self._close_from_reader(CLOSE_UNKNOWN_ERROR, "zstd is not installed (pip install backports.zstd).")
            return False
        return True

    async def _read_loop(self) -> None:
        ws = self._ws
        while True:
            message = await ws.receive()
            if message.type in {aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY}:
                if not self._alive:
                    continue  # closing: like Discord, nothing more is processed
                try:
                    await self._on_message(message.data)
                finally:
                    self._notifier.notify()
                continue
            if message.type == aiohttp.WSMsgType.CLOSE:
                self.close_code = int(message.data)
                self.close_reason = str(message.extra or "")
                _LOGGER.debug("client sent close frame %s %r", self.close_code, self.close_reason)
                if self.server_close_code is None:
                    self._alive = False
                    if self.close_code in _CLIENT_CLOSE_INVALIDATES:
                        self._invalidate(resumable=False)
                    echo = (
                        self.close_code
                        if 1000 <= self.close_code < 5000 and self.close_code not in {1005, 1006}
                        else 1000
                    )
                    with contextlib.suppress(Exception):
                        await ws.close(code=echo)  # echo the client's close frame, then close TCP
                elif self._transport is not None:
                    self._transport.close()  # our close frame was already sent: the handshake is complete
            break

    async def _teardown(self) -> None:
        self._alive = False
        if self._close_timer is not None:
            self._close_timer.cancel()
        writer = self._writer_task
        try:
            if writer is not None and not writer.done():
                # Let the writer finish what is queued (a close frame, typically), then stop.
                self._pending.append((_STOP, None, None))
                self._wakeup.set()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(writer), _CLOSE_TIMEOUT + 1)
        finally:
            if writer is not None and not writer.done():
                writer.cancel()
            while self._pending:
                _, _, future = self._pending.popleft()
                if future is not None and not future.done():
                    future.set_exception(ConnectionError("the connection is closed"))
            if self.session is not None:
                self.session._detach(self, self._emulator.session_timeout)
            self.closed = True
            self._closed_event.set()
            self._notifier.notify()
            self._emulator._notifier.notify()

    async def _on_message(self, data: bytes | str) -> None:
        if len(data) > _MAX_CLIENT_PAYLOAD:
            await self._close_from_reader(CLOSE_DECODE_ERROR, "Payload too large.")
            return
        try:
            payload = orjson.loads(data)
        except orjson.JSONDecodeError:
            await self._close_from_reader(CLOSE_DECODE_ERROR, "Error while decoding payload.")
            return
        if not isinstance(payload, dict) or type(payload.get("op")) is not int:
            await self._close_from_reader(CLOSE_DECODE_ERROR, "Error while decoding payload.")
            return

        emulator = self._emulator
        token = emulator.token
        record = _redact(payload, token)
        op = payload["op"]
        if op in {OP_IDENTIFY, OP_RESUME} and isinstance(record.get("d"), dict) and "token" in record["d"]:
            record["d"]["token"] = REDACTED
        self.received.append(record)
        if _LOGGER.isEnabledFor(logging.DEBUG):
            _LOGGER.debug("received op %s on connection %s", op, self.index)

        now = asyncio.get_running_loop().time()
        recent = self._recent
        recent.append(now)
        while recent[0] <= now - _RATE_LIMIT_WINDOW:
            recent.popleft()
        if len(recent) > _RATE_LIMIT_COUNT:
            await self._close_from_reader(CLOSE_RATE_LIMITED, "You are being rate limited.")
            return

        if op not in _CLIENT_OPS:
            await self._close_from_reader(CLOSE_UNKNOWN_OPCODE, "Unknown opcode.")
        elif op == OP_HEARTBEAT:
            if self.ack_heartbeats:
                self._enqueue_payload({"t": None, "s": None, "op": OP_HEARTBEAT_ACK, "d": None}, wait=False)
        elif op in {OP_IDENTIFY, OP_RESUME}:
            if op == OP_IDENTIFY:
                emulator.identify_log.append((now, _claimed_shard_id(payload.get("d"))))
            if self._authenticated:
                await self._close_from_reader(CLOSE_ALREADY_AUTHENTICATED, "You sent more than one identify.")
                return
            d = payload.get("d")
            if not isinstance(d, dict) or not isinstance(d.get("token"), str):
                await self._close_from_reader(CLOSE_DECODE_ERROR, "Error while decoding payload.")
                return
            if not secrets.compare_digest(d["token"].encode(), token.encode()):
                await self._close_from_reader(CLOSE_AUTHENTICATION_FAILED, "Authentication failed.")
                return
            if op == OP_IDENTIFY:
                await self._identify(d, now)
            else:
                self._resume(d, now)
        elif not self._authenticated:
            await self._close_from_reader(CLOSE_NOT_AUTHENTICATED, "Not authenticated.")
        # Presence (3), voice state (4), request guild members (8) and request channel info (43) are
        # only recorded.

    async def _identify(self, d: dict[str, typing.Any], now: float) -> None:
        emulator = self._emulator
        shard = d.get("shard", [0, 1])
        if (
            not isinstance(shard, list)
            or len(shard) != 2
            or not all(type(value) is int for value in shard)
            or not 0 <= shard[0] < shard[1]
        ):
            await self._close_from_reader(CLOSE_INVALID_SHARD, "Invalid shard.")
            return
        shard_id, shard_count = shard
        if shard_count != emulator.shard_count:
            await self._close_from_reader(CLOSE_SHARDING_REQUIRED, "Sharding required.")
            return
        intents = d.get("intents")
        if type(intents) is not int or intents < 0:
            await self._close_from_reader(CLOSE_INVALID_INTENTS, "Invalid intent(s).")
            return
        if emulator.allowed_intents is not None and intents & ~emulator.allowed_intents:
            await self._close_from_reader(CLOSE_DISALLOWED_INTENTS, "Disallowed intent(s).")
            return

        if emulator._budget_left(now) <= 0:
            # Discord resets the token of a bot that starts more sessions than session_start_limit allows.
            emulator.token_resets += 1
            _LOGGER.debug("shard %s identified with no session starts left: closing with 4004", shard_id)
            await self._close_from_reader(CLOSE_AUTHENTICATION_FAILED, "Authentication failed.")
            return
        bucket = shard_id % emulator.max_concurrency
        if emulator.enforce_identify_buckets:
            last = emulator._bucket_identified.get(bucket)
            if last is not None and now - last < emulator.identify_interval:
                emulator.bucket_violations.append((now, shard_id, bucket))
                _LOGGER.debug("shard %s identified %.3fs after bucket %s did: refused", shard_id, now - last, bucket)
                self._enqueue_payload({"t": None, "s": None, "op": OP_INVALID_SESSION, "d": False}, wait=False)
                await self._close_from_reader(CLOSE_RATE_LIMITED, "You are being rate limited.")
                return

        # From here on nothing awaits: the session is complete when a waiter for op 2 wakes up.
        if self.compression is None and d.get("compress") is True:
            self.compression = "payload"
            self._payload_compress = True
        session = EmulatedSession(secrets.token_hex(16), shard_id, shard_count, intents)
        emulator.sessions[session.session_id] = session
        emulator._latest_sessions[shard_id] = session
        emulator.identify_times.append(now)
        emulator.identifies[shard_id] += 1
        emulator._bucket_identified[bucket] = now
        emulator._budget_remaining -= 1
        session._attach(self)
        self.session = session
        self.shard_id = shard_id
        self._authenticated = True
        _LOGGER.debug("shard %s/%s identified, session %s", shard_id, shard_count, session.session_id)

        guild_ids = emulator._shard_guild_ids(shard_id)
        session._dispatch_nowait(
            "READY",
            {
                "v": _GATEWAY_VERSION,
                "user_settings": {},
                "user": emulator._user_payload(own=True),
                "guilds": [{"id": str(guild_id), "unavailable": True} for guild_id in guild_ids],
                "session_id": session.session_id,
                "session_type": "normal",
                "resume_gateway_url": emulator.url,
                "shard": [shard_id, shard_count],
                "application": {"id": str(emulator.application_id), "flags": 0},
                "private_channels": [],
                "relationships": [],
                "presences": [],
                "guild_join_requests": [],
                "geo_ordered_rtc_regions": ["emulated"],
                "auth": {},
                "_trace": _TRACE,
            },
            wait=False,
        )
        if intents & _GUILDS_INTENT:
            for guild_id in guild_ids:
                session._dispatch_nowait("GUILD_CREATE", emulator._guild_payload(guild_id), wait=False)

    def _resume(self, d: dict[str, typing.Any], now: float) -> None:
        emulator = self._emulator
        session_id = d.get("session_id")
        session = emulator.sessions.get(session_id) if isinstance(session_id, str) else None
        seq = d.get("seq")
        if (
            session is None
            or not session.resumable
            or session._expired(now, emulator.session_timeout)
            or type(seq) is not int
            or not 0 <= seq <= session.seq
            or session.shard_count != emulator.shard_count
        ):
            _LOGGER.debug("refusing to resume session %r at seq %r", session_id, seq)
            if session is not None and session._expired(now, emulator.session_timeout):
                session.resumable = False  # timed out: Discord forgot it
            self._enqueue_payload({"t": None, "s": None, "op": OP_INVALID_SESSION, "d": False}, wait=False)
            return

        # Atomic (no await): attach, replay what was missed, then RESUMED; later dispatches follow it.
        previous = session.connection
        if previous is not None and previous is not self and previous.session is session:
            previous._authenticated = False
        session._attach(self)
        self.session = session
        self.shard_id = session.shard_id
        self._authenticated = True
        emulator.resumes[session.shard_id] += 1
        emulator.resume_log.append((now, session.shard_id, session.session_id, seq))
        replay = [event for event in session.events if event[0] > seq and event[1] not in _REPLAY_SKIPPED]
        _LOGGER.debug("resuming session %s from seq %s: replaying %s events", session.session_id, seq, len(replay))
        for event_seq, name, data in replay:
            self._enqueue_payload({"t": name, "s": event_seq, "op": OP_DISPATCH, "d": data}, wait=False)
        session._dispatch_nowait("RESUMED", {"_trace": _TRACE}, wait=False)


class GatewayEmulator:
    """A local Discord gateway v10 server (and ``GET /gateway/bot``) for tests.

    Use it as an async context manager, or call :meth:`start` and :meth:`close`.

    Parameters
    ----------
    token
        The bot token clients must IDENTIFY/RESUME with (else close 4004) and send to the REST API
        as ``Authorization: Bot <token>`` (else 401).  A stock ``hikari.GatewayBot`` needs a
        real-shaped token: see :func:`make_bot_token`.
    heartbeat_interval
        The heartbeat interval sent in HELLO, in seconds.
    shard_count
        The shard count clients must IDENTIFY with (else close 4011); also what
        ``GET /gateway/bot`` recommends.
    max_concurrency
        The ``max_concurrency`` reported by ``GET /gateway/bot``: shard ``s`` is in identify bucket
        ``s % max_concurrency``.  Only enforced with ``enforce_identify_buckets``.
    split_frames
        With ``zlib-stream`` compression, split every message into websocket messages of at most
        this many bytes, as Discord does with large payloads (only the last one ends with the
        ``00 00 ff ff`` flush marker).
    host
        The address to bind; keep the default ``127.0.0.1``.
    port
        The port to bind; 0 picks a free one.
    user_id
        The bot user's id in READY and ``GET /users/@me``; defaults to the id encoded in ``token`` if
        it is real-shaped, else a fixed id.
    guild_ids
        Guilds the bot is in: listed as unavailable in READY (per shard, by ``(id >> 22) % shard_count``)
        and then sent as GUILD_CREATE if the GUILDS intent was requested.
    allowed_intents
        If given, an IDENTIFY requesting any other intent is closed with 4014 (disallowed intents).
    session_timeout
        Seconds a session stays resumable after its client disconnected (dropped TCP, or a close with
        any code but 1000/1001, which end the session at once) or got a resumable INVALID_SESSION.
        Measured from that moment; a RESUME in time attaches the session again and stops the clock.
        A later RESUME gets INVALID_SESSION ``d=false``.  `None` keeps sessions resumable forever.
        Dispatches sent meanwhile are stored and replayed by a RESUME in time.
    enforce_identify_buckets
        Enforce Discord's identify rate limit: an IDENTIFY for shard ``s`` less than
        ``identify_interval`` seconds after an accepted IDENTIFY of its bucket ``s % max_concurrency``
        is refused with INVALID_SESSION ``d=false`` and the connection is closed with 4008, and the
        refusal is recorded in :attr:`bucket_violations`.  Off by default.
    identify_interval
        The minimum time between two IDENTIFYs of one bucket, in seconds (Discord: 5).
    session_start_limit
        What ``GET /gateway/bot`` reports as ``session_start_limit``: any of ``total`` (default 1000),
        ``remaining`` (default ``total``), ``reset_after`` (milliseconds, default 14,400,000) and
        ``max_concurrency`` (which, if given, replaces the ``max_concurrency`` keyword).  Each accepted
        IDENTIFY spends one of ``remaining``; with none left, every IDENTIFY is closed with 4004, as
        Discord resets the token of a bot that exceeds the limit (counted in :attr:`token_resets`).
        ``reset_after`` is counted in loop time from :meth:`start`; when it elapses ``remaining`` is
        ``total`` again and a new period of ``reset_after`` starts from that moment.

    Attributes
    ----------
    connections
        Every websocket connection ever accepted, in order.
    sessions
        Every session, by session id.
    identify_times
        ``loop.time()`` of each accepted IDENTIFY.
    identify_log
        ``(loop.time(), shard id)`` of every IDENTIFY received, accepted or not (shard id ``-1`` if the
        payload names none that can be read).
    identifies
        Accepted IDENTIFYs per shard id (a :class:`collections.Counter`).
    resumes
        Accepted RESUMEs per shard id (a :class:`collections.Counter`).
    resume_log
        ``(loop.time(), shard id, session id, seq)`` of every accepted RESUME, ``seq`` being the one the
        client resumed from.
    bucket_violations
        ``(loop.time(), shard id, bucket)`` of every IDENTIFY refused by the bucket rule (only with
        ``enforce_identify_buckets``).  A well-behaved client leaves it empty.
    token_resets
        How many IDENTIFYs were closed with 4004 because ``session_start_limit`` was spent.
    ack_heartbeats
        Whether heartbeats are acknowledged (default `True`); applies to live and new connections
        that do not override it.
    before_hello
        What the next connections get instead of HELLO, one item per connection: ``"reconnect"``
        (RECONNECT as the first opcode, as a restarting node sends) or ``"silent"`` (nothing at all).
    """

    __slots__ = (
        "_bucket_identified",
        "_budget_remaining",
        "_budget_reset_after",
        "_budget_resets_at",
        "_budget_total",
        "_latest_sessions",
        "_notifier",
        "_runner",
        "_site_port",
        "ack_heartbeats",
        "allowed_intents",
        "application_id",
        "before_hello",
        "bucket_violations",
        "connections",
        "enforce_identify_buckets",
        "guild_ids",
        "heartbeat_interval",
        "host",
        "identifies",
        "identify_interval",
        "identify_log",
        "identify_times",
        "max_concurrency",
        "port",
        "resume_log",
        "resumes",
        "session_timeout",
        "sessions",
        "shard_count",
        "split_frames",
        "token",
        "token_resets",
        "user_id",
    )

    def __init__(
        self,
        *,
        token: str = "emulator-token",  # noqa: S107 - a test token
        heartbeat_interval: float = 41.25,
        shard_count: int = 1,
        max_concurrency: int = 1,
        split_frames: int | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        user_id: int | None = None,
        guild_ids: Sequence[int] = (),
        allowed_intents: int | None = None,
        session_timeout: float | None = 120.0,
        enforce_identify_buckets: bool = False,
        identify_interval: float = 5.0,
        session_start_limit: Mapping[str, int] | None = None,
    ) -> None:
        limit = dict(session_start_limit or {})
        unknown = set(limit) - {"total", "remaining", "reset_after", "max_concurrency"}
        if unknown:
            msg = f"unknown session_start_limit keys: {sorted(unknown)}"
            raise ValueError(msg)
        max_concurrency = limit.get("max_concurrency", max_concurrency)
        total = limit.get("total", 1000)
        remaining = limit.get("remaining", total)
        reset_after = limit.get("reset_after", 14_400_000)
        if shard_count < 1 or max_concurrency < 1:
            msg = "shard_count and max_concurrency must be at least 1"
            raise ValueError(msg)
        if not 0 <= remaining <= total or reset_after < 0:
            msg = "session_start_limit needs 0 <= remaining <= total and reset_after >= 0"
            raise ValueError(msg)
        if session_timeout is not None and session_timeout < 0:
            msg = "session_timeout must be at least 0 (or None)"
            raise ValueError(msg)
        if split_frames is not None and split_frames < 1:
            msg = "split_frames must be at least 1"
            raise ValueError(msg)
        self.token = token
        self.heartbeat_interval = heartbeat_interval
        self.shard_count = shard_count
        self.max_concurrency = max_concurrency
        self.split_frames = split_frames
        self.host = host
        self.port = port
        self.user_id = user_id if user_id is not None else (user_id_from_token(token) or _DEFAULT_USER_ID)
        self.application_id = self.user_id
        self.guild_ids = tuple(guild_ids)
        self.allowed_intents = allowed_intents
        self.ack_heartbeats = True
        self.before_hello: collections.deque[typing.Literal["reconnect", "silent"]] = collections.deque()
        self.connections: list[EmulatedConnection] = []
        self.sessions: dict[str, EmulatedSession] = {}
        self.identify_times: list[float] = []
        self.identify_log: list[tuple[float, int]] = []
        self.identifies: collections.Counter[int] = collections.Counter()
        self.resumes: collections.Counter[int] = collections.Counter()
        self.resume_log: list[tuple[float, int, str, int]] = []
        self.bucket_violations: list[tuple[float, int, int]] = []
        self.token_resets = 0
        self.session_timeout = session_timeout
        self.enforce_identify_buckets = enforce_identify_buckets
        self.identify_interval = identify_interval
        self._bucket_identified: dict[int, float] = {}
        self._budget_total = total
        self._budget_remaining = remaining
        self._budget_reset_after = reset_after
        self._budget_resets_at: float | None = None
        self._latest_sessions: dict[int, EmulatedSession] = {}
        self._notifier = _Notifier()
        self._runner: web.AppRunner | None = None
        self._site_port: int | None = None

    def __repr__(self) -> str:
        return f"GatewayEmulator(url={self.url!r}, connections={len(self.connections)})"

    @property
    def url(self) -> str:
        """The gateway URL, ``ws://127.0.0.1:PORT`` (also what ``GET /gateway/bot`` returns)."""
        return f"ws://{self.host}:{self._bound_port()}"

    @property
    def rest_url(self) -> str:
        """The REST base URL, ``http://127.0.0.1:PORT/api/v10``, for ``hikari.GatewayBot(rest_url=...)``."""
        return f"http://{self.host}:{self._bound_port()}/api/v{_GATEWAY_VERSION}"

    def _bound_port(self) -> int:
        if self._site_port is None:
            msg = "the emulator is not started"
            raise RuntimeError(msg)
        return self._site_port

    async def __aenter__(self) -> GatewayEmulator:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def start(self) -> None:
        """Start listening."""
        if self._runner is not None:
            msg = "the emulator is already started"
            raise RuntimeError(msg)
        app = web.Application()
        api = f"/api/v{_GATEWAY_VERSION}"
        app.router.add_get("/", self._handle_gateway)
        app.router.add_get(f"{api}/gateway", self._handle_gateway_url)
        app.router.add_get(f"{api}/gateway/bot", self._handle_gateway_bot)
        app.router.add_get(f"{api}/users/@me", self._handle_my_user)
        app.router.add_route("*", api + "/{tail:.*}", self._handle_not_found)
        app.router.add_post("/_emulator/dispatch", self._handle_control_dispatch)
        app.router.add_get("/_emulator/state", self._handle_control_state)
        app.router.add_post("/_emulator/connections/{index}/{action}", self._handle_control_connection)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self._site_port = int(runner.addresses[0][1])
        self._budget_resets_at = asyncio.get_running_loop().time() + self._budget_reset_after / 1000
        _LOGGER.debug("gateway emulator listening on %s", self.url)

    async def close(self) -> None:
        """Close every live connection (code 1001) and stop listening."""
        runner, self._runner = self._runner, None
        if runner is None:
            return
        live = [connection for connection in self.connections if not connection.closed]
        for connection in live:
            connection._close_nowait(1001, "emulator shutting down")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(
                asyncio.gather(*(connection._closed_event.wait() for connection in live)), _CLOSE_TIMEOUT + 1
            )
        for connection in live:
            if not connection.closed and connection._transport is not None:
                connection._transport.abort()  # type: ignore[attr-defined]
        await runner.cleanup()
        for session in self.sessions.values():
            if session._expiry is not None:
                session._expiry.cancel()
                session._expiry = None

    @property
    def session_start_limit(self) -> dict[str, int]:
        """The ``session_start_limit`` that ``GET /gateway/bot`` reports now.

        ``total``, ``remaining`` (after the IDENTIFYs accepted in this period), ``reset_after`` (in
        milliseconds from now) and ``max_concurrency``.
        """
        now = asyncio.get_running_loop().time()
        remaining = self._budget_left(now)
        resets_at = self._budget_resets_at
        return {
            "total": self._budget_total,
            "remaining": remaining,
            "reset_after": self._budget_reset_after if resets_at is None else max(0, round((resets_at - now) * 1000)),
            "max_concurrency": self.max_concurrency,
        }

    def _budget_left(self, now: float) -> int:
        resets_at = self._budget_resets_at
        if resets_at is not None and now >= resets_at:
            self._budget_remaining = self._budget_total
            self._budget_resets_at = now + self._budget_reset_after / 1000
        return self._budget_remaining

    def latest_session(self, shard_id: int) -> EmulatedSession | None:
        """The session of the last accepted IDENTIFY of ``shard_id`` (the one :meth:`dispatch` targets).

        Returns
        -------
        EmulatedSession | None
            The session, or `None` if the shard never identified.
        """
        return self._latest_sessions.get(shard_id)

    def sessions_for(self, shard_id: int) -> list[EmulatedSession]:
        """Every session of ``shard_id``, oldest first (one per accepted IDENTIFY).

        Returns
        -------
        list[EmulatedSession]
            The sessions, resumable or not.
        """
        return [session for session in self.sessions.values() if session.shard_id == shard_id]

    async def wait_for_connection(
        self,
        index: int = -1,
        *,
        timeout: float = 5.0,  # noqa: ASYNC109 - a documented timeout, like asyncio.wait_for's
    ) -> EmulatedConnection:
        """Wait until ``connections[index]`` exists and return it.

        Parameters
        ----------
        index
            ``-1`` (default): the latest connection, once there is one.  ``len(emulator.connections)``
            (taken before provoking it): the next new connection.
        timeout
            How long to wait, in seconds.

        Raises
        ------
        TimeoutError
            If there is no such connection in time.
        """
        needed = index + 1 if index >= 0 else -index

        def ready() -> EmulatedConnection | None:
            return self.connections[index] if len(self.connections) >= needed else None

        return typing.cast(
            "EmulatedConnection",
            await self._notifier.wait_until(
                ready,
                timeout=timeout,
                describe=lambda: (
                    f"connection {index} not accepted within {timeout}s ({len(self.connections)} connections so far)"
                ),
            ),
        )

    def _target_sessions(self, shard_id: int | None) -> list[EmulatedSession]:
        if shard_id is not None:
            if shard_id not in self._latest_sessions:
                msg = f"shard {shard_id} has not identified yet"
                raise LookupError(msg)
            return [self._latest_sessions[shard_id]]
        if not self._latest_sessions:
            msg = "no shard has identified yet"
            raise LookupError(msg)
        return [self._latest_sessions[key] for key in sorted(self._latest_sessions)]

    async def dispatch(self, name: str, data: typing.Any, *, shard_id: int | None = None) -> list[int]:
        """Dispatch an event to the latest session of every shard (or of ``shard_id``).

        The event is stored in each session so a RESUME replays it if the client missed it; this
        returns once it was written to every live connection.

        Parameters
        ----------
        name
            The event name (``t``), e.g. ``"MESSAGE_CREATE"``.
        data
            The event data (``d``), any JSON-serialisable value.
        shard_id
            Only dispatch to this shard.

        Returns
        -------
        list[int]
            The sequence number of the event in each session, in shard order.

        Raises
        ------
        LookupError
            If no (such) shard has identified yet.
        """
        results = [session._dispatch_nowait(name, data, wait=True) for session in self._target_sessions(shard_id)]
        for _, future in results:
            if future is not None:
                with contextlib.suppress(ConnectionError):
                    await future
        return [seq for seq, _ in results]

    async def dispatch_many(
        self, events: Iterable[tuple[str, typing.Any]], *, shard_id: int | None = None
    ) -> dict[int, int]:
        """Dispatch many events quickly (for benchmarks): like :meth:`dispatch` for each, in order.

        Parameters
        ----------
        events
            ``(name, data)`` pairs.
        shard_id
            Only dispatch to this shard.

        Returns
        -------
        dict[int, int]
            The last sequence number sent in each shard's session, by shard id.
        """
        sessions = self._target_sessions(shard_id)
        for count, (name, data) in enumerate(events, 1):
            for session in sessions:
                session._dispatch_nowait(name, data, wait=False)
            if count % _DISPATCH_MANY_CHUNK == 0:
                await asyncio.sleep(0)  # let the writers stream what is queued so far
        for session in sessions:
            connection = session.connection
            if connection is not None and connection._alive:
                with contextlib.suppress(ConnectionError):
                    barrier = connection._enqueue(_BARRIER, None, wait=True)
                    if barrier is not None:
                        await barrier
        return {session.shard_id: session.seq for session in sessions}

    # Payloads

    def _shard_guild_ids(self, shard_id: int) -> list[int]:
        return [guild_id for guild_id in self.guild_ids if (guild_id >> 22) % self.shard_count == shard_id]

    def _user_payload(self, *, own: bool = False) -> dict[str, typing.Any]:
        user: dict[str, typing.Any] = {
            "id": str(self.user_id),
            "username": _USERNAME,
            "discriminator": "0",
            "global_name": None,
            "avatar": None,
            "bot": True,
        }
        if own:
            user.update({"mfa_enabled": False, "verified": True, "email": None, "flags": 0})
        else:
            user["public_flags"] = 0
        return user

    def _guild_payload(self, guild_id: int) -> dict[str, typing.Any]:
        joined_at = _iso_now()
        return {
            "id": str(guild_id),
            "name": f"Emulated guild {guild_id}",
            "icon": None,
            "splash": None,
            "discovery_splash": None,
            "banner": None,
            "description": None,
            "owner_id": str(guild_id >> 1 or 1),
            "afk_channel_id": None,
            "afk_timeout": 300,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "mfa_level": 0,
            "nsfw_level": 0,
            "nsfw": False,
            "application_id": None,
            "widget_enabled": False,
            "widget_channel_id": None,
            "system_channel_id": str(guild_id + 1),
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "public_updates_channel_id": None,
            "safety_alerts_channel_id": None,
            "max_video_channel_users": 25,
            "max_members": 500_000,
            "vanity_url_code": None,
            "premium_tier": 0,
            "premium_subscription_count": 0,
            "premium_progress_bar_enabled": False,
            "preferred_locale": "en-US",
            "features": [],
            "incidents_data": None,
            "large": False,
            "lazy": True,
            "unavailable": False,
            "joined_at": joined_at,
            "member_count": 1,
            "roles": [
                {
                    "id": str(guild_id),
                    "name": "@everyone",
                    "color": 0,
                    "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
                    "hoist": False,
                    "icon": None,
                    "unicode_emoji": None,
                    "position": 0,
                    "permissions": "2248473465835073",
                    "managed": False,
                    "mentionable": False,
                    "flags": 0,
                }
            ],
            "emojis": [],
            "stickers": [],
            "channels": [
                {
                    "id": str(guild_id + 1),
                    "type": 0,
                    "name": "general",
                    "position": 0,
                    "parent_id": None,
                    "topic": None,
                    "nsfw": False,
                    "last_message_id": None,
                    "rate_limit_per_user": 0,
                    "permission_overwrites": [],
                    "flags": 0,
                }
            ],
            "threads": [],
            "members": [
                {
                    "user": self._user_payload(),
                    "roles": [],
                    "nick": None,
                    "avatar": None,
                    "joined_at": joined_at,
                    "premium_since": None,
                    "deaf": False,
                    "mute": False,
                    "pending": False,
                    "flags": 0,
                    "communication_disabled_until": None,
                }
            ],
            "presences": [],
            "voice_states": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
        }

    # HTTP handlers

    async def _handle_gateway(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(
            timeout=_CLOSE_TIMEOUT, max_msg_size=1 << 20, compress=False, autoping=True, autoclose=False
        )
        await ws.prepare(request)
        connection = EmulatedConnection(self, ws, request.transport, dict(request.query))
        self.connections.append(connection)
        _LOGGER.debug("accepted connection %s (%s)", len(self.connections) - 1, request.query_string)
        self._notifier.notify()
        await connection._run()
        return ws

    def _authorized(self, request: web.Request) -> bool:
        header = request.headers.get("Authorization", "")
        return secrets.compare_digest(header.encode(), f"Bot {self.token}".encode())

    @staticmethod
    def _error(status: int, message: str) -> web.Response:
        return web.json_response({"message": f"{status}: {message}", "code": 0}, status=status)

    async def _handle_gateway_url(self, _: web.Request) -> web.Response:
        return web.json_response({"url": self.url})

    async def _handle_gateway_bot(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return self._error(401, "Unauthorized")
        return web.json_response(
            {
                "url": self.url,
                "shards": self.shard_count,
                "session_start_limit": self.session_start_limit,
            }
        )

    async def _handle_my_user(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return self._error(401, "Unauthorized")
        return web.json_response(self._user_payload(own=True))

    async def _handle_not_found(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return self._error(401, "Unauthorized")
        return self._error(404, "Not Found")

    # Control API (for driving an emulator that runs in another process)

    async def _handle_control_dispatch(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return self._error(401, "Unauthorized")
        body = await request.json(loads=orjson.loads)
        repeat = int(body.get("repeat", 1))
        try:
            last = await self.dispatch_many(
                ((body["name"], body["data"]) for _ in range(repeat)), shard_id=body.get("shard_id")
            )
        except LookupError as ex:
            return self._error(409, str(ex))
        return web.json_response({"dispatched": repeat, "seq": {str(k): v for k, v in last.items()}})

    async def _handle_control_state(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return self._error(401, "Unauthorized")
        return web.json_response(
            {
                "connections": [
                    {
                        "query": connection.query,
                        "compression": connection.compression,
                        "shard_id": connection.shard_id,
                        "session_id": connection.session.session_id if connection.session else None,
                        "received_ops": [payload.get("op") for payload in connection.received],
                        "closed": connection.closed,
                        "close_code": connection.close_code,
                        "server_close_code": connection.server_close_code,
                    }
                    for connection in self.connections
                ],
                "sessions": {
                    session_id: {"shard_id": session.shard_id, "seq": session.seq, "resumable": session.resumable}
                    for session_id, session in self.sessions.items()
                },
                "identify_times": self.identify_times,
                "identify_log": self.identify_log,
                "identifies": {str(shard): count for shard, count in self.identifies.items()},
                "resumes": {str(shard): count for shard, count in self.resumes.items()},
                "resume_log": self.resume_log,
                "bucket_violations": self.bucket_violations,
                "token_resets": self.token_resets,
                "session_start_limit": self.session_start_limit,
            },
            dumps=lambda value: orjson.dumps(value).decode(),
        )

    async def _handle_control_connection(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return self._error(401, "Unauthorized")
        try:
            connection = self.connections[int(request.match_info["index"])]
        except (ValueError, IndexError):
            return self._error(404, "Unknown connection")
        body = await request.json(loads=orjson.loads) if request.can_read_body else {}
        action = request.match_info["action"]
        try:
            if action == "drop":
                await connection.drop()
            elif action == "close":
                # Returns once the close frame is sent: the client may not be reading yet.
                future = connection._close_nowait(int(body.get("code", 1000)), str(body.get("reason", "")))
                if future is not None:
                    await future
            elif action == "reconnect":
                await connection.send_reconnect()
            elif action == "invalid_session":
                await connection.send_invalid_session(bool(body.get("resumable", False)))
            elif action == "request_heartbeat":
                await connection.request_heartbeat()
            elif action == "ack_heartbeats":
                connection.ack_heartbeats = bool(body.get("enabled", True))
            else:
                return self._error(404, f"Unknown action {action!r}")
        except ConnectionError as ex:
            return self._error(409, str(ex))
        return web.json_response({"ok": True})


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m hikari_shard.testing.emulator",
        description=(
            "Serve a Discord gateway v10 emulator until killed. Prints the gateway URL on the first line of "
            "stdout and the REST URL on the second. Control API (Authorization: Bot <token>): POST "
            "/_emulator/dispatch {name, data, shard_id?, repeat?}; GET /_emulator/state; POST "
            "/_emulator/connections/<index>/<drop|close|reconnect|invalid_session|request_heartbeat|"
            "ack_heartbeats> {code?, reason?, resumable?, enabled?}."
        ),
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--token", default="emulator-token")
    parser.add_argument("--heartbeat-interval", type=float, default=41.25, help="seconds")
    parser.add_argument("--shard-count", type=int, default=1)
    parser.add_argument("--max-concurrency", type=int, default=1)
    parser.add_argument("--split-frames", type=int, default=None)
    parser.add_argument("--user-id", type=int, default=None)
    parser.add_argument("--guild-id", type=int, action="append", default=[], dest="guild_ids")
    parser.add_argument("--no-ack-heartbeats", action="store_true")
    parser.add_argument(
        "--session-timeout", type=float, default=120.0, help="seconds; a negative value keeps sessions forever"
    )
    parser.add_argument("--enforce-identify-buckets", action="store_true")
    parser.add_argument("--identify-interval", type=float, default=5.0, help="seconds")
    parser.add_argument("--session-start-total", type=int, default=1000)
    parser.add_argument("--session-start-remaining", type=int, default=None)
    parser.add_argument("--session-start-reset-after", type=int, default=14_400_000, help="milliseconds")
    parser.add_argument("--log-level", default="WARNING")
    return parser.parse_args(argv)


async def _serve(args: argparse.Namespace) -> None:
    emulator = GatewayEmulator(
        token=args.token,
        heartbeat_interval=args.heartbeat_interval,
        shard_count=args.shard_count,
        max_concurrency=args.max_concurrency,
        split_frames=args.split_frames,
        host=args.host,
        port=args.port,
        user_id=args.user_id,
        guild_ids=args.guild_ids,
        session_timeout=None if args.session_timeout < 0 else args.session_timeout,
        enforce_identify_buckets=args.enforce_identify_buckets,
        identify_interval=args.identify_interval,
        session_start_limit={
            "total": args.session_start_total,
            "remaining": (
                args.session_start_total if args.session_start_remaining is None else args.session_start_remaining
            ),
            "reset_after": args.session_start_reset_after,
        },
    )
    emulator.ack_heartbeats = not args.no_ack_heartbeats
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # Windows
            loop.add_signal_handler(sig, stop.set)
    async with emulator:
        sys.stdout.write(f"{emulator.url}\n{emulator.rest_url}\n")
        sys.stdout.flush()
        await stop.wait()


def main(argv: Sequence[str] | None = None) -> None:
    """Run the emulator from the command line until SIGINT/SIGTERM.

    Parameters
    ----------
    argv
        Command-line arguments (default: ``sys.argv[1:]``); ``--help`` lists them.
    """
    args = _parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args))


if __name__ == "__main__":
    main()
