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


class ConsumerIndex:
    """Answers whether a dispatch will be consumed by ``manager``.

    Parameters
    ----------
    manager
        The shard's event manager.
    """

    __slots__ = ("_by_name", "_manager", "_payload_event_types", "supported")

    def __init__(self, manager: event_manager_api.EventManager) -> None:
        self._manager = manager
        self._by_name: dict[str, object] = {}
        self._payload_event_types = tuple(shard_events.ShardPayloadEvent.dispatches())
        reason = _unsupported_reason(manager)
        self.supported: bool = reason is None
        """Whether selective decode can be used with this event manager."""
        if reason is not None:
            _LOGGER.debug("selective decode disabled, every dispatch is decoded: %s", reason)

    def wants(self, name: str) -> bool:
        """Whether a dispatch called ``name`` would be consumed (``True`` when unsure)."""
        if not self.supported:
            return True
        manager = typing.cast("typing.Any", self._manager)
        listeners = manager._listeners
        waiters = manager._waiters
        if listeners or waiters:
            for event_type in self._payload_event_types:
                if event_type in listeners or event_type in waiters:
                    return True
        consumer = self._by_name.get(name, _UNKNOWN)
        if consumer is _UNKNOWN:
            consumer = manager._consumers.get(name.lower())
            self._by_name[name] = consumer
        if consumer is None:
            # hikari raises LookupError for it and ignores the event: nothing consumes it.
            return False
        return bool(typing.cast("typing.Any", consumer).is_enabled)
