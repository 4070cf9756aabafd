"""Choose the compiled or the pure-Python implementation of every hot path.

The compiled modules live in :mod:`hikari_shard._fastpath` (built by ``setup.py`` from
``src/_fastpath/<name>.pyx``, or from the single source ``src/hikari_shard/_pure/<name>.py`` with the
C types of ``src/hikari_shard/_fastpath/<name>.pxd``); the pure modules, with the same API, live in
:mod:`hikari_shard._pure`.  The compiled ones are used
unless ``HIKARI_SHARD_NO_EXTENSIONS`` is set to a non-empty value other than ``0``, or they cannot be
imported: then one WARNING on the ``hikari_shard`` logger says why when compiled modules were
expected (the package ships extension files, so the wheel is broken), else one DEBUG line.

``HIKARI_SHARD_REQUIRE_EXTENSIONS=1`` turns a failed import into an error instead: the test suite and
the wheel builds set it so a broken build can never pass as "pure".
"""

from __future__ import annotations

__all__ = ("IMPLEMENTATION", "NO_EXTENSIONS_REASON", "frames", "inflate", "load", "ratelimit", "router", "scan")

import importlib
import importlib.machinery
import logging
import os
import pathlib
import types
import typing

_LOGGER: typing.Final = logging.getLogger("hikari_shard")
HOT_PATHS: typing.Final = ("frames", "inflate", "ratelimit", "router", "scan")


def _flag(name: str) -> bool:
    return os.environ.get(name, "") not in {"", "0"}


def load(implementation: str) -> types.SimpleNamespace:
    """Import one implementation of every hot path.

    Parameters
    ----------
    implementation
        ``"compiled"`` or ``"pure"``.

    Returns
    -------
    types.SimpleNamespace
        One attribute per hot path (:data:`HOT_PATHS`), each the module.

    Raises
    ------
    ImportError
        If ``"compiled"`` was asked for and the extensions are not built.
    """
    if implementation not in {"compiled", "pure"}:
        msg = f"unknown implementation {implementation!r}, expected 'compiled' or 'pure'"
        raise ValueError(msg)
    package = "_fastpath" if implementation == "compiled" else "_pure"
    return types.SimpleNamespace(
        **{name: importlib.import_module(f"hikari_shard.{package}.{name}") for name in HOT_PATHS}
    )


def compiled_expected(directory: pathlib.Path | None = None) -> bool:
    """Whether compiled hot paths were installed: any extension module in the ``_fastpath`` package.

    Parameters
    ----------
    directory
        The ``hikari_shard/_fastpath`` directory to look in; defaults to the installed one.
    """
    if directory is None:
        directory = pathlib.Path(__file__).with_name("_fastpath")
    suffixes = tuple(importlib.machinery.EXTENSION_SUFFIXES)
    try:
        return any(path.name.endswith(suffixes) for path in directory.iterdir())
    except OSError:
        return False


def _choose() -> tuple[str, types.SimpleNamespace, str | None]:
    if _flag("HIKARI_SHARD_NO_EXTENSIONS"):
        reason = "HIKARI_SHARD_NO_EXTENSIONS is set"
        _LOGGER.debug("using the pure-Python hot paths: %s", reason)
        return "pure", load("pure"), reason
    try:
        return "compiled", load("compiled"), None
    except ImportError as ex:
        if _flag("HIKARI_SHARD_REQUIRE_EXTENSIONS"):
            raise
        reason = f"the compiled extensions could not be imported ({ex})"
        # A wheel that ships extensions which do not load is broken: say so where it is seen.
        level = logging.WARNING if compiled_expected() else logging.DEBUG
        _LOGGER.log(level, "using the pure-Python hot paths: %s", reason)
        return "pure", load("pure"), reason


_CHOICE: typing.Final = _choose()
IMPLEMENTATION: typing.Final[str] = _CHOICE[0]
"""``"compiled"`` or ``"pure"``: which implementation of the hot paths this process uses."""
NO_EXTENSIONS_REASON: typing.Final[str | None] = _CHOICE[2]
"""Why the pure-Python implementation is in use, or ``None`` when the compiled one is."""
_modules: typing.Final = _CHOICE[1]
frames: types.ModuleType = _modules.frames
inflate: types.ModuleType = _modules.inflate
ratelimit: types.ModuleType = _modules.ratelimit
router: types.ModuleType = _modules.router
scan: types.ModuleType = _modules.scan
