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
recording, the router hands the raw JSON bytes it already holds to :meth:`Recording._on_dispatch`,
which copies them into in-memory chunks (bounded by ``limit_bytes``, and by ``duration``); parsing,
redacting and writing happen in :meth:`Recording.close` (:meth:`Recording.aclose` runs them in a
thread).

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
import os
import pathlib
import threading
import time
import typing

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
_CHUNK: typing.Final = 4 * 1024 * 1024
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
        "_chunk",
        "_chunks",
        "_closed",
        "_count",
        "_deadline",
        "_limit",
        "_manager",
        "_pos",
        "_redact",
        "_shards",
        "_sizes",
        "_stopped",
        "_target",
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
        self._deadline = time.monotonic() + duration if duration is not None else float("inf")
        self._redact = redact
        # Payloads are copied into preallocated chunks rather than kept: the router's buffers are
        # then freed at once and their memory reused, as when nothing records (keeping each
        # payload alive costs far more than the copy), and nothing is reallocated as it grows.
        self._chunks: list[bytes] = []
        self._chunk = bytearray()
        self._pos = 0
        self._sizes: list[int] = []
        self._bytes = 0
        self._count = 0
        self._stopped = False
        self._closed = False
        self._shards: list[typing.Any] = []  # shards whose routers may call back (strong refs until stop())
        self._callback = self._on_dispatch

    def __repr__(self) -> str:
        return (
            f"Recording(path={str(self.path)!r}, dispatches={self.dispatches}, bytes={self._bytes}, "
            f"redact={self._redact}, stopped={self._stopped})"
        )

    @property
    def dispatches(self) -> int:
        """Dispatches captured so far."""
        return self._count

    @property
    def size(self) -> int:
        """Bytes of JSON captured so far (before redaction, which keeps sizes)."""
        return self._bytes

    @property
    def stopped(self) -> bool:
        """Whether capturing is over (stopped, closed, or its size or time limit reached)."""
        return self._stopped or time.monotonic() > self._deadline

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

    def _on_dispatch(self, name: str, raw: bytes) -> None:
        """Called by a router with every dispatch (raw JSON bytes) while this records."""
        if self._stopped or name in _LEFT_OUT:
            return
        size = len(raw)
        if self._bytes + size > self._limit or (not self._count & 63 and time.monotonic() > self._deadline):
            self._stopped = True
            _LOGGER.info("recording to %s reached its limit: %s dispatches", self.path, self._count)
            return
        start = self._pos
        end = start + size
        if end > len(self._chunk):
            self._chunks.append(bytes(self._chunk[:start]))
            self._chunk = bytearray(max(_CHUNK, size))
            start, end = 0, size
        self._chunk[start:end] = raw
        self._pos = end
        self._sizes.append(size)
        self._bytes += size
        self._count += 1

    def stop(self) -> None:
        """Stop capturing (nothing is written yet: see :meth:`close`)."""
        self._stopped = True
        with _LOCK:
            if self in _ACTIVE:
                _ACTIVE.remove(self)
        shards, self._shards = self._shards, []
        for shard in shards:
            router = getattr(shard, "_router", None)
            if router is not None and router.recorder is self._callback:
                router.recorder = None

    def close(self) -> int:
        """Stop capturing and write the file (redacted unless ``redact=False``); idempotent.

        Returns
        -------
        int
            The number of dispatches written.
        """
        self.stop()
        if self._closed:
            return self.lines
        self._closed = True
        buffer = b"".join((*self._chunks, self._chunk[: self._pos]))
        sizes = self._sizes
        self._chunks, self._chunk, self._pos, self._sizes = [], bytearray(), 0, []
        redactor = redact_.Redactor() if self._redact else None
        temporary = self.path.with_name(self.path.name + ".part")
        with temporary.open("wb") as file:
            start = 0
            for size in sizes:
                raw = bytes(buffer[start : start + size])
                start += size
                line = redactor.line(raw) if redactor is not None else raw.replace(b"\n", b" ")
                file.write(line + b"\n")
        temporary.replace(self.path)
        self.lines = len(sizes)
        _LOGGER.info(
            "recorded %s dispatches to %s (%s)", self.lines, self.path, "redacted" if redactor else "NOT redacted"
        )
        return self.lines

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


def recorder_for(shard: typing.Any) -> typing.Callable[[str, bytes], None] | None:
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
