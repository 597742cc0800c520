#!/usr/bin/env bash
# Outbox benchmark: N emails (default 2,000) queued on SQLite and on a fresh
# PostgreSQL database (dropped after), delivered by the server's outbox
# worker to a real SMTP server on loopback (aiosmtpd, tests/smtp_sink.py,
# which parses each message and writes it to a file). The queue is one
# review's real emails (bench/transitions.py walks one) copied N times.
# In each round (BENCH_ROUNDS, default 3) the same queue is delivered twice:
#   (a) by the worker on its default schedule (a pass every 2 s), timed from
#       the server's start until the SMTP server has received every message;
#   (b) by passes run back to back through POST /v1/admin/jobs/outbox/run
#       (the worker's own speed, whatever the schedule).
# Prints messages/s, the time to drain, and the CPU time per message of the
# server and of the SMTP server; then the median and range over rounds.
# Usage: bench/outbox.sh [messages, default 2000]
# PostgreSQL: BENCH_POSTGRES_URL, else TEST_DATABASE_URL, else
# postgres://postgres@127.0.0.1:5432/postgres (its server gets a fresh database).
# BENCH_BIN=<folder> runs the `clearance` binary found there instead of building it.
set -euo pipefail
cd "$(dirname "$0")/.."
messages=${1:-2000}
rounds=${BENCH_ROUNDS:-3}
admin_url=${BENCH_POSTGRES_URL:-${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}}
if ! python3 -c 'import aiosmtpd' 2>/dev/null; then
  python3 -m pip install -q aiosmtpd 2>/dev/null || python3 -m pip install -q --break-system-packages aiosmtpd
fi
bin=${BENCH_BIN:-./target/release}
if [ -z "${BENCH_BIN:-}" ]; then
  cargo build --release --quiet --bin clearance
fi
database=clearance_bench_outbox
base=${admin_url%%\?*}
pg_url="${base%/*}/$database${admin_url#"$base"}"
work=$(mktemp -d)
cleanup() {
  kill "${server:-}" "${sink:-}" 2>/dev/null || true
  psql "$admin_url" -qc "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS $database" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
unset DATABASE_URL CLEARANCE_CONFIG
export CLEARANCE_DATA_DIR="$work" CLEARANCE_BIND=127.0.0.1:18085 CLEARANCE_WORKFLOWS="$PWD/workflows" \
  SMTP_URL=smtp://127.0.0.1:18086 RUST_LOG=warn CLEARANCE_WEBHOOK_TARGETS=loopback
url=http://127.0.0.1:18085

# The SMTP server runs until its standard input closes (or it is killed).
mkfifo "$work/sink.in"
python3 tests/smtp_sink.py 18086 "$work/received" < "$work/sink.in" > "$work/sink.out" &
sink=$!
exec 3> "$work/sink.in"
for _ in $(seq 1 50); do grep -q ready "$work/sink.out" && break; sleep 0.1; done
grep -q ready "$work/sink.out" || { echo "the SMTP server did not start"; exit 1; }

sql() { # statements on the current backend's database; prints the last one's first value
  if [ -n "${DATABASE_URL:-}" ]; then
    psql "$DATABASE_URL" -Atqc "$1"
  else
    python3 - "$work/clearance.sqlite3" "$1" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.execute("PRAGMA busy_timeout = 10000")
with db:
    *first, last = [s for s in sys.argv[2].split(";") if s.strip()]
    for statement in first:
        db.execute(statement)
    row = db.execute(last).fetchone()
print("" if row is None else row[0])
PY
  fi
}

since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN {printf "%.2f", b - a}'; }
received() { find "$work/received" -name '*.json' | wc -l; }
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; } # user + system CPU, in clock ticks
cpu_per_message() { # ticks, messages
  awk -v t="$1" -v n="$2" -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.2f ms", t / hz * 1e3 / n}'
}

serve() { # outbox interval in ms (0: no scheduled delivery)
  CLEARANCE_OUTBOX_INTERVAL_MS=$1 "$bin"/clearance serve 2>>"$work/serve.log" &
  server=$!
  for _ in $(seq 1 100); do curl -fsS "$url/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
}

stop() {
  kill "$server"
  wait "$server" 2>/dev/null || true
}

requeue() {
  sql "UPDATE outbox_messages SET state = 'pending', attempts = 0, sent_at = NULL, locked_until = NULL, last_error = NULL;
       SELECT count(*) FROM outbox_messages WHERE state = 'pending'" >/dev/null
}

deliver() { # backend name
  "$bin"/clearance migrate >/dev/null
  # One review walked through its stages queues its 11 real emails, which
  # are then copied until the queue holds N.
  serve 0
  python3 bench/transitions.py seed "$url" 1 "$work/ids" >/dev/null
  python3 bench/transitions.py run "$url" "$work/ids" 0 1 1 seed "$work/ignored" >/dev/null
  stop
  if [ -n "${DATABASE_URL:-}" ]; then
    sql "INSERT INTO outbox_messages (id, kind, payload, state, attempts, next_attempt_at, created_at)
         SELECT gen_random_uuid()::text, kind, payload, 'pending', 0, next_attempt_at, created_at
         FROM outbox_messages, generate_series(1, $messages) LIMIT $messages - (SELECT count(*) FROM outbox_messages)"
  else
    python3 - "$work/clearance.sqlite3" "$messages" <<'PY'
import itertools, sqlite3, sys, uuid
db = sqlite3.connect(sys.argv[1])
rows = db.execute("SELECT kind, payload, next_attempt_at, created_at FROM outbox_messages").fetchall()
with db:
    db.executemany(
        "INSERT INTO outbox_messages (id, kind, payload, state, attempts, next_attempt_at, created_at)"
        " VALUES (?, ?, ?, 'pending', 0, ?, ?)",
        [(str(uuid.uuid4()), *row) for row in itertools.islice(itertools.cycle(rows), int(sys.argv[2]) - len(rows))],
    )
PY
  fi
  local queued
  queued=$(sql "SELECT count(*) FROM outbox_messages")
  echo "$1: $queued emails queued ($(sql "SELECT avg(length(payload)) FROM outbox_messages" | cut -d. -f1) bytes of payload each on average)"
  for round in $(seq 1 "$rounds"); do
    # (a) The worker on its default schedule.
    requeue
    local before sink_before server_ticks sink_ticks started elapsed
    before=$(received)
    sink_before=$(ticks "$sink")
    started=$(date +%s.%N) SECONDS=0
    serve 2000
    while [ $(($(received) - before)) -lt "$queued" ]; do
      sleep 0.1
      [ "$SECONDS" -lt 3600 ] || { echo "not drained after an hour"; exit 1; }
    done
    elapsed=$(since "$started")
    server_ticks=$(ticks "$server")
    sink_ticks=$(($(ticks "$sink") - sink_before))
    stop
    report "$1" "$round" "(a) scheduled" "$queued" "$elapsed" "$server_ticks" "$sink_ticks"
    # (b) Passes back to back.
    requeue
    serve 0
    before=$(received)
    sink_before=$(ticks "$sink")
    local server_before passes=0
    server_before=$(ticks "$server")
    started=$(date +%s.%N)
    while :; do
      claimed=$(curl -fsS -X POST -H "Authorization: Bearer $ADMIN" "$url/v1/admin/jobs/outbox/run" |
        sed -n 's/.*"claimed":\([0-9]*\).*/\1/p')
      [ "$claimed" = 0 ] && break
      passes=$((passes + 1))
    done
    elapsed=$(since "$started")
    server_ticks=$(($(ticks "$server") - server_before))
    sink_ticks=$(($(ticks "$sink") - sink_before))
    stop
    local got=$(($(received) - before))
    [ "$got" = "$queued" ] || echo "  (b) received $got of $queued"
    report "$1" "$round" "(b) $passes passes" "$queued" "$elapsed" "$server_ticks" "$sink_ticks"
  done
}

report() { # backend round mode messages seconds server-ticks sink-ticks
  local rate
  rate=$(awk -v n="$4" -v s="$5" 'BEGIN {printf "%.0f", n / s}')
  printf '%-11s %5s  %-18s %9s %10.1f s %13s %16s %16s\n' "$1" "$2" "$3" "$4" "$5" "$rate" \
    "$(cpu_per_message "$6" "$4")" "$(cpu_per_message "$7" "$4")"
  echo "$1 ${3:0:3} $rate $5" >> "$work/results"
}

"$bin"/clearance migrate >/dev/null
token() { "$bin"/clearance token issue --sub "$1" --email "$1@example.com" --role "$2" --ttl 2h; }
VICTOR=$(token victor vendor_manager) VERA=$(token vera vendor_manager)
SAM=$(token sam security_reviewer) PIA=$(token pia privacy_reviewer) ADMIN=$(token ada admin)
export VICTOR VERA SAM PIA ADMIN

printf '%-11s %5s  %-18s %9s %12s %13s %16s %16s\n' backend round delivery messages drained messages/s \
  "server CPU/msg" "SMTP srv CPU/msg"
deliver SQLite
psql "$admin_url" -qc "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS $database" \
  -c "CREATE DATABASE $database" >/dev/null
export DATABASE_URL=$pg_url
deliver PostgreSQL
echo "median (range) over rounds:"
sort -k1,2 -s "$work/results" | awk '
  function median(list, n,   i, j, t) {
    for (i = 2; i <= n; i++) for (j = i; j > 1 && list[j - 1] > list[j]; j--) {
      t = list[j]; list[j] = list[j - 1]; list[j - 1] = t
    }
    return n % 2 ? list[(n + 1) / 2] : (list[n / 2] + list[n / 2 + 1]) / 2
  }
  function flush() {
    if (n) printf "  %s %s: %.0f messages/s (%.0f-%.0f), drained in %.1f s (%.1f-%.1f)\n",
      key1, key2 == "(a)" ? "scheduled" : "back to back", median(rate, n), lo_r, hi_r, median(secs, n), lo_s, hi_s
    n = 0
  }
  $1 " " $2 != key1 " " key2 { flush(); key1 = $1; key2 = $2 }
  {
    n++; rate[n] = $3; secs[n] = $4
    if (n == 1 || $3 < lo_r) lo_r = $3; if (n == 1 || $3 > hi_r) hi_r = $3
    if (n == 1 || $4 < lo_s) lo_s = $4; if (n == 1 || $4 > hi_s) hi_s = $4
  }
  END { flush() }'
