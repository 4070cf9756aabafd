"""The traffic corpus: deterministic, shaped like a large bot's stream, and accepted by hikari itself.

If these fail, the emulator and the benchmarks feed the shard traffic that is not what Discord
sends: a benchmark would measure the wrong thing, or the emulator would crash hikari's event
factory on a payload Discord would never send.
"""

from __future__ import annotations

import collections
import itertools
import random
import statistics
import typing
from unittest import mock

import hypothesis
import orjson
import pytest
from hikari import snowflakes
from hikari.events import interaction_events
from hikari.impl import entity_factory as entity_factory_impl
from hikari.impl import event_factory as event_factory_impl
from hypothesis import strategies as st

from hikari_shard.testing import corpus as corpus_module
from hikari_shard.testing.corpus import (
    DEFAULT_USER_ID,
    DISPATCH_MIX,
    Corpus,
    GuildLayout,
    build_corpus,
    dispatch_stream,
    guild_create_payload,
    large_guild_create,
)

#: The event factory method hikari's event manager calls for each dispatch name.
DESERIALIZERS: typing.Final[dict[str, str]] = {
    "PRESENCE_UPDATE": "deserialize_presence_update_event",
    "MESSAGE_CREATE": "deserialize_message_create_event",
    "TYPING_START": "deserialize_typing_start_event",
    "GUILD_MEMBER_UPDATE": "deserialize_guild_member_update_event",
    "MESSAGE_REACTION_ADD": "deserialize_message_reaction_add_event",
    "VOICE_STATE_UPDATE": "deserialize_voice_state_update_event",
    "MESSAGE_UPDATE": "deserialize_message_update_event",
    "MESSAGE_REACTION_REMOVE": "deserialize_message_reaction_remove_event",
    "MESSAGE_DELETE": "deserialize_message_delete_event",
    "INTERACTION_CREATE": "deserialize_interaction_create_event",
    "GUILD_MEMBER_ADD": "deserialize_guild_member_add_event",
    "GUILD_MEMBER_REMOVE": "deserialize_guild_member_remove_event",
    "CHANNEL_UPDATE": "deserialize_guild_channel_update_event",
    "THREAD_UPDATE": "deserialize_guild_thread_update_event",
    "THREAD_CREATE": "deserialize_guild_thread_create_event",
    "GUILD_ROLE_UPDATE": "deserialize_guild_role_update_event",
    "MESSAGE_DELETE_BULK": "deserialize_guild_message_delete_bulk_event",
    "GUILD_MEMBERS_CHUNK": "deserialize_guild_member_chunk_event",
}

#: 0.86 kB: the mean ``orjson.dumps`` size of a dispatch in a large bot's stream.
TARGET_MEAN_BYTES: typing.Final[float] = 860.0


@pytest.fixture(scope="module")
def corpus() -> Corpus:
    return build_corpus(seed=0, dispatches=10_000)


@pytest.fixture(scope="module")
def large_guild() -> dict[str, typing.Any]:
    return large_guild_create(random.Random(3), 81_234_567_890_123_456, target_bytes=4 * 1024 * 1024)


class _Hikari:
    """hikari's real entity and event factories over a stub app, and a stub shard."""

    def __init__(self, user_id: int = DEFAULT_USER_ID) -> None:
        app = mock.Mock()
        app.entity_factory = entity_factory_impl.EntityFactoryImpl(app)
        self.events = event_factory_impl.EventFactoryImpl(app)
        self.shard = mock.Mock()
        self.shard.id = 0
        self.shard.get_user_id.return_value = snowflakes.Snowflake(user_id)

    def dispatch(self, name: str, payload: dict[str, typing.Any]) -> typing.Any:
        return getattr(self.events, DESERIALIZERS[name])(self.shard, payload)

    def guild_create(self, payload: dict[str, typing.Any]) -> typing.Any:
        return self.events.deserialize_guild_available_event(self.shard, payload)


@pytest.fixture(scope="module")
def hikari() -> _Hikari:
    return _Hikari()


def _dump(corpus: Corpus) -> bytes:
    return orjson.dumps([corpus.ready, corpus.guild_creates, corpus.dispatches])


# --- determinism ------------------------------------------------------------------------------------------------------


def test_same_seed_gives_byte_identical_payloads() -> None:
    first = build_corpus(seed=11, dispatches=2_000, guild_members=120)
    second = build_corpus(seed=11, dispatches=2_000, guild_members=120)
    assert _dump(first) == _dump(second)


def test_different_seeds_differ() -> None:
    first = build_corpus(seed=11, dispatches=500, guild_members=60)
    second = build_corpus(seed=12, dispatches=500, guild_members=60)
    assert orjson.dumps(first.ready) != orjson.dumps(second.ready)
    assert orjson.dumps(first.guild_creates) != orjson.dumps(second.guild_creates)
    assert orjson.dumps(first.dispatches) != orjson.dumps(second.dispatches)


def test_output_does_not_depend_on_the_global_random_state() -> None:
    random.seed(1)
    first = build_corpus(seed=5, dispatches=300, guild_members=40)
    random.seed(2)
    second = build_corpus(seed=5, dispatches=300, guild_members=40)
    assert _dump(first) == _dump(second)


def test_huge_guild_leaves_the_rest_of_the_corpus_unchanged() -> None:
    plain = build_corpus(seed=4, dispatches=300, guild_members=40)
    with_huge = build_corpus(seed=4, dispatches=300, guild_members=40, huge_guild_bytes=200_000)
    assert orjson.dumps(with_huge.dispatches) == orjson.dumps(plain.dispatches)
    assert orjson.dumps(with_huge.guild_creates[:-1]) == orjson.dumps(plain.guild_creates)
    assert len(with_huge.ready["guilds"]) == len(plain.ready["guilds"]) + 1
    assert with_huge.ready["guilds"][-1]["id"] == with_huge.guild_creates[-1]["id"]
    assert abs(len(orjson.dumps(with_huge.guild_creates[-1])) - 200_000) < 20_000


# --- shape of the stream ----------------------------------------------------------------------------------------------


def test_mix_sums_to_one_and_every_name_has_a_deserializer() -> None:
    assert sum(DISPATCH_MIX.values()) == pytest.approx(1.0)
    assert set(DISPATCH_MIX) == set(DESERIALIZERS)
    assert list(DISPATCH_MIX)[:3] == ["PRESENCE_UPDATE", "MESSAGE_CREATE", "TYPING_START"]


def test_stream_follows_the_mix(corpus: Corpus) -> None:
    counts = collections.Counter(corpus.names())
    assert sum(counts.values()) == 10_000
    for name, share in DISPATCH_MIX.items():
        assert counts[name] / 10_000 == pytest.approx(share, abs=0.001), name


def test_long_stream_follows_the_mix_across_blocks() -> None:
    names = [
        name
        for name, _ in dispatch_stream(
            random.Random(2), count=23_456, guild_ids=[1 << 40], channel_ids=[2 << 40], user_ids=[3 << 40, 4 << 40]
        )
    ]
    counts = collections.Counter(names)
    for name, share in DISPATCH_MIX.items():
        assert counts[name] / len(names) == pytest.approx(share, abs=0.001), name


def test_stream_is_not_sorted_by_event(corpus: Corpus) -> None:
    names = corpus.names()
    runs = sum(1 for a, b in itertools.pairwise(names) if a != b)
    assert runs > 5_000


def test_mean_dispatch_size_is_about_0_86_kb(corpus: Corpus) -> None:
    mean = corpus.mean_dispatch_bytes()
    print(f"mean dispatch size: {mean:.1f} bytes")  # shown by `pytest -s`
    assert mean == pytest.approx(TARGET_MEAN_BYTES, rel=0.05)


def test_mean_dispatch_size_holds_across_seeds() -> None:
    means = [build_corpus(seed=seed, dispatches=3_000, guild_members=150).mean_dispatch_bytes() for seed in (1, 2)]
    for mean in means:
        assert mean == pytest.approx(TARGET_MEAN_BYTES, rel=0.08)


def test_sizes_spread_from_typing_events_to_large_messages(corpus: Corpus) -> None:
    sizes = sorted(corpus.dispatch_sizes())
    assert sizes[len(sizes) // 10] < 300
    assert sizes[len(sizes) * 9 // 10] > 1_200
    assert sizes[-1] > 10_000
    by_name = collections.defaultdict(list)
    for (name, _), size in zip(corpus.dispatches, corpus.dispatch_sizes(), strict=True):
        by_name[name].append(size)
    assert statistics.mean(by_name["MESSAGE_DELETE"]) < 150
    assert statistics.mean(by_name["MESSAGE_CREATE"]) > 1_000
    assert max(by_name["MESSAGE_CREATE"]) > 5_000


def test_corpus_helpers(corpus: Corpus) -> None:
    events = list(corpus.events())
    assert events[0] == ("READY", corpus.ready)
    assert [name for name, _ in events[1 : 1 + len(corpus.guild_creates)]] == ["GUILD_CREATE"] * len(
        corpus.guild_creates
    )
    assert len(events) == 1 + len(corpus.guild_creates) + len(corpus.dispatches)
    assert corpus.total_json_bytes() == sum(len(orjson.dumps(payload)) for _, payload in events)
    assert corpus.names() == [name for name, _ in corpus.dispatches]


# --- hikari accepts every payload -------------------------------------------------------------------------------------


def test_hikari_deserialises_ready(corpus: Corpus, hikari: _Hikari) -> None:
    event = hikari.events.deserialize_ready_event(hikari.shard, corpus.ready)
    assert event.my_user.id == DEFAULT_USER_ID
    assert event.my_user.is_bot
    assert event.actual_gateway_version == 10
    assert [str(guild_id) for guild_id in event.unavailable_guilds] == [g["id"] for g in corpus.guild_creates]
    assert event.application_id == DEFAULT_USER_ID


def test_hikari_deserialises_every_guild_create(corpus: Corpus, hikari: _Hikari) -> None:
    for payload in corpus.guild_creates:
        _check_guild_create(hikari, payload)


def test_hikari_deserialises_the_large_guild_create(large_guild: dict[str, typing.Any], hikari: _Hikari) -> None:
    event = _check_guild_create(hikari, large_guild)
    assert event.guild.is_large
    assert len(event.members) > 3_000


def _check_guild_create(hikari: _Hikari, payload: dict[str, typing.Any]) -> typing.Any:
    event = hikari.guild_create(payload)
    # hikari silently skips channels and threads of a type it does not know: count them.
    assert len(event.channels) == len(payload["channels"])
    assert len(event.threads) == len(payload["threads"])
    assert len(event.members) == len(payload["members"])
    assert len(event.presences) == len(payload["presences"])
    assert len(event.voice_states) == len(payload["voice_states"])
    assert len(event.roles) == len(payload["roles"])
    assert len(event.emojis) == len(payload["emojis"])
    assert len(event.stickers) == len(payload["stickers"])
    assert event.guild.id == int(payload["id"])
    assert DEFAULT_USER_ID in event.members
    return event


def test_hikari_deserialises_every_dispatch(corpus: Corpus, hikari: _Hikari) -> None:
    seen: collections.Counter[str] = collections.Counter()
    interactions: collections.Counter[type] = collections.Counter()
    for name, payload in corpus.dispatches:
        event = hikari.dispatch(name, payload)
        seen[name] += 1
        if name == "INTERACTION_CREATE":
            interactions[type(event)] += 1
    assert set(seen) == set(DISPATCH_MIX)
    assert interactions[interaction_events.CommandInteractionCreateEvent] > 0
    assert interactions[interaction_events.ComponentInteractionCreateEvent] > 0
    assert interactions[interaction_events.AutocompleteInteractionCreateEvent] > 0


def test_hikari_deserialises_a_stream_built_from_bare_ids(hikari: _Hikari) -> None:
    guilds = [1 << 50, 2 << 50]
    stream = list(
        dispatch_stream(
            random.Random(9),
            count=3_000,
            guild_ids=guilds,
            channel_ids={guilds[0]: [11 << 45, 12 << 45], guilds[1]: [13 << 45]},
            user_ids=[(20 + i) << 45 for i in range(40)],
        )
    )
    channels = {guilds[0]: {11 << 45, 12 << 45}, guilds[1]: {13 << 45}}
    for name, payload in stream:
        hikari.dispatch(name, payload)
        if name in ("THREAD_CREATE", "THREAD_UPDATE"):
            # THREAD_UPDATE may revive an archived thread, which GUILD_CREATE did not list.
            assert int(payload["parent_id"]) in channels[int(payload["guild_id"])]
            channels[int(payload["guild_id"])].add(int(payload["id"]))
        if "channel_id" in payload and name != "VOICE_STATE_UPDATE":
            assert int(payload["channel_id"]) in channels[int(payload["guild_id"])], name


@hypothesis.settings(max_examples=8, deadline=None)
@hypothesis.given(seed=st.integers(min_value=0, max_value=2**32))
def test_any_seed_gives_hikari_readable_traffic(seed: int) -> None:
    hikari = _Hikari()
    small = build_corpus(seed=seed, dispatches=600, guilds=2, guild_members=25)
    hikari.events.deserialize_ready_event(hikari.shard, small.ready)
    for payload in small.guild_creates:
        _check_guild_create(hikari, payload)
    for name, payload in small.dispatches:
        hikari.dispatch(name, payload)


# --- consistency of ids -----------------------------------------------------------------------------------------------


def test_guilds_route_to_the_shard() -> None:
    sharded = build_corpus(seed=3, dispatches=10, guilds=6, guild_members=20, shard=(5, 16))
    assert sharded.ready["shard"] == [5, 16]
    for guild in sharded.ready["guilds"]:
        assert (int(guild["id"]) >> 22) % 16 == 5


def test_dispatch_ids_are_consistent_with_the_guilds(corpus: Corpus) -> None:
    layouts = {layout.guild_id: layout for layout in map(GuildLayout.from_guild_create, corpus.guild_creates)}
    channels = {gid: {c[0] for c in lay.channels} | {t[0] for t in lay.threads} for gid, lay in layouts.items()}
    members = {gid: set(lay.member_ids) for gid, lay in layouts.items()}
    roles = {gid: set(lay.role_ids) for gid, lay in layouts.items()}
    sent: dict[int, tuple[int, int]] = {}
    first_sent: int | None = None

    for name, payload in corpus.dispatches:
        guild_id = int(payload["guild_id"])
        assert guild_id in layouts, name
        if name in ("THREAD_CREATE", "THREAD_UPDATE"):
            assert int(payload["parent_id"]) in channels[guild_id], name
            assert name == "THREAD_UPDATE" or int(payload["id"]) not in channels[guild_id]
            channels[guild_id].add(int(payload["id"]))
        if name == "GUILD_MEMBER_ADD":
            members[guild_id].add(int(payload["user"]["id"]))
        if name == "GUILD_MEMBER_REMOVE":
            assert int(payload["user"]["id"]) in members[guild_id]
            members[guild_id].discard(int(payload["user"]["id"]))
        if "channel_id" in payload and payload["channel_id"] is not None:
            assert int(payload["channel_id"]) in channels[guild_id], name
        if name == "CHANNEL_UPDATE":
            assert int(payload["id"]) in channels[guild_id], name
        if name == "GUILD_ROLE_UPDATE":
            assert int(payload["role"]["id"]) in roles[guild_id]
        for key in ("user_id",):
            if key in payload and name != "MESSAGE_REACTION_REMOVE":
                assert int(payload[key]) in members[guild_id], name
        if name in ("PRESENCE_UPDATE", "GUILD_MEMBER_UPDATE"):
            assert int(payload["user"]["id"]) in members[guild_id], name
        if "member" in payload and "roles" in payload["member"]:
            assert {int(r) for r in payload["member"]["roles"]} <= roles[guild_id], name
        if name == "MESSAGE_CREATE":
            message_id = int(payload["id"])
            first_sent = first_sent or message_id
            if "webhook_id" not in payload or payload["author"]["id"] == str(DEFAULT_USER_ID):
                assert int(payload["author"]["id"]) in members[guild_id]
            for mention in payload["mentions"]:
                assert int(mention["id"]) in members[guild_id] or "referenced_message" in payload
            sent[message_id] = (int(payload["channel_id"]), int(payload["author"]["id"]))
        if name in ("MESSAGE_UPDATE", "MESSAGE_REACTION_ADD", "MESSAGE_REACTION_REMOVE", "MESSAGE_DELETE"):
            message_id = int(payload["id"] if name in ("MESSAGE_UPDATE", "MESSAGE_DELETE") else payload["message_id"])
            # Either a message sent earlier in the stream, or one from before the session began.
            assert message_id in sent or first_sent is None or message_id < first_sent, name
            if message_id in sent:
                assert int(payload["channel_id"]) == sent[message_id][0], name
                if name == "MESSAGE_UPDATE":
                    assert int(payload["author"]["id"]) == sent[message_id][1]


def test_member_updates_persist_into_later_events(corpus: Corpus) -> None:
    last_update: dict[tuple[str, str], list[str]] = {}
    checked = 0
    for name, payload in corpus.dispatches:
        if name == "GUILD_MEMBER_UPDATE":
            last_update[(payload["guild_id"], payload["user"]["id"])] = payload["roles"]
        elif name == "TYPING_START":
            key = (payload["guild_id"], payload["user_id"])
            if key in last_update:
                assert payload["member"]["roles"] == last_update[key]
                checked += 1
    assert checked > 0


def test_deleted_messages_are_not_reacted_to_later(corpus: Corpus) -> None:
    deleted: set[str] = set()
    for name, payload in corpus.dispatches:
        if name == "MESSAGE_DELETE":
            deleted.add(payload["id"])
        elif name == "MESSAGE_DELETE_BULK":
            deleted.update(payload["ids"])
        elif name in ("MESSAGE_REACTION_ADD", "MESSAGE_UPDATE"):
            assert payload.get("message_id", payload.get("id")) not in deleted, name


# --- realism of the content -------------------------------------------------------------------------------------------


def test_message_content_exercises_the_json_decoder(corpus: Corpus) -> None:
    contents = [p["content"] for n, p in corpus.dispatches if n == "MESSAGE_CREATE"]
    assert any('"t":' in c or '{"op":1' in c for c in contents)
    assert any("\n" in c for c in contents)
    assert any("\\" in c for c in contents)
    assert any('"' in c for c in contents)
    assert any(any(ord(ch) > 0xFFFF for ch in c) for c in contents)  # astral plane: emoji
    assert any(any(0x3040 <= ord(ch) <= 0x9FFF for ch in c) for c in contents)  # CJK
    assert any(any(0xC0 <= ord(ch) <= 0x17F for ch in c) for c in contents)  # accents
    assert any("<@" in c for c in contents)


def test_messages_carry_embeds_attachments_mentions_and_replies(corpus: Corpus) -> None:
    messages = [p for n, p in corpus.dispatches if n == "MESSAGE_CREATE"]
    assert sum(bool(m["embeds"]) for m in messages) > len(messages) * 0.05
    assert sum(bool(m["attachments"]) for m in messages) > len(messages) * 0.05
    assert sum(bool(m["mentions"]) for m in messages) > len(messages) * 0.05
    assert sum("referenced_message" in m for m in messages) > len(messages) * 0.05
    assert any("message_snapshots" in m for m in messages)
    assert any("webhook_id" in m and "member" not in m for m in messages)
    assert any(m["components"] for m in messages)


def test_reactions_use_custom_and_unicode_emoji(corpus: Corpus) -> None:
    emojis = [p["emoji"] for n, p in corpus.dispatches if n == "MESSAGE_REACTION_ADD"]
    assert any(e.get("id") is None for e in emojis)
    assert any(e.get("id") is not None for e in emojis)
    assert any(p["burst"] for n, p in corpus.dispatches if n == "MESSAGE_REACTION_ADD")


def test_interactions_include_commands_with_options_and_components(corpus: Corpus) -> None:
    interactions = [p for n, p in corpus.dispatches if n == "INTERACTION_CREATE"]
    commands = [i for i in interactions if i["type"] == 2]
    assert any(i["data"].get("options") for i in commands)
    assert any("resolved" in i["data"] for i in commands)
    assert any(i["type"] == 3 and i["data"]["component_type"] == 2 for i in interactions)


def test_guild_create_sizes_span_tens_of_kb_to_megabytes() -> None:
    rng = random.Random(8)
    small = guild_create_payload(rng, 700_000_000_000_000_000, members=60)
    big = guild_create_payload(rng, 710_000_000_000_000_000, members=4_000)
    assert 10_000 < len(orjson.dumps(small)) < 200_000
    assert len(orjson.dumps(big)) > 2_000_000
    assert len(big["channels"]) >= 100
    assert len(big["roles"]) >= 60
    assert big["large"] and not small["large"]


@pytest.mark.parametrize("target", [4 * 1024 * 1024, 500_000, 50_000])
def test_large_guild_create_is_within_10_percent_of_target(target: int) -> None:
    payload = large_guild_create(random.Random(target), 82_000_000_000_000_000, target_bytes=target)
    assert abs(len(orjson.dumps(payload)) - target) <= target * 0.10


def test_dispatch_stream_rejects_unknown_events() -> None:
    with pytest.raises(ValueError, match="no generator"):
        dispatch_stream(random.Random(0), count=1, guild_ids=[1 << 40], mix={"NOT_AN_EVENT": 1.0})
    with pytest.raises(ValueError, match="guild_ids"):
        dispatch_stream(random.Random(0), count=1)


def test_module_exports() -> None:
    for name in corpus_module.__all__:
        assert hasattr(corpus_module, name)
