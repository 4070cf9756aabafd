"""The session stores (SQLite and Redis): round trips, file safety, failures that raise in time, no token.

A user relies on these for warm restarts: a store that hangs would stall a deploy, one that loses or
mixes up records would make a shard IDENTIFY (or RESUME someone else's session), and a token found in
the file or in Redis is a leaked credential.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import pathlib
import socket
import sqlite3
import stat
import sys
import threading
import time
import typing

import pytest

from hikari_shard import sessions
from hikari_shard.sessions import RedisSessionStore, SessionRecord, SQLiteSessionStore, bot_key, open_store
from hikari_shard.testing import make_bot_token
from processes import run_workers

if typing.TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

USER_ID: typing.Final = 175928847299117063
TIMEOUT: typing.Final = 0.5
SLACK: typing.Final = 3.0  # a no-hang bound for a loaded machine, not a speed check


def record(**changes: typing.Any) -> SessionRecord:
    fields: dict[str, typing.Any] = {
        "user_id": USER_ID,
        "shard_id": 0,
        "shard_count": 2,
        "session_id": "a1b2c3d4e5f6",
        "seq": 41,
        "resume_url": "wss://127.0.0.1:8443/resume",
        "intents": 513,
        "saved_at": 1_765_000_000.25,
    }
    fields.update(changes)
    return SessionRecord(**fields)


@pytest.fixture(params=["sqlite", "redis"])
async def store(
    request: pytest.FixtureRequest, tmp_path: pathlib.Path
) -> AsyncIterator[SQLiteSessionStore | RedisSessionStore]:
    made: SQLiteSessionStore | RedisSessionStore
    if request.param == "redis":
        url = request.getfixturevalue("redis_url")
        made = RedisSessionStore(url, prefix=request.getfixturevalue("redis_prefix"))
    else:
        made = SQLiteSessionStore(tmp_path / "sessions.sqlite3")
    try:
        yield made
    finally:
        await made.close()


# -- records -----------------------------------------------------------------------------------------
def test_a_record_survives_json() -> None:
    original = record()
    assert SessionRecord.from_json(original.to_json()) == original
    assert SessionRecord.from_json(original.to_json().decode()) == original


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"not json",
        b"[]",
        b"null",
        json.dumps({**dataclasses.asdict(record()), "seq": "41"}).encode(),
        json.dumps({**dataclasses.asdict(record()), "user_id": 1.5}).encode(),
        json.dumps({**dataclasses.asdict(record()), "session_id": 7}).encode(),
        json.dumps({**dataclasses.asdict(record()), "seq": True}).encode(),
        json.dumps({k: v for k, v in dataclasses.asdict(record()).items() if k != "resume_url"}).encode(),
        json.dumps({**dataclasses.asdict(record()), "token": "x"}).encode(),
    ],
    ids=["empty", "garbage", "list", "null", "str-seq", "float-id", "int-session", "bool-seq", "missing", "extra"],
)
def test_a_malformed_record_raises_value_error(data: bytes) -> None:
    with pytest.raises(ValueError, match="session record"):
        SessionRecord.from_json(data)


def test_bot_key_is_the_user_id_a_token_encodes() -> None:
    assert bot_key(make_bot_token(USER_ID)) == USER_ID
    assert bot_key(make_bot_token(1234)) == 1234


def test_bot_key_of_another_token_is_a_stable_63_bit_hash() -> None:
    for token in ("not-a-bot-token", "!!!.abc.def", "YWJj.def.ghi"):  # the last encodes "abc": not digits
        key = bot_key(token)
        assert key == bot_key(token)
        assert 0 <= key < 2**63
        assert str(key) not in token
    assert bot_key("not-a-bot-token") != bot_key("not-a-bot-token2")


# -- both stores -------------------------------------------------------------------------------------
async def test_a_saved_record_loads_back(store: sessions.SessionStore) -> None:
    saved = record()
    await store.save(saved)
    assert await store.load(USER_ID, 0, 2) == saved
    replaced = record(seq=99, session_id="ffff")
    await store.save(replaced)
    assert await store.load(USER_ID, 0, 2) == replaced


async def test_a_missing_record_loads_as_none_and_delete_forgets(store: sessions.SessionStore) -> None:
    assert await store.load(USER_ID, 0, 2) is None
    await store.delete(USER_ID, 0, 2)  # deleting nothing is fine
    await store.save(record())
    await store.delete(USER_ID, 0, 2)
    assert await store.load(USER_ID, 0, 2) is None


async def test_records_of_other_shards_counts_and_bots_do_not_collide(store: sessions.SessionStore) -> None:
    records = [
        record(
            shard_id=shard_id,
            shard_count=shard_count,
            user_id=user_id,
            session_id=f"{user_id}-{shard_count}-{shard_id}",
        )
        for user_id in (USER_ID, USER_ID + 1)
        for shard_count in (2, 3, 12)
        for shard_id in range(2)
    ]
    for each in records:
        await store.save(each)
    for each in records:
        assert await store.load(each.user_id, each.shard_id, each.shard_count) == each
    await store.delete(USER_ID, 1, 3)
    for each in records:
        expected = None if (each.user_id, each.shard_id, each.shard_count) == (USER_ID, 1, 3) else each
        assert await store.load(each.user_id, each.shard_id, each.shard_count) == expected


def test_open_store_picks_the_backend(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "s.sqlite3"
    for spec in (str(path), path, f"sqlite:///{path}"):
        opened = open_store(spec)
        assert isinstance(opened, SQLiteSessionStore)
        assert str(path) in repr(opened)
    for url in ("redis://127.0.0.1:1/0", "rediss://127.0.0.1:1/0", "unix:///tmp/nothing.sock"):
        assert isinstance(open_store(url), RedisSessionStore)  # lazily connected: nothing is sent here
    custom = SQLiteSessionStore(path)
    assert open_store(custom) is custom
    with pytest.raises(TypeError):
        open_store(typing.cast("typing.Any", 42))


# -- SQLite ------------------------------------------------------------------------------------------
def _mode(path: pathlib.Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_the_sqlite_file_is_0600_and_in_wal_mode(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "sessions.sqlite3"
    store = SQLiteSessionStore(path)
    try:
        await store.save(record())
        assert _mode(path) == 0o600
        sidecars = [p for p in (path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")) if p.exists()]
        assert sidecars, "WAL mode leaves a -wal file while a connection is open"
        for sidecar in sidecars:
            assert _mode(sidecar) & 0o077 == 0, f"{sidecar.name} is readable by others: {oct(_mode(sidecar))}"
        with contextlib.closing(sqlite3.connect(path)) as other:
            assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        await store.close()


async def test_an_existing_file_keeps_its_mode_and_data_survives_a_new_store(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "sessions.sqlite3"
    first = SQLiteSessionStore(path)
    await first.save(record())
    await first.close()
    second = SQLiteSessionStore(path)
    try:
        assert await second.load(USER_ID, 0, 2) == record()
    finally:
        await second.close()
    assert _mode(path) == 0o600


@contextlib.contextmanager
def _raises_within(seconds: float) -> Iterator[None]:
    started = time.monotonic()
    with pytest.raises(Exception) as info:
        yield
    elapsed = time.monotonic() - started
    assert elapsed < seconds, f"raised {info.value!r} only after {elapsed:.1f}s"


async def test_a_corrupt_file_raises_promptly(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "sessions.sqlite3"
    first = SQLiteSessionStore(path)
    await first.save(record())
    await first.close()
    for sidecar in (path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        sidecar.unlink(missing_ok=True)
    path.write_bytes(b"this is not a database \x00\xff" * 512)
    store = SQLiteSessionStore(path, timeout=TIMEOUT)
    try:
        with _raises_within(TIMEOUT + SLACK):
            await store.load(USER_ID, 0, 2)
        with _raises_within(TIMEOUT + SLACK):
            await store.save(record())
    finally:
        await store.close()


async def test_a_locked_database_raises_within_the_timeout(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "sessions.sqlite3"
    store = SQLiteSessionStore(path, timeout=TIMEOUT)
    try:
        await store.save(record())
        with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as other:
            other.execute("BEGIN EXCLUSIVE")
            try:
                with _raises_within(TIMEOUT + SLACK):
                    await store.save(record(seq=50))
                with _raises_within(TIMEOUT + SLACK):
                    await store.load(USER_ID, 0, 2)
            finally:
                other.execute("ROLLBACK")
        # Once the lock is gone the store works again.
        assert await store.load(USER_ID, 0, 2) == record()
    finally:
        await store.close()


def _token_parts(token: str) -> list[bytes]:
    # The whole token and its secret segments (the first one is only the base64 of the user id).
    return [token.encode(), *(part.encode() for part in token.split(".")[1:])]


def _assert_no_token_in_files(folder: pathlib.Path, path: pathlib.Path, token: str) -> None:
    files = sorted(folder.iterdir())
    assert path in files
    assert path.with_name(path.name + "-wal") in files
    for file in files:
        data = file.read_bytes()
        for part in _token_parts(token):
            assert part not in data, f"a piece of the token is in {file.name}"


async def test_the_token_is_nowhere_in_the_sqlite_file(tmp_path: pathlib.Path) -> None:
    token = make_bot_token(USER_ID)
    path = tmp_path / "sessions.sqlite3"
    store = open_store(path)
    try:
        for shard_id in range(4):
            await store.save(record(user_id=bot_key(token), shard_id=shard_id, shard_count=4))
        _assert_no_token_in_files(tmp_path, path, token)
        assert await store.load(USER_ID, 3, 4) == record(user_id=USER_ID, shard_id=3, shard_count=4)
    finally:
        await store.close()


# -- Redis -------------------------------------------------------------------------------------------
async def test_the_token_is_in_no_redis_key_or_value(redis_url: str) -> None:
    import redis.asyncio

    token = make_bot_token(USER_ID)
    store = RedisSessionStore(redis_url)  # the default prefix, as a user would
    client = redis.asyncio.Redis.from_url(redis_url, socket_timeout=5.0)
    try:
        for shard_id in range(4):
            await store.save(record(user_id=bot_key(token), shard_id=shard_id, shard_count=4))
        keys = [key async for key in client.scan_iter(count=1000)]
        assert f"hikari-shard:session:{USER_ID}:4:3".encode() in keys
        for key in keys:
            value = await client.dump(key)
            for part in _token_parts(token):
                assert part not in key
                assert value is None or part not in value
    finally:
        for shard_id in range(4):
            await store.delete(USER_ID, shard_id, 4)
        await store.close()
        await client.aclose()


def _closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@contextlib.asynccontextmanager
async def silent_server() -> AsyncIterator[int]:
    """A loopback TCP server that accepts connections and never answers."""
    writers: list[asyncio.StreamWriter] = []

    async def accept(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        for writer in writers:
            writer.close()
        server.close()
        await server.wait_closed()


async def test_redis_down_raises_within_the_timeout() -> None:
    store = RedisSessionStore(f"redis://127.0.0.1:{_closed_port()}/0", timeout=TIMEOUT)
    try:
        with _raises_within(TIMEOUT + SLACK):
            await store.load(USER_ID, 0, 2)
        with _raises_within(TIMEOUT + SLACK):
            await store.save(record())
        with _raises_within(TIMEOUT + SLACK):
            await store.delete(USER_ID, 0, 2)
    finally:
        await store.close()


async def test_redis_that_never_answers_raises_within_the_timeout() -> None:
    async with silent_server() as port:
        store = RedisSessionStore(f"redis://127.0.0.1:{port}/0", timeout=TIMEOUT)
        try:
            with _raises_within(TIMEOUT + SLACK):
                await store.load(USER_ID, 0, 2)
            with _raises_within(TIMEOUT + SLACK):
                await store.save(record())
        finally:
            await store.close()


def test_redis_needs_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "redis", None)
    monkeypatch.setitem(sys.modules, "redis.asyncio", None)
    with pytest.raises(ImportError, match=r"hikari-shard\[redis\]"):
        RedisSessionStore("redis://127.0.0.1:1/0")


# -- two processes -----------------------------------------------------------------------------------
ROUNDS: typing.Final = 300
WORKER: typing.Final = """
import asyncio, sys
from hikari_shard import sessions

spec, prefix, name, rounds = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])

def make(name, k):
    return sessions.SessionRecord(
        user_id=7, shard_id=0, shard_count=1, session_id=f"{name}-{k}", seq=k,
        resume_url=f"wss://127.0.0.1/{name}/{k}", intents=513, saved_at=k + 0.5,
    )

async def main():
    if spec.startswith("redis://"):
        store = sessions.RedisSessionStore(spec, prefix=prefix, timeout=10.0)
    else:
        store = sessions.SQLiteSessionStore(spec, timeout=10.0)
    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    try:
        for k in range(rounds):
            await store.save(make(name, k))
            got = await store.load(7, 0, 1)
            print(got.to_json().decode())
    finally:
        await store.close()

asyncio.run(main())
"""


def _check_loads(outputs: list[str], names: list[str]) -> None:
    for output in outputs:
        lines = output.splitlines()
        assert len(lines) == ROUNDS
        for line in lines:
            got = SessionRecord.from_json(line)  # well formed
            name, _, k = got.session_id.rpartition("-")
            assert name in names
            assert got == SessionRecord(
                user_id=7,
                shard_id=0,
                shard_count=1,
                session_id=f"{name}-{k}",
                seq=int(k),
                resume_url=f"wss://127.0.0.1/{name}/{k}",
                intents=513,
                saved_at=int(k) + 0.5,
            ), "a load returned a record no process saved"


async def test_two_processes_share_a_sqlite_store(tmp_path: pathlib.Path) -> None:
    path = str(tmp_path / "sessions.sqlite3")
    # The file exists (as after a first run): a fresh file opened by both at once is the next test.
    first = SQLiteSessionStore(path)
    await first.save(record())
    await first.close()
    names = ["a", "b"]
    outputs = await run_workers(WORKER, [[path, "-", name, str(ROUNDS)] for name in names])
    _check_loads(outputs, names)
    assert _mode(pathlib.Path(path)) == 0o600


FRESH_ROUNDS: typing.Final = 200


def test_stores_opening_a_fresh_file_at_the_same_moment_all_work(tmp_path: pathlib.Path) -> None:
    # Threads stand in for processes (separate stores share nothing but the file) and meet far more
    # often; the race is lost in a few percent of rounds, so many rounds make a lost one certain.
    for index in range(FRESH_ROUNDS):
        path = tmp_path / f"fresh-{index}.sqlite3"
        errors = _first_calls_at_once([SQLiteSessionStore(path, timeout=5.0) for _ in range(3)])
        assert not errors, f"round {index}: {errors[0]!r}"


def _first_calls_at_once(stores: list[SQLiteSessionStore]) -> list[BaseException]:
    barrier = threading.Barrier(len(stores), timeout=10.0)
    errors: list[BaseException] = []

    def first_call(store: SQLiteSessionStore) -> None:
        barrier.wait()
        try:
            asyncio.run(store.load(USER_ID, 0, 2))
        except Exception as ex:
            errors.append(ex)

    threads = [threading.Thread(target=first_call, args=(store,)) for store in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10.0)
    return errors


async def test_two_processes_share_a_redis_store(redis_url: str, redis_prefix: str) -> None:
    names = ["a", "b"]
    outputs = await run_workers(WORKER, [[redis_url, redis_prefix, name, str(ROUNDS)] for name in names])
    _check_loads(outputs, names)
