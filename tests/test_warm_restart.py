"""Warm restarts across two real processes: a deploy RESUMEs every shard, and no dispatch is lost or repeated.

Process A runs an unchanged ``hikari.GatewayBot`` with ``hikari_shard.install()`` and a session store
(``HIKARI_SHARD_SESSIONS``), receives some messages and gets SIGTERM.  The emulator dispatches more
while no bot runs.  Process B starts on the same store: the emulator sees RESUMEs and no IDENTIFY, and
B receives exactly the missed messages, in order, then live traffic.  A user would notice a failure as
a deploy that re-identifies every shard (minutes of start-up for a large bot) and drops or repeats
the events sent meanwhile.
"""

from __future__ import annotations

import pathlib
import typing

import pytest

from helpers import TOKEN
from hikari_shard.testing import GatewayEmulator
from hikari_shard.testing.restart import BotProcess, message

SHARD_COUNT: typing.Final = 2
BEFORE: typing.Final = 4  # messages per shard received by A
MISSED: typing.Final = 5  # messages per shard dispatched while no bot runs
LIVE: typing.Final = 3  # messages per shard dispatched once B is up


@pytest.fixture(params=["sqlite", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> str:
    if request.param == "redis":
        url = request.getfixturevalue("redis_url")
        return f"{url}"
    return str(tmp_path / "sessions.sqlite3")


async def dispatch(emulator: GatewayEmulator, indexes: range) -> None:
    for shard_id in range(SHARD_COUNT):
        for index in indexes:
            await emulator.dispatch("MESSAGE_CREATE", message(index, shard_id=shard_id), shard_id=shard_id)


async def test_a_deploy_resumes_every_shard_and_delivers_exactly_what_was_missed(
    store: str, tmp_path: pathlib.Path
) -> None:
    async with GatewayEmulator(token=TOKEN, shard_count=SHARD_COUNT, max_concurrency=SHARD_COUNT) as emulator:
        a = BotProcess(rest_url=emulator.rest_url, token=TOKEN, out=tmp_path / "a.jsonl", sessions=store)
        a.start()
        try:
            await a.wait_for(lambda: len(a.handshakes("ready")) == SHARD_COUNT, what="READY on every shard")
            await dispatch(emulator, range(BEFORE))
            await a.wait_for(lambda: len(a.messages()) == SHARD_COUNT * BEFORE, what="A's messages")
            assert await a.terminate() == 0, a.stderr()
        finally:
            a.kill()
        # A closed with a code that keeps the sessions (never 1000/1001).
        assert [c.close_code for c in emulator.connections] == [3000] * SHARD_COUNT
        assert all(session.resumable for session in emulator.sessions.values())
        identifies = len(emulator.identify_times)
        assert identifies == SHARD_COUNT

        await dispatch(emulator, range(BEFORE, BEFORE + MISSED))

        b = BotProcess(rest_url=emulator.rest_url, token=TOKEN, out=tmp_path / "b.jsonl", sessions=store)
        b.start()
        try:
            await b.wait_for(lambda: len(b.handshakes("resumed")) == SHARD_COUNT, what="RESUMED on every shard")
            await b.wait_for(lambda: len(b.messages()) == SHARD_COUNT * MISSED, what="the replay")
            await dispatch(emulator, range(BEFORE + MISSED, BEFORE + MISSED + LIVE))
            total = SHARD_COUNT * (MISSED + LIVE)
            await b.wait_for(lambda: len(b.messages()) == total, what="live traffic after the replay")
            assert await b.terminate() == 0, b.stderr()
        finally:
            b.kill()

    assert len(emulator.identify_times) == identifies, "B identified instead of resuming"
    assert not b.handshakes("ready")
    for shard_id in range(SHARD_COUNT):
        assert a.messages(shard_id) == list(range(BEFORE))
        # Exactly the missed ones, in order, then the live ones: none twice, none skipped.
        assert b.messages(shard_id) == list(range(BEFORE, BEFORE + MISSED + LIVE))
