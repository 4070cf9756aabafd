"""The emulator keeps sessions and enforces IDENTIFY limits the way Discord does.

Warm-restart and identify-queue tests trust these rules: a session outlives its client for
``session_timeout``, missed dispatches come back on RESUME in order, 1000/1001 end a session, each
identify bucket takes one IDENTIFY per ``identify_interval`` (else 4008), and a spent
``session_start_limit`` resets the token (4004).  If one of these fails, those tests would pass
against a gateway that does not behave like Discord's.
"""

from __future__ import annotations

import asyncio
import contextlib
import typing

import aiohttp
import orjson

import helpers
from helpers import Recorder, make_shard, running, until
from hikari_shard.testing import EmulatedConnection, GatewayEmulator

TOKEN = "sessions-test-token"
TIMEOUT = 5.0


class Client:
    """A bare gateway client without compression."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.connection: EmulatedConnection | None = None

    async def recv(self) -> dict[str, typing.Any]:
        message = await self.ws.receive(timeout=TIMEOUT)
        assert message.type == aiohttp.WSMsgType.TEXT, message
        return typing.cast("dict[str, typing.Any]", orjson.loads(message.data))

    async def send(self, op: int, d: typing.Any) -> None:
        await self.ws.send_bytes(orjson.dumps({"op": op, "d": d}))

    async def identify(self, shard: tuple[int, int] = (0, 1)) -> None:
        # Intents 0: no GUILD_CREATE, so READY is the only dispatch of a new session.
        await self.send(2, {"token": TOKEN, "intents": 0, "shard": list(shard), "properties": {}})

    async def ready(self, shard: tuple[int, int] = (0, 1)) -> dict[str, typing.Any]:
        await self.identify(shard)
        ready = await self.recv()
        assert (ready["op"], ready["t"]) == (0, "READY"), ready
        return ready

    async def resume(self, session_id: str, seq: int) -> None:
        await self.send(6, {"token": TOKEN, "session_id": session_id, "seq": seq})

    async def closed_with(self) -> int | None:
        while True:
            message = await self.ws.receive(timeout=TIMEOUT)
            if message.type in {aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING}:
                return self.ws.close_code


@contextlib.asynccontextmanager
async def client(emulator: GatewayEmulator) -> typing.AsyncIterator[Client]:
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(f"{emulator.url}/?v=10&encoding=json", timeout=aiohttp.ClientWSTimeout(ws_close=2.0)) as ws,
    ):
        peer = Client(ws)
        hello = await peer.recv()
        assert hello["op"] == 10
        peer.connection = emulator.connections[-1]  # clients connect one at a time: this is ours
        yield peer


async def gateway_bot(emulator: GatewayEmulator) -> dict[str, typing.Any]:
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{emulator.rest_url}/gateway/bot", headers={"Authorization": f"Bot {TOKEN}"}) as response,
    ):
        assert response.status == 200
        return typing.cast("dict[str, typing.Any]", await response.json())


async def leave(peer: Client, how: str) -> None:
    """End the client's connection (``abort``: TCP reset; else a close code) and wait for the emulator to see it."""
    connection = peer.connection
    assert connection is not None
    if how == "abort":
        transport = peer.ws._response.connection.transport  # type: ignore[union-attr]
        assert transport is not None
        transport.abort()
    else:
        await peer.ws.close(code=int(how))
    await connection.wait_closed(timeout=TIMEOUT)


async def test_a_session_outlives_a_dropped_client_and_resume_replays_exactly_what_was_missed() -> None:
    # A bot whose TCP connection dies (or that closes with 4000) must get back every event it missed.
    async with GatewayEmulator(token=TOKEN, session_timeout=60.0) as emulator:
        for how in ("abort", "4000"):
            async with client(emulator) as peer:
                session_id = (await peer.ready())["d"]["session_id"]
                for k in range(3):
                    await emulator.dispatch("MESSAGE_CREATE", {"k": k}, shard_id=0)
                seen = [await peer.recv() for _ in range(3)]
                assert [p["d"]["k"] for p in seen] == [0, 1, 2]
                await leave(peer, how)
            session = emulator.latest_session(0)
            assert session is not None
            assert session.session_id == session_id
            assert session.connection is None
            assert session.detached_at is not None
            assert session.resumable
            # While nobody is connected: stored, then replayed.
            await emulator.dispatch_many([("MESSAGE_CREATE", {"k": k}) for k in range(3, 6)], shard_id=0)
            await emulator.dispatch("TYPING_START", {"k": 6}, shard_id=0)
            async with client(emulator) as peer:
                await peer.resume(session_id, seen[-1]["s"])
                replay = [await peer.recv() for _ in range(5)]
                assert [(p["t"], p["d"].get("k")) for p in replay] == [
                    ("MESSAGE_CREATE", 3),
                    ("MESSAGE_CREATE", 4),
                    ("MESSAGE_CREATE", 5),
                    ("TYPING_START", 6),
                    ("RESUMED", None),
                ]
                seqs = [p["s"] for p in replay]
                assert seqs == list(range(seen[-1]["s"] + 1, seen[-1]["s"] + 6))
                await emulator.dispatch("MESSAGE_CREATE", {"k": 7}, shard_id=0)
                live = await peer.recv()
                assert (live["t"], live["s"], live["d"]["k"]) == ("MESSAGE_CREATE", seqs[-1] + 1, 7)
                assert session.connection is emulator.connections[-1]
                assert session.detached_at is None
                await peer.ws.close(code=1000)
            await emulator.connections[-1].wait_closed(timeout=TIMEOUT)


async def test_resume_after_session_timeout_is_refused_and_a_resume_in_time_resets_the_clock() -> None:
    # Discord forgets a session some time after its client left: a RESUME then gets INVALID_SESSION false.
    async with GatewayEmulator(token=TOKEN, session_timeout=0.3) as emulator:
        async with client(emulator) as peer:
            session_id = (await peer.ready())["d"]["session_id"]
            await leave(peer, "4000")
        await asyncio.sleep(0.2)
        async with client(emulator) as peer:  # 0.2 s < 0.3 s: resumed, the clock stops
            await peer.resume(session_id, 1)
            assert (await peer.recv())["t"] == "RESUMED"
            await asyncio.sleep(0.2)  # attached: 0.4 s after the first disconnect, still the same session
            await leave(peer, "abort")
        await asyncio.sleep(0.2)
        async with client(emulator) as peer:  # 0.2 s after the second disconnect: still in time
            await peer.resume(session_id, 1)
            assert (await peer.recv())["t"] == "RESUMED"
            await leave(peer, "4000")
        session = emulator.sessions[session_id]
        await until(lambda: not session.resumable, timeout=TIMEOUT, what="the session to time out")
        async with client(emulator) as peer:
            await peer.resume(session_id, 1)
            assert await peer.recv() == {"t": None, "s": None, "op": 9, "d": False}
        assert emulator.resumes[0] == 2
        assert [entry[1:] for entry in emulator.resume_log] == [(0, session_id, 1), (0, session_id, 1)]


async def test_session_timeout_none_keeps_a_session_forever() -> None:
    async with GatewayEmulator(token=TOKEN, session_timeout=None) as emulator:
        async with client(emulator) as peer:
            session_id = (await peer.ready())["d"]["session_id"]
            await leave(peer, "abort")
        await asyncio.sleep(0.3)
        async with client(emulator) as peer:
            await peer.resume(session_id, 1)
            assert (await peer.recv())["t"] == "RESUMED"


async def test_client_close_with_1000_or_1001_invalidates_the_session() -> None:
    async with GatewayEmulator(token=TOKEN, session_timeout=None) as emulator:
        for code in ("1000", "1001"):
            async with client(emulator) as peer:
                session_id = (await peer.ready())["d"]["session_id"]
                await leave(peer, code)
            assert not emulator.sessions[session_id].resumable
            await emulator.dispatch("MESSAGE_CREATE", {"k": 1}, shard_id=0)  # still stored, never replayed
            async with client(emulator) as peer:
                await peer.resume(session_id, 1)
                assert await peer.recv() == {"t": None, "s": None, "op": 9, "d": False}
        assert emulator.resumes == {}
        assert emulator.identifies == {0: 2}


async def test_identify_and_resume_counts_per_shard() -> None:
    async with GatewayEmulator(token=TOKEN, shard_count=2) as emulator:
        async with client(emulator) as zero, client(emulator) as one:
            session_zero = (await zero.ready((0, 2)))["d"]["session_id"]
            await one.ready((1, 2))
            await leave(zero, "4000")
        assert emulator.identifies == {0: 1, 1: 1}
        assert [shard for _, shard in emulator.identify_log] == [0, 1]
        async with client(emulator) as peer:
            await peer.resume(session_zero, 1)
            assert (await peer.recv())["t"] == "RESUMED"
        async with client(emulator) as peer:  # a failed RESUME counts nowhere
            await peer.resume("no-such-session", 1)
            assert (await peer.recv())["d"] is False
        async with client(emulator) as peer:  # a refused IDENTIFY is logged, not counted
            await peer.identify((0, 3))
            assert await peer.closed_with() == 4011
        assert emulator.identifies == {0: 1, 1: 1}
        assert emulator.resumes == {0: 1}
        assert [entry[1:] for entry in emulator.resume_log] == [(0, session_zero, 1)]
        assert [shard for _, shard in emulator.identify_log] == [0, 1, 0]
        assert len(emulator.identify_times) == 2
        assert [session.session_id for session in emulator.sessions_for(0)] == [session_zero]
        assert emulator.latest_session(2) is None


async def test_identify_buckets_are_enforced_with_4008() -> None:
    # Discord closes a connection whose IDENTIFY comes too soon after another of its bucket.
    async with (
        GatewayEmulator(
            token=TOKEN, shard_count=4, max_concurrency=2, enforce_identify_buckets=True, identify_interval=0.3
        ) as emulator,
        client(emulator) as zero,
        client(emulator) as one,
    ):
        await asyncio.gather(zero.ready((0, 4)), one.ready((1, 4)))  # buckets 0 and 1: both accepted
        assert emulator.bucket_violations == []
        async with client(emulator) as two:  # bucket 0 again, at once: refused
            await two.identify((2, 4))
            assert await two.recv() == {"t": None, "s": None, "op": 9, "d": False}
            assert await two.closed_with() == 4008
        assert [(shard, bucket) for _, shard, bucket in emulator.bucket_violations] == [(2, 0)]
        assert emulator.identifies == {0: 1, 1: 1}
        assert emulator.latest_session(2) is None
        loop = asyncio.get_running_loop()
        await asyncio.sleep(max(0.0, emulator.identify_times[0] + 0.3 - loop.time()) + 0.05)
        async with client(emulator) as two:
            await two.ready((2, 4))
        assert emulator.identifies == {0: 1, 1: 1, 2: 1}
        assert len(emulator.bucket_violations) == 1


async def test_identify_buckets_are_not_enforced_by_default() -> None:
    async with GatewayEmulator(token=TOKEN, shard_count=2) as emulator:
        async with client(emulator) as zero, client(emulator) as one:
            await zero.ready((0, 2))
            await one.ready((1, 2))
        assert emulator.bucket_violations == []
        assert emulator.identifies == {0: 1, 1: 1}


async def test_a_spent_session_start_limit_resets_the_token_with_4004() -> None:
    limit = {"total": 5, "remaining": 2, "reset_after": 60_000}
    async with GatewayEmulator(token=TOKEN, session_start_limit=limit) as emulator:
        before = (await gateway_bot(emulator))["session_start_limit"]
        assert (before["total"], before["remaining"], before["max_concurrency"]) == (5, 2, 1)
        assert 0 < before["reset_after"] <= 60_000
        for _ in range(2):
            async with client(emulator) as peer:
                await peer.ready()
        after = (await gateway_bot(emulator))["session_start_limit"]
        assert (after["total"], after["remaining"]) == (5, 0)
        async with client(emulator) as peer:
            await peer.identify()
            assert await peer.closed_with() == 4004
        assert emulator.token_resets == 1
        assert emulator.identifies == {0: 2}
        assert len(emulator.identify_log) == 3


async def test_the_session_start_limit_is_restored_after_reset_after() -> None:
    async with GatewayEmulator(
        token=TOKEN, session_start_limit={"total": 3, "remaining": 1, "reset_after": 300}
    ) as emulator:
        async with client(emulator) as peer:
            await peer.ready()
        assert emulator.session_start_limit["remaining"] == 0
        await until(lambda: emulator.session_start_limit["remaining"] == 3, what="the budget to reset")
        assert (await gateway_bot(emulator))["session_start_limit"]["remaining"] == 3
        async with client(emulator) as peer:
            await peer.ready()
        assert emulator.token_resets == 0
        assert emulator.session_start_limit["remaining"] == 2


async def test_our_shard_resumes_and_gets_the_events_dispatched_while_it_was_away() -> None:
    # The shard side: a dropped connection, events while away, then RESUME with exactly those events.
    async with GatewayEmulator(token=helpers.TOKEN, session_timeout=5.0) as emulator:
        manager = Recorder()
        shard = make_shard(emulator, manager=manager)
        async with running(shard):
            await emulator.dispatch("MESSAGE_CREATE", {"k": 0}, shard_id=0)
            await until(lambda: manager.ids() == [0], what="the first message")
            await emulator.connections[-1].drop()
            await emulator.dispatch_many([("MESSAGE_CREATE", {"k": k}) for k in range(1, 4)], shard_id=0)
            resumed = await emulator.wait_for_connection(1, timeout=TIMEOUT)
            await resumed.wait_for_op(6, timeout=TIMEOUT)
            await emulator.dispatch("MESSAGE_CREATE", {"k": 4}, shard_id=0)
            await until(lambda: manager.ids() == [0, 1, 2, 3, 4], what="the missed and the live messages")
        assert emulator.identifies == {0: 1}
        assert emulator.resumes == {0: 1}
