"""Warm restarts that cannot resume: each ends in one IDENTIFY and a working shard, never a crash or a hang.

A first shard closes resumably and saves its session; a second shard, as the next process would,
starts on the same store.  When the saved session cannot be resumed (Discord refuses it, it is too
old, it is another shard's) or the store cannot be used (a corrupt file, a locked database, Redis
down or silent, a full disk), the shard identifies once, works, and, for a store that fails, says
so in one WARNING.  A user would notice a failure as a bot that crashes or hangs at start-up
because of its session store, or that keeps resuming a dead session.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import errno
import logging
import pathlib
import socket
import sqlite3
import time
import typing

import pytest

from helpers import TIMEOUT, TOKEN, Recorder, make_shard, running, until
from hikari_shard import _context, sessions
from hikari_shard.testing import GatewayEmulator

OP_RESUME: typing.Final = 6
KEY: typing.Final = sessions.bot_key(TOKEN)


def context(store: sessions.SessionStore, **kwargs: typing.Any) -> _context.GatewayContext:
    return _context.GatewayContext(store=store, **kwargs)


def shard_in(ctx: _context.GatewayContext, emulator: GatewayEmulator, **kwargs: typing.Any) -> typing.Any:
    with _context.using(ctx):
        return make_shard(emulator, **kwargs)


async def saved_session(emulator: GatewayEmulator, ctx: _context.GatewayContext) -> sessions.SessionRecord:
    """Run a first shard, close it resumably; the record it saved."""
    shard = shard_in(ctx, emulator)
    async with running(shard):
        await emulator.dispatch("MESSAGE_CREATE", {"k": 0})
        await until(lambda: shard._current_seq() == 2, what="the first dispatch")
        await asyncio.wait_for(shard.close(resumable=True), TIMEOUT)
    assert emulator.connections[-1].close_code == 3000
    assert ctx.store is not None
    record = await ctx.store.load(KEY, 0, 1)
    assert record is not None
    assert record.seq == 2
    return record


async def works(shard: typing.Any, emulator: GatewayEmulator, manager: Recorder) -> None:
    await emulator.dispatch("MESSAGE_CREATE", {"k": 99})
    await until(lambda: 99 in manager.ids(), what="a dispatch on the new session")
    assert shard.is_connected


def files_of(folder: pathlib.Path) -> bytes:
    return b"".join(path.read_bytes() for path in folder.iterdir())


def store_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and "session" in r.getMessage()]


async def test_a_saved_session_is_resumed_and_used_once(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "s.sqlite3"
    ctx = context(sessions.SQLiteSessionStore(path))
    async with GatewayEmulator(token=TOKEN) as emulator:
        await saved_session(emulator, ctx)
        await emulator.dispatch("MESSAGE_CREATE", {"k": 1})  # missed while no shard runs
        manager = Recorder()
        shard = shard_in(ctx, emulator, manager=manager)
        async with running(shard):
            await until(lambda: manager.ids() == [1], what="the missed dispatch, replayed")
            await works(shard, emulator, manager)
            assert shard.get_user_id() == KEY
            assert emulator.identifies[0] == 1
            assert emulator.resumes[0] == 1
            # A crash from here must not resume the older seq: the record was used up.
            await until(lambda: not shard._stored, what="the record deleted")
            assert await ctx.store.load(KEY, 0, 1) is None  # type: ignore[union-attr]
            await asyncio.wait_for(shard.close(resumable=False), TIMEOUT)
        assert emulator.connections[-1].close_code == 1001
    assert path.exists()
    assert TOKEN.encode() not in files_of(tmp_path)  # the database, its WAL and shared memory


@pytest.mark.parametrize("refusal", ["invalid session", 4007, 4009])
async def test_a_session_discord_refuses_is_identified_anew_and_deleted(
    refusal: str | int, tmp_path: pathlib.Path
) -> None:
    ctx = context(sessions.SQLiteSessionStore(tmp_path / "s.sqlite3"))
    async with GatewayEmulator(token=TOKEN) as emulator:
        record = await saved_session(emulator, ctx)
        manager = Recorder()
        shard = shard_in(ctx, emulator, manager=manager)
        if refusal == "invalid session":
            emulator.sessions[record.session_id].resumable = False
            starting = asyncio.ensure_future(shard.start())
        else:
            index = len(emulator.connections)
            starting = asyncio.ensure_future(shard.start())
            connection = await emulator.wait_for_connection(index)
            await connection.wait_for_op(OP_RESUME)
            await connection.close(typing.cast("int", refusal), "refused")
        await asyncio.wait_for(starting, TIMEOUT + 5)  # INVALID_SESSION waits 1-5 s, as Discord asks
        try:
            # The first shard's IDENTIFY, and one for the new session (a close after RESUMED: once connected again).
            await until(lambda: emulator.identifies[0] == 2 and shard.is_connected, what="a new session")
            await works(shard, emulator, manager)
            assert emulator.identifies[0] == 2
            await until(lambda: not shard._stored, what="the refused record deleted")
            assert await ctx.store.load(KEY, 0, 1) is None  # type: ignore[union-attr]
        finally:
            await shard.close()


class MemoryStore:
    """A store of the documented protocol, in memory: what a user would plug in."""

    def __init__(self) -> None:
        self.records: dict[tuple[int, int, int], sessions.SessionRecord] = {}
        self.deleted: list[tuple[int, int, int]] = []

    async def load(self, user_id: int, shard_id: int, shard_count: int) -> sessions.SessionRecord | None:
        return self.records.get((user_id, shard_id, shard_count))

    async def save(self, record: sessions.SessionRecord) -> None:
        self.records[record.user_id, record.shard_id, record.shard_count] = record

    async def delete(self, user_id: int, shard_id: int, shard_count: int) -> None:
        self.deleted.append((user_id, shard_id, shard_count))
        self.records.pop((user_id, shard_id, shard_count), None)

    async def close(self) -> None:
        pass


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"saved_at": time.time() - 3_600}, "old"),
        ({"shard_count": 2}, "shard 0 of 2"),
        ({"intents": 1}, "intents 1"),
    ],
)
async def test_a_saved_session_that_does_not_fit_is_identified_anew_and_deleted(
    change: dict[str, typing.Any], why: str, caplog: pytest.LogCaptureFixture
) -> None:
    store = MemoryStore()
    ctx = context(store)
    async with GatewayEmulator(token=TOKEN) as emulator:
        record = await saved_session(emulator, ctx)
        store.records[KEY, 0, 1] = dataclasses.replace(record, **change)
        manager = Recorder()
        shard = shard_in(ctx, emulator, manager=manager)
        with caplog.at_level(logging.INFO, "hikari.gateway.0"):
            async with running(shard):
                await works(shard, emulator, manager)
                assert emulator.identifies[0] == 2
                assert emulator.resumes[0] == 0
                await until(lambda: store.deleted == [(KEY, 0, 1)], what="the record deleted")
    assert any(why in r.getMessage() for r in caplog.records if "not resuming" in r.getMessage())


@contextlib.contextmanager
def silent_server() -> typing.Iterator[int]:
    """A loopback TCP server that accepts and never answers (a hung Redis)."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        yield server.getsockname()[1]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class FullDisk(MemoryStore):
    async def save(self, record: sessions.SessionRecord) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")


@pytest.mark.parametrize("failure", ["corrupt file", "locked database", "redis down", "redis silent", "full disk"])
async def test_a_store_that_fails_logs_one_warning_and_the_shard_identifies(
    failure: str, tmp_path: pathlib.Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "s.sqlite3"
    lock: sqlite3.Connection | None = None
    with contextlib.ExitStack() as stack:
        store: sessions.SessionStore
        if failure == "corrupt file":
            path.write_bytes(b"this is not a database" * 100)
            store = sessions.SQLiteSessionStore(path, timeout=0.5)
        elif failure == "locked database":
            store = sessions.SQLiteSessionStore(path, timeout=0.3)
            await store.delete(KEY, 0, 1)  # creates the file and tables
            lock = sqlite3.connect(path, isolation_level=None)
            lock.execute("BEGIN EXCLUSIVE")
        elif failure == "redis down":
            store = sessions.RedisSessionStore(f"redis://127.0.0.1:{closed_port()}/0", timeout=0.3)
        elif failure == "redis silent":
            port = stack.enter_context(silent_server())
            store = sessions.RedisSessionStore(f"redis://127.0.0.1:{port}/0", timeout=0.3)
        else:
            store = FullDisk()
        ctx = context(store)
        async with GatewayEmulator(token=TOKEN) as emulator:
            manager = Recorder()
            shard = shard_in(ctx, emulator, manager=manager)
            started = time.monotonic()
            with caplog.at_level(logging.WARNING, "hikari.gateway.0"):
                async with running(shard):
                    await works(shard, emulator, manager)
                    assert emulator.identifies[0] == 1
                    # A resumable close with a store that cannot save: a WARNING, not an error, and no hang.
                    await asyncio.wait_for(shard.close(resumable=True), TIMEOUT)
            assert time.monotonic() - started < TIMEOUT + 5
        if lock is not None:
            lock.close()
    warnings = store_warnings(caplog)
    expected = 1 if failure == "full disk" else 2  # full disk: only the save fails; else the load and the save
    assert len(warnings) == expected, warnings
    assert all(TOKEN not in message for message in warnings)


async def test_warm_restarts_with_an_enabled_cache_say_what_it_will_lack(
    tmp_path: pathlib.Path, caplog: pytest.LogCaptureFixture
) -> None:
    import hikari

    import hikari_shard

    async with GatewayEmulator(token=TOKEN) as emulator:
        bot = hikari_shard.GatewayBot(TOKEN, rest_url=emulator.rest_url, banner=None, sessions=tmp_path / "s.sqlite3")
        with caplog.at_level(logging.WARNING, "hikari_shard"):
            await asyncio.wait_for(bot.start(check_for_updates=False), TIMEOUT)
        try:
            warnings = [r.getMessage() for r in caplog.records if "warm restarts are on" in r.getMessage()]
            assert len(warnings) == 1
            assert "guilds" in warnings[0]
            assert "members" in warnings[0]
        finally:
            await asyncio.wait_for(bot.close(), TIMEOUT)
        # The bot's close kept the session (a store is configured): code 3000, and a record to resume.
        assert emulator.connections[-1].close_code == 3000
        record = await sessions.SQLiteSessionStore(tmp_path / "s.sqlite3").load(KEY, 0, 1)
        assert record is not None

        # A cache-less bot is warned of nothing, and its start resumes (no IDENTIFY).
        caplog.clear()
        bot = hikari_shard.GatewayBot(
            TOKEN,
            rest_url=emulator.rest_url,
            banner=None,
            sessions=tmp_path / "s.sqlite3",
            cache_settings=hikari.impl.CacheSettings(components=hikari.api.CacheComponents.NONE),
        )
        with caplog.at_level(logging.WARNING, "hikari_shard"):
            await asyncio.wait_for(bot.start(check_for_updates=False), TIMEOUT)
        try:
            assert not [r for r in caplog.records if "warm restarts are on" in r.getMessage()]
            assert emulator.identifies[0] == 1
            assert emulator.resumes[0] == 1
        finally:
            await asyncio.wait_for(bot.close(resumable=False), TIMEOUT)
        assert emulator.connections[-1].close_code == 1001
        assert await sessions.SQLiteSessionStore(tmp_path / "s.sqlite3").load(KEY, 0, 1) is None


def test_install_keeps_hikaris_start_and_says_so_when_a_bot_internal_it_reads_is_gone(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from hikari.impl import gateway_bot

    import hikari_shard
    from hikari_shard import _install

    assert _install._bot_internals_missing() == ""  # hikari 2.7, as CI runs it
    monkeypatch.setattr(_install, "_BOT_ATTRIBUTES", (*_install._BOT_ATTRIBUTES, "_renamed_in_a_later_hikari"))
    with caplog.at_level(logging.WARNING, "hikari_shard"):
        hikari_shard.install()
    try:
        assert gateway_bot.GatewayBot.start is _install.ORIGINAL_START
        assert gateway_bot.GatewayBot.close is _install.ORIGINAL_CLOSE
        assert any("_renamed_in_a_later_hikari" in r.getMessage() for r in caplog.records)
        assert hikari_shard.installed()  # the shard itself is still ours
    finally:
        hikari_shard.uninstall()
    monkeypatch.undo()
    hikari_shard.install()
    try:
        assert gateway_bot.GatewayBot.start is _install._start
    finally:
        hikari_shard.uninstall()
    assert gateway_bot.GatewayBot.start is _install.ORIGINAL_START
