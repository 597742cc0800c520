#!/usr/bin/env bash
# SLA sweep benchmark: 100,000 reviews (500,000 stages, the open ones not yet
# due), then the sweep run five times through POST /v1/admin/jobs/sla-sweep/run
# on SQLite and on PostgreSQL; prints each run's duration and the median.
# Usage: bench/sla_sweep.sh [reviews, default 100000]
# PostgreSQL: BENCH_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/postgres).
set -euo pipefail
cd "$(dirname "$0")/.."
reviews=${1:-100000}
admin_url=${BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}
cargo build --release --quiet --bin clearance
work=$(mktemp -d)
trap 'kill ${server:-} 2>/dev/null || true; psql "$admin_url" -qc "DROP DATABASE IF EXISTS clearance_bench_sla" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
export CLEARANCE_DATA_DIR="$work" CLEARANCE_BIND=127.0.0.1:18082 CLEARANCE_WORKFLOWS="$PWD/workflows" CLEARANCE_SCHEDULER=false RUST_LOG=warn

sweep() { # backend name
  ./target/release/clearance serve 2>"$work/serve.log" &
  server=$!
  for _ in $(seq 1 100); do curl -fsS http://127.0.0.1:18082/healthz >/dev/null 2>&1 && break; sleep 0.2; done
  local token durations
  token=$(./target/release/clearance token issue --sub bench --role admin --ttl 1h)
  durations=$(for _ in 1 2 3 4 5; do
    curl -fsS -X POST -H "Authorization: Bearer $token" http://127.0.0.1:18082/v1/admin/jobs/sla-sweep/run |
      python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["duration_ms"], d["result"]["overdue"])'
  done)
  echo "$1: runs (ms, overdue): $(echo "$durations" | awk '{printf "%s(%s) ", $1, $2}')"
  echo "$1: median $(echo "$durations" | awk '{print $1}' | sort -n | sed -n 3p) ms (target < 50 ms)"
  kill "$server"; wait "$server" 2>/dev/null || true
}

./target/release/clearance migrate >/dev/null
python3 bench/seed_reviews.py "$work/clearance.sqlite3" "$reviews"
sweep SQLite

psql "$admin_url" -qc "DROP DATABASE IF EXISTS clearance_bench_sla" -c "CREATE DATABASE clearance_bench_sla" >/dev/null
export DATABASE_URL="${admin_url%/*}/clearance_bench_sla"
./target/release/clearance migrate >/dev/null
psql "$DATABASE_URL" -q <<SQL
INSERT INTO providers (id, slug, name, contacts, version, created_at, updated_at)
  VALUES ('p', 'bench', 'Bench', '[]', 1, now(), now());
INSERT INTO reviews (id, provider_id, kind, workflow_id, workflow_version, workflow_digest, state, tier, started_by, version, created_at, updated_at)
  SELECT 'r' || i, 'p', 'initial', 'model-provider', 1, 'seeded',
         CASE WHEN i % 5 < 2 THEN 'in_progress' ELSE 'approved' END, 'medium', 'seed', 1, now(), now()
  FROM generate_series(1, $reviews) AS i;
INSERT INTO review_stages (id, review_id, stage_key, state, due_at, escalation_level, created_at, updated_at)
  SELECT 's' || i || '-' || n, 'r' || i, 'stage-' || n,
         CASE WHEN i % 5 < 2 THEN (CASE WHEN n < 3 THEN 'awaiting_answers' ELSE 'blocked' END) ELSE 'approved' END,
         CASE WHEN i % 5 < 2 AND n < 3 THEN timestamp '2027-06-01' ELSE timestamp '2026-10-01' END, 0, now(), now()
  FROM generate_series(1, $reviews) AS i, generate_series(0, 4) AS n;
ANALYZE;
SQL
echo "seeded $reviews reviews on PostgreSQL"
sweep PostgreSQL
