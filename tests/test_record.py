"""Recording a shard's traffic (redacted) and replaying it: hikari_shard.record and hikari_shard.redact."""

from __future__ import annotations

import collections
import logging
import pathlib
import re
import typing

import orjson
import pytest

from helpers import TOKEN, Recorder, make_shard, running, until
from hikari_shard import recorder, redact
from hikari_shard.bench import recording
from hikari_shard.testing import GatewayEmulator, build_corpus
from test_corpus import _Hikari

SNOWFLAKE: typing.Final = re.compile(r"[0-9]{15,21}")


@pytest.fixture(scope="module")
def corpus() -> typing.Any:
    return build_corpus(seed=7, dispatches=400, guilds=2, guild_members=60)


def _strings(value: typing.Any, key: str | None = None) -> typing.Iterator[tuple[str | None, str]]:
    """Every string of a decoded JSON value, with the key it is under (object keys too)."""
    if isinstance(value, str):
        yield key, value
    elif isinstance(value, dict):
        for item_key, item in value.items():
            yield None, item_key
            yield from _strings(item, item_key)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item, key)


def _private_strings(payloads: typing.Iterable[typing.Any]) -> tuple[set[str], set[str]]:
    """The ids and the free text of ``payloads`` (what redaction must remove)."""
    ids: set[str] = set()
    text: set[str] = set()
    for payload in payloads:
        for key, value in _strings(payload):
            if key in redact.KEPT_KEYS:  # enumerations and permission bit sets: kept by design
                continue
            if SNOWFLAKE.fullmatch(value):
                ids.add(value)
            elif key is not None and value and not redact._TIMESTAMP.fullmatch(value):
                text.add(value)
    return ids, text


def _assert_redacted(file: pathlib.Path, originals: list[typing.Any]) -> None:
    raw = file.read_bytes()
    ids, text = _private_strings(originals)
    assert len(ids) > 100
    assert len(text) > 100
    for value in ids:  # grep the whole file for every original id
        assert value.encode() not in raw, "an original id is in the recording"
    recorded = {
        value
        for line in raw.splitlines()
        for key, value in _strings(orjson.loads(line))
        if key is not None and key not in redact.KEPT_KEYS
    }
    # Placeholders are random: one of 1 or 2 characters may equal some original by chance.
    assert not ({value for value in text if len(value) > 2} & recorded), "an original string is in the recording"
    for value in text:  # and grep the file for every original string long enough not to occur by chance
        if len(value) >= 12:
            assert value.encode() not in raw, "an original string is in the recording"


# --- redaction ------------------------------------------------------------------------------------------------------


def test_redaction_keeps_structure_sizes_and_consistency(corpus: typing.Any) -> None:
    redactor = redact.Redactor()
    originals = [orjson.dumps({"t": name, "s": seq, "op": 0, "d": d}) for seq, (name, d) in enumerate(corpus.events())]
    redacted = [redactor.line(raw) for raw in originals]
    assert sum(map(len, redacted)) == pytest.approx(sum(map(len, originals)), rel=0.01)
    for before, after in zip(originals, redacted, strict=True):
        assert len(after) == pytest.approx(len(before), rel=0.05)
        old, new = orjson.loads(before), orjson.loads(after)
        assert list(old) == list(new)
        assert (old["t"], old["s"], old["op"]) == (new["t"], new["s"], new["op"])
        assert _shape(old) == _shape(new)
    # The same id maps to the same fake id with the same number of digits, everywhere.
    user = corpus.dispatches[0][1]
    some_id = next(value for _, value in _strings(user) if SNOWFLAKE.fullmatch(value))
    fake = redactor.snowflake(some_id)
    assert fake != some_id
    assert len(fake) == len(some_id)
    assert redactor.snowflake(some_id) == fake
    assert redactor.text("hello wörld") == redactor.text("hello wörld")
    assert len(redactor.text("hello wörld").encode()) == len(b"hello w\xc3\xb6rld")


def _shape(value: typing.Any, key: str | None = None) -> typing.Any:
    """The value with every string, number and dict key reduced to its kind: the structure redaction must keep.

    Numbers are reduced to their type: user-supplied ones and numeric timestamps are replaced.  A
    nonce is free text (a client's own id, or anything it sent): it may become any string.
    """
    if isinstance(value, dict):
        return [("id" if SNOWFLAKE.fullmatch(k) else k, _shape(item, k)) for k, item in value.items()]
    if isinstance(value, list):
        return [_shape(item, key) for item in value]
    if isinstance(value, str):
        return "id" if SNOWFLAKE.fullmatch(value) and key != "nonce" else "str"
    if type(value) in {int, float}:
        return type(value).__name__
    return value


def test_hikari_deserialises_redacted_traffic(corpus: typing.Any) -> None:
    redactor = redact.Redactor()
    hikari = _Hikari()
    for name, data in corpus.dispatches:
        hikari.dispatch(name, redactor.payload({"t": name, "d": data})["d"])
    for guild in corpus.guild_creates:
        event = hikari.guild_create(redactor.payload({"t": "GUILD_CREATE", "d": guild})["d"])
        assert len(event.members) == len(guild["members"])


def test_redact_file(tmp_path: pathlib.Path, corpus: typing.Any) -> None:
    source = tmp_path / "private.jsonl"
    recording.write_stream(source, corpus.events())
    target = tmp_path / "shared.jsonl"
    assert redact.redact_file(source, target) == len(corpus.guild_creates) + len(corpus.dispatches) + 1
    _assert_redacted(target, [corpus.ready, *corpus.guild_creates, *(d for _, d in corpus.dispatches)])
    assert [name for name, _ in recording.read_recording(target)] == [
        name for name, _ in recording.read_recording(source)
    ]


# --- recording from a shard -------------------------------------------------------------------------------------------


async def _record_from_emulator(tmp_path: pathlib.Path, corpus: typing.Any, *, redacted: bool) -> pathlib.Path:
    path = tmp_path / "traffic.jsonl"
    manager = Recorder()
    events = list(corpus.events())[1:]  # without READY: the emulator sends its own
    half = len(events) // 2
    async with GatewayEmulator(token=TOKEN) as gateway:
        shard = make_shard(gateway, manager=manager)
        with recorder.record(shard, path, redact=redacted) as recording_:
            async with running(shard):
                await gateway.dispatch_many(events[:half])
                await until(lambda: len(manager.raw) == 1 + half)
                await gateway.connections[-1].drop()  # the recording goes on across the resume
                await until(lambda: gateway.connections[-1].session is not None and len(gateway.connections) == 2)
                await gateway.dispatch_many(events[half:])
                await until(lambda: len(manager.raw) == 2 + len(events))
                assert recording_.dispatches == len(events) + 2  # and READY and RESUMED, left out of the file
            assert not recording_.stopped
        assert recording_.stopped
        assert recording_.lines == len(events)
    return path


async def test_record_and_replay_redacted(tmp_path: pathlib.Path, corpus: typing.Any) -> None:
    path = await _record_from_emulator(tmp_path, corpus, redacted=True)
    events = list(corpus.events())[1:]
    replayed = recording.read_recording(path)  # what --replay reads (and it refuses tokens)
    assert [name for name, _ in replayed] == [name for name, _ in events]
    original_size = sum(len(orjson.dumps(d)) for _, d in events)
    replayed_size = sum(len(orjson.dumps(d)) for _, d in replayed)
    assert replayed_size == pytest.approx(original_size, rel=0.01)
    _assert_redacted(path, [d for _, d in events])
    assert TOKEN.encode() not in path.read_bytes()

    # Replay the recording through the emulator: a shard receives the same event names.
    manager = Recorder()
    async with GatewayEmulator(token=TOKEN) as gateway:
        shard = make_shard(gateway, manager=manager)
        async with running(shard):
            await gateway.dispatch_many(replayed)
            await until(lambda: len(manager.raw) == 1 + len(replayed))
        assert manager.names()[1:] == [name for name, _ in events]
        assert shard.stats.dispatches == 1 + len(events)


async def test_record_without_redaction_warns_and_keeps_the_payloads(
    tmp_path: pathlib.Path, corpus: typing.Any, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="hikari_shard.recorder"):
        path = await _record_from_emulator(tmp_path, corpus, redacted=False)
    assert "WITHOUT redaction" in caplog.text
    events = list(corpus.events())[1:]
    assert recording.read_recording(path) == [(name, orjson.loads(orjson.dumps(d))) for name, d in events]
    assert TOKEN.encode() not in path.read_bytes()


async def test_record_a_bot_before_it_starts_and_limits(tmp_path: pathlib.Path) -> None:
    manager = Recorder()
    bot = _FakeBot(manager)
    async with GatewayEmulator(token=TOKEN) as gateway:
        # The limit counts every payload captured, READY (left out of the file) included: measure the READY.
        probe = recorder.record(bot, tmp_path / "probe.jsonl")
        async with running(make_shard(gateway, manager=manager)):
            pass
        assert probe.close() == 0
        ready = probe.size
        assert ready > 0
        shard = make_shard(gateway, manager=manager)
        other = make_shard(gateway, manager=Recorder())  # another bot's shard: not recorded
        small = recorder.record(bot, tmp_path / "small.jsonl", limit_bytes=ready + 500)
        everything = recorder.record(bot, tmp_path / "all.jsonl")
        assert recorder.recorder_for(other) is None
        before = len(manager.raw)
        async with running(shard):
            for number in range(20):
                await gateway.dispatch("TYPING_START", {"channel_id": "1", "user_id": str(number), "timestamp": 3})
            await until(lambda: len(manager.raw) == before + 21)
            # Only the first recording that matches a shard records it; its size limit stops it, at the
            # payload that would have passed it.
            assert shard._router.recorder is None
        assert small.stopped
        assert 0 < small.close() < 20
        assert ready < small.size <= ready + 500
        assert 0 < (tmp_path / "small.jsonl").stat().st_size <= 500
        assert everything.close() == 0
        assert everything.close() == 0  # idempotent
    assert recorder.recorder_for(shard) is None


class _FakeBot:
    """What record() needs of a hikari.GatewayBot: its shards and its event manager."""

    def __init__(self, manager: object) -> None:
        self.event_manager = manager
        self.shards: dict[int, object] = {}


async def test_record_a_running_shard_and_stop(tmp_path: pathlib.Path) -> None:
    manager = Recorder()
    async with GatewayEmulator(token=TOKEN) as gateway:
        shard = make_shard(gateway, manager=manager)
        async with running(shard):
            await gateway.dispatch("TYPING_START", {"channel_id": "1", "user_id": "2", "timestamp": 3})
            await until(lambda: len(manager.raw) == 2)
            async with recorder.record(shard, tmp_path / "t.jsonl", duration=60) as recording_:
                assert shard._router.recorder is not None
                await gateway.dispatch("TYPING_START", {"channel_id": "1", "user_id": "3", "timestamp": 3})
                await until(lambda: len(manager.raw) == 3)
            assert shard._router.recorder is None
            assert recording_.lines == 1
            expired = recorder.record(shard, tmp_path / "expired.jsonl", duration=0)
            assert expired.stopped
            await until(lambda: shard._router.recorder is None, what="the watcher to stop the recording")
            await gateway.dispatch("TYPING_START", {"channel_id": "1", "user_id": "4", "timestamp": 3})
            await until(lambda: len(manager.raw) == 4)
            assert expired.stopped
            assert expired.close() == 0


def test_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path) -> None:
    monkeypatch.setattr(recorder, "_FROM_ENVIRONMENT", [])
    monkeypatch.delenv(recorder.ENV_PATH, raising=False)
    assert recorder.from_environment() is None
    monkeypatch.setenv(recorder.ENV_PATH, str(tmp_path / "env.jsonl"))
    monkeypatch.setenv(recorder.ENV_LIMIT, "1234")
    monkeypatch.setenv(recorder.ENV_REDACT, "0")
    started = recorder.from_environment()
    try:
        assert started is not None
        assert recorder.from_environment() is started
        assert started._limit == 1234
        assert not started._redact
        assert recorder.recorder_for(object()) is not None  # every shard of the process
    finally:
        assert started is not None
        started.close()
    assert (tmp_path / "env.jsonl").read_bytes() == b""
    assert collections.Counter(recorder._ACTIVE)[started] == 0


def test_redact_command(tmp_path: pathlib.Path, corpus: typing.Any, capsys: pytest.CaptureFixture[str]) -> None:
    from hikari_shard import __main__

    source = tmp_path / "private.jsonl"
    recording.write_stream(source, corpus.dispatches)
    target = tmp_path / "shared.jsonl"
    assert __main__.main(["redact", str(source), str(target)]) == 0
    assert f"wrote {len(corpus.dispatches)} redacted payloads" in capsys.readouterr().out
    _assert_redacted(target, [d for _, d in corpus.dispatches])
    assert __main__.main(["redact", str(tmp_path / "missing.jsonl"), str(target)]) == 2
