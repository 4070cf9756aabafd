"""Shared fixtures.

``impl`` runs a hot-path test on both implementations: the compiled modules and their pure twins.
The compiled leg fails (never skips) when ``HIKARI_SHARD_REQUIRE_EXTENSIONS`` is set, as the
test command sets it, so a broken build cannot pass as a pure one.
"""

from __future__ import annotations

import asyncio
import collections
import importlib.metadata
import types
import typing

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


# -- the engines' summary -------------------------------------------------------------------------
# The tests that run hikari-clusters / hikari-orchestrator for real: one line at the end of the run
# names what ran, so a run's output shows they ran (CI fails them when an engine is missing).
ENGINE_TEST_FILES: typing.Final = ("test_integrations.py", "test_orchestrator_handoff.py", "test_clusters_handoff.py")
_engine_outcomes: dict[str, str] = {}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.nodeid.split("::", 1)[0].rsplit("/", 1)[-1] not in ENGINE_TEST_FILES:
        return
    if report.when == "call" or report.outcome != "passed":
        _engine_outcomes[report.nodeid] = report.outcome


def pytest_terminal_summary(terminalreporter: typing.Any) -> None:
    if not _engine_outcomes:
        return
    versions = []
    for package in ("hikari-clusters", "hikari-orchestrator"):
        try:
            versions.append(f"{package} {importlib.metadata.version(package)}")
        except importlib.metadata.PackageNotFoundError:
            versions.append(f"{package} not installed")
    counts = collections.Counter(_engine_outcomes.values())
    terminalreporter.write_sep("-", f"engines ({', '.join(versions)})")
    for nodeid, outcome in sorted(_engine_outcomes.items()):
        terminalreporter.write_line(f"{outcome.upper():8} {nodeid}")
    terminalreporter.write_line(", ".join(f"{n} {outcome}" for outcome, n in sorted(counts.items())))
