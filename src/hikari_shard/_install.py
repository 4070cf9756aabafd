"""One-line adoption: make hikari build our shard.

hikari's ``GatewayBot`` creates its shards with ``hikari.impl.shard.GatewayShardImpl(...)``, looked
up at call time, so replacing that name (and its re-export ``hikari.impl.GatewayShardImpl``) is
enough.  Our class is also registered as a virtual subclass of hikari's, so code that kept a
reference to the original class still sees ``isinstance(shard, GatewayShardImpl)`` hold.
"""

from __future__ import annotations

__all__ = ("GatewayBot", "install", "installed", "uninstall")

import time
import typing

import hikari
import hikari.impl
from hikari.impl import gateway_bot
from hikari.impl import shard as hikari_shard_module

from hikari_shard import recorder
from hikari_shard import shard as our_shard

if typing.TYPE_CHECKING:
    import datetime

    from hikari import presences

_LOGGER_NAME: typing.Final = "hikari.bot"
ORIGINAL: typing.Final = hikari_shard_module.GatewayShardImpl
"""hikari's own shard class, as it was when this module was imported."""
_MODULES: typing.Final = (hikari_shard_module, hikari.impl, hikari)


def install() -> None:
    """Make every hikari ``GatewayBot`` in this process use :class:`hikari_shard.GatewayShardImpl`.

    Idempotent.  Call it before ``bot.run()``/``bot.start()``; shards that are already running keep
    their class.  :func:`uninstall` undoes it.  With ``HIKARI_SHARD_RECORD=FILE`` set, it also starts
    recording every shard's traffic to FILE (see :mod:`hikari_shard.recorder`).
    """
    recorder.from_environment()
    for module in _MODULES:
        if getattr(module, "GatewayShardImpl", None) is not None:
            module.GatewayShardImpl = our_shard.GatewayShardImpl  # type: ignore[attr-defined]
    ORIGINAL.register(our_shard.GatewayShardImpl)


def uninstall() -> None:
    """Give hikari its own shard class back (undoes :func:`install`)."""
    for module in _MODULES:
        if getattr(module, "GatewayShardImpl", None) is typing.cast("object", our_shard.GatewayShardImpl):
            module.GatewayShardImpl = ORIGINAL  # type: ignore[attr-defined]
    # hikari's class has no virtual subclasses of its own; forget ours.
    ORIGINAL._abc_registry_clear()  # type: ignore[attr-defined]
    ORIGINAL._abc_caches_clear()  # type: ignore[attr-defined]


def installed() -> bool:
    """Whether :func:`install` is in effect."""
    return typing.cast("object", hikari_shard_module.GatewayShardImpl) is our_shard.GatewayShardImpl


class GatewayBot(gateway_bot.GatewayBot):
    """A :class:`hikari.GatewayBot` whose shards are :class:`hikari_shard.GatewayShardImpl`.

    Takes exactly ``hikari.GatewayBot``'s arguments and changes no global state, unlike
    :func:`install`.
    """

    __slots__: typing.Sequence[str] = ()

    async def _start_one_shard(
        self,
        *,
        activity: presences.Activity | None,
        afk: bool,
        idle_since: datetime.datetime | None,
        status: presences.Status,
        large_threshold: int,
        shard_id: int,
        shard_count: int,
        url: str,
    ) -> None:
        new_shard = our_shard.GatewayShardImpl(
            http_settings=self._http_settings,
            proxy_settings=self._proxy_settings,
            event_manager=self._event_manager,
            event_factory=self._event_factory,
            intents=self._intents,
            capabilities=self._capabilities,
            dumps=self._dumps,
            loads=self._loads,
            initial_activity=activity,
            initial_is_afk=afk,
            initial_idle_since=idle_since,
            initial_status=status,
            large_threshold=large_threshold,
            shard_id=shard_id,
            shard_count=shard_count,
            token=self._token,
            url=url,
        )
        try:
            start = time.perf_counter()
            await new_shard.start()
            end = time.perf_counter()
        except Exception:
            if new_shard.is_alive:
                await new_shard.close()
            raise

        if not new_shard.is_alive:
            msg = f"shard {shard_id} shut down immediately when starting"
            raise RuntimeError(msg)

        gateway_bot._LOGGER.debug("shard %s started successfully in %.1fms", shard_id, (end - start) * 1_000)
        self._shards[shard_id] = new_shard
