"""Reliability: bad input, chaos, closing in every phase, soak, secrets.

A bot author would notice each failure here as a shard that dies, hangs, loses or repeats events,
leaks tasks/sockets/memory over days, or writes the bot token into a log.  Every test talks to a
real websocket server on 127.0.0.1: the gateway emulator (``hikari_shard.testing``), or, where the
emulator cannot misbehave the way a test needs (a HELLO without a usable interval, a server that
never upgrades or never answers), :class:`MiniGateway` below.

The event manager is :class:`Recorder`, not hikari's, so every dispatch is decoded and consumed
(selective decode only applies to hikari's own event manager).

Long runs
---------
``HIKARI_SHARD_SOAK=1`` enables the tests marked ``slow`` (and more rounds of the close-at-random
moments test): a soak of ``HIKARI_SHARD_SOAK_DISPATCHES`` dispatches (default 1 000 000) with a
reconnect every ``HIKARI_SHARD_SOAK_CHUNK`` (default 100 000) whose live RSS may grow by at most
``HIKARI_SHARD_SOAK_RSS_MIB`` (default 16) between the two halves of the run, and a longer chaos run
on every compression (``HIKARI_SHARD_CHAOS_ROUNDS``, default 8 of each fault, random seed).
``HIKARI_SHARD_CHAOS_SEED`` fixes the seed.  The short versions always run.  Figures (faults
injected, dispatches delivered, RSS) are printed: run with ``-s`` to see them, e.g.::

    HIKARI_SHARD_SOAK=1 pytest tests/test_reliability.py -m slow -s
"""

from __future__ import annotations

import asyncio
import base64
import collections
import contextlib
import ctypes
import gc
import hashlib
import itertools
import json
import logging
import os
import random
import socket
import time
import traceback
import typing
import zlib

import hikari
import orjson
import pytest
from aiohttp import web
from hikari import errors
from hikari.api import shard as shard_api

import helpers
import hikari_shard
from helpers import TOKEN, Recorder, fill_command_limit, make_shard, no_leaks, open_fds
from hikari_shard import _fast
from hikari_shard import shard as shard_module
from hikari_shard.testing import REDACTED, GatewayEmulator, encode_frame, make_bot_token

if typing.TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from hikari_shard.testing import EmulatedConnection


def _flag(name: str) -> bool:
    return os.environ.get(name, "") not in {"", "0"}


SOAK: typing.Final = _flag("HIKARI_SHARD_SOAK")

TIMEOUT: typing.Final = 10.0
"""Upper bound of any single wait in these tests."""
PROMPT: typing.Final = 2.0
"""close() must return within this many seconds, whatever the shard is doing."""
SUFFIX: typing.Final = b"\x00\x00\xff\xff"

ZLIB: typing.Final = shard_api.GatewayCompression.TRANSPORT_ZLIB_STREAM
ZSTD: typing.Final = shard_api.GatewayCompression.TRANSPORT_ZSTD_STREAM
PAYLOAD: typing.Final = shard_api.GatewayCompression.PAYLOAD_ZLIB_STREAM
COMPRESSIONS: typing.Final = (None, ZLIB, ZSTD, PAYLOAD)

slow_soak = pytest.mark.skipif(not SOAK, reason="long run: set HIKARI_SHARD_SOAK=1")


# -- helpers -------------------------------------------------------------------------------------


class CountingRecorder(Recorder):
    """A recorder that keeps nothing per event (for the soak): checks order on the fly."""

    def __init__(self) -> None:
        super().__init__()
        self.next_k = 0
        self.delivered = 0
        self.out_of_order: list[tuple[int, int]] = []
        self.other: collections.Counter[str] = collections.Counter()

    def consume_raw_event(self, name: str, shard: object, data: typing.Any) -> None:
        if name != "MESSAGE_CREATE":
            self.other[name] += 1
            return
        k = data["k"]
        if k != self.next_k and len(self.out_of_order) < 20:
            self.out_of_order.append((self.next_k, k))
        self.next_k = k + 1
        self.delivered += 1


async def wait_until(predicate: Callable[[], object], what: str, *, timeout: float = TIMEOUT) -> None:  # noqa: ASYNC109
    """Poll ``predicate`` until it is true; fail the test with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.005)


async def timed_close(shard: hikari_shard.GatewayShardImpl) -> float:
    """close() the shard; return how long it took (failing if it is not prompt)."""
    start = time.monotonic()
    try:
        await asyncio.wait_for(shard.close(), PROMPT * 3)
    except TimeoutError:
        pytest.fail(f"close() still running after {PROMPT * 3}s")
    elapsed = time.monotonic() - start
    assert elapsed < PROMPT, f"close() took {elapsed:.2f}s"
    return elapsed


def rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def live_rss_bytes() -> int:
    """RSS after a full collection and (with glibc) malloc_trim: live memory, not the allocator's free cache."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    return rss_bytes()


async def assert_no_client_tasks(when: str) -> None:
    """No client task may outlive close(); MiniGateway's and RawPeer's tasks (this file) are servers'."""
    await helpers.assert_no_client_tasks(when, server_files=(__file__,))


@pytest.fixture(autouse=True)
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep reconnect backoff and the INVALID_SESSION wait short (the logic is the same)."""
    monkeypatch.setattr(shard_module, "_BACKOFF_BASE", 0.01)
    monkeypatch.setattr(shard_module, "_BACKOFF_CAP", 0.05)
    monkeypatch.setattr(shard_module, "_INVALID_SESSION_WAIT", (0.01, 0.05))


def transport_errors(caplog: pytest.LogCaptureFixture) -> list[errors.GatewayTransportError]:
    """The GatewayTransportErrors the shard logged (as the argument of its log record)."""
    return [
        arg
        for record in caplog.records
        if record.name.startswith("hikari.gateway")
        for arg in (record.args if isinstance(record.args, tuple) else ())
        if isinstance(arg, errors.GatewayTransportError)
    ]


# -- a bare gateway server for what the emulator will not do ---------------------------------------


class MiniConnection:
    def __init__(self, index: int, behaviour: object) -> None:
        self.index = index
        self.behaviour = behaviour
        self.received: list[dict[str, typing.Any]] = []
        self.close_code: int | None = None
        self.ws: web.WebSocketResponse | None = None
        self.authenticated = False
        self.done = asyncio.Event()
        self.pongs: list[bytes] = []

    def ops(self) -> list[int]:
        return [payload.get("op") for payload in self.received]


class MiniGateway:
    """A bare gateway v10 server (uncompressed TEXT frames) whose connections follow a script.

    Connection ``i`` behaves as ``script[i]`` (``"normal"`` past its end):

    * ``"normal"``: HELLO, READY on IDENTIFY, replay + RESUMED on RESUME, ACKs heartbeats;
    * ``"hang_http"``: reads the upgrade request and never answers it;
    * ``"refuse"``: answers the upgrade request with HTTP 503;
    * ``"no_hello"``: upgrades, then never sends anything;
    * ``"silent"``: sends HELLO, then never answers IDENTIFY or RESUME;
    * a ``str`` starting with ``"raw:"``: that text as the first message, then behaves normally;
    * a ``dict``: that payload instead of HELLO, then behaves normally.
    """

    def __init__(
        self,
        script: Iterable[object] = (),
        *,
        heartbeat_interval_ms: int = 45_000,
        replay_overlap: int = 0,
        resume_url: str | None = None,
    ) -> None:
        self.script = list(script)
        self.resume_url = resume_url
        """The ``resume_gateway_url`` sent in READY (default: this server)."""
        self.replay_overlap = replay_overlap
        """A RESUME replays this many dispatches the client already had (a server that replays too much)."""
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.connections: list[MiniConnection] = []
        self.session_id: str | None = None
        self.sessions = 0
        self.seq = 0
        self.events: list[tuple[int, str, typing.Any]] = []
        self.live: MiniConnection | None = None
        self._stop = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    async def __aenter__(self) -> MiniGateway:
        app = web.Application()
        app.router.add_get("/", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._stop.set()
        for connection in self.connections:
            if connection.ws is not None and not connection.ws.closed:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(connection.ws.close(code=1001), 1.0)
        assert self._runner is not None
        await self._runner.cleanup()

    async def wait_for_connection(self, index: int) -> MiniConnection:
        await wait_until(lambda: len(self.connections) > index, f"mini gateway connection {index}")
        return self.connections[index]

    async def _send(self, connection: MiniConnection, payload: dict[str, typing.Any]) -> None:
        assert connection.ws is not None
        with contextlib.suppress(ConnectionError, RuntimeError):
            await connection.ws.send_str(orjson.dumps(payload).decode())

    async def dispatch(self, name: str, data: typing.Any) -> None:
        self.seq += 1
        self.events.append((self.seq, name, data))
        live = self.live
        if live is not None and live.authenticated and live.ws is not None and not live.ws.closed:
            await self._send(live, {"op": 0, "s": self.seq, "t": name, "d": data})

    async def send_invalid_session(self, connection: MiniConnection) -> None:
        self.session_id = None
        connection.authenticated = False
        await self._send(connection, {"op": 9, "s": None, "t": None, "d": False})

    async def server_close(self, connection: MiniConnection, code: int) -> None:
        assert connection.ws is not None
        connection.authenticated = False
        with contextlib.suppress(Exception):
            await asyncio.wait_for(connection.ws.close(code=code), TIMEOUT)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        index = len(self.connections)
        behaviour = self.script[index] if index < len(self.script) else "normal"
        connection = MiniConnection(index, behaviour)
        self.connections.append(connection)
        try:
            if behaviour == "hang_http":
                await self._hang()
                return web.Response(status=503)
            if behaviour == "refuse":
                return web.Response(status=503, text="try again later")
            ws = web.WebSocketResponse(autoclose=False, autoping=False, timeout=1.0)
            await ws.prepare(request)
            connection.ws = ws
            if isinstance(behaviour, dict):
                await self._send(connection, behaviour)
            elif isinstance(behaviour, str) and behaviour.startswith("raw:"):
                with contextlib.suppress(ConnectionError, RuntimeError):
                    await ws.send_str(behaviour[4:])
            elif behaviour != "no_hello":
                hello = {"op": 10, "s": None, "t": None, "d": {"heartbeat_interval": self.heartbeat_interval_ms}}
                await self._send(connection, hello)
            await self._read_loop(connection, ws)
            return ws
        finally:
            connection.done.set()

    async def _hang(self) -> None:
        # Not asyncio.wait_for: it would wrap the wait in a task that looks like a client's.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(30):
                await self._stop.wait()

    async def _read_loop(self, connection: MiniConnection, ws: web.WebSocketResponse) -> None:
        while True:
            message = await ws.receive()
            if message.type == web.WSMsgType.TEXT:
                payload = orjson.loads(message.data)
                connection.received.append(payload)
                await self._on_payload(connection, payload)
            elif message.type == web.WSMsgType.PONG:
                connection.pongs.append(bytes(message.data))
            elif message.type == web.WSMsgType.PING:
                await ws.pong(message.data)
            elif message.type == web.WSMsgType.CLOSE:
                connection.close_code = int(message.data)
                with contextlib.suppress(Exception):
                    await ws.close(code=1000)
                return
            elif message.type in {web.WSMsgType.CLOSING, web.WSMsgType.CLOSED, web.WSMsgType.ERROR}:
                # Our own close (server_close) or a dropped client: aiohttp read the client's close code.
                connection.close_code = ws.close_code if connection.close_code is None else connection.close_code
                return

    async def _on_payload(self, connection: MiniConnection, payload: dict[str, typing.Any]) -> None:
        op = payload.get("op")
        if op == 1:
            await self._send(connection, {"op": 11, "s": None, "t": None, "d": None})
        elif connection.behaviour in {"silent", "no_hello"}:
            return
        elif op == 2:
            self.sessions += 1
            self.session_id = f"mini-session-{self.sessions}"
            self.seq = 0
            self.events = []
            self.live = connection
            connection.authenticated = True
            self.seq = 1
            ready = {
                "v": 10,
                "session_id": self.session_id,
                "resume_gateway_url": self.resume_url or self.url,
                "user": {"id": "1000000000000000001", "username": "mini", "discriminator": "0"},
                "guilds": [],
            }
            await self._send(connection, {"op": 0, "s": 1, "t": "READY", "d": ready})
        elif op == 6:
            d = payload["d"]
            if d.get("session_id") != self.session_id or not 0 <= d.get("seq", -1) <= self.seq:
                await self._send(connection, {"op": 9, "s": None, "t": None, "d": False})
                return
            self.live = connection
            connection.authenticated = True
            replay = [event for event in self.events if event[0] > d["seq"] - self.replay_overlap]
            for seq, name, data in replay:
                await self._send(connection, {"op": 0, "s": seq, "t": name, "d": data})
            self.seq += 1
            await self._send(connection, {"op": 0, "s": self.seq, "t": "RESUMED", "d": {}})


# -- bad input -------------------------------------------------------------------------------------

_HB_ACK: typing.Final = b'{"op":11,"s":null,"t":null,"d":null}'
_BIG_SEQ_DISPATCH: typing.Final = b'"t":"MESSAGE_CREATE","s":99,"d":{"k":99}'

BAD_INPUT: typing.Final[list[tuple[str, str | None, bytes, bool, str]]] = [
    # (id, compression, message, binary, part of the error message)
    ("zlib-stream corrupt", ZLIB, b"\xff" * 8 + SUFFIX, True, "zlib-stream: corrupt"),
    ("zstd-stream corrupt", ZSTD, b"\xff" * 32, True, "zstd-stream: corrupt"),
    ("payload zlib corrupt", PAYLOAD, b"\xff" * 16, True, "payload zlib: corrupt"),
    ("payload zlib truncated", PAYLOAD, zlib.compress(_HB_ACK)[:-6], True, "truncated"),
    ("payload zlib invalid JSON", PAYLOAD, zlib.compress(b'{"op":11,'), True, "invalid JSON"),
    ("truncated message", None, b'{"op":0,' + _BIG_SEQ_DISPATCH[:20], False, "invalid JSON"),
    ("invalid JSON", None, b"{op: 11}", False, "invalid JSON"),
    ("empty message", None, b"", False, "invalid JSON"),
    ("not an object: array", None, b"[1, 2]", False, "expected a JSON object, got list"),
    ("not an object: number", None, b"11", False, "expected a JSON object, got int"),
    ("not an object: string", None, b'"op"', False, "expected a JSON object, got str"),
    ("not an object: null", None, b"null", False, "expected a JSON object, got NoneType"),
    ("missing op", None, b"{" + _BIG_SEQ_DISPATCH + b"}", False, "'op' must be an integer"),
    ("op is a string", None, b'{"op":"0",' + _BIG_SEQ_DISPATCH + b"}", False, "'op' must be an integer"),
    ("op is a float", None, b'{"op":0.0,' + _BIG_SEQ_DISPATCH + b"}", False, "'op' must be an integer"),
    ("op is a bool", None, b'{"op":false,' + _BIG_SEQ_DISPATCH + b"}", False, "'op' must be an integer"),
    ("s is a string", None, b'{"op":0,"t":"MESSAGE_CREATE","s":"99","d":{"k":99}}', False, "'s' must be"),
    ("s is a float", None, b'{"op":0,"t":"MESSAGE_CREATE","s":99.0,"d":{"k":99}}', False, "'s' must be"),
    ("s is a bool", None, b'{"op":0,"t":"MESSAGE_CREATE","s":true,"d":{"k":99}}', False, "'s' must be"),
    ("s beyond 64 bits", None, b'{"op":0,"t":"MESSAGE_CREATE","s":18446744073709551615,"d":{}}', False, "out of range"),
    ("t is a number", None, b'{"op":0,"t":5,"s":99,"d":{"k":99}}', False, "'t' must be a string"),
    ("t is missing", None, b'{"op":0,"s":99,"d":{"k":99}}', False, "'t' must be a string"),
    ("d is missing", None, b'{"op":0,"t":"MESSAGE_CREATE","s":99}', False, "has no 'd'"),
    ("BINARY where TEXT is expected", None, _HB_ACK, True, "received BINARY, expected TEXT"),
    ("TEXT where BINARY is expected (zlib)", ZLIB, _HB_ACK, False, "received TEXT, expected BINARY"),
    ("TEXT where BINARY is expected (zstd)", ZSTD, _HB_ACK, False, "received TEXT, expected BINARY"),
]


async def _expect_resume_after_fault(
    emulator: GatewayEmulator,
    shard: hikari_shard.GatewayShardImpl,
    recorder: Recorder,
    conn: EmulatedConnection,
    fault: Callable[[], typing.Awaitable[object]],
    *,
    close_code: int = 3000,
) -> None:
    """Inject ``fault`` on ``conn`` mid-stream; the shard closes it with ``close_code``, resumes, loses nothing."""
    for k in range(3):
        await emulator.dispatch("MESSAGE_CREATE", {"k": k})
    await wait_until(lambda: recorder.ids() == [0, 1, 2], "the first dispatches")
    next_index = len(emulator.connections)
    await fault()
    for k in range(3, 6):  # on the faulty connection (dropped by the shard) or stored: replayed on RESUME
        await emulator.dispatch("MESSAGE_CREATE", {"k": k})
    await conn.wait_closed(timeout=TIMEOUT)
    assert conn.close_code == close_code, f"the shard closed with {conn.close_code}, not {close_code}"
    new = await emulator.wait_for_connection(next_index, timeout=TIMEOUT)
    resume = await new.wait_for_op(6, timeout=TIMEOUT)
    assert conn.session is not None
    assert resume["d"]["session_id"] == conn.session.session_id
    await wait_until(lambda: recorder.count("RESUMED") == 1, "RESUMED")
    for k in range(6, 9):
        await emulator.dispatch("MESSAGE_CREATE", {"k": k})
    await wait_until(lambda: len(recorder.ids()) >= 9, "every dispatch after the fault")
    await asyncio.sleep(0.05)  # anything extra (a duplicate) would arrive now
    assert recorder.ids() == list(range(9))
    assert all(payload.get("op") != 2 for payload in new.received), "the shard identified instead of resuming"
    assert recorder.count("READY") == 1
    assert shard.is_alive
    assert shard.is_connected


@pytest.mark.parametrize(
    ("compression", "message", "binary", "error"),
    [pytest.param(*case[1:], id=case[0]) for case in BAD_INPUT],
)
async def test_bad_input_is_a_transport_error_then_resume(
    caplog: pytest.LogCaptureFixture, compression: str | None, message: bytes, binary: bool, error: str
) -> None:
    """A malformed message costs a reconnect, never the shard nor an event."""
    caplog.set_level(logging.INFO, logger="hikari.gateway")
    async with no_leaks(), GatewayEmulator(token=TOKEN, heartbeat_interval=30) as emulator:
        recorder = Recorder()
        shard = make_shard(emulator, manager=recorder, compression=compression)
        await asyncio.wait_for(shard.start(), TIMEOUT)
        try:
            conn = emulator.connections[-1]
            await _expect_resume_after_fault(
                emulator, shard, recorder, conn, lambda: conn.send_raw(message, binary=binary)
            )
        finally:
            await timed_close(shard)
        await assert_no_client_tasks("after close()")

    logged = transport_errors(caplog)
    assert len(logged) == 1, f"expected one GatewayTransportError in the log, got {logged}"
    assert error in str(logged[0])
    assert TOKEN not in caplog.text


@pytest.mark.parametrize("compression", [ZLIB, ZSTD, PAYLOAD, None])
async def test_decompressed_message_over_the_cap(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch, compression: str
) -> None:
    """A decompression bomb stops at the cap with a transport error, and the session resumes.

    The cap is ``GatewayShardImpl.max_message_size`` (64 MiB by default; a class attribute, so the
    constructor stays hikari's).  Here it is 64 KiB.
    """
    cap = 64 * 1024
    monkeypatch.setattr(hikari_shard.GatewayShardImpl, "max_message_size", cap)
    caplog.set_level(logging.INFO, logger="hikari.gateway")
    bomb = {"op": 0, "s": None, "t": "BOMB", "d": "a" * (4 * cap)}  # not stored in the session: no replay
    async with no_leaks(), GatewayEmulator(token=TOKEN, heartbeat_interval=30) as emulator:
        recorder = Recorder()
        shard = make_shard(emulator, manager=recorder, compression=compression)
        await asyncio.wait_for(shard.start(), TIMEOUT)
        try:
            conn = emulator.connections[-1]
            if compression == PAYLOAD:
                fault = conn.send_raw(zlib.compress(orjson.dumps(bomb), 9), binary=True)
            else:
                fault = conn.send_payload(bomb)
            # Uncompressed, the frame parser refuses it (aiohttp's reader in the pure build): the same
            # transport error and the same close code in both builds.
            await _expect_resume_after_fault(emulator, shard, recorder, conn, lambda: fault, close_code=3000)
        finally:
            await timed_close(shard)
    logged = transport_errors(caplog)
    assert len(logged) == 1, logged
    if compression is not None:
        assert f"more than the {cap} byte limit" in str(logged[0])
    assert recorder.count("BOMB") == 0


BAD_HELLOS: typing.Final[list[tuple[str, object]]] = [
    ("no d", {"op": 10}),
    ("d is null", {"op": 10, "d": None}),
    ("d is a list", {"op": 10, "d": [41250]}),
    ("no heartbeat_interval", {"op": 10, "d": {}}),
    ("heartbeat_interval null", {"op": 10, "d": {"heartbeat_interval": None}}),
    ("heartbeat_interval zero", {"op": 10, "d": {"heartbeat_interval": 0}}),
    ("heartbeat_interval negative", {"op": 10, "d": {"heartbeat_interval": -41250}}),
    ("heartbeat_interval a string", {"op": 10, "d": {"heartbeat_interval": "41250"}}),
    ("heartbeat_interval a bool", {"op": 10, "d": {"heartbeat_interval": True}}),
    ("heartbeat_interval huge", {"op": 10, "d": {"heartbeat_interval": 1e12}}),
    ("not HELLO first", {"op": 11, "d": None}),
    ("invalid JSON first", "raw:{hello"),
    ("not an object first", "raw:[10]"),
]


@pytest.mark.parametrize("hello", [pytest.param(hello, id=name) for name, hello in BAD_HELLOS])
async def test_hello_without_a_usable_interval(caplog: pytest.LogCaptureFixture, hello: object) -> None:
    """A broken HELLO on a reconnect is a transport error: close with 3000, reconnect, resume."""
    caplog.set_level(logging.INFO, logger="hikari.gateway")
    async with no_leaks(), MiniGateway(["normal", "normal", hello, "normal"]) as gateway:
        recorder = Recorder()
        shard = make_shard(gateway, manager=recorder, compression=None)
        await asyncio.wait_for(shard.start(), TIMEOUT)
        try:
            for k in range(3):
                await gateway.dispatch("MESSAGE_CREATE", {"k": k})
            await wait_until(lambda: recorder.ids() == [0, 1, 2], "the first dispatches")
            await gateway.server_close(gateway.connections[0], 4000)  # the next connection resumes...
            first_resume = await gateway.wait_for_connection(1)
            await wait_until(lambda: 6 in first_resume.ops(), "RESUME on connection 1")
            await wait_until(lambda: recorder.count("RESUMED") == 1, "RESUMED on connection 1")
            await gateway.server_close(first_resume, 4000)  # ... and the one after gets the bad HELLO
            for k in range(3, 6):  # while the shard is away: replayed on RESUME
                await gateway.dispatch("MESSAGE_CREATE", {"k": k})
            bad = await gateway.wait_for_connection(2)
            await asyncio.wait_for(bad.done.wait(), TIMEOUT)
            assert bad.close_code == 3000, bad.close_code
            assert bad.received == [], "nothing may be sent before a usable HELLO"
            good = await gateway.wait_for_connection(3)
            await wait_until(lambda: recorder.count("RESUMED") == 2, "RESUMED after the bad HELLO")
            assert good.ops()[:1] == [6], good.ops()
            for k in range(6, 9):
                await gateway.dispatch("MESSAGE_CREATE", {"k": k})
            await wait_until(lambda: len(recorder.ids()) >= 9, "every dispatch")
            await asyncio.sleep(0.05)
            assert recorder.ids() == list(range(9))
            assert shard.is_alive
        finally:
            await timed_close(shard)

    logged = transport_errors(caplog)
    assert len(logged) == 1, logged
    assert TOKEN not in caplog.text


async def test_reconnect_as_the_first_opcode_resumes(caplog: pytest.LogCaptureFixture) -> None:
    """RECONNECT instead of HELLO (a node restarting): close with a resumable code, then resume."""
    caplog.set_level(logging.INFO, logger="hikari.gateway")
    async with no_leaks(), MiniGateway(["normal", {"op": 7, "d": None}, "normal"]) as gateway:
        recorder = Recorder()
        shard = make_shard(gateway, manager=recorder, compression=None)
        await asyncio.wait_for(shard.start(), TIMEOUT)
        try:
            await gateway.dispatch("MESSAGE_CREATE", {"k": 0})
            await gateway.server_close(gateway.connections[0], 4000)
            await gateway.dispatch("MESSAGE_CREATE", {"k": 1})
            restarting = await gateway.wait_for_connection(1)
            await asyncio.wait_for(restarting.done.wait(), TIMEOUT)
            assert restarting.close_code == 3000
            await wait_until(lambda: recorder.count("RESUMED") == 1, "RESUMED")
            assert gateway.connections[2].ops()[:1] == [6]
            await gateway.dispatch("MESSAGE_CREATE", {"k": 2})
            await wait_until(lambda: len(recorder.ids()) >= 3, "every dispatch")
            assert recorder.ids() == [0, 1, 2]
        finally:
            await timed_close(shard)
    assert not transport_errors(caplog)


async def test_a_replay_of_dispatches_already_seen_is_dropped(caplog: pytest.LogCaptureFixture) -> None:
    """A server that replays too much on RESUME: what was delivered is not delivered again."""
    caplog.set_level(logging.DEBUG, logger="hikari.gateway")
    async with no_leaks(), MiniGateway(replay_overlap=4) as gateway:
        recorder = Recorder()
        shard = make_shard(gateway, manager=recorder, compression=None)
        await asyncio.wait_for(shard.start(), TIMEOUT)
        try:
            for k in range(5):
                await gateway.dispatch("MESSAGE_CREATE", {"k": k})
            await wait_until(lambda: len(recorder.ids()) == 5, "the first dispatches")
            await gateway.server_close(gateway.connections[0], 4000)
            for k in range(5, 8):
                await gateway.dispatch("MESSAGE_CREATE", {"k": k})
            await wait_until(lambda: recorder.count("RESUMED") == 1, "RESUMED")
            await gateway.dispatch("MESSAGE_CREATE", {"k": 8})
            await wait_until(lambda: len(recorder.ids()) >= 9, "every dispatch")
            await asyncio.sleep(0.05)
            assert recorder.ids() == list(range(9))
        finally:
            await timed_close(shard)
    dropped = [record for record in caplog.records if "already seen" in record.getMessage()]
    assert len(dropped) == 4


async def test_server_pings_are_answered() -> None:
    """A websocket ping from the server gets its pong (our reader queues it and the shard answers, in both builds)."""
    async with no_leaks(), MiniGateway() as gateway:
        recorder = Recorder()
        shard = make_shard(gateway, manager=recorder, compression=None)
        await asyncio.wait_for(shard.start(), TIMEOUT)
        try:
            connection = gateway.connections[0]
            assert connection.ws is not None
            for payload in (b"", b"ping-1", b"x" * 125):
                await connection.ws.ping(payload)
            await gateway.dispatch("MESSAGE_CREATE", {"k": 0})
            await wait_until(lambda: len(connection.pongs) == 3, "three pongs")
            assert connection.pongs == [b"", b"ping-1", b"x" * 125]
            await wait_until(lambda: recorder.ids() == [0], "the dispatch after the pings")
        finally:
            await timed_close(shard)


@pytest.mark.parametrize("code", [4004, 4010, 4011, 4012, 4013, 4014])
async def test_fatal_close_codes_stop_the_shard(code: int) -> None:
    """A fatal close mid-session ends the shard with the error (join() raises it); nothing keeps running."""
    async with no_leaks(), GatewayEmulator(token=TOKEN, heartbeat_interval=30) as emulator:
        shard = make_shard(emulator, compression=None)
        await asyncio.wait_for(shard.start(), TIMEOUT)
        try:
            await emulator.connections[-1].close(code, "fatal")
            with pytest.raises(errors.GatewayServerClosedConnectionError) as failure:
                await asyncio.wait_for(shard.join(), TIMEOUT)
            assert failure.value.code == code
            assert not failure.value.can_reconnect
            await asyncio.sleep(0.1)
            assert len(emulator.connections) == 1, "the shard reconnected after a fatal close code"
            assert emulator.connections[0].close_code == 3000
        finally:
            await timed_close(shard)
        await assert_no_client_tasks("after close()")


async def test_a_refused_resume_starts_a_new_session() -> None:
    """The server refuses the RESUME (INVALID_SESSION false): identify again, new events still arrive once."""
    async with no_leaks(), GatewayEmulator(token=TOKEN, heartbeat_interval=30) as emulator:
        recorder = Recorder()
        shard = make_shard(emulator, manager=recorder, compression=ZLIB)
        await asyncio.wait_for(shard.start(), TIMEOUT)
        try:
            await emulator.dispatch("MESSAGE_CREATE", {"k": 0})
            await wait_until(lambda: recorder.ids() == [0], "the first dispatch")
            conn = emulator.connections[-1]
            assert conn.session is not None
            conn.session.resumable = False  # the server lost the session
            await conn.drop()
            refused = await emulator.wait_for_connection(1)
            await refused.wait_for_op(6)
            await wait_until(lambda: recorder.count("READY") == 2 and shard.is_connected, "a new session")
            assert emulator.connections[-1].received[0]["op"] == 2
            await emulator.dispatch("MESSAGE_CREATE", {"k": 1})
            await wait_until(lambda: len(recorder.ids()) == 2, "the dispatch in the new session")
            assert recorder.ids() == [0, 1]
        finally:
            await timed_close(shard)


async def test_concurrent_closes_and_a_restart() -> None:
    """Two close() at once both return; the shard starts again afterwards and works."""
    async with no_leaks(), GatewayEmulator(token=TOKEN, heartbeat_interval=30) as emulator:
        recorder = Recorder()
        shard = make_shard(emulator, manager=recorder, compression=None)
        await asyncio.wait_for(shard.start(), TIMEOUT)
        await asyncio.wait_for(asyncio.gather(shard.close(), shard.close()), PROMPT)
        assert not shard.is_alive
        await assert_no_client_tasks("after two close()")
        await asyncio.wait_for(shard.start(), TIMEOUT)
        try:
            await emulator.dispatch("MESSAGE_CREATE", {"k": 1})
            await wait_until(lambda: recorder.ids() == [1], "a dispatch after the restart")
        finally:
            await timed_close(shard)
        await assert_no_client_tasks("after close()")


async def test_close_releases_commands_waiting_on_the_rate_limit() -> None:
    """A command stuck behind the outgoing rate limit is released by close() with ComponentStateConflictError."""
    async with no_leaks(), GatewayEmulator(token=TOKEN, heartbeat_interval=30) as emulator:
        shard = make_shard(emulator, compression=None)
        await asyncio.wait_for(shard.start(), TIMEOUT)
        try:
            sent, sending = await fill_command_limit(shard)
            assert sent == 116  # IDENTIFY took one slot; 3 are kept for heartbeats: 116 more go at once
            await asyncio.sleep(0.05)
            assert not sending.done()
        finally:
            await timed_close(shard)
        with pytest.raises(errors.ComponentStateConflictError):
            await asyncio.wait_for(sending, PROMPT)
        await assert_no_client_tasks("after close()")


async def test_an_unreachable_resume_url_falls_back_to_the_gateway_url() -> None:
    """READY names a resume URL nobody listens on: the shard resumes through the gateway URL instead."""
    with socket.socket() as unused:  # a port that refuses connections
        unused.bind(("127.0.0.1", 0))
        dead_url = f"ws://127.0.0.1:{unused.getsockname()[1]}"
    async with no_leaks(), MiniGateway(resume_url=dead_url) as gateway:
        recorder = Recorder()
        shard = make_shard(gateway, manager=recorder, compression=None)
        await asyncio.wait_for(shard.start(), TIMEOUT)
        try:
            assert shard.resume_gateway_url == dead_url
            await gateway.dispatch("MESSAGE_CREATE", {"k": 0})
            await gateway.server_close(gateway.connections[0], 4000)
            await gateway.dispatch("MESSAGE_CREATE", {"k": 1})
            await wait_until(lambda: recorder.count("RESUMED") == 1, "RESUMED through the gateway URL")
            assert gateway.connections[1].ops()[:1] == [6], "the session was resumed, not replaced"
            await wait_until(lambda: len(recorder.ids()) == 2, "both dispatches")
            assert recorder.ids() == [0, 1]
        finally:
            await timed_close(shard)


# -- chaos -----------------------------------------------------------------------------------------

RESUMABLE_FAULTS: typing.Final = (
    "drop",
    "zombie",
    "reconnect",
    "invalid_session_resumable",
    *(f"close_{code}" for code in (4000, 4001, 4002, 4003, 4005, 4008, 1000, 1001)),
)
NEW_SESSION_FAULTS: typing.Final = ("invalid_session", "close_4007", "close_4009")
"""After these the session is gone: its events must all have been delivered before (Discord replays none)."""


async def _inject(kind: str, conn: EmulatedConnection) -> None:
    if kind == "drop":
        await conn.drop()
    elif kind == "zombie":
        conn.ack_heartbeats = False  # the shard must notice the missing HEARTBEAT_ACK and reconnect
    elif kind == "reconnect":
        await conn.send_reconnect()
    elif kind == "invalid_session_resumable":
        await conn.send_invalid_session(True)
    elif kind == "invalid_session":
        await conn.send_invalid_session(False)
    else:
        await conn.close(int(kind.removeprefix("close_")), "chaos")


def _produced(emulator: GatewayEmulator) -> list[int]:
    """Every MESSAGE_CREATE each session produced, session after session (they never overlap here)."""
    return [
        data["k"]
        for session in emulator.sessions.values()
        for _, name, data in session.events
        if name == "MESSAGE_CREATE"
    ]


def _recovered(emulator: GatewayEmulator, shard: hikari_shard.GatewayShardImpl) -> bool:
    conn = emulator.connections[-1]
    return (
        shard.is_connected
        and not conn.closed
        and conn.server_close_code is None
        and conn.session is not None
        and conn.session.connection is conn
    )


async def _chaos(
    caplog: pytest.LogCaptureFixture, *, compression: str | None, seed: int, rounds: int
) -> dict[str, typing.Any]:
    caplog.set_level(logging.DEBUG, logger="hikari.gateway")
    rng = random.Random(seed)
    faults = [kind for kind in (*RESUMABLE_FAULTS, *NEW_SESSION_FAULTS) for _ in range(rounds)]
    rng.shuffle(faults)
    injected: collections.Counter[str] = collections.Counter()
    missed: collections.Counter[str] = collections.Counter()
    counter = itertools.count()
    started = time.monotonic()

    async def burst(size: int) -> None:
        for _ in range(size):
            await emulator.dispatch("MESSAGE_CREATE", {"k": next(counter)})

    # zlib-stream messages split into websocket messages of 64 bytes: faults land mid-message too.
    split = 64 if compression == ZLIB else None
    async with no_leaks(), GatewayEmulator(token=TOKEN, heartbeat_interval=0.2, split_frames=split) as emulator:
        recorder = Recorder()
        shard = make_shard(emulator, manager=recorder, compression=compression)
        await asyncio.wait_for(shard.start(), TIMEOUT)
        try:
            for kind in faults:
                if kind in NEW_SESSION_FAULTS:
                    # Only once everything of the session was delivered and the shard is connected.
                    await burst(rng.randint(0, 20))
                    produced = len(_produced(emulator))
                    await wait_until(lambda n=produced: len(recorder.raw) and len(recorder.ids()) >= n, "catch-up")
                    await wait_until(lambda: _recovered(emulator, shard), "a connected shard")
                    sessions = len(emulator.sessions)
                    try:
                        await _inject(kind, emulator.connections[-1])
                    except ConnectionError:  # the connection died on its own just now (a zombie, say)
                        missed[kind] += 1
                        continue
                    injected[kind] += 1
                    await wait_until(
                        lambda n=sessions: len(emulator.sessions) > n and _recovered(emulator, shard), "a new session"
                    )
                    continue

                # A resumable fault at a random moment: during a burst, mid-handshake, mid-replay...
                dispatching = asyncio.create_task(burst(rng.randint(0, 40)))
                await asyncio.sleep(rng.choice((0, 0, 0.001, 0.005, 0.02)))
                conn = emulator.connections[-1]
                next_index = len(emulator.connections)
                if conn.closed or conn.server_close_code is not None:
                    missed[kind] += 1  # the shard is between connections right now
                else:
                    try:
                        await _inject(kind, conn)
                    except ConnectionError:  # it closed between the check and the fault
                        missed[kind] += 1
                    else:
                        injected[kind] += 1
                await dispatching
                if rng.random() < 0.5:
                    await wait_until(lambda: _recovered(emulator, shard), f"recovery after {kind}")
                else:  # only until the next connection is accepted: the next fault may hit its handshake
                    await emulator.wait_for_connection(next_index, timeout=TIMEOUT)

            await burst(50)
            expected = _produced(emulator)
            await wait_until(lambda: len(recorder.ids()) >= len(expected), "the last dispatches")
            await asyncio.sleep(0.1)  # a duplicate would show up now
            delivered = recorder.ids()
            assert len(delivered) == len(set(delivered)), "a dispatch was delivered twice"
            assert delivered == expected, "dispatches lost or out of order"
            assert recorder.count("READY") == len(emulator.sessions)
            assert shard.is_alive
            assert shard.is_connected
        finally:
            await timed_close(shard)
        await assert_no_client_tasks("after close()")

    lost_connections = [index for index, conn in enumerate(emulator.connections) if conn.close_code in {1000, 1001}]
    assert not lost_connections[:-1], "the shard ended a session by closing with 1000/1001 before close()"
    assert TOKEN not in caplog.text
    return {
        "seed": seed,
        "compression": compression,
        "implementation": _fast.IMPLEMENTATION,
        "faults injected": dict(sorted(injected.items())),
        "faults skipped (no live connection at that moment)": dict(sorted(missed.items())),
        "connections": len(emulator.connections),
        "sessions": len(emulator.sessions),
        "resumes": recorder.count("RESUMED"),
        "dispatches delivered": len(delivered),
        "duplicates dropped by the shard": sum("already seen" in record.getMessage() for record in caplog.records),
        "seconds": round(time.monotonic() - started, 2),
    }


@pytest.mark.parametrize("compression", [ZLIB, None])
async def test_chaos(caplog: pytest.LogCaptureFixture, compression: str | None) -> None:
    """Dispatches keep flowing while the server drops, zombies, reconnects, invalidates and closes.

    Every dispatch of every session arrives exactly once and in order, the shard ends alive, and
    close() leaves no task or file descriptor behind.
    """
    seed = int(os.environ.get("HIKARI_SHARD_CHAOS_SEED", "20240611"))
    report = await _chaos(caplog, compression=compression, seed=seed, rounds=3)
    print("\nchaos:", json.dumps(report))


@pytest.mark.slow
@slow_soak
@pytest.mark.parametrize("compression", COMPRESSIONS)
async def test_chaos_long(caplog: pytest.LogCaptureFixture, compression: str | None) -> None:
    """The chaos run, longer, on every compression."""
    seed = int(os.environ.get("HIKARI_SHARD_CHAOS_SEED", str(random.randrange(1 << 32))))
    rounds = int(os.environ.get("HIKARI_SHARD_CHAOS_ROUNDS", "8"))
    report = await _chaos(caplog, compression=compression, seed=seed, rounds=rounds)
    print("\nchaos:", json.dumps(report))


# -- close() in every phase ------------------------------------------------------------------------


class _Greatest(random.Random):
    """``uniform(a, b)`` is always ``b``: a backoff or INVALID_SESSION wait of exactly its upper bound."""

    def uniform(self, a: float, b: float) -> float:
        return b


@pytest.mark.parametrize("behaviour", ["hang_http", "no_hello", "silent"])
async def test_cancelling_start_during_the_handshake(behaviour: str) -> None:
    """start() is waiting for a server that never gets anywhere: cancelling it stops everything at once.

    (Like hikari, close() is only for a started shard; a pending start() is cancelled instead.)
    """
    async with no_leaks(), MiniGateway([behaviour]) as gateway:
        shard = make_shard(gateway, compression=None)
        starting = asyncio.create_task(shard.start())
        connection = await gateway.wait_for_connection(0)
        if behaviour == "silent":
            await wait_until(lambda: 2 in connection.ops(), "IDENTIFY")
        elif behaviour == "no_hello":
            await wait_until(lambda: connection.ws is not None, "the upgrade")
        await asyncio.sleep(0.05)
        assert not starting.done()
        began = time.monotonic()
        starting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(starting, PROMPT * 3)
        assert time.monotonic() - began < PROMPT
        assert not shard.is_alive
        await assert_no_client_tasks("after start() was cancelled")
        with pytest.raises(errors.ComponentStateConflictError):
            await shard.close()


CLOSE_PHASES: typing.Final = [
    "connecting",
    "waiting for HELLO",
    "identifying",
    "resuming",
    "backing off",
    "invalid session wait",
]


@pytest.mark.parametrize("phase", CLOSE_PHASES)
async def test_close_during_a_reconnect(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch, phase: str
) -> None:
    """Wherever a reconnect is stuck, close() returns within 2 s and leaves nothing running."""
    caplog.set_level(logging.INFO, logger="hikari.gateway")
    second = {
        "connecting": "hang_http",
        "waiting for HELLO": "no_hello",
        "identifying": "silent",
        "resuming": "silent",
        "backing off": "refuse",
        "invalid session wait": "normal",
    }[phase]
    if phase == "backing off":
        monkeypatch.setattr(shard_module, "random", _Greatest())
        monkeypatch.setattr(shard_module, "_BACKOFF_BASE", 100.0)
        monkeypatch.setattr(shard_module, "_BACKOFF_CAP", 100.0)
    if phase == "invalid session wait":
        monkeypatch.setattr(shard_module, "_INVALID_SESSION_WAIT", (100.0, 100.0))

    async with no_leaks(), MiniGateway(["normal", second, second]) as gateway:
        shard = make_shard(gateway, compression=None)
        await asyncio.wait_for(shard.start(), TIMEOUT)
        first = gateway.connections[0]
        try:
            if phase == "invalid session wait":
                await gateway.send_invalid_session(first)
                await wait_until(lambda: "waiting 100.00s before reconnecting" in caplog.text, "the wait")
            else:
                await gateway.server_close(first, 4009 if phase == "identifying" else 4000)
                stuck = await gateway.wait_for_connection(1)
                if phase == "waiting for HELLO":
                    await wait_until(lambda: stuck.ws is not None, "the upgrade")
                elif phase == "identifying":
                    await wait_until(lambda: 2 in stuck.ops(), "IDENTIFY")
                elif phase == "resuming":
                    await wait_until(lambda: 6 in stuck.ops(), "RESUME")
                elif phase == "backing off":
                    await wait_until(lambda: "backing off reconnecting for 100.00s" in caplog.text, "the backoff")
            await asyncio.sleep(0.05)
            assert shard.is_alive
            assert not shard.is_connected
        finally:
            await timed_close(shard)
        assert not shard.is_alive
        await assert_no_client_tasks("after close()")
        if phase in {"waiting for HELLO", "identifying", "resuming"}:
            await asyncio.wait_for(stuck.done.wait(), TIMEOUT)
            assert stuck.close_code == 1001, "close() must end the session (1001) even mid-handshake"


@pytest.mark.parametrize("compression", [ZLIB, None])
async def test_close_at_random_moments_of_a_reconnect(compression: str | None) -> None:
    """A fault, then close() a random few milliseconds later (mid-close, mid-connect, mid-handshake...)."""
    rng = random.Random(int(os.environ.get("HIKARI_SHARD_CHAOS_SEED", "7")))
    rounds = 120 if SOAK else 24
    kinds = ("drop", "reconnect", "invalid_session_resumable", "close_4000", "close_4009", "invalid_session")
    async with no_leaks(), GatewayEmulator(token=TOKEN, heartbeat_interval=0.2) as emulator:
        for _ in range(rounds):
            shard = make_shard(emulator, compression=compression)
            await asyncio.wait_for(shard.start(), TIMEOUT)
            conn = emulator.connections[-1]
            fault = asyncio.ensure_future(_inject(rng.choice(kinds), conn))
            await asyncio.sleep(rng.choice((0, 0, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02)))
            await timed_close(shard)
            await assert_no_client_tasks("after close()")
            with contextlib.suppress(ConnectionError):
                await asyncio.wait_for(fault, TIMEOUT)


@pytest.mark.parametrize("compression", [ZLIB, None])
async def test_close_while_a_lost_connection_is_torn_down(compression: str | None) -> None:
    """close() lands while the shard tears down a connection it just lost: the shard must still stop.

    A bot shutting down (SIGINT) just as its connection drops would otherwise hang in close() while
    the shard reconnects.  The race is made deterministic by calling close() at the first loop
    iteration after the shard started the teardown (its router is closed first thing).
    """
    async with no_leaks(), GatewayEmulator(token=TOKEN, heartbeat_interval=30) as emulator:
        shard = make_shard(emulator, compression=compression)
        await asyncio.wait_for(shard.start(), TIMEOUT)
        keep_alive = shard._keep_alive_task
        assert keep_alive is not None

        async def close_at_teardown() -> None:
            for _ in range(100_000):  # bounded: the teardown starts within a few iterations of the drop
                router = shard._router
                if router is not None and router.closed:
                    await shard.close()  # runs close()'s body right now, not an iteration later
                    return
                await asyncio.sleep(0)
            pytest.fail("the teardown never started")

        closing = asyncio.create_task(close_at_teardown())
        await emulator.connections[-1].drop()
        done, _ = await asyncio.wait([closing], timeout=PROMPT)
        try:
            assert done, "close() hangs: the shard swallowed its cancellation and reconnected"
            closing.result()
            assert not shard.is_alive
            assert len(emulator.connections) == 1, "the shard reconnected after close()"
        finally:
            if not done:  # stop the runaway shard so the test leaves nothing behind
                keep_alive.cancel()
                await asyncio.wait([closing], timeout=TIMEOUT)
        await assert_no_client_tasks("after close()")


async def test_close_mid_stream() -> None:
    """close() while dispatches pour in: prompt, the session ended with 1001, nothing left running."""
    async with no_leaks(), GatewayEmulator(token=TOKEN, heartbeat_interval=0.5) as emulator:
        recorder = Recorder()
        shard = make_shard(emulator, manager=recorder, compression=ZLIB)
        await asyncio.wait_for(shard.start(), TIMEOUT)
        counter = itertools.count()

        async def stream() -> None:
            for _ in range(1_000):  # bounded; with no client attached dispatch_many never yields, so sleep(0)
                await emulator.dispatch_many(("MESSAGE_CREATE", {"k": next(counter)}) for _ in range(200))
                await asyncio.sleep(0)

        streaming = asyncio.create_task(stream())
        try:
            await wait_until(lambda: len(recorder.raw) > 2_000, "the stream")
            assert not streaming.done()
        finally:
            await timed_close(shard)
            streaming.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await streaming
        await assert_no_client_tasks("after close()")
        conn = emulator.connections[-1]
        await conn.wait_closed(timeout=TIMEOUT)
        assert conn.close_code == 1001
        delivered = recorder.ids()
        assert delivered == list(range(len(delivered))), "a prefix of the stream, in order, once"


class RawPeer:
    """A raw TCP "gateway" that upgrades by hand and then writes exactly what a test needs.

    * ``split=None`` (a deaf peer): HELLO and READY, then it never reads again, so the client's close
      frame is never answered (aiohttp's own server would answer it even with a handler that stopped
      reading).  A half-dead connection.
    * ``split=n``: HELLO and the first ``n`` bytes of a HEARTBEAT request (op 1, which Discord may
      send at any time) in one write, the rest of it 0.1 s later; then it reads the client's frames,
      answers IDENTIFY with READY and records every opcode the client sent.
    """

    def __init__(self, split: int | None = None) -> None:
        self.split = split
        self.writers: list[asyncio.StreamWriter] = []
        self.server: asyncio.Server | None = None
        self.port = 0
        self.connections = 0
        self.client_ops: list[int] = []
        self.close_codes: list[int] = []

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    async def __aenter__(self) -> RawPeer:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        for writer in self.writers:
            writer.close()
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()

    @staticmethod
    def _frame(payload: dict[str, typing.Any]) -> bytes:
        return encode_frame(1, orjson.dumps(payload))

    @staticmethod
    async def _read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
        head = await reader.readexactly(2)
        length = head[1] & 0x7F
        if length == 126:
            length = int.from_bytes(await reader.readexactly(2), "big")
        elif length == 127:
            length = int.from_bytes(await reader.readexactly(8), "big")
        mask = await reader.readexactly(4) if head[1] & 0x80 else b"\0\0\0\0"
        masked = await reader.readexactly(length)
        return head[0] & 0x0F, bytes(byte ^ mask[index % 4] for index, byte in enumerate(masked))

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.writers.append(writer)
        request = await reader.readuntil(b"\r\n\r\n")
        key = next(
            line.split(b":", 1)[1].strip()
            for line in request.split(b"\r\n")
            if line.lower().startswith(b"sec-websocket-key:")
        )
        accept = base64.b64encode(hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())
        upgrade = (
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n"
        )
        hello = self._frame({"op": 10, "d": {"heartbeat_interval": 45_000}})
        ready_data = {
            "session_id": "raw",
            "resume_gateway_url": self.url,
            "user": {"id": "1000000000000000001", "username": "raw", "discriminator": "0"},
        }
        ready = self._frame({"op": 0, "s": 1, "t": "READY", "d": ready_data})
        if self.split is None:
            writer.write(upgrade + hello + ready)
            return  # ... and nothing is ever read again.

        heartbeat_request = self._frame({"op": 1, "d": None})
        writer.write(upgrade + hello + heartbeat_request[: self.split])
        await writer.drain()
        await asyncio.sleep(0.1)
        writer.write(heartbeat_request[self.split :])
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:
                opcode, data = await self._read_frame(reader)
                if opcode == 8:
                    self.close_codes.append(int.from_bytes(data[:2], "big"))
                    writer.close()
                    return
                op = orjson.loads(data)["op"]
                self.client_ops.append(op)
                if op == 2:
                    writer.write(ready)


async def test_close_with_a_peer_that_never_answers_the_close_frame() -> None:
    """A peer that stopped reading (a half-dead TCP connection): close() does not wait for its reply.

    (hikari 2.7 would wait up to 5 s for the peer's close frame.)
    """
    async with no_leaks(), RawPeer() as peer:
        shard = make_shard(peer, compression=None)
        await asyncio.wait_for(shard.start(), TIMEOUT)
        await timed_close(shard)
        await assert_no_client_tasks("after close()")


@pytest.mark.parametrize("split", [1, 5])
async def test_a_frame_split_right_after_hello(caplog: pytest.LogCaptureFixture, split: int) -> None:
    """HELLO, then a HEARTBEAT request whose bytes arrive in two TCP reads: nothing is lost or misread."""
    caplog.set_level(logging.INFO, logger="hikari.gateway")
    async with no_leaks(), RawPeer(split=split) as peer:
        shard = make_shard(peer, compression=None)
        try:
            await asyncio.wait_for(shard.start(), 2)
            await wait_until(lambda: 1 in peer.client_ops, "the heartbeat asked for")
            assert peer.connections == 1
            assert not transport_errors(caplog)
        finally:
            if shard.is_alive:
                await timed_close(shard)


# -- soak ------------------------------------------------------------------------------------------

SOAK_FAULTS: typing.Final = ("drop", "reconnect", "close_4000", "invalid_session_resumable")


async def _soak(*, total: int, chunk: int, compression: str | None) -> dict[str, typing.Any]:
    faults = itertools.cycle(SOAK_FAULTS)
    checkpoints: list[dict[str, int]] = []
    started = time.monotonic()
    async with no_leaks(), GatewayEmulator(token=TOKEN, heartbeat_interval=5) as emulator:
        recorder = CountingRecorder()
        shard = make_shard(emulator, manager=recorder, compression=compression)
        await asyncio.wait_for(shard.start(), TIMEOUT)
        try:
            sent = 0
            while sent < total:
                end = min(sent + chunk, total)
                for first in range(sent, end, 1_000):
                    await emulator.dispatch_many(
                        ("MESSAGE_CREATE", {"k": k, "content": "soak"}) for k in range(first, min(first + 1_000, end))
                    )
                sent = end
                await wait_until(
                    lambda n=sent: recorder.delivered >= n, f"{sent} dispatches", timeout=TIMEOUT + chunk / 2_000
                )
                # The emulator runs in this process and keeps every dispatch and every connection (with
                # its compressor): let it forget what was delivered and the connections that are over,
                # so the process's memory is the shard's.
                for session in emulator.sessions.values():
                    session.events.clear()
                del emulator.connections[:-1]
                await asyncio.sleep(0.05)  # the previous connection's socket is closed by now
                checkpoints.append(
                    {
                        "dispatched": sent,
                        "rss": live_rss_bytes(),
                        "objects": len(gc.get_objects()),
                        "tasks": len(helpers.client_tasks(server_files=(__file__,))),
                        "fds": len(open_fds()),
                    }
                )
                if sent < total:
                    await _inject(next(faults), emulator.connections[-1])
                    await wait_until(lambda: _recovered(emulator, shard), "recovery")
            assert recorder.out_of_order == []
            assert recorder.delivered == total
            assert recorder.other["READY"] == 1, "the session was never lost"
            assert shard.is_alive
        finally:
            await timed_close(shard)
        await assert_no_client_tasks("after close()")

    # The first checkpoint is the warm-up.  A leak grows with the dispatches, so the highest RSS of the
    # second half of the run is compared with the highest of the first half: allocator high-water
    # steps (a burst that needed more buffer once) do not repeat, a leak does.
    steady = checkpoints[1:] if len(checkpoints) > 2 else checkpoints
    first, second = steady[: len(steady) // 2] or steady, steady[len(steady) // 2 :]
    mib = 2**20
    report = {
        "implementation": _fast.IMPLEMENTATION,
        "compression": compression,
        "dispatches": total,
        "reconnects": len(checkpoints) - 1,
        "resumes": recorder.other["RESUMED"],
        "rss per checkpoint MiB": [round(checkpoint["rss"] / mib, 1) for checkpoint in checkpoints],
        "rss growth MiB": round((max(c["rss"] for c in second) - max(c["rss"] for c in first)) / mib, 1),
        "python objects growth": steady[-1]["objects"] - steady[0]["objects"],
        "tasks": sorted({checkpoint["tasks"] for checkpoint in checkpoints}),
        "fds": sorted({checkpoint["fds"] for checkpoint in checkpoints}),
        "dispatches per second": round(total / (time.monotonic() - started)),
    }
    print("\nsoak:", json.dumps(report))
    assert len(report["tasks"]) == 1, f"the number of running tasks changed: {checkpoints}"
    assert len(report["fds"]) == 1, f"the number of open file descriptors changed: {checkpoints}"
    assert report["python objects growth"] < 2_000, f"python objects pile up: {checkpoints}"
    return report


@pytest.mark.parametrize("compression", [ZLIB, None])
async def test_soak_short(compression: str | None) -> None:
    """20 000 dispatches, 3 reconnects: every one delivered in order, tasks and fds constant, RSS flat-ish."""
    report = await _soak(total=20_000, chunk=5_000, compression=compression)
    assert report["rss growth MiB"] < 8


@pytest.mark.slow
@slow_soak
@pytest.mark.parametrize("compression", COMPRESSIONS)
async def test_soak(compression: str | None) -> None:
    """``HIKARI_SHARD_SOAK_DISPATCHES`` (default 1 000 000) dispatches, a reconnect every ``..._CHUNK``."""
    total = int(os.environ.get("HIKARI_SHARD_SOAK_DISPATCHES", "1000000"))
    chunk = int(os.environ.get("HIKARI_SHARD_SOAK_CHUNK", "100000"))
    report = await _soak(total=total, chunk=chunk, compression=compression)
    assert report["rss growth MiB"] < float(os.environ.get("HIKARI_SHARD_SOAK_RSS_MIB", "16"))


# -- secrets ---------------------------------------------------------------------------------------


async def test_the_token_never_leaks(caplog: pytest.LogCaptureFixture) -> None:
    """Not in logs at any level (TRACE payload logs included), exceptions, reprs or recorded traffic."""
    caplog.set_level(1)
    for name in ("hikari", "hikari.gateway", "hikari_shard", "aiohttp", "asyncio"):
        caplog.set_level(1, logger=name)
    wrong_token = make_bot_token()
    captured: list[str] = []
    async with no_leaks(), GatewayEmulator(token=TOKEN, heartbeat_interval=0.2) as emulator:
        recorder = Recorder()
        shard = make_shard(emulator, manager=recorder, compression=ZLIB)
        await asyncio.wait_for(shard.start(), TIMEOUT)
        try:
            captured += [repr(shard), str(shard)]
            # A payload that quotes the token (a user pasting it into a message): logged redacted.
            await emulator.dispatch("MESSAGE_CREATE", {"k": 0, "content": f"my token is {TOKEN}"})
            await shard.update_presence(status=hikari.Status.IDLE)
            await wait_until(lambda: recorder.ids() == [0], "the dispatch")
            # RESUME (carries the token) after a drop, a transport error, a zombie...
            for fault in ("drop", "corrupt", "zombie"):
                resumed = recorder.count("RESUMED")
                conn = emulator.connections[-1]
                if fault == "drop":
                    await conn.drop()
                elif fault == "corrupt":
                    await conn.send_raw(b"\xff" * 8 + SUFFIX)
                else:
                    conn.ack_heartbeats = False
                await wait_until(lambda n=resumed: recorder.count("RESUMED") > n, f"RESUMED after {fault}")
            # ... and a new IDENTIFY (carries it too) after INVALID_SESSION.
            await emulator.connections[-1].send_invalid_session(False)
            await wait_until(lambda: recorder.count("READY") == 2, "a new session")
            captured += [repr(shard), str(shard)]
        finally:
            await timed_close(shard)

        # A wrong token: the fatal 4004 must not quote it either.
        bad = make_shard(emulator, token=wrong_token, compression=None)
        with pytest.raises(errors.GatewayServerClosedConnectionError) as failure:
            await asyncio.wait_for(bad.start(), TIMEOUT)
        assert failure.value.code == 4004
        captured += [str(failure.value), repr(failure.value), repr(bad)]
        captured.append("".join(traceback.format_exception(failure.value)))

        for conn in emulator.connections:
            captured.append(json.dumps(conn.received))
            for payload in conn.received:
                if payload.get("op") in {2, 6}:
                    assert payload["d"]["token"] == REDACTED

    captured.append(caplog.text)
    for record in caplog.records:
        captured += [record.getMessage(), repr(record.args), record.exc_text or ""]
        if record.exc_info and record.exc_info[1] is not None:
            captured += [str(record.exc_info[1]), repr(record.exc_info[1])]
    everything = "\n".join(captured)
    for secret in (TOKEN, wrong_token, TOKEN.rsplit(".", 1)[-1], wrong_token.rsplit(".", 1)[-1]):
        assert secret not in everything
    # The payloads really were logged (redacted), so the check above means something.
    assert any(
        record.levelno < logging.DEBUG and "received payload" in record.getMessage() for record in caplog.records
    )
    assert any(record.levelno < logging.DEBUG and "sending payload" in record.getMessage() for record in caplog.records)
    assert "REDACTED" in caplog.text
