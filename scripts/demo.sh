#!/usr/bin/env bash
# The main job: installs what is missing, builds Voro, and runs one voro node on loopback in
# front of two local backends until Ctrl-C (or VORO_DEMO_SECONDS seconds), then cleans up.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
"$here/scripts/install-deps.sh"
"$here/scripts/build.sh" release >/dev/null
voro="$here/build/voro"

work=$(mktemp -d /tmp/voro-demo.XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

port=${VORO_DEMO_PORT:-8080}
admin=${VORO_DEMO_ADMIN_PORT:-9100}
b1=${VORO_DEMO_BACKEND1_PORT:-9001}
b2=${VORO_DEMO_BACKEND2_PORT:-9002}
python3 "$here/scripts/demo_backend.py" backend1 "$b1" & pids+=($!)
python3 "$here/scripts/demo_backend.py" backend2 "$b2" & pids+=($!)

cat > "$work/voro.conf" <<CONF
# Demo node: one TCP listener on loopback, two backends, round robin with TCP health checks.
[server]
threads = 2
io_model = io_uring
[node]
name = demo-1
admin_address = 127.0.0.1:$admin
[listener web]
mode = tcp
bind = 127.0.0.1:$port
pool = web
[pool web]
algorithm = round_robin
health_interval = 1s
server = backend1 127.0.0.1:$b1
server = backend2 127.0.0.1:$b2
CONF
"$voro" -t "$work/voro.conf"
"$voro" -c "$work/voro.conf" & pids+=($!)
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$admin/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -fsS "http://127.0.0.1:$admin/healthz" >/dev/null

cat <<MSG

Voro is running (config: $work/voro.conf).
  Send traffic:   curl http://127.0.0.1:$port/        (alternates backend1 / backend2)
  Stats (JSON):   curl http://127.0.0.1:$admin/stats
  Prometheus:     curl http://127.0.0.1:$admin/metrics
  Reload config:  kill -HUP ${pids[2]}
  Stop (drain):   Ctrl-C
MSG
for i in 1 2 3 4; do curl -fsS "http://127.0.0.1:$port/demo-request-$i"; done

if [ -n "${VORO_DEMO_SECONDS:-}" ]; then
  sleep "$VORO_DEMO_SECONDS"
else
  wait "${pids[2]}"
fi
