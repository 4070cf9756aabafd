"""Which implementation runs, and that a normal build really is compiled.

The test command runs the suite twice: with ``HIKARI_SHARD_REQUIRE_EXTENSIONS=1`` (a failed
compiled import is then an error, and this file checks the modules are native code), and with
``HIKARI_SHARD_NO_EXTENSIONS=1`` (this file checks the pure twins are what runs).
"""

from __future__ import annotations

import importlib
import importlib.machinery
import os
import pathlib
import subprocess
import sys

import pytest

from hikari_shard import _fast

HOT_PATHS = _fast.HOT_PATHS
FORCED_PURE = os.environ.get("HIKARI_SHARD_NO_EXTENSIONS", "") not in {"", "0"}
REQUIRED = os.environ.get("HIKARI_SHARD_REQUIRE_EXTENSIONS", "") not in {"", "0"}


def test_chosen_implementation_matches_environment() -> None:
    if FORCED_PURE:
        assert _fast.IMPLEMENTATION == "pure"
        assert "HIKARI_SHARD_NO_EXTENSIONS" in (_fast.NO_EXTENSIONS_REASON or "")
    elif REQUIRED:
        assert _fast.IMPLEMENTATION == "compiled", _fast.NO_EXTENSIONS_REASON
        assert _fast.NO_EXTENSIONS_REASON is None
    else:
        # Unforced: compiled exactly when the compiled modules import.
        try:
            _fast.load("compiled")
        except ImportError:
            assert _fast.IMPLEMENTATION == "pure"
            assert "could not be imported" in (_fast.NO_EXTENSIONS_REASON or "")
        else:
            assert _fast.IMPLEMENTATION == "compiled"
    expected = "_fastpath" if _fast.IMPLEMENTATION == "compiled" else "_pure"
    for name in HOT_PATHS:  # every hot path really comes from the chosen package
        assert getattr(_fast, name).__name__ == f"hikari_shard.{expected}.{name}"


@pytest.mark.parametrize("name", HOT_PATHS)
def test_compiled_modules_are_native_code(name: str) -> None:
    """A normal build ships every hot path as an extension module; a missing one fails here."""
    if not REQUIRED:
        pytest.skip("only meaningful when the build is required to be compiled (the test command sets it)")
    module = importlib.import_module(f"hikari_shard._fastpath.{name}")
    assert module.__file__ is not None
    assert module.__file__.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES)), module.__file__


@pytest.mark.parametrize("name", HOT_PATHS)
def test_pure_twins_have_the_compiled_api(name: str) -> None:
    pure = importlib.import_module(f"hikari_shard._pure.{name}")
    try:
        compiled = importlib.import_module(f"hikari_shard._fastpath.{name}")
    except ImportError:
        if REQUIRED:
            raise
        pytest.skip("compiled extensions not built")
    public = {n for n in dir(pure) if not n.startswith("_") and n not in pure.__dict__.get("_PRIVATE_IMPORTS", ())}
    exported = set(getattr(pure, "__all__", public))
    assert exported <= set(dir(compiled)), f"compiled {name} lacks {sorted(exported - set(dir(compiled)))}"


def test_info_command_reports_the_implementation() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "hikari_shard", "info"], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    assert f"hot paths: {_fast.IMPLEMENTATION}" in out
    reader = "our compiled parser" if _fast.IMPLEMENTATION == "compiled" else "'s reader, routed in data_received"
    assert reader in out.split("websocket frames read by: ", 1)[1].splitlines()[0]


def test_broken_compiled_import_falls_back_to_pure_with_a_warning() -> None:
    """A wheel whose extension cannot load still works (pure), and says why at WARNING, once."""
    if REQUIRED:
        assert _fast.compiled_expected()
    if not _fast.compiled_expected():
        pytest.skip("no compiled modules installed: nothing was expected")
    code = (
        "import logging, sys\n"
        "logging.basicConfig(level=logging.WARNING, format='%(levelname)s %(name)s %(message)s')\n"
        "sys.modules['hikari_shard._fastpath.inflate'] = None\n"  # makes the import fail
        "from hikari_shard import _fast\n"
        "import hikari_shard, hikari_shard.shard\n"
        "print('IMPL', _fast.IMPLEMENTATION)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("HIKARI_SHARD_")}
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60, check=False
    )
    assert "IMPL pure" in proc.stdout
    warnings = [line for line in proc.stderr.splitlines() if line.startswith("WARNING hikari_shard ")]
    assert len(warnings) == 1, proc.stderr
    assert "could not be imported" in warnings[0]
    env["HIKARI_SHARD_REQUIRE_EXTENSIONS"] = "1"
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60, check=False
    )
    assert proc.returncode != 0
    assert "ImportError" in proc.stderr or "ModuleNotFoundError" in proc.stderr


def test_compiled_expected_looks_for_extension_modules(tmp_path: pathlib.Path) -> None:
    (tmp_path / "__init__.py").write_text("")
    assert not _fast.compiled_expected(tmp_path)  # a pure install: falling back is only DEBUG
    (tmp_path / f"router{importlib.machinery.EXTENSION_SUFFIXES[0]}").write_bytes(b"")
    assert _fast.compiled_expected(tmp_path)
    assert not _fast.compiled_expected(tmp_path / "missing")
