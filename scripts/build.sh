#!/usr/bin/env bash
# Configures and builds one flavour of Voro with warnings as errors:
# `build.sh [release|asan|fuzz|clang-release] [BUILD_DIR]`.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
flavour=${1:-release}
case "$flavour" in
  release) dir=${2:-$here/build};      opts=(-DCMAKE_BUILD_TYPE=RelWithDebInfo) ;;
  asan)    dir=${2:-$here/build-asan}; opts=(-DCMAKE_BUILD_TYPE=Debug -DVORO_SANITIZE=ON) ;;
  fuzz)    dir=${2:-$here/build-fuzz}; opts=(-DCMAKE_BUILD_TYPE=Debug -DVORO_FUZZ=ON -DCMAKE_C_COMPILER=clang) ;;
  # Release (-O3) with clang: the optimiser's warnings differ from gcc's RelWithDebInfo (-O2).
  clang-release) dir=${2:-$here/build-clang}; opts=(-DCMAKE_BUILD_TYPE=Release -DCMAKE_C_COMPILER=clang) ;;
  gcc-release)   dir=${2:-$here/build-gcc-release}; opts=(-DCMAKE_BUILD_TYPE=Release -DCMAKE_C_COMPILER=gcc) ;;
  *) echo "usage: build.sh [release|asan|fuzz|clang-release|gcc-release] [dir]" >&2; exit 2 ;;
esac
cmake -S "$here" -B "$dir" -DVORO_WERROR=ON "${opts[@]}" >/dev/null
cmake --build "$dir" -j "$(nproc)"
echo "$dir"
