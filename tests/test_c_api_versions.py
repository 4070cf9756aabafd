"""The version guard of the C-API inflators (``hikari_shard._c_api``) and the fallback it causes.

``zlibng`` declares zlib-ng's ``zng_stream`` field for field and ``zng_inflateInit2`` checks no
version or struct size, so the only protection against a zlib-ng whose layout changed is to call
its C API only on the major.minor versions the tests ran on.  The check is a pure function, tested
here on its own; one end-to-end run (in a subprocess, with the tested range moved away from the
installed library) shows the compiled inflators then fall back, say so once at WARNING and in
``python -m hikari_shard info``, and still inflate.
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import pytest
from zlib_ng import zlib_ng

from hikari_shard import _c_api

try:
    from compression import zstd  # type: ignore[import-not-found]
except ImportError:
    try:
        from backports import zstd  # type: ignore[no-redef]
    except ImportError:
        zstd = None


@pytest.mark.parametrize(
    ("version", "expected"),
    [("2.3.3", (2, 3)), ("2.1.5", (2, 1)), ("2.2.0.1", (2, 2)), ("10.20-develop", (10, 20)), ("2", None), ("", None)],
)
def test_major_minor(version: str, expected: tuple[int, int] | None) -> None:
    assert _c_api.major_minor(version) == expected


@pytest.mark.parametrize("version", ["2.1.0", "2.1.5", "2.2.4", "2.3.0", "2.3.3", "2.3.99"])
def test_zlibng_versions_inside_the_tested_range_pass(version: str) -> None:
    assert _c_api.refusal("zlib-ng", version, _c_api.ZLIBNG_TESTED) is None
    _c_api.check_zlibng(version)


@pytest.mark.parametrize("version", ["2.0.7", "2.4.0", "3.0.0", "1.2.13", "2", "two.three", ""])
def test_zlibng_versions_outside_it_are_refused(version: str) -> None:
    reason = _c_api.refusal("zlib-ng", version, _c_api.ZLIBNG_TESTED)
    assert reason == f"zlib-ng {version} is outside the versions this build was tested with (2.1 to 2.3)"
    with pytest.raises(_c_api.UntestedLibraryError, match="outside the versions this build was tested with"):
        _c_api.check_zlibng(version)


def test_the_refusal_is_an_import_error() -> None:
    """So a compiled module that raises it at import is simply not used where nothing expects it."""
    assert issubclass(_c_api.UntestedLibraryError, ImportError)


@pytest.mark.parametrize(("number", "version"), [(10500, "1.5.0"), (10507, "1.5.7"), (10599, "1.5.99")])
def test_libzstd_versions_inside_the_tested_range_pass(number: int, version: str) -> None:
    assert _c_api.check_libzstd(number) == version


@pytest.mark.parametrize(("number", "version"), [(10407, "1.4.7"), (10600, "1.6.0"), (20000, "2.0.0"), (0, "0.0.0")])
def test_libzstd_versions_outside_it_are_refused(number: int, version: str) -> None:
    with pytest.raises(_c_api.UntestedLibraryError, match=rf"^libzstd {version} is outside .* \(1\.5 to 1\.5\)$"):
        _c_api.check_libzstd(number)


def test_the_installed_libraries_are_inside_the_tested_ranges() -> None:
    """What this environment installed is what the ranges must cover (CI runs the lowest and newest wheels)."""
    assert _c_api.refusal("zlib-ng", zlib_ng.ZLIBNG_RUNTIME_VERSION, _c_api.ZLIBNG_TESTED) is None
    if zstd is not None:
        major, minor, patch = zstd.zstd_version_info
        assert _c_api.check_libzstd(major * 10000 + minor * 100 + patch) == zstd.zstd_version


FALLBACK_SCRIPT = """
import logging, runpy, sys, zlib
records = []
class Keep(logging.Handler):
    def emit(self, record):
        records.append(record)
logging.getLogger().addHandler(Keep())
import importlib.util, pathlib
# hikari_shard's own import already loads the inflators: set up _c_api (a plain module) before it.
(location,) = importlib.util.find_spec("hikari_shard").submodule_search_locations
spec = importlib.util.spec_from_file_location("hikari_shard._c_api", pathlib.Path(location, "_c_api.py"))
_c_api = sys.modules["hikari_shard._c_api"] = importlib.util.module_from_spec(spec)
spec.loader.exec_module(_c_api)
_c_api.ZLIBNG_TESTED = ((9, 0), (9, 1))    # what a zlib-ng release with another zng_stream would look like
_c_api.LIBZSTD_TESTED = ((9, 0), (9, 1))
assert "hikari_shard._fastpath.zlibng" not in sys.modules
from hikari_shard._fastpath import inflate
assert inflate.__file__.endswith((".so", ".pyd")), inflate.__file__
warnings = [r.getMessage() for r in records if r.levelno == logging.WARNING]
print("WARNINGS", len(warnings))
for message in warnings:
    print("WARNING", message)
print("STREAM", inflate.STREAM_DECOMPRESSOR)
print("ZSTD", inflate.ZSTD_DECOMPRESSOR)
compressor = zlib.compressobj()
frames = [compressor.compress(m) + compressor.flush(zlib.Z_SYNC_FLUSH) for m in (b'{"op":11}', b"x" * 3_000_000)]
inflator = inflate.ZlibStreamInflator()
assert [inflator.feed(frame) for frame in frames] == [b'{"op":11}', b"x" * 3_000_000]
if inflate.zstd_available():
    from hikari_shard._pure.inflate import _zstd as zstd
    zcompressor = zstd.ZstdCompressor()
    frame = zcompressor.compress(b'{"op":1}') + zcompressor.flush(zstd.ZstdCompressor.FLUSH_BLOCK)
    assert inflate.ZstdStreamInflator().feed(frame) == b'{"op":1}'
sys.argv = ["hikari_shard", "info"]
try:
    runpy.run_module("hikari_shard", run_name="__main__")
except SystemExit as ex:
    assert not ex.code, ex.code
"""


def test_an_untested_library_version_falls_back_loudly() -> None:
    """End to end: the compiled inflators use the modules' own objects, one WARNING each, ``info`` says why."""
    pytest.importorskip("hikari_shard._fastpath.inflate")
    for name in ("zlibng", "libzstd"):
        try:
            __import__(f"hikari_shard._fastpath.{name}")
        except ImportError as ex:  # Windows: no C API to refuse in the first place
            pytest.skip(f"hikari_shard._fastpath.{name} does not import here: {ex}")
    env = {key: value for key, value in os.environ.items() if key != "HIKARI_SHARD_NO_EXTENSIONS"}
    done = subprocess.run(
        [sys.executable, "-c", FALLBACK_SCRIPT], capture_output=True, text=True, check=False, timeout=60, env=env
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    zlib_reason = (
        f"zlib-ng {zlib_ng.ZLIBNG_RUNTIME_VERSION} is outside the versions this build was tested with (9.0 to 9.1)"
    )
    expected_warnings = [f"WARNING not calling zlibng's C API, falling back to its Python module: {zlib_reason}"]
    stream = f"zlib_ng.zlib_ng.decompressobj (C API not used: {zlib_reason})"
    assert f"STREAM {stream}" in lines
    assert f"zlib-stream inflated by: {stream}" in lines  # python -m hikari_shard info
    if zstd is not None:
        version = ".".join(map(str, zstd.zstd_version_info))
        zstd_reason = f"libzstd {version} is outside the versions this build was tested with (9.0 to 9.1)"
        expected_warnings.append(
            f"WARNING not calling libzstd's C API, falling back to its Python module: {zstd_reason}"
        )
        zstd_line = f"{zstd.__name__}.ZstdDecompressor (C API not used: {zstd_reason})"
        assert f"ZSTD {zstd_line}" in lines
        assert f"zstd-stream inflated by: {zstd_line}" in lines
    assert [line for line in lines if line.startswith("WARNING")] == [
        f"WARNINGS {len(expected_warnings)}",
        *expected_warnings,
    ]


EXPECT_C_API = os.environ.get("HIKARI_SHARD_EXPECT_C_API")
"""Set by the wheels workflow per OS: ``1`` where the C-API inflators must run, ``0`` where the fallback must."""


@pytest.mark.skipif(EXPECT_C_API is None, reason="HIKARI_SHARD_EXPECT_C_API is set by the wheels workflow")
def test_the_inflaters_this_platform_must_run() -> None:
    """The wheels workflow's per-OS check: zlib-stream (and zstd-stream with backports.zstd) by the C APIs or not."""
    from hikari_shard._fastpath import inflate

    expected = EXPECT_C_API == "1"
    assert inflate.STREAM_DECOMPRESSOR.endswith("(C API)") is expected, inflate.STREAM_DECOMPRESSOR
    if not expected:
        assert inflate.STREAM_DECOMPRESSOR == "zlib_ng.zlib_ng.decompressobj", inflate.STREAM_DECOMPRESSOR
    # Python 3.14's own _zstd may link libzstd in other ways: only backports.zstd's wheels are known.
    if zstd is not None and zstd.__name__ == "backports.zstd":
        assert inflate.ZSTD_DECOMPRESSOR is not None
        assert inflate.ZSTD_DECOMPRESSOR.endswith("(C API)") is expected, inflate.ZSTD_DECOMPRESSOR


def test_the_wheels_workflow_sets_the_expectation_per_os() -> None:
    """Every wheel leg says which inflater its tests must find, and keeps the extensions required."""
    yaml = pytest.importorskip("yaml")
    root = pathlib.Path(__file__).resolve().parent.parent
    workflow = yaml.safe_load((root / ".github" / "workflows" / "wheels.yml").read_text(encoding="utf-8"))
    job = workflow["jobs"]["wheels"]
    (step,) = [step for step in job["steps"] if str(step.get("uses", "")).startswith("pypa/cibuildwheel")]
    environment = step["env"]["CIBW_TEST_ENVIRONMENT"]  # GitHub fills in the matrix value
    assert environment == "HIKARI_SHARD_REQUIRE_EXTENSIONS=1 HIKARI_SHARD_EXPECT_C_API=${{ matrix.c_api }}"
    expected = {leg["os"]: leg["c_api"] for leg in job["strategy"]["matrix"]["include"]}
    assert {os_: value for os_, value in expected.items() if os_.startswith("windows")} == {"windows-latest": "0"}
    assert all(value == "1" for os_, value in expected.items() if os_.startswith(("ubuntu", "macos"))), expected
    assert len(expected) == 5, expected
