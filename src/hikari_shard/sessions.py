"""Session stores for warm restarts: where a shard's resumable session waits for the next process.

A store keeps one :class:`SessionRecord` per bot, shard count and shard id.  Two come with the
package, and any object with the methods of :class:`SessionStore` can be used instead:

- :class:`SQLiteSessionStore`: one SQLite file (stdlib ``sqlite3``, WAL), for the processes of one
  host; created with mode 0600.
- :class:`RedisSessionStore`: a Redis server, for bots on several machines (``hikari-shard[redis]``).

The token is never stored, not even as part of a key: records are keyed by the bot's user id
(:func:`bot_key`).  Every call is bounded in time and raises on failure; the shard turns a failure
into one WARNING and an IDENTIFY (:mod:`hikari_shard._context`).
"""

from __future__ import annotations

__all__ = ("RedisSessionStore", "SQLiteSessionStore", "SessionRecord", "SessionStore", "bot_key", "open_store")

import asyncio
import base64
import binascii
import contextlib
import dataclasses
import hashlib
import os
import pathlib
import sqlite3
import threading
import typing

import orjson

if typing.TYPE_CHECKING:
    from collections.abc import Callable, Iterator

_T = typing.TypeVar("_T")

DEFAULT_TIMEOUT: typing.Final = 2.0
_FIELDS: typing.Final = {
    "user_id": int,
    "shard_id": int,
    "shard_count": int,
    "session_id": str,
    "seq": int,
    "resume_url": str,
    "intents": int,
    "saved_at": float,
}


@dataclasses.dataclass(frozen=True, slots=True)
class SessionRecord:
    """A resumable session, as saved by a resumable close.

    Attributes
    ----------
    user_id
        The bot's user id (the key; never the token).
    shard_id, shard_count
        The shard the session belongs to.
    session_id
        Discord's session id (from READY).
    seq
        The sequence number of the last dispatch handed to the event manager.
    resume_url
        Where Discord asked this session to resume (``resume_gateway_url``).
    intents
        The intents the session identified with.
    saved_at
        ``time.time()`` when it was saved.
    """

    user_id: int
    shard_id: int
    shard_count: int
    session_id: str
    seq: int
    resume_url: str
    intents: int
    saved_at: float

    def to_json(self) -> bytes:
        """The record as a JSON object."""
        return orjson.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, data: bytes | str) -> SessionRecord:
        """Parse :meth:`to_json`'s output.

        Raises
        ------
        ValueError
            If ``data`` is not such a record (not JSON, a missing field, a wrong type).
        """
        try:
            fields = orjson.loads(data)
        except orjson.JSONDecodeError as ex:
            msg = "a session record is not valid JSON"
            raise ValueError(msg) from ex
        if type(fields) is not dict or fields.keys() != _FIELDS.keys():
            msg = "a session record must be an object with exactly the fields of SessionRecord"
            raise ValueError(msg)
        for name, kind in _FIELDS.items():
            value = fields[name]
            if kind is float and type(value) is int:
                fields[name] = value = float(value)
            if type(value) is not kind:
                msg = f"a session record's {name!r} must be {kind.__name__}, not {type(value).__name__}"
                raise ValueError(msg)
        if fields["seq"] < 0 or not 0 <= fields["shard_id"] < fields["shard_count"]:
            msg = "a session record's seq or shard is out of range"
            raise ValueError(msg)
        return cls(**fields)


class SessionStore(typing.Protocol):
    """What a session store does; implement it to keep sessions anywhere else.

    Each method may raise (the shard logs one WARNING and identifies) but should not block for long.
    """

    async def load(self, user_id: int, shard_id: int, shard_count: int) -> SessionRecord | None:
        """The saved session of this shard, or `None`."""

    async def save(self, record: SessionRecord) -> None:
        """Save (or replace) the session of ``record``'s shard."""

    async def delete(self, user_id: int, shard_id: int, shard_count: int) -> None:
        """Forget this shard's saved session (no error if there is none)."""

    async def close(self) -> None:
        """Release the store's connections."""


def bot_key(token: str) -> int:
    """The key of a bot's records: the user id its token encodes, else a one-way hash of the token.

    A bot token's first segment is the base64 of the bot's user id; a token of another shape is
    hashed (SHA-256, 63 bits), so the token itself is never stored.
    """
    head = token.split(".", 1)[0]
    try:
        decoded = base64.b64decode(head + "=" * (-len(head) % 4), validate=True).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        decoded = ""
    if decoded.isdigit() and decoded.isascii() and 0 < len(decoded) < 20:
        return int(decoded)
    return int.from_bytes(hashlib.sha256(token.encode()).digest()[:8], "big") & (2**63 - 1)


# -- SQLite ------------------------------------------------------------------------------------------
class SQLiteFile:
    """One SQLite file shared by the session store and the identify queue, used off the event loop.

    Every call runs in a worker thread on a connection of that thread, bounded by ``timeout``
    (``busy_timeout`` for locks, and the event loop's wait).  The file and its WAL are created
    with mode 0600.
    """

    __slots__ = ("_local", "_ready", "_ready_lock", "path", "timeout")

    def __init__(self, path: str | os.PathLike[str], *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.path = pathlib.Path(path)
        self.timeout = timeout
        self._local = threading.local()
        self._ready = False
        self._ready_lock = threading.Lock()

    def _connection(self) -> sqlite3.Connection:
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            with self._ready_lock:
                if not self._ready:
                    # Create the file 0600 before SQLite does (it would use the umask), and keep the WAL 0600 too.
                    os.close(os.open(self.path, os.O_CREAT | os.O_RDWR, 0o600))
            old_umask = os.umask(0o077)
            try:
                connection = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None)
                connection.execute(f"PRAGMA busy_timeout = {int(self.timeout * 1000)}")
                with self._ready_lock:
                    if not self._ready:
                        connection.execute("PRAGMA journal_mode = WAL")
                        connection.executescript(_SCHEMA)
                        self._ready = True
            finally:
                os.umask(old_umask)
            self._local.connection = connection
        return connection

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT`` (``ROLLBACK`` on error), in the calling worker thread."""
        connection = self._connection()
        connection.execute("BEGIN IMMEDIATE")
        try:
            yield connection
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")

    async def run(self, call: Callable[[], _T]) -> _T:
        """Run ``call`` in a worker thread, waiting at most ``timeout`` (plus a little) for it."""
        async with asyncio.timeout(self.timeout + 1.0):
            return await asyncio.to_thread(call)


_SCHEMA: typing.Final = """
CREATE TABLE IF NOT EXISTS sessions (
    user_id INTEGER NOT NULL, shard_count INTEGER NOT NULL, shard_id INTEGER NOT NULL, record BLOB NOT NULL,
    PRIMARY KEY (user_id, shard_count, shard_id)
);
CREATE TABLE IF NOT EXISTS identify_slots (
    user_id INTEGER NOT NULL, max_concurrency INTEGER NOT NULL, bucket INTEGER NOT NULL, next_free REAL NOT NULL,
    PRIMARY KEY (user_id, max_concurrency, bucket)
);
"""


class SQLiteSessionStore:
    """Sessions in one SQLite file, for the processes of one host.

    Parameters
    ----------
    path
        The file (created with mode 0600 if missing).
    timeout
        The longest one call waits (a lock held by another process, a slow disk), in seconds.
    """

    __slots__ = ("_file",)

    def __init__(self, path: str | os.PathLike[str], *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self._file = SQLiteFile(path, timeout=timeout)

    def __repr__(self) -> str:
        return f"SQLiteSessionStore({str(self._file.path)!r})"

    async def load(self, user_id: int, shard_id: int, shard_count: int) -> SessionRecord | None:
        def load() -> bytes | None:
            with self._file.transaction() as db:
                row = db.execute(
                    "SELECT record FROM sessions WHERE user_id = ? AND shard_count = ? AND shard_id = ?",
                    (user_id, shard_count, shard_id),
                ).fetchone()
            return None if row is None else bytes(row[0])

        data = await self._file.run(load)
        return None if data is None else SessionRecord.from_json(data)

    async def save(self, record: SessionRecord) -> None:
        data = record.to_json()

        def save() -> None:
            with self._file.transaction() as db:
                db.execute(
                    "INSERT OR REPLACE INTO sessions (user_id, shard_count, shard_id, record) VALUES (?, ?, ?, ?)",
                    (record.user_id, record.shard_count, record.shard_id, data),
                )

        await self._file.run(save)

    async def delete(self, user_id: int, shard_id: int, shard_count: int) -> None:
        def delete() -> None:
            with self._file.transaction() as db:
                db.execute(
                    "DELETE FROM sessions WHERE user_id = ? AND shard_count = ? AND shard_id = ?",
                    (user_id, shard_count, shard_id),
                )

        await self._file.run(delete)

    async def close(self) -> None:
        """Nothing to release: each worker thread's connection closes with the thread."""


# -- Redis -------------------------------------------------------------------------------------------
def redis_client(url: str, timeout: float) -> typing.Any:
    """A redis-py asyncio client for ``url`` whose every socket operation times out after ``timeout``."""
    try:
        from redis import asyncio as redis_asyncio  # noqa: PLC0415 - an optional dependency
    except ImportError as ex:
        msg = "RedisSessionStore needs redis-py: pip install 'hikari-shard[redis]'"
        raise ImportError(msg) from ex
    return redis_asyncio.Redis.from_url(
        url, socket_timeout=timeout, socket_connect_timeout=timeout, retry_on_timeout=False
    )


class RedisSessionStore:
    """Sessions in Redis, for bots that run on several machines (``pip install 'hikari-shard[redis]'``).

    Parameters
    ----------
    url
        The server, e.g. ``redis://127.0.0.1:6379/0``.
    prefix
        Prepended to every key: ``<prefix>:session:<user id>:<shard count>:<shard id>``.
    timeout
        The longest one call waits, in seconds (socket timeouts and an overall bound).
    client
        A ``redis.asyncio.Redis`` client to use instead of one made from ``url``.
    """

    __slots__ = ("_client", "_owned", "prefix", "timeout")

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        prefix: str = "hikari-shard",
        timeout: float = 1.0,
        client: typing.Any = None,
    ) -> None:
        self._owned = client is None
        self._client = redis_client(url, timeout) if client is None else client
        self.prefix = prefix
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"RedisSessionStore(prefix={self.prefix!r})"

    def _key(self, user_id: int, shard_id: int, shard_count: int) -> str:
        return f"{self.prefix}:session:{user_id}:{shard_count}:{shard_id}"

    async def load(self, user_id: int, shard_id: int, shard_count: int) -> SessionRecord | None:
        async with asyncio.timeout(self.timeout):
            data = await self._client.get(self._key(user_id, shard_id, shard_count))
        return None if data is None else SessionRecord.from_json(data)

    async def save(self, record: SessionRecord) -> None:
        async with asyncio.timeout(self.timeout):
            await self._client.set(self._key(record.user_id, record.shard_id, record.shard_count), record.to_json())

    async def delete(self, user_id: int, shard_id: int, shard_count: int) -> None:
        async with asyncio.timeout(self.timeout):
            await self._client.delete(self._key(user_id, shard_id, shard_count))

    async def close(self) -> None:
        if self._owned:
            await self._client.aclose()


_REDIS_SCHEMES: typing.Final = ("redis://", "rediss://", "unix://")


def is_redis_url(spec: object) -> bool:
    """Whether a store spec names a Redis server."""
    return isinstance(spec, str) and spec.startswith(_REDIS_SCHEMES)


def sqlite_path(spec: str | os.PathLike[str]) -> pathlib.Path:
    """The file a ``sqlite:///path`` URL or a plain path names."""
    text = os.fspath(spec)
    return pathlib.Path(text.removeprefix("sqlite://") if text.startswith("sqlite:///") else text)


def open_store(spec: str | os.PathLike[str] | SessionStore) -> SessionStore:
    """The store a ``sessions=`` argument names.

    Parameters
    ----------
    spec
        A ``redis://``, ``rediss://`` or ``unix://`` URL (:class:`RedisSessionStore`), a
        ``sqlite:///path`` URL or any other path (:class:`SQLiteSessionStore`), or a store object
        (returned as it is).
    """
    if is_redis_url(spec):
        return RedisSessionStore(typing.cast("str", spec))
    if isinstance(spec, str | os.PathLike):
        return SQLiteSessionStore(sqlite_path(spec))
    if all(callable(getattr(spec, name, None)) for name in ("load", "save", "delete")):
        return spec
    msg = f"not a session store, a path or a Redis URL: {spec!r}"
    raise TypeError(msg)
