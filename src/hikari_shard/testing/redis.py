"""A real ``redis-server`` on loopback, for the Redis session store's and identify queue's tests and benchmarks.

:func:`redis_server` starts Debian's ``redis-server`` (``apt-get install redis-server``) on
127.0.0.1 and a free port, without persistence, in a temporary directory, waits until it answers
PING and yields its URL; it stops the server on exit.
"""

from __future__ import annotations

__all__ = ("MISSING", "RedisUnavailableError", "redis_server")

import contextlib
import pathlib
import shutil
import socket
import subprocess
import tempfile
import time
import typing

if typing.TYPE_CHECKING:
    from collections.abc import Iterator

MISSING: typing.Final = "redis-server is not installed (Debian: apt-get install redis-server)"


class RedisUnavailableError(RuntimeError):
    """``redis-server`` is not installed, or did not answer in time."""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _ping(port: int) -> bool:
    """One PING over the RESP protocol; True when the server answers PONG."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"*1\r\n$4\r\nPING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


@contextlib.contextmanager
def redis_server(*, start_timeout: float = 10.0) -> Iterator[str]:
    """Run a ``redis-server`` on 127.0.0.1; yields ``redis://127.0.0.1:PORT/0``.

    Raises
    ------
    RedisUnavailableError
        If ``redis-server`` is not on PATH or does not answer PING within ``start_timeout``.
    """
    binary = shutil.which("redis-server")
    if binary is None:
        raise RedisUnavailableError(MISSING)
    with tempfile.TemporaryDirectory(prefix="hikari-shard-redis-") as workdir:
        port = _free_port()
        log = pathlib.Path(workdir) / "redis.log"
        with log.open("wb") as out:
            process = subprocess.Popen(  # noqa: S603 - Debian's redis-server, on loopback
                [
                    binary,
                    "--port",
                    str(port),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--dir",
                    workdir,
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=workdir,
            )
        try:
            deadline = time.monotonic() + start_timeout
            while not _ping(port):
                if process.poll() is not None or time.monotonic() > deadline:
                    output = log.read_text(errors="replace")[-2000:]
                    msg = f"redis-server did not answer PING on 127.0.0.1:{port}:\n{output}"
                    raise RedisUnavailableError(msg)
                time.sleep(0.05)
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
