"""Both implementations of the hot paths, for a test suite (pytest) that runs its tests on each."""

from __future__ import annotations

__all__ = ("load_or_skip", "make_router")

import collections
import logging
import types
import typing

from hikari_shard import _consumers, _fast

_LOGGER: typing.Final = logging.getLogger("hikari_shard.testing")


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


def _ignore(*args: object) -> None:
    return None


def _same(raw: bytes) -> bytes:
    return raw


def make_router(
    modules: types.SimpleNamespace, *, wanting: typing.Iterable[str] | None = None, **options: typing.Any
) -> typing.Any:
    """A router of ``modules`` (one implementation, as :func:`load_or_skip` returns it) outside a shard.

    Every keyword of ``Router`` defaults to something inert: no shard, a consumer and ``on_special``
    that ignore what they get, ``orjson.loads``, no selective decode, no inflator, TEXT frames,
    a quiet logger, no redaction and a new deque.  ``wanting`` turns selective decode on, wanting
    exactly the dispatches of those names (the scanner of ``modules`` reads op/s/t); any other
    keyword given replaces its default.
    """
    import orjson  # noqa: PLC0415 - a dependency of the package; imported here to keep the module light

    defaults: dict[str, typing.Any] = {
        "shard": None,
        "consume": _ignore,
        "on_special": _ignore,
        "loads": orjson.loads,
        "consumers": None,
        "scan": None,
        "inflator": None,
        "expect_binary": False,
        "logger": _LOGGER,
        "redact": _same,
        "pending": collections.deque(),
    }
    if wanting is not None:
        defaults["consumers"] = _consumers.ConsumerIndex.wanting(wanting)
        defaults["scan"] = modules.scan.scan
    defaults.update(options)
    return modules.router.Router(**defaults)
