"""Receive-path statistics: the router's counters (both twins) and the shard's, against the emulator."""

from __future__ import annotations

import collections
import json
import math
import types
import typing
import zlib

import orjson
import pytest

from helpers import TOKEN, Recorder, make_shard, running, until
from hikari_shard import statistics
from hikari_shard.bench import recording
from hikari_shard.testing import GatewayEmulator, build_corpus
from hikari_shard.testing.emulator import EmulatedConnection
from hikari_shard.testing.hot_paths import make_router

WANTED: typing.Final = frozenset(("MESSAGE_CREATE", "INTERACTION_CREATE"))


def _ws_payload_length(frame: bytes) -> int:
    """The payload length of one unmasked server websocket frame."""
    length = frame[1] & 0x7F
    header = 2 if length < 126 else 4 if length == 126 else 10
    return len(frame) - header


def _stream(count: int, seed: int = 5) -> list[bytes]:
    corpus = build_corpus(seed=seed, dispatches=count)
    return [recording.envelope(name, seq, orjson.dumps(data)) for seq, (name, data) in enumerate(corpus.dispatches, 2)]


# --- the router, both implementations ---------------------------------------------------------------------------------


@pytest.mark.parametrize("selective", [False, True], ids=["full", "selective"])
def test_router_counters(impl: types.SimpleNamespace, selective: bool) -> None:
    payloads = _stream(300)
    heartbeat_ack = b'{"op":11,"d":null}'
    duplicate = payloads[10]
    messages = [*payloads[:50], heartbeat_ack, duplicate, *payloads[50:]]
    compressor = zlib.compressobj()
    frames = [compressor.compress(raw) + compressor.flush(zlib.Z_SYNC_FLUSH) for raw in messages]

    consumed: list[str] = []
    recorded: list[bytes] = []
    router = make_router(
        impl,
        wanting=WANTED if selective else None,
        consume=lambda name, shard, data: consumed.append(name),
        inflator=impl.inflate.ZlibStreamInflator(),
        expect_binary=True,
    )
    router.recorder = lambda raw: recorded.append(bytes(raw))
    for frame in frames:
        router.feed_frame(2, frame)

    names = [orjson.loads(raw)["t"] for raw in payloads]
    assert router.messages == len(messages)
    assert router.bytes_received == sum(len(frame) for frame in frames)
    assert router.bytes_inflated == sum(len(raw) for raw in messages)
    assert router.largest == max(len(raw) for raw in messages)
    assert router.events == dict(collections.Counter(names))  # the duplicate is not counted
    assert router.skipped == (sum(1 for name in names if name not in WANTED) if selective else 0)
    assert len(consumed) == len(payloads) - router.skipped
    assert recorded == payloads  # every dispatch once, in order, the duplicate and the heartbeat ACK left out


def test_router_without_a_recorder_and_text_frames(impl: types.SimpleNamespace) -> None:
    payloads = _stream(20)
    router = make_router(impl)
    assert router.recorder is None
    assert (router.messages, router.bytes_received, router.bytes_inflated, router.largest) == (0, 0, 0, 0)
    for raw in payloads:
        router.feed_frame(1, raw)
    router.feed_frame(9, b"ping")  # control frames are not data
    assert router.bytes_received == router.bytes_inflated == sum(len(raw) for raw in payloads)
    assert sum(router.events.values()) == len(payloads)


# --- the shard, against the emulator ----------------------------------------------------------------------------------


@pytest.mark.parametrize("compression", [None, "transport_zlib_stream"], ids=["none", "zlib-stream"])
async def test_shard_stats_agree_with_the_emulator_across_resume_and_reidentify(
    monkeypatch: pytest.MonkeyPatch, compression: str | None
) -> None:
    sent: list[tuple[str | None, int, int]] = []  # (t, JSON bytes, websocket payload bytes) of every payload sent
    encode = EmulatedConnection._encode

    def counting_encode(self: EmulatedConnection, payload: dict[str, typing.Any]) -> bytes:
        frame = encode(self, payload)
        sent.append((payload.get("t"), len(orjson.dumps(payload)), _ws_payload_length(frame)))
        return frame

    monkeypatch.setattr(EmulatedConnection, "_encode", counting_encode)
    dispatches = build_corpus(seed=11, dispatches=240).dispatches
    first, second, third = dispatches[:80], dispatches[80:160], dispatches[160:]
    manager = Recorder()
    # A heartbeat interval of 50 minutes: the only heartbeats are the ones this test asks for.
    async with GatewayEmulator(token=TOKEN, heartbeat_interval=3_000) as gateway:
        shard = make_shard(gateway, manager=manager, compression=compression)
        async with running(shard):
            await gateway.dispatch_many(first)
            await until(lambda: len(manager.raw) == 1 + len(first), what="the first third")
            await gateway.connections[-1].drop()
            await gateway.dispatch_many(second)  # while the shard is away: replayed on RESUME
            await until(lambda: len(manager.raw) == 2 + len(first) + len(second), what="the resume")
            await gateway.connections[-1].close(4009, "session timed out")  # a new session
            await until(lambda: manager.names().count("READY") == 2, what="the second READY")
            await gateway.dispatch_many(third)
            await until(lambda: len(manager.raw) == 3 + len(dispatches), what="the last third")
            await gateway.connections[-1].request_heartbeat()
            await until(lambda: shard.stats.heartbeat_count == 1, what="the heartbeat ACK")
            snapshot = shard.stats

        assert manager.names() == [name for name, _ in [("READY", 0), *first, *second, ("RESUMED", 0)]] + [
            "READY",
            *(name for name, _ in third),
        ]
        names = [name for name, _, _ in sent if name is not None]
        assert snapshot.events == dict(collections.Counter(names))
        assert snapshot.dispatches == len(names) == len(manager.raw)
        assert snapshot.decoded == snapshot.dispatches
        assert snapshot.skipped == 0
        assert snapshot.messages == len(sent)
        assert snapshot.bytes_inflated == sum(size for _, size, _ in sent)
        assert snapshot.bytes_received == sum(wire for _, _, wire in sent)
        assert snapshot.largest_message == max(size for _, size, _ in sent)
        if compression is None:
            assert math.isclose(snapshot.compression_ratio, 1.0)
        else:
            assert snapshot.compression_ratio > 2
        assert (snapshot.connects, snapshot.identifies, snapshot.resumes) == (3, 2, 1)
        assert (snapshot.ready, snapshot.resumed, snapshot.reidentifies) == (2, 1, 1)
        assert dict(snapshot.close_codes) == {4009: 1}
        assert sum(snapshot.reconnect_reasons.values()) == 1  # the dropped connection
        assert snapshot.heartbeat_count == 1
        assert snapshot.heartbeat_latency == pytest.approx(snapshot.heartbeat_sum)
        assert sum(count for _, count in snapshot.heartbeat_buckets) == 1
        # The same counts from the module-level function, and a JSON-friendly dict.
        assert statistics.stats(shard) == snapshot
        as_dict = json.loads(json.dumps(snapshot.to_dict()))
        assert as_dict["events"] == dict(collections.Counter(names))
        assert as_dict["close_codes"] == {"4009": 1}


async def test_counters_are_live_while_connected() -> None:
    manager = Recorder()
    async with GatewayEmulator(token=TOKEN) as gateway:
        shard = make_shard(gateway, manager=manager)
        assert shard.stats.dispatches == 0
        assert math.isnan(shard.stats.heartbeat_latency)
        async with running(shard):
            await gateway.dispatch("TYPING_START", {"channel_id": "1", "user_id": "2", "timestamp": 3})
            await until(lambda: len(manager.raw) == 2)
            live = shard.stats
            assert live.events == {"READY": 1, "TYPING_START": 1}
            assert live.connects == 1
            assert live.messages >= 3  # HELLO, READY, TYPING_START


# --- summing and the snapshot -----------------------------------------------------------------------------------------


def _counters(events: dict[str, int], *, latency: float, code: int) -> statistics.ShardCounters:
    counters = statistics.ShardCounters()
    counters.events.update(events)
    counters.messages = sum(events.values())
    counters.bytes_received = 100
    counters.bytes_inflated = 400
    counters.largest = 50 * code
    counters.identifies = 2
    counters.close_codes[code] += 1
    counters.heartbeat(latency)
    return counters


def test_stats_sums_a_bots_shards() -> None:
    shards = [
        types.SimpleNamespace(_stats=c, stats=c.snapshot(None))
        for c in (
            _counters({"MESSAGE_CREATE": 3}, latency=0.02, code=4000),
            _counters({"MESSAGE_CREATE": 1, "TYPING_START": 5}, latency=0.3, code=4009),
        )
    ]
    bot = types.SimpleNamespace(shards={0: shards[0], 1: shards[1], 2: object()})  # the last is not ours
    total = statistics.stats(bot)
    assert total.shards == 2
    assert dict(total.events) == {"MESSAGE_CREATE": 4, "TYPING_START": 5}
    assert total.dispatches == 9
    assert total.compression_ratio == 4.0
    assert total.largest_message == 50 * 4009
    assert total.reidentifies == 2
    assert dict(total.close_codes) == {4000: 1, 4009: 1}
    assert total.heartbeat_latency == pytest.approx(0.16)
    assert [count for _, count in total.heartbeat_buckets][:5] == [1, 0, 0, 0, 1]
    assert total.to_dict()["heartbeat_buckets"][-1] == [None, 0]


def test_stats_of_nothing_is_zero() -> None:
    empty = statistics.stats(types.SimpleNamespace(shards={}))
    assert empty.shards == empty.dispatches == empty.bytes_received == 0
    assert math.isnan(empty.compression_ratio)
    assert empty.to_dict()["compression_ratio"] is None


def test_snapshot_is_frozen() -> None:
    snapshot = statistics.ShardCounters().snapshot(None)
    with pytest.raises(AttributeError):
        snapshot.messages = 1  # type: ignore[misc]
    with pytest.raises(TypeError):
        snapshot.events["X"] = 1  # type: ignore[index]


def test_take_events_hands_over_the_counts_and_starts_again(impl: types.SimpleNamespace) -> None:
    payloads = _stream(31)
    router = make_router(impl)
    for raw in payloads[:30]:
        router.feed_frame(1, raw)
    counted = router.events
    assert sum(counted.values()) == 30
    assert router.take_events() == counted
    assert router.events == {}
    router.feed_frame(1, payloads[30])
    assert router.events == {orjson.loads(payloads[30])["t"]: 1}
