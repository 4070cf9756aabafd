"""hikari-clusters rolling restart: the replacement of a stopped cluster RESUMEs its shards.

A real hikari-clusters deployment on the gateway emulator: a brain and one server, running two
clusters of one shard each (``max_concurrency`` 1), through :class:`hikari_shard.integrations.clusters.ClusterLauncher`
with a SQLite session store, under a steady stream of numbered ``TYPING_START`` dispatches to both
shards. The test stops cluster 0 the way an operator's rolling restart does (the IPC event
``cluster_stop``); its shard closes resumably and saves its session, the server sees the process
gone, and the brain starts a replacement, which RESUMEs. Across the restart: no IDENTIFY for the
restarted cluster, no event lost or delivered twice, the other cluster untouched.

This file is also the harness: ``python tests/test_clusters_handoff.py REST_URL PORT SESSIONS`` runs
the brain and the server; a line ``stop SHARD_ID`` on its stdin stops the cluster that runs that
shard. Every cluster process reports READY, RESUMED and typing events on stdout (``engine_harness``).
"""

from __future__ import annotations

import asyncio
import pathlib
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
IPC_TOKEN: typing.Final = "hikari-shard-test"  # the brain's IPC password in this test
STARTUP_TIMEOUT: typing.Final = 60.0
EVENT_TIMEOUT: typing.Final = 15.0

posix_only = pytest.mark.skipif(sys.platform == "win32", reason="the harness runs in POSIX process groups")


# -- harness side: the brain, the server, and (forked from it) the clusters --------------------------------


def _deployment_main(rest_url: str, port: str, sessions: str) -> None:
    import os

    from hikari_shard.integrations.clusters import Brain, ClusterLauncher, Server

    launcher = ClusterLauncher(
        harness.ReportingBot,
        bot_init_kwargs={
            "token": os.environ[harness.ENV_TOKEN],
            "rest_url": rest_url,
            "intents": hikari.Intents.ALL_UNPRIVILEGED,
            "banner": None,
            "logs": "INFO",  # to the harness's log file: what the shards did, for a failure
            "suppress_optimization_warning": True,
        },
        bot_start_kwargs={"check_for_updates": False},
        sessions=sessions,
    )

    async def stop_on_request(brain: typing.Any) -> None:
        """Read ``stop SHARD_ID`` lines; send ``cluster_stop`` to the cluster that runs that shard."""
        reader = asyncio.StreamReader()
        await asyncio.get_running_loop().connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        while line := await reader.readline():
            shard_id = int(line.split()[1])
            (uid,) = (uid for uid, info in brain.ipc.clusters.items() if shard_id in info.shard_ids)
            await brain.ipc.send_event([uid], "cluster_stop")
            harness.emit("stopping", shard=shard_id)

    async def main() -> None:
        # One server running two clusters of one shard each.
        brain = Brain("127.0.0.1", int(port), IPC_TOKEN, 1, SHARD_COUNT, 1)
        server = Server("127.0.0.1", int(port), IPC_TOKEN, launcher)
        await brain.start()
        await server.start()
        stopper = asyncio.ensure_future(stop_on_request(brain))
        try:
            await brain.join()
        finally:
            stopper.cancel()

    asyncio.run(main())


# -- test side -----------------------------------------------------------------------------------------


def _pids(deployment: harness.Process, kind: str, shard_id: int) -> set[int]:
    return {record["pid"] for record in deployment.of(kind, shard_id)}


def _numbers(deployment: harness.Process, shard_id: int, pid: int) -> list[int]:
    return [r["n"] for r in deployment.of("typing", shard_id) if r["pid"] == pid]


@posix_only
async def test_a_rolling_restart_resumes_the_restarted_cluster(tmp_path: pathlib.Path) -> None:
    require_engine("hikari_clusters", "hikari-clusters")
    from hikari_shard.testing.emulator import GatewayEmulator, make_bot_token

    async with GatewayEmulator(token=make_bot_token(), shard_count=SHARD_COUNT, max_concurrency=1) as emulator:
        stream = harness.Stream(emulator)
        deployment = await harness.spawn(
            HARNESS,
            emulator.rest_url,
            harness.free_port(),
            tmp_path / "sessions.sqlite3",
            log=tmp_path / "deployment.log",
            token=emulator.token,
            stdin=True,
        )
        try:
            await _restart_cluster_0(deployment, stream, emulator)
        finally:
            await stream.stop()
            await deployment.kill()  # the harness and every cluster it forked: one process group


async def _restart_cluster_0(deployment: harness.Process, stream: harness.Stream, emulator: GatewayEmulator) -> None:
    await deployment.wait_for(
        lambda: all(deployment.of("ready", shard_id) for shard_id in range(SHARD_COUNT)),
        "both clusters READY",
        timeout=STARTUP_TIMEOUT,
    )
    assert {record["module"] for record in deployment.of("ready")} == {"hikari_shard.shard"}
    (old_pid,), (other_pid,) = _pids(deployment, "ready", 0), _pids(deployment, "ready", 1)
    assert old_pid != other_pid
    stream.start()
    await stream.run_for(0.5)

    # The rolling restart of cluster 0: stop it; the brain starts its replacement, which resumes.
    assert deployment.proc.stdin is not None
    deployment.proc.stdin.write(b"stop 0\n")
    stopped_at = time.monotonic()
    await deployment.wait_for(
        lambda: bool(deployment.of("resumed", 0)), "the replacement's RESUMED", timeout=STARTUP_TIMEOUT
    )
    back_after = time.monotonic() - stopped_at
    (new_pid,) = _pids(deployment, "resumed", 0)
    newest = max(stream.seqs[0], default=0)  # the newest dispatch at RESUMED: later ones are live
    await deployment.wait_for(
        lambda: any(n > newest for n in _numbers(deployment, 0, new_pid)),
        "a live dispatch in the replacement",
        timeout=EVENT_TIMEOUT,
    )
    live_after = time.monotonic() - stopped_at
    await stream.run_for(0.5)
    await stream.stop()

    sent = {shard_id: stream.sent(shard_id) for shard_id in range(SHARD_COUNT)}
    for shard_id, pid in ((0, new_pid), (1, other_pid)):
        await deployment.wait_for(
            lambda shard_id=shard_id, pid=pid: _numbers(deployment, shard_id, pid)[-1:] == sent[shard_id][-1:],
            f"the last event of shard {shard_id}",
            timeout=EVENT_TIMEOUT,
        )

    # Discord's side: one IDENTIFY per shard ever; the restarted cluster's shard resumed once.
    assert dict(emulator.identifies) == {0: 1, 1: 1}, emulator.identify_log
    assert dict(emulator.resumes) == {0: 1}, emulator.resume_log
    assert _pids(deployment, "ready", 0) == {old_pid}  # the replacement got no READY

    # Shard 0: what the old cluster handled, then exactly the rest, from the seq it closed at.
    before, after = _numbers(deployment, 0, old_pid), _numbers(deployment, 0, new_pid)
    assert before + after == sent[0]
    assert harness.resume_seq(emulator, 0) == stream.seqs[0][before[-1]]
    replayed = [n for n in after if n <= newest]
    # Shard 1, in the other cluster: untouched, everything once.
    assert _numbers(deployment, 1, other_pid) == sent[1]
    assert _pids(deployment, "typing", 1) == {other_pid}

    print(  # the figures of the note (pytest -s)
        f"\nrolling restart of cluster 0: {len(sent[0])} dispatched to its shard, {len(before)} before the stop, "
        f"{len(replayed)} while it was down (replayed on RESUME), 0 lost, 0 twice; IDENTIFYs "
        f"{dict(emulator.identifies)}, RESUMEs {dict(emulator.resumes)}; RESUMED {back_after:.2f} s "
        f"and first live dispatch {live_after:.2f} s after the stop"
    )


if __name__ == "__main__":
    _deployment_main(*sys.argv[1:])
