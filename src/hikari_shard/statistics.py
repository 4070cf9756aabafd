"""Receive-path statistics: what a shard (or a whole bot's shards) has received and done.

The counters live where the work happens: the per-connection router counts messages, bytes and
dispatches by event name (C integers in the compiled router, one dict update per dispatch), the
shard counts connections, sessions, close codes and heartbeat latencies.  Nothing is computed until
:func:`stats` (or :attr:`hikari_shard.GatewayShardImpl.stats`) is read: then the counters are
copied into a frozen :class:`ShardStats` snapshot.

Example::

    import hikari_shard

    snapshot = hikari_shard.stats(bot)   # summed over the bot's shards (ours only)
    print(snapshot.dispatches, snapshot.compression_ratio, snapshot.events["MESSAGE_CREATE"])
    print(bot.shards[0].stats.to_dict())
"""

from __future__ import annotations

__all__ = ("HEARTBEAT_BUCKETS", "ShardCounters", "ShardStats", "our_shards", "stats")

import collections
import dataclasses
import math
import types
import typing

if typing.TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

HEARTBEAT_BUCKETS: typing.Final[tuple[float, ...]] = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, math.inf)
"""Upper bounds (seconds, inclusive) of the heartbeat latency histogram's buckets."""

_ROUTER_COUNTERS: typing.Final = ("messages", "skipped", "bytes_received", "bytes_inflated")


def _add_counts(totals: dict[str, int], counts: typing.Mapping[str, int]) -> None:
    for name, count in counts.items():
        totals[name] = totals.get(name, 0) + count


class ShardCounters:
    """The mutable counters of one shard; the shard owns one for its whole life.

    Routers come and go with connections: :meth:`absorb` adds a closing router's counters (its
    counts by event name too) to the totals, and :meth:`snapshot` adds the live router's.
    """

    __slots__ = (
        "bytes_inflated",
        "bytes_received",
        "close_codes",
        "connects",
        "events",
        "heartbeat_buckets",
        "heartbeat_count",
        "heartbeat_latency",
        "heartbeat_sum",
        "identifies",
        "identify_waits",
        "largest",
        "messages",
        "ready",
        "reconnect_reasons",
        "resumed",
        "resumes",
        "skipped",
        "waiting_for_budget",
    )

    def __init__(self) -> None:
        self.events: dict[str, int] = {}
        self.messages = 0
        self.skipped = 0
        self.bytes_received = 0
        self.bytes_inflated = 0
        self.largest = 0
        self.connects = 0
        self.identifies = 0
        self.resumes = 0
        self.identify_waits = 0
        self.waiting_for_budget = 0
        self.ready = 0
        self.resumed = 0
        self.close_codes: collections.Counter[int] = collections.Counter()
        self.reconnect_reasons: collections.Counter[str] = collections.Counter()
        self.heartbeat_latency = math.nan
        self.heartbeat_count = 0
        self.heartbeat_sum = 0.0
        self.heartbeat_buckets = [0] * len(HEARTBEAT_BUCKETS)

    def absorb(self, router: typing.Any) -> None:
        """Add the integer counters of ``router`` (whose connection is over) to the totals, once."""
        for name in _ROUTER_COUNTERS:
            setattr(self, name, getattr(self, name) + getattr(router, name))
            setattr(router, name, 0)
        self.largest = max(self.largest, router.largest)
        _add_counts(self.events, router.take_events())

    def heartbeat(self, latency: float) -> None:
        """Record one heartbeat round trip, in seconds (NaN, an ACK without a heartbeat, is ignored)."""
        if math.isnan(latency):
            return
        self.heartbeat_latency = latency
        self.heartbeat_count += 1
        self.heartbeat_sum += latency
        for index, bound in enumerate(HEARTBEAT_BUCKETS):
            if latency <= bound:
                self.heartbeat_buckets[index] += 1
                break

    def snapshot(self, router: typing.Any) -> ShardStats:
        """Copy the counters, plus those of the live ``router`` (or ``None``), into a snapshot."""
        live = [getattr(router, name) if router is not None else 0 for name in _ROUTER_COUNTERS]
        messages, skipped, received, inflated = (
            getattr(self, name) + extra for name, extra in zip(_ROUTER_COUNTERS, live, strict=True)
        )
        # dict() copies in one C call, which no other thread can interleave with (unlike iterating
        # .items() in Python): the Prometheus collector snapshots from its HTTP thread while the event
        # loop adds event names.
        events = dict(self.events)
        if router is not None:
            _add_counts(events, dict(router.events))
        dispatches = sum(events.values())
        return ShardStats(
            shards=1,
            messages=messages,
            dispatches=dispatches,
            decoded=dispatches - skipped,
            skipped=skipped,
            events=types.MappingProxyType(events),
            bytes_received=received,
            bytes_inflated=inflated,
            largest_message=max(self.largest, router.largest if router is not None else 0),
            connects=self.connects,
            identifies=self.identifies,
            resumes=self.resumes,
            identify_waits=self.identify_waits,
            waiting_for_budget=self.waiting_for_budget,
            ready=self.ready,
            resumed=self.resumed,
            close_codes=types.MappingProxyType(dict(self.close_codes)),
            reconnect_reasons=types.MappingProxyType(dict(self.reconnect_reasons)),
            heartbeat_latency=self.heartbeat_latency,
            heartbeat_count=self.heartbeat_count,
            heartbeat_sum=self.heartbeat_sum,
            heartbeat_buckets=tuple(zip(HEARTBEAT_BUCKETS, self.heartbeat_buckets, strict=True)),
        )


@dataclasses.dataclass(frozen=True, slots=True, eq=True)
class ShardStats:
    """A snapshot of the receive-path statistics of one shard, or summed over several.

    Every count is since the shard was created (across every connection, resume and new session).
    """

    shards: int
    """How many shards were summed (1 for a shard's own snapshot)."""
    messages: int
    """JSON payloads received, every opcode (after inflating)."""
    dispatches: int
    """Dispatches received (opcode 0), not counting duplicates dropped after a resume."""
    decoded: int
    """Dispatches JSON-decoded and handed to the event manager."""
    skipped: int
    """Dispatches not decoded because nothing would consume them (selective decode)."""
    events: Mapping[str, int]
    """Dispatches by event name (decoded or skipped)."""
    bytes_received: int
    """Bytes of websocket data messages as received (compressed, when compression is on)."""
    bytes_inflated: int
    """Bytes of JSON after inflating."""
    largest_message: int
    """The largest JSON payload received, in bytes (the maximum over the shards)."""
    connects: int
    """Websocket connections opened."""
    identifies: int
    """IDENTIFYs sent (new sessions; every one after the first is a re-identify)."""
    resumes: int
    """RESUMEs sent."""
    identify_waits: int
    """IDENTIFYs that waited for the day's budget to reset (the guard kept its reserve)."""
    waiting_for_budget: int
    """Shards waiting for the day's IDENTIFY budget to reset now (0 or 1 per shard)."""
    ready: int
    """READY dispatches received."""
    resumed: int
    """RESUMED dispatches received."""
    close_codes: Mapping[int, int]
    """Close codes the gateway closed a connection with, and how often."""
    reconnect_reasons: Mapping[str, int]
    """Why the shard reconnected other than a close code (RECONNECT, INVALID_SESSION, ...)."""
    heartbeat_latency: float
    """The last heartbeat round trip in seconds (NaN before the first; the mean over shards)."""
    heartbeat_count: int
    """Heartbeat acknowledgements timed."""
    heartbeat_sum: float
    """Sum of every timed heartbeat round trip, in seconds."""
    heartbeat_buckets: tuple[tuple[float, int], ...]
    """``(upper bound in seconds, count)`` per histogram bucket, not cumulative (see :data:`HEARTBEAT_BUCKETS`)."""

    @property
    def compression_ratio(self) -> float:
        """``bytes_inflated / bytes_received`` (NaN before anything was received)."""
        return self.bytes_inflated / self.bytes_received if self.bytes_received else math.nan

    @property
    def reidentifies(self) -> int:
        """IDENTIFYs after each shard's first one."""
        return max(0, self.identifies - self.shards)

    def to_dict(self) -> dict[str, typing.Any]:
        """Return the snapshot as plain, JSON-friendly values (NaN becomes ``None``).

        Returns
        -------
        dict[str, typing.Any]
            One key per field, plus ``compression_ratio`` and ``reidentifies``.
        """
        result: dict[str, typing.Any] = {}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, types.MappingProxyType):
                value = {str(key): count for key, count in value.items()}
            elif field.name == "heartbeat_buckets":
                value = [[None if math.isinf(bound) else bound, count] for bound, count in value]
            result[field.name] = value
        for name in ("heartbeat_latency", "compression_ratio"):
            value = result.get(name, getattr(self, name))
            result[name] = None if math.isnan(value) else value
        result["reidentifies"] = self.reidentifies
        return result

    @classmethod
    def sum(cls, snapshots: Iterable[ShardStats]) -> ShardStats:
        """Sum snapshots (counts add, ``largest_message`` is the maximum, latencies average).

        Parameters
        ----------
        snapshots
            The per-shard snapshots.

        Returns
        -------
        ShardStats
            Their total (all zero for none).
        """
        items = list(snapshots)
        counts: dict[str, typing.Any] = {}
        totals: dict[str, typing.Any] = {}
        for name in ("events", "close_codes", "reconnect_reasons"):
            merged: collections.Counter[typing.Any] = collections.Counter()
            for item in items:
                merged.update(getattr(item, name))
            totals[name] = types.MappingProxyType(dict(merged))
        for field in dataclasses.fields(cls):
            if field.name in totals or field.name in {"largest_message", "heartbeat_latency", "heartbeat_buckets"}:
                continue
            counts[field.name] = sum(getattr(item, field.name) for item in items)
        latencies = [item.heartbeat_latency for item in items if not math.isnan(item.heartbeat_latency)]
        buckets = [0] * len(HEARTBEAT_BUCKETS)
        for item in items:
            for index, (_, count) in enumerate(item.heartbeat_buckets):
                buckets[index] += count
        return cls(
            **counts,
            **totals,
            largest_message=max((item.largest_message for item in items), default=0),
            heartbeat_latency=sum(latencies) / len(latencies) if latencies else math.nan,
            heartbeat_buckets=tuple(zip(HEARTBEAT_BUCKETS, buckets, strict=True)),
        )


def our_shards(bot_or_shard: typing.Any) -> list[typing.Any]:
    """The shards of a bot (or the shard itself) that are hikari-shard's (they have the counters)."""
    shards = getattr(bot_or_shard, "shards", None)
    candidates = list(shards.values()) if shards is not None else [bot_or_shard]
    return [shard for shard in candidates if isinstance(getattr(shard, "_stats", None), ShardCounters)]


def stats(bot_or_shard: typing.Any) -> ShardStats:
    """Return a snapshot of the receive-path statistics of a bot's shards (summed) or of one shard.

    Parameters
    ----------
    bot_or_shard
        A ``hikari.GatewayBot`` (its ``shards``; only hikari-shard's shards count) or one of our
        shards.

    Returns
    -------
    ShardStats
        The counters summed over the shards (``shards`` says how many).
    """
    return ShardStats.sum(shard.stats for shard in our_shards(bot_or_shard))
