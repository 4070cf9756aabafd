"""What the engine hand-off tests share: their processes, the dispatch stream, and what workers report.

The tests (``test_orchestrator_handoff.py``, ``test_clusters_handoff.py``) start real engine processes,
each in its own process group, that write one JSON line per READY, RESUMED and ``TYPING_START`` they
receive on stdout (:func:`report_events`).  :class:`Process` reads those lines; :class:`Stream` sends
numbered ``TYPING_START`` dispatches to every shard and remembers each one's seq.  The token travels
in the environment (:data:`ENV_TOKEN`), never on a command line.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import pathlib
import signal
import socket
import sys
import time
import typing

import hikari
import pytest

if typing.TYPE_CHECKING:
    from hikari_shard.testing.emulator import GatewayEmulator

ENV_TOKEN: typing.Final = "HANDOFF_TOKEN"  # the variable's name
INTERVAL: typing.Final = 0.025  # seconds between two dispatches to one shard
USER_BASE: typing.Final = 1_000_000


# -- engine side: in the workers / cluster processes -----------------------------------------------------


def emit(kind: str, **fields: object) -> None:
    """Write one report line (with this process's pid) on stdout."""
    sys.stdout.write(json.dumps({"kind": kind, "pid": os.getpid(), **fields}) + "\n")
    sys.stdout.flush()


def report_events(bot: hikari.GatewayBotAware) -> None:
    """Report every READY, RESUMED and DM typing event ``bot`` receives, with the class of the shard that delivered it.

    A typing event's ``n`` is its user id less :data:`USER_BASE` (how :class:`Stream` numbers them).
    """

    async def on_ready(event: hikari.ShardReadyEvent) -> None:
        emit("ready", shard=event.shard.id, module=type(event.shard).__module__)

    async def on_resumed(event: hikari.ShardResumedEvent) -> None:
        emit("resumed", shard=event.shard.id, module=type(event.shard).__module__)

    async def on_typing(event: hikari.DMTypingEvent) -> None:
        user = int(event.user_id)
        emit("typing", shard=event.shard.id, n=user - USER_BASE, user=user, module=type(event.shard).__module__)

    bot.event_manager.subscribe(hikari.ShardReadyEvent, on_ready)
    bot.event_manager.subscribe(hikari.ShardResumedEvent, on_resumed)
    bot.event_manager.subscribe(hikari.DMTypingEvent, on_typing)


class ReportingBot(hikari.GatewayBot):
    """A user's bot for hikari-clusters: a plain ``hikari.GatewayBot`` subclass (it must have a ``__dict__``)."""

    def __init__(self, **kwargs: typing.Any) -> None:
        super().__init__(**kwargs)
        report_events(self)


# -- test side --------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Process:
    """One harness process (in its own process group) and the JSON lines it wrote."""

    def __init__(self, proc: asyncio.subprocess.Process, log: pathlib.Path) -> None:
        self.proc = proc
        self.log = log
        self.records: list[dict[str, typing.Any]] = []
        self._reader = asyncio.ensure_future(self._read()) if proc.stdout is not None else None

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        while line := await self.proc.stdout.readline():
            with contextlib.suppress(ValueError):
                record = json.loads(line)
                if isinstance(record, dict) and "kind" in record:
                    self.records.append(record)

    def of(self, kind: str, shard: int | None = None) -> list[dict[str, typing.Any]]:
        return [r for r in self.records if r["kind"] == kind and (shard is None or r["shard"] == shard)]

    def numbers(self, shard: int) -> list[int]:
        return [r["n"] for r in self.of("typing", shard)]

    def diagnostics(self) -> str:
        tail = self.log.read_text(errors="replace")[-3_000:] if self.log.exists() else ""
        kinds = [r["kind"] for r in self.records if r["kind"] != "typing"]
        return f"{self.log.name}: reported {kinds} and {self.records[-3:]}\n--- stderr (tail) ---\n{tail}"

    async def wait_for(
        self,
        check: typing.Callable[[], bool],
        what: str,
        *,
        timeout: float,  # noqa: ASYNC109 - a deadline for a condition, not for one await
    ) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            if self.proc.returncode is not None and (self._reader is None or self._reader.done()):
                pytest.fail(f"{what}: the process exited ({self.proc.returncode})\n{self.diagnostics()}")
            if time.monotonic() > deadline:
                pytest.fail(f"{what}: not after {timeout}s\n{self.diagnostics()}")
            await asyncio.sleep(0.05)

    async def kill(self, sig: int = signal.SIGKILL) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.proc.wait(), 5.0)
        if self._reader is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._reader, 2.0)


async def spawn(
    script: pathlib.Path, *args: object, log: pathlib.Path, token: str, stdout: bool = True, stdin: bool = False
) -> Process:
    """Run ``python script args...`` in a new process group; its stderr goes to ``log``."""
    with log.open("wb") as stderr:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            str(script),
            *map(str, args),
            stdin=asyncio.subprocess.PIPE if stdin else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE if stdout else asyncio.subprocess.DEVNULL,
            stderr=stderr,
            start_new_session=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1", ENV_TOKEN: token},
        )
    return Process(proc, log)


class Stream:
    """Numbered TYPING_START dispatches to every shard, every :data:`INTERVAL` s, with their seqs."""

    def __init__(self, emulator: GatewayEmulator) -> None:
        self.emulator = emulator
        self.shard_count = emulator.shard_count
        self.seqs: dict[int, dict[int, int]] = {shard_id: {} for shard_id in range(self.shard_count)}
        self._task: asyncio.Task[None] | None = None

    def sent(self, shard_id: int) -> list[int]:
        return sorted(self.seqs[shard_id])

    async def _run(self) -> None:
        n = 0
        while True:
            for shard_id in range(self.shard_count):
                data = {"channel_id": "900", "user_id": str(USER_BASE + n), "timestamp": int(time.time())}
                (seq,) = await self.emulator.dispatch("TYPING_START", data, shard_id=shard_id)
                self.seqs[shard_id][n] = seq
            n += 1
            await asyncio.sleep(INTERVAL)

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def run_for(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
        assert self._task is not None
        assert not self._task.done(), self._task


def resume_seq(emulator: GatewayEmulator, shard_id: int) -> int:
    seqs = [seq for _, shard, _, seq in emulator.resume_log if shard == shard_id]
    assert len(seqs) == 1, emulator.resume_log
    return int(seqs[0])
