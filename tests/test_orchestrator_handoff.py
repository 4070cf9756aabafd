"""hikari-orchestrator hand-off: a shard that moves to another worker RESUMEs the manager's record.

A real orchestrator server (``run_server``, TLS on ``localhost``) and real worker processes
(``hikari_orchestrator.Bot`` with ``hikari_shard.integrations.orchestrator.setup``), on the gateway
emulator: a 2-shard bot at ``max_concurrency`` 2, one shard per worker, under a steady stream of
numbered ``TYPING_START`` dispatches to both shards.

1. The worker of shard 0 is killed with SIGKILL (no close at all). A new worker acquires shard 0 and
   RESUMEs it from the manager's last record of it (taken at READY here: its 30 s report never came),
   so Discord replays every dispatch after that record: nothing is lost, and what the dead worker had
   already handled arrives again (counted; at least once is all a killed process allows).
2. The manager moves shard 1 (its ``Disconnect`` RPC, as an operator moving a shard does). Its worker
   closes it resumably and reports the exact seq; the next worker RESUMEs there: nothing lost, nothing
   twice.

Neither shard identifies a second time. This file is also the harness: the test starts
``python tests/test_orchestrator_handoff.py {server,worker} ...`` in new process groups, and each
worker writes one JSON line per READY, RESUMED and typing event on stdout. The token travels in
the environment, never on a command line.
"""

from __future__ import annotations

import asyncio
import logging
import os
import pathlib
import signal
import sys
import time
import typing

import hikari
import pytest

import engine_harness as harness
from helpers import require_engine

if typing.TYPE_CHECKING:
    from hikari_shard.testing.emulator import GatewayEmulator

HARNESS: typing.Final = pathlib.Path(__file__).resolve()
SHARD_COUNT: typing.Final = 2
INTENTS: typing.Final = hikari.Intents.ALL_UNPRIVILEGED
STARTUP_TIMEOUT: typing.Final = 40.0
EVENT_TIMEOUT: typing.Final = 15.0

posix_only = pytest.mark.skipif(sys.platform == "win32", reason="the harness runs in POSIX process groups")


# -- harness side: the orchestrator's server and workers -----------------------------------------------


def _server_main(rest_url: str, port: str, cert_dir: str) -> None:
    import hikari_orchestrator

    # The server asks "Discord" for GET /gateway/bot at hikari's default REST URL.
    hikari.urls.REST_API_URL = rest_url
    directory = pathlib.Path(cert_dir)
    hikari_orchestrator.run_server(
        os.environ[harness.ENV_TOKEN],
        f"localhost:{port}",
        intents=INTENTS,
        ca_cert=(directory / "ca.pem").read_bytes(),
        private_key=(directory / "key.pem").read_bytes(),
        shard_count=SHARD_COUNT,
    )


def _worker_main(port: str, cert_dir: str) -> None:
    import hikari_orchestrator

    from hikari_shard.integrations import orchestrator

    logging.basicConfig(level=logging.INFO)  # to the worker's log file: what the shards did, for a failure
    ca_cert = (pathlib.Path(cert_dir) / "ca.pem").read_bytes()
    token = os.environ[harness.ENV_TOKEN]
    bot = hikari_orchestrator.Bot(f"localhost:{port}", token, ca_cert=ca_cert, local_shard_count=1)
    orchestrator.setup(bot)

    harness.report_events(bot)
    bot.run()


# -- test side -----------------------------------------------------------------------------------------


class _Deployment:
    """The server and every worker started so far; all killed at the end."""

    def __init__(self, tmp_path: pathlib.Path, emulator: GatewayEmulator) -> None:
        from hikari_orchestrator import _ssl

        self.tmp_path = tmp_path
        self.emulator = emulator
        self.cert_dir = tmp_path / "certs"
        self.cert_dir.mkdir()
        ca_cert, private_key = _ssl.gen_ca()
        (self.cert_dir / "ca.pem").write_bytes(ca_cert)
        (self.cert_dir / "key.pem").write_bytes(private_key)
        self.port = harness.free_port()
        self.processes: list[harness.Process] = []

    async def spawn(self, *args: object, stdout: bool = True) -> harness.Process:
        log = self.tmp_path / f"{args[0]}-{len(self.processes)}.log"
        process = await harness.spawn(HARNESS, *args, log=log, token=self.emulator.token, stdout=stdout)
        self.processes.append(process)
        return process

    async def server(self) -> harness.Process:
        server = await self.spawn("server", self.emulator.rest_url, self.port, self.cert_dir, stdout=False)
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
            except OSError:
                if time.monotonic() > deadline or server.proc.returncode is not None:
                    pytest.fail(f"the orchestrator server never listened\n{server.diagnostics()}")
                await asyncio.sleep(0.1)
            else:
                writer.close()
                return server

    async def worker(self) -> harness.Process:
        return await self.spawn("worker", self.port, self.cert_dir)

    async def disconnect(self, shard_id: int) -> None:
        """The manager's ``Disconnect`` RPC: the shard's worker stops it, and the shard becomes free to acquire."""
        import grpc.aio  # type: ignore[import-untyped]
        from hikari_orchestrator import _protos, _service

        ca_cert = (self.cert_dir / "ca.pem").read_bytes()
        async with grpc.aio.secure_channel(f"localhost:{self.port}", grpc.ssl_channel_credentials(ca_cert)) as channel:
            result = await _protos.OrchestratorStub(channel).Disconnect(
                _protos.ShardId(shard_id=shard_id),
                credentials=grpc.access_token_call_credentials(_service.hash_token(self.emulator.token)),
            )
        assert result.status == _protos.SUCCESS, result

    async def close(self) -> None:
        for process in reversed(self.processes):
            await process.kill()


def _owner(workers: list[harness.Process], shard_id: int) -> harness.Process:
    (owner,) = (worker for worker in workers if worker.of("ready", shard_id))
    return owner


@posix_only
async def test_a_moved_shard_resumes_the_managers_record(tmp_path: pathlib.Path) -> None:
    require_engine("hikari_orchestrator", "hikari-orchestrator")
    from hikari_shard.testing.emulator import GatewayEmulator, make_bot_token

    async with GatewayEmulator(token=make_bot_token(), shard_count=SHARD_COUNT, max_concurrency=2) as emulator:
        deployment = _Deployment(tmp_path, emulator)
        stream = harness.Stream(emulator)
        try:
            try:
                await deployment.server()
                workers = [await deployment.worker(), await deployment.worker()]
                for worker in workers:
                    await worker.wait_for(lambda w=worker: bool(w.of("ready")), "READY", timeout=STARTUP_TIMEOUT)
                assert {w.of("ready")[0]["module"] for w in workers} == {"hikari_shard.shard"}
                first, second = _owner(workers, 0), _owner(workers, 1)
                stream.start()
                await stream.run_for(1.0)

                # 1. The worker of shard 0 dies. Its replacement resumes the manager's record.
                await first.kill(signal.SIGKILL)
                handled_by_first = first.numbers(0)
                killed_at = time.monotonic()
                await stream.run_for(0.5)  # Discord keeps sending meanwhile
                replacement = await deployment.worker()
                await replacement.wait_for(
                    lambda: bool(replacement.of("resumed", 0)),
                    f"RESUMED; identified {emulator.identify_log}, resumed {emulator.resume_log}",
                    timeout=STARTUP_TIMEOUT,
                )
                back_after = time.monotonic() - killed_at

                # 2. The manager moves shard 1: its worker closes it resumably, the next worker resumes it exactly.
                await stream.run_for(0.5)
                await deployment.disconnect(1)
                await second.wait_for(lambda: _closed(emulator, 1), "a resumable close of shard 1", timeout=10.0)
                await asyncio.sleep(0.5)  # the worker's last reports are still on their way through its stdout
                handled_by_second = second.numbers(1)
                await stream.run_for(0.3)
                mover = await deployment.worker()
                await mover.wait_for(
                    lambda: bool(mover.of("resumed", 1)), "RESUMED of shard 1", timeout=STARTUP_TIMEOUT
                )
                await stream.run_for(0.5)
            finally:
                await stream.stop()
            sent = {shard_id: stream.sent(shard_id) for shard_id in range(SHARD_COUNT)}
            await replacement.wait_for(
                lambda: replacement.numbers(0)[-1:] == sent[0][-1:], "the last event of shard 0", timeout=EVENT_TIMEOUT
            )
            await mover.wait_for(
                lambda: mover.numbers(1)[-1:] == sent[1][-1:], "the last event of shard 1", timeout=EVENT_TIMEOUT
            )

            # Discord's side: one IDENTIFY per shard ever, one RESUME per move.
            assert dict(emulator.identifies) == {0: 1, 1: 1}, emulator.identify_log
            assert dict(emulator.resumes) == {0: 1, 1: 1}, emulator.resume_log

            # Shard 0 (SIGKILL): the replacement got every dispatch after the record, in order: nothing lost.
            record_seq = harness.resume_seq(emulator, 0)
            after_record = [n for n in sent[0] if stream.seqs[0][n] > record_seq]
            assert replacement.numbers(0) == after_record
            assert sorted(set(handled_by_first) | set(replacement.numbers(0))) == sent[0]
            again = sorted(set(handled_by_first) & set(replacement.numbers(0)))

            # Shard 1 (moved by the manager): resumed at the exact seq it closed at: nothing lost, nothing twice.
            assert harness.resume_seq(emulator, 1) == stream.seqs[1][handled_by_second[-1]]
            assert handled_by_second + mover.numbers(1) == sent[1]
            assert [worker.of("ready") for worker in (replacement, mover)] == [[], []]

            print(  # the figures of the note (pytest -s)
                f"\nshard 0, worker killed: {len(sent[0])} dispatched, {len(handled_by_first)} handled before the "
                f"kill; resumed at seq {record_seq} (the manager's record) {back_after:.2f} s after the kill "
                "(a new worker started 0.5 s after it); "
                f"{len(replacement.numbers(0))} received by the new worker, {len(again)} of them again, 0 lost"
                f"\nshard 1, moved by Disconnect: {len(sent[1])} dispatched, {len(handled_by_second)} before the move, "
                f"{len(mover.numbers(1))} after it, 0 twice, 0 lost; IDENTIFYs {dict(emulator.identifies)}"
            )
        finally:
            await deployment.close()  # every process it started, whatever failed


def _closed(emulator: GatewayEmulator, shard_id: int) -> bool:
    """Whether shard ``shard_id``'s connection closed with a code that keeps its session (never 1000/1001)."""
    session = emulator.latest_session(shard_id)
    return session is not None and session.connection is None and session.resumable


if __name__ == "__main__":
    mode, *rest = sys.argv[1:]
    if mode == "server":
        _server_main(*rest)
    elif mode == "worker":
        _worker_main(*rest)
    else:
        raise SystemExit(f"unknown mode {mode!r}")
