"""The drop-in shard: :class:`GatewayShardImpl`, hikari 2.7's contract on Discord's protocol.

This module keeps the state machine (connect, HELLO, IDENTIFY/RESUME, heartbeat, reconnect with
backoff); the per-payload work runs through the hot paths of :mod:`hikari_shard._fast`.  Where
hikari 2.7 deviates from Discord's documented gateway protocol, this shard follows Discord; the
README lists each difference.
"""

from __future__ import annotations

__all__ = ("GatewayShardImpl",)

import asyncio
import logging
import platform
import random
import sys
import time
import typing
import urllib.parse

import aiohttp
from hikari import _about as hikari_about
from hikari import capabilities as capabilities_
from hikari import errors, presences, snowflakes, urls
from hikari import intents as intents_
from hikari.api import shard as shard_api
from hikari.internal import data_binding, ux

from hikari_shard import _commands, _consumers, _context, _fast, _transport, recorder, sessions, statistics

if typing.TYPE_CHECKING:
    import datetime

    from hikari.api import event_factory as event_factory_
    from hikari.api import event_manager as event_manager_
    from hikari.impl import config

_LOGGER_NAME: typing.Final = "hikari.gateway"
TRACE: typing.Final[int] = ux.TRACE

# Opcodes (gateway v10)
_HEARTBEAT: typing.Final = 1
_IDENTIFY: typing.Final = 2
_RESUME: typing.Final = 6
_RECONNECT: typing.Final = 7
_INVALID_SESSION: typing.Final = 9
_HELLO: typing.Final = 10
_HEARTBEAT_ACK: typing.Final = 11

_READY: typing.Final = sys.intern("READY")
_RESUMED: typing.Final = sys.intern("RESUMED")

# hikari's default: zstd-stream when a zstd module is importable, else zlib-stream.
_DEFAULT_COMPRESSION: typing.Final = (
    shard_api.GatewayCompression.TRANSPORT_ZSTD_STREAM
    if _fast.inflate.zstd_available()
    else shard_api.GatewayCompression.TRANSPORT_ZLIB_STREAM
)

# Our own temporary close: any code but 1000/1001 keeps the session resumable on Discord's side.
_RESUME_CLOSE_CODE: typing.Final = 3_000
_CLOSE_CODE_PERMANENT: typing.Final = errors.ShardCloseCode.GOING_AWAY

# Reconnect backoff: exponential with full jitter, capped, reset after a healthy connection.
_BACKOFF_BASE: typing.Final = 1.0
_BACKOFF_CAP: typing.Final = 60.0
_HEALTHY_AFTER: typing.Final = 30.0
"""A connection that lived this long (seconds) after its handshake resets the backoff."""

# Discord: after INVALID_SESSION d=false, wait a random 1-5 s before identifying again.
_INVALID_SESSION_WAIT: typing.Final = (1.0, 5.0)
_HANDSHAKE_TIMEOUT: typing.Final = 60.0
_HELLO_TIMEOUT: typing.Final = 30.0
"""Seconds to wait for HELLO after the websocket upgrade (Discord sends it at once) before reconnecting."""

# Outgoing commands per connection: 120 per 60 s, 3 of them kept for heartbeats.
_COMMAND_LIMIT: typing.Final = 120
_COMMAND_PERIOD: typing.Final = 60.0
_HEARTBEAT_RESERVE: typing.Final = 3


class _SessionEnded(Exception):
    """Internal: the connection a command waited for a slot on ended; it waits for the next session."""

    __slots__ = ()


class _Reconnect(Exception):
    """The server asked us (RECONNECT / INVALID_SESSION) or we decided to reconnect."""

    __slots__ = ("delay", "reason")

    def __init__(self, reason: str, *, delay: float = 0.0) -> None:
        super().__init__(reason)
        self.reason = reason
        self.delay = delay


def _backoff_delay(attempt: int) -> float:
    """How long to wait before reconnect number ``attempt`` since the last healthy connection.

    The first reconnect (``attempt`` 0 or 1) is immediate; then full jitter: a random time up to
    ``_BACKOFF_BASE * 2 ** (attempt - 2)`` seconds, capped at ``_BACKOFF_CAP``.
    """
    if attempt <= 1:
        return 0.0
    return random.uniform(0, min(_BACKOFF_CAP, _BACKOFF_BASE * 2 ** min(attempt - 2, 32)))


def _being_cancelled() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


async def _cancel_and_wait(task: asyncio.Future[typing.Any]) -> None:
    """Cancel a helper task and wait until it is gone, without swallowing our own cancellation."""
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        if _being_cancelled():
            raise


def _new_command_limiter() -> typing.Any:
    """A fresh outgoing command limiter: one per started shard, closed by ``close()``."""
    return _fast.ratelimit.CommandRateLimiter(_COMMAND_LIMIT, _COMMAND_PERIOD, _HEARTBEAT_RESERVE)


def _bad_payload(what: str) -> errors.GatewayTransportError:
    return errors.GatewayTransportError(f"received an invalid gateway payload: {what}")


class GatewayShardImpl(_commands.GatewayCommands, shard_api.GatewayShard):
    """A Discord gateway v10 shard, a drop-in for :class:`hikari.impl.shard.GatewayShardImpl`.

    Takes exactly hikari 2.7's keywords with the same defaults; see hikari's documentation of
    ``GatewayShardImpl`` for each parameter.  Differences in behaviour follow Discord's documented
    protocol and are listed in the README.

    Parameters
    ----------
    token
        The bot token to use.
    url
        The gateway URL to use (no query string or fragment needed).
    event_manager
        The event manager this shard should make calls to.
    event_factory
        The event factory this shard should use.
    compression
        ``"transport_zstd_stream"``, ``"transport_zlib_stream"``, ``"payload_zlib_stream"`` or
        ``None``.  The default is zstd-stream when a zstd module is importable, else zlib-stream.
    dumps, loads
        The JSON encoder and decoder to use.
    initial_activity, initial_idle_since, initial_is_afk, initial_status
        The presence to identify with.
    intents
        Collection of intents to use.
    capabilities
        Collection of gateway capabilities to declare.
    large_threshold
        The number of members to have in a guild for it to be considered large.
    shard_id, shard_count
        The shard ID and count.
    http_settings, proxy_settings
        The HTTP and proxy settings to use while negotiating a websocket.
    data_format
        Only ``"json"`` is supported (like hikari).
    """

    __slots__: typing.Sequence[str] = (
        "_background",
        "_capabilities",
        "_close_preference",
        "_closing_resumable",
        "_compression",
        "_conn",
        "_consumers",
        "_context",
        "_dumps",
        "_event_factory",
        "_event_manager",
        "_gateway_url",
        "_handshake_event",
        "_healthy",
        "_heartbeat_latency",
        "_http_settings",
        "_intents",
        "_is_closing",
        "_keep_alive_task",
        "_kept_session",
        "_key",
        "_large_threshold",
        "_last_heartbeat_ack_received",
        "_last_heartbeat_sent",
        "_limiter",
        "_loads",
        "_logger",
        "_proxy_settings",
        "_resume_gateway_url",
        "_router",
        "_scan",
        "_seq_value",
        "_session_id_value",
        "_shard_count",
        "_shard_id",
        "_stats",
        "_stored",
        "_token",
        "_user_id",
    )

    max_message_size: typing.ClassVar[int] = _fast.inflate.DEFAULT_MAX_MESSAGE_SIZE
    """The largest message accepted, in bytes, decompressed (64 MiB by default).

    A bigger one (a decompression bomb, a runaway frame) is a ``GatewayTransportError`` and the
    shard resumes.  Not a constructor keyword, so the constructor stays exactly hikari's: set it on
    the class (``hikari_shard.GatewayShardImpl.max_message_size = ...``) or on a subclass.
    """

    def __init__(
        self,
        *,
        compression: shard_api.GatewayCompression | None = _DEFAULT_COMPRESSION,
        dumps: data_binding.JSONEncoder = data_binding.default_json_dumps,
        loads: data_binding.JSONDecoder = data_binding.default_json_loads,
        initial_activity: presences.Activity | None = None,
        initial_idle_since: datetime.datetime | None = None,
        initial_is_afk: bool = False,
        initial_status: presences.Status = presences.Status.ONLINE,
        intents: intents_.Intents,
        capabilities: capabilities_.GatewayCapabilities = capabilities_.GatewayCapabilities.NONE,
        large_threshold: int = 250,
        shard_id: int = 0,
        shard_count: int = 1,
        http_settings: config.HTTPSettings,
        proxy_settings: config.ProxySettings,
        data_format: str = shard_api.GatewayDataFormat.JSON,
        event_manager: event_manager_.EventManager,
        event_factory: event_factory_.EventFactory,
        token: str,
        url: str,
    ) -> None:
        if data_format != shard_api.GatewayDataFormat.JSON:
            msg = f"Unsupported gateway data format: {data_format}"
            raise NotImplementedError(msg)

        self._activity = initial_activity
        self._background: set[asyncio.Task[None]] = set()
        self._capabilities = capabilities
        self._close_preference: bool | None = None  # what the bot's close(resumable=...) asked for
        self._closing_resumable = False
        self._compression = compression
        self._consumers = _consumers.ConsumerIndex(event_manager)
        # The bot's session store and identify queue (or the process-wide ones): see hikari_shard._context.
        self._context = _context.current()
        self._conn: _transport.GatewayConnection | None = None
        self._dumps = dumps
        self._event_factory = event_factory
        self._event_manager = event_manager
        self._gateway_url = url
        self._handshake_event: asyncio.Event | None = None
        self._healthy = False
        self._heartbeat_latency = float("nan")
        self._http_settings = http_settings
        self._idle_since = initial_idle_since
        self._intents = intents
        self._is_afk = initial_is_afk
        self._is_closing = False
        self._keep_alive_task: asyncio.Task[None] | None = None
        self._kept_session: sessions.SessionRecord | None = None
        # The bot's id (read from the token, never the token itself) keys its saved sessions and queue slots.
        self._key = sessions.bot_key(token)
        self._large_threshold = large_threshold
        self._last_heartbeat_ack_received = float("nan")
        self._last_heartbeat_sent = float("nan")
        self._limiter = _new_command_limiter()
        self._loads = loads
        self._logger = logging.getLogger(f"{_LOGGER_NAME}.{shard_id}")
        self._proxy_settings = proxy_settings
        self._resume_gateway_url: str | None = None
        self._router: typing.Any = None
        # Scanning op/s/t is cheaper than decoding only in compiled code; the pure twin decodes.
        self._scan = _fast.scan.scan if _fast.IMPLEMENTATION == "compiled" and self._consumers.supported else None
        self._seq_value: int | None = None
        self._session_id_value: str | None = None
        self._shard_count = shard_count
        self._shard_id = shard_id
        self._stats = statistics.ShardCounters()
        self._status = initial_status
        self._stored = False
        self._token = token
        self._user_id: snowflakes.Snowflake | None = None

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(id={self._shard_id}, shard_count={self._shard_count}, "
            f"is_alive={self.is_alive}, is_connected={self.is_connected}, session_id={self._session_id_value!r}, "
            f"seq={self._current_seq()})"
        )

    # -- hikari-orchestrator reads these two ---------------------------------------------------
    # Its worker reports them to its manager, also just after close(): a session that a resumable close
    # kept is still this shard's session (the manager hands it to the shard's next worker).
    @property
    def _seq(self) -> int | None:
        """The last sequence number received, or the kept session's (read-only)."""
        kept = self._kept_session
        if kept is not None and self._session_id_value is None:
            return kept.seq
        return self._current_seq()

    def _current_seq(self) -> int | None:
        router = self._router
        return router.seq if router is not None else self._seq_value  # type: ignore[no-any-return]

    @property
    def _session_id(self) -> str | None:
        """The current session id, or the kept session's (read-only)."""
        kept = self._kept_session
        if kept is not None and self._session_id_value is None:
            return kept.session_id
        return self._session_id_value

    # -- public properties ---------------------------------------------------------------------
    @property
    def capabilities(self) -> capabilities_.GatewayCapabilities:
        return self._capabilities

    @property
    def heartbeat_latency(self) -> float:
        return self._heartbeat_latency

    @property
    def stats(self) -> statistics.ShardStats:
        """A snapshot of this shard's receive-path statistics (see :func:`hikari_shard.stats`)."""
        return self._stats.snapshot(self._router)

    @property
    def id(self) -> int:
        return self._shard_id

    @property
    def intents(self) -> intents_.Intents:
        return self._intents

    @property
    def is_alive(self) -> bool:
        return self._keep_alive_task is not None

    @property
    def is_connected(self) -> bool:
        return self._conn is not None and self._handshake_event is not None and self._handshake_event.is_set()

    @property
    def shard_count(self) -> int:
        return self._shard_count

    @property
    def resume_gateway_url(self) -> str | None:
        """The URL Discord asked this session to resume at, or ``None`` without a resumable session."""
        return self._resume_gateway_url

    # -- lifecycle -----------------------------------------------------------------------------
    async def start(self) -> None:
        if self._keep_alive_task or self._handshake_event:
            msg = "Cannot run more than one instance of one shard concurrently"
            raise errors.ComponentStateConflictError(msg)

        # Every start() begins from nothing but a session that close(resumable=True) kept, or one saved in
        # the bot's session store (the keep-alive task looks it up before it connects); any other session
        # is gone (close() ended it with 1001, a fatal close code ended it, or its event loop is gone).
        self._begin_new_session()
        self._handshake_event = handshake_event = asyncio.Event()
        self._is_closing = False
        keep_alive = asyncio.create_task(self._keep_alive(), name=f"keep alive (shard {self._shard_id})")
        handshake = asyncio.ensure_future(handshake_event.wait())
        try:
            await asyncio.wait((handshake, keep_alive), return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            keep_alive.cancel()
            try:
                await asyncio.wait((keep_alive,))  # let the shard stop; our own cancellation follows
            finally:
                self._handshake_event = None
                self._retrieve(keep_alive)
            raise
        finally:
            await _cancel_and_wait(handshake)

        if not handshake_event.is_set():
            self._handshake_event = None
            # The shard died before it became ready: raise why (a fatal close, an unexpected error).
            keep_alive.result()
            msg = f"shard {self._shard_id} was closed before it could start successfully"
            raise RuntimeError(msg)

        self._keep_alive_task = keep_alive

    def adopt_session(self, session_id: str, seq: int, *, resume_url: str | None = None) -> None:
        """Make the next :meth:`start` RESUME a session this shard did not open itself.

        A hand-off between processes: the shard's last process died (or closed resumably) and its
        session id and seq were recorded elsewhere, e.g. by a shard manager.  Discord then replays every
        dispatch after ``seq``.  If it refuses the session (INVALID_SESSION, close code 4009), the shard
        identifies as usual.

        Parameters
        ----------
        session_id
            The session's id, from its READY.
        seq
            The sequence number of the last dispatch the old process handled.
        resume_url
            The session's ``resume_gateway_url``; the default is the gateway URL this shard was built with.

        Raises
        ------
        hikari.errors.ComponentStateConflictError
            If the shard is running.
        """
        if self._keep_alive_task is not None or self._handshake_event is not None:
            msg = "Cannot adopt a session while the shard is running"
            raise errors.ComponentStateConflictError(msg)
        if not session_id or isinstance(seq, bool) or not isinstance(seq, int) or seq < 0:
            msg = f"a session id and a non-negative seq are required, not {session_id!r} and {seq!r}"
            raise ValueError(msg)
        self._kept_session = self._record(session_id, seq, resume_url or self._gateway_url)

    async def close(self, *, resumable: bool | None = None) -> None:
        """Close the shard.

        Parameters
        ----------
        resumable
            `True` closes with a code that keeps the session on Discord's side (never 1000/1001) and
            keeps it for the next :meth:`start`, and saves it in the bot's session store if it has one
            (a warm restart: the next process RESUMEs instead of identifying).  `False` ends the session
            (1001) and deletes a saved one.  The default is `True` when a session store is configured
            (``hikari_shard.install(sessions=...)``), else `False` (hikari's behaviour).
        """
        task = self._keep_alive_task
        if task is None:
            msg = "Cannot close an inactive shard"
            raise errors.ComponentStateConflictError(msg)

        # A task of an event loop that is gone can neither be cancelled nor awaited here: nothing of it runs.
        same_loop = task.get_loop() is asyncio.get_running_loop()
        if not self._is_closing:
            if resumable is None:
                resumable = self._close_preference
            if resumable is None:
                resumable = self._context.store is not None
            # A shard that already died (a fatal close code) has no session left to keep.
            self._closing_resumable = resumable and not task.done()
            self._logger.info(
                "shard has been requested to shutdown%s", " (resumable)" if self._closing_resumable else ""
            )
            self._is_closing = True
            if same_loop:
                task.cancel()
        if same_loop and not task.done():
            # Without swallowing a cancellation of close() itself: the shard stays closing, the next
            # close() (or a concurrent one) finishes the job.
            await asyncio.wait((task,))
        if self._keep_alive_task is not task:
            return  # a concurrent close() finished it

        self._keep_alive_task = None
        self._handshake_event = None
        self._limiter.close()  # releases commands waiting on it; start() builds a fresh one
        record = self._resumable_record() if self._closing_resumable else None
        if record is not None:
            # Closed with a temporary code: Discord keeps the session; the next start() resumes it.
            self._kept_session = record
            if await self._context.save(record, self._logger):
                self._stored = True
        else:
            # Closing with 1001 ended the session on Discord's side: nothing of it may be resumed.
            self._session_invalidated()
        self._forget_session()
        self._user_id = None
        self._is_closing = False
        self._closing_resumable = False
        self._close_preference = None
        self._logger.info("shard shutdown successfully")
        error = self._retrieve(task)
        if error is not None and not isinstance(error, errors.GatewayError):
            raise error  # a bug, not the gateway: join() raised it too

    @staticmethod
    def _retrieve(task: asyncio.Task[None]) -> BaseException | None:
        """The exception a finished keep-alive task ended with (marked retrieved), or ``None``."""
        if not task.done() or task.cancelled():
            return None
        return task.exception()

    def _resumable_record(self) -> sessions.SessionRecord | None:
        """The session as a warm restart resumes it: at the seq of the last dispatch handed to the event manager."""
        seq = self._current_seq()
        if self._session_id_value is None or seq is None or self._user_id is None:
            return None
        return self._record(self._session_id_value, seq, self._resume_gateway_url or self._gateway_url)

    def _record(self, session_id: str, seq: int, resume_url: str) -> sessions.SessionRecord:
        """A record of session ``session_id`` of this shard, at ``seq``, as of now."""
        return sessions.SessionRecord(
            user_id=self._key,
            shard_id=self._shard_id,
            shard_count=self._shard_count,
            session_id=session_id,
            seq=seq,
            resume_url=resume_url,
            intents=int(self._intents),
            saved_at=time.time(),
        )

    async def _restore_session(self) -> None:
        """Take up the session close(resumable=True) kept, or the one saved in the store, if it still fits."""
        record, self._kept_session = self._kept_session, None
        if record is None:
            record = await self._context.load(self._key, self._shard_id, self._shard_count, self._logger)
            if record is None:
                return
            self._stored = True
        why = self._context.usable(record, self._shard_id, self._shard_count, int(self._intents))
        if why is not None:
            self._logger.info("not resuming saved session %s: %s; will identify", record.session_id, why)
            self._session_invalidated()
            return
        self._logger.info("will resume saved session %s at seq %s", record.session_id, record.seq)
        self._session_id_value = record.session_id
        self._seq_value = record.seq
        self._resume_gateway_url = record.resume_url
        self._user_id = snowflakes.Snowflake(record.user_id)

    def _session_invalidated(self) -> None:
        """The session is gone for good: forget it, and delete it from the store (in the background)."""
        self._forget_session()
        self._drop_stored()

    def _drop_stored(self) -> None:
        if not self._stored:
            return
        self._stored = False
        task = asyncio.ensure_future(self._context.delete(self._key, self._shard_id, self._shard_count, self._logger))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _begin_new_session(self) -> None:
        """Forget everything of the last session: the next connection identifies on the gateway URL."""
        self._forget_session()
        self._user_id = None
        self._heartbeat_latency = float("nan")
        self._last_heartbeat_ack_received = float("nan")
        self._last_heartbeat_sent = float("nan")
        self._limiter = _new_command_limiter()

    async def join(self) -> None:
        task = self._keep_alive_task
        if task is None:
            msg = "Cannot join an inactive shard"
            raise errors.ComponentStateConflictError(msg)
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            if not task.done():
                raise  # join() itself was cancelled; the shard keeps running

    def get_user_id(self) -> snowflakes.Snowflake:
        self._check_if_connected()
        assert self._user_id is not None, "user_id was not known, this is probably a bug"
        return self._user_id

    # -- commands ------------------------------------------------------------------------------
    def _not_connected(self) -> errors.ComponentStateConflictError:
        msg = f"shard {self._shard_id} is not connected so it cannot be interacted with"
        return errors.ComponentStateConflictError(msg)

    def _check_if_connected(self) -> None:
        if not self.is_connected:
            raise self._not_connected()

    async def _wait_for_session(self) -> _transport.GatewayConnection:
        """Wait until the session is READY/RESUMED; return its connection.

        Raises
        ------
        hikari.errors.ComponentStateConflictError
            If the shard stops (closed, or died) before that.
        """
        while True:
            conn = self._conn
            event = self._handshake_event
            if conn is not None and event is not None and event.is_set():
                return conn
            task = self._keep_alive_task
            if event is None or task is None or task.done() or self._is_closing:
                raise self._not_connected()
            ready = asyncio.ensure_future(event.wait())
            try:
                await asyncio.wait((ready, task), return_when=asyncio.FIRST_COMPLETED)
            finally:
                await _cancel_and_wait(ready)

    async def _send_json(self, payload: data_binding.JSONObject, *, priority: bool = False) -> None:
        """Send one payload.

        ``priority`` sends (heartbeats, IDENTIFY/RESUME) take the limiter's reserved slots and go out
        on the current connection at once.  Every other command waits until the session is
        READY/RESUMED, then for a slot; one still waiting when its connection ends waits for the next
        session (it never goes out before that session's IDENTIFY/RESUME).
        """
        limiter = self._limiter
        if priority:
            if not limiter.try_acquire(True):
                await limiter.acquire(priority=True)
            conn = self._conn
        else:
            while True:
                conn = await self._wait_for_session()
                try:
                    if not limiter.try_acquire(False):
                        await limiter.acquire(priority=False)
                except _SessionEnded:
                    continue
                if conn is self._conn and self.is_connected:
                    break
        if conn is None:
            raise self._not_connected()
        data = self._dumps(payload)
        if isinstance(data, str):
            data = data.encode()
        if self._logger.isEnabledFor(TRACE):
            self._logger.log(TRACE, "sending payload with size %s\n    %s", len(data), self._redact(data))
        try:
            await conn.send(data)
        except (aiohttp.ClientError, ConnectionError, OSError, RuntimeError) as ex:
            # The socket closed under us (aiohttp's ClientConnectionResetError): a hikari error instead.
            msg = f"shard {self._shard_id} lost its connection before the payload was sent ({type(ex).__name__})"
            if priority:
                raise errors.GatewayConnectionError(msg) from None
            raise errors.ComponentStateConflictError(msg) from None
        except errors.GatewayConnectionError as ex:
            if priority:
                raise
            msg = f"shard {self._shard_id} lost its connection before the payload was sent ({ex.reason})"
            raise errors.ComponentStateConflictError(msg) from None

    def _redact(self, data: bytes) -> bytes:
        return data.replace(self._token.encode(), b"**REDACTED TOKEN**") if self._token else data

    # -- receiving -----------------------------------------------------------------------------
    def _make_router(self, conn: _transport.GatewayConnection) -> typing.Any:
        inflator = _transport.make_inflator(self._compression, self.max_message_size)
        if self._compression == shard_api.GatewayCompression.PAYLOAD_ZLIB_STREAM:
            expect_binary = None  # payload compression: TEXT and BINARY frames both carry payloads
        else:
            expect_binary = inflator is not None
        router = _fast.router.Router(
            shard=self,
            consume=self._event_manager.consume_raw_event,
            on_special=self._handle_special_dispatch,
            loads=self._loads,
            consumers=self._consumers if self._scan is not None else None,
            scan=self._scan,
            inflator=inflator,
            expect_binary=expect_binary,
            logger=self._logger,
            redact=self._redact,
            pending=conn.pending,
        )
        router.seq = self._seq_value
        recorder.attach(self, router)  # under the recorder's lock: a recording that stops takes it back
        return router

    def _handle_special_dispatch(self, name: str, data: typing.Any) -> None:
        assert self._handshake_event is not None
        if type(data) is not dict:
            raise _bad_payload(f"{name} 'd' must be an object, got {type(data).__name__}")
        if name == _READY:
            try:
                session_id = data["session_id"]
                resume_url = data["resume_gateway_url"]
                user = data["user"]
                self._user_id = snowflakes.Snowflake(user["id"])
            except (KeyError, TypeError, ValueError) as ex:
                raise _bad_payload(f"READY is missing or has a malformed {ex}") from None
            if type(session_id) is not str or type(resume_url) is not str:
                raise _bad_payload("READY 'session_id' and 'resume_gateway_url' must be strings")
            self._session_id_value = session_id
            self._resume_gateway_url = resume_url
            self._stats.ready += 1
            discriminator = user.get("discriminator", "0")
            username = user.get("username", "?") + ("#" + discriminator if discriminator not in {"0", None} else "")
            self._logger.info(
                "shard is ready: %s guilds, %s (%s), session %r on v%s gateway",
                len(data.get("guilds", ())),
                username,
                self._user_id,
                session_id,
                data.get("v"),
            )
            self._handshake_event.set()
        elif name == _RESUMED:
            self._stats.resumed += 1
            # A saved session is used once: a crash after this must not resume from its older seq.
            self._drop_stored()
            self._logger.info("resumed session [session:%s, seq:%s]", self._session_id_value, self._current_seq())
            self._handshake_event.set()
        else:
            self._logger.warning(
                "rate-limited on opcode %s for %ss [session:%s, metadata:%s]",
                data.get("opcode"),
                data.get("retry_after"),
                self._session_id_value,
                data.get("meta"),
            )

    async def _poll_events(self, conn: _transport.GatewayConnection) -> None:
        next_item = conn.next_item
        while True:
            item = await next_item()
            if type(item) is not dict:
                self._handle_frame(conn, item)
                if isinstance(item, _fast.router.PingFrame):
                    await conn.pong(item.payload)
                continue
            op = item["op"]
            if op == _HEARTBEAT_ACK:
                now = time.monotonic()
                self._last_heartbeat_ack_received = now
                self._heartbeat_latency = now - self._last_heartbeat_sent
                self._stats.heartbeat(self._heartbeat_latency)
                self._logger.log(TRACE, "received HEARTBEAT ACK in %.1fms", self._heartbeat_latency * 1_000)
            elif op == _HEARTBEAT:
                self._logger.log(TRACE, "sending heartbeat as requested by gateway")
                await self._send_heartbeat()
            elif op == _RECONNECT:
                self._logger.info("received instruction to reconnect, will resume existing session")
                raise _Reconnect("RECONNECT")
            elif op == _INVALID_SESSION:
                if item.get("d") is True:
                    self._logger.info("received invalid session, will resume existing session")
                    raise _Reconnect("INVALID_SESSION (resumable)")
                self._logger.info("received invalid session, will need to start a new session")
                self._session_invalidated()
                raise _Reconnect("INVALID_SESSION", delay=random.uniform(*_INVALID_SESSION_WAIT))
            elif op == _HELLO:
                self._logger.debug("ignoring a second HELLO")
            else:
                self._logger.log(TRACE, "unknown opcode %s received, it will be ignored...", op)

    def _handle_frame(self, conn: _transport.GatewayConnection, item: object) -> None:
        if isinstance(item, _fast.router.CloseFrame):
            action = _transport.classify_close_code(item.code)
            raise errors.GatewayServerClosedConnectionError(item.reason, item.code, action != "fatal")

    def _forget_session(self) -> None:
        if self._router is not None:
            self._router.seq = None
        self._seq_value = None
        self._session_id_value = None
        self._resume_gateway_url = None

    # -- heartbeat -----------------------------------------------------------------------------
    async def _send_heartbeat(self) -> None:
        seq = self._current_seq()
        self._logger.log(TRACE, "sending HEARTBEAT [s:%s]", seq)
        await self._send_json({"op": _HEARTBEAT, "d": seq}, priority=True)
        self._last_heartbeat_sent = time.monotonic()

    async def _heartbeat(self, interval: float) -> None:
        self._last_heartbeat_ack_received = time.monotonic()
        self._last_heartbeat_sent = float("nan")
        # Discord: the first heartbeat goes after interval * jitter, so a fleet does not beat in step.
        first = interval * random.random()
        self._logger.debug("starting heartbeat with interval %ss, first beat in %.2fs", interval, first)
        await asyncio.sleep(first)
        while True:
            if self._last_heartbeat_ack_received < self._last_heartbeat_sent:
                self._logger.error(
                    "connection has not received a HEARTBEAT_ACK for approx %.1fs and is being disconnected; "
                    "will attempt to resume",
                    time.monotonic() - self._last_heartbeat_ack_received,
                )
                raise _Reconnect("zombie connection (no HEARTBEAT_ACK)")
            await self._send_heartbeat()
            await asyncio.sleep(interval)

    # -- connecting ----------------------------------------------------------------------------
    def _connect_url(self) -> str:
        parts = urllib.parse.urlparse(self._resume_gateway_url or self._gateway_url, allow_fragments=True)
        query = dict(urllib.parse.parse_qsl(parts.query))
        query["v"] = str(urls.VERSION)
        query["encoding"] = "json"
        if self._compression == shard_api.GatewayCompression.TRANSPORT_ZLIB_STREAM:
            query["compress"] = "zlib-stream"
        elif self._compression == shard_api.GatewayCompression.TRANSPORT_ZSTD_STREAM:
            query["compress"] = "zstd-stream"
        else:
            query.pop("compress", None)
        return urllib.parse.urlunparse(
            (parts.scheme, parts.netloc, parts.path, parts.params, urllib.parse.urlencode(query), "")
        )

    def _identify_payload(self) -> data_binding.JSONObject:
        return {
            "op": _IDENTIFY,
            "d": {
                "token": self._token,
                "compress": self._compression == shard_api.GatewayCompression.PAYLOAD_ZLIB_STREAM,
                "large_threshold": self._large_threshold,
                "properties": {
                    "os": f"{platform.system()} {platform.architecture()[0]}",
                    "browser": f"hikari ({hikari_about.__version__}, aiohttp {aiohttp.__version__})",
                    "device": f"hikari {hikari_about.__version__}",
                },
                "shard": [self._shard_id, self._shard_count],
                "intents": self._intents,
                "capabilities": self._capabilities,
                "presence": self._serialize_and_store_presence_payload(),
            },
        }

    async def _run_connection(self) -> None:
        """Connect, handshake and run one connection until it ends (by an exception)."""
        assert self._handshake_event is not None
        resuming = self._session_id_value is not None and self._current_seq() is not None
        url = self._connect_url()
        try:
            conn = await _transport.GatewayConnection.connect(
                url=url,
                max_message_size=self.max_message_size,
                http_settings=self._http_settings,
                proxy_settings=self._proxy_settings,
                logger=self._logger,
            )
        except errors.GatewayConnectionError:
            if self._resume_gateway_url is not None:
                # Discord: if the resume URL cannot be reached, fall back to the gateway URL next time.
                self._logger.info("could not reach the resume gateway url, will use the gateway url next time")
                self._resume_gateway_url = None
            raise

        self._conn = conn
        self._stats.connects += 1
        try:
            router = self._make_router(conn)
        except BaseException:
            # No inflator/router (zstd-stream without a zstd module, ...): clean up like any failed connect.
            self._conn = None
            await asyncio.shield(conn.close(code=_RESUME_CLOSE_CODE, message=b"shard disconnecting temporarily"))
            raise
        self._router = router
        conn.attach(router)
        tasks: list[asyncio.Task[None]] = []
        try:
            try:
                # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow close()'s cancellation.
                async with asyncio.timeout(_HELLO_TIMEOUT):
                    hello = await conn.next_item()
                    while isinstance(hello, _fast.router.PingFrame):  # a ping before HELLO: answer, keep waiting
                        await conn.pong(hello.payload)
                        hello = await conn.next_item()
            except TimeoutError:
                msg = f"no HELLO within {_HELLO_TIMEOUT}s of connecting"
                raise errors.GatewayTransportError(msg) from None
            if type(hello) is not dict:
                self._handle_frame(conn, hello)
            op = hello.get("op") if type(hello) is dict else None
            if op == _RECONNECT:
                self._logger.info("received RECONNECT as first opcode, the node is likely restarting")
                raise _Reconnect("RECONNECT before HELLO")
            if op != _HELLO:
                raise errors.GatewayTransportError(f"expected opcode {_HELLO} (HELLO) first, received {op}")
            data = hello.get("d")
            interval_ms = data.get("heartbeat_interval") if type(data) is dict else None
            if type(interval_ms) not in {int, float} or not 0 < interval_ms < 3_600_000:  # type: ignore[operator]
                raise _bad_payload(f"HELLO without a usable heartbeat_interval ({interval_ms!r})")
            interval = float(typing.cast("float", interval_ms)) / 1_000.0

            self._limiter.reset()  # Discord's limit is per connection
            tasks.append(asyncio.create_task(self._heartbeat(interval), name=f"heartbeat (shard {self._shard_id})"))
            tasks.append(asyncio.create_task(self._poll_events(conn), name=f"poll events (shard {self._shard_id})"))

            # The handshake goes first, on the reserved (priority) slots; commands wait for READY/RESUMED.
            if resuming:
                self._logger.info("resuming session %s", self._session_id_value)
                self._stats.resumes += 1
                await self._send_json(
                    {
                        "op": _RESUME,
                        "d": {"token": self._token, "seq": router.seq, "session_id": self._session_id_value},
                    },
                    priority=True,
                )
            else:
                await self._wait_for_identify_slot(tasks)
                self._logger.info("identifying with new session")
                self._stats.identifies += 1
                await self._send_json(self._identify_payload(), priority=True)

            handshake = asyncio.ensure_future(self._handshake_event.wait())
            try:
                done, _ = await asyncio.wait(
                    (handshake, *tasks), timeout=_HANDSHAKE_TIMEOUT, return_when=asyncio.FIRST_COMPLETED
                )
            finally:
                await _cancel_and_wait(handshake)
            if not self._handshake_event.is_set():
                for task in done:
                    task.result()  # raises why the connection ended
                raise errors.GatewayTransportError("no READY or RESUMED within the handshake timeout")

            connected_at = time.monotonic()
            await self._event_manager.dispatch(self._event_factory.deserialize_connected_event(self), return_tasks=True)
            try:
                done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    task.result()
            finally:
                if time.monotonic() - connected_at >= _HEALTHY_AFTER:
                    self._healthy = True
        finally:
            # From here on nothing is consumed on this connection: the next one resumes from router.seq.
            router.close()
            self._seq_value = router.seq
            self._stats.absorb(router)
            for task in tasks:
                task.cancel()
            # Finish the teardown even if close() cancels us meanwhile, then let that cancellation through.
            cancelled = False
            for task in tasks:
                try:
                    await task
                except asyncio.CancelledError:
                    cancelled = cancelled or _being_cancelled()
                except BaseException:  # noqa: S110 - the task's own error was raised above
                    pass
            self._conn = None
            self._router = None
            # Clear the session before anything awaits: a command woken below then blocks in
            # _wait_for_session until the next READY/RESUMED instead of spinning on a set event.
            was_ready = self._handshake_event.is_set()
            self._handshake_event.clear()
            # Commands waiting for a slot on this connection wait for the next session instead.
            self._limiter.close(_SessionEnded())
            permanent = self._is_closing and not self._closing_resumable
            code = _CLOSE_CODE_PERMANENT if permanent else _RESUME_CLOSE_CODE
            reason = b"shard disconnecting permanently" if permanent else b"shard disconnecting temporarily"
            try:
                await asyncio.shield(conn.close(code=code, message=reason))
            except asyncio.CancelledError:
                cancelled = True
            if was_ready:
                try:
                    await self._event_manager.dispatch(
                        self._event_factory.deserialize_disconnected_event(self), return_tasks=True
                    )
                except asyncio.CancelledError:
                    cancelled = True
            if cancelled:
                raise asyncio.CancelledError

    async def _wait_for_identify_slot(self, tasks: list[asyncio.Task[None]]) -> None:
        """Wait for this shard's identify bucket and budget, while the connection's tasks keep running."""
        gate = asyncio.ensure_future(
            self._context.before_identify(self._key, self._shard_id, self._logger, self._stats)
        )
        try:
            done, _ = await asyncio.wait((gate, *tasks), return_when=asyncio.FIRST_COMPLETED)
        finally:
            await _cancel_and_wait(gate)
        for task in done:
            task.result()  # the gate's error, or why the connection ended meanwhile

    async def _keep_alive(self) -> None:
        try:
            await self._restore_session()
        except asyncio.CancelledError:
            return
        attempt = 0  # reconnects since the last healthy connection
        while True:
            delay = _backoff_delay(attempt)
            if delay:
                self._logger.info("backing off reconnecting for %.2fs", delay)
                await asyncio.sleep(delay)
            self._healthy = False
            try:
                await self._run_connection()
            except _Reconnect as ex:
                self._stats.reconnect_reasons[ex.reason] += 1
                self._logger.info("reconnecting: %s", ex.reason)
                if ex.delay:
                    self._logger.info("waiting %.2fs before reconnecting", ex.delay)
                    try:
                        await asyncio.sleep(ex.delay)
                    except asyncio.CancelledError:
                        return
            except errors.GatewayServerClosedConnectionError as ex:
                code = ex.code if ex.code is not None else 1000
                action = _transport.classify_close_code(int(code))
                self._stats.close_codes[int(code)] += 1
                if action == "fatal":
                    self._logger.error(
                        "server has closed the connection permanently [code:%s, reason:%s]", ex.code, ex.reason
                    )
                    raise
                if action == "identify":
                    self._session_invalidated()
                self._logger.info(
                    "server has closed the connection, will %s [code:%s, reason:%s]",
                    "start a new session" if action == "identify" else "attempt to resume",
                    ex.code,
                    ex.reason,
                )
            except errors.GatewayConnectionError as ex:
                self._stats.reconnect_reasons["connection failed"] += 1
                self._logger.warning("failed to communicate with server, reason was: %r. Will retry shortly", ex.reason)
            except errors.GatewayTransportError as ex:
                self._stats.reconnect_reasons["transport error"] += 1
                self._logger.error("encountered transport error, will resume: %s", ex)
            except (ConnectionError, OSError, aiohttp.ClientError) as ex:
                self._stats.reconnect_reasons["connection lost"] += 1
                self._logger.warning("connection lost (%s: %s). Will retry shortly", type(ex).__name__, ex)
            except asyncio.CancelledError:
                return
            except errors.GatewayError:
                self._logger.exception("encountered gateway error")
                raise
            except Exception:
                self._logger.exception("encountered some unhandled error")
                raise
            attempt = 1 if self._healthy else attempt + 1
