"""Both implementations of the hot paths, for a test suite (pytest) that runs its tests on each."""

from __future__ import annotations

__all__ = ("load_or_skip",)

import types

from hikari_shard import _fast


def load_or_skip(implementation: str) -> types.SimpleNamespace:
    """:func:`hikari_shard._fast.load`, but the calling test is skipped when the compiled extensions
    are not built, unless ``HIKARI_SHARD_REQUIRE_EXTENSIONS`` is set: then the `ImportError`
    propagates, so a broken build can never pass as a pure one.
    """
    try:
        return _fast.load(implementation)
    except ImportError as ex:
        if _fast._flag("HIKARI_SHARD_REQUIRE_EXTENSIONS"):
            raise
        import pytest  # noqa: PLC0415 - only a test suite gets here

        pytest.skip(f"compiled extensions not built: {ex}")
