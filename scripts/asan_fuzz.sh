#!/usr/bin/env bash
# Fuzz the compiled hot paths under AddressSanitizer.
#
#   1. copies the work tree (tracked + untracked-but-not-ignored files, so no stale build products)
#      to a scratch directory;
#   2. builds every extension of setup.py there with -fsanitize=address (the checkout's own in-place
#      build is never touched);
#   3. proves the sanitizer is live: a deliberate one-byte heap overflow in a canary library must be
#      reported, or the run fails (an uninstrumented run would "pass" everything);
#   4. runs tests/test_fuzz.py with many more hypothesis examples, plus the hot-path test files,
#      against the ASan build: python is not ASan-built, so libasan is LD_PRELOADed, leak detection
#      is off (CPython's own allocations would drown it) and PYTHONMALLOC=malloc makes every Python
#      object a malloc block ASan can see (an overflow past a bytes object's end is caught too).
#
# Any invalid read or write aborts the run with ASan's report; the last line says PASS or FAIL.
#
# Usage: scripts/asan_fuzz.sh [extra pytest args]
# Env:   PYTHON                      interpreter with Cython and the test dependencies (default: python3)
#        ASAN_DIR                    scratch directory (default: a new /tmp/hikari-shard-asan.XXXXXX; one
#                                    left by an earlier run is wiped)
#        HIKARI_SHARD_FUZZ_EXAMPLES  hypothesis examples per fuzz test (default: 2000)
#        ASAN_TESTS                  test files to run (default: the fuzz file and the hot-path tests)
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-python3}
WORK=${ASAN_DIR:-$(mktemp -d /tmp/hikari-shard-asan.XXXXXX)}
EXAMPLES=${HIKARI_SHARD_FUZZ_EXAMPLES:-2000}
TESTS=${ASAN_TESTS:-tests/test_fuzz.py tests/test_frames.py tests/test_inflate.py tests/test_scan.py}
LIBASAN=$(gcc -print-file-name=libasan.so)
if [ ! -e "$LIBASAN" ]; then
    echo "FAIL: gcc has no libasan.so (install libasan / gcc with sanitizers)" >&2
    exit 1
fi

echo "==> copying the work tree to $WORK"
if [ -e "$WORK/.asan_fuzz" ]; then
    rm -rf "$WORK"  # a scratch directory of an earlier run: start clean
elif [ -n "$(ls -A "$WORK" 2>/dev/null)" ]; then
    echo "FAIL: $WORK is not empty and not from an earlier run of this script" >&2
    exit 1
fi
mkdir -p "$WORK"
touch "$WORK/.asan_fuzz"
(cd "$REPO" && git ls-files -z --cached --others --exclude-standard) |
    while IFS= read -r -d '' path; do
        if [ -f "$REPO/$path" ]; then
            mkdir -p "$WORK/$(dirname "$path")"
            cp -p "$REPO/$path" "$WORK/$path"
        fi
    done

echo "==> building the compiled modules with -fsanitize=address"
(
    cd "$WORK"
    CC=gcc \
        CFLAGS="-fsanitize=address -fno-omit-frame-pointer -O1 -g" \
        LDFLAGS="-fsanitize=address" \
        "$PYTHON" setup.py -q build_ext --inplace --force >"$WORK/build.log" 2>&1 ||
        { cat "$WORK/build.log" >&2; echo "FAIL: the ASan build failed" >&2; exit 1; }
)
instrumented=""
for so in "$WORK"/src/hikari_shard/_fastpath/*.so; do
    if ! nm -D "$so" | grep __asan_ >/dev/null; then  # not grep -q: with pipefail, nm's SIGPIPE would fail it
        echo "FAIL: $so is not instrumented" >&2
        exit 1
    fi
    instrumented="$instrumented $(basename "$so")"
done
echo "    instrumented:$instrumented"

# Only the python processes get the sanitizer runtime (not cat, gcc, ...). ASan needs no `ulimit -v`.
ASAN=(env "LD_PRELOAD=$LIBASAN" PYTHONMALLOC=malloc
    "ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:halt_on_error=1:detect_stack_use_after_return=1:strict_string_checks=1")

echo "==> canary: ASan must catch a one-byte heap overflow"
cat >"$WORK/canary.c" <<'EOF'
#include <stdlib.h>
int overflow(void) {
    volatile char *p = malloc(8);
    p[8] = 1;  /* one past the end */
    int r = p[0];
    free((void *)p);
    return r;
}
EOF
gcc -fsanitize=address -g -shared -fPIC -o "$WORK/canary.so" "$WORK/canary.c"
{ "${ASAN[@]}" "$PYTHON" -c "import ctypes, sys; ctypes.CDLL(sys.argv[1]).overflow()" "$WORK/canary.so" \
    >"$WORK/canary.log" 2>&1; } 2>/dev/null || true  # it aborts, as it should; keep bash's "Aborted" quiet
if grep -q "heap-buffer-overflow" "$WORK/canary.log"; then
    echo "    caught: $(grep -m1 -o 'heap-buffer-overflow on address [0-9a-fx]*' "$WORK/canary.log")"
else
    cat "$WORK/canary.log" >&2
    echo "FAIL: the canary overflow was not reported: ASan is not active" >&2
    exit 1
fi

echo "==> $TESTS with HIKARI_SHARD_FUZZ_EXAMPLES=$EXAMPLES against the ASan build"
cd "$WORK"
# shellcheck disable=SC2086 # TESTS is a list of paths
"${ASAN[@]}" HIKARI_SHARD_REQUIRE_EXTENSIONS=1 PYTHONPATH="$WORK/src" \
    "$PYTHON" -c "import hikari_shard._fastpath.frames as m, sys; assert m.__file__.startswith(sys.argv[1]), m.__file__" \
    "$WORK" || { echo "FAIL: the tests would not import the ASan build" >&2; exit 1; }
set +e
# shellcheck disable=SC2086
"${ASAN[@]}" HIKARI_SHARD_REQUIRE_EXTENSIONS=1 HIKARI_SHARD_FUZZ_EXAMPLES="$EXAMPLES" PYTHONPATH="$WORK/src" \
    "$PYTHON" -m pytest -p no:cacheprovider -q -x $TESTS "$@" 2>&1 | tee "$WORK/pytest.log"
status=${PIPESTATUS[0]}
set -e

if grep -q "ERROR: AddressSanitizer" "$WORK/pytest.log"; then
    echo "FAIL: AddressSanitizer reported an invalid memory access (see $WORK/pytest.log)" >&2
    exit 1
fi
if [ "$status" -ne 0 ]; then
    echo "FAIL: the tests failed under ASan (exit $status, see $WORK/pytest.log)" >&2
    exit "$status"
fi
echo "PASS: no invalid memory access under AddressSanitizer ($WORK)"
