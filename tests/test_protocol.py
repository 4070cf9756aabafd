"""Discord's gateway protocol, end to end against the emulator: what went over the wire, what the bot saw.

Tests parametrised over ``OURS`` and ``STOCK`` show the emulator is faithful (hikari's own shard
passes them too); tests of ours alone cover where we follow Discord's documentation and hikari 2.7
does not (each says why).
"""

from __future__ import annotations

import asyncio
import logging
import typing

import hikari
import pytest
from hikari import errors, presences
from hikari.api import shard as shard_api

from helpers import OURS, STOCK, TIMEOUT, TOKEN, Recorder, make_shard, running, until
from hikari_shard import shard as shard_module
from hikari_shard.testing import GatewayEmulator

INVALID_SESSION_WAIT = shard_module._INVALID_SESSION_WAIT
COMPRESSIONS = [
    shard_api.GatewayCompression.TRANSPORT_ZLIB_STREAM,
    shard_api.GatewayCompression.TRANSPORT_ZSTD_STREAM,
    shard_api.GatewayCompression.PAYLOAD_ZLIB_STREAM,
    None,
]


@pytest.fixture
async def emulator() -> typing.AsyncIterator[GatewayEmulator]:
    async with GatewayEmulator(token=TOKEN, heartbeat_interval=0.5) as gw:
        yield gw


@pytest.fixture(autouse=True)
def fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shard_module, "_BACKOFF_BASE", 0.05)
    monkeypatch.setattr(shard_module, "_INVALID_SESSION_WAIT", (0.05, 0.1))


def ops(conn: typing.Any, op: int) -> list[dict[str, typing.Any]]:
    return [p for p in conn.received if p.get("op") == op]


async def stream(emulator: GatewayEmulator, start: int, stop: int) -> None:
    for i in range(start, stop):
        await emulator.dispatch("MESSAGE_CREATE", {"i": i})


def message_ids(manager: Recorder) -> list[int]:
    return [d["i"] for d in manager.data_of("MESSAGE_CREATE")]


@pytest.mark.parametrize("compression", COMPRESSIONS)
@pytest.mark.parametrize("cls", [OURS, STOCK], ids=["ours", "stock"])
async def test_handshake_and_ordered_dispatches_on_every_compression(
    emulator: GatewayEmulator, compression: str | None, cls: type[typing.Any]
) -> None:
    manager = Recorder()
    async with running(make_shard(emulator, cls=cls, manager=manager, compression=compression)) as shard:
        assert shard.is_connected
        conn = emulator.connections[0]
        identify = ops(conn, 2)[0]["d"]
        assert identify["token"] == "<redacted>"
        assert identify["shard"] == [0, 1]
        assert identify["compress"] is (compression == shard_api.GatewayCompression.PAYLOAD_ZLIB_STREAM)
        await stream(emulator, 0, 100)
        await until(lambda: len(message_ids(manager)) == 100, what="100 dispatches")
        assert message_ids(manager) == list(range(100))
        assert manager.names()[0] == "READY"
        assert shard.get_user_id() == emulator.user_id
        assert shard._session_id == conn.session.session_id
        assert shard._seq == conn.session.seq
        assert manager.events == ["connected"]
    assert manager.events == ["connected", "disconnected"]


async def test_identify_payload_is_hikaris(emulator: GatewayEmulator) -> None:
    kwargs = {
        "initial_activity": presences.Activity(name="x", type=presences.ActivityType.CUSTOM),
        "initial_status": presences.Status.OFFLINE,
        "large_threshold": 100,
        "capabilities": hikari.GatewayCapabilities.CHANNEL_OBFUSCATION,
    }
    async with running(make_shard(emulator, **kwargs)):
        pass
    async with running(make_shard(emulator, cls=STOCK, **kwargs)):
        pass
    ours, theirs = (ops(conn, 2)[0] for conn in emulator.connections[:2])
    assert ours == theirs
    assert ours["d"]["presence"]["status"] == "invisible"


async def test_fragmented_zlib_messages_are_reassembled() -> None:
    async with GatewayEmulator(token=TOKEN, split_frames=7) as emulator:
        manager = Recorder()
        async with running(make_shard(emulator, manager=manager, compression="transport_zlib_stream")):
            big = {"i": 0, "text": "ü" * 5000}
            await emulator.dispatch("MESSAGE_CREATE", big)
            await stream(emulator, 1, 30)
            await until(lambda: len(message_ids(manager)) == 30)
        assert manager.data_of("MESSAGE_CREATE")[0] == big
        assert message_ids(manager) == list(range(30))


async def test_commands_on_the_wire(emulator: GatewayEmulator) -> None:
    async with running(make_shard(emulator)) as shard:
        await shard.update_presence(status=presences.Status.IDLE, afk=True)
        await shard.update_voice_state(123, 456, self_mute=True)
        await shard.request_guild_members(123, query="ab", limit=5, nonce="n")
        await shard.request_channel_info(123, fields=[shard_api.ChannelInfoField.STATUS])
        conn = emulator.connections[0]
        await conn.wait_for_op(43)
    assert ops(conn, 3)[0]["d"] == {"since": None, "afk": True, "game": None, "status": "idle"}
    assert ops(conn, 4)[0]["d"] == {"guild_id": "123", "channel_id": "456", "self_mute": True}
    assert ops(conn, 8)[0]["d"] == {"guild_id": "123", "query": "ab", "limit": 5, "nonce": "n"}
    assert ops(conn, 43)[0]["d"] == {"guild_id": "123", "fields": ["status"]}


async def test_command_validation_errors(emulator: GatewayEmulator) -> None:
    async with running(make_shard(emulator, intents=hikari.Intents.GUILDS)) as shard:
        with pytest.raises(errors.MissingIntentError):
            await shard.request_guild_members(1)
        with pytest.raises(errors.MissingIntentError):
            await shard.request_guild_members(1, query="a", include_presences=True)
        with pytest.raises(ValueError, match="limit"):
            await shard.request_guild_members(1, query="a", limit=101)
        with pytest.raises(ValueError, match="users"):
            await shard.request_guild_members(1, query="a", users=[1])
        with pytest.raises(ValueError, match="nonce"):
            await shard.request_guild_members(1, query="a", nonce="x" * 33)


async def test_start_twice_conflicts_and_close_ends_the_session(emulator: GatewayEmulator) -> None:
    shard = make_shard(emulator)
    async with running(shard):
        with pytest.raises(errors.ComponentStateConflictError):
            await shard.start()
    conn = emulator.connections[0]
    await conn.wait_closed()
    assert conn.close_code == 1001  # Discord ends the session on 1000/1001
    assert not shard.is_alive
    assert not conn.session.resumable


async def test_join_returns_after_close(emulator: GatewayEmulator) -> None:
    shard = make_shard(emulator)
    await shard.start()
    joiner = asyncio.create_task(shard.join())
    await asyncio.sleep(0.05)
    assert not joiner.done()
    await shard.close()
    await asyncio.wait_for(joiner, TIMEOUT)


# Resume continuity: across every kind of interruption, nothing lost, nothing twice.


async def _interrupt(kind: str, emulator: GatewayEmulator) -> None:
    conn = emulator.connections[-1]
    if kind == "reconnect":
        await conn.send_reconnect()
    elif kind == "drop":
        await conn.drop()
    elif kind == "zombie":
        conn.ack_heartbeats = False
    elif kind == "invalid_session_resumable":
        await conn.send_invalid_session(True)
    else:
        await conn.close(int(kind))


@pytest.mark.parametrize(
    "kind",
    [
        "reconnect",
        "drop",
        "zombie",
        "invalid_session_resumable",
        "4000",
        "4001",
        "4002",
        "4003",
        "4005",
        "4008",
        "1000",
        "1001",
    ],
)
async def test_resume_continuity(emulator: GatewayEmulator, kind: str) -> None:
    manager = Recorder()
    async with running(make_shard(emulator, manager=manager)) as shard:
        await stream(emulator, 0, 20)
        await until(lambda: len(message_ids(manager)) == 20)
        await _interrupt(kind, emulator)
        await stream(emulator, 20, 40)  # while the shard reconnects: stored, replayed on RESUME
        await until(lambda: len(emulator.connections) == 2, what="a second connection")
        second = emulator.connections[1]
        await second.wait_for_op(6)
        await until(lambda: shard.is_connected and len(message_ids(manager)) >= 40, what="40 dispatches")
        await stream(emulator, 40, 50)
        await until(lambda: len(message_ids(manager)) >= 50, what="50 dispatches")
        resume = ops(second, 6)[0]["d"]
        assert resume["session_id"] == emulator.connections[0].session.session_id
        assert ops(second, 2) == []  # resumed, not identified anew
    assert message_ids(manager) == list(range(50))
    assert manager.names().count("RESUMED") == 1
    assert emulator.connections[0].close_code in {3000, None}  # ours is resumable; None when the socket died


@pytest.mark.parametrize("code", [4007, 4009])
async def test_new_session_close_codes_identify_again(emulator: GatewayEmulator, code: int) -> None:
    """Discord: 4007 (invalid seq) and 4009 (session timed out) need a new session; hikari tries to resume."""
    manager = Recorder()
    async with running(make_shard(emulator, manager=manager)) as shard:
        await emulator.connections[0].close(code)
        await until(lambda: len(emulator.connections) == 2)
        second = emulator.connections[1]
        await second.wait_for_op(2)
        await until(lambda: shard.is_connected)
        assert ops(second, 6) == []
    assert manager.names().count("READY") == 2


async def test_invalid_session_not_resumable_waits_then_identifies(
    emulator: GatewayEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Discord: after INVALID_SESSION d=false wait a random 1-5 s, then IDENTIFY (hikari identifies at once)."""
    monkeypatch.setattr(shard_module, "_INVALID_SESSION_WAIT", INVALID_SESSION_WAIT)  # Discord's, not shortened
    drawn: list[tuple[float, float]] = []

    def uniform(low: float, high: float) -> float:
        drawn.append((low, high))
        return 0.2  # what random drew from Discord's range (shortened for the test)

    monkeypatch.setattr(shard_module.random, "uniform", uniform)
    manager = Recorder()
    async with running(make_shard(emulator, manager=manager)) as shard:
        loop = asyncio.get_running_loop()
        sent_at = loop.time()
        await emulator.connections[0].send_invalid_session(False)
        await until(lambda: len(emulator.connections) == 2)
        await emulator.connections[1].wait_for_op(2)
        assert loop.time() - sent_at >= 0.2
        await until(lambda: shard.is_connected)
        assert shard._seq == 1  # a new session's READY
    assert (1.0, 5.0) in drawn
    assert manager.names().count("READY") == 2


@pytest.mark.parametrize("code", [4004, 4010, 4011, 4012, 4013, 4014])
async def test_fatal_close_codes_stop_the_shard(emulator: GatewayEmulator, code: int) -> None:
    shard = make_shard(emulator)
    async with running(shard):
        await emulator.connections[0].close(code, "fatal")
        with pytest.raises(errors.GatewayServerClosedConnectionError) as info:
            await asyncio.wait_for(shard.join(), TIMEOUT)
    assert info.value.code == code
    assert not info.value.can_reconnect
    assert len(emulator.connections) == 1  # no reconnect loop


async def test_bad_token_fails_start(emulator: GatewayEmulator) -> None:
    shard = make_shard(emulator, token=TOKEN + "x")
    with pytest.raises(errors.GatewayServerClosedConnectionError) as info:
        await asyncio.wait_for(shard.start(), TIMEOUT)
    assert info.value.code == 4004
    assert TOKEN not in str(info.value)
    assert len(emulator.connections) == 1


async def test_reconnect_as_first_opcode_keeps_the_session(emulator: GatewayEmulator) -> None:
    """hikari closes with 1000 here, which ends the session it then tries to resume."""
    manager = Recorder()
    async with running(make_shard(emulator, manager=manager)) as shard:
        await stream(emulator, 0, 5)
        await until(lambda: len(message_ids(manager)) == 5)
        emulator.before_hello.append("reconnect")  # the next connection says RECONNECT before HELLO
        await emulator.connections[0].drop()
        await stream(emulator, 5, 10)
        await until(lambda: len(emulator.connections) == 3 and shard.is_connected, what="a third connection")
        await until(lambda: len(message_ids(manager)) == 10, what="the replayed dispatches")
        restarting, third = emulator.connections[1], emulator.connections[2]
        await restarting.wait_closed()
        assert restarting.received == []  # nothing sent to a node that never said HELLO
        assert restarting.close_code == 3000  # resumable: 1000 would end the session
        assert ops(third, 6)[0]["d"]["session_id"] == emulator.connections[0].session.session_id
        assert ops(third, 2) == []
    assert message_ids(manager) == list(range(10))
    assert manager.names().count("READY") == 1


async def test_heartbeats_carry_the_last_seq_and_answer_requests(emulator: GatewayEmulator) -> None:
    async with running(make_shard(emulator)) as shard:
        conn = emulator.connections[0]
        await stream(emulator, 0, 3)
        await conn.wait_for_op(1, count=2, timeout=3)
        beats = ops(conn, 1)
        assert beats[-1]["d"] == shard._seq
        count = len(ops(conn, 1))
        await conn.request_heartbeat()
        await conn.wait_for_op(1, count=count + 1, timeout=0.4)  # answered at once, before the next interval
        await until(lambda: shard.heartbeat_latency == shard.heartbeat_latency)  # not NaN
        assert 0 <= shard.heartbeat_latency < 1


async def test_first_heartbeat_is_jittered(emulator: GatewayEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    """Discord: the first heartbeat waits interval * jitter; hikari sends it at once."""
    monkeypatch.setattr(shard_module.random, "random", lambda: 0.6)
    async with running(make_shard(emulator)):
        conn = emulator.connections[0]
        loop = asyncio.get_running_loop()
        started = loop.time()
        await conn.wait_for_op(1, timeout=2)
        assert loop.time() - started >= 0.2  # 0.6 * 0.5 s, minus the handshake


async def test_close_releases_commands_waiting_on_the_rate_limit(emulator: GatewayEmulator) -> None:
    async with running(make_shard(emulator)) as shard:
        for _ in range(116):  # + IDENTIFY = 117 of the 120 a minute: the last 3 are kept for heartbeats
            await asyncio.wait_for(shard.update_presence(status=presences.Status.IDLE), TIMEOUT)
        blocked = asyncio.create_task(shard.update_presence(status=presences.Status.ONLINE))
        await asyncio.sleep(0.1)
        assert not blocked.done()
        conn = emulator.connections[0]
        beats = len(ops(conn, 1))
        await conn.wait_for_op(1, count=beats + 1, timeout=2)  # a heartbeat still gets through
        assert len(emulator.connections) == 1  # and the server never saw more than 120 a minute
    with pytest.raises(errors.ComponentStateConflictError):
        await asyncio.wait_for(blocked, TIMEOUT)


async def test_resume_url_is_dropped_after_a_failed_connect() -> None:
    async with GatewayEmulator(token=TOKEN) as emulator:
        shard = make_shard(emulator)
        async with running(shard):
            assert shard.resume_gateway_url == emulator.url
            shard._resume_gateway_url = "ws://127.0.0.1:1"  # nothing listens there
            await emulator.connections[0].drop()
            await until(lambda: len(emulator.connections) == 2, timeout=10)
            await until(lambda: shard.is_connected)
            assert ops(emulator.connections[1], 6)  # resumed through the gateway url


async def test_token_never_logged(emulator: GatewayEmulator, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(1)
    async with running(make_shard(emulator)) as shard:
        await stream(emulator, 0, 3)
        await emulator.connections[0].drop()
        await until(lambda: len(emulator.connections) == 2)
        await until(lambda: shard.is_connected)
        text = repr(shard)
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "IDENTIFY" in logged or "identifying" in logged
    assert "received payload" in logged  # TRACE payload logging was on
    assert TOKEN not in logged
    assert TOKEN not in text
    assert "REDACTED" in logged


async def test_logger_names_are_hikaris(emulator: GatewayEmulator, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="hikari.gateway.3")
    async with GatewayEmulator(token=TOKEN, shard_count=4) as gw, running(make_shard(gw, shard_id=3, shard_count=4)):
        pass
    assert any(r.name == "hikari.gateway.3" and "ready" in r.getMessage() for r in caplog.records)


def test_backoff_is_exponential_with_full_jitter_and_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    bounds: list[tuple[float, float]] = []

    def uniform(low: float, high: float) -> float:
        bounds.append((low, high))
        return high

    monkeypatch.setattr(shard_module, "_BACKOFF_BASE", 1.0)
    monkeypatch.setattr(shard_module.random, "uniform", uniform)
    assert shard_module._backoff_delay(0) == 0
    assert shard_module._backoff_delay(1) == 0  # the first reconnect is immediate
    assert bounds == []
    delays = [shard_module._backoff_delay(attempt) for attempt in range(2, 12)]
    assert delays == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0, 60.0, 60.0]  # doubling, capped at 60 s
    assert all(low == 0 for low, _ in bounds)  # full jitter: anywhere from 0 to the ceiling
    assert shard_module._backoff_delay(1000) == 60.0


def test_backoff_jitter_spreads_the_delays() -> None:
    delays = [shard_module._backoff_delay(6) for _ in range(400)]  # ceiling 16 * base
    ceiling = 16 * shard_module._BACKOFF_BASE
    assert min(delays) >= 0
    assert max(delays) <= ceiling
    assert min(delays) < ceiling / 4 < ceiling * 3 / 4 < max(delays)  # not a constant, not zero


async def test_rate_limited_dispatch_is_logged(emulator: GatewayEmulator, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="hikari.gateway.0")
    manager = Recorder()
    async with running(make_shard(emulator, manager=manager)):
        data = {"opcode": 8, "retry_after": 12.5, "meta": {"guild_id": "1", "nonce": "n"}}
        await emulator.dispatch("RATE_LIMITED", data)
        await until(lambda: "RATE_LIMITED" in manager.names())
    assert any("rate-limited on opcode 8 for 12.5s" in r.getMessage() for r in caplog.records)


async def test_a_flapping_server_is_backed_off(
    emulator: GatewayEmulator, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Connections that die at once are retried with growing, jittered delays, not in a tight loop."""
    monkeypatch.setattr(shard_module.random, "uniform", lambda low, high: high)  # the top of each jitter range
    caplog.set_level(logging.INFO, logger="hikari.gateway.0")
    loop = asyncio.get_running_loop()
    seen: list[float] = []
    async with running(make_shard(emulator)) as shard:
        for _ in range(4):
            count = len(emulator.connections)
            closed_at = loop.time()
            await emulator.connections[-1].close(4000)
            await until(lambda c=count: len(emulator.connections) > c and shard.is_connected, timeout=10)
            seen.append(loop.time() - closed_at)
    assert len(emulator.connections) == 5
    backoffs = [
        float(r.getMessage().split()[-1].rstrip("s")) for r in caplog.records if "backing off" in r.getMessage()
    ]
    assert backoffs == [0.05, 0.1, 0.2]  # at once, then 0.05 s doubling (base shortened by the fixture)
    for waited, expected in zip(seen[1:], backoffs, strict=True):
        assert waited >= expected
