#!/usr/bin/env bash
# Review transitions benchmark: reviews started through the API, then walked
# through their stages by concurrent clients (bench/transitions.py), on SQLite
# and on a fresh PostgreSQL database (dropped after). Each review takes 13
# changes (answers, submissions, decisions, assignments; see the driver),
# each one transaction that writes the review, its audit event and, for 10 of
# the 13, the email it calls for; each client walks its own reviews, so no
# two clients change the same review. For each backend, client count
# (BENCH_CLIENTS, default "1 8 32") and round (BENCH_ROUNDS, default 3) it
# prints transitions/s, p50 and p99 latency, errors and the server's CPU time
# per transition; then the median and range over rounds, per kind of change,
# and the audit events and emails the walked reviews wrote. The outbox
# worker is off (bench/outbox.sh measures delivery).
# Usage: bench/transitions.sh [reviews per run, default 300]
# PostgreSQL: BENCH_POSTGRES_URL, else TEST_DATABASE_URL, else
# postgres://postgres@127.0.0.1:5432/postgres (its server gets a fresh database).
# BENCH_BIN=<folder> runs the `clearance` binary found there instead of building it.
set -euo pipefail
cd "$(dirname "$0")/.."
per_run=${1:-300}
rounds=${BENCH_ROUNDS:-3}
read -r -a clients <<< "${BENCH_CLIENTS:-1 8 32}"
admin_url=${BENCH_POSTGRES_URL:-${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}}
bin=${BENCH_BIN:-./target/release}
if [ -z "${BENCH_BIN:-}" ]; then
  cargo build --release --quiet --bin clearance
fi
database=clearance_bench_transitions
base=${admin_url%%\?*}
pg_url="${base%/*}/$database${admin_url#"$base"}"
work=$(mktemp -d)
cleanup() {
  kill "${server:-}" 2>/dev/null || true
  psql "$admin_url" -qc "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS $database" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
unset DATABASE_URL SMTP_URL CLEARANCE_CONFIG
export CLEARANCE_DATA_DIR="$work" CLEARANCE_BIND=127.0.0.1:18084 CLEARANCE_WORKFLOWS="$PWD/workflows" \
  CLEARANCE_SCHEDULER=false CLEARANCE_OUTBOX_INTERVAL_MS=0 RUST_LOG=warn CLEARANCE_WEBHOOK_TARGETS=loopback
url=http://127.0.0.1:18084
reviews=$((per_run * rounds * ${#clients[@]}))

sql() { # query on the current backend's database
  if [ -n "${DATABASE_URL:-}" ]; then
    psql "$DATABASE_URL" -Atc "$1"
  else
    python3 -c 'import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute(sys.argv[2]).fetchone()[0])' \
      "$work/clearance.sqlite3" "$1"
  fi
}

walk() { # backend name
  "$bin"/clearance migrate >/dev/null
  "$bin"/clearance serve 2>"$work/serve.log" &
  server=$!
  for _ in $(seq 1 100); do curl -fsS "$url/healthz" >/dev/null 2>&1 && break; sleep 0.2; done
  echo "$1: $(python3 bench/transitions.py seed "$url" "$reviews" "$work/ids")"
  printf '%-11s %7s %11s %13s %11s %11s %6s %12s %12s\n' backend clients transitions transitions/s p50 p99 errors "server CPU" "client CPU"
  local events emails first=0
  events=$(sql "SELECT count(*) FROM audit_events")
  emails=$(sql "SELECT count(*) FROM outbox_messages")
  for round in $(seq 1 "$rounds"); do
    for c in "${clients[@]}"; do
      python3 bench/transitions.py run "$url" "$work/ids" "$first" "$per_run" "$c" "$1" "$work/results" "$server"
      first=$((first + per_run))
    done
  done
  events=$(($(sql "SELECT count(*) FROM audit_events") - events))
  emails=$(($(sql "SELECT count(*) FROM outbox_messages") - emails))
  echo "$1: $events audit events and $emails emails queued by $first reviews' walks" \
    "($((first * 13)) transitions)"
  kill "$server"
  wait "$server" 2>/dev/null || true
}

"$bin"/clearance migrate >/dev/null
token() { "$bin"/clearance token issue --sub "$1" --email "$1@example.com" --role "$2" --ttl 2h; }
VICTOR=$(token victor vendor_manager) VERA=$(token vera vendor_manager)
SAM=$(token sam security_reviewer) PIA=$(token pia privacy_reviewer)
export VICTOR VERA SAM PIA

echo "$per_run reviews per run, 13 transitions each; $reviews reviews per backend, $rounds rounds"
walk SQLite
psql "$admin_url" -qc "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS $database" \
  -c "CREATE DATABASE $database" >/dev/null
export DATABASE_URL=$pg_url
walk PostgreSQL
python3 bench/transitions.py summary "$work/results"
