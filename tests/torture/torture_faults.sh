#!/usr/bin/env bash
# Fault torture of taskslapsd: the repository side goes wrong under it.
#
#  A. State directory full or read-only. The daemon follows the repository by
#     URL (file://), so it mirrors it into state_dir, which is a small tmpfs
#     (mounted as root; without the right to mount, a non-root run makes it
#     read-only with chmod instead, and root without it skips this part).
#     For each fault the tmpfs is filled up (or remounted read-only), a new
#     plan is pushed, and the daemon must say so — state "error", last_error
#     naming the cause ("No space left on device", "Read-only file system"),
#     health not healthy — stay up, apply nothing new and run nothing again;
#     when space or write access returns it must fetch, apply the plan once
#     and clear the error.
#  B. A force-pushed branch that rewrites history under applied plans. With
#     the plan files unchanged nothing runs again (the ledger and events stay
#     as they were) and the notes move to the new commits; with an applied
#     plan's file changed the plan is in drift, nothing runs, later plans
#     wait; restoring the file lets them run, and no step ever runs twice.
#  C. The repository directory disappears (moved away): error in the status
#     (state "error", last_error, health failed), the daemon stays up and
#     answers; moved back it recovers, and a push is seen again (inotify).
#  D. The runner lock's session is terminated under a runner with a standby
#     daemon on the same database: afterwards exactly one of them is the
#     runner, and a plan with a non-idempotent backfill is applied once.
#
#   bash tests/torture/torture_faults.sh          short: 2 state-dir faults (full, read-only)
#   bash tests/torture/torture_faults.sh --long   long: 8 state-dir faults, 3 moves, 3 lock kills
#                                                 (or TS_TORTURE_LONG=1)
# Options: --seed N (or TS_TORTURE_SEED); -v prints passes.

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/torture/lib.sh
. "$here/lib.sh"
torture_init "$@"
# Full malloc stacks under AddressSanitizer, so that lsan.supp can name the
# libgit2 function whose error path leaks (the fast unwinder stops at the
# first libgit2 frame, which has no frame pointer).
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}fast_unwind_on_malloc=0"

EMPLOYEES=2000
if [ "$TORTURE_LONG" = 1 ]; then
    FAULTS=8
    MOVES=3
    LOCK_KILLS=3
else
    FAULTS=2
    MOVES=1
    LOCK_KILLS=1
fi
WAIT=120

torture_start
note "loading the demo database ($EMPLOYEES employees)"
seo_template tmpl "$EMPLOYEES"
torture_plans "$W/all"
mapfile -t ALL < <(find "$W/all" -maxdepth 1 -type f | sort)

# ledger_total DB / starts DB: steps in the ledger; plan.start and step.start events.
ledger_total() { qdb "$1" "SELECT count(*) FROM taskslaps.step_ledger"; }
starts() { qdb "$1" "SELECT count(*) FROM taskslaps.events WHERE type IN ('plan.start', 'step.start')"; }
plan_id_of() { basename "${1%.*}"; }
# ledger_dups DB: steps recorded more than once (by plan, wave and index).
ledger_dups() {
    qdb "$1" "SELECT count(*) FROM (SELECT 1 FROM taskslaps.step_ledger GROUP BY plan_id, wave, step_index HAVING count(*) > 1) s"
}

# ======================================================================== A
section "A: state directory full / read-only"
note "A: state directory full / read-only"
clone_db fa tmpl
mkdir -p "$W/a.plans"
cp "${ALL[0]}" "${ALL[1]}" "$W/a.plans/"
CLONE=$W/clone.a make_repo "$W/a.git" "$W/a.plans"
SD=$W/a.sd
how=
if torture_mount_tmpfs "$SD" 8m; then
    how="tmpfs"
elif [ "$(id -u)" -ne 0 ]; then
    mkdir -p "$SD"
    how="chmod"
fi
if [ -z "$how" ]; then
    echo "A skipped: running as root without the right to mount a tmpfs"
else
    daemon_conf a fa "file://$W/a.git" "poll_interval: 1" "state_dir: $SD"
    daemon_start a
    APID=$DPID
    TIP=$(git -C "$W/a.git" rev-parse main)
    if wait_in_sync a "$WAIT" "$APID"; then
        pass "A: the first plans applied through the mirror in state_dir"
    else
        fail "A: the first plans applied through the mirror in state_dir" "$(tail -n 10 "$W/a.log")"
    fi
    next=2
    for ((f = 1; f <= FAULTS && next < ${#ALL[@]}; f++)); do
        plan=${ALL[$next]}
        pid=$(plan_id_of "$plan")
        next=$((next + 1))
        kind=full
        [ $((f % 2)) -eq 1 ] || kind=read-only
        [ "$how" = tmpfs ] || kind=read-only
        case $kind in
        full)
            want="No space left on device"
            dd if=/dev/zero of="$SD/filler" bs=4k 2>/dev/null
            ;;
        read-only)
            want="Read-only file system"
            if [ "$how" = tmpfs ]; then mount -o remount,ro "$SD"; else chmod -R a-w "$SD"; want="Permission denied"; fi
            ;;
        esac
        before_ledger=$(ledger_total fa)
        before_starts=$(starts fa)
        old_tip=$TIP
        TIP=$(CLONE=$W/clone.a push_plan "$plan")
        note "A$f: $kind"
        if wait_status a ".state == \"error\" and (.last_error // \"\" | contains(\"$want\"))" 30 "$APID"; then
            pass "A$f ($kind): the status says state error with the cause"
        else
            fail "A$f ($kind): the status says state error with the cause" "$(status_json a | head -c 1500)"
        fi
        sleep 2 # a few more polls while the fault lasts
        st=$(status_json a)
        # (a pass may be under way: state reconciling, the last pass's error still shown)
        assert_contains "A$f ($kind): the daemon is up and still reports the error" "$want" "$(jq -r .last_error <<<"$st")"
        assert_ne "A$f ($kind): health is not 'healthy'" "healthy" "$(jq -r .health <<<"$st")"
        assert_eq "A$f ($kind): the tip is still the one fetched before" "$old_tip" "$(jq -r .tip <<<"$st")"
        assert_eq "A$f ($kind): nothing new applied" "$before_ledger" "$(ledger_total fa)"
        assert_eq "A$f ($kind): nothing started again" "$before_starts" "$(starts fa)"
        case $kind in
        full) rm -f "$SD/filler" ;;
        read-only) if [ "$how" = tmpfs ]; then mount -o remount,rw "$SD"; else chmod -R u+w "$SD"; fi ;;
        esac
        if wait_in_sync a "$WAIT" "$APID"; then
            pass "A$f ($kind): recovered: in sync with the new tip"
        else
            fail "A$f ($kind): recovered: in sync with the new tip" "$(status_json a | head -c 1500)"
        fi
        st=$(status_json a)
        assert_eq "A$f ($kind): the error is cleared" "idle|null" "$(jq -r '.state + "|" + (.last_error | tostring)' <<<"$st")"
        assert_eq "A$f ($kind): plan $pid applied" applied \
            "$(qdb fa "SELECT status FROM taskslaps.plans WHERE plan_id = '$pid'")"
        assert_eq "A$f ($kind): the note on its commit pushed to the repository" "taskslaps a: applied $pid" \
            "$(git -C "$W/a.git" notes --ref=taskslaps/a show "$TIP" 2>&1 | head -n 1 | cut -d' ' -f1-4)"
        assert_eq "A$f ($kind): no plan started twice" 0 \
            "$(qdb fa "SELECT count(*) FROM (SELECT 1 FROM taskslaps.events WHERE type = 'plan.start' GROUP BY plan_id HAVING count(*) > 1) s")"
    done
    assert_eq "A: no step twice in the ledger" 0 "$(ledger_dups fa)"
    assert_eq "A: no temporary pack file left in the mirror" "" \
        "$(find "$SD/mirror.git/objects" -name 'pack_git2_*' -o -name '*.lock' 2>/dev/null)"
    CURDB=fa
    assert_sql "A: the backfills updated each row once" 0 \
        "SELECT count(*) FROM employee WHERE torture_updates <> (SELECT count(*) FROM taskslaps.step_ledger
            WHERE op = 'backfill_sql' AND plan_id IN ('0001-coffee-dependency', '0003-engagement-score', '0010-kudos-points'))
            + CASE WHEN id % 50 = 0 AND EXISTS (SELECT 1 FROM taskslaps.step_ledger WHERE op = 'backfill_sql' AND plan_id = '0004-email-not-null') THEN 1 ELSE 0 END"
    daemon_term "$APID"
    assert_eq "A: the daemon exits 0 on SIGTERM" 0 "$DRC"
fi

# ======================================================================== B
section "B: force-pushed history"
note "B: force-pushed history"
clone_db fb tmpl
mkdir -p "$W/b.plans"
cp "${ALL[0]}" "${ALL[1]}" "${ALL[2]}" "$W/b.plans/"
export CLONE=$W/clone.b
make_repo "$W/b.git" "$W/b.plans"
daemon_conf b fb "$W/b.git" "poll_interval: 30"
daemon_start b
BPID=$DPID
TIP=$(git -C "$W/b.git" rev-parse main)
wait_in_sync b "$WAIT" "$BPID" || fail "B: the first plans applied" "$(tail -n 10 "$W/b.log")"
ledger0=$(ledger_total fb)
starts0=$(starts fb)

# 1. the same files, a new history: squashed into one new root commit
git_as checkout -q --orphan rewritten
git_as commit -qm "History rewritten: everything in one commit"
git_as branch -q -M rewritten main
git_as push -q -f origin main
TIP=$(git_as rev-parse HEAD)
if wait_in_sync b "$WAIT" "$BPID"; then
    pass "B1: in sync with the rewritten tip"
else
    fail "B1: in sync with the rewritten tip" "$(status_json b | head -c 1500)"
fi
assert_eq "B1: nothing ran again (ledger)" "$ledger0" "$(ledger_total fb)"
assert_eq "B1: nothing ran again (events)" "$starts0" "$(starts fb)"
assert_eq "B1: the note moved to the new commit, every plan applied" 3 \
    "$(git -C "$W/b.git" notes --ref=taskslaps/b show "$TIP" | head -n 1 | grep -o ' applied ' | wc -l)"

# 2. an applied plan edited, and history rewritten again (amended)
victim=$(plan_id_of "${ALL[1]}")
sed -i 's/^title: .*/title: Foreign keys, edited after the fact/' "$CLONE/migrations/$(basename "${ALL[1]}")"
git_as commit -q -a --amend -m "History rewritten again, with an edit"
git_as push -q -f origin main
TIP=$(git_as rev-parse HEAD)
if wait_status b ".tip == \"$TIP\" and .state == \"idle\" and (.drift | any(. == \"$victim\"))" "$WAIT" "$BPID"; then
    pass "B2: the edited plan is in drift"
else
    fail "B2: the edited plan is in drift" "$(status_json b | head -c 1500)"
fi
TIP=$(push_plan "${ALL[3]}")
later=$(plan_id_of "${ALL[3]}")
wait_status b ".tip == \"$TIP\" and .state == \"idle\"" "$WAIT" "$BPID"
st=$(status_json b)
assert_eq "B2: health failed, out of sync" "failed|out_of_sync" "$(jq -r '.health + "|" + .sync' <<<"$st")"
assert_eq "B2: the later plan waits" "pending" "$(jq -r ".plans[] | select(.plan_id == \"$later\") | .status" <<<"$st")"
assert_eq "B2: nothing ran (ledger)" "$ledger0" "$(ledger_total fb)"
assert_eq "B2: no step started" "$(qdb fb "SELECT count(*) FROM taskslaps.events WHERE type = 'step.start'")" \
    "$(qdb fb "SELECT count(*) FROM taskslaps.events WHERE type = 'step.start' AND id < (SELECT min(id) FROM taskslaps.events WHERE type = 'plan.drift')")"

# 3. the file restored: the drift clears, the later plan runs, nothing twice
cp "${ALL[1]}" "$CLONE/migrations/"
git_as commit -q -a -m "Restore $victim"
git_as push -q origin main
TIP=$(git_as rev-parse HEAD)
if wait_in_sync b "$WAIT" "$BPID"; then
    pass "B3: restored: in sync"
else
    fail "B3: restored: in sync" "$(status_json b | head -c 1500)"
fi
assert_eq "B3: the later plan applied" applied "$(qdb fb "SELECT status FROM taskslaps.plans WHERE plan_id = '$later'")"
assert_eq "B3: no step twice in the ledger" 0 "$(ledger_dups fb)"
assert_eq "B3: the drifted plan's steps ran once" 0 \
    "$(qdb fb "SELECT count(*) FROM taskslaps.step_ledger WHERE plan_id = '$victim' AND applied_at > (SELECT min(at) FROM taskslaps.events WHERE type = 'plan.drift')")"
CURDB=fb
assert_sql "B3: the backfills updated each row once" 0 \
    "SELECT count(*) FROM employee WHERE torture_updates <> 2 + (id % 50 = 0)::int"

# ======================================================================== C
section "C: repository moved away"
note "C: repository moved away"
for ((m = 1; m <= MOVES; m++)); do
    mv "$W/b.git" "$W/b.moved"
    "$TASKSLAPSCTL" --socket "$W/b.sock" reconcile >/dev/null 2>&1
    if wait_status b '.state == "error" and .health == "failed" and (.last_error // "" | length) > 0' 30 "$BPID"; then
        pass "C$m: the status says the repository is gone"
    else
        fail "C$m: the status says the repository is gone" "$(status_json b | head -c 1500)"
    fi
    assert_contains "C$m: last_error says the repository is gone" "is gone" "$(status_field b .last_error)"
    sleep "0.$(rand 10)"
    assert_eq "C$m: the daemon is up and answers" true "$(alive "$BPID" && status_field b '.state == "error"')"
    mv "$W/b.moved" "$W/b.git"
    "$TASKSLAPSCTL" --socket "$W/b.sock" reconcile >/dev/null 2>&1
    if wait_in_sync b "$WAIT" "$BPID"; then
        pass "C$m: moved back: in sync, error cleared"
    else
        fail "C$m: moved back: in sync, error cleared" "$(status_json b | head -c 1500)"
    fi
    assert_eq "C$m: last_error cleared" null "$(status_field b .last_error)"
done
# a push after the moves is seen at once (inotify; the poll is 30 s away)
TIP=$(push_plan "${ALL[4]}")
if wait_in_sync b 20 "$BPID"; then
    pass "C: a push after the moves is applied"
else
    fail "C: a push after the moves is applied" "$(status_json b | head -c 1500)"
fi
assert_eq "C: no step twice in the ledger" 0 "$(ledger_dups fb)"
daemon_term "$BPID"
assert_eq "B/C: the daemon exits 0 on SIGTERM" 0 "$DRC"
unset CLONE

# ======================================================================== D
section "D: runner lock session killed"
note "D: runner lock session killed"
newdb fd
q "CREATE TABLE acct (id bigint PRIMARY KEY, bump int NOT NULL DEFAULT 0, upd int NOT NULL DEFAULT 0);
   INSERT INTO acct (id) SELECT g FROM generate_series(1, 20000) g;
   CREATE FUNCTION count_upd() RETURNS trigger LANGUAGE plpgsql AS \$\$ BEGIN NEW.upd := OLD.upd + 1; RETURN NEW; END \$\$;
   CREATE TRIGGER acct_count BEFORE UPDATE ON acct FOR EACH ROW EXECUTE FUNCTION count_upd();" >/dev/null
export CLONE=$W/clone.d
make_repo "$W/d.git"
daemon_conf c fd "$W/d.git"
daemon_conf d fd "$W/d.git"
TIP=$(git -C "$W/d.git" rev-parse main)
daemon_start c
CPID=$DPID
wait_in_sync c "$WAIT" "$CPID" || fail "D: the first daemon is in sync" "$(status_json c | head -c 800)"
daemon_start d
DDPID=$DPID
wait_status d '.state == "standby"' 30 "$DDPID" || fail "D: the second daemon is standby" "$(status_json d | head -c 800)"
both=0
for ((l = 1; l <= LOCK_KILLS; l++)); do
    holder=$(q "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a USING (pid) WHERE l.locktype = 'advisory'")
    q "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory'" >/dev/null
    "$TASKSLAPSCTL" --socket "$W/c.sock" reconcile >/dev/null 2>&1
    "$TASKSLAPSCTL" --socket "$W/d.sock" reconcile >/dev/null 2>&1
    # for a while: never two runners (once both had a moment to notice)
    sleep 1.5
    end=$(($(ms_now) + 6000))
    while [ "$(ms_now)" -lt "$end" ]; do
        sc=$(status_field c .state)
        sd=$(status_field d .state)
        case "$sc/$sd" in
        standby/* | */standby | reconnecting/* | */reconnecting | starting/* | */starting) ;;
        *) both=$((both + 1)) ;;
        esac
        sleep 0.2
    done
    holder2=$(q "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a USING (pid) WHERE l.locktype = 'advisory'")
    [ -z "${TS_VERBOSE:-}" ] || echo "     lock kill $l: $holder -> $holder2 (c $sc, d $sd)"
    assert_eq "D$l: one runner holds the lock again" 1 "$(q "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'")"
done
assert_eq "D: never two runners at once (status samples)" 0 "$both"
plan "$W/d.plans/0001-bump.yaml" <<'EOF'
id: 0001-bump
title: Bump every account once
reason: torture test of the runner lock
steps:
  - op: backfill_sql
    sql: UPDATE acct SET bump = bump + 1
    limits: { batch_size: 500, rows_per_second: 0 }
EOF
TIP=$(push_plan "$W/d.plans/0001-bump.yaml")
CURDB=fd
if wait_for "SELECT status = 'applied' FROM taskslaps.plans WHERE plan_id = '0001-bump'" 60; then
    pass "D: the plan is applied"
else
    fail "D: the plan is applied" "$(status_json c | head -c 600)" "$(status_json d | head -c 600)"
fi
assert_sql "D: every row bumped exactly once" "20000|20000" \
    "SELECT count(*) FILTER (WHERE bump = 1), count(*) FILTER (WHERE upd = 1) FROM acct"
sleep 1
assert_eq "D: one runner, one standby" "idle standby" "$(printf '%s\n' "$(status_field c .state)" "$(status_field d .state)" | sort | xargs)"
daemon_term "$CPID"
assert_eq "D: daemon c exits 0" 0 "$DRC"
daemon_term "$DDPID"
assert_eq "D: daemon d exits 0" 0 "$DRC"
assert_eq "D: no advisory lock after both stopped" "" "$(advisory_locks fd)"
unset CLONE

env_finish
