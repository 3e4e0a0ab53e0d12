#!/usr/bin/env bash
# Installs the Debian 12 packages Voro builds, tests and benchmarks with (idempotent; run as root).
set -euo pipefail
packages=(
  build-essential cmake pkg-config git python3 curl iproute2 procps
  liburing-dev libraft-dev libuv1-dev libmsgpack-dev libnghttp2-dev libssl-dev liblz4-dev
  libcmocka-dev clang libclang-rt-14-dev
  haproxy nginx libnginx-mod-stream iperf3 wrk nghttp2-client keepalived
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "voro: installing ${missing[*]}" >&2
  if [ "$(id -u)" -ne 0 ]; then echo "voro: run as root to install packages" >&2; exit 1; fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # The Debian nginx/haproxy packages start system services; benchmarks run their own instances.
  systemctl disable --now nginx haproxy >/dev/null 2>&1 || true
fi
