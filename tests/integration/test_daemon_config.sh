#!/usr/bin/env bash
# Integration test of what taskslapsd's configuration check refuses, and of
# what status says when the followed branch goes away:
#   - a database connection string libpq cannot read fails -n (exit 2) with
#     libpq's reason and without the password, on start, on reload and in
#     taskslapsctl --db;
#   - branch must be a branch name (git's rules), not a full ref name;
#   - notes_ref must be a valid ref name under refs/notes/;
#   - a governor degraded threshold above its critical one is refused;
#   - a deleted branch makes sync out_of_sync, with the reason.
#
#   bash tests/integration/test_daemon_config.sh   (TS_VERBOSE=1 prints passes)

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/lib/daemon.sh
. "$here/../lib/daemon.sh"
daemon_env_start

newdb cfg1
repo_new origin
put_plan origin main dev@example.com 0001-t.yaml <<'EOF'
title: T
reason: something to be in sync with
steps:
  - { op: create_table, table: t, columns: [{ name: id, type: int, nullable: false }], primary_key: [id] }
EOF

# check NAME KEY_LINE...: taskslapsd -n on the configuration with those
# keys replaced; RC, OUT and ERR as for ctl.
check() {
    local name=$1
    shift
    daemon_conf "$name" "$W/origin.git" "$@"
    "$TASKSLAPSD" -n --config "$W/$name.yaml" >"$W/.out" 2>"$W/.err"
    RC=$?
    OUT=$(cat "$W/.out")
    ERR=$(cat "$W/.err")
}

# ------------------------------------------------------------------
section "a malformed connection string"
check good
assert_rc "-n accepts the good configuration" 0 "$RC" "$ERR"

check uri1 'database: "postgresql://postgres:S3cretUriPw@[::1:55600/bench"'
assert_rc "-n refuses a URI with a malformed IPv6 host" 2 "$RC" "$OUT"
assert_not_contains "... without saying the configuration is ok" "configuration ok" "$OUT"
assert_match "... naming the key, with line:column" "uri1.yaml:[0-9]+:[0-9]+: error: database: not a connection string libpq can read: end of string reached" "$ERR"
assert_contains "... showing where, the password masked" "postgres:********@[::1:55600/bench" "$ERR"
assert_not_contains "... and never the password" "S3cretUriPw" "$ERR$OUT"

check uri2 'database: "postgresql://postgres:S3cret%zzPw@localhost:55600/bench"'
assert_rc "-n refuses a bad percent escape in the password" 2 "$RC" "$OUT"
assert_contains "... saying what is wrong" "invalid percent-encoded token" "$ERR"
assert_not_contains "... without the password" "S3cret" "$ERR$OUT"
assert_not_contains "... or its tail" "zzPw" "$ERR$OUT"

check kw1 'database: "host=/tmp password=Kw5ecret nosuch=1"'
assert_rc "-n refuses an unknown keyword" 2 "$RC"
assert_contains "... naming it" 'invalid connection option "nosuch"' "$ERR"
assert_not_contains "... without the password" "Kw5ecret" "$ERR$OUT"

# the same string given to taskslapsctl
"$TASKSLAPSCTL" --db 'postgresql://postgres:S3cretUriPw@[::1:55600/bench' install-schema >"$W/.out" 2>"$W/.err"
assert_ne "taskslapsctl --db with a malformed URI fails" 0 "$?"
assert_contains "... with libpq's reason" "end of string reached" "$(cat "$W/.err")"
assert_not_contains "... without the password" "S3cretUriPw" "$(cat "$W/.err" "$W/.out")"

# a reload to a malformed one is refused and logs no password
daemon_conf r1 "$W/origin.git"
daemon_start r1 || exit 1
assert_status "the daemon is in sync" r1 "s['sync'] == 'in_sync'"
daemon_conf r1 "$W/origin.git" 'database: "postgresql://postgres:S3cretUriPw@[::1:55600/bench"'
notify_mark r1
kill -HUP "$(daemon_pid r1)"
wait_notify r1 READY=1 10
assert_contains "a reload to a malformed one keeps the old configuration" \
    "the new configuration is invalid; keeping the old one" "$(cat "$W/r1.log")"
assert_not_contains "... and its log holds no password" "S3cretUriPw" "$(cat "$W/r1.log")"
ctl r1 status --json
assert_not_contains "... nor does the status" "S3cretUriPw" "$OUT"
assert_eq "... which still answers, connected" true "$(status_py r1 's["database"]["connected"]')"

# ------------------------------------------------------------------
section "branch is a branch name"
check b1 'branch: refs/heads/main'
assert_rc "-n refuses branch: refs/heads/main" 2 "$RC" "$OUT"
assert_contains "... saying it is a full ref name, and what to write" \
    "branch: expected a branch name such as 'main', found the full ref name 'refs/heads/main' (write 'main')" "$ERR"
check b2 'branch: refs/tags/v1'
assert_rc "-n refuses any refs/ name" 2 "$RC" "$OUT"
for bad in 'main..x' 'x.lock' '-x' 'HEAD' 'a b' 'x/' 'ma~in' 'x@{1}'; do
    check b3 "branch: \"$bad\""
    assert_rc "-n refuses branch '$bad'" 2 "$RC" "$OUT"
    assert_contains "... as not a valid git branch name" "is not a valid git branch name" "$ERR"
done
check b4 'branch: team/db-x_1.2'
assert_contains "a branch with slashes, dashes and dots passes the check (-n goes on to look for it)" \
    "branch 'team/db-x_1.2' not found in" "$ERR"
assert_not_contains "... with no complaint about its name" "branch:" "$ERR"

# ------------------------------------------------------------------
section "notes_ref is a ref name"
check n1 'notes_ref: refs/notes/a..b'
assert_rc "-n refuses notes_ref refs/notes/a..b" 2 "$RC" "$OUT"
assert_contains "... as not a valid ref name" "notes_ref: 'refs/notes/a..b' is not a valid git ref name" "$ERR"
check n2 'notes_ref: "refs/notes/x y"'
assert_rc "-n refuses a notes_ref with a space" 2 "$RC" "$OUT"
check n3 'notes_ref: refs/notes/'
assert_rc "-n refuses refs/notes/ alone" 2 "$RC" "$OUT"
check n4 'notes_ref: refs/heads/x'
assert_rc "-n refuses a notes_ref outside refs/notes/" 2 "$RC" "$OUT"
check n5 'notes_ref: refs/notes/taskslaps/other'
assert_rc "-n accepts a good notes_ref" 0 "$RC" "$ERR"

# ------------------------------------------------------------------
section "governor thresholds"
check g1 'governor: { degraded_active: 200 }'
assert_rc "-n refuses degraded_active above the default critical_active" 2 "$RC" "$OUT"
assert_contains "... saying so" "governor.degraded_active (200) is above governor.critical_active (150, the default)" "$ERR"
check g2 'governor: { degraded_lag_ms: 9000, critical_lag_ms: 8000 }'
assert_rc "-n refuses degraded_lag_ms above critical_lag_ms" 2 "$RC" "$OUT"
assert_contains "... saying so" "governor.degraded_lag_ms (9000) is above governor.critical_lag_ms (8000)" "$ERR"
check g3 'governor: { critical_lock_waiters: 5 }'
assert_rc "-n refuses critical_lock_waiters below the default degraded one" 2 "$RC" "$OUT"
check g4 'governor: { degraded_xact_s: 700 }'
assert_rc "-n refuses degraded_xact_s above critical_xact_s" 2 "$RC" "$OUT"
check g5 'governor: { degraded_active: 10, critical_active: 10, degraded_xact_s: 5, critical_xact_s: 50 }'
assert_rc "-n accepts degraded equal to or below critical" 0 "$RC" "$ERR"

# ------------------------------------------------------------------
section "the followed branch is deleted"
git -C "$W/origin.git" update-ref -d refs/heads/main
ctl r1 reconcile
assert_status "sync says out_of_sync" r1 "s['sync'] == 'out_of_sync'" 15
assert_contains "... and why" "branch 'main' not found" "$(status_py r1 's["last_result"]')"
ctl r1 status
assert_eq "status exits 1" 1 "$RC"
daemon_stop r1
assert_eq "exit 0" 0 "$DRC"

env_finish
