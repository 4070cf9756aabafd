"""The optional Prometheus collector reads the shards' counters on every scrape."""

from __future__ import annotations

import types
import typing

import pytest

from helpers import TOKEN, Recorder, make_shard, running, until
from hikari_shard import statistics
from hikari_shard.testing import GatewayEmulator

prometheus_client = pytest.importorskip("prometheus_client")

from hikari_shard import prometheus  # noqa: E402 - only with prometheus_client installed


async def test_collector_reports_the_shards_counters() -> None:
    registry = prometheus_client.CollectorRegistry()
    manager = Recorder()
    async with GatewayEmulator(token=TOKEN) as gateway:
        shard = make_shard(gateway, manager=manager)
        bot = types.SimpleNamespace(shards={0: shard})
        collector = prometheus.register(bot, registry)
        async with running(shard):
            for number in range(3):
                await gateway.dispatch("TYPING_START", {"channel_id": "1", "user_id": str(number), "timestamp": 3})
            await until(lambda: len(manager.raw) == 4)
            await gateway.connections[-1].request_heartbeat()
            await until(lambda: shard.stats.heartbeat_count == 1)
            snapshot = shard.stats

            def value(name: str, **labels: str) -> float | None:
                return registry.get_sample_value(name, {"shard": "0", **labels})  # type: ignore[no-any-return]

            assert value("hikari_shard_dispatches_total", event="TYPING_START") == 3
            assert value("hikari_shard_dispatches_total", event="READY") == 1
            assert value("hikari_shard_messages_total") == snapshot.messages
            assert value("hikari_shard_inflated_bytes_total") == snapshot.bytes_inflated
            assert value("hikari_shard_received_bytes_total") == snapshot.bytes_received
            assert value("hikari_shard_largest_message_bytes") == snapshot.largest_message
            assert value("hikari_shard_connects_total") == 1
            assert value("hikari_shard_identifies_total") == 1
            assert value("hikari_shard_heartbeat_rtt_seconds_count") == 1
            assert value("hikari_shard_heartbeat_rtt_seconds_bucket", le="+Inf") == 1
            assert value("hikari_shard_heartbeat_latency_seconds") == pytest.approx(snapshot.heartbeat_latency)
            exposition = prometheus_client.generate_latest(registry).decode()
            assert 'hikari_shard_dispatches_total{event="TYPING_START",shard="0"} 3.0' in exposition
        registry.unregister(collector)
        assert registry.get_sample_value("hikari_shard_connects_total", {"shard": "0"}) is None


class _NewNameMidScrape(str):
    """An event name whose hashing adds another name to the live router's dict, as the event loop can
    while the collector's HTTP thread copies it."""

    __slots__ = ()
    live: typing.ClassVar[dict[str, int]] = {}

    def __hash__(self) -> int:
        _NewNameMidScrape.live[f"NEW_{len(_NewNameMidScrape.live)}"] = 1
        return str.__hash__(self)


def test_a_scrape_while_a_new_event_name_arrives() -> None:
    """The snapshot copies the live router's dict at once: a name added meanwhile does not break the scrape."""
    live: dict[str, int] = {_NewNameMidScrape("MESSAGE_CREATE"): 2, "TYPING_START": 1}
    _NewNameMidScrape.live = live
    router = types.SimpleNamespace(messages=3, skipped=0, bytes_received=10, bytes_inflated=20, largest=5, events=live)
    snapshot = statistics.ShardCounters().snapshot(router)  # "dictionary changed size during iteration" before
    assert snapshot.events["MESSAGE_CREATE"] == 2
    assert snapshot.events["TYPING_START"] == 1
