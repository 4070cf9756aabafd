"""A benchmark client process: imports everything once, then forks a fresh child for every run.

``python -m hikari_shard.bench.worker`` prints one JSON line saying which hot paths it runs, then
reads one :class:`~hikari_shard.bench.client.RunSpec` per line of stdin (JSON) and answers each
with one JSON line: the run's measurements, plus the child's whole-life CPU time and peak RSS
(``ru_maxrss`` from ``wait4``).  A forked child starts from the same warm, freshly imported state
every time, so runs are isolated from each other without paying for Python and hikari's imports on
every run.  Where ``os.fork`` does not exist, runs execute in the worker itself (peak RSS is then
the worker's).

The implementation of our hot paths is chosen at import time, so the parent starts one worker per
client, the pure one with ``HIKARI_SHARD_NO_EXTENSIONS=1``.
"""

from __future__ import annotations

__all__ = ("main",)

import asyncio
import gc
import os
import select
import signal
import sys
import time
import typing

import orjson

from hikari_shard.bench import client

_MAX_RUNS: typing.Final = 100_000
_GRACE: typing.Final = 30.0
"""Seconds a child may take beyond its run's timeout (start, close) before it is killed."""


def _maxrss_bytes(maxrss: int) -> int:
    return maxrss if sys.platform == "darwin" else maxrss * 1024


def _run_in_child(spec: client.RunSpec) -> dict[str, typing.Any]:
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: run, write the result, leave without running the parent's cleanup
        status = 0
        try:
            os.close(read_fd)
            os.dup2(2, 1)  # a stray print must not reach the parent's protocol on stdout
            result = asyncio.run(client.run(spec))
            data = orjson.dumps(result)
            while data:
                data = data[os.write(write_fd, data) :]
        except BaseException:
            status = 1
        finally:
            sys.stderr.flush()
            os._exit(status)

    os.close(write_fd)
    deadline = time.monotonic() + spec.timeout + _GRACE
    chunks: list[bytes] = []
    killed = False
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                os.kill(pid, signal.SIGKILL)
                killed = True
                break
            ready, _, _ = select.select([read_fd], [], [], remaining)
            if ready:
                chunk = os.read(read_fd, 1 << 16)
                if not chunk:
                    break
                chunks.append(chunk)
    finally:
        os.close(read_fd)
    _, status, usage = os.wait4(pid, 0)
    try:
        result = orjson.loads(b"".join(chunks)) if chunks else {}
    except orjson.JSONDecodeError:
        result = {}
    if not result:
        why = "killed after its deadline" if killed else f"exited with status {status} without a result"
        result = {"delivered": False, "error": f"the client process was {why}"}
    result["process_cpu_s"] = usage.ru_utime + usage.ru_stime
    result["peak_rss_bytes"] = _maxrss_bytes(usage.ru_maxrss)
    return result


def _run_here(spec: client.RunSpec) -> dict[str, typing.Any]:
    # No fork (Windows): the run shares this process; CPU is this run's, peak RSS the worker's so far.
    cpu = time.process_time()
    result = asyncio.run(client.run(spec))
    result["process_cpu_s"] = time.process_time() - cpu
    try:
        import resource  # noqa: PLC0415 - not on Windows
    except ImportError:
        return result
    result["peak_rss_bytes"] = _maxrss_bytes(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    return result


def main() -> None:
    """Serve runs on stdin until it ends (see the module docstring)."""
    # Everything a run imports, imported once before the first fork.
    import hikari.impl  # noqa: PLC0415, F401

    import hikari_shard  # noqa: PLC0415, F401
    from hikari_shard import _fast  # noqa: PLC0415

    gc.collect()
    gc.freeze()  # children share these pages instead of copying them on the first collection
    out = sys.stdout
    out.write(orjson.dumps({"hot_paths": _fast.IMPLEMENTATION, "pid": os.getpid()}).decode() + "\n")
    out.flush()
    run = _run_in_child if hasattr(os, "fork") else _run_here
    for _ in range(_MAX_RUNS):
        line = sys.stdin.readline()
        if not line.strip():
            break
        spec = client.RunSpec(**orjson.loads(line))
        try:
            result = run(spec)
        except Exception as ex:
            result = {"delivered": False, "error": f"{type(ex).__name__}: {ex}"}
        out.write(orjson.dumps(result).decode() + "\n")
        out.flush()


if __name__ == "__main__":
    main()
