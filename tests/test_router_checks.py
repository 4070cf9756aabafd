"""The router's per-dispatch checks follow every change on the very next dispatch.

The compiled router keeps its consumer check's answer per event name until hikari's
``_listeners`` or ``_waiters`` change (any insert or delete, not only a change of size), and reads
the TRACE check from ``logging``'s own cache; these tests change listeners, waiters and log levels
between two dispatches in every way hikari and ``logging`` do, on both implementations.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import types
import typing

import hikari
import orjson
import pytest

from hikari_shard import _consumers
from hikari_shard.testing.hot_paths import make_router as inert_router
from test_selective import make_bot

Seen = list[str]


async def _noop(event: hikari.Event) -> None:
    pass


def make_router(impl: types.SimpleNamespace, manager: typing.Any, seen: Seen) -> typing.Any:
    index = _consumers.ConsumerIndex(manager)
    assert index.supported
    return inert_router(impl, consume=lambda name, shard, data: seen.append(name), consumers=index, scan=impl.scan.scan)


class Feed:
    def __init__(self, router: typing.Any, seen: Seen) -> None:
        self.router = router
        self.seen = seen
        self.seq = 1

    def __call__(self, *names: str) -> list[str]:
        """Feed one dispatch per name; return the names consumed."""
        del self.seen[:]
        for name in names:
            self.seq += 1
            self.router.handle(orjson.dumps({"op": 0, "s": self.seq, "t": name, "d": {"user_id": "1"}}))
        assert self.router.seq == self.seq  # skipped or not, every seq is tracked
        return list(self.seen)


@pytest.fixture
def bot() -> hikari.GatewayBot:
    return make_bot()


@pytest.fixture
def feed(impl: types.SimpleNamespace, bot: hikari.GatewayBot) -> Feed:
    seen: Seen = []
    return Feed(make_router(impl, bot.event_manager, seen), seen)


NAMES = ("MESSAGE_CREATE", "TYPING_START", "PRESENCE_UPDATE")


def test_swapping_one_listener_for_another_takes_effect_at_once(feed: Feed, bot: hikari.GatewayBot) -> None:
    manager = bot.event_manager
    manager.subscribe(hikari.MessageCreateEvent, _noop)
    assert feed(*NAMES, *NAMES) == ["MESSAGE_CREATE", "MESSAGE_CREATE"]
    # Same number of keys in hikari's _listeners before and after: only their identity changed.
    manager.unsubscribe(hikari.MessageCreateEvent, _noop)
    manager.subscribe(hikari.TypingEvent, _noop)
    assert feed(*NAMES, *NAMES) == ["TYPING_START", "TYPING_START"]
    manager.unsubscribe(hikari.TypingEvent, _noop)
    assert feed(*NAMES) == []
    manager.subscribe(hikari.PresenceUpdateEvent, _noop)
    assert feed(*NAMES) == ["PRESENCE_UPDATE"]


def test_a_payload_listener_makes_everything_wanted_until_it_goes(feed: Feed, bot: hikari.GatewayBot) -> None:
    manager = bot.event_manager
    manager.subscribe(hikari.MessageCreateEvent, _noop)
    assert feed(*NAMES) == ["MESSAGE_CREATE"]
    manager.subscribe(hikari.ShardPayloadEvent, _noop)
    assert feed(*NAMES, "SOMETHING_NEW") == [*NAMES, "SOMETHING_NEW"]
    manager.unsubscribe(hikari.ShardPayloadEvent, _noop)
    assert feed(*NAMES, "SOMETHING_NEW") == ["MESSAGE_CREATE"]


async def test_a_waiter_is_followed_when_it_comes_and_when_it_goes(feed: Feed, bot: hikari.GatewayBot) -> None:
    manager = bot.event_manager
    assert feed(*NAMES) == []
    waiter = asyncio.ensure_future(manager.wait_for(hikari.TypingEvent, timeout=0.05))
    await asyncio.sleep(0)  # wait_for registers its waiter
    assert feed(*NAMES) == ["TYPING_START"]
    with pytest.raises(asyncio.TimeoutError):
        await waiter  # hikari removes a waiter that timed out (not one that was cancelled)
    assert feed(*NAMES) == []


def test_many_unknown_names_do_not_change_the_answers(feed: Feed, bot: hikari.GatewayBot) -> None:
    bot.event_manager.subscribe(hikari.MessageCreateEvent, _noop)
    invented = [f"INVENTED_{index}" for index in range(1_500)]  # more than any cache of names keeps
    assert feed(*invented) == []
    assert feed(*NAMES, *invented[:10], *NAMES) == ["MESSAGE_CREATE", "MESSAGE_CREATE"]
    assert feed.router.skipped == 1_500 + 14


# -- the TRACE check -----------------------------------------------------------------------------


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=0)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture
def traced() -> typing.Iterator[tuple[logging.Logger, Records]]:
    logger = logging.getLogger("hikari_shard.tests.router_checks")
    records = Records()
    logger.addHandler(records)
    logger.propagate = False
    try:
        yield logger, records
    finally:
        logger.removeHandler(records)
        logger.setLevel(logging.NOTSET)
        logger.disabled = False
        logging.disable(logging.NOTSET)


def test_trace_logging_follows_levels_set_between_dispatches(
    impl: types.SimpleNamespace, traced: tuple[logging.Logger, Records]
) -> None:
    logger, records = traced
    router = inert_router(impl, logger=logger)
    seq = iter(range(2, 100))

    def traces() -> int:
        del records.messages[:]
        router.handle(orjson.dumps({"op": 0, "s": next(seq), "t": "TYPING_START", "d": {}}))
        return sum(message.startswith("received payload") for message in records.messages)

    logger.setLevel(logging.DEBUG)
    assert traces() == 0  # the level's answer is cached by logging now
    logger.setLevel(5)  # TRACE; clears every logger's cache in place
    assert traces() == 1
    assert traces() == 1
    logger.disabled = True
    assert traces() == 0
    logger.disabled = False
    assert traces() == 1
    logging.disable(logging.DEBUG)
    assert traces() == 0
    logging.disable(logging.NOTSET)
    assert traces() == 1
    logger.setLevel(logging.INFO)
    assert traces() == 0
    logging.getLogger("hikari_shard.tests").setLevel(5)  # a parent's level counts for a NOTSET child
    logger.setLevel(logging.NOTSET)
    try:
        assert traces() == 1
    finally:
        logging.getLogger("hikari_shard.tests").setLevel(logging.NOTSET)
    assert traces() == 0


@pytest.mark.parametrize("wanting", [None, ()], ids=["decoded", "skipped"])
def test_a_logger_not_at_trace_is_not_asked_again_per_payload(
    impl: types.SimpleNamespace, traced: tuple[logging.Logger, Records], wanting: tuple[str, ...] | None
) -> None:
    """Once logging's cache says "not at TRACE", neither router calls ``isEnabledFor`` per payload."""
    logger, _ = traced
    logger.setLevel(logging.DEBUG)
    router = inert_router(impl, logger=logger, wanting=wanting)
    payloads = [orjson.dumps({"op": 0, "s": seq, "t": "TYPING_START", "d": {}}) for seq in range(2, 42)]
    router.handle(payloads[0])  # the first one asks (and fills logging's cache)
    asked: list[int] = []

    def profile(frame: types.FrameType, event: str, arg: object) -> None:
        if event == "call" and frame.f_code is logging.Logger.isEnabledFor.__code__:
            asked.append(frame.f_locals["level"])

    sys.setprofile(profile)
    try:
        for payload in payloads[1:]:
            router.handle(payload)
    finally:
        sys.setprofile(None)
    assert asked == []
    assert router.seq == 41
    assert router.skipped == (0 if wanting is None else 40)


class _Key(str):
    """A str subclass key, as a user's ``loads`` might produce: found by equality, not by its letters."""

    __slots__ = ()


@pytest.mark.parametrize(
    "document",
    [
        {"t": "MESSAGE_CREATE", "s": 7, "op": 0, "d": {"k": 1}},  # Discord's order
        {"d": {"k": 1}, "op": 0, "s": 7, "t": "MESSAGE_CREATE"},
        {"x": 1, "o": 2, "p": 3, "t": "MESSAGE_CREATE", "ts": 4, "op": 0, "dd": 5, "s": 7, "d": {"k": 1}, "é": 6},
        {_Key("op"): 0, _Key("t"): "MESSAGE_CREATE", _Key("s"): 7, _Key("d"): {"k": 1}},
        {"op": 0, "t": "MESSAGE_CREATE", "s": 7, 5: "not a str", "d": {"k": 1}},
    ],
    ids=["discord-order", "reversed", "extra-keys", "str-subclass-keys", "non-str-key"],
)
def test_op_t_s_d_are_found_in_any_member_order(
    impl: types.SimpleNamespace, document: dict[typing.Any, typing.Any]
) -> None:
    """The compiled router reads op/t/s/d in one pass over the members; any order and any other keys work."""
    consumed: list[tuple[str, object]] = []
    router = inert_router(
        impl, loads=lambda raw: dict(document), consume=lambda name, shard, data: consumed.append((name, data))
    )
    router.handle(b"{}")
    assert consumed == [("MESSAGE_CREATE", {"k": 1})]
    assert router.seq == 7


@pytest.mark.parametrize(
    ("document", "error"),
    [
        ({"t": "MESSAGE_CREATE", "s": 2**64 - 1, "op": 0, "d": {}}, "'s' is out of range"),
        ({"t": "MESSAGE_CREATE", "s": -(2**63) - 1, "op": 0, "d": {}}, "'s' is out of range"),
        ({"t": "MESSAGE_CREATE", "s": 1, "op": 2**70, "d": {}}, None),  # a big op is not a dispatch
        ({"t": "MESSAGE_CREATE", "s": 1, "o": 0, "d": {}}, "'op' must be an integer, got NoneType"),
        ({"t": "MESSAGE_CREATE", "s": 1, "opp": 0, "d": {}}, "'op' must be an integer, got NoneType"),
        ({"T": "MESSAGE_CREATE", "s": 1, "op": 0, "d": {}}, "'t' must be a string, got NoneType"),
        ({"t": "MESSAGE_CREATE", "s": 1, "op": 0, "D": {}}, "has no 'd'"),
        ({"t": "MESSAGE_CREATE", "s": "6", "op": 0}, "has no 'd'"),  # d is checked before s, in both
    ],
)
def test_member_walk_errors_match_the_lookups(
    impl: types.SimpleNamespace, document: dict[str, object], error: str | None
) -> None:
    router = inert_router(impl, loads=lambda raw: dict(document))
    router.seq = 5
    if error is None:
        router.handle(b"{}")
        assert list(router.pending) == [document]
    else:
        with pytest.raises(hikari.errors.GatewayTransportError, match=error):
            router.handle(b"{}")
    assert router.seq == 5


def test_the_seq_after_the_largest_is_out_of_range(impl: types.SimpleNamespace) -> None:
    """The next-seq fast path (the last seq + 1) still refuses a seq past a signed 64-bit integer."""
    router = inert_router(impl)
    router.seq = 2**63 - 1
    with pytest.raises(hikari.errors.GatewayTransportError, match="'s' is out of range"):
        router.handle(b'{"op":0,"s":9223372036854775808,"t":"TYPING_START","d":{}}')  # 2**63
    assert router.seq == 2**63 - 1


def test_seq_extremes_round_trip(impl: types.SimpleNamespace) -> None:
    router = inert_router(impl)
    for seq in (2**63 - 1, -(2**63), 0, None):
        router.seq = seq
        assert router.seq == seq
    router.seq = 2**63 - 2
    router.handle(orjson.dumps({"t": "TYPING_START", "s": 2**63 - 1, "op": 0, "d": {}}))
    assert router.seq == 2**63 - 1
    router.handle(orjson.dumps({"t": "TYPING_START", "s": 2**63 - 1, "op": 0, "d": {}}))  # a repeat: dropped
    assert router.events == {"TYPING_START": 1}
