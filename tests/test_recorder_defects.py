"""The recorder's failure modes (issue 24, items 4 and 5): nothing captured is lost, nothing reaches the shard."""

from __future__ import annotations

import collections
import errno
import gc
import logging
import pathlib
import time
import tracemalloc
import types
import typing

import orjson
import pytest

from helpers import TOKEN, Recorder, make_shard
from hikari_shard import _install, recorder
from hikari_shard.bench import recording as bench_recording
from hikari_shard.testing import GatewayEmulator

_WAIT: typing.Final = 5.0


class _Shard:
    """What the recorder needs of one of our shards: ``_stats`` (ours) and a ``_router`` with ``recorder``."""

    def __init__(self) -> None:
        self._stats = object()
        self._router = types.SimpleNamespace(recorder=None)

    def dispatch(self, raw: bytes) -> None:
        """Call the recorder the way the router does (read once, skipped when ``None``)."""
        callback = self._router.recorder
        if callback is not None:
            callback(raw)


def _payload(number: int, content: str = "hello") -> bytes:
    data = {"id": str(1_100_000_000_000_000_000 + number), "content": content, "channel_id": "1"}
    return orjson.dumps({"t": "MESSAGE_CREATE", "s": number, "op": 0, "d": data})


def _wait_for(predicate: typing.Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + _WAIT
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


# --- item 4: a bad path fails at once, a bad environment value does not stop the bot ------------------------------


def test_a_path_that_cannot_be_written_fails_in_record(tmp_path: pathlib.Path) -> None:
    shard = _Shard()
    target = tmp_path / "no-such-directory" / "traffic.jsonl"
    with pytest.raises(OSError, match="cannot record to") as caught:
        recorder.record(shard, target)
    assert str(target) in str(caught.value)
    assert shard._router.recorder is None
    assert recorder.recorder_for(shard) is None


def test_the_file_is_created_when_recording_starts(tmp_path: pathlib.Path) -> None:
    target = tmp_path / "traffic.jsonl"
    recording_ = recorder.record(_Shard(), target)
    try:
        assert (tmp_path / "traffic.jsonl.part").exists()
    finally:
        recording_.close()
    assert target.read_bytes() == b""
    assert not (tmp_path / "traffic.jsonl.part").exists()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        (recorder.ENV_LIMIT, "64MB"),
        (recorder.ENV_LIMIT, "-1"),
        (recorder.ENV_DURATION, "ten minutes"),
        (recorder.ENV_DURATION, "nan"),
        (recorder.ENV_REDACT, "maybe"),
        (recorder.ENV_PATH, "/proc/no-such-directory/traffic.jsonl"),
    ],
)
def test_a_bad_environment_value_warns_and_the_bot_starts(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, tmp_path: pathlib.Path, name: str, value: str
) -> None:
    monkeypatch.setattr(recorder, "_FROM_ENVIRONMENT", [])
    monkeypatch.setenv(recorder.ENV_PATH, str(tmp_path / "env.jsonl"))
    monkeypatch.setenv(name, value)
    with caplog.at_level(logging.WARNING, logger="hikari_shard.recorder"):
        try:
            _install.install()  # what a bot does first: it must not raise
        finally:
            _install.uninstall()
    assert recorder.from_environment() is None
    assert recorder.recorder_for(object()) is None  # recording stays off
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and r.name == "hikari_shard.recorder"]
    assert warnings
    assert "recording stays off" in warnings[0].getMessage()
    assert not list(tmp_path.iterdir())


# --- item 4: nothing captured is lost -------------------------------------------------------------------------------


def test_a_payload_that_does_not_decode_is_skipped_and_counted(tmp_path: pathlib.Path) -> None:
    shard = _Shard()
    target = tmp_path / "traffic.jsonl"
    recording_ = recorder.record(shard, target)
    shard.dispatch(_payload(1))
    shard.dispatch(
        b'{"t":"MESSAGE_CREATE","s":2,"op":0,"d":{"content":"\\ud800 lone surrogate"}}'
    )  # the scanner takes it
    shard.dispatch(_payload(3))
    assert recording_.close() == 2
    assert recording_.skipped == 1
    assert [orjson.loads(line)["s"] for line in target.read_bytes().splitlines()] == [1, 3]
    assert [name for name, _ in bench_recording.read_recording(target)] == ["MESSAGE_CREATE"] * 2
    assert not (tmp_path / "traffic.jsonl.part").exists()


class _FullDisk:
    """A ``.part`` file that takes ``room`` more bytes, then fails like a full disk (ENOSPC), a part written."""

    def __init__(self, file: typing.Any, room: list[int]) -> None:
        self._file = file
        self._room = room

    def write(self, data: typing.Any) -> int:
        if len(data) > self._room[0]:
            self._file.write(bytes(data)[: self._room[0] // 2])  # a partial line, as a real short write leaves
            raise OSError(errno.ENOSPC, "No space left on device")
        self._room[0] -= len(data)
        return int(self._file.write(data))

    def __getattr__(self, name: str) -> typing.Any:
        return getattr(self._file, name)

    def __enter__(self) -> _FullDisk:
        return self

    def __exit__(self, *args: object) -> None:
        self._file.close()


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EFBIG])
def test_a_full_disk_keeps_a_valid_file_of_everything_before(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, tmp_path: pathlib.Path, code: int
) -> None:
    room = [1 << 30]
    opened = pathlib.Path.open

    def open_(self: pathlib.Path, *args: typing.Any, **kwargs: typing.Any) -> typing.Any:
        file = opened(self, *args, **kwargs)
        return _FullDisk(file, room) if self.name.endswith(".part") else file

    monkeypatch.setattr(pathlib.Path, "open", open_)
    shard = _Shard()
    target = tmp_path / "traffic.jsonl"
    recording_ = recorder.record(shard, target)
    for number in range(5):
        shard.dispatch(_payload(number))
    _wait_for(lambda: recording_.lines == 5, "the first five lines to be written")
    room[0] = 0 if code == errno.ENOSPC else 10  # the disk is full now
    for number in range(5, 10):
        shard.dispatch(_payload(number))
    _wait_for(lambda: recording_.stopped, "the failed write to stop the recording")
    assert shard._router.recorder is None  # detached: the shard goes on without it
    shard.dispatch(_payload(10))
    with caplog.at_level(logging.ERROR, logger="hikari_shard.recorder"):
        assert recording_.close() == 5  # and close() does not raise
    assert recording_.failed is not None
    lines = target.read_bytes().splitlines(keepends=True)
    assert [orjson.loads(line)["s"] for line in lines] == [0, 1, 2, 3, 4]
    assert all(line.endswith(b"\n") for line in lines)
    assert not (tmp_path / "traffic.jsonl.part").exists()


def test_when_even_the_rename_fails_the_part_file_is_removed(
    monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path
) -> None:
    def replace(self: pathlib.Path, target: object) -> None:
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    shard = _Shard()
    recording_ = recorder.record(shard, tmp_path / "traffic.jsonl")
    shard.dispatch(_payload(1))
    monkeypatch.setattr(pathlib.Path, "replace", replace)
    assert recording_.close() == 1
    assert list(tmp_path.iterdir()) == []


# --- item 5: the limit holds at every payload, and stop() detaches every router ---------------------------------------


def test_the_size_limit_holds_at_append() -> None:
    limit = 1 << 20
    size = 4 << 20
    shard = _Shard()
    gc.collect()
    tracemalloc.start()
    try:
        recording_ = recorder.record(shard, "/dev/null", limit_bytes=limit)
        calls = 0
        for number in range(60):  # a start-up GUILD_CREATE flood, faster than any watcher
            raw = b'{"t":"GUILD_CREATE","s":%d,"op":0,"d":{"x":"' % number + b"a" * size + b'"}}'
            calls += shard._router.recorder is not None
            shard.dispatch(raw)
            del raw
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    try:
        assert held <= limit + size, f"{held / 2**20:.0f} MiB held against a {limit / 2**20:.0f} MiB limit"
        assert recording_.stopped
        assert shard._router.recorder is None
        assert calls == 1
        assert recording_.size <= limit
    finally:
        recording_.close()


def test_the_limit_stops_at_the_payload_that_would_pass_it(tmp_path: pathlib.Path) -> None:
    shard = _Shard()
    payloads = [_payload(number) for number in range(10)]
    limit = sum(map(len, payloads[:4])) + 5
    recording_ = recorder.record(shard, tmp_path / "traffic.jsonl", limit_bytes=limit)
    for raw in payloads:
        shard.dispatch(raw)
    assert shard._router.recorder is None
    assert recording_.dispatches == 4
    assert recording_.close() == 4


async def test_stop_detaches_a_router_made_before_the_shard_holds_it(tmp_path: pathlib.Path) -> None:
    async with GatewayEmulator(token=TOKEN) as gateway:
        shard = make_shard(gateway, manager=Recorder())
        recording_ = recorder.record(shard, tmp_path / "traffic.jsonl")
        # _make_router gives the new router the callback; the shard stores it in _router only later.
        router = shard._make_router(types.SimpleNamespace(pending=collections.deque()))
        assert router.recorder is not None
        assert shard._router is None
        recording_.stop()
        assert router.recorder is None
        recording_.close()
        assert recorder.recorder_for(shard) is None
        later = shard._make_router(types.SimpleNamespace(pending=collections.deque()))
        assert later.recorder is None
