"""One-line adoption: make hikari build our shard.

hikari's ``GatewayBot`` creates its shards with ``hikari.impl.shard.GatewayShardImpl(...)``, looked
up at call time, so replacing that name (and its re-export ``hikari.impl.GatewayShardImpl``) is
enough.  Our class is also registered as a virtual subclass of hikari's, so code that kept a
reference to the original class still sees ``isinstance(shard, GatewayShardImpl)`` hold.

``install()`` also gives hikari's ``GatewayBot`` our ``start`` and ``close`` (as our own
:class:`GatewayBot` has them): every IDENTIFY goes through one identify queue (Discord's buckets,
``shard_id % max_concurrency``, not hikari's consecutive windows), shards that resume a saved
session start at once, and ``close(resumable=True)`` keeps the sessions for a warm restart.  Both
read hikari 2.7 internals; :func:`_bot_internals_missing` checks them first and, when this hikari
lacks one, keeps hikari's own ``start``/``close`` and says so.
"""

from __future__ import annotations

__all__ = ("GatewayBot", "install", "installed", "uninstall")

import asyncio
import dataclasses
import inspect
import logging
import os
import time
import typing

import hikari
import hikari.impl
from hikari import errors, presences
from hikari.api import config as config_api
from hikari.impl import gateway_bot
from hikari.impl import shard as hikari_shard_module
from hikari.internal import aio, ux

from hikari_shard import _context, identify, recorder, sessions
from hikari_shard import shard as our_shard

if typing.TYPE_CHECKING:
    import datetime

_LOGGER_NAME: typing.Final = "hikari.bot"
ORIGINAL: typing.Final = hikari_shard_module.GatewayShardImpl
"""hikari's own shard class, as it was when this module was imported."""
_MODULES: typing.Final = (hikari_shard_module, hikari.impl, hikari)
_BOT: typing.Final = gateway_bot.GatewayBot
ORIGINAL_START: typing.Final = _BOT.start
ORIGINAL_CLOSE: typing.Final = _BOT.close

ENV_SESSIONS: typing.Final = "HIKARI_SHARD_SESSIONS"
"""Where ``install()`` keeps sessions for warm restarts: a SQLite file's path, or a ``redis://`` URL."""
ENV_MAX_AGE: typing.Final = "HIKARI_SHARD_SESSION_MAX_AGE"
"""Seconds a saved session is worth resuming (default 300)."""

SessionsSpec: typing.TypeAlias = "str | os.PathLike[str] | sessions.SessionStore"
_LOGGER = logging.getLogger("hikari_shard")


def install(*, sessions: SessionsSpec | None = None, max_session_age: float | None = None) -> None:
    """Make every hikari ``GatewayBot`` in this process use :class:`hikari_shard.GatewayShardImpl`.

    Idempotent.  Call it before ``bot.run()``/``bot.start()``; shards that are already running keep
    their class.  :func:`uninstall` undoes it.  With ``HIKARI_SHARD_RECORD=FILE`` set, it also starts
    recording every shard's traffic to FILE (see :mod:`hikari_shard.recorder`).

    Parameters
    ----------
    sessions
        Turns warm restarts on: where to keep each shard's session when the bot shuts down (SIGTERM,
        SIGINT, ``bot.close()``), so that the next process RESUMEs it instead of identifying.  A path
        (one SQLite file, for the processes of one host), a ``redis://`` URL (``hikari-shard[redis]``,
        for bots on several machines), or any :class:`hikari_shard.sessions.SessionStore`.  A SQLite
        file or Redis server given here also holds the identify queue shared by every process of the
        bot.  Defaults to ``HIKARI_SHARD_SESSIONS``; unset, warm restarts are off.
    max_session_age
        A saved session older than this many seconds is not resumed (default
        ``HIKARI_SHARD_SESSION_MAX_AGE`` or 300).
    """
    recorder.from_environment()
    configured = sessions_context(sessions, max_session_age)
    if configured is not None:
        _context.set_default(configured)
    for module in _MODULES:
        if getattr(module, "GatewayShardImpl", None) is not None:
            module.GatewayShardImpl = our_shard.GatewayShardImpl  # type: ignore[attr-defined]
    ORIGINAL.register(our_shard.GatewayShardImpl)
    missing = _bot_internals_missing()
    if missing:
        _LOGGER.warning(
            "this hikari's GatewayBot lacks %s: its own start() and close() stay (no shared identify queue, "
            "no resumable bot close); the shard itself is installed",
            missing,
        )
    else:
        _BOT.start = _start  # type: ignore[method-assign]
        _BOT.close = _close  # type: ignore[method-assign,assignment]


def uninstall() -> None:
    """Give hikari its own shard class back (undoes :func:`install`)."""
    for module in _MODULES:
        if getattr(module, "GatewayShardImpl", None) is typing.cast("object", our_shard.GatewayShardImpl):
            module.GatewayShardImpl = ORIGINAL  # type: ignore[attr-defined]
    _BOT.start = ORIGINAL_START  # type: ignore[method-assign]
    _BOT.close = ORIGINAL_CLOSE  # type: ignore[method-assign]
    _context.set_default(_context.GatewayContext())
    # hikari's class has no virtual subclasses of its own; forget ours.
    ORIGINAL._abc_registry_clear()  # type: ignore[attr-defined]
    ORIGINAL._abc_caches_clear()  # type: ignore[attr-defined]


def installed() -> bool:
    """Whether :func:`install` is in effect."""
    return typing.cast("object", hikari_shard_module.GatewayShardImpl) is our_shard.GatewayShardImpl


def sessions_context(spec: SessionsSpec | None, max_age: float | None = None) -> _context.GatewayContext | None:
    """The warm-restart context for a ``sessions=`` argument (or ``HIKARI_SHARD_SESSIONS``), or `None` if off.

    A path or URL opens the session store and, on the same file or server, the shared identify queue;
    a store object brings only the store (the identify queue stays in-process).
    """
    if spec is None:
        spec = os.environ.get(ENV_SESSIONS) or None
    if spec is None:
        return None
    if max_age is None:
        max_age = _env_max_age()
    store = sessions.open_store(spec)
    queue = identify.open_queue(spec) if isinstance(spec, str | os.PathLike) else None
    return _context.GatewayContext(store=store, queue=queue, max_age=max_age)


def _env_max_age() -> float:
    raw = os.environ.get(ENV_MAX_AGE)
    if not raw:
        return _context.DEFAULT_MAX_AGE
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value > 0:
        _LOGGER.warning("ignoring %s=%r (not a positive number of seconds)", ENV_MAX_AGE, raw)
        return _context.DEFAULT_MAX_AGE
    return value


# -- hikari's GatewayBot, as install() patches it and our subclass has it ----------------------------
_START_KEYWORDS: typing.Final = (
    "activity",
    "afk",
    "check_for_updates",
    "idle_since",
    "ignore_session_start_limit",
    "large_threshold",
    "shard_ids",
    "shard_count",
    "status",
    "startup_window_delay",
)
_BOT_ATTRIBUTES: typing.Final = (
    "_cache",
    "_closed_event",
    "_closing_event",
    "_event_factory",
    "_event_manager",
    "_http_settings",
    "_proxy_settings",
    "_rest",
    "_shards",
    "_voice",
)


def _bot_internals_missing() -> str:
    """What of hikari 2.7's ``GatewayBot`` our ``start``/``close`` need and this hikari lacks ('' if nothing)."""
    missing = [name for name in _BOT_ATTRIBUTES if name not in getattr(_BOT, "__slots__", ())]
    start_parameters = inspect.signature(ORIGINAL_START).parameters
    missing += [f"start({name}=)" for name in _START_KEYWORDS if name not in start_parameters]
    one_shard = inspect.signature(_BOT._start_one_shard).parameters
    missing += [f"_start_one_shard({name}=)" for name in ("shard_id", "shard_count", "url") if name not in one_shard]
    missing += [name for name in ("_validate_activity",) if not hasattr(gateway_bot, name)]
    return ", ".join(missing)


def _context_of(bot: gateway_bot.GatewayBot) -> _context.GatewayContext:
    context = getattr(bot, "_hs_context", None)
    return context if context is not None else _context.default()


_RESUME_LACKS: typing.Final = {
    config_api.CacheComponents.ME: "the bot's own user (READY)",
    config_api.CacheComponents.GUILDS: "guilds",
    config_api.CacheComponents.GUILD_CHANNELS: "channels",
    config_api.CacheComponents.GUILD_THREADS: "threads",
    config_api.CacheComponents.ROLES: "roles",
    config_api.CacheComponents.MEMBERS: "members",
    config_api.CacheComponents.EMOJIS: "emojis",
    config_api.CacheComponents.GUILD_STICKERS: "stickers",
    config_api.CacheComponents.PRESENCES: "presences",
    config_api.CacheComponents.VOICE_STATES: "voice states",
}
"""What hikari's cache fills from READY and GUILD_CREATE, which a RESUME does not send again."""


def _warn_about_cache(bot: gateway_bot.GatewayBot) -> None:
    components = bot._cache.settings.components
    lacking = [what for component, what in _RESUME_LACKS.items() if component & components]
    if lacking:
        _LOGGER.warning(
            "warm restarts are on and the cache is enabled: a shard that resumes gets no READY and no GUILD_CREATE, "
            "so this process's cache lacks %s of the resumed shards' guilds until Discord sends them again "
            "(warm restarts suit cache-less bots and bots with an external cache)",
            ", ".join(lacking),
        )


async def _start(
    self: gateway_bot.GatewayBot,
    *,
    activity: presences.Activity | None = None,
    afk: bool = False,
    check_for_updates: bool = True,
    idle_since: datetime.datetime | None = None,
    ignore_session_start_limit: bool = False,
    large_threshold: int = 250,
    shard_ids: typing.Sequence[int] | None = None,
    shard_count: int | None = None,
    status: presences.Status = presences.Status.ONLINE,
    startup_window_delay: int = 5,
) -> None:
    """hikari 2.7's ``GatewayBot.start``, with every shard started at once and IDENTIFYs spaced by the queue.

    hikari starts consecutive slices of ``max_concurrency`` shard ids, 5 s apart; Discord's rate limit
    is per bucket (``shard_id % max_concurrency``), and a shard that resumes needs no slot at all.
    Here each shard that must IDENTIFY waits for its bucket in the identify queue (shared across the
    bot's processes when a store is configured), and the day's ``session_start_limit`` is guarded
    (:class:`hikari_shard.identify.IdentifyBudget`).
    """
    if self._closed_event:
        msg = "bot is already running"
        raise errors.ComponentStateConflictError(msg)
    if shard_ids is not None and shard_count is None:
        msg = "'shard_ids' must be passed with 'shard_count'"
        raise TypeError(msg)
    if startup_window_delay < 5:
        msg = "'startup_window_delay' must be at least 5 seconds"
        raise ValueError(msg)
    gateway_bot._validate_activity(activity)

    start_time = time.time()
    self._closed_event = asyncio.Event()
    self._closing_event = asyncio.Event()
    if check_for_updates:
        asyncio.create_task(  # noqa: RUF006 - hikari's dangling update check
            ux.check_for_updates(self._http_settings, self._proxy_settings), name="check for package updates"
        )
    self._rest.start()
    self._voice.start()
    await self._event_manager.dispatch(self._event_factory.deserialize_starting_event(), return_tasks=True)
    requirements = await self._rest.fetch_gateway_bot_info()
    if shard_count is None:
        shard_count = requirements.shard_count
    ids = tuple(range(shard_count) if shard_ids is None else dict.fromkeys(shard_ids))

    limit = requirements.session_start_limit
    base = _context_of(self)
    context = dataclasses.replace(
        base,
        max_concurrency=max(1, limit.max_concurrency),
        budget=identify.IdentifyBudget(limit.total, limit.remaining, limit.reset_after.total_seconds()),
    )
    if base.store is None and limit.remaining < len(ids) and not ignore_session_start_limit:
        # hikari's refusal; with a store, shards that resume spend nothing and the budget guard waits instead.
        gateway_bot._LOGGER.critical(
            "would have started %s sessions, but you only have %s remaining until %s. Starting more sessions than "
            "you are allowed to start may result in your token being reset. To skip this message, use "
            "bot.run(..., ignore_session_start_limit=True) or bot.start(..., ignore_session_start_limit=True)",
            len(ids),
            limit.remaining,
            limit.reset_at,
        )
        msg = "Attempted to start more sessions than were allowed in the given time-window"
        raise RuntimeError(msg)
    if base.store is not None:
        _warn_about_cache(self)
    gateway_bot._LOGGER.info(
        "you can start %s sessions before the next window which starts at %s; planning to start %s sessions "
        "(identify buckets: %s)...",
        limit.remaining,
        limit.reset_at,
        len(ids),
        context.max_concurrency,
    )
    with _context.using(context):
        starting = asyncio.gather(
            *(
                self._start_one_shard(
                    activity=activity,
                    afk=afk,
                    idle_since=idle_since,
                    status=status,
                    large_threshold=large_threshold,
                    shard_id=shard_id,
                    shard_count=shard_count,
                    url=requirements.url,
                )
                for shard_id in ids
            )
        )
    await aio.first_completed(self._closing_event.wait(), starting)
    if self._closing_event.is_set():
        return
    await self._event_manager.dispatch(self._event_factory.deserialize_started_event(), return_tasks=True)
    gateway_bot._LOGGER.info("started successfully in approx %.2f seconds", time.time() - start_time)


async def _close(self: gateway_bot.GatewayBot, *, resumable: bool | None = None) -> None:
    """hikari's ``GatewayBot.close``, each of our shards closing resumably or not as asked.

    ``resumable=None`` (what ``bot.run()`` does on SIGTERM/SIGINT) leaves it to each shard: resumable
    when a session store is configured.
    """
    if resumable is not None:
        for shard in self._shards.values():
            if isinstance(shard, our_shard.GatewayShardImpl):
                shard._close_preference = resumable
    await ORIGINAL_CLOSE(self)


class GatewayBot(gateway_bot.GatewayBot):
    """A :class:`hikari.GatewayBot` whose shards are :class:`hikari_shard.GatewayShardImpl`.

    Takes exactly ``hikari.GatewayBot``'s arguments, plus ``sessions`` and ``max_session_age`` (warm
    restarts, as :func:`install` takes them), and changes no global state, unlike :func:`install`.
    ``start`` spaces IDENTIFYs by Discord's buckets through the identify queue and starts resuming
    shards at once; ``close(resumable=True)`` keeps every shard's session for a warm restart.
    """

    __slots__: typing.Sequence[str] = ("_hs_context",)

    def __init__(
        self,
        *args: typing.Any,
        sessions: SessionsSpec | None = None,
        max_session_age: float | None = None,
        **kwargs: typing.Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self._hs_context = sessions_context(sessions, max_session_age) or _context.default()

    start = _start  # type: ignore[assignment]
    close = _close  # type: ignore[assignment]

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
