"""Record a running bot's gateway traffic, redacted, for ``hikari-shard bench --replay``.

::

    import hikari_shard

    with hikari_shard.record(bot, "traffic.jsonl", duration=600):   # or: recording = record(...); recording.close()
        ...                                                          # the bot runs meanwhile

writes one dispatch per line in the JSON-lines format ``--replay`` reads.  Only dispatches the
shard received are recorded (never what it sends, so never IDENTIFY, RESUME or the token; READY
and RESUMED are left out too, ``--replay`` does not use them), redacted by default
(:mod:`hikari_shard.redact`).

How it stays off the hot path: while nothing records, each of our shards' routers has
``recorder = None`` and the only cost is that ``is not None`` check per dispatch.  While
recording, the router appends the raw JSON bytes it already holds to the recording's list (a
``list.append``, no Python code runs); a watcher thread checks ``limit_bytes`` and ``duration``
four times a second and stops the recording at either; parsing, redacting and writing happen in
:meth:`Recording.close` (:meth:`Recording.aclose` runs them in a thread).

Setting ``HIKARI_SHARD_RECORD=traffic.jsonl`` before :func:`hikari_shard.install` records every
shard of the process until it exits (``HIKARI_SHARD_RECORD_LIMIT`` bytes and
``HIKARI_SHARD_RECORD_DURATION`` seconds bound it; ``HIKARI_SHARD_RECORD_REDACT=0`` turns
redaction off).
"""

from __future__ import annotations

__all__ = ("DEFAULT_LIMIT_BYTES", "Recording", "from_environment", "record", "recorder_for")

import asyncio
import atexit
import logging
import math
import os
import pathlib
import threading
import time
import typing

import orjson

from hikari_shard import redact as redact_

if typing.TYPE_CHECKING:
    import types

DEFAULT_LIMIT_BYTES: typing.Final[int] = 64 * 1024 * 1024
"""A recording keeps at most this many bytes of JSON by default (it is held in memory until closed)."""

ENV_PATH: typing.Final = "HIKARI_SHARD_RECORD"
ENV_LIMIT: typing.Final = "HIKARI_SHARD_RECORD_LIMIT"
ENV_DURATION: typing.Final = "HIKARI_SHARD_RECORD_DURATION"
ENV_REDACT: typing.Final = "HIKARI_SHARD_RECORD_REDACT"

_LOGGER: typing.Final = logging.getLogger("hikari_shard.recorder")
_LEFT_OUT: typing.Final = frozenset(("READY", "RESUMED"))
_WATCH_INTERVAL: typing.Final = 0.25
_ACTIVE: list[Recording] = []
_LOCK: typing.Final = threading.Lock()
_FROM_ENVIRONMENT: list[Recording] = []


class Recording:
    """A recording in progress; :func:`record` starts one.

    Use it as a context manager (sync or async), or call :meth:`close` (or ``await``
    :meth:`aclose`) to stop it and write the file.
    """

    __slots__ = (
        "_bytes",
        "_callback",
        "_checked",
        "_closed",
        "_deadline",
        "_limit",
        "_manager",
        "_payloads",
        "_redact",
        "_shards",
        "_stopped",
        "_target",
        "_wakeup",
        "_watcher",
        "lines",
        "path",
    )

    def __init__(
        self,
        target: typing.Any,
        path: str | os.PathLike[str],
        *,
        limit_bytes: int,
        duration: float | None,
        redact: bool,
        watch: bool = True,
    ) -> None:
        if limit_bytes <= 0:
            msg = "limit_bytes must be positive"
            raise ValueError(msg)
        self.path = pathlib.Path(path)
        """The file written by :meth:`close`."""
        self.lines = 0
        """Lines written (set by :meth:`close`)."""
        self._target = target
        self._manager = getattr(target, "event_manager", None) if hasattr(target, "shards") else None
        self._limit = limit_bytes
        self._deadline = time.monotonic() + duration if duration is not None else math.inf
        self._redact = redact
        # The routers call list.append (C code, no Python frame) with the payload bytes they already
        # hold; the size and time limits are checked by a watcher thread _WATCH_INTERVAL apart, and
        # applied exactly when the file is written.
        self._payloads: list[bytes] = []
        self._callback = self._payloads.append
        self._checked = 0
        self._bytes = 0
        self._stopped = False
        self._closed = False
        self._shards: list[typing.Any] = []  # shards whose routers may call back (strong refs until stop())
        self._wakeup = threading.Event()
        self._watcher: threading.Thread | None = None
        if watch:
            self._watcher = threading.Thread(
                target=self._watch, name=f"hikari-shard record {self.path.name}", daemon=True
            )
            self._watcher.start()

    def __repr__(self) -> str:
        return (
            f"Recording(path={str(self.path)!r}, dispatches={self.dispatches}, redact={self._redact}, "
            f"stopped={self.stopped})"
        )

    @property
    def dispatches(self) -> int:
        """Payloads captured so far (READY and RESUMED, left out of the file, included)."""
        return len(self._payloads) if not self._closed else self.lines

    @property
    def size(self) -> int:
        """Bytes of JSON captured, as of the last check (four times a second)."""
        return self._bytes

    @property
    def stopped(self) -> bool:
        """Whether capturing is over (stopped, closed, or its size or time limit reached)."""
        return self._stopped or time.monotonic() > self._deadline or self._bytes > self._limit

    def _matches(self, shard: typing.Any) -> bool:
        if self._target is None:
            return True
        if self._manager is not None:
            return bool(getattr(shard, "_event_manager", None) is self._manager)
        return bool(shard is self._target)

    def _track(self, shard: typing.Any) -> None:
        if not any(known is shard for known in self._shards):
            self._shards.append(shard)

    def _attach(self, shard: typing.Any) -> None:
        self._track(shard)
        router = getattr(shard, "_router", None)
        if router is not None and router.recorder is None:
            router.recorder = self._callback

    def _check(self) -> bool:
        """Add up what arrived since the last check; stop at a limit.  Returns whether to go on."""
        payloads = self._payloads
        count = len(payloads)
        self._bytes += sum(len(payload) for payload in payloads[self._checked : count])
        self._checked = count
        if self._bytes > self._limit or time.monotonic() > self._deadline:
            _LOGGER.info("recording to %s reached its limit after %s dispatches", self.path, count)
            self.stop()
        return not self._stopped

    def _watch(self) -> None:
        while not self._wakeup.wait(_WATCH_INTERVAL) and self._check():
            pass

    def stop(self) -> None:
        """Stop capturing (nothing is written yet: see :meth:`close`)."""
        self._stopped = True
        self._wakeup.set()
        with _LOCK:
            if self in _ACTIVE:
                _ACTIVE.remove(self)
        shards, self._shards = self._shards, []
        for shard in shards:
            router = getattr(shard, "_router", None)
            if router is not None and router.recorder == self._callback:
                router.recorder = None

    def close(self) -> int:
        """Stop capturing and write the file (redacted unless ``redact=False``); idempotent.

        Returns
        -------
        int
            The number of dispatches written (within ``limit_bytes``, without READY and RESUMED).
        """
        self.stop()
        if self._closed:
            return self.lines
        self._closed = True
        payloads, self._payloads = self._payloads, []
        redactor = redact_.Redactor() if self._redact else None
        temporary = self.path.with_name(self.path.name + ".part")
        total = 0
        lines = 0
        with temporary.open("wb") as file:
            for raw in payloads:
                payload = orjson.loads(raw)
                if payload.get("t") in _LEFT_OUT:
                    continue
                total += len(raw)
                if total > self._limit:
                    break
                line = orjson.dumps(redactor.payload(payload)) if redactor is not None else raw.replace(b"\n", b" ")
                file.write(line + b"\n")
                lines += 1
        temporary.replace(self.path)
        self.lines = lines
        how = "redacted" if redactor is not None else "NOT redacted"
        _LOGGER.info("recorded %s dispatches to %s (%s)", lines, self.path, how)
        return lines

    async def aclose(self) -> int:
        """Like :meth:`close`, with the redaction and the writing in a thread (the event loop keeps running).

        Returns
        -------
        int
            The number of dispatches written.
        """
        self.stop()
        return await asyncio.to_thread(self.close)

    def __enter__(self) -> Recording:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: types.TracebackType | None
    ) -> None:
        self.close()

    async def __aenter__(self) -> Recording:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: types.TracebackType | None
    ) -> None:
        await self.aclose()


def record(
    bot_or_shard: typing.Any,
    path: str | os.PathLike[str],
    *,
    limit_bytes: int = DEFAULT_LIMIT_BYTES,
    duration: float | None = None,
    redact: bool = True,
) -> Recording:
    """Start recording the dispatches a bot's shards (or one shard) receive to ``path``.

    Call it before ``bot.start()`` to catch everything from the first GUILD_CREATE, or at any time
    while the bot runs.  Only hikari-shard's shards record (``install()`` or
    ``hikari_shard.GatewayBot``).

    Parameters
    ----------
    bot_or_shard
        A ``hikari.GatewayBot`` (every shard that uses its event manager, including shards that
        start later), one of our shards, or ``None`` for every shard of this process.
    path
        The JSON-lines file to write when the recording is closed.
    limit_bytes
        Stop capturing once this many bytes of JSON are held (they stay in memory until closed).
    duration
        Stop capturing after this many seconds.
    redact
        Replace free text and ids (:mod:`hikari_shard.redact`).  ``False`` keeps your users'
        messages, names and ids in the file: for private use only, never share it.

    Returns
    -------
    Recording
        Close it (or leave its ``with`` block) to write the file.
    """
    recording = Recording(bot_or_shard, path, limit_bytes=limit_bytes, duration=duration, redact=redact)
    if not redact:
        _LOGGER.warning(
            "recording to %s WITHOUT redaction: the file will hold your users' messages, names and ids; "
            "keep it private and never share it",
            recording.path,
        )
    with _LOCK:
        _ACTIVE.append(recording)
    if bot_or_shard is not None:
        shards = getattr(bot_or_shard, "shards", None)
        for shard in shards.values() if shards is not None else (bot_or_shard,):
            if hasattr(shard, "_stats"):  # ours
                recording._attach(shard)
    return recording


def recorder_for(shard: typing.Any) -> typing.Callable[[bytes], None] | None:
    """Return the callback a new router of ``shard`` should record through, or ``None`` (the shard calls this)."""
    if not _ACTIVE:
        return None
    with _LOCK:
        for recording in _ACTIVE:
            if not recording.stopped and recording._matches(shard):
                recording._track(shard)
                return recording._callback
    return None


def from_environment() -> Recording | None:
    """Start the process-wide recording asked for by ``HIKARI_SHARD_RECORD`` (once); ``install()`` calls it.

    Returns
    -------
    Recording | None
        The recording (closed at exit), or ``None`` if the variable is not set.
    """
    path = os.environ.get(ENV_PATH)
    if not path:
        return None
    if _FROM_ENVIRONMENT:
        return _FROM_ENVIRONMENT[0]
    duration = os.environ.get(ENV_DURATION)
    recording = record(
        None,
        path,
        limit_bytes=int(os.environ.get(ENV_LIMIT) or DEFAULT_LIMIT_BYTES),
        duration=float(duration) if duration else None,
        redact=os.environ.get(ENV_REDACT, "1").strip().lower() not in {"0", "false", "no", "off"},
    )
    _FROM_ENVIRONMENT.append(recording)
    atexit.register(recording.close)
    return recording
