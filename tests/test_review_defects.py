"""The protocol defects of issue 15, each reproduced: handshake order, leaks, HELLO, dedup, decoders, logging.

Every test here failed on the shard before its fix, on both builds.
"""

from __future__ import annotations

import asyncio
import logging
import types
import typing

import hikari
import orjson
import pytest
from hikari import errors, presences
from hikari.impl import config as hikari_config

from helpers import TIMEOUT, TOKEN, Recorder, make_shard, running, until
from hikari_shard import _consumers
from hikari_shard import shard as shard_module
from hikari_shard.testing import GatewayEmulator
from hikari_shard.testing import emulator as emulator_module
from hikari_shard.testing.hot_paths import make_router

NORMAL_SLOTS = shard_module._COMMAND_LIMIT - shard_module._HEARTBEAT_RESERVE  # 117 a minute for commands


@pytest.fixture(autouse=True)
def fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shard_module, "_BACKOFF_BASE", 0.05)
    monkeypatch.setattr(shard_module, "_INVALID_SESSION_WAIT", (0.05, 0.1))


def _ops(conn: typing.Any, *, skip: frozenset[int] = frozenset((1,))) -> list[int]:
    """The opcodes a connection received, heartbeats left out."""
    return [p["op"] for p in conn.received if p["op"] not in skip]


# 1. The handshake always goes first; commands queued across a reconnect wait for READY/RESUMED.


async def test_commands_queued_across_a_reconnect_go_after_resume(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shard_module.random, "random", lambda: 0.99)  # first heartbeat late: counts stay exact
    async with GatewayEmulator(token=TOKEN) as emulator:
        async with running(make_shard(emulator)) as shard:
            for _ in range(NORMAL_SLOTS - 1):  # + IDENTIFY: every non-reserved slot of this minute
                await asyncio.wait_for(shard.update_presence(status=presences.Status.IDLE), TIMEOUT)
            queued = [asyncio.create_task(shard.update_presence(afk=True)) for _ in range(NORMAL_SLOTS + 10)]
            await asyncio.sleep(0.1)
            assert not any(task.done() for task in queued)
            await emulator.connections[0].drop()
            await until(lambda: len(emulator.connections) == 2 and shard.is_connected, what="the resume")
            second = emulator.connections[1]
            # The new minute: RESUME took a reserved slot, the queued commands the 116 others left.
            await until(lambda: _ops(second).count(3) == NORMAL_SLOTS - 1, what="the queued commands")
            assert _ops(second)[0] == 6, _ops(second)[:5]  # RESUME first, never a command
            assert second.server_close_code is None  # no 4003 (not authenticated)
            assert len(emulator.connections) == 2
            sent = [task for task in queued if task.done()]
            assert len(sent) == NORMAL_SLOTS - 1
            assert all(task.exception() is None for task in sent)
        # The rest were still waiting for the next minute when the shard closed: a hikari error.
        for task in queued:
            if task not in sent:
                with pytest.raises(errors.ComponentStateConflictError):
                    await asyncio.wait_for(task, TIMEOUT)


async def test_a_command_waiting_at_a_disconnect_sees_only_hikari_errors() -> None:
    async with GatewayEmulator(token=TOKEN) as emulator:
        shard = make_shard(emulator)
        async with running(shard):
            for _ in range(NORMAL_SLOTS - 1):
                await asyncio.wait_for(shard.update_presence(status=presences.Status.IDLE), TIMEOUT)
            waiting = asyncio.create_task(shard.update_presence(afk=True))
            await asyncio.sleep(0.05)
            emulator.before_hello.append("silent")  # the next connection never becomes ready
            await emulator.connections[0].drop()
            await until(lambda: len(emulator.connections) == 2, what="a second connection")
            await asyncio.sleep(0.1)
            assert not waiting.done()  # waits for a session instead of writing to a closing socket
        with pytest.raises(errors.ComponentStateConflictError):
            await asyncio.wait_for(waiting, TIMEOUT)


# 2. A router/inflator that cannot be built does not leak the connection.


async def test_a_failed_inflator_closes_the_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_zstd(compression: str | None, max_message_size: int) -> typing.NoReturn:
        msg = "zstd-stream needs a zstd module"
        raise RuntimeError(msg)

    monkeypatch.setattr(shard_module._transport, "make_inflator", no_zstd)
    async with GatewayEmulator(token=TOKEN) as emulator:
        shard = make_shard(emulator, compression="transport_zstd_stream")
        with pytest.raises(RuntimeError, match="zstd"):
            await asyncio.wait_for(shard.start(), TIMEOUT)
        assert shard._conn is None
        conn = emulator.connections[0]
        await conn.wait_closed(timeout=2)
        assert conn.close_code == shard_module._RESUME_CLOSE_CODE


# 3. READY/RESUMED/RATE_LIMITED are never deduplicated away.


@pytest.mark.parametrize("name", ["RESUMED", "RATE_LIMITED", "READY"])
def test_special_dispatches_are_never_deduplicated(impl: types.SimpleNamespace, name: str) -> None:
    router, consumed, special = _router_parts(impl)
    router.handle(b'{"op":0,"t":"MESSAGE_CREATE","s":5,"d":{}}')
    router.handle(b'{"op":0,"t":"%s","s":5,"d":{"x":1}}' % name.encode())
    assert special == [(name, {"x": 1})]
    assert [n for n, _ in consumed] == ["MESSAGE_CREATE", name]
    router.handle(b'{"op":0,"t":"MESSAGE_CREATE","s":5,"d":{}}')  # an ordinary replay is still dropped
    assert len(consumed) == 2
    assert router.seq == 5


def _router_parts(
    impl: types.SimpleNamespace, **kwargs: typing.Any
) -> tuple[typing.Any, list[tuple[str, typing.Any]], list[tuple[str, typing.Any]]]:
    consumed: list[tuple[str, typing.Any]] = []
    special: list[tuple[str, typing.Any]] = []
    options: dict[str, typing.Any] = {
        "consume": lambda name, shard, data: consumed.append((name, data)),
        "on_special": lambda name, data: special.append((name, data)),
        "expect_binary": None,
        "logger": logging.getLogger("hikari.gateway.review"),
    }
    options.update(kwargs)
    return make_router(impl, **options), consumed, special


async def test_a_resumed_with_an_old_seq_completes_the_resume(monkeypatch: pytest.MonkeyPatch) -> None:
    """End to end: a RESUMED whose ``s`` repeats the last seq seen still finishes the handshake."""
    original = emulator_module.EmulatedSession._dispatch_nowait

    def resumed_with_old_seq(self: typing.Any, name: str, data: typing.Any, *, wait: bool) -> typing.Any:
        if name == "RESUMED":
            self.seq -= 1
        return original(self, name, data, wait=wait)

    monkeypatch.setattr(emulator_module.EmulatedSession, "_dispatch_nowait", resumed_with_old_seq)
    async with GatewayEmulator(token=TOKEN) as emulator:
        manager = Recorder()
        async with running(make_shard(emulator, manager=manager)) as shard:
            await emulator.dispatch("MESSAGE_CREATE", {"i": 0})
            await until(lambda: "MESSAGE_CREATE" in manager.names())
            await emulator.connections[0].drop()
            await until(lambda: len(emulator.connections) == 2 and shard.is_connected, what="the resume", timeout=3)
            await emulator.dispatch("MESSAGE_CREATE", {"i": 1})
            await until(lambda: len(manager.data_of("MESSAGE_CREATE")) == 2, what="the next message")
        assert manager.names().count("RESUMED") == 1
        assert len(emulator.connections) == 2


# 4. A server that upgrades and never says HELLO is left, with a resumable close, and retried.


async def test_no_hello_times_out_and_reconnects(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shard_module, "_HELLO_TIMEOUT", 0.2)
    async with GatewayEmulator(token=TOKEN) as emulator:
        emulator.before_hello.extend(("silent", "silent"))
        async with running(make_shard(emulator)) as shard:
            assert shard.is_connected
            assert len(emulator.connections) == 3
            for silent in emulator.connections[:2]:
                await silent.wait_closed()
                assert silent.close_code == shard_module._RESUME_CLOSE_CODE
                assert silent.received == []
            assert _ops(emulator.connections[2]) == [2]


# 5. A user ``loads`` that raises anything is a transport error, and the shard resumes.


class DecodeError(Exception):
    """Like msgspec.DecodeError: not a ValueError."""


def test_any_loads_error_is_a_transport_error(impl: types.SimpleNamespace) -> None:
    def loads(raw: bytes) -> typing.NoReturn:
        raise DecodeError(raw[:5].decode())

    router, _, _ = _router_parts(impl, loads=loads)
    with pytest.raises(errors.GatewayTransportError, match="DecodeError"):
        router.handle(b'{"op":0,"t":"MESSAGE_CREATE","s":1,"d":{}}')


async def test_a_loads_error_resumes_the_session() -> None:
    failures = []

    def loads(raw: bytes) -> typing.Any:
        if b'"boom"' in raw and not failures:
            failures.append(raw)
            raise DecodeError("bad document")
        return orjson.loads(raw)

    async with GatewayEmulator(token=TOKEN) as emulator:
        manager = Recorder()
        async with running(make_shard(emulator, manager=manager, loads=loads)) as shard:
            await emulator.dispatch("MESSAGE_CREATE", {"i": "boom"})
            await until(lambda: len(emulator.connections) == 2 and shard.is_connected, what="the resume")
            await until(lambda: manager.data_of("MESSAGE_CREATE") == [{"i": "boom"}], what="the replayed message")
            assert shard.is_alive


# 6. TRACE logging shows the dispatches selective decode skipped.


def test_skipped_dispatches_are_logged_at_trace(impl: types.SimpleNamespace, caplog: pytest.LogCaptureFixture) -> None:
    bot = hikari.GatewayBot(
        TOKEN,
        intents=hikari.Intents.ALL,
        cache_settings=hikari_config.CacheSettings(components=hikari_config.CacheComponents.NONE),
        banner=None,
    )
    index = _consumers.ConsumerIndex(bot.event_manager)
    router, consumed, _ = _router_parts(impl, consumers=index, scan=impl.scan.scan)
    raw = b'{"op":0,"t":"PRESENCE_UPDATE","s":7,"d":{"user":{"id":"1"}}}'
    caplog.set_level(logging.DEBUG, logger="hikari.gateway.review")
    router.handle(raw)
    assert router.skipped == 1
    assert consumed == []
    assert not any("PRESENCE_UPDATE" in r.getMessage() for r in caplog.records)  # not at DEBUG
    caplog.set_level(shard_module.TRACE, logger="hikari.gateway.review")
    raw = raw.replace(b'"s":7', b'"s":8')
    router.handle(raw)
    assert router.skipped == 2
    messages = [r.getMessage() for r in caplog.records if r.levelno == shard_module.TRACE]
    assert any("PRESENCE_UPDATE" in m and "seq:8" in m and f"size:{len(raw)}" in m for m in messages), messages
