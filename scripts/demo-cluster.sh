#!/usr/bin/env bash
# Three-node cluster demo on loopback: 4 gpusim backends of different speeds, three voro nodes,
# 'vorocluster init' / 'join --via', a pushed cluster config and 'vorocluster status'; runs until
# Ctrl-C (or VORO_DEMO_SECONDS seconds), then stops every process it started by PID and removes
# its temp dir. See docs/cluster.md.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
if [ -z "${VORO_DEMO_NO_BUILD:-}" ]; then
  "$here/scripts/install-deps.sh"
  "$here/scripts/build.sh" release >/dev/null
fi
build=${VORO_BUILD_DIR:-$here/build}
voro="$build/voro"
vc="$build/vorocluster"
gpusim="$build/tests/gpusim/gpusim"
for b in "$voro" "$vc" "$gpusim"; do
  [ -x "$b" ] || { echo "demo-cluster: $b is missing: build first (scripts/build.sh release)" >&2; exit 1; }
done

base=${VORO_DEMO_BASE_PORT:-19000}
lport=$((base + 80))           # listener "api" in cluster.conf (every node moves it, below)
work=$(mktemp -d /tmp/voro-cluster-demo.XXXXXX)
pids=()
names=()
cleanup() {
  trap - EXIT INT TERM
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

start() { # start NAME LOGFILE CMD...: runs CMD in the background and remembers its PID
  local name=$1 log=$2
  shift 2
  "$@" >"$log" 2>&1 &
  pids+=($!)
  names+=("$name")
}

wait_http() { # wait_http URL WHAT PID: up to 10 s for URL to answer, failing early if PID died
  for _ in $(seq 1 100); do
    curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
    kill -0 "$3" 2>/dev/null || { echo "demo-cluster: $2 exited; its log:" >&2; return 1; }
    sleep 0.1
  done
  echo "demo-cluster: $2 did not answer $1 within 10 s" >&2
  return 1
}

# Four simulated GPU servers: gpu1 is the fastest, gpu4 four times slower.
slows=(1 1.5 2 4)
for i in 1 2 3 4; do
  port=$((base + i))
  start "gpu$i" "$work/gpu$i.log" "$gpusim" --port "$port" --name "gpu$i" --slow "${slows[$((i - 1))]}" --step-ms 10
  wait_http "http://127.0.0.1:$port/health" "gpusim gpu$i" "${pids[-1]}" || { cat "$work/gpu$i.log" >&2; exit 1; }
done

# The cluster-scoped config, with this demo's ports substituted.
sed -e "s/127\.0\.0\.1:8080/127.0.0.1:$lport/g" \
    -e "s/127\.0\.0\.1:8001/127.0.0.1:$((base + 1))/g" -e "s/127\.0\.0\.1:8002/127.0.0.1:$((base + 2))/g" \
    -e "s/127\.0\.0\.1:8003/127.0.0.1:$((base + 3))/g" -e "s/127\.0\.0\.1:8004/127.0.0.1:$((base + 4))/g" \
    "$here/deploy/cluster/cluster.conf" >"$work/cluster.conf"
"$voro" -t "$work/cluster.conf" >/dev/null

token=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')

# Each node's local file: node1..3.conf with this demo's ports and temp data dirs (its seed
# listener and pool serve until the pushed cluster config replaces them).
for i in 1 2 3; do
  mkdir -p "$work/node$i"
  sed -e "s|/var/lib/voro/node$i|$work/node$i|" \
      -e "s/127\.0\.0\.1:910$i/127.0.0.1:$((base + 100 + i))/" \
      -e "s/127\.0\.0\.1:808$i/127.0.0.1:$((base + 80 + i))/" \
      -e "s/127\.0\.0\.1:700$i/127.0.0.1:$((base + 200 + i))/" \
      -e "s/127\.0\.0\.1:8080/127.0.0.1:$lport/g" \
      -e "s/127\.0\.0\.1:8001/127.0.0.1:$((base + 1))/g" -e "s/127\.0\.0\.1:8002/127.0.0.1:$((base + 2))/g" \
      -e "s/127\.0\.0\.1:8003/127.0.0.1:$((base + 3))/g" -e "s/127\.0\.0\.1:8004/127.0.0.1:$((base + 4))/g" \
      -e "s/change-me-to-a-long-random-string/$token/" \
      -e "s/^io_model = .*/io_model = ${VORO_DEMO_IO_MODEL:-io_uring}/" \
      "$here/deploy/cluster/node$i.conf" >"$work/node$i.conf"
  "$voro" -t "$work/node$i.conf" >/dev/null
  start "node$i" "$work/node$i.log" "$voro" -c "$work/node$i.conf"
  wait_http "http://127.0.0.1:$((base + 100 + i))/healthz" "voro node$i" "${pids[-1]}" || { cat "$work/node$i.log" >&2; exit 1; }
done
admin1=127.0.0.1:$((base + 101))
admin2=127.0.0.1:$((base + 102))
admin3=127.0.0.1:$((base + 103))
export VOROCLUSTER_TOKEN=$token

echo "== vorocluster --admin $admin1 init"
if ! "$vc" --admin "$admin1" init; then
  cat >&2 <<MSG

demo-cluster: 'vorocluster init' failed on node1 ($admin1) (the three nodes and four gpusims run).
See docs/cluster.md; logs were in $work (removed on exit).
MSG
  exit 1
fi
echo "== join node2 and node3 via node1"
"$vc" --admin "$admin2" join --via "$admin1"
"$vc" --admin "$admin3" join --via "$admin1"
echo "== push the cluster config"
"$vc" --admin "$admin1" config push "$work/cluster.conf" --author demo
echo "== one request through each node (every node activates the pushed config)"
for i in 1 2 3; do
  for _ in $(seq 1 50); do
    code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$((base + 80 + i))/v1/chat/completions" \
      -d '{"messages":[{"role":"user","content":"hi"}],"model":"gpusim-8b","max_tokens":4}' || true)
    [ "$code" = 200 ] && break
    sleep 0.1
  done
  printf 'node%s 127.0.0.1:%s -> HTTP %s, served by %s\n' "$i" "$((base + 80 + i))" "$code" \
    "$(curl -s -D - -o /dev/null "http://127.0.0.1:$((base + 80 + i))/v1/chat/completions" \
        -d '{"messages":[{"role":"user","content":"hi"}],"model":"gpusim-8b","max_tokens":4}' | tr -d '\r' |
       awk -F': ' 'tolower($1)=="x-gpusim-name"{print $2}')"
done
echo "== vorocluster status"
"$vc" --admin "$admin1" status

node3_pid=${pids[-1]}
cat <<MSG

A three-node Voro cluster is running (work dir $work, removed on exit).
  Token for vorocluster:  export VOROCLUSTER_TOKEN=$token
  Status:                 $vc --admin $admin1 status
  Send traffic (any node: listener "api" is on 127.0.0.1:$((base + 81)), :$((base + 82)), :$((base + 83))):
    curl -s 127.0.0.1:$((base + 81))/v1/chat/completions -d '{"model":"gpusim-8b","messages":[{"role":"user","content":"hi"}],"max_tokens":5}'
  Push a config:          edit $work/cluster.conf, then
                          $vc --admin $admin1 config push $work/cluster.conf
                          $vc --admin $admin1 config history
                          $vc --admin $admin1 config rollback 1
  Drain a backend:        $vc --admin $admin1 backend drain gpu 127.0.0.1:$((base + 4))
  Kill a node:            kill $node3_pid     (node3; then run status: it shows unreachable)
  Stop:                   Ctrl-C
MSG

if [ -n "${VORO_DEMO_SECONDS:-}" ]; then
  sleep "$VORO_DEMO_SECONDS"
else
  wait "${pids[4]}"
fi
