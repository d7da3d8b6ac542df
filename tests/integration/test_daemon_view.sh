#!/usr/bin/env bash
# Integration test of taskslapsd: the database's view a daemon keeps between
# passes (src/daemon/dbview.c) follows what other processes write between
# two pushes. An operator mends the database from outside the daemon
# (`taskslapsctl --db accept-drift`, `taskslapsctl --db resume`): the next
# pass must see it, not the plan's state of the last pass, in its decisions,
# its status and its notes. And `status` with args.plan: that plan alone.
# Last, what the daemon keeps between passes, after pushes that move files,
# ids and history under it, is held against what a daemon started afresh
# says at the same tip.
#
#   bash tests/integration/test_daemon_view.sh   (TS_VERBOSE=1 prints passes)
set -u

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/lib/daemon.sh
. "$here/../lib/daemon.sh"
daemon_env_start

# ------------------------------------------------------------------ 1
section "drift accepted from outside the daemon, then a push"
newdb v1
repo_new v
put_plan v main dev@example.com 0001-a.yaml < <(table_plan a)
daemon_conf v "$W/v.git"
daemon_start v || exit 1
assert_status "0001-a is applied" v "pst('0001-a') == 'applied' and s['sync'] == 'in_sync'"
# an edit of the applied plan: drift, and the line stops there
sed -i 's/reason: the application needs it/reason: the application still needs it/' \
    "$W/v.wt/migrations/0001-a.yaml"
git_as v dev@example.com commit -qam "Reword 0001-a" && git_as v dev@example.com push -q origin main
EDIT=$(git -C "$W/v.wt" rev-parse HEAD)
assert_status "the edit is drift" v "s['tip'] == '$EDIT' and pst('0001-a') == 'drift'"
# the operator accepts it with the database's own verb, not through the daemon
"$TASKSLAPSCTL" --db "$CONNINFO" --target v accept-drift 0001-a "$W/v.wt/migrations/0001-a.yaml" \
    >"$W/accept.out" 2>&1
assert_eq "accept-drift --db exits 0" 0 "$?"
assert_sql "the row is applied with the new checksum" applied \
    "SELECT status FROM taskslaps.plans WHERE plan_id = '0001-a'"
put_plan v main dev@example.com 0002-b.yaml < <(table_plan b)
assert_status "the next push: 0001-a applied as the database says, and 0002-b runs" v \
    "s['tip'] == '$COMMIT' and pst('0001-a') == 'applied' and pst('0002-b') == 'applied' and s['sync'] == 'in_sync'"
assert_sql "table b exists" t "SELECT to_regclass('public.b') IS NOT NULL"
if wait_note "$W/v.git" v "$EDIT" "applied 0001-a"; then
    pass "the note on the edit says applied"
else
    fail "the note on the edit says applied" "$(note_of "$W/v.git" v "$EDIT")"
fi

# ------------------------------------------------------------------ 2
section "a failed plan aborted, then resumed, from outside the daemon between pushes"
# fails at this tip: its table exists with another shape
q "CREATE TABLE c (id text)" >/dev/null
put_plan v main dev@example.com 0003-c.yaml < <(table_plan c)
FAILED=$COMMIT
assert_status "0003-c failed" v "s['tip'] == '$FAILED' and pst('0003-c') == 'failed'"
# another runner's operator aborted it (the row and the event an abort
# leaves), written from outside the daemon between two pushes
q "UPDATE taskslaps.plans SET status = 'aborted', updated_at = now() WHERE target = 'v' AND plan_id = '0003-c';
   INSERT INTO taskslaps.events (target, type, plan_id, message) VALUES ('v', 'plan.aborted', '0003-c', 'aborted by an operator')" >/dev/null
put_plan v main dev@example.com 0004-d.yaml < <(table_plan d)
assert_status "the next push sees the abort written outside: 0003-c aborted, 0004-d waits" v \
    "s['tip'] == '$COMMIT' and pst('0003-c') == 'aborted' and pst('0004-d') == 'pending'"
q "DROP TABLE c" >/dev/null
"$TASKSLAPSCTL" --db "$CONNINFO" --target v resume 0003-c >"$W/resume.out" 2>&1
assert_eq "resume --db exits 0" 0 "$?"
ctl v reconcile
assert_status "after resume --db and a reconcile: both applied" v \
    "pst('0003-c') == 'applied' and pst('0004-d') == 'applied' and s['sync'] == 'in_sync'"

# ------------------------------------------------------------------ 3
section "status with args.plan holds that plan alone"
status_of() {
    python3 - "$W/v.sock" "$1" <<'PY'
import json, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
s.sendall(json.dumps({"v": 1, "id": 1, "cmd": "status", "args": {"plan": sys.argv[2]}}).encode() + b"\n")
buf = b""
while not buf.endswith(b"\n"):
    chunk = s.recv(65536)
    if not chunk:
        break
    buf += chunk
r = json.loads(buf)["result"]
print("%s %s %s" % (r.get("sync"), ",".join(p["plan_id"] + ":" + p["status"] for p in r["plans"]),
                    "history" in r))
PY
}
assert_eq "one plan" "in_sync 0002-b:applied True" "$(status_of 0002-b)"
assert_eq "no such plan: none" "in_sync  True" "$(status_of 9999-none)"

# ------------------------------------------------------------------ 4
section "an event whose id was drawn before a higher one was read, committed after"
# An operator's word from outside (here an abort's row and event, on an
# applied plan the daemon does not touch again), in a transaction still open while the
# daemon reads a higher event id (its own): the read skips the abort's id,
# and a later read must find it when it commits.
mkfifo "$W/held.in"
"$PSQL" -X -At -v ON_ERROR_STOP=1 -d "$CURDB" <"$W/held.in" >"$W/held.out" 2>&1 &
HELD=$!
exec 7>"$W/held.in"
echo "BEGIN;
UPDATE taskslaps.plans SET status = 'aborted', updated_at = now() WHERE target = 'v' AND plan_id = '0004-d';
INSERT INTO taskslaps.events (target, type, plan_id, message) VALUES ('v', 'plan.aborted', '0004-d', 'aborted by an operator') RETURNING 'held', id;" >&7
for _ in $(seq 1 100); do grep -q '^held' "$W/held.out" && break; sleep 0.05; done
HELD_ID=$(sed -n 's/^held|//p' "$W/held.out")
assert_eq "the abort's event drew its id and waits uncommitted" 1 "$([ -n "$HELD_ID" ] && echo 1)"
# two passes: the first writes an event of its own (an invalid file), the
# second reads it, an id above the held one
put_plan v main dev@example.com 0006-x.yaml < <(printf 'bogus: [\n')
assert_status "the first pass noted 0006-x" v "s['tip'] == '$COMMIT' and pst('0006-x') == 'invalid'"
put_plan v main dev@example.com 0007-y.yaml < <(printf 'bogus: [\n')
assert_status "the second pass read past the held id" v "s['tip'] == '$COMMIT' and pst('0007-y') == 'invalid' and pst('0004-d') == 'applied'"
assert_sql "an event above the held one is committed" t \
    "SELECT max(id) > $HELD_ID FROM taskslaps.events WHERE target = 'v'"
echo "COMMIT;" >&7
exec 7>&-
wait "$HELD"
assert_sql "the abort is committed" aborted "SELECT status FROM taskslaps.plans WHERE target = 'v' AND plan_id = '0004-d'"
put_plan v main dev@example.com 0008-z.yaml < <(printf 'bogus: [\n')
assert_status "the next pass finds the abort below the ids it had read" v \
    "s['tip'] == '$COMMIT' and pst('0008-z') == 'invalid' and pst('0004-d') == 'aborted'"

# ------------------------------------------------------------------ 5
section "status with args.plan holds every item of that id"
# a second unparsable file with the same name stem: two items, one id
put_plan v main dev@example.com 0006-x.yml < <(printf 'bogus: [\n')
assert_status "both files are listed" v \
    "s['tip'] == '$COMMIT' and sum(1 for p in s['plans'] if p['plan_id'] == '0006-x') == 2"
assert_eq "args.plan gives both" "0006-x:invalid,0006-x:invalid" "$(status_of 0006-x | cut -d' ' -f2)"

# ------------------------------------------------------------------ 6
section "what the daemon keeps between passes says what a daemon started afresh says"
# A pass reuses what it kept (the snapshot's entries, the plan cache, each
# plan's counts while the view's entry of it is unchanged, the status items):
# after pushes that move files, ids and history under it, its plans must be
# what a daemon with nothing kept reads at the same tip.
plans_of() { # the status document's plans, without what changes with time
    ctl v status --json
    printf '%s' "$OUT" | python3 -c '
import json, sys
for p in json.load(sys.stdin)["plans"]:
    print("|".join(str(p.get(k, "")) for k in
                   ("plan_id", "file", "status", "max_hazard", "steps_done", "steps_total", "commit", "author")))'
}
idle_at() { # idle_at MSG: the daemon has passed over the clone's HEAD and is idle
    local tip
    tip=$(git -C "$W/v.wt" rev-parse HEAD)
    assert_status "$1" v "s['tip'] == '$tip' and s['state'] == 'idle'"
}
# the line goes on past 0004-d, aborted in section 4, and the files that do not parse go
"$TASKSLAPSCTL" --db "$CONNINFO" --target v resume 0004-d >"$W/resume2.out" 2>&1
assert_eq "resume --db 0004-d exits 0" 0 "$?"
git_as v dev@example.com rm -q migrations/0006-x.yaml migrations/0006-x.yml migrations/0007-y.yaml \
    migrations/0008-z.yaml
git_as v dev@example.com commit -qm "Remove the files that do not parse" &&
    git_as v dev@example.com push -q origin main
idle_at "the files that do not parse removed"
put_plan v main dev@example.com 0009-e.yaml < <(table_plan e)
assert_status "0009-e is applied" v "s['tip'] == '$COMMIT' and pst('0009-e') == 'applied'"
# the same id in a second file (the later file is invalid), then the first file goes
put_plan v main dev@example.com 0010-f.yaml < <(printf 'id: 0009-e\n'; table_plan f)
assert_status "a second file with id 0009-e is invalid" v \
    "s['tip'] == '$COMMIT' and sum(1 for p in s['plans'] if p['plan_id'] == '0009-e') == 2"
git_as v dev@example.com rm -q migrations/0009-e.yaml
git_as v dev@example.com commit -qm "Remove 0009-e.yaml" && git_as v dev@example.com push -q origin main
idle_at "the first file removed"
# an applied plan renamed
git_as v ops@example.com mv migrations/0002-b.yaml migrations/0011-b.yaml
git_as v ops@example.com commit -qm "Rename 0002-b" && git_as v ops@example.com push -q origin main
idle_at "0002-b renamed"
# a plan pushed (it waits behind the drift), then the branch forced back before it
put_plan v main dev@example.com 0012-g.yaml < <(table_plan g)
assert_status "0012-g is listed" v "s['tip'] == '$COMMIT' and pst('0012-g') == 'pending'"
git -C "$W/v.wt" reset -q --hard HEAD~1 && git_as v dev@example.com push -q -f origin main
idle_at "the branch forced back"
# last (the pass from the previous snapshot, not a rewritten branch's full one): a
# file changed and changed back, pushed together: the file's commit is the later one
echo '# a comment for a while' >>"$W/v.wt/migrations/0001-a.yaml"
git_as v ops@example.com commit -qam "Change 0001-a"
sed -i '$d' "$W/v.wt/migrations/0001-a.yaml"
git_as v dev@example.com commit -qam "Change 0001-a back" && git_as v dev@example.com push -q origin main
idle_at "0001-a changed and back"
plans_of >"$W/kept.txt"
daemon_stop v
assert_eq "exit 0" 0 "$DRC"
daemon_start v || exit 1
idle_at "a daemon started afresh passed over the same tip"
plans_of >"$W/fresh.txt"
if [ -s "$W/kept.txt" ] && diff -u "$W/fresh.txt" "$W/kept.txt" >"$W/kept.diff"; then
    pass "the kept daemon's plans are the fresh daemon's ($(wc -l <"$W/kept.txt") items)"
else
    fail "the kept daemon's plans are the fresh daemon's" "$(cat "$W/kept.diff")"
fi
assert_eq "0001-a's file is attributed to the commit that changed it back" \
    "$(git -C "$W/v.wt" log -1 --format=%H --grep='Change 0001-a back')" \
    "$(grep '^0001-a|' "$W/kept.txt" | cut -d'|' -f7)"

daemon_stop v
assert_eq "exit 0" 0 "$DRC"

env_finish
