"""Selective decode never changes what a bot sees.

A dispatch that hikari's event manager would throw away is not JSON-decoded (compiled build only);
these tests run a real ``hikari`` event manager against the emulator and compare what listeners
receive with what hikari's stock shard delivers for the same stream.
"""

from __future__ import annotations

import asyncio
import logging
import types
import typing

import hikari
import orjson
import pytest
from hikari.impl import config as hikari_config
from hikari.impl import event_manager_base

from helpers import OURS, STOCK, TOKEN, Recorder, make_shard, running, until
from hikari_shard import _consumers, _fast
from hikari_shard.testing import GatewayEmulator, build_corpus
from hikari_shard.testing.hot_paths import make_router

INTENTS = hikari.Intents.ALL_UNPRIVILEGED | hikari.Intents.MESSAGE_CONTENT | hikari.Intents.GUILD_PRESENCES


def make_bot() -> hikari.GatewayBot:
    """A cacheless bot: only its event manager and factory are used (it never connects)."""
    return hikari.GatewayBot(
        TOKEN,
        intents=INTENTS,
        cache_settings=hikari_config.CacheSettings(components=hikari_config.CacheComponents.NONE),
        banner=None,
    )


@pytest.fixture(scope="module")
def corpus() -> typing.Any:
    return build_corpus(seed=3, dispatches=600)


async def _run_stream(
    cls: type[typing.Any], corpus: typing.Any, *, add_typing_after: int | None = None
) -> dict[str, typing.Any]:
    bot = make_bot()
    messages: list[str] = []
    interactions: list[int] = []
    typing_events: list[int] = []

    async def on_message(event: hikari.MessageCreateEvent) -> None:
        messages.append(str(event.message.id))

    async def on_interaction(event: hikari.InteractionCreateEvent) -> None:
        interactions.append(int(event.interaction.id))

    async def on_typing(event: hikari.TypingEvent) -> None:
        typing_events.append(int(event.user_id))

    bot.event_manager.subscribe(hikari.MessageCreateEvent, on_message)
    bot.event_manager.subscribe(hikari.InteractionCreateEvent, on_interaction)
    expected_messages = [d["id"] for n, d in corpus.dispatches if n == "MESSAGE_CREATE"]
    expected_interactions = sum(1 for n, _ in corpus.dispatches if n == "INTERACTION_CREATE")

    async with GatewayEmulator(token=TOKEN) as emulator:
        shard = make_shard(
            emulator, cls=cls, manager=bot.event_manager, intents=INTENTS, compression="transport_zlib_stream"
        )
        shard._event_factory = bot.event_factory
        async with running(shard):
            for index, (name, data) in enumerate(corpus.dispatches):
                if add_typing_after is not None and index == add_typing_after:
                    last_seq = emulator.connections[0].session.seq
                    await until(lambda s=last_seq: shard._seq == s, what="the stream so far")
                    bot.event_manager.subscribe(hikari.TypingEvent, on_typing)
                await emulator.dispatch(name, data)
            await until(
                lambda: len(messages) == len(expected_messages) and len(interactions) == expected_interactions,
                what="every message and interaction",
            )
            router = getattr(shard, "_router", None)
            skipped = router.skipped if router is not None else 0
            seq = shard._seq
            assert seq == emulator.connections[0].session.seq  # skipped dispatches still count
    await asyncio.sleep(0)
    return {
        "messages": messages,
        "expected_messages": [str(i) for i in expected_messages],
        "interactions": interactions,
        "typing": typing_events,
        "skipped": skipped,
    }


async def test_listeners_see_the_same_events_as_with_hikaris_shard(corpus: typing.Any) -> None:
    ours = await _run_stream(OURS, corpus)
    stock = await _run_stream(STOCK, corpus)
    assert ours["messages"] == ours["expected_messages"]
    assert ours["messages"] == stock["messages"]
    assert ours["interactions"] == stock["interactions"]
    if _fast.IMPLEMENTATION == "compiled":
        # Presence, typing, reactions, ...: nothing consumes them, so they were never decoded.
        unconsumed = sum(1 for n, _ in corpus.dispatches if n not in {"MESSAGE_CREATE", "INTERACTION_CREATE"})
        assert ours["skipped"] >= unconsumed * 0.9
    else:
        assert ours["skipped"] == 0  # the pure build decodes everything (scanning would cost more)


async def test_a_listener_added_mid_stream_receives_at_once(corpus: typing.Any) -> None:
    half = len(corpus.dispatches) // 2
    ours = await _run_stream(OURS, corpus, add_typing_after=half)
    expected = [int(d["user_id"]) for n, d in corpus.dispatches[half:] if n == "TYPING_START"]
    await until(lambda: len(ours["typing"]) >= len(expected), what="typing events")
    assert ours["typing"] == expected


class DecodeCounter:
    """A router on hikari's real event manager, counting which dispatches it JSON-decodes."""

    def __init__(self, impl: types.SimpleNamespace, bot: hikari.GatewayBot) -> None:
        self.decoded: list[str] = []
        self.seq = 0
        self.router = make_router(
            impl,
            loads=self._loads,
            consumers=_consumers.ConsumerIndex(bot.event_manager),
            scan=impl.scan.scan,
            expect_binary=None,
            logger=logging.getLogger("hikari.gateway.selective"),
        )

    def _loads(self, raw: bytes) -> typing.Any:
        payload = orjson.loads(raw)
        self.decoded.append(payload["t"])
        return payload

    def decodes(self, name: str) -> bool:
        """Feed one ``name`` dispatch; whether the router decoded it (would hand it to hikari)."""
        self.seq += 1
        before = len(self.decoded)
        self.router.handle(orjson.dumps({"op": 0, "t": name, "s": self.seq, "d": {}}))
        assert self.router.seq == self.seq  # decoded or not, its seq counts
        return len(self.decoded) > before


async def test_the_router_decodes_what_hikaris_event_manager_consumes(impl: types.SimpleNamespace) -> None:
    bot = make_bot()
    counter = DecodeCounter(impl, bot)
    assert not counter.decodes("PRESENCE_UPDATE")
    assert not counter.decodes("SOMETHING_DISCORD_ADDED_LATER")  # hikari ignores unknown events
    assert counter.decodes("READY")  # always: the shard itself reads it
    bot.event_manager.subscribe(hikari.PresenceUpdateEvent, _noop)
    assert counter.decodes("PRESENCE_UPDATE")
    bot.event_manager.unsubscribe(hikari.PresenceUpdateEvent, _noop)
    assert not counter.decodes("PRESENCE_UPDATE")
    # A ShardPayloadEvent listener sees every raw payload, so everything is decoded while it listens.
    bot.event_manager.subscribe(hikari.ShardPayloadEvent, _noop)
    assert counter.decodes("PRESENCE_UPDATE")
    assert counter.decodes("SOMETHING_DISCORD_ADDED_LATER")
    bot.event_manager.unsubscribe(hikari.ShardPayloadEvent, _noop)
    assert not counter.decodes("PRESENCE_UPDATE")
    # So does a pending wait_for on it, until it times out (hikari forgets a waiter only then).
    waiter = asyncio.create_task(bot.event_manager.wait_for(hikari.ShardPayloadEvent, timeout=0.05))
    await asyncio.sleep(0)
    assert counter.decodes("TYPING_START")
    with pytest.raises(asyncio.TimeoutError):
        await waiter
    assert not counter.decodes("TYPING_START")
    # A wait_for on the event itself also makes it wanted.
    waiter = asyncio.create_task(bot.event_manager.wait_for(hikari.TypingEvent, timeout=0.05))
    await asyncio.sleep(0)
    assert counter.decodes("TYPING_START")
    assert not counter.decodes("PRESENCE_UPDATE")
    with pytest.raises(asyncio.TimeoutError):
        await waiter
    assert not counter.decodes("TYPING_START")
    assert counter.router.skipped == 7


def test_a_cache_makes_events_wanted(impl: types.SimpleNamespace) -> None:
    counter = DecodeCounter(impl, hikari.GatewayBot(TOKEN, intents=INTENTS, banner=None))
    assert counter.decodes("GUILD_CREATE")
    assert counter.decodes("PRESENCE_UPDATE")
    assert counter.router.skipped == 0


async def _noop(event: hikari.Event) -> None:
    pass


def test_an_unknown_event_manager_gets_everything(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("DEBUG", logger="hikari_shard")
    index = _consumers.ConsumerIndex(Recorder())  # type: ignore[arg-type]
    assert not index.supported
    assert index.wants("PRESENCE_UPDATE")
    assert "selective decode disabled" in caplog.text

    class Custom(event_manager_base.EventManagerBase):
        def consume_raw_event(self, event_name: str, shard: typing.Any, payload: typing.Any) -> None:
            pass

    custom = Custom.__new__(Custom)
    assert not _consumers.ConsumerIndex(custom).supported  # type: ignore[arg-type]
