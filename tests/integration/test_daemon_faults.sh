#!/usr/bin/env bash
# Integration test of taskslapsd under faults: SIGKILL in the middle of a
# throttled backfill and a restart (the run completes, every step is in the
# ledger once, every row was updated once); PostgreSQL restarted in the
# middle of a run (the daemon says it lost the database, reconnects and
# completes); two daemons on one database (one applies, the other is
# `standby`, and takes over when the first stops).
#
#   bash tests/integration/test_daemon_faults.sh   (TS_VERBOSE=1 prints passes)

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/lib/daemon.sh
. "$here/../lib/daemon.sh"
daemon_env_start

ROWS=30000

# big_table: ROWS rows in big, with an update counter: a BEFORE UPDATE
# trigger adds one to upd on every update of a row, so a batch applied
# twice shows.
big_table() {
    q "CREATE TABLE big (id bigint PRIMARY KEY, v int NOT NULL DEFAULT 0, upd int NOT NULL DEFAULT 0);
       INSERT INTO big (id) SELECT g FROM generate_series(1, $ROWS) g;
       CREATE FUNCTION count_update() RETURNS trigger LANGUAGE plpgsql AS \$\$
       BEGIN NEW.upd := OLD.upd + 1; RETURN NEW; END \$\$;
       CREATE TRIGGER big_count BEFORE UPDATE ON big FOR EACH ROW EXECUTE FUNCTION count_update()" >/dev/null &&
        q "VACUUM ANALYZE big" >/dev/null || {
        echo "setup failed" >&2
        exit 1
    }
}

# backfill_plan RATE: three steps, the middle one a backfill paced to RATE rows/s.
backfill_plan() {
    cat <<EOF
title: Flag every row
reason: a throttled backfill between two DDL steps
waves:
  - name: expand
    steps:
      - { op: add_column, table: big, name: flag, type: int }
  - name: backfill
    limits: { rows_per_second: $1, batch_size: 500 }
    steps:
      - { op: backfill_sql, sql: "UPDATE big SET v = v + 1, flag = id % 7 WHERE flag IS NULL" }
  - name: validate
    steps:
      - { op: set_not_null, table: big, column: flag }
EOF
}

# exactly_once PLAN: the checks after an interrupted run.
exactly_once() {
    assert_sql "$1: every step in the ledger exactly once" "3|3" \
        "SELECT count(*), count(DISTINCT step_sha) FROM taskslaps.step_ledger WHERE plan_id = '$1'"
    assert_sql "$1: one step.ok per step" "3|1" \
        "SELECT count(*), max(n) FROM (SELECT step_sha, count(*) n FROM taskslaps.events
           WHERE plan_id = '$1' AND type IN ('step.ok', 'step.already_present') GROUP BY step_sha) x"
    assert_sql "$1: every row updated exactly once" "$ROWS|1|1|0" \
        "SELECT count(*), min(upd), max(upd), count(*) FILTER (WHERE flag IS DISTINCT FROM id % 7) FROM big"
    assert_sql "$1: the column is NOT NULL" t "SELECT taskslaps.column_not_null('big', 'flag')"
    assert_sql "$1: the backfill's checkpoint covers every row" "$ROWS" \
        "SELECT rows_done FROM taskslaps.backfill_progress"
}

# ------------------------------------------------------------------
section "status during the first pass"
newdb first1
big_table
repo_new fr
put_plan fr main dev@example.com 0001-flag.yaml < <(backfill_plan 6000)
put_plan fr main dev@example.com 0002-after.yaml <<'EOF'
title: After the backfill
reason: a plan that waits behind it
steps:
  - { op: add_column, table: big, name: later, type: int }
EOF
daemon_conf first1 "$W/fr.git"
daemon_start first1 || exit 1
assert_status "mid-backfill, the running plan and the one after it are listed; sync is applying" first1 \
    '(s.get("running") or {}).get("wave") == "backfill" and pst("0001-flag") == "running" and pst("0002-after") == "pending" and s["sync"] == "applying"' 30 20
ctl first1 status
assert_match "status says sync applying" "sync +applying" "$OUT"
assert_contains "... and what it applies" "applying 0001-flag (plan 1 of 2 at the tip)" "$OUT"
assert_contains "... and lists the plans" "Plans (2)" "$OUT"
assert_status "when the pass is over: both applied, in sync" first1 \
    'pst("0001-flag") == "applied" and pst("0002-after") == "applied" and s["sync"] == "in_sync" and s["state"] == "idle"' 60
daemon_stop first1
assert_eq "it exits 0" 0 "$DRC"

# ------------------------------------------------------------------ 6
section "kill -9 mid-backfill"
newdb kill1
big_table
repo_new kr
put_plan kr main dev@example.com 0001-flag.yaml < <(backfill_plan 6000)
daemon_conf kill1 "$W/kr.git"
daemon_start kill1 || exit 1
assert_status "the backfill is running" kill1 \
    '(s.get("running") or {}).get("wave") == "backfill" and (s["running"].get("rows_done") or 0) > 0' 30 20
daemon_kill kill1
done_at_kill=$(q "SELECT rows_done FROM taskslaps.backfill_progress")
[ -z "${TS_VERBOSE:-}" ] || echo "     killed at $done_at_kill of $ROWS rows"
assert_sql "killed mid-backfill: the first step done, the backfill not" "1|t" \
    "SELECT count(*), bool_and(op = 'add_column') FROM taskslaps.step_ledger"
assert_ok "... with part of the rows done ($done_at_kill)" test "${done_at_kill:-0}" -gt 0 -a "${done_at_kill:-0}" -lt "$ROWS"
assert_sql "no row updated twice so far" 0 "SELECT count(*) FROM big WHERE upd > 1"
assert_ok "kill -9 leaves the control socket behind" test -S "$W/kill1.sock"
daemon_start kill1 || exit 1
ctl kill1 status --json
assert_contains "the restarted daemon took the stale socket over" "\"pid\":$(daemon_pid kill1)," "$(tr -d ' \t\n' <<<"$OUT")"
assert_status "after a restart the plan completes" kill1 "pst('0001-flag') == 'applied' and s['sync'] == 'in_sync'" 60
assert_sql "the backfill resumed from its checkpoint" 1 \
    "SELECT count(*) FROM taskslaps.events WHERE type = 'step.progress' AND message LIKE 'resuming the backfill from its checkpoint%'"
exactly_once 0001-flag
daemon_stop kill1
assert_eq "exit 0" 0 "$DRC"
assert_eq "no advisory lock left" 0 "$(advisory_locks)"

section "SIGTERM mid-backfill"
newdb term1
big_table
repo_new tr
put_plan tr main dev@example.com 0001-flag.yaml < <(backfill_plan 6000)
daemon_conf term1 "$W/tr.git"
daemon_start term1 || exit 1
assert_status "the backfill is running" term1 \
    '(s.get("running") or {}).get("wave") == "backfill" and (s["running"].get("rows_done") or 0) > 0' 30 20
t0=$(ms_now)
daemon_stop term1 TERM 30
stop_ms=$(($(ms_now) - t0))
assert_eq "SIGTERM mid-backfill: exit 0" 0 "$DRC"
assert_le "... after the current batch, not the whole backfill (${stop_ms} ms)" 3000 "$stop_ms"
assert_eq "STOPPING=1 sent" 1 "$(notify_since term1 | grep -c '^STOPPING=1$')"
assert_eq "the runner lock is released" 0 "$(advisory_locks)"
assert_sql "the backfill is not done, its checkpoint kept" "1|t" \
    "SELECT count(*), (SELECT rows_done BETWEEN 1 AND $ROWS - 1 FROM taskslaps.backfill_progress) FROM taskslaps.step_ledger"
assert_sql "no row updated twice" 0 "SELECT count(*) FROM big WHERE upd > 1"
assert_sql "the stop is recorded as plan.interrupted, not as an operator's abort" \
    "1|0|pending" \
    "SELECT count(*) FILTER (WHERE type = 'plan.interrupted' AND message LIKE 'interrupted by a stop of the runner after % rows (checkpoint kept)'),
            count(*) FILTER (WHERE message LIKE '%aborted by an operator%'),
            (SELECT status FROM taskslaps.plans)
       FROM taskslaps.events"
daemon_start term1 || exit 1
assert_status "started again, the plan completes" term1 "pst('0001-flag') == 'applied'" 60
exactly_once 0001-flag
daemon_stop term1
assert_eq "exit 0" 0 "$DRC"

# ------------------------------------------------------------------ 7
section "PostgreSQL restarted mid-run"
newdb restart1
big_table
repo_new rr
put_plan rr main dev@example.com 0001-flag.yaml < <(backfill_plan 6000)
daemon_conf restart1 "$W/rr.git"
daemon_start restart1 || exit 1
assert_status "the backfill is running" restart1 \
    '(s.get("running") or {}).get("wave") == "backfill" and (s["running"].get("rows_done") or 0) > 0' 30 20
# every change of database.connected, as status shows it
start_bg watcher python3 -c '
import json, subprocess, sys, time
last = None
while True:
    p = subprocess.run([sys.argv[1], "--socket", sys.argv[2], "status", "--json"], capture_output=True, text=True)
    try:
        c = json.loads(p.stdout)["database"]["connected"]
    except Exception:
        c = "no answer"
    if c != last:
        print(c, flush=True)
        last = c
    time.sleep(0.02)' "$TASKSLAPSCTL" "$W/restart1.sock"
WATCHER=$BG_PID
wait_file "$W/watcher.out" True 10
if pg_restart "$_env_pgdir"; then pass "PostgreSQL restarted"; else fail "PostgreSQL restarted"; fi
assert_status "the plan completes after the restart" restart1 \
    "pst('0001-flag') == 'applied' and s['database']['connected'] is True and s['sync'] == 'in_sync'" 90
kill "$WATCHER" 2>/dev/null
wait "$WATCHER" 2>/dev/null
assert_eq "status showed database.connected true, false, then true" "True False True" \
    "$(grep -v 'no answer' "$W/watcher.out" | tr '\n' ' ' | sed 's/ $//')"
assert_match "sd_notify STATUS said reconnecting" '^STATUS=reconnecting restart1: degraded' "$(notify_since restart1)"
assert_contains "the log says the connection was lost" "lost the database connection" "$(cat "$W/restart1.log")"
assert_contains "... and is back" "database connected again" "$(cat "$W/restart1.log")"
exactly_once 0001-flag
daemon_stop restart1
assert_eq "exit 0" 0 "$DRC"
assert_eq "no advisory lock left" 0 "$(advisory_locks)"

# ------------------------------------------------------------------ 8
section "two daemons, one database"
newdb two1
repo_new ra
repo_new rb
put_plan ra main dev@example.com 0001-a.yaml <<'EOF'
title: A
reason: the first daemon's
steps:
  - { op: create_table, table: a, columns: [{ name: id, type: int, nullable: false }], primary_key: [id] }
EOF
put_plan rb main dev@example.com 0001-b.yaml <<'EOF'
title: B
reason: the second daemon's
steps:
  - { op: create_table, table: b, columns: [{ name: id, type: int, nullable: false }], primary_key: [id] }
EOF
daemon_conf ta "$W/ra.git"
daemon_conf tb "$W/rb.git"
daemon_start ta || exit 1
assert_status "the first daemon applies" ta "pst('0001-a') == 'applied' and s['state'] == 'idle'"
daemon_start tb || exit 1
assert_status "the second one is standby" tb "s['state'] == 'standby'"
assert_contains "... and says who holds the lock" "another runner (pid " "$(status_py tb 's["last_result"]')"
assert_sql "the standby applied nothing" "0|f" \
    "SELECT (SELECT count(*) FROM taskslaps.plans WHERE target = 'tb'), to_regclass('public.b') IS NOT NULL"
assert_eq "the runner is still the first" idle "$(status_py ta 's["state"]')"
ctl tb status
assert_ne "status of a standby answers" 3 "$RC"
# a daemon started by mistake with a socket path in use must not take it over
daemon_conf tc "$W/rb.git" "control_socket: $W/ta.sock"
timeout 20 "$TASKSLAPSD" --config "$W/tc.yaml" >"$W/tc.log" 2>&1
assert_rc "a daemon whose control socket is in use exits 1 at once" 1 "$?" "$(tail -n 3 "$W/tc.log")"
assert_contains "... saying so" "another process listens on the control socket" "$(cat "$W/tc.log")"
sanitizer_check tc
ctl ta status --json
assert_contains "the first daemon still answers on its socket" '"target":"ta"' "$(tr -d ' \t\n' <<<"$OUT")"
daemon_stop ta
assert_eq "the first exits 0" 0 "$DRC"
assert_status "when it stops, the standby takes over and applies" tb "pst('0001-b') == 'applied' and s['state'] == 'idle'" 30
assert_sql "its table exists" t "SELECT to_regclass('public.b') IS NOT NULL"
daemon_stop tb
assert_eq "the second exits 0" 0 "$DRC"
assert_eq "no advisory lock left" 0 "$(advisory_locks)"

env_finish
