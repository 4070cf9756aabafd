"""Record a running bot's gateway traffic, redacted, for ``hikari-shard bench --replay``.

::

    import hikari_shard

    with hikari_shard.record(bot, "traffic.jsonl", duration=600):   # or: recording = record(...); recording.close()
        ...                                                          # the bot runs meanwhile

writes one dispatch per line in the JSON-lines format ``--replay`` reads.  Only dispatches the
shard received are recorded (never what it sends, so never IDENTIFY, RESUME or the token; READY
and RESUMED are left out too, ``--replay`` does not use them), redacted by default
(:mod:`hikari_shard.redact`, see ``docs/redaction.md``).

How it stays off the hot path: while nothing records, each of our shards' routers has
``recorder = None`` and the only cost is that ``is not None`` check per dispatch.  While
recording, the router calls :meth:`Recording._append` with the raw JSON bytes it already holds:
it adds up their size, stops the recording at the payload that would pass ``limit_bytes``, and
queues them.  A writer thread decodes, redacts and appends them to ``FILE.part`` four times a
second (and checks ``duration``); closing the recording writes the rest and renames ``FILE.part``
to ``FILE``.

Failures stay inside the recorder: the file is opened (and created) by :func:`record`, so a path
that cannot be written fails there; afterwards nothing the recorder does raises into the shard
or into :meth:`Recording.close`.  A payload that does not decode is skipped and counted
(:attr:`Recording.skipped`); a write that fails (a full disk) stops the recording and keeps a
valid file of every line written before it.

Setting ``HIKARI_SHARD_RECORD=traffic.jsonl`` before :func:`hikari_shard.install` records every
shard of the process until it exits (``HIKARI_SHARD_RECORD_LIMIT`` bytes, a plain integer, and
``HIKARI_SHARD_RECORD_DURATION`` seconds bound it; ``HIKARI_SHARD_RECORD_REDACT=0`` turns
redaction off).  A value that cannot be used logs a WARNING and leaves recording off.
"""

from __future__ import annotations

__all__ = ("DEFAULT_LIMIT_BYTES", "Recording", "attach", "from_environment", "record", "recorder_for")

import asyncio
import atexit
import collections
import contextlib
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
"""A recording captures at most this many bytes of JSON by default."""

ENV_PATH: typing.Final = "HIKARI_SHARD_RECORD"
ENV_LIMIT: typing.Final = "HIKARI_SHARD_RECORD_LIMIT"
ENV_DURATION: typing.Final = "HIKARI_SHARD_RECORD_DURATION"
ENV_REDACT: typing.Final = "HIKARI_SHARD_RECORD_REDACT"

_LOGGER: typing.Final = logging.getLogger("hikari_shard.recorder")
_LEFT_OUT: typing.Final = frozenset(("READY", "RESUMED"))
_WRITE_INTERVAL: typing.Final = 0.25
_ACTIVE: list[Recording] = []
_LOCK: typing.Final = threading.RLock()
_FROM_ENVIRONMENT: list[Recording] = []


def _write(file: typing.BinaryIO, data: bytes) -> None:
    """Write all of ``data`` (a module function so that tests can make it fail)."""
    view = memoryview(data)
    while view:
        written = file.write(view)
        if written is None:  # pragma: no cover - a non-blocking file; ours blocks
            continue
        view = view[written:]


class Recording:
    """A recording in progress; :func:`record` starts one.

    Use it as a context manager (sync or async), or call :meth:`close` (or ``await``
    :meth:`aclose`) to stop it and finish the file.

    Raises
    ------
    OSError
        If the file cannot be created.
    ValueError
        If ``limit_bytes`` is not positive.
    """

    __slots__ = (
        "_bytes",
        "_callback",
        "_captured",
        "_closed",
        "_committed",
        "_deadline",
        "_done",
        "_file",
        "_finish_lock",
        "_finished",
        "_limit",
        "_manager",
        "_pending",
        "_redact",
        "_redactor",
        "_routers",
        "_stopped",
        "_target",
        "_temporary",
        "_wakeup",
        "_writer",
        "failed",
        "lines",
        "path",
        "skipped",
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
        """The file written (``FILE.part`` until the recording is closed)."""
        self._temporary = self.path.with_name(self.path.name + ".part")
        try:
            self._file: typing.BinaryIO | None = self._temporary.open("wb", buffering=0)
        except OSError as ex:
            raise OSError(ex.errno, f"cannot record to {str(self.path)!r}: {ex.strerror}") from None
        self.lines = 0
        """Lines written so far."""
        self.skipped = 0
        """Payloads captured but left out of the file because they do not decode (or redact)."""
        self.failed: OSError | None = None
        """The write error that ended the recording early, if any (the file keeps every line before it)."""
        self._target = target
        self._manager = getattr(target, "event_manager", None) if hasattr(target, "shards") else None
        self._limit = limit_bytes
        self._deadline = time.monotonic() + duration if duration is not None else math.inf
        self._redact = redact
        self._redactor = redact_.Redactor() if redact else None
        self._pending: collections.deque[bytes] = collections.deque()  # append/popleft are thread-safe
        self._callback = self._append
        self._captured = 0
        self._bytes = 0
        self._committed = 0
        self._stopped = False
        self._closed = False
        self._finished = False
        self._finish_lock = threading.Lock()
        self._routers: list[tuple[typing.Any, typing.Any]] = []  # (shard, router) that were given the callback
        self._wakeup = threading.Event()
        self._done = threading.Event()
        self._writer: threading.Thread | None = None
        if watch:
            self._writer = threading.Thread(
                target=self._write_loop, name=f"hikari-shard record {self.path.name}", daemon=True
            )
            self._writer.start()

    def __repr__(self) -> str:
        return (
            f"Recording(path={str(self.path)!r}, dispatches={self.dispatches}, redact={self._redact}, "
            f"stopped={self.stopped})"
        )

    @property
    def dispatches(self) -> int:
        """Payloads captured so far (READY and RESUMED, left out of the file, included)."""
        return self._captured

    @property
    def size(self) -> int:
        """Bytes of JSON captured so far (at most ``limit_bytes``)."""
        return self._bytes

    @property
    def stopped(self) -> bool:
        """Whether capturing is over (stopped, closed, failed, or its size or time limit reached)."""
        return self._stopped or time.monotonic() > self._deadline

    # -- capturing (the router's thread) ---------------------------------------------------------------------------

    def _append(self, raw: bytes) -> None:
        """The router's callback: capture one payload, within the limits.  Never raises."""
        if self._stopped:
            return
        try:
            size = self._bytes + len(raw)
            if size > self._limit:  # (the writer thread checks the duration, four times a second)
                _LOGGER.info("recording to %s reached its limit after %s dispatches", self.path, self._captured)
                self.stop()
                return
            self._bytes = size
            self._captured += 1
            self._pending.append(raw)
        except Exception:  # nothing may reach the shard
            _LOGGER.exception("recording to %s failed; it is stopped", self.path)
            self._stopped = True

    def _matches(self, shard: typing.Any) -> bool:
        if self._target is None:
            return True
        if self._manager is not None:
            return bool(getattr(shard, "_event_manager", None) is self._manager)
        return bool(shard is self._target)

    def _give(self, shard: typing.Any, router: typing.Any) -> None:
        """Hand the callback to ``router`` (under ``_LOCK``); ``stop()`` takes it back."""
        router.recorder = self._callback
        # One router per shard is enough to remember: an older router of the shard is closed already.
        kept = []
        for known_shard, known_router in self._routers:
            if known_shard is shard and known_router is not router:
                if known_router.recorder == self._callback:
                    known_router.recorder = None
            else:
                kept.append((known_shard, known_router))
        kept.append((shard, router))
        self._routers = kept

    def stop(self) -> None:
        """Stop capturing and detach every router that records to it (the file is finished in the background)."""
        with _LOCK:
            self._stopped = True
            if self in _ACTIVE:
                _ACTIVE.remove(self)
            routers, self._routers = self._routers, []
            for _, router in routers:
                with contextlib.suppress(Exception):
                    if router.recorder == self._callback:
                        router.recorder = None
        self._wakeup.set()

    # -- writing (the writer thread) ---------------------------------------------------------------------------------

    def _write_loop(self) -> None:
        try:
            while True:
                woken = self._wakeup.wait(_WRITE_INTERVAL)
                self._drain()
                if woken or self._stopped:
                    break
                if time.monotonic() > self._deadline:
                    _LOGGER.info("recording to %s reached its duration after %s dispatches", self.path, self._captured)
                    self.stop()
            self._drain()
        except Exception:
            _LOGGER.exception("recording to %s failed", self.path)
        finally:
            self._finish()

    def _encode(self, raw: bytes) -> bytes | None:
        try:
            payload = orjson.loads(raw)
            if type(payload) is dict and payload.get("t") in _LEFT_OUT:
                return None
            if self._redactor is None:
                return raw.replace(b"\n", b" ") + b"\n"
            if type(payload) is not dict:
                return orjson.dumps(self._redactor.value(payload)) + b"\n"
            return orjson.dumps(self._redactor.payload(payload)) + b"\n"
        except Exception:  # e.g. a lone surrogate the scanner let through: skip the payload, keep the rest
            self.skipped += 1
            return None

    def _drain(self) -> None:
        pending = self._pending
        while pending and self._file is not None and self.failed is None:
            batch: list[bytes] = []
            count = 0
            size = 0
            while pending and size < (1 << 20):
                line = self._encode(pending.popleft())
                if line is not None:
                    batch.append(line)
                    size += len(line)
                    count += 1
            if not batch:
                continue
            try:
                _write(self._file, b"".join(batch))
            except OSError as ex:
                self.failed = ex
                _LOGGER.error(
                    "recording to %s stopped: cannot write (%s); the file keeps the %s dispatches before",
                    self.path,
                    ex,
                    self.lines,
                )
                self.stop()
                pending.clear()
                return
            self._committed += size
            self.lines += count

    def _finish(self) -> None:
        """Close ``FILE.part`` and rename it to ``FILE`` (cut back to the last complete line after a failure)."""
        file, self._file = self._file, None
        try:
            if file is None:
                return
            try:
                if self.failed is not None:
                    file.truncate(self._committed)
                file.close()
                self._temporary.replace(self.path)
            except OSError as ex:
                _LOGGER.error("recording to %s could not be finished: %s", self.path, ex)
                with contextlib.suppress(OSError):
                    file.close()
                with contextlib.suppress(OSError):
                    self._temporary.unlink()
                return
            if self.skipped:
                _LOGGER.warning(
                    "recording to %s: skipped %s dispatches that do not decode as JSON", self.path, self.skipped
                )
            how = "redacted" if self._redact else "NOT redacted"
            _LOGGER.info("recorded %s dispatches to %s (%s)", self.lines, self.path, how)
        finally:
            self._finished = True
            self._done.set()

    # -- closing ------------------------------------------------------------------------------------------------------

    def close(self) -> int:
        """Stop capturing and finish the file (redacted unless ``redact=False``); idempotent, never raises.

        Returns
        -------
        int
            The number of dispatches written (within ``limit_bytes``, without READY and RESUMED).
        """
        self.stop()
        self._closed = True
        writer = self._writer
        if writer is None:
            with self._finish_lock:
                if not self._finished:
                    try:
                        self._drain()
                    except Exception:
                        _LOGGER.exception("recording to %s failed", self.path)
                    self._finish()
        elif writer is not threading.current_thread():
            writer.join()
        return self.lines

    async def aclose(self) -> int:
        """Like :meth:`close`, waiting for the writer in a thread (the event loop keeps running).

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
        The JSON-lines file to write (created at once; ``path.part`` until the recording ends).
    limit_bytes
        Stop capturing once this many bytes of JSON have been captured (checked at every payload).
    duration
        Stop capturing after this many seconds.
    redact
        Replace free text and ids (:mod:`hikari_shard.redact`).  ``False`` keeps your users'
        messages, names and ids in the file: for private use only, never share it.

    Returns
    -------
    Recording
        Close it (or leave its ``with`` block) to finish the file.

    Raises
    ------
    OSError
        If the file cannot be created (the message names the path).
    ValueError
        If ``limit_bytes`` is not positive.
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
                router = getattr(shard, "_router", None)
                if hasattr(shard, "_stats") and router is not None and router.recorder is None:  # ours
                    recording._give(shard, router)
    return recording


def _active_for(shard: typing.Any) -> Recording | None:
    for recording in _ACTIVE:
        if not recording.stopped and recording._matches(shard):
            return recording
    return None


def attach(shard: typing.Any, router: typing.Any) -> None:
    """Give a new ``router`` of ``shard`` the callback of the recording that records it, if any (the shard calls this).

    Under the recorder's lock, so that a recording stopping meanwhile (in any thread) either never
    gives the callback or takes it back.
    """
    if not _ACTIVE:
        router.recorder = None
        return
    with _LOCK:
        recording = _active_for(shard)
        if recording is None:
            router.recorder = None
        else:
            recording._give(shard, router)


def recorder_for(shard: typing.Any) -> typing.Callable[[bytes], None] | None:
    """Return the callback of the recording that would record ``shard``, or ``None``.

    Shards use :func:`attach`, which also lets the recording detach the router when it stops.
    """
    if not _ACTIVE:
        return None
    with _LOCK:
        recording = _active_for(shard)
        return recording._callback if recording is not None else None


def _parse_environment(path: str) -> Recording:
    limit_text = os.environ.get(ENV_LIMIT, "").strip()
    duration_text = os.environ.get(ENV_DURATION, "").strip()
    redact_text = os.environ.get(ENV_REDACT, "1").strip().lower()
    try:
        limit = int(limit_text) if limit_text else DEFAULT_LIMIT_BYTES
    except ValueError:
        msg = f"{ENV_LIMIT}={limit_text!r} is not a whole number of bytes"
        raise ValueError(msg) from None
    try:
        duration = float(duration_text) if duration_text else None
    except ValueError:
        msg = f"{ENV_DURATION}={duration_text!r} is not a number of seconds"
        raise ValueError(msg) from None
    if limit <= 0:
        msg = f"{ENV_LIMIT}={limit_text!r} must be positive"
        raise ValueError(msg)
    if duration is not None and not (duration > 0 and math.isfinite(duration)):
        msg = f"{ENV_DURATION}={duration_text!r} must be a positive number of seconds"
        raise ValueError(msg)
    if redact_text not in {"0", "false", "no", "off", "1", "true", "yes", "on"}:
        msg = f"{ENV_REDACT}={redact_text!r} must be 0 or 1"
        raise ValueError(msg)
    return record(
        None, path, limit_bytes=limit, duration=duration, redact=redact_text not in {"0", "false", "no", "off"}
    )


def from_environment() -> Recording | None:
    """Start the process-wide recording asked for by ``HIKARI_SHARD_RECORD`` (once); ``install()`` calls it.

    A value that cannot be used (a limit like ``64MB``, a path that cannot be written) logs a
    WARNING and leaves recording off: it never stops the bot from starting.

    Returns
    -------
    Recording | None
        The recording (closed at exit), or ``None`` if the variable is not set or not usable.
    """
    path = os.environ.get(ENV_PATH)
    if not path:
        return None
    if _FROM_ENVIRONMENT:
        return _FROM_ENVIRONMENT[0]
    try:
        recording = _parse_environment(path)
    except (OSError, ValueError) as ex:
        _LOGGER.warning("%s is set but recording stays off: %s", ENV_PATH, ex)
        return None
    _FROM_ENVIRONMENT.append(recording)
    atexit.register(recording.close)
    return recording
