"""Shared fixtures.

``impl`` runs a hot-path test on both implementations: the compiled modules and their pure twins.
The compiled leg fails (never skips) when ``HIKARI_SHARD_REQUIRE_EXTENSIONS`` is set, as the
test command sets it, so a broken build cannot pass as a pure one.
"""

from __future__ import annotations

import types

import pytest

from hikari_shard import _fast
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
