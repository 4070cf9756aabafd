"""The gateway emulator speaks Discord's gateway v10 well enough for hikari's own shard and bot.

Every test talks to a real websocket server on 127.0.0.1, either with a plain aiohttp client (to see
the exact frames) or with hikari's stock ``GatewayShardImpl`` / ``GatewayBot``.  If one fails, the
emulator would mislead the shard tests, demos or benchmarks built on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import subprocess
import sys
import typing
import unittest.mock
import zlib

import aiohttp
import hikari
import orjson
import pytest
from backports import zstd
from hikari.impl import config
from hikari.impl import shard as shard_impl

from hikari_shard.testing import REDACTED, GatewayEmulator, make_bot_token, user_id_from_token
from hikari_shard.testing import emulator as emulator_module

TOKEN = "test-token-123"
SUFFIX = b"\x00\x00\xff\xff"
GUILD_ID = 1_200_000_000_000_000_000
TIMEOUT = 5.0


# Helpers


class PlainClient:
    """A bare websocket client that decodes every compression mode by hand."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, compress: str | None) -> None:
        self.ws = ws
        self.compress = compress
        self.inflator = zlib.decompressobj()
        self.zstd = zstd.ZstdDecompressor()
        self.frames: list[aiohttp.WSMessage] = []

    async def recv(self, timeout: float = TIMEOUT) -> dict[str, typing.Any]:  # noqa: ASYNC109
        message = await self.ws.receive(timeout=timeout)
        self.frames.append(message)
        if message.type == aiohttp.WSMsgType.TEXT:
            return typing.cast("dict[str, typing.Any]", orjson.loads(message.data))
        assert message.type == aiohttp.WSMsgType.BINARY, message
        if self.compress == "zstd-stream":
            return typing.cast("dict[str, typing.Any]", orjson.loads(self.zstd.decompress(message.data)))
        if self.compress == "zlib-stream":
            buffer = bytearray(message.data)
            while not buffer.endswith(SUFFIX):
                message = await self.ws.receive(timeout=timeout)
                self.frames.append(message)
                buffer += message.data
            return typing.cast("dict[str, typing.Any]", orjson.loads(self.inflator.decompress(buffer)))
        return typing.cast("dict[str, typing.Any]", orjson.loads(zlib.decompress(message.data)))

    async def send(self, payload: dict[str, typing.Any]) -> None:
        await self.ws.send_bytes(orjson.dumps(payload))

    async def identify(self, token: str = TOKEN, **extra: typing.Any) -> dict[str, typing.Any]:
        d = {"token": token, "intents": 513, "properties": {"os": "linux", "browser": "t", "device": "t"}}
        d.update(extra)
        await self.send({"op": 2, "d": d})
        return await self.recv()

    async def closed_with(self, timeout: float = TIMEOUT) -> int:  # noqa: ASYNC109
        while True:
            message = await self.ws.receive(timeout=timeout)
            if message.type in {aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING}:
                return typing.cast("int", self.ws.close_code)


@contextlib.asynccontextmanager
async def plain_client(
    emulator: GatewayEmulator, query: str = "v=10&encoding=json", compress: str | None = None
) -> typing.AsyncIterator[PlainClient]:
    if compress in {"zlib-stream", "zstd-stream"}:
        query += f"&compress={compress}"
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(f"{emulator.url}/?{query}", timeout=aiohttp.ClientWSTimeout(ws_close=2.0)) as ws,
    ):
        yield PlainClient(ws, compress)


class RecordingEventManager:
    """Just enough of hikari's EventManager for a bare GatewayShardImpl."""

    def __init__(self) -> None:
        self.events: list[tuple[str, typing.Any]] = []
        self.changed = asyncio.Event()

    def consume_raw_event(self, name: str, shard: object, data: typing.Any) -> None:
        self.events.append((name, data))
        self.changed.set()

    async def dispatch(self, event: object, *, return_tasks: bool = False) -> list[object]:
        return []

    def names(self) -> list[str]:
        return [name for name, _ in self.events]

    async def wait_for(
        self,
        predicate: typing.Callable[[], bool],
        timeout: float = TIMEOUT,  # noqa: ASYNC109
    ) -> None:
        async with asyncio.timeout(timeout):
            while not predicate():
                self.changed.clear()
                await self.changed.wait()


def make_shard(
    emulator: GatewayEmulator, manager: RecordingEventManager, *, compression: str | None = None, token: str = TOKEN
) -> shard_impl.GatewayShardImpl:
    return shard_impl.GatewayShardImpl(
        http_settings=config.HTTPSettings(),
        proxy_settings=config.ProxySettings(),
        event_manager=typing.cast("typing.Any", manager),
        event_factory=unittest.mock.Mock(),
        intents=hikari.Intents.ALL_UNPRIVILEGED,
        token=token,
        url=emulator.url,
        compression=typing.cast("typing.Any", compression),
    )


@contextlib.asynccontextmanager
async def running_shard(
    emulator: GatewayEmulator, *, compression: str | None = None
) -> typing.AsyncIterator[tuple[shard_impl.GatewayShardImpl, RecordingEventManager]]:
    manager = RecordingEventManager()
    shard = make_shard(emulator, manager, compression=compression)
    await asyncio.wait_for(shard.start(), TIMEOUT)
    try:
        yield shard, manager
    finally:
        await asyncio.wait_for(shard.close(), TIMEOUT)


@pytest.fixture
async def emulator() -> typing.AsyncIterator[GatewayEmulator]:
    async with GatewayEmulator(token=TOKEN, guild_ids=[GUILD_ID]) as emulator:
        yield emulator


# Handshake, compression, dispatch order


async def test_hello_identify_ready_with_a_plain_client(emulator: GatewayEmulator) -> None:
    async with plain_client(emulator) as client:
        hello = await client.recv()
        assert client.frames[0].type == aiohttp.WSMsgType.TEXT
        assert hello["op"] == 10
        assert hello["d"]["heartbeat_interval"] == 41250

        ready = await client.identify()
        assert (ready["op"], ready["t"], ready["s"]) == (0, "READY", 1)
        data = ready["d"]
        assert data["v"] == 10
        assert data["resume_gateway_url"] == emulator.url
        assert data["guilds"] == [{"id": str(GUILD_ID), "unavailable": True}]
        assert data["shard"] == [0, 1]
        assert set(data["user"]) >= {"id", "username", "discriminator", "avatar", "bot", "global_name"}
        assert data["application"] == {"id": data["user"]["id"], "flags": 0}

        guild_create = await client.recv()
        assert (guild_create["t"], guild_create["s"]) == ("GUILD_CREATE", 2)

        connection = await emulator.wait_for_connection()
        session = emulator.sessions[data["session_id"]]
        assert connection.session is session
        assert session.shard_id == connection.shard_id == 0
        assert [name for _, name, _ in session.events] == ["READY", "GUILD_CREATE"]
        assert connection.received[0]["d"]["token"] == REDACTED
        assert len(emulator.identify_times) == 1


@pytest.mark.parametrize(
    ("compression", "expected"),
    [
        ("transport_zlib_stream", "zlib-stream"),
        ("transport_zstd_stream", "zstd-stream"),
        ("payload_zlib_stream", "payload"),
        (None, None),
    ],
)
async def test_hikari_shard_identifies_and_receives_dispatches_in_order(
    emulator: GatewayEmulator, compression: str | None, expected: str | None
) -> None:
    async with running_shard(emulator, compression=compression) as (shard, manager):
        connection = await emulator.wait_for_connection()
        assert connection.compression == expected
        assert connection.query["v"] == "10"
        identify = await connection.wait_for_op(2)
        assert identify["d"]["token"] == REDACTED
        assert identify["d"]["compress"] is (expected == "payload")
        assert manager.names() == ["READY", "GUILD_CREATE"]
        assert shard.get_user_id() == emulator.user_id

        seqs = [(await emulator.dispatch("TYPING_START", {"n": n}))[0] for n in range(20)]
        assert seqs == list(range(3, 23))
        await manager.wait_for(lambda: len(manager.events) == 22)
        assert [data["n"] for name, data in manager.events[2:]] == list(range(20))
        # The shard heartbeats with the last seq it saw.
        await connection.request_heartbeat()
        heartbeat = await connection.wait_for_op(1, count=2)
        assert heartbeat["d"] == 22


async def test_dispatch_many_streams_a_burst_in_order(emulator: GatewayEmulator) -> None:
    async with running_shard(emulator, compression="transport_zlib_stream") as (_, manager):
        last = await emulator.dispatch_many(("PRESENCE_UPDATE", {"n": n}) for n in range(3000))
        assert last == {0: 3002}
        await manager.wait_for(lambda: len(manager.events) == 3002)
        assert [data["n"] for _, data in manager.events[2:]] == list(range(3000))
        assert [seq for seq, _, _ in emulator.connections[0].session.events] == list(range(1, 3003))


async def test_zlib_stream_split_frames_only_the_last_ends_with_the_flush_marker() -> None:
    async with (
        GatewayEmulator(token=TOKEN, split_frames=16) as emulator,
        plain_client(emulator, compress="zlib-stream") as client,
    ):
        await client.recv()  # HELLO
        await client.identify()
        connection = await emulator.wait_for_connection()
        client.frames.clear()
        await connection.dispatch("BIG", {"blob": "x" * 100 + "".join(map(str, range(300)))})
        payload = await client.recv()
        assert payload["t"] == "BIG"
        assert len(client.frames) > 3
        assert all(len(frame.data) <= 16 for frame in client.frames)
        # Like Discord: a client knows the message is complete when the bytes so far end with the marker.
        prefixes = [b"".join(frame.data for frame in client.frames[: n + 1]) for n in range(len(client.frames))]
        assert [prefix.endswith(SUFFIX) for prefix in prefixes] == [False] * (len(prefixes) - 1) + [True]


async def test_split_frames_work_with_hikari() -> None:
    async with (
        GatewayEmulator(token=TOKEN, split_frames=7, guild_ids=[GUILD_ID]) as emulator,
        running_shard(emulator, compression="transport_zlib_stream") as (_, manager),
    ):
        for n in range(5):
            await emulator.dispatch("MESSAGE_REACTION_ADD", {"n": n, "pad": "y" * (n * 40)})
        await manager.wait_for(lambda: len(manager.events) == 7)
        assert manager.names()[:2] == ["READY", "GUILD_CREATE"]
        assert [data["n"] for _, data in manager.events[2:]] == list(range(5))


def test_split_zlib_message_never_ends_a_prefix_with_the_marker() -> None:
    data = b"ab\x00\x00\xff\xffcd\x00\x00\xff\xff"
    for size in range(1, len(data) + 1):
        chunks = emulator_module._split_zlib_message(data, size)
        assert b"".join(chunks) == data
        prefixes = [b"".join(chunks[: i + 1]) for i in range(len(chunks) - 1)]
        assert not any(prefix.endswith(SUFFIX) for prefix in prefixes), size


# Resume


async def test_resume_after_a_dropped_connection_replays_missed_events_exactly_once(emulator: GatewayEmulator) -> None:
    async with running_shard(emulator, compression="transport_zlib_stream") as (shard, manager):
        first = await emulator.wait_for_connection()
        for n in range(3):
            await emulator.dispatch("TYPING_START", {"n": n})
        await manager.wait_for(lambda: len(manager.events) == 5)

        await first.drop()
        assert first.closed
        assert first.close_code is None  # no close frame either way
        for n in range(3, 6):  # while the shard is away: stored, then replayed on resume
            await emulator.dispatch("TYPING_START", {"n": n})

        second = await emulator.wait_for_connection(1, timeout=TIMEOUT)
        resume = await second.wait_for_op(6)
        assert resume["d"] == {"token": REDACTED, "session_id": first.session.session_id, "seq": 5}
        await manager.wait_for(lambda: "RESUMED" in manager.names())
        await emulator.dispatch("TYPING_START", {"n": 6})
        await manager.wait_for(lambda: len(manager.events) == 10)

        assert manager.names() == ["READY", "GUILD_CREATE"] + ["TYPING_START"] * 6 + ["RESUMED", "TYPING_START"]
        assert [data["n"] for name, data in manager.events if name == "TYPING_START"] == list(range(7))
        assert second.session is first.session
        assert len(emulator.identify_times) == 1
        assert shard.is_connected


async def test_resume_is_refused_for_unknown_or_invalidated_sessions(emulator: GatewayEmulator) -> None:
    async with plain_client(emulator) as client:
        await client.recv()
        ready = await client.identify()
        await client.recv()  # GUILD_CREATE
        session_id = ready["d"]["session_id"]
        connection = emulator.connections[0]
        await connection.send_invalid_session(False)
        assert (await client.recv())["d"] is False
        assert not emulator.sessions[session_id].resumable

    async with plain_client(emulator) as client:
        await client.recv()
        await client.send({"op": 6, "d": {"token": TOKEN, "session_id": session_id, "seq": 2}})
        assert await client.recv() == {"t": None, "s": None, "op": 9, "d": False}
        await client.send({"op": 6, "d": {"token": TOKEN, "session_id": "nope", "seq": 1}})
        assert (await client.recv())["op"] == 9
        # Still unauthenticated, so a fresh IDENTIFY works on the same connection.
        assert (await client.identify())["t"] == "READY"


async def test_resume_with_a_seq_from_the_future_is_refused(emulator: GatewayEmulator) -> None:
    async with plain_client(emulator) as client:
        await client.recv()
        session_id = (await client.identify())["d"]["session_id"]
        await client.ws.close(code=3000)  # any code but 1000/1001 keeps the session

    assert emulator.connections[0].close_code == 3000
    assert emulator.sessions[session_id].resumable
    async with plain_client(emulator) as client:
        await client.recv()
        await client.send({"op": 6, "d": {"token": TOKEN, "session_id": session_id, "seq": 99}})
        assert (await client.recv())["op"] == 9
        await client.send({"op": 6, "d": {"token": TOKEN, "session_id": session_id, "seq": 1}})
        replayed = await client.recv()
        assert (replayed["t"], replayed["s"]) == ("GUILD_CREATE", 2)
        assert ((await client.recv())["t"], emulator.sessions[session_id].seq) == ("RESUMED", 3)


async def test_client_close_with_1000_ends_the_session(emulator: GatewayEmulator) -> None:
    async with plain_client(emulator) as client:
        await client.recv()
        session_id = (await client.identify())["d"]["session_id"]
        await client.ws.close(code=1000)
    await emulator.connections[0].wait_closed()
    assert not emulator.sessions[session_id].resumable


# Heartbeats


async def test_heartbeats_are_acked_unless_disabled(emulator: GatewayEmulator) -> None:
    async with plain_client(emulator) as client:
        await client.recv()
        await client.send({"op": 1, "d": None})
        assert await client.recv() == {"t": None, "s": None, "op": 11, "d": None}

        connection = emulator.connections[0]
        connection.ack_heartbeats = False
        await client.send({"op": 1, "d": None})
        await connection.wait_for_op(1, count=2)
        await connection.request_heartbeat()
        assert (await client.recv())["op"] == 1  # the request, not an ACK

        emulator.ack_heartbeats = False
        connection.ack_heartbeats_override = None
        assert not connection.ack_heartbeats


async def test_hikari_reconnects_and_resumes_when_heartbeats_are_not_acked() -> None:
    async with (
        GatewayEmulator(token=TOKEN, heartbeat_interval=0.2) as emulator,
        running_shard(emulator) as (shard, manager),
    ):
        first = await emulator.wait_for_connection()
        await first.wait_for_op(1)  # hikari heartbeats right after HELLO, and gets an ACK
        await asyncio.wait_for(_until(lambda: shard.heartbeat_latency >= 0), TIMEOUT)
        emulator.ack_heartbeats = False
        await first.wait_closed(timeout=TIMEOUT)
        assert first.close_code == 3000  # hikari's "resumable" close
        emulator.ack_heartbeats = True
        second = await emulator.wait_for_connection(1, timeout=TIMEOUT)
        await second.wait_for_op(6)
        await manager.wait_for(lambda: "RESUMED" in manager.names())


# Errors and close codes


async def test_bad_token_closes_with_4004_for_hikari(emulator: GatewayEmulator) -> None:
    manager = RecordingEventManager()
    shard = make_shard(emulator, manager, token="wrong-token")
    with pytest.raises(hikari.GatewayServerClosedConnectionError) as info:
        await asyncio.wait_for(shard.start(), TIMEOUT)
    assert info.value.code == 4004
    connection = emulator.connections[0]
    assert connection.server_close_code == 4004
    assert connection.received[-1]["d"]["token"] == REDACTED


@pytest.mark.parametrize(
    ("query", "payloads", "code"),
    [
        ("v=10&encoding=json", [{"op": 2, "d": {"token": "nope", "intents": 1}}], 4004),
        ("v=10&encoding=json", [{"op": 3, "d": {}}], 4003),
        ("v=10&encoding=json", [b"{not json"], 4002),
        ("v=10&encoding=json", [{"op": 99, "d": None}], 4001),
        ("v=10&encoding=json", [{"op": 2, "d": {"token": TOKEN, "intents": 1}}] * 2, 4005),
        ("v=10&encoding=json", [{"op": 2, "d": {"token": TOKEN, "intents": 1, "shard": [0, 2]}}], 4011),
        ("v=10&encoding=json", [{"op": 2, "d": {"token": TOKEN, "intents": 1, "shard": [1, 1]}}], 4010),
        ("v=10&encoding=json", [{"op": 2, "d": {"token": TOKEN}}], 4013),
        ("v=10&encoding=json", [{"op": 1, "d": None}] * 121, 4008),
        ("v=10&encoding=json", [b'{"op":1,"d":"' + b"x" * 5000 + b'"}'], 4002),
        ("v=9&encoding=json", [], 4012),
    ],
    ids=[
        "bad-token",
        "not-authenticated",
        "bad-json",
        "unknown-op",
        "identify-twice",
        "sharding-required",
        "invalid-shard",
        "no-intents",
        "rate-limited",
        "too-large",
        "bad-version",
    ],
)
async def test_protocol_violations_close_with_discords_codes(
    emulator: GatewayEmulator, query: str, payloads: list[typing.Any], code: int
) -> None:
    async with plain_client(emulator, query) as client:
        if query.startswith("v=10"):
            assert (await client.recv())["op"] == 10
        for payload in payloads:
            await client.ws.send_bytes(payload if isinstance(payload, bytes) else orjson.dumps(payload))
        assert await client.closed_with() == code
    connection = emulator.connections[0]
    await connection.wait_closed()
    assert connection.server_close_code == code


async def test_server_side_close_codes_and_session_invalidation(emulator: GatewayEmulator) -> None:
    async with plain_client(emulator) as client:
        await client.recv()
        await client.identify()
        connection = await emulator.wait_for_connection()
        code, _ = await asyncio.gather(client.closed_with(), connection.close(4009, "Session timed out"))
        assert code == 4009
        assert connection.closed
        assert connection.server_close_code == 4009
        assert connection.close_code == 1000  # aiohttp's client answers with 1000
        assert not connection.session.resumable
        with pytest.raises(ConnectionError):
            await connection.send_raw(b"late")


async def test_commands_are_recorded_and_send_raw_reaches_the_client(emulator: GatewayEmulator) -> None:
    async with running_shard(emulator) as (shard, _):
        connection = await emulator.wait_for_connection()
        await shard.update_presence(status=hikari.Status.IDLE)
        await shard.update_voice_state(GUILD_ID, None)
        await shard.request_guild_members(GUILD_ID, query="a", limit=1)
        await shard.request_channel_info(GUILD_ID, fields=[hikari.api.ChannelInfoField.STATUS])
        last = await connection.wait_for_op(43)
        assert [p["op"] for p in connection.received if p["op"] not in {1}] == [2, 3, 4, 8, 43]
        assert last["d"]["guild_id"] == str(GUILD_ID)
        assert (await connection.wait_for_op(3))["d"]["status"] == "idle"


async def test_malformed_frames_can_be_injected(emulator: GatewayEmulator) -> None:
    async with plain_client(emulator) as client:
        await client.recv()
        connection = await emulator.wait_for_connection()
        await connection.send_raw(b"\x00garbage", binary=True)
        message = await client.ws.receive(timeout=TIMEOUT)
        assert (message.type, message.data) == (aiohttp.WSMsgType.BINARY, b"\x00garbage")
        await connection.send_raw("{half", binary=False)
        message = await client.ws.receive(timeout=TIMEOUT)
        assert (message.type, message.data) == (aiohttp.WSMsgType.TEXT, "{half")


async def test_the_token_is_never_logged_or_recorded(caplog: pytest.LogCaptureFixture) -> None:
    token = make_bot_token(4242)
    caplog.set_level(logging.DEBUG)
    async with GatewayEmulator(token=token) as emulator, plain_client(emulator) as client:
        await client.recv()
        await client.identify(token, presence={"game": {"name": f"leak {token}"}})
        await client.send({"op": 2, "d": {"token": token}})
        assert await client.closed_with() == 4005
        records = orjson.dumps([connection.received for connection in emulator.connections]).decode()
        assert token not in records
        assert REDACTED in records
    assert token not in caplog.text


# REST and a whole GatewayBot


async def test_gateway_bot_endpoint_requires_the_bot_token(emulator: GatewayEmulator) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{emulator.rest_url}/gateway/bot", headers={"Authorization": f"Bot {TOKEN}"}) as resp:
            assert resp.status == 200
            body = await resp.json()
        assert body["url"] == emulator.url
        assert body["shards"] == 1
        assert body["session_start_limit"]["max_concurrency"] == 1
        async with session.get(f"{emulator.rest_url}/gateway/bot", headers={"Authorization": "Bot nope"}) as resp:
            assert resp.status == 401
            assert (await resp.json())["message"] == "401: Unauthorized"
        async with session.get(f"{emulator.rest_url}/channels/1", headers={"Authorization": f"Bot {TOKEN}"}) as resp:
            assert resp.status == 404


def _message_payload(guild_id: int, channel_id: int, author_id: int) -> dict[str, typing.Any]:
    author = {"id": str(author_id), "username": "someone", "discriminator": "0", "avatar": None, "global_name": "S"}
    return {
        "id": str((guild_id >> 1) + 7),
        "channel_id": str(channel_id),
        "guild_id": str(guild_id),
        "author": author,
        "member": {"roles": [], "joined_at": "2024-01-01T00:00:00+00:00", "deaf": False, "mute": False, "flags": 0},
        "content": "hello from the emulator",
        "timestamp": "2024-01-01T00:00:00+00:00",
        "edited_timestamp": None,
        "tts": False,
        "mention_everyone": False,
        "mentions": [],
        "mention_roles": [],
        "attachments": [],
        "embeds": [],
        "pinned": False,
        "type": 0,
        "flags": 0,
        "components": [],
    }


async def test_a_real_gateway_bot_starts_receives_a_message_and_closes() -> None:
    token = make_bot_token(987_654_321_987_654_321)
    guilds = [GUILD_ID, GUILD_ID + (1 << 22)]  # one per shard
    async with GatewayEmulator(token=token, shard_count=2, max_concurrency=2, guild_ids=guilds) as emulator:
        assert emulator.user_id == user_id_from_token(token) == 987_654_321_987_654_321
        bot = hikari.GatewayBot(token, rest_url=emulator.rest_url, banner=None, logs=None)
        received: list[hikari.GuildMessageCreateEvent] = []
        got_message = asyncio.Event()

        async def on_message(event: hikari.GuildMessageCreateEvent) -> None:
            received.append(event)
            got_message.set()

        bot.subscribe(hikari.GuildMessageCreateEvent, on_message)
        await asyncio.wait_for(bot.start(check_for_updates=False), TIMEOUT * 2)
        try:
            assert sorted(bot.shards) == [0, 1]
            assert len(emulator.identify_times) == 2
            assert {connection.shard_id for connection in emulator.connections} == {0, 1}
            assert bot.get_me() is not None
            assert bot.get_me().id == emulator.user_id
            for guild_id in guilds:  # GUILD_CREATE went through hikari's entity factory into the cache
                await asyncio.wait_for(_until(lambda g=guild_id: bot.cache.get_guild(g) is not None), TIMEOUT)
                assert bot.cache.get_guild_channel(guild_id + 1) is not None

            shard_id = (guilds[1] >> 22) % 2
            await emulator.dispatch(
                "MESSAGE_CREATE", _message_payload(guilds[1], guilds[1] + 1, 5555), shard_id=shard_id
            )
            await asyncio.wait_for(got_message.wait(), TIMEOUT)
            assert received[0].content == "hello from the emulator"
            assert received[0].shard.id == shard_id
        finally:
            await asyncio.wait_for(bot.close(), TIMEOUT * 2)
        assert all(connection.closed for connection in emulator.connections)
        assert {connection.close_code for connection in emulator.connections} == {1001}


async def _until(predicate: typing.Callable[[], bool]) -> None:
    while not predicate():  # noqa: ASYNC110 - polling hikari state that has no event
        await asyncio.sleep(0.01)


# Another process


async def test_the_command_line_emulator_serves_until_killed() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "hikari_shard.testing.emulator",
        "--port",
        "0",
        "--token",
        TOKEN,
        stdout=subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        url = (await asyncio.wait_for(process.stdout.readline(), TIMEOUT * 2)).decode().strip()
        rest_url = (await asyncio.wait_for(process.stdout.readline(), TIMEOUT)).decode().strip()
        assert url.startswith("ws://127.0.0.1:")
        auth = {"Authorization": f"Bot {TOKEN}"}
        async with aiohttp.ClientSession() as http, http.ws_connect(f"{url}/?v=10&encoding=json") as ws:
            client = PlainClient(ws, None)
            assert (await client.recv())["op"] == 10
            assert (await client.identify())["t"] == "READY"
            base = rest_url.split("/api/")[0]
            async with http.post(
                f"{base}/_emulator/dispatch", json={"name": "PING", "data": {"x": 1}, "repeat": 3}, headers=auth
            ) as resp:
                assert (await resp.json())["seq"] == {"0": 4}
            assert [(await client.recv())["s"] for _ in range(3)] == [2, 3, 4]
            async with http.get(f"{base}/_emulator/state", headers=auth) as resp:
                state = await resp.json()
            assert state["connections"][0]["received_ops"] == [2]
            async with http.post(f"{base}/_emulator/connections/0/close", json={"code": 4000}, headers=auth):
                pass
            assert await client.closed_with() == 4000
    finally:
        with contextlib.suppress(ProcessLookupError):
            process.terminate()
        await asyncio.wait_for(process.wait(), TIMEOUT)
