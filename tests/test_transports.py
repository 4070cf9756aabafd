"""Our frame-parser takeover over TLS (wss, self-signed CA), through an HTTP proxy, and under uvloop.

Once aiohttp has connected, the shard reads the websocket itself (``GatewayConnection._fast_reader``):
the compiled build with our frame parser, the pure build with aiohttp's reader feeding the router.
Each test checks that it did, that every dispatch arrived in order, and that a dropped connection
resumes.  When aiohttp's connector is not one we can take over, ``ws.receive()`` reads instead: the
last test forces that path.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import sys
import typing

import pytest
from hikari.impl import config

from helpers import TOKEN, Recorder, make_shard, running, until
from hikari_shard import _fast, _transport
from hikari_shard.testing import GatewayEmulator

try:
    import trustme
except ImportError:  # only the TLS tests need it (CI installs it): the others run without
    trustme = None

needs_trustme = pytest.mark.skipif(trustme is None, reason="trustme is not installed")


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()


async def _relay(
    client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter, port: int, preface: bytes = b""
) -> None:
    upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", port)
    if preface:
        upstream_writer.write(preface)
    await asyncio.gather(_pipe(client_reader, upstream_writer), _pipe(upstream_reader, client_writer))


@contextlib.asynccontextmanager
async def tls_front(port: int, server_context: ssl.SSLContext) -> typing.AsyncIterator[int]:
    """A TLS-terminating relay on loopback in front of the emulator's plain port."""
    server = await asyncio.start_server(lambda r, w: _relay(r, w, port), "127.0.0.1", 0, ssl=server_context)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()


class Proxy:
    """A loopback HTTP proxy: CONNECT tunnels (wss) and absolute-form requests (ws)."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        self.port = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        method, target, _ = head.split(b"\r\n", 1)[0].decode().split(" ", 2)
        self.requests.append(f"{method} {target}")
        if method == "CONNECT":
            port = int(target.rsplit(":", 1)[1])
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            await writer.drain()
            await _relay(reader, writer, port)
        else:
            port = int(target.split("//", 1)[1].split("/", 1)[0].rsplit(":", 1)[1])
            await _relay(reader, writer, port, preface=head)


@pytest.fixture(scope="module")
def ca() -> typing.Any:
    if trustme is None:
        pytest.skip("trustme is not installed")
    return trustme.CA()


def _contexts(ca: typing.Any) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server)
    client = ssl.create_default_context()
    ca.configure_trust(client)
    return server, client


async def _exercise(emulator: GatewayEmulator, *, fast_reader: bool = True, **kwargs: typing.Any) -> None:
    manager = Recorder()
    async with running(make_shard(emulator, manager=manager, **kwargs)) as shard:
        assert shard._conn._fast_reader is fast_reader
        if "url" in kwargs:
            shard._resume_gateway_url = kwargs["url"]  # READY names the emulator's plain url: resume over ours
        for i in range(50):
            await emulator.dispatch("MESSAGE_CREATE", {"i": i, "text": "x" * (i * 97)})
        await until(lambda: len(manager.data_of("MESSAGE_CREATE")) == 50, what="50 dispatches")
        await emulator.connections[-1].drop()
        await until(lambda: len(emulator.connections) == 2 and shard.is_connected, what="the resume")
        await emulator.dispatch("MESSAGE_CREATE", {"i": 50, "text": ""})
        await until(lambda: len(manager.data_of("MESSAGE_CREATE")) == 51, what="51 dispatches")
        assert shard._conn._fast_reader is fast_reader
    assert [d["i"] for d in manager.data_of("MESSAGE_CREATE")] == list(range(51))
    assert manager.names().count("RESUMED") == 1


@needs_trustme
async def test_wss_with_a_self_signed_certificate(ca: typing.Any) -> None:
    server_context, client_context = _contexts(ca)
    async with GatewayEmulator(token=TOKEN) as emulator, tls_front(_port(emulator), server_context) as port:
        url = f"wss://127.0.0.1:{port}"
        await _exercise(emulator, url=url, http_settings=config.HTTPSettings(ssl=client_context))


@needs_trustme
async def test_an_untrusted_certificate_is_refused(ca: typing.Any) -> None:
    server_context, _ = _contexts(ca)
    async with GatewayEmulator(token=TOKEN) as emulator, tls_front(_port(emulator), server_context) as port:
        shard = make_shard(emulator, url=f"wss://127.0.0.1:{port}")  # default trust store: not our CA
        task = asyncio.create_task(shard.start())
        await asyncio.sleep(0.5)
        assert not shard.is_connected
        assert emulator.connections == []
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def _port(emulator: GatewayEmulator) -> int:
    return int(emulator.url.rsplit(":", 1)[1])


@pytest.mark.parametrize("scheme", ["ws", "wss"])
async def test_through_an_http_proxy(request: pytest.FixtureRequest, scheme: str) -> None:
    proxy = Proxy()
    server = await asyncio.start_server(proxy.handle, "127.0.0.1", 0)
    proxy_url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    try:
        async with GatewayEmulator(token=TOKEN) as emulator:
            if scheme == "ws":
                await _exercise(emulator, proxy_settings=config.ProxySettings(url=proxy_url))
            else:
                server_context, client_context = _contexts(request.getfixturevalue("ca"))
                async with tls_front(_port(emulator), server_context) as port:
                    await _exercise(
                        emulator,
                        url=f"wss://127.0.0.1:{port}",
                        http_settings=config.HTTPSettings(ssl=client_context),
                        proxy_settings=config.ProxySettings(url=proxy_url),
                    )
    finally:
        server.close()
    assert len(proxy.requests) == 2  # the first connection and the resume both went through the proxy
    expected = "CONNECT" if scheme == "wss" else "GET"
    assert all(r.startswith(expected) for r in proxy.requests), proxy.requests
    assert all("127.0.0.1" in r for r in proxy.requests)


@pytest.mark.skipif(sys.platform == "win32", reason="uvloop does not run on Windows")
def test_under_uvloop() -> None:
    uvloop = pytest.importorskip("uvloop")

    async def main() -> None:
        assert type(asyncio.get_running_loop()).__module__.startswith("uvloop")
        async with GatewayEmulator(token=TOKEN) as emulator:
            await _exercise(emulator)

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main())


@pytest.mark.parametrize("why", ["a connector we cannot take over", "an aiohttp reader we cannot route"])
async def test_the_receive_path(monkeypatch: pytest.MonkeyPatch, why: str) -> None:
    """``ws.receive()`` delivers when we cannot read the socket ourselves, with the same outcomes."""
    if why.startswith("a connector"):
        connector = _transport._connector
        monkeypatch.setattr(_transport, "_connector", lambda http_settings, _: connector(http_settings, None))
    elif _fast.IMPLEMENTATION == "compiled":
        pytest.skip("the compiled build reads with its own parser, whatever aiohttp's reader is")
    else:
        monkeypatch.setattr(_transport, "_reader_routes", lambda: False)
    async with GatewayEmulator(token=TOKEN) as emulator:
        await _exercise(emulator, fast_reader=False)
        manager = Recorder()
        async with running(make_shard(emulator, manager=manager)) as shard:
            assert shard._conn._fast_reader is False
            first = len(emulator.connections)
            await emulator.connections[-1].close(4000, "unknown error")  # resumable: a close frame, routed
            await until(lambda: len(emulator.connections) == first + 1 and shard.is_connected, what="a resume")
            await emulator.connections[-1].send_raw(b"{not json", binary=False)  # a transport error: resume
            await until(lambda: len(emulator.connections) == first + 2 and shard.is_connected, what="a resume")
            await emulator.dispatch("MESSAGE_CREATE", {"i": 0, "text": ""})
            await until(lambda: len(manager.data_of("MESSAGE_CREATE")) == 1, what="a dispatch")
        assert manager.names().count("RESUMED") == 2
