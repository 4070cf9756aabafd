"""Expose hikari-shard's receive-path statistics to Prometheus (``pip install "hikari-shard[prometheus]"``).

::

    import prometheus_client
    from hikari_shard import prometheus

    prometheus.register(bot)                  # a collector over every shard of the bot, read on scrape
    prometheus_client.start_http_server(9000)

Nothing is counted twice: on each scrape the collector reads every shard's counters
(:attr:`hikari_shard.GatewayShardImpl.stats`) and reports them, labelled by ``shard`` (and by
``event``, ``code`` or ``reason`` where it applies).  The metrics, all prefixed ``hikari_shard_``:

========================================= ========= ===========================================
metric                                    type      labels
========================================= ========= ===========================================
``messages_total``                        counter   shard
``dispatches_total``                      counter   shard, event
``dispatches_skipped_total``              counter   shard (not decoded: nothing consumes them)
``received_bytes_total``                  counter   shard (on the wire, compressed)
``inflated_bytes_total``                  counter   shard (JSON after inflating)
``largest_message_bytes``                 gauge     shard
``connects_total``                        counter   shard
``identifies_total``, ``resumes_total``   counter   shard (sent)
``identify_waits_total``                  counter   shard (waited for the day's IDENTIFY budget)
``waiting_for_budget``                    gauge     shard (1 while it waits for the budget's reset)
``ready_total``, ``resumed_total``        counter   shard (received)
``close_codes_total``                     counter   shard, code
``reconnects_total``                      counter   shard, reason
``heartbeat_latency_seconds``             gauge     shard (the last round trip)
``heartbeat_rtt_seconds``                 histogram shard
========================================= ========= ===========================================
"""

from __future__ import annotations

__all__ = ("ShardCollector", "register")

import math
import typing

from prometheus_client import registry as registry_
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from hikari_shard import statistics

if typing.TYPE_CHECKING:
    from collections.abc import Iterator

    from prometheus_client.metrics_core import Metric

_PREFIX: typing.Final = "hikari_shard"

_COUNTERS: typing.Final = (
    ("messages", "messages", "JSON payloads received (every opcode)"),
    ("dispatches_skipped", "skipped", "dispatches not decoded because nothing consumes them"),
    ("received_bytes", "bytes_received", "bytes of websocket data messages as received (compressed)"),
    ("inflated_bytes", "bytes_inflated", "bytes of JSON after inflating"),
    ("connects", "connects", "websocket connections opened"),
    ("identifies", "identifies", "IDENTIFY payloads sent (new sessions)"),
    ("resumes", "resumes", "RESUME payloads sent"),
    ("identify_waits", "identify_waits", "IDENTIFYs that waited for the day's budget to reset"),
    ("ready", "ready", "READY dispatches received"),
    ("resumed", "resumed", "RESUMED dispatches received"),
)


class ShardCollector(registry_.Collector):
    """A Prometheus collector over the shards of a bot (or one shard), read on every scrape.

    Parameters
    ----------
    bot_or_shard
        A ``hikari.GatewayBot`` (its current shards, ours only) or one of our shards.
    """

    def __init__(self, bot_or_shard: typing.Any) -> None:
        self._target = bot_or_shard

    def collect(self) -> Iterator[Metric]:
        """Yield every metric, one sample per shard (and per event, code or reason)."""
        counters = {
            name: CounterMetricFamily(f"{_PREFIX}_{name}", text, labels=["shard"]) for name, _, text in _COUNTERS
        }
        dispatches = CounterMetricFamily(
            f"{_PREFIX}_dispatches", "dispatches received, by event name", labels=["shard", "event"]
        )
        close_codes = CounterMetricFamily(
            f"{_PREFIX}_close_codes", "connections the gateway closed, by close code", labels=["shard", "code"]
        )
        reconnects = CounterMetricFamily(
            f"{_PREFIX}_reconnects", "reconnects for a reason other than a close code", labels=["shard", "reason"]
        )
        largest = GaugeMetricFamily(
            f"{_PREFIX}_largest_message_bytes", "the largest JSON payload received", labels=["shard"]
        )
        waiting = GaugeMetricFamily(
            f"{_PREFIX}_waiting_for_budget", "1 while the shard waits for the day's IDENTIFY budget", labels=["shard"]
        )
        latency = GaugeMetricFamily(
            f"{_PREFIX}_heartbeat_latency_seconds", "the last heartbeat round trip", labels=["shard"]
        )
        rtt = HistogramMetricFamily(f"{_PREFIX}_heartbeat_rtt_seconds", "heartbeat round trips", labels=["shard"])
        for shard in statistics.our_shards(self._target):
            snapshot: statistics.ShardStats = shard.stats
            label = str(shard.id)
            for name, field, _ in _COUNTERS:
                counters[name].add_metric([label], getattr(snapshot, field))
            for event, count in snapshot.events.items():
                dispatches.add_metric([label, event], count)
            for code, count in snapshot.close_codes.items():
                close_codes.add_metric([label, str(code)], count)
            for reason, count in snapshot.reconnect_reasons.items():
                reconnects.add_metric([label, reason], count)
            largest.add_metric([label], snapshot.largest_message)
            waiting.add_metric([label], snapshot.waiting_for_budget)
            if not math.isnan(snapshot.heartbeat_latency):
                latency.add_metric([label], snapshot.heartbeat_latency)
            cumulative = 0
            buckets: list[tuple[str, float]] = []
            for bound, count in snapshot.heartbeat_buckets:
                cumulative += count
                buckets.append(("+Inf" if math.isinf(bound) else repr(bound), cumulative))
            rtt.add_metric([label], buckets, snapshot.heartbeat_sum)
        yield from counters.values()
        yield from (dispatches, close_codes, reconnects, largest, waiting, latency, rtt)


def register(bot_or_shard: typing.Any, registry: registry_.CollectorRegistry = registry_.REGISTRY) -> ShardCollector:
    """Register a :class:`ShardCollector` for ``bot_or_shard`` (in the default registry unless given).

    Parameters
    ----------
    bot_or_shard
        A ``hikari.GatewayBot`` or one of our shards.
    registry
        The registry to register with.

    Returns
    -------
    ShardCollector
        The collector (``registry.unregister(collector)`` removes it).
    """
    collector = ShardCollector(bot_or_shard)
    registry.register(collector)
    return collector
