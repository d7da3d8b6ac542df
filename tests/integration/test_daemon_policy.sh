#!/usr/bin/env bash
# Integration test of taskslapsd's policy and operations: an H3 plan on a
# chaos branch is `blocked` (nothing of it runs) and the same plan on a
# protected branch is applied; a fourth plan of one author in 24 h on a chaos
# branch is `rate_limited`; a peer that is neither root, the daemon's user nor
# in admin_group cannot abort, root and the admin group can; SIGHUP with a
# broken configuration keeps the old one, with a valid one takes effect;
# notes are pushed back to a file:// remote.
#
#   bash tests/integration/test_daemon_policy.sh   (TS_VERBOSE=1 prints passes)

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/lib/daemon.sh
. "$here/../lib/daemon.sh"
daemon_env_start

# ------------------------------------------------------------------ 2
section "H3 on a chaos branch"
newdb chaos1
q "CREATE TABLE acct (id bigint PRIMARY KEY, legacy text); INSERT INTO acct SELECT g, 'x' FROM generate_series(1, 100) g" >/dev/null
repo_new origin chaos
catalog="SELECT string_agg(attname, ',' ORDER BY attnum) FROM pg_attribute WHERE attrelid = 'acct'::regclass AND attnum > 0 AND NOT attisdropped"
before=$(q "$catalog")
h3plan() {
    cat <<'EOF'
title: Drop the legacy column
reason: nobody reads it since 2019
steps:
  - { op: add_column, table: acct, name: note, type: text }
  - { op: drop_column, table: acct, name: legacy }
EOF
}
put_plan origin chaos dev@example.com 0001-drop-legacy.yaml < <(h3plan)
CCH=$COMMIT
daemon_conf ch "$W/origin.git" 'branch: chaos' 'protected_branches: [main]'
daemon_start ch || exit 1
assert_eq "the branch is not protected: chaos mode" chaos "$(status_py ch 's["mode"]')"
assert_status "the H3 plan is blocked" ch "pst('0001-drop-legacy') == 'blocked' and s['state'] in ('idle', 'error')"
assert_eq "the catalog is unchanged (not even the H1 step ran)" "$before" "$(q "$catalog")"
assert_sql "nothing in the ledger" 0 "SELECT count(*) FROM taskslaps.step_ledger"
assert_sql "the plan row says blocked" blocked "SELECT status FROM taskslaps.plans WHERE target = 'ch' AND plan_id = '0001-drop-legacy'"
wait_note "$W/origin.git" ch "$CCH" "Status: blocked"
note=$(note_of "$W/origin.git" ch "$CCH")
assert_eq "the blocked note's first line" "taskslaps ch: blocked 0001-drop-legacy H3 0/2 steps" "$(head -n 1 <<<"$note")"
assert_match "the note gives the reason" "^Message: .*H3" "$note"
ctl ch status
assert_rc "status exits 1 with a blocked plan" 1 "$RC"
daemon_stop ch
assert_eq "the chaos daemon exits 0" 0 "$DRC"

put_plan origin main dev@example.com 0001-drop-legacy.yaml < <(h3plan)
CPR=$COMMIT
daemon_conf pr "$W/origin.git" 'branch: main' 'protected_branches: [main]'
daemon_start pr || exit 1
assert_eq "main is protected" protected "$(status_py pr 's["mode"]')"
assert_status "the same plan on the protected branch is applied" pr "pst('0001-drop-legacy') == 'applied'"
assert_eq "the catalog changed" "id,note" "$(q "$catalog")"
if wait_note "$W/origin.git" pr "$CPR" "Status: applied"; then
    pass "its note says applied"
else
    fail "its note says applied" "$(note_of "$W/origin.git" pr "$CPR")"
fi
assert_contains "the chaos target's note is still there" "blocked" "$(note_of "$W/origin.git" ch "$CCH")"
daemon_stop pr

# ------------------------------------------------------------------ 5
section "rate limit in chaos mode"
newdb rl1
repo_new rl play
daemon_conf rl "$W/rl.git" 'branch: play' 'protected_branches: [main, release/*]'
daemon_start rl || exit 1
for i in 1 2 3; do
    put_plan rl play eve@example.com "000$i-t$i.yaml" <<EOF
title: Table $i
reason: more tables
steps:
  - { op: create_table, table: t$i, columns: [{ name: id, type: int, nullable: false }], primary_key: [id] }
EOF
    assert_status "eve's plan $i is applied" rl "pst('000$i-t$i') == 'applied'"
done
put_plan rl play eve@example.com 0004-t4.yaml <<'EOF'
title: Table 4
reason: one too many
steps:
  - { op: create_table, table: t4, columns: [{ name: id, type: int, nullable: false }], primary_key: [id] }
EOF
C4=$COMMIT
assert_status "eve's fourth plan in 24 h is rate limited" rl \
    "s['tip'] == '$C4' and pst('0004-t4') == 'rate_limited' and s['state'] in ('idle', 'error')"
assert_sql "and did not run" "f|rate_limited" \
    "SELECT to_regclass('public.t4') IS NOT NULL, (SELECT status FROM taskslaps.plans WHERE plan_id = '0004-t4')"
assert_contains "status says why" "eve@example.com already has 3 plans" "$(status_py rl 'plan("0004-t4").get("message", "")')"
assert_eq "health is degraded" degraded "$(status_py rl 's["health"]')"
wait_note "$W/rl.git" rl "$C4" "Status: rate_limited"
assert_eq "the rate_limited note's first line" "taskslaps rl: rate_limited 0004-t4 H1 0/1 steps" \
    "$(note_of "$W/rl.git" rl "$C4" | head -n 1)"
assert_sql "one plan.rate_limited event, not one per pass" 1 \
    "SELECT count(*) FROM taskslaps.events WHERE type = 'plan.rate_limited'"
ctl rl reconcile
assert_status "still rate limited after another pass" rl "pst('0004-t4') == 'rate_limited'"
assert_sql "still one event" 1 "SELECT count(*) FROM taskslaps.events WHERE type = 'plan.rate_limited'"
# An H3 plan behind the rate-limited one can never run on this chaos branch:
# it is noted blocked at once, not pending as if it only waited its turn.
put_plan rl play bob@example.com 0005-h3.yaml <<'EOF'
title: Drop a column
reason: an H3 plan on a chaos branch
steps:
  - { op: add_column, table: t1, name: gone, type: text }
  - { op: drop_column, table: t1, name: gone }
EOF
C5=$COMMIT
assert_status "the H3 plan behind it is blocked, not pending" rl \
    "s['tip'] == '$C5' and pst('0005-h3') == 'blocked' and pst('0004-t4') == 'rate_limited'"
assert_contains "... with the reason" "H3" "$(status_py rl 'plan("0005-h3").get("message", "")')"
wait_note "$W/rl.git" rl "$C5" "Status: blocked"
assert_eq "its note says blocked" "taskslaps rl: blocked 0005-h3 H3 0/2 steps" \
    "$(note_of "$W/rl.git" rl "$C5" | head -n 1)"
assert_sql "the plan row says blocked, one plan.blocked event, nothing ran" "blocked|1|f" \
    "SELECT (SELECT status FROM taskslaps.plans WHERE plan_id = '0005-h3'),
            (SELECT count(*) FROM taskslaps.events WHERE type = 'plan.blocked' AND plan_id = '0005-h3'),
            taskslaps.column_exists('t1', 'gone')"
ctl rl reconcile
assert_status "still blocked after another pass" rl "pst('0005-h3') == 'blocked'"
assert_sql "still one plan.blocked event" 1 \
    "SELECT count(*) FROM taskslaps.events WHERE type = 'plan.blocked' AND plan_id = '0005-h3'"
daemon_stop rl
assert_eq "exit 0" 0 "$DRC"

# ------------------------------------------------------------------ 9
section "who may abort"
# needs root (runuser), the user nobody and a group nobody is not in
ADMIN=
if [ "$(id -u)" -eq 0 ] && id nobody >/dev/null 2>&1; then
    for g in adm sys staff; do
        getent group "$g" >/dev/null && ! id -nG nobody | tr ' ' '\n' | grep -qx "$g" && { ADMIN=$g; break; }
    done
fi
# the admin group ADMIN: its members reach the socket through the group,
# anybody else only because this test opens the socket to others
case_abort() {
    newdb ab1
    q "CREATE TABLE big (id bigint PRIMARY KEY, v int NOT NULL DEFAULT 0, upd int NOT NULL DEFAULT 0);
       INSERT INTO big (id) SELECT g FROM generate_series(1, 20000) g;
       CREATE FUNCTION count_update() RETURNS trigger LANGUAGE plpgsql AS \$\$
       BEGIN NEW.upd := OLD.upd + 1; RETURN NEW; END \$\$;
       CREATE TRIGGER big_count BEFORE UPDATE ON big FOR EACH ROW EXECUTE FUNCTION count_update()" >/dev/null &&
        q "VACUUM ANALYZE big" >/dev/null || { echo "setup failed" >&2; exit 1; }
    repo_new ab
    put_plan ab main dev@example.com 0001-bump.yaml <<'EOF'
title: Bump every v
reason: a slow backfill to abort
waves:
  - name: backfill
    limits: { rows_per_second: 2000, batch_size: 200 }
    steps:
      - { op: backfill_sql, sql: "UPDATE big SET v = v + 1" }
EOF
    daemon_conf ab "$W/ab.git" "admin_group: $ADMIN"
    daemon_start ab || exit 1
    chmod 0711 "$W"
    assert_eq "the socket is mode 0660, group $ADMIN" "660 $ADMIN" "$(stat -c '%a %G' "$W/ab.sock")"
    running_rows() { status_py ab '(s.get("running") or {}).get("rows_done", 0)'; }
    as_user() { (cd / && runuser "$@"); }
    assert_status "the backfill is running" ab '(s.get("running") or {}).get("rows_done", 0) > 0'
    as_user -u nobody -- "$TASKSLAPSCTL" --socket "$W/ab.sock" status >/dev/null 2>"$W/.err"
    assert_rc "nobody cannot even connect to a 0660 socket" 3 "$?" "$(cat "$W/.err")"
    chmod o+rw "$W/ab.sock"
    as_user -u nobody -- "$TASKSLAPSCTL" --socket "$W/ab.sock" status --json >"$W/.out" 2>"$W/.err"
    assert_contains "with the socket opened to others, nobody may read status" '"target"' "$(cat "$W/.out")"
    as_user -u nobody -- "$TASKSLAPSCTL" --socket "$W/ab.sock" abort >"$W/.out" 2>"$W/.err"
    assert_rc "nobody's abort exits 1" 1 "$?" "$(cat "$W/.err")"
    assert_contains "... saying not allowed, and what it needs" \
        "not allowed: 'abort' needs root or the admin group $ADMIN" "$(cat "$W/.err")"
    assert_contains "the daemon logs the refusal" "refused 'abort' from uid $(id -u nobody)" "$(cat "$W/ab.log")"
    r0=$(running_rows)
    assert_status "the backfill goes on" ab "(s.get('running') or {}).get('rows_done', 0) > $r0 and pst('0001-bump') != 'aborted'"
    ctl ab abort
    assert_rc "root's abort exits 0" 0 "$RC" "$ERR"
    assert_contains "... and is taken" "abort requested" "$OUT"
    assert_status "the plan is aborted" ab "pst('0001-bump') == 'aborted' and s['health'] == 'paused'"
    assert_sql "no row was updated twice" 0 "SELECT count(*) FROM big WHERE upd > 1"
    ctl ab resume 0001-bump
    assert_rc "root may resume" 0 "$RC" "$ERR"
    assert_status "the backfill runs again" ab '(s.get("running") or {}).get("rows_done", 0) > 0'
    as_user -u nobody -g "$ADMIN" -- "$TASKSLAPSCTL" --socket "$W/ab.sock" abort >"$W/.out" 2>"$W/.err"
    assert_rc "a member of admin_group may abort" 0 "$?" "$(cat "$W/.err")"
    assert_status "aborted again" ab "pst('0001-bump') == 'aborted'"
    as_user -u nobody -- "$TASKSLAPSCTL" --socket "$W/ab.sock" resume 0001-bump >"$W/.out" 2>"$W/.err"
    assert_rc "nobody cannot resume either" 1 "$?" "$(cat "$W/.err")"
    as_user -u nobody -- "$TASKSLAPSCTL" --socket "$W/ab.sock" reconcile >"$W/.out" 2>"$W/.err"
    assert_rc "nor reconcile" 1 "$?" "$(cat "$W/.err")"
    assert_eq "still aborted" aborted "$(status_py ab 'pst("0001-bump")')"
    ctl ab resume 0001-bump
    assert_status "resumed, it completes" ab "pst('0001-bump') == 'applied'" 60
    assert_sql "every row updated exactly once" "20000|1|1" "SELECT count(*), min(upd), max(upd) FROM big"
    chmod 0700 "$W"
    daemon_stop ab
    assert_eq "exit 0" 0 "$DRC"
}
if [ -n "$ADMIN" ]; then
    case_abort
else
    echo "who may abort: skipped (needs root, the user nobody and a group nobody is not in)"
fi

# ------------------------------------------------------------------ 10
section "SIGHUP"
newdb hup1
repo_new hup
put_plan hup main dev@example.com 0001-a.yaml <<'EOF'
title: A
reason: reload test
steps:
  - { op: create_table, table: a, columns: [{ name: id, type: int, nullable: false }], primary_key: [id] }
EOF
daemon_conf hup "$W/hup.git" 'poll_interval: 60'
daemon_start hup || exit 1
assert_status "applied" hup "pst('0001-a') == 'applied' and s['state'] == 'idle'"
cp "$W/hup.yaml" "$W/hup.good"
printf 'poll_intervall: 1\n' >>"$W/hup.yaml"
notify_mark hup
kill -HUP "$(daemon_pid hup)"
wait_notify hup READY=1 10
assert_eq "broken config: RELOADING=1 then READY=1" "RELOADING=1 READY=1" \
    "$(notify_since hup | grep -E '^(RELOADING|READY)=' | tr '\n' ' ' | sed 's/ $//')"
wait_file "$W/hup.log" "keeping the old one" 10
assert_contains "the log says it kept the old configuration" "the new configuration is invalid; keeping the old one" "$(cat "$W/hup.log")"
assert_match "the log says what is wrong, with line:col" "hup.yaml:[0-9]+:1: .*poll_intervall" "$(cat "$W/hup.log")"
assert_ok "the daemon is alive" alive "$(daemon_pid hup)"
put_plan hup main dev@example.com 0002-b.yaml <<'EOF'
title: B
reason: still applying
steps:
  - { op: create_table, table: b, columns: [{ name: id, type: int, nullable: false }], primary_key: [id] }
EOF
assert_status "it keeps applying" hup "pst('0002-b') == 'applied'" 20

# with poll_interval 60 only the reload's own pass would run; with 1, a pass a second
sed 's/^poll_interval: .*/poll_interval: 1/' "$W/hup.good" >"$W/hup.yaml"
notify_mark hup
kill -HUP "$(daemon_pid hup)"
wait_notify hup READY=1 10
assert_eq "valid config: RELOADING=1 then READY=1" "RELOADING=1 READY=1" \
    "$(notify_since hup | grep -E '^(RELOADING|READY)=' | tr '\n' ' ' | sed 's/ $//')"
assert_contains "the log says it re-read it" "reload: configuration re-read" "$(cat "$W/hup.log")"
passes=0
last=$(status_py hup 's.get("last_pass_at")')
for i in 1 2 3; do
    if wait_status hup "s.get('last_pass_at') != '$last'" 4 100; then
        passes=$((passes + 1))
        last=$(status_py hup 's.get("last_pass_at")')
    fi
done
assert_eq "the new poll_interval took effect (3 passes, a second or so apart)" 3 "$passes"

# another repository (a copy that moves on): with poll_interval 60 again, a
# push to it is seen at once only if the reload moved the inotify watch too
git clone -q --bare "$W/hup.git" "$W/hup2.git"
sed "s|^repository: .*|repository: $W/hup2.git|" "$W/hup.good" >"$W/hup.yaml"
notify_mark hup
kill -HUP "$(daemon_pid hup)"
wait_notify hup READY=1 10
assert_status "the new repository is followed" hup "s['repository'] == '$W/hup2.git' and s['state'] == 'idle'"
git -C "$W/hup.wt" remote set-url origin "$W/hup2.git"
t0=$(ms_now)
put_plan hup main dev@example.com 0003-c.yaml <<'EOF'
title: C
reason: pushed to the new repository
steps:
  - { op: create_table, table: c, columns: [{ name: id, type: int, nullable: false }], primary_key: [id] }
EOF
wait_status hup "pst('0003-c') == 'applied'" 20 20
lat=$(($(ms_now) - t0))
assert_le "a push to it is applied in under 3 s with poll_interval 60 (${lat} ms)" 2999 "$lat"
daemon_stop hup
assert_eq "exit 0" 0 "$DRC"

# ------------------------------------------------------------------ 11
section "notes pushed to a file:// remote"
newdb url1
repo_new urlo
put_plan urlo main dev@example.com 0001-u.yaml <<'EOF'
title: U
reason: notes go back to the remote
steps:
  - { op: create_table, table: u, columns: [{ name: id, type: int, nullable: false }], primary_key: [id] }
EOF
CU1=$COMMIT
daemon_conf url "file://$W/urlo.git" 'push_notes: true' 'poll_interval: 60'
daemon_start url || exit 1
assert_status "applied from a URL" url "pst('0001-u') == 'applied'"
assert_ok "the URL is mirrored into state_dir" test -d "$W/url.state/mirror.git"
for ((i = 0; i < 100; i++)); do
    git -C "$W/urlo.git" notes --ref=taskslaps/url show "$CU1" >/dev/null 2>&1 && break
    sleep 0.1
done
note=$(git -C "$W/urlo.git" notes --ref=taskslaps/url show "$CU1" 2>&1)
assert_eq "the remote has the note" "taskslaps url: applied 0001-u H1 1/1 steps" "$(head -n 1 <<<"$note")"
put_plan urlo main dev@example.com 0002-v.yaml <<'EOF'
title: V
reason: a second push, fetched by the poll
steps:
  - { op: create_table, table: v, columns: [{ name: id, type: int, nullable: false }], primary_key: [id] }
EOF
CU2=$COMMIT
# a URL is not watched: `taskslapsctl reconcile` (a post-receive hook) fetches at once
t0=$(ms_now)
ctl url reconcile
assert_rc "reconcile is accepted" 0 "$RC" "$ERR"
wait_status url "pst('0002-v') == 'applied'" 20 20
lat=$(($(ms_now) - t0))
assert_le "after reconcile, the push is fetched and applied in under 3 s with poll_interval 60 (${lat} ms)" 2999 "$lat"
for ((i = 0; i < 100; i++)); do
    git -C "$W/urlo.git" notes --ref=taskslaps/url show "$CU2" >/dev/null 2>&1 && break
    sleep 0.1
done
assert_contains "its note is pushed too" "applied 0002-v" "$(git -C "$W/urlo.git" notes --ref=taskslaps/url show "$CU2" 2>&1)"
assert_contains "and the first one is still there" "applied 0001-u" "$(git -C "$W/urlo.git" notes --ref=taskslaps/url show "$CU1" 2>&1)"
assert_eq "no error in status" "None" "$(status_py url 'str(s.get("last_error"))')"
daemon_stop url
assert_eq "exit 0" 0 "$DRC"

env_finish
