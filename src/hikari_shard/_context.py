"""What a shard shares with the rest of its bot: the session store, the identify queue and budget.

The shard's constructor is exactly hikari's, so none of this can be a keyword of it.  A shard takes
its :class:`GatewayContext` when it is built: the one our ``GatewayBot.start`` (or hikari's, patched
by :func:`hikari_shard.install`) set for the shards it starts, else the process-wide default that
``install(sessions=...)`` configures.  Every store and queue call made here is bounded in time and
never raises: a store that cannot be read or written logs one WARNING and the shard identifies,
a queue that fails falls back to the in-process queue.
"""

from __future__ import annotations

__all__ = ("GatewayContext", "current", "default", "set_default", "using")

import asyncio
import contextlib
import contextvars
import dataclasses
import logging
import time
import typing

from hikari_shard import identify, sessions, statistics

if typing.TYPE_CHECKING:
    from collections.abc import Iterator

DEFAULT_MAX_AGE: typing.Final = 300.0
"""Seconds a saved session is worth resuming (Discord keeps a disconnected session for a few minutes)."""
STORE_TIMEOUT: typing.Final = 5.0
"""The longest a shard waits on its session store for one call, over the store's own timeouts."""

_LOCAL_QUEUE: tuple[asyncio.AbstractEventLoop, identify.LocalIdentifyQueue] | None = None


def local_queue() -> identify.LocalIdentifyQueue:
    """The in-process identify queue shared by every shard of this event loop without a shared one.

    One per event loop: its locks belong to the loop that made them (``bot.run()`` makes a new one).
    """
    global _LOCAL_QUEUE
    loop = asyncio.get_running_loop()
    if _LOCAL_QUEUE is None or _LOCAL_QUEUE[0] is not loop:
        _LOCAL_QUEUE = (loop, identify.LocalIdentifyQueue())
    return _LOCAL_QUEUE[1]


@dataclasses.dataclass(slots=True)
class GatewayContext:
    """The warm-restart and identify settings a shard follows.

    Attributes
    ----------
    store
        Where resumable sessions are saved and found again, or `None` (warm restarts off).
    queue
        The identify queue (one IDENTIFY per ``shard_id % max_concurrency`` bucket per 5 s), or
        `None` for the process-wide in-process queue.
    budget
        The day's IDENTIFY budget (``session_start_limit``), or `None` when not known (a shard started
        without a bot).
    max_concurrency
        Discord's ``max_concurrency`` for the bot (1 until ``GET /gateway/bot`` says otherwise).
    max_age
        A saved session older than this many seconds is not resumed.
    """

    store: sessions.SessionStore | None = None
    queue: identify.IdentifyQueue | None = None
    budget: identify.IdentifyBudget | None = None
    max_concurrency: int = 1
    max_age: float = DEFAULT_MAX_AGE
    _warned: set[str] = dataclasses.field(default_factory=set)

    def warn_once(self, logger: logging.Logger, what: str, message: str, *args: object) -> None:
        """Log ``message`` at WARNING the first time ``what`` goes wrong in this context."""
        if what not in self._warned:
            self._warned.add(what)
            logger.warning(message, *args)

    # -- the session store -------------------------------------------------------------------------
    async def load(
        self, key: int, shard_id: int, shard_count: int, logger: logging.Logger
    ) -> sessions.SessionRecord | None:
        """The saved session of a shard, or `None` (none saved, or the store failed: logged)."""
        if self.store is None:
            return None
        try:
            async with asyncio.timeout(STORE_TIMEOUT):
                return await self.store.load(key, shard_id, shard_count)
        except Exception as ex:
            logger.warning("could not read the saved session, will identify (%s: %s)", type(ex).__name__, ex)
            return None

    async def save(self, record: sessions.SessionRecord, logger: logging.Logger) -> bool:
        """Save a resumable session; whether it was saved (a failure is logged)."""
        if self.store is None:
            return False
        try:
            async with asyncio.timeout(STORE_TIMEOUT):
                await self.store.save(record)
        except Exception as ex:
            logger.warning("could not save the session for a warm restart (%s: %s)", type(ex).__name__, ex)
            return False
        logger.info("saved session %s at seq %s for a warm restart", record.session_id, record.seq)
        return True

    async def delete(self, key: int, shard_id: int, shard_count: int, logger: logging.Logger) -> None:
        """Forget a shard's saved session (a failure is logged)."""
        if self.store is None:
            return
        try:
            async with asyncio.timeout(STORE_TIMEOUT):
                await self.store.delete(key, shard_id, shard_count)
        except Exception as ex:
            logger.warning("could not delete the saved session (%s: %s)", type(ex).__name__, ex)

    def usable(self, record: sessions.SessionRecord, shard_id: int, shard_count: int, intents: int) -> str | None:
        """Why a saved session cannot be resumed by this shard, or `None` if it can."""
        if record.shard_id != shard_id or record.shard_count != shard_count:
            return f"it is for shard {record.shard_id} of {record.shard_count}"
        if record.intents != intents:
            return f"it was identified with intents {record.intents}, not {intents}"
        age = time.time() - record.saved_at
        if not 0 <= age <= self.max_age:
            return f"it is {age:.0f}s old (the limit is {self.max_age:.0f}s)"
        return None

    # -- the identify queue ------------------------------------------------------------------------
    async def before_identify(
        self, key: int, shard_id: int, logger: logging.Logger, counters: statistics.ShardCounters
    ) -> None:
        """Wait until this shard may IDENTIFY: its bucket's slot, then one IDENTIFY of the day's budget."""
        shared = self.queue
        if shared is None:
            await local_queue().acquire(key, shard_id, self.max_concurrency)
        else:
            try:
                await shared.acquire(key, shard_id, self.max_concurrency)
            except Exception as ex:
                self.warn_once(
                    logger,
                    "queue",
                    "the shared identify queue failed (%s: %s); identifying through this process's queue instead",
                    type(ex).__name__,
                    ex,
                )
                await local_queue().acquire(key, shard_id, self.max_concurrency)
        budget = self.budget
        if budget is None:
            return
        if budget.remaining - 1 < budget.reserve:
            counters.identify_waits += 1
            counters.waiting_for_budget = 1
        try:
            await budget.spend(logger)
        finally:
            counters.waiting_for_budget = 0


_DEFAULT = GatewayContext()
_CURRENT: contextvars.ContextVar[GatewayContext | None] = contextvars.ContextVar("hikari_shard_context", default=None)


def default() -> GatewayContext:
    """The process-wide context (``install(sessions=...)`` sets its store)."""
    return _DEFAULT


def set_default(context: GatewayContext) -> None:
    """Replace the process-wide context."""
    global _DEFAULT
    _DEFAULT = context


def current() -> GatewayContext:
    """The context a shard built now follows: its bot's, else the process-wide one."""
    context = _CURRENT.get()
    return context if context is not None else _DEFAULT


@contextlib.contextmanager
def using(context: GatewayContext) -> Iterator[None]:
    """Shards built inside this block (and in tasks created in it) follow ``context``."""
    token = _CURRENT.set(context)
    try:
        yield
    finally:
        _CURRENT.reset(token)
