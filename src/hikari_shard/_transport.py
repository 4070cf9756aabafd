"""The websocket under the shard: connect with aiohttp, receive whole inflated payloads, send, close.

aiohttp does the connecting (proxy, TLS, hikari's HTTP settings) and the upgrade.  At the upgrade
we install our own reader on the connection's protocol (:class:`_FrameFeed`): each TCP chunk is
split into websocket messages, inflated, routed and consumed inside ``data_received``, with no
Python-level await per message.  The compiled hot paths split frames with our compiled parser; the
pure twins with aiohttp's own reader, whose messages go straight to the router instead of into
aiohttp's queue (:class:`_RoutedQueue`).  Only when aiohttp's connector is not the one we know how
to take over (or, in the pure build, its reader does not route as we expect: :func:`_reader_routes`)
does ``ws.receive()`` deliver the messages, one await each.

Either way every message ends in :meth:`Router.feed_frame <hikari_shard._pure.router.Router.feed_frame>`,
and what the async side must act on comes out of :meth:`GatewayConnection.next_item`.  Everything
that can go wrong below the JSON level becomes one of hikari's gateway errors, so the shard's
reconnect logic sees the exception types a hikari user already handles.
"""

from __future__ import annotations

__all__ = ("GatewayConnection", "classify_close_code", "frame_reader", "make_inflator")

import asyncio
import collections
import contextlib
import functools
import logging
import typing

import aiohttp
from aiohttp import client_proto
from hikari import errors
from hikari.api import shard as shard_api
from hikari.internal import net

from hikari_shard import _fast

if typing.TYPE_CHECKING:
    from hikari.impl import config

_QueueBase: typing.Any
_AiohttpReader: typing.Any
try:  # aiohttp's websocket reader and its queue are not public API: checked once before use (_reader_routes)
    from aiohttp._websocket.reader import WebSocketDataQueue as _QueueBase
    from aiohttp._websocket.reader import WebSocketReader as _AiohttpReader
except ImportError:  # pragma: no cover - aiohttp moved its reader: the pure build reads with ws.receive()
    _QueueBase = object
    _AiohttpReader = None

_BINARY: typing.Final = aiohttp.WSMsgType.BINARY
_TEXT: typing.Final = aiohttp.WSMsgType.TEXT
_CLOSE: typing.Final = aiohttp.WSMsgType.CLOSE
_PING: typing.Final = aiohttp.WSMsgType.PING
_PONG: typing.Final = aiohttp.WSMsgType.PONG
_CLOSED_TYPES: typing.Final = frozenset((aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED))

# Discord's documented close codes (gateway v10, "Gateway Close Event Codes").
RESUMABLE_CLOSE_CODES: typing.Final[frozenset[int]] = frozenset((4000, 4001, 4002, 4003, 4005, 4008))
"""The server closed, the session survives: reconnect and RESUME."""
NEW_SESSION_CLOSE_CODES: typing.Final[frozenset[int]] = frozenset((4007, 4009))
"""The server closed and the session is gone (invalid seq, session timed out): reconnect and IDENTIFY."""
FATAL_CLOSE_CODES: typing.Final[frozenset[int]] = frozenset((4004, 4010, 4011, 4012, 4013, 4014))
"""Reconnecting cannot help (bad token, sharding, API version, intents): the shard stops with the error."""


_CLOSE_HANDSHAKE_TIMEOUT: typing.Final = 1.0
"""Seconds close() waits for the server's answer to our close frame (and the end of the socket)."""


def classify_close_code(code: int) -> typing.Literal["resume", "identify", "fatal"]:
    """Say what Discord's documentation asks a client to do after the server closed with ``code``.

    Codes below 4000 (1000, 1001, a dropped proxy, ...) and unknown 4xxx codes reconnect and try to
    resume; the server answers INVALID_SESSION if the session is gone.
    """
    if code in FATAL_CLOSE_CODES:
        return "fatal"
    if code in NEW_SESSION_CLOSE_CODES:
        return "identify"
    return "resume"


def make_inflator(compression: str | None, max_message_size: int) -> typing.Any:
    inflate = _fast.inflate
    if compression == shard_api.GatewayCompression.TRANSPORT_ZLIB_STREAM:
        return inflate.ZlibStreamInflator(max_message_size)
    if compression == shard_api.GatewayCompression.TRANSPORT_ZSTD_STREAM:
        return inflate.ZstdStreamInflator(max_message_size)
    if compression == shard_api.GatewayCompression.PAYLOAD_ZLIB_STREAM:
        return inflate.PayloadZlibInflator(max_message_size)
    return None


def _control_item(message: aiohttp.WSMessage) -> object:
    """What the async side must act on for an aiohttp message that is not BINARY or TEXT (``None``: nothing).

    Raises
    ------
    hikari.errors.GatewayConnectionError
        The socket closed without a close frame.
    hikari.errors.GatewayTransportError
        aiohttp's reader failed (a protocol violation, an oversized message).
    """
    kind = message.type
    if kind is _CLOSE:
        return _fast.router.CloseFrame(int(message.data), str(message.extra or ""))
    if kind is _PING:
        return _fast.router.PingFrame(bytes(message.data))
    if kind is _PONG:
        return None
    if kind in _CLOSED_TYPES:
        msg = "Socket has closed"
        raise errors.GatewayConnectionError(msg)
    raise _websocket_error(message.data)


def _websocket_error(exc: object) -> errors.GatewayTransportError:
    error = errors.GatewayTransportError(f"websocket error: {type(exc).__name__}: {exc}")
    if isinstance(exc, BaseException):
        error.__cause__ = exc
    return error


class _RoutedQueue(_QueueBase):  # type: ignore[misc]
    """aiohttp's websocket message queue, but every message goes to the router as soon as it is parsed.

    aiohttp's reader (compiled when aiohttp is) hands each message to its queue's ``feed_data``;
    here that is the router's ``feed_frame`` for BINARY and TEXT, synchronously inside
    ``data_received``.  Nothing is buffered, so aiohttp's flow control never pauses the socket on
    our account.  Errors and the end of the socket are queued for the async side like the compiled
    parser's.
    """

    __slots__ = ("_feed_frame", "_router")

    def __init__(self, router: typing.Any) -> None:
        super().__init__(None, 1 << 16, loop=None)  # type: ignore[arg-type]  # no protocol to pause, no waiter
        self._router = router
        self._feed_frame = router.feed_frame

    def feed_data(self, data: typing.Any, size: int) -> None:
        kind = data[0]
        if kind is _BINARY or kind is _TEXT:
            self._feed_frame(kind, data[1])  # an IntEnum: an int to the router
            return
        item = _control_item(data)
        if item is not None:
            self._router.push(item)

    def set_exception(self, exc: BaseException, exc_cause: BaseException | None = None) -> None:
        """aiohttp's reader refused a frame, or the router raised (queued as it is, as from our parser)."""
        self._router.push(_websocket_error(exc) if isinstance(exc, aiohttp.WebSocketError) else exc)

    def feed_eof(self) -> None:
        self._router.push(errors.GatewayConnectionError("Socket has closed"))


def _new_aiohttp_reader(router: typing.Any, max_message_size: int) -> typing.Any:
    """aiohttp's reader as ws_connect builds it for the gateway (no permessage-deflate, bytes for TEXT), routed."""
    return _AiohttpReader(_RoutedQueue(router), max_message_size, compress=False, decode_text=False)


class _Probe:
    def __init__(self) -> None:
        self.items: list[object] = []

    def feed_frame(self, opcode: int, payload: bytes) -> None:
        self.items.append((int(opcode), bytes(payload)))

    def push(self, item: object) -> None:
        self.items.append(item)


@functools.cache
def _reader_routes() -> bool:
    """Whether this aiohttp's reader hands its messages to a :class:`_RoutedQueue` as we expect.

    Checked once, on a BINARY message, a ping and a TEXT message.  If not (a future aiohttp
    changed its internals), the pure build lets aiohttp read and awaits ``ws.receive()``.
    """
    if _AiohttpReader is None:
        return False
    probe = _Probe()
    try:
        _new_aiohttp_reader(probe, 1 << 10).feed_data(b"\x82\x02{}\x89\x01p\x81\x02[]")
    except Exception:  # any failure means "do not take over"
        return False
    return probe.items == [(2, b"{}"), _fast.router.PingFrame(b"p"), (1, b"[]")]


_TAKEOVER_MISSED: list[str] = []
"""Set (once) when aiohttp upgraded a connection without calling our ``set_parser``: ws.receive() reads."""


def _takeover_missed() -> None:
    if not _TAKEOVER_MISSED:
        _TAKEOVER_MISSED.append(aiohttp.__version__)
        logging.getLogger(__name__).warning(
            "aiohttp %s upgraded the websocket without installing our frame reader (set_parser was not called): "
            "reading with ws.receive(), one await per message",
            aiohttp.__version__,
        )


def frame_reader() -> str:
    """Who splits the websocket into messages, when aiohttp's connector can be taken over (``info``, the logs)."""
    if _TAKEOVER_MISSED:
        return (
            f"aiohttp {_TAKEOVER_MISSED[0]}'s ws.receive(), one await per message "
            "(the takeover did not happen: aiohttp did not call set_parser)"
        )
    if _fast.IMPLEMENTATION == "compiled":
        return "our compiled parser, routed in data_received"
    if _reader_routes():
        return f"aiohttp {aiohttp.__version__}'s reader, routed in data_received"
    return f"aiohttp {aiohttp.__version__}'s ws.receive(), one await per message (its reader cannot be routed)"


async def probe_takeover(timeout: float = 5.0) -> bool:  # noqa: ASYNC109 - bounded here, for the command line
    """Open one websocket to a loopback aiohttp server and tell whether our reader took it over (``info``).

    A connection whose takeover did not happen is recorded as for any connection (:func:`frame_reader`
    says so afterwards).  Any failure of the probe itself answers ``False``.
    """
    from aiohttp import web  # noqa: PLC0415 - the server side, only for this probe
    from hikari.impl import config  # noqa: PLC0415

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for _ in ws:
            pass
        return ws

    app = web.Application()
    app.router.add_get("/", handler)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        async with asyncio.timeout(timeout):
            conn = await GatewayConnection.connect(
                url=f"ws://127.0.0.1:{port}/",
                http_settings=config.HTTPSettings(),
                proxy_settings=config.ProxySettings(),
                logger=logging.getLogger(__name__),
                max_message_size=1 << 16,
            )
            try:
                return conn._fast_reader
            finally:
                await conn.close(code=1000, message=b"probe")
    except Exception:
        return False
    finally:
        await runner.cleanup()


class _FrameFeed:
    """Stands in for aiohttp's websocket reader on the connection's protocol (``set_parser``).

    It is installed by :class:`_TakeoverHandler` when aiohttp upgrades the connection, so it sees
    every byte after the HTTP response: no frame is ever half-read by aiohttp's own reader.  aiohttp
    calls :meth:`feed_data` with each TCP chunk; a frame parser splits it into messages and hands
    each to the router: ours (:mod:`hikari_shard._fastpath.frames`) with the compiled hot paths,
    another instance of aiohttp's reader feeding a :class:`_RoutedQueue` with the pure ones.  Bytes
    that arrive before the router is attached are kept until then.  An error is queued for the
    async side instead of raised into the event loop's transport machinery.
    """

    __slots__ = ("_early", "_eof", "_feed", "_max_message_size", "_router", "aiohttp_queue", "installed")

    def __init__(self, max_message_size: int) -> None:
        self.installed = False
        """Whether aiohttp installed us through ``set_parser`` (checked per connection after the upgrade)."""
        self.aiohttp_queue: typing.Any = None
        """aiohttp's message queue for this websocket, which its ``close()`` reads the end of the socket from."""
        self._max_message_size = max_message_size
        self._router: typing.Any = None
        self._feed: typing.Callable[[bytes], tuple[bool, bytes] | None] | None = None
        self._early = bytearray()
        self._eof = False

    def attach(self, router: typing.Any) -> None:
        self._router = router
        if _fast.IMPLEMENTATION == "compiled":
            self._feed = _fast.frames.FrameParser(router.feed_frame, max_message_size=self._max_message_size).feed_data
        else:
            self._feed = _new_aiohttp_reader(router, self._max_message_size).feed_data
        if self._early:
            early = bytes(self._early)
            self._early.clear()
            self.feed_data(early)
        if self._eof:
            self.feed_eof()

    def feed_data(self, data: bytes) -> tuple[bool, bytes]:
        feed = self._feed
        if feed is None:
            self._early += data
            return False, b""
        try:
            stop = feed(data)  # aiohttp's reader answers (stop, tail) and queues its own errors
        except Exception as ex:
            self._router.push(ex)
            return True, b""
        if stop is not None and stop[0]:
            return True, b""
        return False, b""

    def feed_eof(self) -> None:
        queue = self.aiohttp_queue
        if queue is not None:  # ws.close() waits on it for the end of the close handshake
            with contextlib.suppress(Exception):
                queue.feed_eof()
        if self._router is None:
            self._eof = True
        else:
            self._router.push(errors.GatewayConnectionError("Socket has closed"))


class _TakeoverHandler(client_proto.ResponseHandler):
    """aiohttp's connection protocol, but the websocket upgrade installs our frame parser."""

    def __init__(self, loop: asyncio.AbstractEventLoop, *, frame_feed: _FrameFeed) -> None:
        super().__init__(loop)
        self._frame_feed = frame_feed

    def set_parser(self, parser: typing.Any, payload: typing.Any, data_received_cb: typing.Any = None) -> None:
        self._frame_feed.installed = True
        self._frame_feed.aiohttp_queue = payload
        super().set_parser(self._frame_feed, payload, data_received_cb)


def _connector(http_settings: config.HTTPSettings, frame_feed: _FrameFeed | None) -> tuple[aiohttp.TCPConnector, bool]:
    """hikari's connector for the gateway; with ``frame_feed``, one whose websocket frames we parse."""
    connector = net.create_tcp_connector(http_settings=http_settings, dns_cache=False)
    factory = getattr(connector, "_factory", None)
    if frame_feed is None or not (
        isinstance(factory, functools.partial)
        and factory.func is client_proto.ResponseHandler
        and "loop" in factory.keywords
    ):
        return connector, False
    connector._factory = functools.partial(  # type: ignore[assignment]
        _TakeoverHandler, loop=factory.keywords["loop"], frame_feed=frame_feed
    )
    return connector, True


class GatewayConnection:
    """One websocket connection to the gateway; single use.  Build it with :meth:`connect`."""

    __slots__ = ("_exit_stack", "_fast_reader", "_frame_feed", "_logger", "_pending", "_router", "_sent_close", "_ws")

    def __init__(
        self,
        *,
        ws: aiohttp.ClientWebSocketResponse[typing.Any],
        exit_stack: contextlib.AsyncExitStack,
        logger: logging.Logger,
        frame_feed: _FrameFeed | None,
    ) -> None:
        self._ws = ws
        self._frame_feed = frame_feed
        self._exit_stack = exit_stack
        self._logger = logger
        self._sent_close = False
        self._pending: collections.deque[typing.Any] = collections.deque()
        self._router: typing.Any = None
        self._fast_reader = frame_feed is not None

    @property
    def pending(self) -> collections.deque[typing.Any]:
        """Where the router appends what the async side must act on."""
        return self._pending

    def attach(self, router: typing.Any) -> None:
        """Route every message of this connection through ``router``."""
        self._router = router
        if self._frame_feed is not None:
            self._frame_feed.attach(router)
        reader = frame_reader() if self._fast_reader else "aiohttp's ws.receive() (a connector we cannot take over)"
        self._logger.debug("reading frames with %s", reader)

    @classmethod
    async def connect(
        cls,
        *,
        url: str,
        http_settings: config.HTTPSettings,
        proxy_settings: config.ProxySettings,
        logger: logging.Logger,
        max_message_size: int,
    ) -> GatewayConnection:
        """Open a websocket to ``url`` (which carries the query string already).

        Our frame feed reads the socket from the first byte after the upgrade (the reader aiohttp
        built for the websocket never sees a frame), unless aiohttp's connector is not the one we
        know how to take over or, in the pure build, aiohttp's reader does not route as we expect:
        then ``ws.receive()`` delivers the messages.

        Raises
        ------
        hikari.errors.GatewayConnectionError
            If the connection or the websocket upgrade failed.
        """
        exit_stack = contextlib.AsyncExitStack()
        try:
            frame_feed: _FrameFeed | None = None
            if _fast.IMPLEMENTATION == "compiled" or _reader_routes():
                frame_feed = _FrameFeed(max_message_size)
            connector, taken_over = _connector(http_settings, frame_feed)
            if not taken_over:
                frame_feed = None
            session = await exit_stack.enter_async_context(
                net.create_client_session(
                    connector=connector,
                    connector_owner=True,
                    http_settings=http_settings,
                    raise_for_status=True,
                    trust_env=proxy_settings.trust_env,
                )
            )
            ws = await exit_stack.enter_async_context(
                session.ws_connect(
                    url,
                    max_msg_size=max_message_size,  # what aiohttp's reader accepts, when it reads
                    proxy=proxy_settings.url,
                    proxy_headers=proxy_settings.headers,
                    autoclose=False,
                    autoping=True,
                    decode_text=False,
                )
            )
        except (TimeoutError, aiohttp.ClientConnectionError, aiohttp.ClientResponseError) as ex:
            await exit_stack.aclose()
            if isinstance(ex, aiohttp.ClientResponseError):
                reason = f"{ex.status}: {ex.message}"
            elif isinstance(ex, TimeoutError):
                reason = "Timeout exceeded"
            else:
                reason = str(ex)
            raise errors.GatewayConnectionError(reason) from None
        except BaseException:
            await exit_stack.aclose()
            raise
        if frame_feed is not None and not frame_feed.installed:
            _takeover_missed()  # aiohttp's own reader reads this socket: so does ws.receive()
            frame_feed = None
        return cls(ws=ws, exit_stack=exit_stack, logger=logger, frame_feed=frame_feed)

    async def next_item(self) -> typing.Any:
        """Wait for the next thing the async side must act on.

        Raises
        ------
        hikari.errors.GatewayConnectionError
            The socket closed without a close frame.
        hikari.errors.GatewayTransportError
            A frame of the wrong type, a broken compression stream, an oversized message,
            invalid JSON or a payload of the wrong shape.
        """
        pending = self._pending
        router = self._router
        if self._fast_reader:  # our parser feeds the router from data_received: wait for it to queue something
            while not pending:
                waiter = asyncio.get_running_loop().create_future()
                router.waiter = waiter
                try:
                    await waiter
                finally:
                    router.waiter = None
        else:  # ws.receive(), one await per message (we could not take the socket over)
            receive = self._ws.receive
            feed_frame = router.feed_frame
            while not pending:
                message = await receive()
                kind = message.type
                if kind is _BINARY or kind is _TEXT:
                    feed_frame(kind, message.data)  # an IntEnum: an int to the router
                else:
                    self._route_other(message)
        item = pending.popleft()
        if isinstance(item, BaseException):
            raise item
        return item

    def _route_other(self, message: aiohttp.WSMessage) -> None:
        """Route one message delivered by ``ws.receive()`` that is not BINARY or TEXT."""
        item = _control_item(message)
        if item is not None:
            self._pending.append(item)

    async def send(self, data: bytes) -> None:
        """Send one JSON payload as a TEXT frame."""
        if self._ws.closed or self._sent_close:
            msg = "Socket has closed"
            raise errors.GatewayConnectionError(msg)
        await self._ws.send_frame(data, aiohttp.WSMsgType.TEXT)

    async def pong(self, payload: bytes) -> None:
        """Answer a ping (only needed once our parser owns the socket; aiohttp answers otherwise)."""
        if self._fast_reader and not self._ws.closed:
            await self._ws.pong(payload)

    async def close(self, *, code: int, message: bytes) -> None:
        """Send a close frame (once) and release the socket and its session."""
        if self._sent_close:
            return
        self._sent_close = True
        self._logger.debug("sending close frame with code %s and message %r", code, message)
        try:
            # aiohttp's public close(): it sends our close frame, then waits for the server's reply. With
            # our parser on the socket, the end of the socket reaches aiohttp's queue (_FrameFeed.feed_eof),
            # and the server closes the socket once it has answered: the handshake completes within the timeout.
            # A peer that never answers costs at most _CLOSE_HANDSHAKE_TIMEOUT: the socket is shut then.
            await asyncio.wait_for(self._ws.close(code=code, message=message), timeout=_CLOSE_HANDSHAKE_TIMEOUT)
        except TimeoutError:
            self._logger.debug("no answer to our close frame in time, shutting the socket")
        except (aiohttp.ClientError, OSError, RuntimeError) as ex:
            self._logger.debug("failed to send close frame: %r", ex)
        finally:
            await self._exit_stack.aclose()
