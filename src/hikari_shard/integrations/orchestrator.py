"""hikari-shard under `hikari-orchestrator`_ (tested with 0.2.1).

An orchestrator worker builds its shards with ``hikari.impl.GatewayShardImpl(...)`` inside the worker
process; :func:`setup` installs our shard there.  A worker you start yourself, on any machine, against an
orchestrator server (``hor server`` or ``hikari_orchestrator.run_server``)::

    import hikari_orchestrator
    from hikari_shard.integrations import orchestrator

    bot = hikari_orchestrator.Bot("localhost:50051", TOKEN, ca_cert=CA_CERT, local_shard_count=2)
    orchestrator.setup(bot)
    bot.event_manager.subscribe(hikari.MessageCreateEvent, on_message)
    bot.run()

With ``run_subprocesses`` (or ``hor run --entrypoint module:function``), pass ``callback=wrap(configure)``
(or ``--entrypoint hikari_shard.integrations.orchestrator:setup``): the callback is pickled to every
worker process, where it runs :func:`setup`, then ``configure(bot)``.

Importing this module makes hikari-orchestrator 0.2.1 work with hikari 2.7, whose ``GatewayBotAware``
and ``GatewayShard`` gained abstract members the orchestrator lacks (its ``Bot`` and its stand-ins for
shards of other processes could not even be created).  Each is filled in only while still missing:

- ``Bot.request_channel_info`` goes through the guild's shard when this process runs it, and raises
  :class:`NotImplementedError` otherwise (the orchestrator has no message to forward it);
- ``capabilities`` of a shard in another process is ``GatewayCapabilities.NONE``, what every
  orchestrator worker identifies with.

:func:`setup` makes two more changes to the bot it is given:

- hikari 2.7's ``EventManager.dispatch(event)`` returns `None` unless ``return_tasks=True`` and the
  orchestrator's ``Bot.start`` awaits it: the bot's event manager returns an already-finished awaitable
  instead (listeners run as hikari schedules them; nothing else changes).
- Each shard's READY is reported to the server at once, through the orchestrator client's own
  ``_on_ready`` hook, which 0.2.1 never subscribes.  The server holds a ``max_concurrency`` bucket until
  5 s after a shard's first report, and without this the worker sends that report 30 s after the shard
  started: each further shard of a bucket waited about 35 s instead of Discord's 5 s.  IDENTIFYs stay at
  least 5 s apart per bucket (the 5 s count from the report, which follows READY, which follows IDENTIFY).

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
    # The engine is optional: mypy knows it only where it is installed.
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

    Call it in the worker process before the bot starts.  It runs :func:`hikari_shard.install` and,
    for a ``hikari_orchestrator.Bot``, makes the two changes described in this module's documentation.
    Idempotent.

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
