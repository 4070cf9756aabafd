"""``GatewayShardImpl.adopt_session``: a shard resumes a session another process opened (a hand-off).

What a shard manager relies on (``hikari_shard.integrations.orchestrator`` hands the manager's record to
the shard's next worker with it): the next ``start()`` RESUMEs the adopted session and receives what
Discord sent after its seq; a session Discord refuses ends in one IDENTIFY and a working shard; and
after a resumable close the shard still reports the kept session (``_session_id``/``_seq``, what the
orchestrator's worker sends its manager when the shard stops).
"""

from __future__ import annotations

import hikari
import pytest

from helpers import TOKEN, Recorder, make_shard, running, until
from hikari_shard.testing import GatewayEmulator


async def test_an_adopted_session_is_resumed_from_its_seq() -> None:
    async with GatewayEmulator(token=TOKEN) as emulator:
        first = make_shard(emulator)  # the shard in the old process
        await first.start()
        await emulator.dispatch("MESSAGE_CREATE", {"k": 0})
        await until(lambda: first._seq is not None and first._seq >= 2, what="the first dispatch")
        session_id, seq = first._session_id, first._seq
        await first.close(resumable=True)
        await emulator.dispatch("MESSAGE_CREATE", {"k": 1})  # missed while no process runs the shard

        manager = Recorder()
        second = make_shard(emulator, manager=manager)
        second.adopt_session(session_id, seq)
        assert second._session_id == session_id
        async with running(second):
            await until(lambda: manager.ids() == [1], what="the replay")
            assert emulator.identifies[0] == 1
            assert emulator.resumes[0] == 1
            assert emulator.resume_log[-1][2:] == (session_id, seq)
            await emulator.dispatch("MESSAGE_CREATE", {"k": 2})
            await until(lambda: manager.ids() == [1, 2], what="a live dispatch")


async def test_a_refused_adopted_session_ends_in_one_identify() -> None:
    async with GatewayEmulator(token=TOKEN) as emulator:
        manager = Recorder()
        shard = make_shard(emulator, manager=manager)
        shard.adopt_session("no-such-session", 5)
        async with running(shard):
            assert emulator.identifies[0] == 1
            assert emulator.resumes[0] == 0
            await emulator.dispatch("MESSAGE_CREATE", {"k": 7})
            await until(lambda: manager.ids() == [7], what="a live dispatch")


async def test_a_resumable_close_still_reports_the_kept_session() -> None:
    async with GatewayEmulator(token=TOKEN) as emulator:
        shard = make_shard(emulator)
        await shard.start()
        await emulator.dispatch("MESSAGE_CREATE", {"k": 0})
        await until(lambda: shard._seq is not None and shard._seq >= 2, what="the dispatch")
        session_id, seq = shard._session_id, shard._seq
        await shard.close(resumable=True)
        assert (shard._session_id, shard._seq) == (session_id, seq)
        assert emulator.connections[-1].close_code == 3000
        await shard.start()  # and the next start resumes it
        try:
            assert emulator.resumes[0] == 1
            assert emulator.identifies[0] == 1
        finally:
            await shard.close(resumable=False)
        assert (shard._session_id, shard._seq) == (None, None)


async def test_adopt_session_checks_its_arguments_and_the_shards_state() -> None:
    async with GatewayEmulator(token=TOKEN) as emulator:
        shard = make_shard(emulator)
        for session_id, seq in (("", 1), ("abc", -1), ("abc", True), ("abc", "1")):
            with pytest.raises(ValueError, match="session id"):
                shard.adopt_session(session_id, seq)
        async with running(shard):
            with pytest.raises(hikari.ComponentStateConflictError):
                shard.adopt_session("abc", 1)
