"""A real ``redis-server`` on loopback for the tests of the Redis session store and identify queue.

The session-scoped fixture :func:`redis_url` starts Debian's ``redis-server`` on 127.0.0.1 and a
free port (no persistence, a temporary directory), waits until it answers PING and yields its URL.
Without ``redis-server`` the tests that need it skip, or fail when ``HIKARI_SHARD_REQUIRE_REDIS=1``
or ``CI=true`` (CI installs it, so a skip there would hide a missing install step).

Tests share the one server: each test uses its own key prefix (:func:`redis_prefix`).
"""

from __future__ import annotations

import os
import pathlib
import shutil
import socket
import subprocess
import tempfile
import time
import typing
import uuid

import pytest

if typing.TYPE_CHECKING:
    from collections.abc import Iterator

START_TIMEOUT: typing.Final = 10.0
MISSING: typing.Final = "redis-server is not installed (Debian: apt-get install redis-server)"


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


def _required() -> bool:
    return os.environ.get("HIKARI_SHARD_REQUIRE_REDIS") == "1" or os.environ.get("CI") == "true"


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """The URL (``redis://127.0.0.1:PORT/0``) of a redis-server started for this test session."""
    binary = shutil.which("redis-server")
    if binary is None:
        if _required():
            pytest.fail(f"{MISSING}; HIKARI_SHARD_REQUIRE_REDIS=1 or CI=true makes it required")
        pytest.skip(MISSING)
    with tempfile.TemporaryDirectory(prefix="hikari-shard-redis-") as workdir:
        port = _free_port()
        log = pathlib.Path(workdir) / "redis.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
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
            deadline = time.monotonic() + START_TIMEOUT
            while not _ping(port):
                if process.poll() is not None or time.monotonic() > deadline:
                    output = log.read_text(errors="replace")[-2000:]
                    pytest.fail(f"redis-server did not answer PING on 127.0.0.1:{port}:\n{output}")
                time.sleep(0.05)
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)


@pytest.fixture
def redis_prefix() -> str:
    """A key prefix of this test's own, so tests sharing the server never see each other's keys."""
    return f"hikari-shard-test-{uuid.uuid4().hex[:12]}"
