"""hikari-shard under `hikari-orchestrator`_ (tested with 0.2.1).

The orchestrator builds each worker's shards with ``hikari.impl.GatewayShardImpl(...)`` inside the worker
process, after calling your callback with the worker's bot.  :func:`setup` installs our shard there::

    import hikari_orchestrator
    from hikari_shard.integrations import orchestrator


    def configure(bot: hikari.GatewayBotAware) -> None:
        bot.event_manager.subscribe(hikari.MessageCreateEvent, on_message)


    if __name__ == "__main__":
        hikari_orchestrator.run_subprocesses(TOKEN, callback=orchestrator.wrap(configure))

``hor run --entrypoint mybot:configure`` works the same way with ``configure = orchestrator.wrap(_configure)``
in ``mybot``, or ``--entrypoint hikari_shard.integrations.orchestrator:setup`` for a bot that needs no
callback.  A worker you run yourself (``hikari_orchestrator.Bot(address, token)`` against ``hor server``)
takes ``orchestrator.setup(bot)`` before ``bot.run()``.

Importing this module also makes hikari-orchestrator 0.2.1 usable with hikari 2.7, whose
``GatewayBotAware`` and ``GatewayShard`` gained abstract members the orchestrator does not implement
(so its ``Bot`` and its proxies for shards in other processes could not be created):

- ``Bot.request_channel_info`` sends the request through the guild's shard when it runs in this
  process, and raises :class:`NotImplementedError` when it runs in another one (the orchestrator's
  protocol has no message to forward it).
- ``capabilities`` of a shard in another process is ``GatewayCapabilities.NONE``, what every
  orchestrator worker identifies with.

Each fix is applied only while the installed orchestrator still lacks the member.  :func:`setup`
adds a third: hikari 2.7's ``EventManager.dispatch(event)`` returns `None` unless asked for
``return_tasks=True``, and the orchestrator's ``Bot.start`` awaits it; the bot's event manager is given
a ``dispatch`` that returns an already-finished awaitable instead of `None` (listeners still run as
tasks, as hikari schedules them; nothing else changes).

:func:`setup` also reports each shard's READY to the orchestrator server at once, through the
orchestrator client's own ``_on_ready`` hook, which 0.2.1 never subscribes.  The server holds a
``max_concurrency`` bucket until 5 s after a shard's first report and the worker otherwise sends that
report only 30 s after the shard started, so every further shard of a bucket waited about 35 s instead
of Discord's 5 s.  Identifies stay at least 5 s apart per bucket (the server still waits 5 s after the
report, which follows READY, which follows IDENTIFY).

.. _hikari-orchestrator: https://github.com/FasterSpeeding/hikari-orchestrator
"""

from __future__ import annotations

__all__ = ("setup", "wrap")

import abc
import functools
import inspect
import logging
import typing

import hikari

import hikari_shard

try:
    # (type: ignore: the engine is optional; mypy sees it only where it is installed)
    from hikari_orchestrator import _bot as orchestrator_bot  # type: ignore[import-not-found]
    from hikari_orchestrator import _client as orchestrator_client  # type: ignore[import-not-found]
except ImportError as ex:  # pragma: no cover - depends on the environment
    msg = "hikari_shard.integrations.orchestrator needs hikari-orchestrator: pip install hikari-orchestrator"
    raise ImportError(msg) from ex

if typing.TYPE_CHECKING:
    from collections.abc import Callable, Coroutine, Generator, Sequence

_LOGGER: typing.Final = logging.getLogger("hikari_shard")
_PATCHED: typing.Final = "__hikari_shard_compat__"


async def _bot_request_channel_info(
    self: typing.Any, guild: hikari.SnowflakeishOr[hikari.PartialGuild], *, fields: Sequence[typing.Any]
) -> None:
    await self._get_shard(guild).request_channel_info(guild, fields=fields)


async def _remote_request_channel_info(
    self: typing.Any, guild: hikari.SnowflakeishOr[hikari.PartialGuild], *, fields: Sequence[typing.Any]
) -> None:
    msg = (
        f"shard {self.id} runs in another process and hikari-orchestrator cannot forward "
        "request_channel_info to it; call it from the process that runs the guild's shard"
    )
    raise NotImplementedError(msg)


def _remote_capabilities(_: typing.Any) -> hikari.GatewayCapabilities:
    return hikari.GatewayCapabilities.NONE


def _fill_abstract(cls: type, members: dict[str, typing.Any]) -> None:
    missing = {name: value for name, value in members.items() if name in getattr(cls, "__abstractmethods__", ())}
    if not missing:
        return
    for name, value in missing.items():
        setattr(cls, name, value)
    setattr(cls, _PATCHED, tuple(missing))
    abc.update_abstractmethods(cls)
    _LOGGER.debug("hikari-orchestrator compatibility: implemented %s on %s", ", ".join(missing), cls.__qualname__)


def _apply_compat() -> None:
    _fill_abstract(orchestrator_bot.Bot, {"request_channel_info": _bot_request_channel_info})
    _fill_abstract(
        orchestrator_client._RemoteShard,
        {"request_channel_info": _remote_request_channel_info, "capabilities": property(_remote_capabilities)},
    )


_apply_compat()


class _Done:
    """What ``dispatch`` returns instead of `None`: awaiting it finishes at once."""

    __slots__ = ()

    def __await__(self) -> Generator[None, None, None]:
        yield from ()


_DONE: typing.Final = _Done()
_AWAITABLE_DISPATCH: dict[type, type] = {}


def _make_dispatch_awaitable(manager: hikari.api.EventManager) -> None:
    cls = type(manager)
    if getattr(cls, _PATCHED, False) or "return_tasks" not in inspect.signature(cls.dispatch).parameters:
        return
    subclass = _AWAITABLE_DISPATCH.get(cls)
    if subclass is None:

        def dispatch(self: typing.Any, event: hikari.Event, *, return_tasks: bool = False) -> typing.Any:
            result = cls.dispatch(self, event, return_tasks=return_tasks)
            return _DONE if result is None else result

        namespace = {"__slots__": (), "__module__": cls.__module__, "dispatch": dispatch, _PATCHED: True}
        subclass = _AWAITABLE_DISPATCH[cls] = type(cls.__name__, (cls,), namespace)
    manager.__class__ = subclass


def _report_ready_hook(bot: hikari.GatewayBotAware) -> Callable[[hikari.ShardReadyEvent], Coroutine[None, None, None]]:
    async def report_ready(event: hikari.ShardReadyEvent) -> None:
        tracked = getattr(getattr(bot, "_manager", None), "_tracked_shards", {}).get(event.shard.id)
        on_ready = getattr(tracked, "_on_ready", None)
        if on_ready is not None:
            await on_ready(event)

    setattr(report_ready, _PATCHED, True)
    return report_ready


def setup(bot: hikari.GatewayBotAware) -> None:
    """Make this orchestrator worker run :class:`hikari_shard.GatewayShardImpl` shards.

    Call it in the worker process before the bot starts: pass it (or :func:`wrap`) as the
    orchestrator's ``callback``, or call it first in your own callback.  Idempotent per bot.

    Parameters
    ----------
    bot
        The worker's bot, a ``hikari_orchestrator.Bot``.
    """
    hikari_shard.install()
    if not isinstance(bot, orchestrator_bot.Bot):
        return
    _make_dispatch_awaitable(bot.event_manager)
    listeners = bot.event_manager.get_listeners(hikari.ShardReadyEvent)
    if not any(getattr(listener, _PATCHED, False) for listener in listeners):
        bot.event_manager.subscribe(hikari.ShardReadyEvent, _report_ready_hook(bot))


def _setup_then(callback: Callable[[hikari.GatewayBotAware], object] | None, bot: hikari.GatewayBotAware) -> None:
    setup(bot)
    if callback is not None:
        callback(bot)


def wrap(
    callback: Callable[[hikari.GatewayBotAware], object] | None = None,
) -> Callable[[hikari.GatewayBotAware], None]:
    """Return an orchestrator callback that runs :func:`setup`, then ``callback``.

    The result can be pickled (the orchestrator sends it to its worker processes) as long as
    ``callback`` can: a function defined at the top level of a module.

    Parameters
    ----------
    callback
        Your own per-worker callback, or `None`.
    """
    return functools.partial(_setup_then, callback)
