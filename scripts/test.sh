#!/usr/bin/env bash
# Installs what is missing, builds Voro (release, ASan+UBSan, fuzz) and runs the whole test suite:
# unit and integration tests on both builds, a clang -O3 build, short fuzz runs, and a smoke run of
# the benchmarks.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
"$here/scripts/install-deps.sh"
jobs=$(nproc)
# Strict: a missing peer program (haproxy, nginx, wrk, iperf3, h2load), io_uring missing on a
# kernel that has it, or missing fuzz seeds fail the run instead of being skipped (CI=true does the same).
export VORO_TEST_STRICT=1

echo "== release build =="
"$here/scripts/build.sh" release >/dev/null
(cd "$here/build" && ctest --output-on-failure -j "$jobs" -LE 'bench|fuzz')

echo "== ASan+UBSan build =="
"$here/scripts/build.sh" asan >/dev/null
(cd "$here/build-asan" && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
   ctest --output-on-failure -j "$jobs" -LE 'bench|fuzz')

echo "== clang Release build (-O3, warnings as errors) =="
# Only built: it keeps the code free of the warnings clang's optimiser reports and gcc's does not.
"$here/scripts/build.sh" clang-release >/dev/null

echo "== fuzz targets (bounded runs) =="
"$here/scripts/build.sh" fuzz >/dev/null
(cd "$here/build-fuzz" && ctest --output-on-failure -L fuzz)

echo "== benchmark smoke run =="
(cd "$here/build" && ctest --output-on-failure -L bench-smoke)
