#!/usr/bin/env bash
# Single-node demo: installs what is missing, builds Voro, and runs one voro node on loopback as
# an L7 gateway (gpu_aware, model routing) in front of four simulated GPU servers of different
# speeds, plus an L4 listener; runs until Ctrl-C (or VORO_DEMO_SECONDS seconds), then stops
# every process it started (by PID) and removes its temp dir.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
"$here/scripts/install-deps.sh"
"$here/scripts/build.sh" release >/dev/null
voro="$here/build/voro"
gpusim="$here/build/tests/gpusim/gpusim"

base=${VORO_DEMO_BASE_PORT:-18000}
api=$((base + 80)) l4=$((base + 81)) admin=$((base + 100))
work=$(mktemp -d /tmp/voro-demo.XXXXXX)
pids=()
cleanup() {
  trap - EXIT INT TERM
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_http() { # URL PID WHAT
  for _ in $(seq 1 100); do
    curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
    kill -0 "$2" 2>/dev/null || { echo "demo: $3 exited" >&2; return 1; }
    sleep 0.1
  done
  echo "demo: $3 did not answer $1" >&2
  return 1
}

# Two fast GPUs, one at half speed, one at quarter speed (the benchmark's farm).
steps=(15 15 22 32) batches=(24 24 16 10) prefills=(5 5 10 16)
models=("llama-3-8b,lora:llama-3-8b-sql" "llama-3-8b" "llama-3-8b,mistral-7b" "mistral-7b")
for i in 0 1 2 3; do
  port=$((base + 1 + i))
  "$gpusim" --port "$port" --name "gpu$((i + 1))" --models "${models[$i]}" --step-ms "${steps[$i]}" \
    --max-batch "${batches[$i]}" --prefill-ms "${prefills[$i]}" >"$work/gpu$((i + 1)).log" 2>&1 &
  pids+=($!)
  wait_http "http://127.0.0.1:$port/health" "${pids[-1]}" "gpusim gpu$((i + 1))"
done

cat >"$work/voro.conf" <<CONF
# Demo node: an OpenAI-compatible gateway routing by model with gpu_aware balancing,
# and a plain TCP listener to the same servers.
[server]
threads = 2
io_model = io_uring
[node]
name = demo-1
admin_address = 127.0.0.1:$admin
[listener api]
mode = http
bind = 127.0.0.1:$api
pool = gpus
[listener raw]
mode = tcp
bind = 127.0.0.1:$l4
pool = gpus
[route openai]
path_prefix = /v1/
model = *
pool = gpus
[pool gpus]
algorithm = gpu_aware
health_check = http
health_path = /health
health_interval = 1s
metrics_interval = 500ms
server = gpu1 127.0.0.1:$((base + 1)) models=${models[0]} metrics=http://127.0.0.1:$((base + 1))/metrics
server = gpu2 127.0.0.1:$((base + 2)) models=${models[1]} metrics=http://127.0.0.1:$((base + 2))/metrics
server = gpu3 127.0.0.1:$((base + 3)) models=${models[2]} metrics=http://127.0.0.1:$((base + 3))/metrics
server = gpu4 127.0.0.1:$((base + 4)) models=${models[3]} metrics=http://127.0.0.1:$((base + 4))/metrics
CONF
"$voro" -t "$work/voro.conf"
"$voro" -c "$work/voro.conf" >"$work/voro.log" 2>&1 &
pids+=($!)
vpid=${pids[-1]}
wait_http "http://127.0.0.1:$admin/healthz" "$vpid" "voro"

cat <<MSG

Voro is running (config: $work/voro.conf, log: $work/voro.log).
  Chat:         curl -s http://127.0.0.1:$api/v1/chat/completions -d '{"messages":[{"role":"user","content":"hi"}],"model":"llama-3-8b","max_tokens":8}'
  Streaming:    curl -sN http://127.0.0.1:$api/v1/chat/completions -d '{"model":"mistral-7b","stream":true,"messages":[{"role":"user","content":"hi"}],"max_tokens":8}'
  Unknown model (404): curl -s http://127.0.0.1:$api/v1/chat/completions -d '{"model":"gpt-17","messages":[]}'
  Stats (JSON): curl -s http://127.0.0.1:$admin/stats
  Prometheus:   curl -s http://127.0.0.1:$admin/metrics
  Reload:       kill -HUP $vpid       Stop (drain): Ctrl-C
MSG
for m in llama-3-8b llama-3-8b-sql mistral-7b; do
  printf '%-16s -> ' "$m"
  curl -s -D - -o /dev/null "http://127.0.0.1:$api/v1/chat/completions" \
    -d "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"model\":\"$m\",\"max_tokens\":4}" | grep -i '^x-gpusim-name' || echo "no answer"
done

if [ -n "${VORO_DEMO_SECONDS:-}" ]; then
  sleep "$VORO_DEMO_SECONDS"
else
  wait "$vpid"
fi
