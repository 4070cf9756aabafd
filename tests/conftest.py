"""Shared fixtures.

``impl`` runs a hot-path test on both implementations: the compiled modules and their pure twins.
The compiled leg fails (never skips) when ``HIKARI_SHARD_REQUIRE_EXTENSIONS`` is set, as the
test command sets it, so a broken build cannot pass as a pure one.
"""

from __future__ import annotations

import asyncio
import types

import pytest

from hikari_shard import _context, _fast, identify
from hikari_shard.testing.hot_paths import load_or_skip

# The tests import each other as top-level modules (rootdir-relative ``tests/`` on sys.path).
pytest_plugins = ["redis_server"]


@pytest.fixture(params=["compiled", "pure"])
def impl(request: pytest.FixtureRequest) -> types.SimpleNamespace:
    """Both implementations of every hot path: ``impl.inflate``, ``impl.scan``, ``impl.router``, ..."""
    return load_or_skip(request.param)


@pytest.fixture
def compiled() -> types.SimpleNamespace:
    """The compiled implementation (for differential tests against ``pure``)."""
    return load_or_skip("compiled")


@pytest.fixture
def pure() -> types.SimpleNamespace:
    """The pure-Python implementation."""
    return _fast.load("pure")


@pytest.fixture(autouse=True)
def _identify_without_waiting(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Shards in tests identify through an in-process queue with no 5 s spacing, unless the test is about it.

    Discord's one IDENTIFY per bucket per 5 s would add seconds to every test that starts, restarts
    or re-identifies a shard.  The spacing itself is tested with the real queue: mark such a test
    ``real_identify_queue`` (and the emulator's ``enforce_identify_buckets`` checks the result).
    """
    if request.node.get_closest_marker("real_identify_queue"):
        return
    queues: dict[asyncio.AbstractEventLoop, identify.LocalIdentifyQueue] = {}

    def local_queue() -> identify.LocalIdentifyQueue:
        return queues.setdefault(asyncio.get_running_loop(), identify.LocalIdentifyQueue(interval=0.0))

    monkeypatch.setattr(_context, "local_queue", local_queue)
