#!/usr/bin/env bash
# Integration test of taskslapsd following a branch: a push is applied (seen
# through inotify, not the poll), with ledger rows and a git note whose first
# line and trailers are checked; an invalid plan gets an `invalid` note and
# stops the line until a fix is pushed; an edited applied plan is `drift`
# until accept-drift; a failed plan makes `status` exit 1; sd_notify READY,
# STATUS and STOPPING; SIGTERM exits 0, releases the runner lock and removes
# the socket; -n and --once; the database password appears nowhere.
#
#   bash tests/integration/test_daemon_apply.sh   (TS_VERBOSE=1 prints passes)

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/lib/daemon.sh
. "$here/../lib/daemon.sh"
daemon_env_start

SECRET=sekrit123
newdb apply1
repo_new origin
ORIGIN=$W/origin.git

put_plan origin main dev@example.com 0001-users.yaml <<'EOF'
title: Users
reason: the application needs users
steps:
  - op: create_table
    table: users
    columns:
      - { name: id, type: bigint, nullable: false }
      - { name: email, type: text }
    primary_key: [id]
EOF
C1=$COMMIT

# trust auth ignores the password; it must still never be shown
daemon_conf t1 "$ORIGIN" "database: \"$CONNINFO password=$SECRET\"" 'poll_interval: 60'

# ------------------------------------------------------------------ 1
section "push applied, note, inotify"
daemon_start t1 || exit 1
assert_status "the first plan is applied" t1 'pst("0001-users") == "applied" and s["state"] == "idle"'
assert_sql "its step is in the ledger" 1 \
    "SELECT count(*) FROM taskslaps.step_ledger WHERE plan_id = '0001-users' AND commit_sha = '$C1'"
assert_sql "the plan row says applied" "applied|$C1|dev@example.com" \
    "SELECT status, commit_sha, author FROM taskslaps.plans WHERE plan_id = '0001-users'"
assert_sql "the table exists" t "SELECT to_regclass('public.users') IS NOT NULL"

wait_note "$ORIGIN" t1 "$C1" "Status: applied"
note=$(note_of "$ORIGIN" t1 "$C1")
assert_eq "the note's first line" "taskslaps t1: applied 0001-users H1 1/1 steps" "$(head -n 1 <<<"$note")"
assert_eq "a blank line after it" "" "$(sed -n 2p <<<"$note")"
trailers=$(git interpret-trailers --parse <<<"$note")
assert_contains "trailer Plan" "Plan: 0001-users" "$trailers"
assert_contains "trailer Status" "Status: applied" "$trailers"
assert_contains "trailer Hazard" "Hazard: H1" "$trailers"
assert_contains "trailer Steps" "Steps: 1/1" "$trailers"
assert_match "trailer Applied-At" "Applied-At: [0-9]{4}-[0-9]{2}-[0-9]{2}T" "$trailers"
assert_contains "git log --notes shows it" "taskslaps t1: applied 0001-users H1 1/1 steps" \
    "$(git -C "$ORIGIN" log --notes=taskslaps/t1 -1 "$C1")"

# poll_interval is 60 s: only inotify can explain a pickup within seconds
t0=$(ms_now)
put_plan origin main dev@example.com 0002-users-name.yaml <<'EOF'
title: User names
reason: greet people by name
steps:
  - { op: add_column, table: users, name: name, type: text }
EOF
C2=$COMMIT
wait_status t1 'any(h.get("type") == "plan.ok" and h.get("plan_id") == "0002-users-name" for h in s.get("history") or [])' 20 10
t1=$(ms_now)
lat=$((t1 - t0))
[ -z "${TS_VERBOSE:-}" ] || echo "     push to plan.ok in status: $lat ms"
assert_le "push to plan.ok in under 3 s with poll_interval 60 (${lat} ms)" 2999 "$lat"
assert_status "0002 applied" t1 'pst("0002-users-name") == "applied"' 5
assert_sql "its column exists" t "SELECT taskslaps.column_exists('users', 'name')"
if wait_note "$ORIGIN" t1 "$C2" "Status: applied"; then
    pass "the second commit has its note"
else
    fail "the second commit has its note" "$(note_of "$ORIGIN" t1 "$C2")"
fi
ctl t1 status
assert_rc "status exits 0 when healthy" 0 "$RC" "$ERR"

# ------------------------------------------------------------------ 3
section "invalid plan"
put_plan origin main dev@example.com 0003-users-age.yaml <<'EOF'
title: User age
reason: a typo follows
steps:
  - { op: add_column, table: users, name: age, type: int
EOF
C3=$COMMIT
assert_status "the broken plan is invalid" t1 "s['tip'] == '$C3' and pst('0003-users-age') == 'invalid' and s['state'] in ('idle', 'error')"
assert_match "status says where (file:line:col)" 'migrations/0003-users-age\.yaml:[0-9]+:[0-9]+' \
    "$(status_py t1 'plan("0003-users-age").get("message", "")')"
wait_note "$ORIGIN" t1 "$C3" "Status: invalid"
note=$(note_of "$ORIGIN" t1 "$C3")
assert_match "the invalid note's first line" "^taskslaps t1: invalid 0003-users-age " "$(head -n 1 <<<"$note")"
assert_match "the note says file:line:col" 'Message: migrations/0003-users-age\.yaml:[0-9]+:[0-9]+: ' "$note"
assert_ok "the daemon is alive" alive "$(daemon_pid t1)"
ctl t1 status --json
assert_rc "status answers (exit 1: a plan is invalid)" 1 "$RC" "$ERR"

put_plan origin main dev@example.com 0004-users-city.yaml <<'EOF'
title: User city
reason: shipping
steps:
  - { op: add_column, table: users, name: city, type: text }
EOF
C4=$COMMIT
assert_status "a later plan waits behind the invalid one" t1 \
    "s['tip'] == '$C4' and s['state'] in ('idle', 'error') and pst('0004-users-city') == 'pending'"
assert_sql "and did not run" f "SELECT taskslaps.column_exists('users', 'city')"
assert_sql "the invalid plan is recorded once" "invalid|1" \
    "SELECT p.status, (SELECT count(*) FROM taskslaps.events WHERE type = 'plan.invalid' AND plan_id = p.plan_id)
       FROM taskslaps.plans p WHERE plan_id = '0003-users-age'"

put_plan origin main dev@example.com 0003-users-age.yaml "Fix 0003" <<'EOF'
title: User age
reason: fixed
steps:
  - { op: add_column, table: users, name: age, type: int }
EOF
C3b=$COMMIT
assert_status "the fixed plan and the one behind it are applied" t1 \
    'pst("0003-users-age") == "applied" and pst("0004-users-city") == "applied" and s["sync"] == "in_sync"'
assert_sql "both columns exist" t \
    "SELECT taskslaps.column_exists('users', 'age') AND taskslaps.column_exists('users', 'city')"
if wait_note "$ORIGIN" t1 "$C3b" "Status: applied"; then
    pass "the fix commit's note says applied"
else
    fail "the fix commit's note says applied" "$(note_of "$ORIGIN" t1 "$C3b")"
fi

# ------------------------------------------------------------------ 4
section "drift"
steps_before=$(q "SELECT count(*) FROM taskslaps.step_ledger")
repo_checkout origin main
sed -i 's/^title: Users$/title: Users (edited after the fact)/' "$W/origin.wt/migrations/0001-users.yaml"
cat >"$W/origin.wt/migrations/0005-orders.yaml" <<'EOF'
title: Orders
reason: sell things
steps:
  - op: create_table
    table: orders
    columns: [{ name: id, type: bigint, nullable: false }, { name: user_id, type: bigint }]
    primary_key: [id]
EOF
git_as origin dev@example.com commit -qam "Edit 0001" && git_as origin dev@example.com add -A &&
    git_as origin dev@example.com commit -qm "Add 0005" && git_as origin dev@example.com push -q origin main
CD=$(git -C "$W/origin.wt" rev-parse HEAD)
assert_status "the edited plan is drift and listed under drift" t1 \
    "s['tip'] == '$CD' and pst('0001-users') == 'drift' and s['drift'] == ['0001-users'] and s['state'] in ('idle', 'error')"
assert_eq "the plan after it waits" pending "$(status_py t1 'pst("0005-orders")')"
assert_sql "nothing ran" "f|$steps_before" \
    "SELECT to_regclass('public.orders') IS NOT NULL, (SELECT count(*) FROM taskslaps.step_ledger)"
ctl t1 status
assert_rc "status exits 1 with drift" 1 "$RC"
ctl t1 accept-drift 0001-users
assert_rc "accept-drift succeeds" 0 "$RC" "$ERR"
assert_contains "accept-drift says nothing was run" "nothing was run" "$OUT"
assert_status "accept-drift clears it" t1 \
    'pst("0001-users") == "applied" and s["drift"] == [] and pst("0005-orders") == "applied"'
assert_sql "the new checksum is recorded; the line moved on" "t|1" \
    "SELECT to_regclass('public.orders') IS NOT NULL,
            (SELECT count(*) FROM taskslaps.step_ledger WHERE plan_id = '0001-users')"

# An edit that adds a step to an applied plan, accepted through the daemon:
# the added step never ran, so it stays pending and runs on the next pass.
put_plan origin main dev@example.com 0005-orders.yaml "Grow 0005" <<'EOF'
title: Orders
reason: sell things
steps:
  - op: create_table
    table: orders
    columns: [{ name: id, type: bigint, nullable: false }, { name: user_id, type: bigint }]
    primary_key: [id]
  - { op: add_column, table: orders, name: placed_at, type: timestamptz }
EOF
assert_status "the grown plan is drift" t1 "s['tip'] == '$COMMIT' and pst('0005-orders') == 'drift'"
ctl t1 accept-drift 0005-orders
assert_rc "accept-drift of the grown plan succeeds" 0 "$RC" "$ERR"
assert_contains "accept-drift says one step runs next" "1 step that never ran is pending" "$OUT"
assert_status "the added step ran and the plan is applied" t1 \
    'pst("0005-orders") == "applied" and s["drift"] == []'
assert_sql "the added column exists, two ledger rows" "t|2" \
    "SELECT taskslaps.column_exists('orders', 'placed_at'),
            (SELECT count(*) FROM taskslaps.step_ledger WHERE plan_id = '0005-orders')"

# ------------------------------------------------------------------ 15
section "status exit codes"
ctl t1 status
assert_rc "status exits 0 when healthy again" 0 "$RC" "$ERR"
put_plan origin main dev@example.com 0006-bad.yaml <<'EOF'
title: Bad
reason: refers to a table that does not exist
steps:
  - { op: sql, sql: "ALTER TABLE no_such_table ADD COLUMN x int" }
EOF
C6=$COMMIT
assert_status "the bad plan fails" t1 "pst('0006-bad') == 'failed' and s['state'] in ('idle', 'error')"
ctl t1 status
assert_rc "status exits 1 after a failed plan" 1 "$RC"
# STATUS= is sent when the pass publishes: it must carry that pass's result
if wait_notify t1 "STATUS=idle t1: failed, tip ${C6:0:12}, out of sync" 5; then
    pass "sd_notify STATUS= says failed and out of sync"
else
    fail "sd_notify STATUS= says failed and out of sync" "$(notify_since t1 | tail -n 3)"
fi
wait_note "$ORIGIN" t1 "$C6" "Status: failed"
note=$(note_of "$ORIGIN" t1 "$C6")
assert_contains "the failed note's first line" "taskslaps t1: failed 0006-bad H1 0/1 steps" "$(head -n 1 <<<"$note")"
assert_contains "the failed note has the SQLSTATE" "SQLSTATE: 42P01" "$note"
"$TASKSLAPSCTL" --socket "$W/no-such.sock" status >/dev/null 2>"$W/.err"
assert_rc "status exits 3 when the socket does not exist" 3 "$?" "$(cat "$W/.err")"

# ------------------------------------------------------------------ 14
section "the password"
ctl t1 status --json
status_doc=$OUT
assert_not_contains "not in the status JSON" "$SECRET" "$status_doc"
ctl t1 events
assert_not_contains "not in the events stream" "$SECRET" "$OUT"
assert_not_contains "not in the log" "$SECRET" "$(cat "$W/t1.log")"
assert_not_contains "not in the notes" "$SECRET" "$(git -C "$ORIGIN" log --notes=taskslaps/t1 --format='%H%n%N')"
assert_not_contains "not in the sd_notify messages" "$SECRET" "$(cat "$W/t1.notify")"
assert_sql "not in the events table" 0 "SELECT count(*) FROM taskslaps.events WHERE message LIKE '%$SECRET%' OR metrics::text LIKE '%$SECRET%'"
# a database that cannot be reached: the error is shown, the password is not
daemon_conf nodb "$ORIGIN" "database: \"host=$W/nowhere port=1 user=nobody password=$SECRET\""
daemon_start nodb || exit 1
assert_status "an unreachable database is reported" nodb \
    's["database"]["connected"] is False and s["database"]["error"] and s["state"] == "reconnecting"'
ctl nodb status --json
assert_not_contains "not in the status JSON of an unreachable database" "$SECRET" "$OUT"
assert_rc "status exits 1 while the database is unreachable" 1 "$RC"
daemon_stop nodb
assert_eq "that daemon exits 0 on SIGTERM" 0 "$DRC"
assert_not_contains "not in its log" "$SECRET" "$(cat "$W/nodb.log")"

# ------------------------------------------------------------------ 12
section "sd_notify and SIGTERM"
msgs=$(notify_since t1)
assert_eq "READY=1 first" "READY=1" "$(head -n 1 <<<"$msgs")"
assert_match "STATUS= lines with state, target, health, tip" \
    '^STATUS=idle t1: (healthy|failed), tip [0-9a-f]{12}, ' "$msgs"
assert_not_contains "no STOPPING yet" "STOPPING=1" "$msgs"
assert_ge "the runner lock is held while running" 1 "$(advisory_locks)"
daemon_stop t1
assert_eq "SIGTERM: exit status 0" 0 "$DRC"
assert_eq "STOPPING=1 is the last message" "STOPPING=1" "$(notify_since t1 | tail -n 1)"
assert_eq "the runner lock is released" 0 "$(advisory_locks)"
assert_ok "the control socket is removed" test ! -e "$W/t1.sock"
assert_contains "the log says it stopped" "[t1] stopped" "$(tail -n 3 "$W/t1.log")"

# ------------------------------------------------------------------ 13
section "-n and --once"
"$TASKSLAPSD" -n --config "$W/t1.yaml" >"$W/.out" 2>"$W/.err"
assert_rc "-n on a good configuration exits 0" 0 "$?" "$(cat "$W/.err")"
assert_contains "-n says the configuration is ok" "configuration ok; 6 plans" "$(cat "$W/.out")"
cp "$W/t1.yaml" "$W/bad.yaml"
printf 'pol_interval: 5\n' >>"$W/bad.yaml"
badline=$(wc -l <"$W/bad.yaml")
"$TASKSLAPSD" -n --config "$W/bad.yaml" >"$W/.out" 2>"$W/.err"
assert_rc "-n on a configuration with an unknown key exits 2" 2 "$?"
assert_match "with file:line:col" "^$W/bad.yaml:$badline:1: .*pol_interval" "$(cat "$W/.err")"
"$TASKSLAPSD" --once --config "$W/t1.yaml" >"$W/.out" 2>"$W/.err"
assert_rc "--once exits 1 while a plan fails" 1 "$?" "$(tail -n 5 "$W/.err")"
assert_not_contains "--once: no sanitizer report" "Sanitizer" "$(cat "$W/.err")"

newdb once1
repo_new small
put_plan small main dev@example.com 0001-t.yaml <<'EOF'
title: T
reason: once
steps:
  - { op: create_table, table: t, columns: [{ name: id, type: int, nullable: false }], primary_key: [id] }
EOF
daemon_conf once1 "$W/small.git"
"$TASKSLAPSD" --once --config "$W/once1.yaml" >"$W/.out" 2>"$W/.err"
assert_rc "--once applies and exits 0 when in sync" 0 "$?" "$(tail -n 5 "$W/.err")"
assert_sql "--once applied the plan" "applied" "SELECT status FROM taskslaps.plans WHERE plan_id = '0001-t'"
"$TASKSLAPSD" --once --config "$W/once1.yaml" >"$W/.out" 2>"$W/.err"
assert_rc "--once exits 0 when already in sync" 0 "$?" "$(tail -n 5 "$W/.err")"
assert_not_contains "--once: no sanitizer report" "Sanitizer" "$(cat "$W/.err")"
assert_ok "--once leaves no socket" test ! -e "$W/once1.sock"

# ------------------------------------------------------------------
section "drift behind a failed plan"
# An applied plan edited while a plan before it fails is drift at once: its
# verdict does not wait for the queue to reach it.
newdb dq1
repo_new dq
for t in a b; do
    put_plan dq main dev@example.com "0001-$t.yaml" <<EOF
title: Table $t
reason: queue
steps:
  - { op: create_table, table: $t, columns: [{ name: id, type: int, nullable: false }], primary_key: [id] }
EOF
done
daemon_conf dq1 "$W/dq.git"
daemon_start dq1 || exit 1
assert_status "both plans are applied" dq1 'pst("0001-a") == "applied" and pst("0001-b") == "applied"'
repo_checkout dq main
sed -i 's/^title: Table b$/title: Table b, edited/' "$W/dq.wt/migrations/0001-b.yaml"
cat >"$W/dq.wt/migrations/0000-early.yaml" <<'EOF'
title: Early and broken
reason: sorts first and fails
steps:
  - { op: sql, sql: "ALTER TABLE no_such_table ADD COLUMN x int" }
EOF
git_as dq dev@example.com add -A && git_as dq dev@example.com commit -qm "Early plan, edit b" &&
    git_as dq dev@example.com push -q origin main
CQ=$(git -C "$W/dq.wt" rev-parse HEAD)
assert_status "the edited plan behind the failed one is drift" dq1 \
    "s['tip'] == '$CQ' and pst('0000-early') == 'failed' and pst('0001-b') == 'drift' and s['drift'] == ['0001-b']"
assert_sql "the plan row says drift with the old checksum; one plan.drift event" "drift|1" \
    "SELECT status, (SELECT count(*) FROM taskslaps.events WHERE type = 'plan.drift' AND plan_id = '0001-b')
       FROM taskslaps.plans WHERE plan_id = '0001-b'"
wait_note "$W/dq.git" dq1 "$CQ" "Status: drift"
assert_contains "the note says drift" "drift 0001-b" "$(note_of "$W/dq.git" dq1 "$CQ" | head -n 1)"
daemon_stop dq1
assert_eq "exit 0" 0 "$DRC"

env_finish
