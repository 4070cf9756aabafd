"""The drop-in lifecycle: every state a hikari bot can drive a shard through, ours next to hikari's stock shard.

Each row of the table below is one parametrised case, run on our shard (compiled and pure: the whole
suite runs once per implementation) and on hikari 2.7's stock shard, against the gateway emulator on
127.0.0.1.  A row asserts what each shard does; where they differ, the README's table of differences
from hikari 2.7 lists the row and why.  After every row nothing may be left behind: no task, no socket
(:func:`helpers.no_leaks`) and no command waiting on a rate limiter.

==============================================  ==========================================  =========
row                                             behaviour                                   ours vs
                                                                                            stock
==============================================  ==========================================  =========
start                                           READY; alive, connected, user id, latency   same
start twice (one after the other, concurrent)   the second raises ComponentStateConflict    same
start while closing                             ComponentStateConflictError                 same
close before start                              ComponentStateConflictError, nothing sent   same
close twice, one after the other                the second raises ComponentStateConflict    same
close twice concurrently                        both return; closed with 1001               same
close cancelled, then close again               stock: the cancelled close() returns        different
                                                ours: CancelledError, the next close() ends
join before start / after close                 ComponentStateConflictError                 same
join while closing                              returns once the shard has stopped          same
commands before start / after close             ComponentStateConflictError, nothing sent   same
commands while reconnecting                     ComponentStateConflictError, nothing sent   same
close while a command waits on the rate limit   stock: the command is cancelled             different
                                                ours: ComponentStateConflictError
start again after close                         stock: ComponentStateConflictError          different
                                                ours: a clean new session (IDENTIFY on the
                                                gateway URL, fresh seq, limiter, heartbeat)
after a fatal close code mid-session            join raises it; start refused until close   same
close after a fatal close code                  stock: raises it, forever; start refused    different
                                                ours: returns; start is a new session
start failing with a fatal close code, again    stock: ComponentStateConflictError (and     different
                                                its heartbeat task left running)
                                                ours: a new IDENTIFY, nothing left running
start after the event loop is gone              stock: refused; ours: a new session         different
(closed, or never closed)                       (never closed: start refused until close)
==============================================  ==========================================  =========
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import math
import threading
import typing

import hikari
import pytest
from hikari import errors
from hikari.api import shard as shard_api

from helpers import (
    OURS,
    STOCK,
    TIMEOUT,
    TOKEN,
    Recorder,
    assert_no_client_tasks,
    client_tasks,
    fill_command_limit,
    make_shard,
    no_leaks,
    open_fds,
    until,
)
from hikari_shard.testing import GatewayEmulator

if typing.TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Coroutine

    from hikari_shard.testing import EmulatedConnection

GUILD: typing.Final = 123456789012345678
COMMANDS: typing.Final[dict[str, Callable[[typing.Any], Coroutine[typing.Any, typing.Any, None]]]] = {
    "update_presence": lambda shard: shard.update_presence(status=hikari.Status.IDLE),
    "update_voice_state": lambda shard: shard.update_voice_state(GUILD, None),
    "request_guild_members": lambda shard: shard.request_guild_members(GUILD, query="a", limit=1),
    "request_channel_info": lambda shard: shard.request_channel_info(GUILD, fields=[shard_api.ChannelInfoField.STATUS]),
}
COMMAND_OPS: typing.Final = frozenset({3, 4, 8, 43})
IDENTIFY: typing.Final = 2
RESUME: typing.Final = 6
IMPLEMENTATIONS: typing.Final = {"ours": OURS, "stock": STOCK}
Conflict: typing.Final = errors.ComponentStateConflictError


class HookedRecorder(Recorder):
    """A recorder that calls ``on_disconnected`` when the shard dispatches its disconnected event.

    Both shards dispatch it while tearing a connection down, after they let go of the websocket:
    the moment a listener of ``ShardDisconnectedEvent`` would run, between two connections.
    """

    def __init__(self) -> None:
        super().__init__()
        self.on_disconnected: Callable[[], None] | None = None

    def dispatch(self, event: object, *, return_tasks: bool = False) -> asyncio.Future[typing.Any]:
        if event == "disconnected" and self.on_disconnected is not None:
            self.on_disconnected()
        return super().dispatch(event, return_tasks=return_tasks)


@dataclasses.dataclass
class Case:
    stock: bool
    emulator: GatewayEmulator
    recorder: HookedRecorder
    shard: typing.Any

    def connections(self) -> int:
        return len(self.emulator.connections)

    def ops(self, index: int) -> list[int]:
        return [payload["op"] for payload in self.emulator.connections[index].received]

    async def start(self) -> None:
        await asyncio.wait_for(self.shard.start(), TIMEOUT)

    async def close(self) -> None:
        await asyncio.wait_for(self.shard.close(), TIMEOUT)

    async def heartbeat_round_trip(self, connection: EmulatedConnection) -> None:
        """Ask for a heartbeat (op 1) and wait for its ACK: ``heartbeat_latency`` becomes a number."""
        sent = len(connection.received)
        await connection.request_heartbeat()
        await until(lambda: 1 in [p["op"] for p in connection.received[sent:]], what="the requested heartbeat")
        await until(lambda: not math.isnan(self.shard.heartbeat_latency), what="a heartbeat latency")


def assert_not_started(shard: typing.Any) -> None:
    assert not shard.is_alive
    assert not shard.is_connected
    with pytest.raises(Conflict):
        shard.get_user_id()


def command_waiters(shard: typing.Any) -> int:
    """Commands waiting on the shard's outgoing rate limiter(s)."""
    if isinstance(shard, OURS):
        return int(shard._limiter.waiting)
    return len(shard._total_rate_limit.queue) + len(shard._non_priority_rate_limit.queue)


async def all_commands_refused(shard: typing.Any) -> None:
    for name, command in COMMANDS.items():
        with pytest.raises(Conflict):
            await asyncio.wait_for(command(shard), TIMEOUT)
        assert command_waiters(shard) == 0, name


# -- the rows ------------------------------------------------------------------------------------------

Row = typing.Callable[[Case], "Awaitable[None]"]
ROWS: dict[str, Row] = {}


def row(function: Row) -> Row:
    ROWS[function.__name__.removeprefix("row_").replace("_", " ")] = function
    return function


@row
async def row_start(case: Case) -> None:
    shard = case.shard
    assert_not_started(shard)
    assert math.isnan(shard.heartbeat_latency)
    await case.start()
    assert shard.is_alive
    assert shard.is_connected
    assert shard.get_user_id() == case.emulator.user_id
    assert case.ops(0)[:1] == [IDENTIFY]
    assert case.emulator.connections[0].query.get("via") == "gateway"
    await case.heartbeat_round_trip(case.emulator.connections[0])
    assert shard.heartbeat_latency >= 0
    latency = shard.heartbeat_latency
    await case.close()
    assert_not_started(shard)
    assert shard.heartbeat_latency == latency, "the most recent latency is kept after close() (as hikari does)"
    assert case.emulator.connections[0].close_code == 1001


@row
async def row_start_twice(case: Case) -> None:
    await case.start()
    with pytest.raises(Conflict):
        await case.start()
    assert case.shard.is_connected
    assert case.connections() == 1


@row
async def row_start_twice_concurrently(case: Case) -> None:
    results = await asyncio.wait_for(
        asyncio.gather(case.shard.start(), case.shard.start(), return_exceptions=True), TIMEOUT
    )
    assert results[0] is None
    assert isinstance(results[1], Conflict)
    assert case.shard.is_connected
    assert case.connections() == 1


@row
async def row_start_while_closing(case: Case) -> None:
    await case.start()
    closing = asyncio.ensure_future(case.shard.close())
    await asyncio.sleep(0)  # close() is under way
    assert not closing.done()
    with pytest.raises(Conflict):
        await case.start()
    await asyncio.wait_for(closing, TIMEOUT)
    assert_not_started(case.shard)
    assert case.connections() == 1


@row
async def row_close_before_start(case: Case) -> None:
    with pytest.raises(Conflict):
        await case.close()
    assert_not_started(case.shard)
    assert case.connections() == 0


@row
async def row_close_twice_one_after_the_other(case: Case) -> None:
    await case.start()
    await case.close()
    with pytest.raises(Conflict):
        await case.close()
    assert_not_started(case.shard)


@row
async def row_close_twice_concurrently(case: Case) -> None:
    await case.start()
    results = await asyncio.wait_for(asyncio.gather(case.shard.close(), case.shard.close()), TIMEOUT)
    assert results == [None, None]
    assert_not_started(case.shard)
    await case.emulator.connections[0].wait_closed()
    assert case.emulator.connections[0].close_code == 1001
    with pytest.raises(Conflict):
        await case.close()


@row
async def row_close_cancelled_then_close_again(case: Case) -> None:
    shard = case.shard
    await case.start()
    closing = asyncio.ensure_future(shard.close())
    await asyncio.sleep(0)  # close() is waiting for the shard to disconnect
    assert not closing.done()
    closing.cancel()
    await asyncio.wait([closing], timeout=TIMEOUT)
    if case.stock:
        # hikari's close() swallows its own cancellation and calls the shard closed at once.
        assert not closing.cancelled()
        assert closing.result() is None
        assert_not_started(shard)
        await case.emulator.connections[0].wait_closed()
        return
    assert closing.cancelled(), "close() must not swallow its own cancellation"
    assert shard.is_alive, "still closing: the next close() finishes the job"
    with pytest.raises(Conflict):
        await case.start()
    await case.close()
    assert_not_started(shard)
    assert case.emulator.connections[0].close_code == 1001


@row
async def row_join_before_start(case: Case) -> None:
    with pytest.raises(Conflict):
        await case.shard.join()


@row
async def row_join_after_close(case: Case) -> None:
    await case.start()
    await case.close()
    with pytest.raises(Conflict):
        await case.shard.join()


@row
async def row_join_while_closing(case: Case) -> None:
    await case.start()
    joining_first = asyncio.ensure_future(case.shard.join())
    await asyncio.sleep(0.05)
    assert not joining_first.done(), "join() returned while the shard runs"
    closing = asyncio.ensure_future(case.shard.close())
    await asyncio.sleep(0)  # close() is under way
    assert not closing.done()
    joining_late = asyncio.ensure_future(case.shard.join())
    assert await asyncio.wait_for(asyncio.gather(closing, joining_first, joining_late), TIMEOUT) == [None] * 3
    assert_not_started(case.shard)


@row
async def row_commands_before_start(case: Case) -> None:
    await all_commands_refused(case.shard)
    assert case.connections() == 0


@row
async def row_commands_after_close(case: Case) -> None:
    await case.start()
    sent = len(case.emulator.connections[0].received)
    await case.close()
    await all_commands_refused(case.shard)
    assert case.connections() == 1
    assert len(case.emulator.connections[0].received) == sent


@row
async def row_commands_while_reconnecting(case: Case) -> None:
    await case.start()
    shard = case.shard
    attempts: list[asyncio.Future[None]] = []
    connected: list[bool] = []

    def between_connections() -> None:
        case.recorder.on_disconnected = None
        connected.append(shard.is_connected)
        attempts.extend(asyncio.ensure_future(command(shard)) for command in COMMANDS.values())

    case.recorder.on_disconnected = between_connections
    await case.emulator.connections[0].close(4000, "reconnect, please")
    await until(lambda: "RESUMED" in case.recorder.names() and shard.is_connected, what="the resume")
    assert connected == [False]
    results = await asyncio.wait_for(asyncio.gather(*attempts, return_exceptions=True), TIMEOUT)
    assert [type(result) for result in results] == [Conflict] * len(COMMANDS)
    assert case.ops(1)[:1] == [RESUME]
    assert not COMMAND_OPS & {*case.ops(0), *case.ops(1)}, "a refused command was sent"


@row
async def row_close_while_a_command_waits_on_the_rate_limit(case: Case) -> None:
    await case.start()
    shard = case.shard
    _, sending = await fill_command_limit(shard)
    assert command_waiters(shard) == 1
    await case.close()
    await asyncio.wait([sending], timeout=TIMEOUT)
    assert sending.done(), "close() left the command waiting"
    if case.stock:
        assert sending.cancelled(), "hikari cancels the waiting command"
        return
    assert isinstance(sending.exception(), Conflict)
    # The limiter close() closed does not leak into the next session: commands go out at once again.
    await case.start()
    connection = case.emulator.connections[-1]
    for _ in range(5):
        await asyncio.wait_for(shard.update_presence(status=hikari.Status.ONLINE), TIMEOUT)
    await until(lambda: [p["op"] for p in connection.received].count(3) == 5, what="the new session's commands")


@row
async def row_start_again_after_close(case: Case) -> None:
    shard = case.shard
    emulator = case.emulator
    await case.start()
    first = emulator.connections[0]
    await emulator.dispatch("MESSAGE_CREATE", {"k": 0})
    await case.heartbeat_round_trip(first)
    old_session = first.session
    assert old_session is not None
    await case.close()
    assert first.close_code == 1001, "close() ends the session on Discord's side"
    emulator.ack_heartbeats = False  # a latency seen after the restart can only be the old one

    if case.stock:
        with pytest.raises(Conflict):
            await case.start()
        assert_not_started(shard)
        assert case.connections() == 1, "hikari sends nothing"
        return

    assert shard._session_id is None
    assert shard._seq is None
    assert shard.resume_gateway_url is None
    await case.start()
    assert shard.is_alive
    assert shard.is_connected
    assert shard.get_user_id() == emulator.user_id
    assert math.isnan(shard.heartbeat_latency), "the new session has no heartbeat latency yet"
    assert case.connections() == 2
    second = emulator.connections[1]
    assert case.ops(1)[:1] == [IDENTIFY], "a new session, not a RESUME of the one close() ended"
    assert second.query.get("via") == "gateway", "connected to the gateway URL, not the old resume_gateway_url"
    assert second.session is not None
    assert second.session is not old_session
    assert shard._session_id == second.session.session_id
    # The sequence restarted with the new session: the heartbeat carries the new session's seq.
    assert shard._seq == second.session.seq
    assert second.session.seq < old_session.seq
    emulator.ack_heartbeats = True
    await case.heartbeat_round_trip(second)
    assert [p["d"] for p in second.received if p["op"] == 1][-1] == second.session.seq
    await emulator.dispatch("MESSAGE_CREATE", {"k": 1})
    await until(lambda: len(case.recorder.data_of("MESSAGE_CREATE")) == 2, what="the new session's dispatch")
    await asyncio.wait_for(shard.update_presence(status=hikari.Status.IDLE), TIMEOUT)
    await until(lambda: 3 in case.ops(1), what="a command in the new session")
    await case.close()
    assert_not_started(shard)
    assert second.close_code == 1001


@row
async def row_fatal_close_code_mid_session(case: Case) -> None:
    shard = case.shard
    await case.start()
    await case.emulator.connections[0].close(4004, "Authentication failed.")
    with pytest.raises(errors.GatewayServerClosedConnectionError) as failure:
        await asyncio.wait_for(shard.join(), TIMEOUT)
    assert failure.value.code == 4004
    assert shard.is_alive, "like hikari: alive (not connected) until close()"
    assert not shard.is_connected
    with pytest.raises(Conflict):
        await case.start()
    await all_commands_refused(shard)
    assert case.connections() == 1


@row
async def row_close_after_a_fatal_close_code(case: Case) -> None:
    shard = case.shard
    await case.start()
    await case.emulator.connections[0].close(4004, "Authentication failed.")
    with pytest.raises(errors.GatewayServerClosedConnectionError):
        await asyncio.wait_for(shard.join(), TIMEOUT)
    if case.stock:
        for _ in range(2):  # hikari's close() raises the fatal error every time and the shard stays "alive"
            with pytest.raises(errors.GatewayServerClosedConnectionError):
                await case.close()
            assert shard.is_alive
        with pytest.raises(Conflict):
            await case.start()
        assert case.connections() == 1
        return
    await case.close()
    assert_not_started(shard)
    await case.start()
    assert case.ops(1)[:1] == [IDENTIFY]
    assert shard.get_user_id() == case.emulator.user_id


@row
async def row_start_failing_with_a_fatal_close_code_then_again(case: Case) -> None:
    shard = case.shard
    case.emulator.allowed_intents = 0  # IDENTIFY is refused with 4014 (disallowed intents)
    with pytest.raises(errors.GatewayServerClosedConnectionError) as failure:
        await case.start()
    assert failure.value.code == 4014
    assert_not_started(shard)
    case.emulator.allowed_intents = None
    if case.stock:
        # hikari 2.7 leaves the failed connection's heartbeat task running: stop it, so the row can go on.
        leaked = [task for task in client_tasks() if task.get_coro().__qualname__.endswith("._heartbeat")]
        assert len(leaked) == 1, "hikari's stock shard no longer leaks its heartbeat task here: update the table"
        leaked[0].cancel()
        await asyncio.wait(leaked)
        with pytest.raises(Conflict):
            await case.start()
        assert case.connections() == 1
        return
    await case.start()
    assert case.ops(1)[:1] == [IDENTIFY]
    assert shard.is_connected


@pytest.mark.parametrize("implementation", list(IMPLEMENTATIONS))
@pytest.mark.parametrize("name", list(ROWS))
async def test_lifecycle(name: str, implementation: str) -> None:
    """One row of the lifecycle table; nothing (task, socket, waiter) is left behind."""
    cls = IMPLEMENTATIONS[implementation]
    async with no_leaks(), GatewayEmulator(token=TOKEN, heartbeat_interval=30) as emulator:
        recorder = HookedRecorder()
        shard = make_shard(emulator, cls=cls, manager=recorder, url=f"{emulator.url}/?via=gateway")
        case = Case(stock=cls is STOCK, emulator=emulator, recorder=recorder, shard=shard)
        try:
            await ROWS[name](case)
        finally:
            if shard.is_alive:
                # hikari's close() raises a fatal close code it ended with (see the rows above)
                with contextlib.suppress(errors.GatewayServerClosedConnectionError):
                    await asyncio.wait_for(shard.close(), TIMEOUT)
        assert command_waiters(shard) == 0
        await assert_no_client_tasks(f"after the row {name!r}")


# -- across event loops ----------------------------------------------------------------------------


class ThreadedEmulator:
    """The gateway emulator on its own event loop in a thread, so the client's loops can come and go."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="emulator", daemon=True)
        self.emulator = GatewayEmulator(token=TOKEN, heartbeat_interval=30)

    def call(self, awaitable: Coroutine[typing.Any, typing.Any, typing.Any]) -> typing.Any:
        return asyncio.run_coroutine_threadsafe(awaitable, self.loop).result(TIMEOUT)

    def __enter__(self) -> GatewayEmulator:
        self.thread.start()
        self.call(self.emulator.start())
        return self.emulator

    def __exit__(self, *exc_info: object) -> None:
        try:
            self.call(self.emulator.close())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(TIMEOUT)
            self.loop.close()


@pytest.mark.parametrize("closed", [True, False], ids=["closed", "never closed"])
@pytest.mark.parametrize("implementation", list(IMPLEMENTATIONS))
def test_start_after_the_event_loop_is_gone(implementation: str, closed: bool) -> None:
    """The first session ran in an event loop that is gone (``asyncio.run`` returned); start in a new one.

    ``closed``: the first loop called close().  Otherwise ``asyncio.run`` cancelled the shard's tasks
    on its way out and the shard still counts as alive (as hikari's does): start() is refused until
    close(), which ours can do from the new loop (hikari's close() then returns, but its shard stays
    alive and refuses start() for good).
    """
    cls = IMPLEMENTATIONS[implementation]
    fds = open_fds()
    with ThreadedEmulator() as emulator:
        shard = make_shard(emulator, cls=cls, url=f"{emulator.url}/?via=gateway")

        async def first() -> None:
            await asyncio.wait_for(shard.start(), TIMEOUT)
            if closed:
                await asyncio.wait_for(shard.close(), TIMEOUT)

        async def second() -> None:
            if not closed:
                assert shard.is_alive
                with pytest.raises(Conflict):
                    await shard.start()
                await asyncio.wait_for(shard.close(), TIMEOUT)
            if cls is STOCK:
                # hikari's shard took the cancellation by asyncio.run for a close() under way: its close()
                # now returns without resetting anything, and the shard stays "alive" for good.
                assert shard.is_alive is not closed
                with pytest.raises(Conflict):
                    await shard.start()
                return
            assert_not_started(shard)
            await asyncio.wait_for(shard.start(), TIMEOUT)
            try:
                assert shard.get_user_id() == emulator.user_id
                await asyncio.wait_for(shard.update_presence(status=hikari.Status.IDLE), TIMEOUT)
                await until(lambda: 3 in [p["op"] for p in emulator.connections[-1].received], what="a command")
            finally:
                await asyncio.wait_for(shard.close(), TIMEOUT)
            assert command_waiters(shard) == 0
            await assert_no_client_tasks("after close() in the second loop")

        asyncio.run(first())
        asyncio.run(second())
        connections = emulator.connections
        if cls is OURS:
            assert len(connections) == 2
            assert [payload["op"] for payload in connections[1].received][:1] == [IDENTIFY]
            assert connections[1].query.get("via") == "gateway"
        else:
            assert len(connections) == 1
    assert len(open_fds()) <= len(fds), "a socket outlived the event loops"
