"""Issue 24's transport and teardown defects: each test fails on the code before the fix, on both builds."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import logging
import pathlib
import sys
import time
import typing

import aiohttp
import pytest
from aiohttp import client_proto, web

from helpers import TOKEN, Recorder, fill_command_limit, make_shard, running, until
from hikari_shard import _transport
from hikari_shard.testing import GatewayEmulator


async def test_no_takeover_falls_back_to_ws_receive(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """An aiohttp that upgrades without calling our ``set_parser``: ws.receive() reads, said once at WARNING."""
    # What such a release looks like to us: aiohttp installs its own reader, our override never runs.
    monkeypatch.setattr(_transport._TakeoverHandler, "set_parser", client_proto.ResponseHandler.set_parser)
    monkeypatch.setattr(_transport, "_TAKEOVER_MISSED", [])
    caplog.set_level(logging.WARNING, logger=_transport.__name__)
    async with GatewayEmulator(token=TOKEN) as emulator:
        manager = Recorder()
        async with running(make_shard(emulator, manager=manager)) as shard:  # no 30 s HELLO timeout
            assert shard._conn._fast_reader is False
            await emulator.dispatch("MESSAGE_CREATE", {"i": 0})
            await until(lambda: len(manager.data_of("MESSAGE_CREATE")) == 1, what="a dispatch")
            await emulator.connections[-1].drop()
            await until(lambda: len(emulator.connections) == 2 and shard.is_connected, what="the resume")
    warnings = [r for r in caplog.records if "set_parser was not called" in r.getMessage()]
    assert len(warnings) == 1
    assert "takeover did not happen" in _transport.frame_reader()


async def test_the_takeover_is_confirmed() -> None:
    async with GatewayEmulator(token=TOKEN) as emulator, running(make_shard(emulator)) as shard:
        assert shard._conn._fast_reader is True
        assert shard._conn._frame_feed.installed is True


async def test_a_slow_teardown_with_queued_commands_does_not_spin(monkeypatch: pytest.MonkeyPatch) -> None:
    """Commands woken by the teardown wait for the next session instead of looping (a spin detector)."""
    close = _transport.GatewayConnection.close
    closing = asyncio.Event()

    async def slow_close(self: typing.Any, **kwargs: typing.Any) -> None:
        closing.set()
        await asyncio.sleep(1.0)
        await close(self, **kwargs)

    monkeypatch.setattr(_transport.GatewayConnection, "close", slow_close)
    async with GatewayEmulator(token=TOKEN) as emulator, running(make_shard(emulator)) as shard:
        _, waiting = await fill_command_limit(shard)
        queued = [asyncio.ensure_future(shard.update_presence(status="idle")) for _ in range(100)]
        await asyncio.sleep(0.05)
        await emulator.connections[-1].drop()
        await asyncio.wait_for(closing.wait(), 5)
        await asyncio.sleep(0)  # the limiter woke the commands
        cpu = time.process_time()
        await asyncio.sleep(0.8)  # inside the slowed close
        used = time.process_time() - cpu
        assert used < 0.3, f"{used:.2f} s of CPU in 0.8 s of teardown: the event loop spins"
        await until(lambda: shard.is_connected, what="the resume")
        await asyncio.wait_for(asyncio.gather(waiting, *queued), 30)


_STATE: dict[str, typing.Any] = {}


async def _pinging_gateway(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(autoping=False)
    await ws.prepare(request)
    await ws.ping(b"before hello")
    msg = await ws.receive(timeout=5)
    _STATE["pongs"].append((msg.type, msg.data))
    await ws.pong(b"unsolicited")  # ignored
    await ws.send_str(json.dumps({"op": 10, "d": {"heartbeat_interval": 45000}}))
    identify = await ws.receive(timeout=5)
    while identify.type is not aiohttp.WSMsgType.TEXT:
        _STATE.setdefault("other", []).append(identify.type)
        identify = await ws.receive(timeout=5)
    _STATE["identify"] = json.loads(identify.data)["op"]
    await ws.send_str(
        json.dumps(
            {
                "op": 0,
                "t": "READY",
                "s": 1,
                "d": {
                    "v": 10,
                    "session_id": "s",
                    "resume_gateway_url": _STATE["url"],
                    "user": {"id": "1", "username": "u", "discriminator": "0", "avatar": None},
                    "guilds": [],
                    "application": {"id": "1", "flags": 0},
                    "shard": [0, 1],
                },
            }
        )
    )
    with contextlib.suppress(Exception):
        async for _ in ws:
            pass
    return ws


@contextlib.asynccontextmanager
async def _server(handler: typing.Any) -> typing.AsyncIterator[web.Application]:
    app = web.Application()
    app.router.add_get("/", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    _STATE.clear()
    _STATE.update(url=f"ws://127.0.0.1:{port}", pongs=[])
    try:
        yield app
    finally:
        await runner.cleanup()


async def test_a_ping_before_hello_is_answered() -> None:
    async with _server(_pinging_gateway):
        shard = make_shard(None, url=_STATE["url"], compression=None)
        async with running(shard):
            assert shard.is_connected
        assert _STATE["pongs"] == [(aiohttp.WSMsgType.PONG, b"before hello")]
        assert _STATE["identify"] == 2


async def test_close_does_not_depend_on_aiohttp_private_close_code(monkeypatch: pytest.MonkeyPatch) -> None:
    """aiohttp renamed ``_close_code``: a value we would write there is ignored; close() still ends promptly."""
    original = aiohttp.ClientWebSocketResponse.close

    async def renamed(self: typing.Any, **kwargs: typing.Any) -> bool:
        if not self._closed:
            self._close_code = None  # the attribute aiohttp reads now has another name: our write has no effect
        return await original(self, **kwargs)

    monkeypatch.setattr(aiohttp.ClientWebSocketResponse, "close", renamed)
    async with GatewayEmulator(token=TOKEN) as emulator:
        shard = make_shard(emulator)
        await asyncio.wait_for(shard.start(), 10)
        started = time.monotonic()
        await asyncio.wait_for(shard.close(), 10)
        assert time.monotonic() - started < 1.0  # generous: the handshake is loopback; 5 s means it timed out


def test_the_transport_tests_load_without_trustme(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without trustme only the TLS tests skip: the proxy (ws) and receive-path tests still run."""
    monkeypatch.setitem(sys.modules, "trustme", None)  # import trustme raises ImportError
    path = pathlib.Path(__file__).with_name("test_transports.py")
    spec = importlib.util.spec_from_file_location("_transports_without_trustme", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except pytest.skip.Exception:
        pytest.fail("test_transports.py skips as a whole without trustme")
    assert module.trustme is None
    assert hasattr(module, "test_the_receive_path")


def test_info_says_when_the_takeover_did_not_happen(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from hikari_shard import __main__ as cli

    monkeypatch.setattr(_transport._TakeoverHandler, "set_parser", client_proto.ResponseHandler.set_parser)
    monkeypatch.setattr(_transport, "_TAKEOVER_MISSED", [])
    assert cli.main(["info"]) == 0
    out = capsys.readouterr().out
    assert "websocket takeover: NOT confirmed" in out
    assert "the takeover did not happen" in out
