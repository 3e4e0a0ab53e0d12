#!/usr/bin/env bash
# Configures and builds one flavour of Voro: `build.sh [release|asan|fuzz] [BUILD_DIR]`.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
flavour=${1:-release}
case "$flavour" in
  release) dir=${2:-$here/build};      opts=(-DCMAKE_BUILD_TYPE=RelWithDebInfo) ;;
  asan)    dir=${2:-$here/build-asan}; opts=(-DCMAKE_BUILD_TYPE=Debug -DVORO_SANITIZE=ON) ;;
  fuzz)    dir=${2:-$here/build-fuzz}; opts=(-DCMAKE_BUILD_TYPE=Debug -DVORO_FUZZ=ON -DCMAKE_C_COMPILER=clang) ;;
  *) echo "usage: build.sh [release|asan|fuzz] [dir]" >&2; exit 2 ;;
esac
cmake -S "$here" -B "$dir" "${opts[@]}" >/dev/null
cmake --build "$dir" -j "$(nproc)"
echo "$dir"
