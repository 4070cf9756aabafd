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

It also fixes ``Client.stop`` of 0.2.x, which passes a generator to ``asyncio.gather`` and so raises
``RuntimeError`` before any shard is closed: a worker's ``Bot.close()`` never closed its shards.

:func:`setup` makes more changes to the bot it is given:

- hikari 2.7's ``EventManager.dispatch(event)`` returns `None` unless ``return_tasks=True`` and the
  orchestrator's ``Bot.start`` awaits it: the bot's event manager returns an already-finished awaitable
  instead (listeners run as hikari schedules them; nothing else changes).
- Each shard's READY is reported to the server at once, through the orchestrator client's own
  ``_on_ready`` hook, which 0.2.1 never subscribes.  The server holds a ``max_concurrency`` bucket until
  5 s after a shard's first report, and without this the worker sends that report 30 s after the shard
  started: each further shard of a bucket waited about 35 s instead of Discord's 5 s.  IDENTIFYs stay at
  least 5 s apart per bucket (the 5 s count from the report, which follows READY, which follows IDENTIFY).
  A RESUMED is reported at once too.
- **Session hand-off** (``handoff=True``, the default).  The manager records every shard's session id and
  seq (at READY, at RESUMED, every 30 s, and when the shard stops) and hands that record to the worker
  that acquires the shard next; 0.2.1 never uses it, so every move re-identified.  With hand-off, a shard
  built from a record RESUMEs it (:meth:`hikari_shard.GatewayShardImpl.adopt_session`): Discord replays
  what it sent after the recorded seq, and the shard identifies only if Discord refuses the session.  A
  shard this worker stops (``Bot.close()``, or the manager's ``Disconnect``) closes resumably, so its next
  worker resumes it at the exact seq.  A worker that dies (SIGKILL, a crash) leaves the last report, up
  to 30 s old: its replacement receives the dispatches after it again (at least once, never lost).  The
  manager keeps only its first gateway URL, so hand-offs resume there, not at ``resume_gateway_url``.

.. _hikari-orchestrator: https://github.com/FasterSpeeding/hikari-orchestrator
"""

from __future__ import annotations

__all__ = ("setup", "wrap")

import abc
import asyncio
import functools
import importlib.metadata
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
_HANDS_OFF: typing.Final = "__hikari_shard_handoff__"  # marks our Bot subclass (the Bot itself has _PATCHED)


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


async def _client_stop(self: typing.Any) -> None:
    # 0.2.x's Client.stop with its one defect fixed: the disconnects are gathered as awaitables.
    if not self._attributes:
        msg = "Not running"
        raise RuntimeError(msg)
    await asyncio.gather(*(shard.disconnect() for shard in self._tracked_shards.values()))
    self._tracked_shards.clear()
    self._remote_shards.clear()
    await self._attributes.channel.close()
    self._attributes = None


def _fix_client_stop() -> None:
    # A bet on 0.2.x's private Client (pyproject bounds the engine to <0.3); each part is checked first.
    cls = orchestrator_client.Client
    if getattr(cls.stop, _PATCHED, False):
        return
    version = importlib.metadata.version("hikari-orchestrator")
    if not version.startswith("0.2.") or not {"_attributes", "_tracked_shards", "_remote_shards"} <= set(
        getattr(cls, "__slots__", ())
    ):
        _LOGGER.warning(
            "hikari-orchestrator %s is not the 0.2.x this integration knows: its Client.stop is left as it is "
            "(0.2.x's raises RuntimeError and never closes the worker's shards)",
            version,
        )
        return
    setattr(_client_stop, _PATCHED, True)
    cls.stop = _client_stop  # type: ignore[method-assign]
    _LOGGER.debug("hikari-orchestrator compatibility: fixed Client.stop")


def _apply_compat() -> None:
    _fill_abstract(orchestrator_bot.Bot, {"request_channel_info": _bot_request_channel_info})
    _fill_abstract(
        orchestrator_client._RemoteShard,
        {"request_channel_info": _remote_request_channel_info, "capabilities": property(_remote_capabilities)},
    )
    _fix_client_stop()


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


_StateEvent = hikari.ShardReadyEvent | hikari.ShardResumedEvent


def _report_state_hook(bot: hikari.GatewayBotAware) -> Callable[[_StateEvent], Coroutine[None, None, None]]:
    async def report_state(event: _StateEvent) -> None:
        tracked = getattr(getattr(bot, "_manager", None), "_tracked_shards", {}).get(event.shard.id)
        if isinstance(event, hikari.ShardReadyEvent):
            report = getattr(tracked, "_on_ready", None)
            if report is not None:
                await report(event)
        else:
            report = getattr(tracked, "update_status", None)
            if report is not None:
                await report()

    setattr(report_state, _PATCHED, True)
    return report_state


_HANDOFF_BOTS: dict[type, type] = {}


def _handoff_shard(shard: object, shard_state: typing.Any) -> object:
    """The shard the orchestrator built, set to resume its record and to close resumably."""
    if not isinstance(shard, hikari_shard.GatewayShardImpl):
        return shard
    shard._close_preference = True  # its next worker resumes it: close() keeps the session
    if shard_state.HasField("session_id") and shard_state.HasField("seq") and shard_state.session_id:
        _LOGGER.info(
            "shard %s: resuming session %s at seq %s, as the orchestrator recorded it",
            shard.id,
            shard_state.session_id,
            shard_state.seq,
        )
        shard.adopt_session(shard_state.session_id, shard_state.seq)
    return shard


def _hand_off_sessions(bot: typing.Any) -> None:
    cls = type(bot)
    if getattr(cls, _HANDS_OFF, False):
        return
    make_shard = getattr(cls, "_make_shard", None)
    if make_shard is None or list(inspect.signature(make_shard).parameters) != ["self", "shard_state"]:
        _LOGGER.warning(
            "hikari-orchestrator's Bot has no _make_shard(shard_state) as 0.2.x has: session hand-off is off, "
            "shards that move between workers identify again"
        )
        return
    subclass = _HANDOFF_BOTS.get(cls)
    if subclass is None:

        def _make_shard(self: typing.Any, shard_state: typing.Any) -> object:
            return _handoff_shard(make_shard(self, shard_state), shard_state)

        namespace = {"__slots__": (), "__module__": cls.__module__, "_make_shard": _make_shard, _HANDS_OFF: True}
        subclass = _HANDOFF_BOTS[cls] = type(cls.__name__, (cls,), namespace)
    bot.__class__ = subclass


def setup(bot: hikari.GatewayBotAware, *, handoff: bool = True) -> None:
    """Make this orchestrator worker run :class:`hikari_shard.GatewayShardImpl` shards.

    Call it in the worker process before the bot starts.  It runs :func:`hikari_shard.install` and,
    for a ``hikari_orchestrator.Bot``, makes the changes described in this module's documentation.
    Idempotent.

    Parameters
    ----------
    bot
        The worker's bot, a ``hikari_orchestrator.Bot``.
    handoff
        Whether shards resume the session the orchestrator recorded for them, and close resumably
        so that their next worker can (the default).  `False` keeps the orchestrator's behaviour:
        every shard identifies, and closes with 1001.
    """
    hikari_shard.install()
    if not isinstance(bot, orchestrator_bot.Bot):
        return
    _make_dispatch_awaitable(bot.event_manager)
    if handoff:
        _hand_off_sessions(bot)
    hook = None
    for event_type in (hikari.ShardReadyEvent, hikari.ShardResumedEvent):
        listeners = bot.event_manager.get_listeners(event_type)
        if not any(getattr(listener, _PATCHED, False) for listener in listeners):
            hook = hook or _report_state_hook(bot)
            bot.event_manager.subscribe(event_type, hook)


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
