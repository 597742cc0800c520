#!/usr/bin/env bash
# Status benchmark: seeds 10,000 models, then loads over loopback with wrk
#   (a) GET /v1/status/{p}/{m} on random models,
#   (b) POST /v1/status/check with 100 items,
#   (c) a minimal actix-web handler answering the requests of (a) with a JSON
#       body of the same size,
# and prints requests/s, p50, p99, the server's CPU time per request, the
# ratios a/c and b/c, and the server's resident memory. Usage: bench/run.sh [seconds per run, default 10]
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-10}
models=10000
connections=32

command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
cargo build --release --quiet --bin clearance --example baseline

work=$(mktemp -d)
cleanup() { kill "${server:-}" "${baseline:-}" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
# With BENCH_PIN=1 the servers share CPU 0 and wrk has the others, so that
# the load generator does not compete with the server under test for a core
# and its caches; by default every process may run on every core.
server_cpus=() client_cpus=()
if [ "${BENCH_PIN:-0}" = 1 ] && [ "$(nproc)" -ge 2 ]; then
  server_cpus=(taskset -c 0) client_cpus=(taskset -c "1-$(($(nproc) - 1))")
fi
export CLEARANCE_DATA_DIR="$work" CLEARANCE_BIND=127.0.0.1:18080 CLEARANCE_WORKFLOWS="$PWD/workflows" RUST_LOG=warn
./target/release/clearance migrate >/dev/null
python3 bench/seed.py "$work/clearance.sqlite3" "$models"
"${server_cpus[@]}" ./target/release/clearance serve 2>"$work/serve.log" &
server=$!
for _ in $(seq 1 50); do curl -fsS http://127.0.0.1:18080/healthz >/dev/null 2>&1 && break; sleep 0.2; done
TOKEN=$(./target/release/clearance token issue --sub bench --role integrator --ttl 1h)
export TOKEN PROVIDERS=$((models / 100))
size=$(curl -fsS -H "Authorization: Bearer $TOKEN" http://127.0.0.1:18080/v1/status/provider-1/model-1 | wc -c)
"${server_cpus[@]}" ./target/release/examples/baseline 127.0.0.1:18081 "$size" &
baseline=$!
sleep 0.5

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; } # user + system CPU, in clock ticks

run() { # name, url, script, key, server pid
  local before after rps p50 p99 requests cpu
  before=$(ticks "$5")
  "${client_cpus[@]}" wrk -t1 -c"$connections" -d"${duration}s" --latency ${3:+-s "$3"} "$2" > "$work/$1.txt"
  after=$(ticks "$5")
  rps=$(awk '/Requests\/sec/ {print $2}' "$work/$1.txt")
  p50=$(awk '$1 == "50%" {print $2}' "$work/$1.txt")
  p99=$(awk '$1 == "99%" {print $2}' "$work/$1.txt")
  requests=$(awk '/requests in/ {print $1}' "$work/$1.txt")
  cpu=$(awk -v t=$((after - before)) -v n="$requests" -v hz="$(getconf CLK_TCK)" \
    'BEGIN {printf "%.1fus", t / hz * 1e6 / n}')
  printf '%-28s %12s %10s %10s %16s\n' "$1" "$rps" "$p50" "$p99" "$cpu"
  eval "rps_$4=$rps"
}

echo "models: $models, body: $size bytes, $connections connections, ${duration}s per run, ${server_cpus[*]:-unpinned}"
printf '%-28s %12s %10s %10s %16s\n' "load" "requests/s" "p50" "p99" "server CPU/req"
run "(c) minimal handler" http://127.0.0.1:18081 bench/status.lua c "$baseline"
run "(a) GET status" http://127.0.0.1:18080 bench/status.lua a "$server"
run "(b) check, 100 items" http://127.0.0.1:18080 bench/check.lua b "$server"
awk -v a="$rps_a" -v b="$rps_b" -v c="$rps_c" 'BEGIN {
  printf "a/c = %.2f (target >= 0.8)\n", a / c
  printf "b/c = %.3f\n", b / c
  printf "cost of a 100-item check in lookups = %.2f (target <= 3)\n", a / b
}'
echo "server resident memory: $(awk '/VmRSS/ {print $2, $3}' /proc/$server/status) (target < 50 MB)"
