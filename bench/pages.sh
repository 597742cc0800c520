#!/usr/bin/env bash
# Console page benchmark: 10,000 models and 2,000 reviews seeded into a
# fresh SQLite database, then each page loaded over loopback by one client
# at a time (wrk, one connection) for a few seconds: My work (of a security
# reviewer with ~200 stages to decide), the portfolio, the providers list
# and a review's page. Prints requests/s, p50 and p99 of each (one
# connection: the latency is the server's time plus loopback).
# Usage: bench/pages.sh [seconds per page, default 10]
# BENCH_BIN=<folder> runs the `clearance` binary found there instead of building it.
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-10}
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
bin=${BENCH_BIN:-./target/release}
if [ -z "${BENCH_BIN:-}" ]; then
  cargo build --release --quiet --bin clearance
fi
work=$(mktemp -d)
trap 'kill ${server:-} 2>/dev/null || true; rm -rf "$work"' EXIT
export CLEARANCE_DATA_DIR="$work" CLEARANCE_BIND=127.0.0.1:18083 CLEARANCE_WORKFLOWS="$PWD/workflows" \
  CLEARANCE_PUBLIC_URL=http://127.0.0.1:18083 CLEARANCE_SCHEDULER=false RUST_LOG=warn
"$bin"/clearance migrate >/dev/null
python3 bench/seed_pages.py "$work/clearance.sqlite3" workflows/model-provider.toml
"$bin"/clearance serve 2>"$work/serve.log" &
server=$!
for _ in $(seq 1 100); do curl -fsS http://127.0.0.1:18083/healthz >/dev/null 2>&1 && break; sleep 0.2; done

# A security reviewer signs in through a development link.
link=$("$bin"/clearance signin-link --sub sam --email sam@example.com --role security_reviewer)
cookie=$(curl -s -o /dev/null -D - -X POST "$link" | sed -n 's/^set-cookie: \(clearance_session=[^;]*\).*/\1/ip')
review=$(sqlite3 "$work/clearance.sqlite3" "SELECT id FROM reviews WHERE state = 'approved' LIMIT 1" 2>/dev/null \
  || python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute(\"SELECT id FROM reviews WHERE state = 'approved' LIMIT 1\").fetchone()[0])" "$work/clearance.sqlite3")

echo "page                 requests/s   p50       p99       (target p99 <= 30 ms)"
for page in / /portfolio /providers "/reviews/$review"; do
  code=$(curl -s -o /dev/null -w '%{http_code}' -H "cookie: $cookie" "http://127.0.0.1:18083$page")
  [ "$code" = 200 ] || { echo "$page answered $code"; exit 1; }
  out=$(wrk -t1 -c1 -d"${duration}s" --latency -H "cookie: $cookie" "http://127.0.0.1:18083$page")
  rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  p50=$(echo "$out" | awk '$1 == "50%" {print $2}')
  p99=$(echo "$out" | awk '$1 == "99%" {print $2}')
  name=$page; [ "${page#/reviews/}" != "$page" ] && name="/reviews/{id}"
  printf '%-20s %-12s %-9s %-9s\n' "$name" "$rps" "$p50" "$p99"
done
