"""Selective decode: would anything consume a dispatch of this name?

hikari's :class:`~hikari.impl.event_manager_base.EventManagerBase` throws a raw dispatch away
(after looking it up) when no listener, waiter or cache needs it and nobody listens to
:class:`~hikari.events.shard_events.ShardPayloadEvent`.  Such a dispatch need not be JSON-decoded
at all: the shard reads its ``op``/``s``/``t`` with the compiled scanner and only tracks its seq.

The answer is computed from the event manager's live state on every call, so listeners subscribed
or removed at runtime take effect on the next dispatch.  When the event manager is not hikari's,
or its internals are not what this module expects, :meth:`ConsumerIndex.wants` always answers
``True`` (decode everything) and says why once at DEBUG.
"""

from __future__ import annotations

__all__ = ("ConsumerIndex",)

import logging
import typing

from hikari.events import shard_events
from hikari.impl import event_manager_base

if typing.TYPE_CHECKING:
    from hikari.api import event_manager as event_manager_api

_LOGGER: typing.Final = logging.getLogger("hikari_shard")
_UNKNOWN: typing.Final = object()


def _unsupported_reason(manager: object) -> str | None:
    if not isinstance(manager, event_manager_base.EventManagerBase):
        return f"event manager {type(manager).__qualname__} is not hikari's EventManagerBase"
    base = event_manager_base.EventManagerBase
    if type(manager).consume_raw_event is not base.consume_raw_event:
        return f"{type(manager).__qualname__} overrides consume_raw_event"
    for attr in ("_consumers", "_listeners", "_waiters"):
        if not isinstance(getattr(manager, attr, None), dict):
            return f"event manager has no dict {attr}"
    consumers = manager._consumers
    for consumer in consumers.values():
        if not hasattr(consumer, "is_enabled"):
            return "event manager consumers have no is_enabled"
        break
    return None


class _Always:
    __slots__ = ()
    is_enabled: typing.Final = True


class ConsumerIndex:
    """Answers whether a dispatch will be consumed by ``manager``.

    Parameters
    ----------
    manager
        The shard's event manager.
    """

    __slots__ = ("by_name", "consumers", "listeners", "payload_event_types", "supported", "waiters")

    def __init__(self, manager: event_manager_api.EventManager) -> None:
        reason = _unsupported_reason(manager)
        self.supported: bool = reason is None
        """Whether selective decode can be used with this event manager."""
        if reason is not None:
            _LOGGER.debug("selective decode disabled, every dispatch is decoded: %s", reason)
        internals = typing.cast("typing.Any", manager) if reason is None else None
        # hikari mutates these dicts in place (never replaces them), so holding them follows every
        # subscribe/unsubscribe and wait_for at once.  The compiled router reads them directly.
        self.listeners: dict[typing.Any, typing.Any] = internals._listeners if internals else {}
        self.waiters: dict[typing.Any, typing.Any] = internals._waiters if internals else {}
        self.consumers: dict[str, typing.Any] = internals._consumers if internals else {}
        self.payload_event_types: tuple[type[typing.Any], ...] = tuple(shard_events.ShardPayloadEvent.dispatches())
        self.by_name: dict[str, typing.Any] = {}
        """Cache of event name -> hikari consumer (``None`` for names hikari does not know)."""

    @classmethod
    def wanting(cls, names: typing.Iterable[str]) -> ConsumerIndex:
        """An index that wants exactly the dispatches called ``names`` (for benchmarks and tests)."""
        index = cls.__new__(cls)
        index.supported = True
        index.listeners = {}
        index.waiters = {}
        index.payload_event_types = ()
        index.consumers = {name.lower(): _Always() for name in names}
        index.by_name = {}
        return index

    def wants(self, name: str) -> bool:
        """Whether a dispatch called ``name`` would be consumed (``True`` when unsure)."""
        if not self.supported:
            return True
        listeners = self.listeners
        waiters = self.waiters
        if listeners or waiters:
            for event_type in self.payload_event_types:
                if event_type in listeners or event_type in waiters:
                    return True
        consumer = self.by_name.get(name, _UNKNOWN)
        if consumer is _UNKNOWN:
            consumer = self.consumers.get(name.lower())
            self.by_name[name] = consumer
        if consumer is None:
            # hikari raises LookupError for it and ignores the event: nothing consumes it.
            return False
        return bool(typing.cast("typing.Any", consumer).is_enabled)
