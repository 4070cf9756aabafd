"""A real ``redis-server`` on loopback for the tests of the Redis session store and identify queue.

The session-scoped fixture :func:`redis_url` starts Debian's ``redis-server`` on 127.0.0.1 and a
free port (no persistence, a temporary directory), waits until it answers PING and yields its URL.
Without ``redis-server`` the tests that need it skip, or fail when ``HIKARI_SHARD_REQUIRE_REDIS=1``
or ``CI=true`` (CI installs it, so a skip there would hide a missing install step).

Tests share the one server: each test uses its own key prefix (:func:`redis_prefix`).
"""

from __future__ import annotations

import os
import typing
import uuid

import pytest

from hikari_shard.testing.redis import MISSING, RedisUnavailableError, redis_server

if typing.TYPE_CHECKING:
    from collections.abc import Iterator


def _required() -> bool:
    return os.environ.get("HIKARI_SHARD_REQUIRE_REDIS") == "1" or os.environ.get("CI") == "true"


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """The URL (``redis://127.0.0.1:PORT/0``) of a redis-server started for this test session."""
    server = redis_server()
    try:
        url = server.__enter__()
    except RedisUnavailableError as ex:
        if _required() or str(ex) != MISSING:
            pytest.fail(f"{ex}; HIKARI_SHARD_REQUIRE_REDIS=1 or CI=true makes it required")
        pytest.skip(MISSING)
    try:
        yield url
    finally:
        server.__exit__(None, None, None)


@pytest.fixture
def redis_prefix() -> str:
    """A key prefix of this test's own, so tests sharing the server never see each other's keys."""
    return f"hikari-shard-test-{uuid.uuid4().hex[:12]}"
