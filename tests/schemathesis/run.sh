#!/usr/bin/env bash
# schemathesis against /openapi.json: starts the built server on a fresh
# database, seeds real ids through the API (seed.py) and tests every
# operation with a token holding every staff role. Fails on any server error,
# response that does not match its schema, or status code the document does
# not list; prints the run's counts.
#
# usage: tests/schemathesis/run.sh [sqlite|postgres|all]   (default: all)
#   CLEARANCE_BIN      the server binary (default target/debug/clearance)
#   TEST_DATABASE_URL  PostgreSQL server on which a fresh database is created
#                      and dropped afterwards (postgres and all)
#   SCHEMATHESIS_MAX_EXAMPLES  cases per operation and phase (default 50: about
#                              a minute per backend on 2 idle cores)
#   SCHEMATHESIS_SEED          the generator's seed (default: random)
set -euo pipefail
cd "$(dirname "$0")/../.."

backends=${1:-all}
bin=${CLEARANCE_BIN:-target/debug/clearance}
max_examples=${SCHEMATHESIS_MAX_EXAMPLES:-50}
[ -x "$bin" ] || { echo "no server binary at $bin (cargo build first)"; exit 2; }
command -v schemathesis >/dev/null || { echo "schemathesis is not installed (pip install schemathesis)"; exit 2; }

server_pid=""
receiver_pid=""
work=""
database=""
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  if [ -n "$receiver_pid" ]; then kill "$receiver_pid" 2>/dev/null || true; wait "$receiver_pid" 2>/dev/null || true; fi
  if [ -n "$database" ]; then psql "$TEST_DATABASE_URL" -qc "DROP DATABASE IF EXISTS \"$database\" WITH (FORCE)" || true; fi
  if [ -n "$work" ]; then rm -rf "$work"; fi
  server_pid="" receiver_pid="" database="" work=""
}
trap cleanup EXIT

# One backend's run: $1 names it, $2 is its DATABASE_URL (empty: SQLite in
# the data folder).
run_one() {
  local name=$1 database_url=$2
  work=$(mktemp -d)
  local port
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  local base="http://127.0.0.1:$port"
  export CLEARANCE_DATA_DIR="$work/data" CLEARANCE_BIND="127.0.0.1:$port"
  export CLEARANCE_WORKFLOWS=workflows CLEARANCE_CLOCK=manual
  # Every connection the server opens is logged (and checked below); webhooks
  # go only to this machine, whatever URLs schemathesis makes up (any other
  # is refused at subscription, without a DNS lookup).
  export RUST_LOG=warn,clearance::egress=info CLEARANCE_WEBHOOK_TARGETS=loopback
  export CLEARANCE_FAILED_AUTH_PER_MINUTE=0 CLEARANCE_SUPPLIER_REQUESTS_PER_MINUTE=0
  if [ -n "$database_url" ]; then export DATABASE_URL="$database_url"; else unset DATABASE_URL; fi
  mkdir -p "$CLEARANCE_DATA_DIR"
  # The seeded webhook's receiver, on this machine: it takes every delivery.
  local hook_port
  hook_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  python3 tests/schemathesis/receiver.py "$hook_port" &
  receiver_pid=$!
  "$bin" serve >"$work/server.log" 2>&1 &
  server_pid=$!
  for _ in $(seq 1 60); do
    curl -fsS "$base/readyz" >/dev/null 2>&1 && break
    kill -0 "$server_pid" 2>/dev/null || { echo "the server stopped:"; cat "$work/server.log"; return 1; }
    sleep 0.5
  done
  local token
  token=$("$bin" token issue --sub schemathesis --email schemathesis@example.com \
    --role admin --role vendor_manager --role security_reviewer --role privacy_reviewer \
    --role rai_reviewer --role approver --ttl 1h) || return 1
  python3 tests/schemathesis/seed.py "$base" "$token" "$work/schemathesis.toml" \
    "http://127.0.0.1:$hook_port/clearance" || return 1

  local status=0
  schemathesis --config-file "$work/schemathesis.toml" run \
    "$base/openapi.json" \
    --header "Authorization: Bearer $token" \
    --max-examples "$max_examples" \
    ${SCHEMATHESIS_SEED:+--seed "$SCHEMATHESIS_SEED"} \
    --workers 2 \
    --request-timeout 20 \
    --generation-database none \
    --report junit --report-junit-path "$work/junit.xml" \
    --no-color || status=$?
  python3 - "$work/junit.xml" "$name" <<'EOF' || true
import sys
import xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
get = lambda key: sum(int(s.get(key, 0)) for s in suites)
print(f"schemathesis on {sys.argv[2]}: {get('tests')} tests (one per operation, and the "
      f"stateful run), {get('failures')} failed, {get('errors')} errors, {get('skipped')} skipped")
EOF
  if grep -q "panicked" "$work/server.log"; then
    echo "the server panicked:"; grep -A3 "panicked" "$work/server.log" | head -40; status=1
  fi
  # The outbox delivered (every 2 s) while schemathesis ran: every
  # connection it made must have gone to this machine.
  python3 tests/egress_check.py "$work/server.log" || status=1
  mkdir -p target/egress
  grep "clearance::egress" "$work/server.log" >"target/egress/schemathesis-$name.log" || true
  if [ "$status" -ne 0 ]; then
    echo "--- the server's log (last 40 lines) ---"; tail -n 40 "$work/server.log"
  fi
  cleanup
  return "$status"
}

failed=0
if [ "$backends" = sqlite ] || [ "$backends" = all ]; then
  echo "=== schemathesis on SQLite"
  run_one sqlite "" || failed=1
fi
if [ "$backends" = postgres ] || [ "$backends" = all ]; then
  : "${TEST_DATABASE_URL:?set TEST_DATABASE_URL to a PostgreSQL server}"
  echo "=== schemathesis on PostgreSQL"
  database="clearance_schemathesis_$$_$RANDOM"
  psql "$TEST_DATABASE_URL" -qc "CREATE DATABASE \"$database\""
  url=$(python3 -c 'import sys, urllib.parse as u; p = u.urlsplit(sys.argv[1]); print(u.urlunsplit(p._replace(path="/" + sys.argv[2])))' "$TEST_DATABASE_URL" "$database")
  run_one postgres "$url" || failed=1
fi
exit "$failed"
