"""Run a few real worker processes at once (for the cross-process tests of the stores and queues).

Each worker is ``python -c SCRIPT ARGS...``.  It prints ``ready`` once set up, then waits for a line on
stdin: the parent sends it to all workers together, so their work overlaps.  Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import sys
import typing

READY_TIMEOUT: typing.Final = 30.0


async def run_workers(script: str, argvs: list[list[str]], *, limit: float = 60.0) -> list[str]:
    """Start one worker per argument list, release them together, and return their stdout.

    Fails (``AssertionError``) when a worker exits non-zero or does not finish within ``limit`` seconds.
    """
    processes = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            script,
            *argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        for argv in argvs
    ]
    try:
        for process in processes:
            assert process.stdout is not None
            line = await asyncio.wait_for(process.stdout.readline(), READY_TIMEOUT)
            if line.strip() != b"ready":
                _, err = await asyncio.wait_for(process.communicate(), READY_TIMEOUT)
                msg = f"a worker did not get ready: {line!r}\n{err.decode(errors='replace')}"
                raise AssertionError(msg)
        for process in processes:
            assert process.stdin is not None
            process.stdin.write(b"go\n")
            await process.stdin.drain()
        outputs = []
        async with asyncio.timeout(limit):
            for process in processes:
                out, err = await process.communicate()
                assert process.returncode == 0, err.decode(errors="replace")
                outputs.append(out.decode())
        return outputs
    finally:
        for process in processes:
            if process.returncode is None:
                process.kill()
                await process.wait()
