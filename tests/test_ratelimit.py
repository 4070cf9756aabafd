"""The gateway command rate limiter: every command the shard sends asks it first.

If one of these fails, a bot would notice Discord closing the connection with 4008 (rate
limited) after a burst of presence updates, heartbeats stuck behind a queue of member requests
until the connection is declared a zombie, commands sent out of order, or a shard that hangs on
shutdown because a waiter was never released.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import time
import types
import typing

import pytest
from hikari import errors
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

ST_SETTINGS: typing.Final = settings(
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow], deadline=None
)


class FakeClock:
    """A clock that only moves when told to."""

    __slots__ = ("now",)

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """An event loop whose clock jumps straight to the next timer instead of sleeping.

    Everything scheduled for the same instant still runs in the usual order, so a scenario spanning
    minutes of limiter time runs in milliseconds and the same way every time.
    """

    HORIZON: typing.Final = 100_000.0
    """Virtual seconds after which a test is taken to wait forever."""

    def __init__(self) -> None:
        super().__init__()
        self._virtual_now = 0.0
        self._clock_resolution = 1e-9
        select = self._selector.select

        def virtual_select(timeout: float | None = None) -> typing.Any:
            if timeout is None:
                msg = "deadlock: every task waits and no timer is scheduled"
                raise RuntimeError(msg)
            self._virtual_now += timeout
            if self._virtual_now > self.HORIZON:
                msg = f"still waiting after {self.HORIZON} virtual seconds"
                raise RuntimeError(msg)
            return select(0)

        self._selector.select = virtual_select  # type: ignore[method-assign]

    def time(self) -> float:
        return self._virtual_now


def run_virtual(main: typing.Callable[[], typing.Coroutine[typing.Any, typing.Any, typing.Any]]) -> typing.Any:
    loop = VirtualTimeLoop()
    try:
        return loop.run_until_complete(main())
    finally:
        # A failed check leaves waiters behind: finish them so they do not haunt later tests.
        leftovers = asyncio.all_tasks(loop)
        for task in leftovers:
            task.cancel()
        if leftovers:
            loop.run_until_complete(asyncio.wait(leftovers))
        loop.close()


def limiter(impl: types.SimpleNamespace, *args: typing.Any, **kwargs: typing.Any) -> typing.Any:
    return impl.ratelimit.CommandRateLimiter(*args, **kwargs)


# ----------------------------------------------------------------------------------------------
# Construction


@pytest.mark.parametrize(
    ("arguments", "complaint"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 3, "reserved": 3}, "reserved"),
        ({"reserved": -1}, "reserved"),
        ({"period": 0.0}, "period"),
        ({"period": -1.0}, "period"),
        ({"period": math.inf}, "period"),
        ({"period": math.nan}, "period"),
    ],
)
def test_rejects_impossible_limits(
    impl: types.SimpleNamespace, arguments: dict[str, typing.Any], complaint: str
) -> None:
    with pytest.raises(ValueError, match=complaint):
        limiter(impl, **arguments)


def test_defaults_are_discords_limits(impl: types.SimpleNamespace) -> None:
    clock = FakeClock()
    rate_limiter = limiter(impl, clock=clock)
    assert rate_limiter.remaining == 117
    assert sum(rate_limiter.try_acquire() for _ in range(200)) == 117
    assert sum(rate_limiter.try_acquire(priority=True) for _ in range(10)) == 3
    assert rate_limiter.remaining == 0
    assert rate_limiter.waiting == 0
    clock.now += 60.0
    assert rate_limiter.remaining == 117


# ----------------------------------------------------------------------------------------------
# try_acquire with a fake clock


def test_priority_always_has_the_reserved_slots(impl: types.SimpleNamespace) -> None:
    clock = FakeClock()
    rate_limiter = limiter(impl, 5, 10.0, 2, clock=clock)
    assert [rate_limiter.try_acquire() for _ in range(4)] == [True, True, True, False]
    assert rate_limiter.remaining == 0
    assert [rate_limiter.try_acquire(True) for _ in range(3)] == [True, True, False]


def test_priority_sends_count_against_everyone(impl: types.SimpleNamespace) -> None:
    clock = FakeClock()
    rate_limiter = limiter(impl, 5, 10.0, 2, clock=clock)
    assert [rate_limiter.try_acquire(priority=True) for _ in range(2)] == [True, True]
    assert rate_limiter.remaining == 1
    assert [rate_limiter.try_acquire() for _ in range(2)] == [True, False]


def test_window_slides_rather_than_resets(impl: types.SimpleNamespace) -> None:
    clock = FakeClock(0.0)
    rate_limiter = limiter(impl, 3, 10.0, 0, clock=clock)
    assert rate_limiter.try_acquire()
    assert rate_limiter.try_acquire()
    clock.now = 5.0
    assert rate_limiter.try_acquire()
    assert not rate_limiter.try_acquire()
    # A fixed window opened at 0 would hand out 3 fresh slots at 10; a sliding one frees only the two sends from 0.
    clock.now = 10.0
    assert rate_limiter.remaining == 2
    assert [rate_limiter.try_acquire() for _ in range(3)] == [True, True, False]
    clock.now = 15.0
    assert rate_limiter.remaining == 1


def test_a_send_leaves_the_window_exactly_one_period_later(impl: types.SimpleNamespace) -> None:
    clock = FakeClock(100.0)
    rate_limiter = limiter(impl, 1, 2.5, 0, clock=clock)
    assert rate_limiter.try_acquire()
    clock.now = math.nextafter(102.5, 0.0)
    assert not rate_limiter.try_acquire()
    clock.now = 102.5
    assert rate_limiter.try_acquire()


operations = st.lists(
    st.one_of(
        st.tuples(st.just("send"), st.booleans()),
        st.tuples(st.just("wait"), st.sampled_from([0.0, 0.1, 0.5, 1.0, 2.5, 3.0, 7.0, 10.0])),
    ),
    max_size=120,
)


@ST_SETTINGS
@given(
    shape=st.integers(1, 8).flatmap(lambda limit: st.tuples(st.just(limit), st.integers(0, limit - 1))),
    period=st.sampled_from([0.5, 1.0, 3.0, 10.0]),
    steps=operations,
)
def test_window_invariant_holds_for_any_sequence(
    impl: types.SimpleNamespace, shape: tuple[int, int], period: float, steps: list[tuple[str, typing.Any]]
) -> None:
    limit, reserved = shape
    clock = FakeClock(50.0)
    rate_limiter = limiter(impl, limit, period, reserved, clock=clock)
    sent: list[tuple[float, bool]] = []
    for step, argument in steps:
        if step == "wait":
            clock.now += argument
            continue
        in_window = [priority for at, priority in sent if at + period > clock.now]
        cap = limit if argument else limit - reserved
        # Granted exactly when the window allows it: never more, never less.
        assert rate_limiter.try_acquire(argument) is (len(in_window) < cap)
        if len(in_window) < cap:
            sent.append((clock.now, argument))
        assert rate_limiter.remaining == max(
            limit - reserved - len([at for at, _ in sent if at + period > clock.now]), 0
        )
    for at, _ in sent:
        window = [priority for other, priority in sent if at <= other < at + period]
        assert len(window) <= limit
        assert window.count(False) <= limit - reserved


# ----------------------------------------------------------------------------------------------
# Waiting, in virtual time


def test_waiters_are_served_as_the_window_slides(impl: types.SimpleNamespace) -> None:
    async def main() -> list[float]:
        loop = asyncio.get_running_loop()
        rate_limiter = limiter(impl, 2, 10.0, 0, clock=loop.time)
        granted: list[float] = []

        async def send() -> None:
            await rate_limiter.acquire()
            granted.append(loop.time())

        await asyncio.gather(*(send() for _ in range(5)))
        assert rate_limiter.waiting == 0
        return granted

    assert run_virtual(main) == [0.0, 0.0, 10.0, 10.0, 20.0]


def test_priority_waiters_jump_the_queue_and_each_class_is_fifo(impl: types.SimpleNamespace) -> None:
    async def main() -> list[str]:
        loop = asyncio.get_running_loop()
        rate_limiter = limiter(impl, 3, 10.0, 1, clock=loop.time)
        order: list[str] = []

        async def send(name: str, *, priority: bool) -> None:
            await rate_limiter.acquire(priority=priority)
            order.append(name)

        for _ in range(3):
            assert rate_limiter.try_acquire(priority=True)
        tasks = [loop.create_task(send(f"normal-{index}", priority=False)) for index in range(3)]
        await asyncio.sleep(1)
        tasks += [loop.create_task(send(f"heartbeat-{index}", priority=True)) for index in range(2)]
        await asyncio.sleep(1)
        assert rate_limiter.waiting == 5
        await asyncio.gather(*tasks)
        return order

    # At 10 the window empties: both heartbeats go first and use up the non-priority share, so the
    # others follow in arrival order at 20 and 30.
    assert run_virtual(main) == ["heartbeat-0", "heartbeat-1", "normal-0", "normal-1", "normal-2"]


def test_try_acquire_does_not_overtake_waiters(impl: types.SimpleNamespace) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        rate_limiter = limiter(impl, 2, 10.0, 1, clock=loop.time)
        assert rate_limiter.try_acquire()
        waiter = loop.create_task(rate_limiter.acquire())
        await asyncio.sleep(0)
        assert rate_limiter.waiting == 1
        assert not rate_limiter.try_acquire()
        assert rate_limiter.try_acquire(priority=True)  # nobody of equal or higher priority is queued
        priority_waiter = loop.create_task(rate_limiter.acquire(priority=True))
        await asyncio.sleep(0)
        assert not rate_limiter.try_acquire(priority=True)
        await priority_waiter
        assert loop.time() == 10.0
        await waiter  # the priority send at 10 took the only non-priority slot until 20
        assert loop.time() == 20.0

    run_virtual(main)


def test_close_releases_every_waiter_with_the_error(impl: types.SimpleNamespace) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        rate_limiter = limiter(impl, 1, 10.0, 0, clock=loop.time)
        assert rate_limiter.try_acquire()
        waiters = [loop.create_task(rate_limiter.acquire(priority=index % 2 == 0)) for index in range(6)]
        await asyncio.sleep(1)
        assert rate_limiter.waiting == 6
        rate_limiter.close()
        results = await asyncio.gather(*waiters, return_exceptions=True)
        assert all(isinstance(result, errors.ComponentStateConflictError) for result in results), results
        assert "closed" in str(results[0])
        assert rate_limiter.waiting == 0
        # The timer for the head waiter went with them: the loop has nothing left to run.
        assert not [handle for handle in loop._scheduled if not handle.cancelled()]  # type: ignore[attr-defined]
        with pytest.raises(errors.ComponentStateConflictError):
            await rate_limiter.acquire(priority=True)
        assert not rate_limiter.try_acquire(priority=True)

        rate_limiter.reset()
        await rate_limiter.acquire()
        assert loop.time() == 1.0

    run_virtual(main)


def test_close_with_a_custom_error(impl: types.SimpleNamespace) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        rate_limiter = limiter(impl, 1, 10.0, 0, clock=loop.time)
        assert rate_limiter.try_acquire()
        waiter = loop.create_task(rate_limiter.acquire())
        await asyncio.sleep(0)
        error = errors.GatewayConnectionError("the shard is going away")
        rate_limiter.close(error)
        with pytest.raises(errors.GatewayConnectionError) as caught:
            await waiter
        assert caught.value is error
        with pytest.raises(errors.GatewayConnectionError):
            await rate_limiter.acquire()

    run_virtual(main)


def test_reset_forgets_the_window_and_keeps_waiters(impl: types.SimpleNamespace) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        rate_limiter = limiter(impl, 2, 60.0, 0, clock=loop.time)
        assert rate_limiter.try_acquire()
        assert rate_limiter.try_acquire()
        waiters = [loop.create_task(rate_limiter.acquire()) for _ in range(3)]
        await asyncio.sleep(5)
        rate_limiter.reset()  # a new connection has a fresh budget
        await asyncio.sleep(0)
        assert [waiter.done() for waiter in waiters] == [True, True, False]
        await asyncio.gather(*waiters)
        assert loop.time() == 65.0

    run_virtual(main)


def test_cancelled_head_waiter_passes_its_turn_on(impl: types.SimpleNamespace) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        rate_limiter = limiter(impl, 1, 10.0, 0, clock=loop.time)
        assert rate_limiter.try_acquire()
        head = loop.create_task(rate_limiter.acquire())
        second = loop.create_task(rate_limiter.acquire())
        await asyncio.sleep(3)
        head.cancel()
        await asyncio.sleep(0)
        assert rate_limiter.waiting == 1
        await second
        assert loop.time() == 10.0
        assert head.cancelled()
        assert rate_limiter.remaining == 0

    run_virtual(main)


def test_cancelled_priority_waiter_lets_normal_waiters_through(impl: types.SimpleNamespace) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        rate_limiter = limiter(impl, 2, 10.0, 1, clock=loop.time)
        for _ in range(2):
            assert rate_limiter.try_acquire(priority=True)
        normal = loop.create_task(rate_limiter.acquire())
        await asyncio.sleep(1)
        heartbeat = loop.create_task(rate_limiter.acquire(priority=True))
        await asyncio.sleep(1)
        heartbeat.cancel()  # had it stayed, it would have gone at 10 and held the normal one off until 20
        await normal
        assert loop.time() == 10.0

    run_virtual(main)


def test_waiter_cancelled_after_its_grant_hands_the_slot_back(impl: types.SimpleNamespace) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        rate_limiter = limiter(impl, 2, 60.0, 0, clock=loop.time)
        assert rate_limiter.try_acquire()
        assert rate_limiter.try_acquire()
        waiter = loop.create_task(rate_limiter.acquire())
        await asyncio.sleep(0)
        rate_limiter.reset()  # grants the waiter at once...
        assert rate_limiter.remaining == 1
        waiter.cancel()  # ...but it is cancelled before it could run, so it never sends
        with pytest.raises(asyncio.CancelledError):
            await waiter
        assert rate_limiter.remaining == 2

    run_virtual(main)


def test_a_slot_handed_back_goes_to_the_next_waiter_at_once(impl: types.SimpleNamespace) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        rate_limiter = limiter(impl, 1, 60.0, 0, clock=loop.time)
        assert rate_limiter.try_acquire()
        first = loop.create_task(rate_limiter.acquire())
        second = loop.create_task(rate_limiter.acquire())
        await asyncio.sleep(1)
        rate_limiter.reset()  # grants the first waiter...
        first.cancel()  # ...which never runs, so its slot is the second's
        await second
        assert loop.time() == 1.0
        assert first.cancelled()

    run_virtual(main)


def test_a_timer_grant_cancelled_before_it_runs_returns_that_very_slot(impl: types.SimpleNamespace) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        rate_limiter = limiter(impl, 2, 60.0, 0, clock=loop.time)
        assert rate_limiter.try_acquire()
        await asyncio.sleep(30)
        assert rate_limiter.try_acquire()
        first = loop.create_task(rate_limiter.acquire())
        second = loop.create_task(rate_limiter.acquire())
        await asyncio.sleep(0)
        # The limiter's timer grants the first waiter at 60; this runs right after it, in the same
        # loop iteration (within the clock resolution), before the waiter's task can resume.
        loop.call_at(60.0 + 1e-12, first.cancel)
        await second
        assert loop.time() == 60.0
        assert first.cancelled()
        # The window holds the sends from 30 and 60, so a slot frees at 90 (not at 120).
        await asyncio.sleep(35)
        assert rate_limiter.remaining == 1

    run_virtual(main)


def test_cancelled_waiter_in_the_middle_leaves_the_queue(impl: types.SimpleNamespace) -> None:
    async def main() -> list[int]:
        loop = asyncio.get_running_loop()
        rate_limiter = limiter(impl, 1, 10.0, 0, clock=loop.time)
        assert rate_limiter.try_acquire()
        order: list[int] = []

        async def send(index: int) -> None:
            await rate_limiter.acquire()
            order.append(index)

        tasks = [loop.create_task(send(index)) for index in range(4)]
        await asyncio.sleep(1)
        tasks[2].cancel()
        await asyncio.sleep(0)
        assert rate_limiter.waiting == 3
        await asyncio.gather(*tasks, return_exceptions=True)
        assert loop.time() == 30.0
        return order

    assert run_virtual(main) == [0, 1, 3]


def test_try_acquire_waits_its_turn_even_when_the_window_has_room(impl: types.SimpleNamespace) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        clock = FakeClock(0.0)  # moved by hand, so the limiter's timer has not fired yet
        rate_limiter = limiter(impl, 2, 10.0, 1, clock=clock)
        assert rate_limiter.try_acquire()
        waiter = loop.create_task(rate_limiter.acquire())
        await asyncio.sleep(0)
        clock.now = 10.0
        assert rate_limiter.remaining == 1
        assert not rate_limiter.try_acquire()  # the queued waiter goes first
        assert rate_limiter.try_acquire(priority=True)  # priority still may
        clock.now = 20.0  # the priority send at 10 has left the window again
        await waiter

    run_virtual(main)


def test_cancelled_waiters_never_consume_slots(impl: types.SimpleNamespace) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        rate_limiter = limiter(impl, 2, 10.0, 0, clock=loop.time)
        assert rate_limiter.try_acquire()
        assert rate_limiter.try_acquire()
        doomed = [loop.create_task(rate_limiter.acquire()) for _ in range(10)]
        survivors = [loop.create_task(rate_limiter.acquire()) for _ in range(2)]
        await asyncio.sleep(1)
        for task in doomed:
            task.cancel()
        await asyncio.gather(*survivors)
        assert loop.time() == 10.0
        assert rate_limiter.remaining == 0
        assert rate_limiter.waiting == 0

    run_virtual(main)


@dataclasses.dataclass(frozen=True)
class Waiter:
    arrives: int
    priority: bool
    cancel_at: int | None


@dataclasses.dataclass(frozen=True)
class Scenario:
    limit: int
    reserved: int
    period: int
    waiters: tuple[Waiter, ...]
    close_at: int | None


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    # Small limits, long periods and early arrivals: queues form, so cancellations land mid-queue.
    limit = draw(st.integers(1, 4))
    waiter = st.builds(Waiter, st.integers(0, 8), st.booleans(), st.none() | st.integers(0, 24))
    return Scenario(
        limit=limit,
        reserved=draw(st.integers(0, limit - 1)),
        period=draw(st.integers(1, 6)),
        waiters=tuple(draw(st.lists(waiter, max_size=20))),
        close_at=draw(st.none() | st.integers(0, 60)),
    )


def play(impl: types.SimpleNamespace, scenario: Scenario) -> dict[int, tuple[str, float]]:
    """Run waiters against the limiter in virtual time and check it at every half second.

    Everything in a scenario happens at whole seconds, so at each half second nothing is in
    flight: every grant has reached its waiter and the window holds exactly the successful sends.

    Returns
    -------
    dict[int, tuple[str, float]]
        Per waiter, what happened (``"sent"``, ``"cancelled"`` or ``"closed"``) and when.
    """
    limit, reserved, period = scenario.limit, scenario.reserved, scenario.period
    outcomes: dict[int, tuple[str, float]] = {}
    arrivals: list[int] = []
    waiting: set[int] = set()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        rate_limiter = limiter(impl, limit, float(period), reserved, clock=loop.time)

        async def waiter(index: int, spec: Waiter) -> None:
            try:
                await asyncio.sleep(spec.arrives)
                arrivals.append(index)
                waiting.add(index)
                try:
                    await rate_limiter.acquire(priority=spec.priority)
                finally:
                    waiting.discard(index)
            except asyncio.CancelledError:
                outcomes[index] = ("cancelled", loop.time())
            except errors.ComponentStateConflictError:
                outcomes[index] = ("closed", loop.time())
            else:
                outcomes[index] = ("sent", loop.time())

        tasks = [loop.create_task(waiter(index, spec)) for index, spec in enumerate(scenario.waiters)]
        for task, spec in zip(tasks, scenario.waiters, strict=True):
            if spec.cancel_at is not None:
                loop.call_at(spec.cancel_at, task.cancel)
        if scenario.close_at is not None:
            loop.call_at(scenario.close_at, rate_limiter.close)

        def in_window(now: float) -> int:
            return sum(1 for what, at in outcomes.values() if what == "sent" and at + period > now)

        deadline = 100 + period * len(tasks)
        while not all(task.done() for task in tasks):
            await asyncio.sleep(math.floor(loop.time() + 0.5) + 0.5 - loop.time())  # the next half second
            assert loop.time() < deadline, "waiters stuck"
            now = loop.time()
            active = in_window(now)
            # Cancelled and granted-then-cancelled waiters left nothing behind in the window.
            assert rate_limiter.remaining == max(limit - reserved - active, 0)
            assert rate_limiter.waiting == len(waiting)
            # Nobody waits while their class could go: the limiter is work-conserving.
            if any(scenario.waiters[index].priority for index in waiting):
                assert active == limit
            elif waiting:
                assert active >= limit - reserved
        await asyncio.gather(*tasks)

    run_virtual(main)

    sent = sorted((at, scenario.waiters[index].priority) for index, (what, at) in outcomes.items() if what == "sent")
    for at, _ in sent:
        window = [priority for other, priority in sent if at <= other < at + period]
        assert len(window) <= limit
        assert window.count(False) <= limit - reserved
    # FIFO within each class, and no non-priority send while an earlier priority waiter still waited.
    for position, first in enumerate(arrivals):
        for second in arrivals[position + 1 :]:
            if outcomes[first][0] != "sent" or outcomes[second][0] != "sent":
                continue
            first_priority = scenario.waiters[first].priority
            second_priority = scenario.waiters[second].priority
            if first_priority == second_priority or first_priority:
                assert outcomes[first][1] <= outcomes[second][1], (first, second)
    if scenario.close_at is not None:
        for what, at in outcomes.values():
            assert what != "sent" or at <= scenario.close_at
    return outcomes


@ST_SETTINGS
@given(scenario=scenarios())
def test_waiter_scenarios_keep_every_promise(impl: types.SimpleNamespace, scenario: Scenario) -> None:
    outcomes = play(impl, scenario)
    assert len(outcomes) == len(scenario.waiters)


@ST_SETTINGS
@given(scenario=scenarios())
def test_twins_agree_on_waiter_scenarios(
    compiled: types.SimpleNamespace, pure: types.SimpleNamespace, scenario: Scenario
) -> None:
    assert play(compiled, scenario) == play(pure, scenario)


# ----------------------------------------------------------------------------------------------
# Real time, real clock (time.monotonic, which the compiled limiter reads in C)


async def test_real_clock_short_period(impl: types.SimpleNamespace) -> None:
    period = 0.05
    rate_limiter = limiter(impl, 3, period, 1)
    started = time.monotonic()
    await rate_limiter.acquire()
    await rate_limiter.acquire()
    assert rate_limiter.remaining == 0
    await rate_limiter.acquire(priority=True)  # the reserved slot: no wait
    assert time.monotonic() - started < period
    await asyncio.gather(rate_limiter.acquire(), rate_limiter.acquire())
    elapsed = time.monotonic() - started
    assert elapsed >= period
    assert elapsed < 20 * period
    rate_limiter.close()


async def test_real_clock_close_wakes_waiters_promptly(impl: types.SimpleNamespace) -> None:
    rate_limiter = limiter(impl, 1, 3600.0, 0)
    assert rate_limiter.try_acquire()
    waiters = [asyncio.ensure_future(rate_limiter.acquire()) for _ in range(3)]
    await asyncio.sleep(0.01)
    rate_limiter.close(errors.GatewayTransportError("connection lost"))
    results = await asyncio.wait_for(asyncio.gather(*waiters, return_exceptions=True), timeout=1)
    assert [type(result) for result in results] == [errors.GatewayTransportError] * 3
