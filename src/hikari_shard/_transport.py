"""The websocket under the shard: connect with aiohttp, receive whole inflated payloads, send, close.

aiohttp still does the connecting (proxy, TLS, hikari's HTTP settings); each received frame goes
through the compiled (or pure) inflator chosen in :mod:`hikari_shard._fast`.  Everything that can
go wrong below the JSON level becomes one of hikari's gateway errors, so the shard's reconnect
logic sees the same exception types a hikari user already handles.
"""

from __future__ import annotations

__all__ = ("GatewayConnection", "classify_close_code")

import asyncio
import contextlib
import logging
import typing

import aiohttp
from hikari import errors
from hikari.api import shard as shard_api
from hikari.internal import net

from hikari_shard import _fast

if typing.TYPE_CHECKING:
    from hikari.impl import config

_BINARY: typing.Final = aiohttp.WSMsgType.BINARY
_TEXT: typing.Final = aiohttp.WSMsgType.TEXT
_CLOSE: typing.Final = aiohttp.WSMsgType.CLOSE
_CLOSED_TYPES: typing.Final = frozenset((aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED))

# Discord's documented close codes (gateway v10, "Gateway Close Event Codes").
RESUMABLE_CLOSE_CODES: typing.Final[frozenset[int]] = frozenset((4000, 4001, 4002, 4003, 4005, 4008))
"""The server closed, the session survives: reconnect and RESUME."""
NEW_SESSION_CLOSE_CODES: typing.Final[frozenset[int]] = frozenset((4007, 4009))
"""The server closed and the session is gone (invalid seq, session timed out): reconnect and IDENTIFY."""
FATAL_CLOSE_CODES: typing.Final[frozenset[int]] = frozenset((4004, 4010, 4011, 4012, 4013, 4014))
"""Reconnecting cannot help (bad token, sharding, API version, intents): the shard stops with the error."""


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


def _make_inflator(compression: str | None) -> typing.Any:  # noqa: ANN401 - one of three inflator classes
    inflate = _fast.inflate
    if compression == shard_api.GatewayCompression.TRANSPORT_ZLIB_STREAM:
        return inflate.ZlibStreamInflator()
    if compression == shard_api.GatewayCompression.TRANSPORT_ZSTD_STREAM:
        return inflate.ZstdStreamInflator()
    if compression == shard_api.GatewayCompression.PAYLOAD_ZLIB_STREAM:
        return inflate.PayloadZlibInflator()
    return None


class GatewayConnection:
    """One websocket connection to the gateway; single use.

    Parameters are set by :meth:`connect`; construct it through that.
    """

    __slots__ = ("_exit_stack", "_expect_binary", "_inflator", "_logger", "_payload_zlib", "_sent_close", "_ws")

    def __init__(
        self,
        *,
        ws: aiohttp.ClientWebSocketResponse,
        exit_stack: contextlib.AsyncExitStack,
        compression: str | None,
        logger: logging.Logger,
    ) -> None:
        self._ws = ws
        self._exit_stack = exit_stack
        self._logger = logger
        self._sent_close = False
        self._inflator = _make_inflator(compression)
        self._payload_zlib = compression == shard_api.GatewayCompression.PAYLOAD_ZLIB_STREAM
        # Transport compression sends every payload as BINARY; none sends TEXT; payload zlib sends both.
        self._expect_binary: bool | None = None if self._payload_zlib else (self._inflator is not None)

    @classmethod
    async def connect(
        cls,
        *,
        url: str,
        compression: str | None,
        http_settings: config.HTTPSettings,
        proxy_settings: config.ProxySettings,
        logger: logging.Logger,
    ) -> GatewayConnection:
        """Open a websocket to ``url`` (which carries the query string already).

        Raises
        ------
        hikari.errors.GatewayConnectionError
            If the connection or the websocket upgrade failed.
        """
        exit_stack = contextlib.AsyncExitStack()
        try:
            connector = net.create_tcp_connector(http_settings=http_settings, dns_cache=False)
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
                    max_msg_size=0,
                    proxy=proxy_settings.url,
                    proxy_headers=proxy_settings.headers,
                    autoclose=False,
                    autoping=True,
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

        logger.debug("connected, using %r compression", compression)
        return cls(ws=ws, exit_stack=exit_stack, compression=compression, logger=logger)

    async def receive(self) -> bytes:
        """Receive the next whole payload, inflated.

        Raises
        ------
        hikari.errors.GatewayServerClosedConnectionError
            The server sent a close frame.
        hikari.errors.GatewayConnectionError
            The socket closed without a close frame.
        hikari.errors.GatewayTransportError
            A frame of the wrong type, a broken compression stream, an oversized message.
        """
        ws = self._ws
        inflator = self._inflator
        while True:
            message = await ws.receive()
            kind = message.type
            if kind is _BINARY:
                if self._expect_binary is False:
                    msg = "Unexpected message type received BINARY, expected TEXT"
                    raise errors.GatewayTransportError(msg)
                payload = inflator.feed(message.data)
                if payload is not None:
                    return payload  # type: ignore[no-any-return]
            elif kind is _TEXT:
                if self._expect_binary:
                    msg = "Unexpected message type received TEXT, expected BINARY"
                    raise errors.GatewayTransportError(msg)
                data = message.data
                return data.encode() if isinstance(data, str) else data
            else:
                self._raise_for(message)

    def _raise_for(self, message: aiohttp.WSMessage) -> typing.NoReturn:
        if message.type is _CLOSE:
            code = int(message.data)
            kind = classify_close_code(code)
            raise errors.GatewayServerClosedConnectionError(str(message.extra or ""), code, kind != "fatal")
        if message.type in _CLOSED_TYPES:
            msg = "Socket has closed"
            raise errors.GatewayConnectionError(msg)
        exception = self._ws.exception()
        reason = f"websocket error: {type(message.data).__name__}: {message.data}"
        raise errors.GatewayTransportError(reason) from exception

    async def send(self, data: bytes) -> None:
        """Send one JSON payload as a TEXT frame."""
        if self._ws.closed:
            msg = "Socket has closed"
            raise errors.GatewayConnectionError(msg)
        await self._ws.send_frame(data, aiohttp.WSMsgType.TEXT)

    async def close(self, *, code: int, message: bytes) -> None:
        """Send a close frame (once) and release the socket and its session."""
        if self._sent_close:
            return
        self._sent_close = True
        self._logger.debug("sending close frame with code %s and message %r", code, message)
        try:
            await asyncio.wait_for(self._ws.close(code=code, message=message), timeout=5)
        except TimeoutError:
            self._logger.debug("failed to send close frame in time, probably connection issues")
        except (aiohttp.ClientError, OSError, RuntimeError) as ex:
            self._logger.debug("failed to send close frame: %r", ex)
        finally:
            await self._exit_stack.aclose()
