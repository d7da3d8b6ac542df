#!/usr/bin/env bash
# Integration test of taskslapsd against a hostile or careless repository:
# a plan of 256 MiB is `invalid` from its size, once, without the daemon
# reading it; an applied plan removed by a force-push is drift (status,
# event, note on the tip) until restored or accepted; an author e-mail that
# is not UTF-8 leaves status and history readable, and a rate-limit check
# that fails blocks the plan; a notes ref pushed to point at a blob is
# repaired; under require_signed_h3 an unsigned merge of a signed H3 commit
# does not run it; the chaos rate limit counts signed commits by key.
#
#   bash tests/integration/test_daemon_hostile.sh   (TS_VERBOSE=1 prints passes)

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/lib/daemon.sh
. "$here/../lib/daemon.sh"
daemon_env_start

# raw_commit NAME BRANCH AUTHOR_EMAIL MESSAGE: commits the clone's work tree
# on BRANCH with that author written byte for byte (git commit would
# re-encode what is not UTF-8), and pushes. COMMIT is the new commit.
raw_commit() {
    local wt=$W/$1.wt tree parent now
    git -C "$wt" add -A || return 1
    tree=$(git -C "$wt" write-tree)
    parent=$(git -C "$wt" rev-parse HEAD)
    now=$(date +%s)
    COMMIT=$(printf 'tree %s\nparent %s\nauthor Bob <%s> %s +0000\ncommitter Bob <%s> %s +0000\n\n%s\n' \
        "$tree" "$parent" "$3" "$now" "$3" "$now" "$4" | git -C "$wt" hash-object -t commit -w --stdin)
    git -C "$wt" reset -q --soft "$COMMIT" && git -C "$wt" push -q origin "$2"
}

# ------------------------------------------------------------------ 6
section "a huge plan is refused from its size"
newdb big1
repo_new big
put_plan big main dev@example.com 0001-t.yaml < <(table_plan t)
# 256 MiB of spaces: about 1 MB in git
head -c $((256 * 1024 * 1024)) /dev/zero | tr '\0' ' ' >"$W/big.wt/migrations/0002-huge.yaml"
git_as big dev@example.com add -A && git_as big dev@example.com commit -qm "A huge plan" &&
    git_as big dev@example.com push -q origin main
daemon_conf big "$W/big.git"
daemon_start big || exit 1
assert_status "the huge plan is invalid, the one before it applied" big \
    "pst('0002-huge') == 'invalid' and pst('0001-t') == 'applied' and s['state'] in ('idle', 'error')"
assert_contains "it says why" "file is 268435456 bytes; a plan may be at most 1048576 bytes" \
    "$(status_py big 'plan("0002-huge").get("message", "")')"
bump big big && bump big big
assert_sql "one plan.invalid event over three passes" 1 \
    "SELECT count(*) FROM taskslaps.events WHERE type = 'plan.invalid' AND plan_id = '0002-huge'"
hwm=$(awk '/^VmHWM:/ { print $2 }' "/proc/$(daemon_pid big)/status")
# reading it would take 256 MiB at least, twice (libgit2's copy and ours)
assert_le "the daemon's peak RSS stays far below the plan's size (KiB)" $((160 * 1024)) "$hwm"
daemon_stop big
assert_eq "exit 0" 0 "$DRC"
rm -f "$W/big.wt/migrations/0002-huge.yaml"

# ------------------------------------------------------------------ 10
section "an applied plan removed by a force-push is drift"
newdb fp1
repo_new fp
put_plan fp main dev@example.com 0001-a.yaml < <(table_plan a)
put_plan fp main dev@example.com 0002-b.yaml < <(table_plan b)
daemon_conf fp "$W/fp.git"
daemon_start fp || exit 1
assert_status "both plans applied" fp "pst('0001-a') == 'applied' and pst('0002-b') == 'applied' and s['sync'] == 'in_sync'"
# history rewritten: 0001-a never was, and 0003-c is new
git -C "$W/fp.wt" reset -q --hard HEAD~2
table_plan b >"$W/fp.wt/migrations/0002-b.yaml"
table_plan c >"$W/fp.wt/migrations/0003-c.yaml"
git_as fp dev@example.com add -A && git_as fp dev@example.com commit -qm "b and c" &&
    git_as fp dev@example.com push -q -f origin main
TIP=$(git -C "$W/fp.wt" rev-parse HEAD)
assert_status "the removed plan is drift and listed under drift" fp \
    "s['tip'] == '$TIP' and pst('0001-a') == 'drift' and s['drift'] == ['0001-a'] and s['state'] in ('idle', 'error')"
assert_eq "health is failed" failed "$(status_py fp 's["health"]')"
assert_eq "out of sync" out_of_sync "$(status_py fp 's["sync"]')"
assert_eq "the plan after it waits" pending "$(status_py fp 'pst("0003-c")')"
assert_contains "status says how to go on" "accept-drift 0001-a" "$(status_py fp 'plan("0001-a").get("message", "")')"
assert_sql "0003-c did not run; the row says drift" "f|drift" \
    "SELECT to_regclass('public.c') IS NOT NULL, (SELECT status FROM taskslaps.plans WHERE plan_id = '0001-a')"
if wait_note "$W/fp.git" fp "$TIP" "drift 0001-a"; then
    pass "the tip's note says so"
else
    fail "the tip's note says so" "$(note_of "$W/fp.git" fp "$TIP")"
fi
ctl fp status
assert_rc "status exits 1 with drift" 1 "$RC"
bump fp fp && bump fp fp
assert_sql "one plan.drift event over three passes" 1 \
    "SELECT count(*) FROM taskslaps.events WHERE type = 'plan.drift' AND plan_id = '0001-a'"
ctl fp accept-drift 0001-a
assert_rc "accept-drift of the removed plan succeeds" 0 "$RC" "$ERR"
assert_contains "it says what it did" "removal from the branch is accepted" "$OUT"
assert_status "then the line moves on" fp \
    "pst('0003-c') == 'applied' and pst('0001-a') is None and s['drift'] == [] and s['sync'] == 'in_sync'"
assert_eq "health is healthy again" healthy "$(status_py fp 's["health"]')"
assert_sql "nothing of 0001-a was undone" "t|applied" \
    "SELECT to_regclass('public.a') IS NOT NULL, (SELECT status FROM taskslaps.plans WHERE plan_id = '0001-a')"
ctl fp accept-drift 0001-a
assert_ne "accepting it twice is refused" 0 "$RC"
daemon_stop fp
assert_eq "exit 0" 0 "$DRC"

# ------------------------------------------------------------------ 12
section "text from git that is not UTF-8; a rate-limit check that fails"
newdb u1
repo_new u play
daemon_conf u "$W/u.git" 'branch: play' 'protected_branches: [main]'
daemon_start u || exit 1
repo_checkout u play
table_plan t1 >"$W/u.wt/migrations/0001-t1.yaml"
BAD=$(printf 'b\377ob@x.test')
raw_commit u play "$BAD" "Add t1"
assert_status "the plan of an author whose e-mail is not UTF-8 is applied" u "pst('0001-t1') == 'applied'"
ctl u status --json
assert_rc "status --json answers" 0 "$RC" "$ERR"
assert_contains "the author, escaped" 'b\\xffob@x.test' "$OUT"
ctl u status
assert_rc "status answers" 0 "$RC" "$ERR"
ctl u history
assert_rc "history answers" 0 "$RC" "$ERR"
assert_sql "the plan row's author, escaped" 'b\xffob@x.test' \
    "SELECT author FROM taskslaps.plans WHERE plan_id = '0001-t1'"
# the rate-limit query cannot run: the plan must not either
# (it counts the plans that started in the last 24 h, by their wave.start events)
q "ALTER TABLE taskslaps.events ALTER COLUMN at DROP DEFAULT;
   ALTER TABLE taskslaps.events ALTER COLUMN at TYPE text USING at::text;
   ALTER TABLE taskslaps.events ALTER COLUMN at SET DEFAULT clock_timestamp()::text" >/dev/null
put_plan u play carol@example.com 0002-t2.yaml < <(table_plan t2)
assert_status "a plan whose rate limit cannot be checked is blocked" u "pst('0002-t2') == 'blocked'"
assert_contains "it says why" "rate limit could not be checked" "$(status_py u 'plan("0002-t2").get("message", "")')"
assert_sql "and did not run" f "SELECT to_regclass('public.t2') IS NOT NULL"
q "ALTER TABLE taskslaps.events ALTER COLUMN at DROP DEFAULT;
   ALTER TABLE taskslaps.events ALTER COLUMN at TYPE timestamptz USING at::timestamptz;
   ALTER TABLE taskslaps.events ALTER COLUMN at SET DEFAULT clock_timestamp()" >/dev/null
ctl u reconcile
assert_status "once it can be checked, it runs" u "pst('0002-t2') == 'applied'"
daemon_stop u
assert_eq "exit 0" 0 "$DRC"

# ------------------------------------------------------------------ 13
section "a notes ref pushed to point at a blob"
newdb nb1
repo_new nb
put_plan nb main dev@example.com 0001-t.yaml < <(table_plan t)
C1=$COMMIT
daemon_conf nb "$W/nb.git"
daemon_start nb || exit 1
assert_status "applied" nb "pst('0001-t') == 'applied'"
wait_note "$W/nb.git" nb "$C1" "Status: applied"
blob=$(echo 'not notes' | git -C "$W/nb.wt" hash-object -w --stdin)
git -C "$W/nb.wt" push -q -f origin "$blob:refs/notes/taskslaps/nb"
assert_eq "the notes ref is a blob now" blob "$(git --git-dir="$W/nb.git" cat-file -t refs/notes/taskslaps/nb)"
bump nb nb
assert_eq "it is a commit again" commit "$(git --git-dir="$W/nb.git" cat-file -t refs/notes/taskslaps/nb)"
assert_contains "the note is back" "Status: applied" "$(note_of "$W/nb.git" nb "$C1")"
assert_eq "health is healthy" healthy "$(status_py nb 's["health"]')"
bump nb nb
assert_sql "one notes.repaired event, which says what it was" "1|t" \
    "SELECT count(*), bool_and(message LIKE '%pointed at a blob%') FROM taskslaps.events WHERE type = 'notes.repaired'"
daemon_stop nb
assert_eq "exit 0" 0 "$DRC"

# ------------------------------------------------------------------ 15, 16
if ! command -v ssh-keygen >/dev/null; then
    echo "ssh-keygen not found: the signature cases are skipped" >&2
    env_finish
fi
K=$W/keys
mkdir -p "$K"
for who in alice carol mallory eve; do
    ssh-keygen -q -t ed25519 -N '' -C "$who" -f "$K/$who" || exit 1
done
{
    echo "alice@example.com namespaces=\"git\" $(cat "$K/alice.pub")"
    echo "carol@example.com namespaces=\"git\" $(cat "$K/carol.pub")"
} >"$K/allowed_signers"

# git_signed NAME EMAIL KEY ARGS...: git in the clone of NAME as EMAIL, signing with KEY.
git_signed() {
    local name=$1 email=$2 key=$3
    shift 3
    git_as "$name" "$email" -c gpg.format=ssh -c user.signingkey="$key" "$@"
}

section "require_signed_h3: authorship and approval"
newdb sg1
q "CREATE TABLE acct (id bigint PRIMARY KEY, legacy text)" >/dev/null
repo_new sg
repo_checkout sg main
git -C "$W/sg.wt" checkout -q -b feature
cat >"$W/sg.wt/migrations/0001-drop-legacy.yaml" <<'EOF'
title: Drop the legacy column
reason: nobody reads it
steps:
  - { op: drop_column, table: acct, name: legacy }
EOF
git_signed sg alice@example.com "$K/alice" add -A &&
    git_signed sg alice@example.com "$K/alice" commit -q -S -m "Drop legacy" &&
    git_as sg alice@example.com push -q origin feature
CA=$(git -C "$W/sg.wt" rev-parse HEAD)
git -C "$W/sg.wt" checkout -q main
git_as sg mallory@example.com merge -q --no-ff -m "Merge feature" feature &&
    git_as sg mallory@example.com push -q origin main
CM=$(git -C "$W/sg.wt" rev-parse HEAD)
daemon_conf sg "$W/sg.git" 'require_signed_h3: true' "allowed_signers: $K/allowed_signers"
daemon_start sg || exit 1
assert_status "an allowed signer's H3 commit merged unsigned is blocked" sg \
    "s['tip'] == '$CM' and pst('0001-drop-legacy') == 'blocked'"
msg=$(status_py sg 'plan("0001-drop-legacy").get("message", "")')
assert_contains "the merge is named" "commit ${CM:0:12}" "$msg"
assert_contains "and what is wrong with it" "not signed" "$msg"
assert_eq "the plan's own commit is alice's" "$CA" "$(status_py sg 'plan("0001-drop-legacy").get("commit")')"
assert_sql "the column is still there" t \
    "SELECT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = 'acct'::regclass AND attname = 'legacy' AND NOT attisdropped)"
# merged again, by an allowed signer this time
git -C "$W/sg.wt" reset -q --hard HEAD~1
git_signed sg carol@example.com "$K/carol" merge -q -S --no-ff -m "Merge feature, approved" feature &&
    git_as sg carol@example.com push -q -f origin main
assert_status "with the merge signed by an allowed key it runs" sg "pst('0001-drop-legacy') == 'applied'"
daemon_stop sg
assert_eq "exit 0" 0 "$DRC"

section "the chaos rate limit counts signed commits by key"
newdb rk1
repo_new rk play
daemon_conf rk "$W/rk.git" 'branch: play' 'protected_branches: [main]' \
    'chaos: { max_plans_per_author_per_day: 1 }'
daemon_start rk || exit 1
repo_checkout rk play
table_plan k1 >"$W/rk.wt/migrations/0001-k1.yaml"
git_signed rk eve1@example.com "$K/eve" add -A &&
    git_signed rk eve1@example.com "$K/eve" commit -q -S -m k1 &&
    git_as rk eve1@example.com push -q origin play
assert_status "eve's first plan is applied" rk "pst('0001-k1') == 'applied'"
table_plan k2 >"$W/rk.wt/migrations/0002-k2.yaml"
git_signed rk eve2@example.com "$K/eve" add -A &&
    git_signed rk eve2@example.com "$K/eve" commit -q -S -m k2 &&
    git_as rk eve2@example.com push -q origin play
assert_status "the same key under another e-mail is rate limited" rk "pst('0002-k2') == 'rate_limited'"
FP=$(ssh-keygen -lf "$K/eve.pub" | cut -d' ' -f2)
assert_contains "the key is named" "key $FP already has 1 plans" "$(status_py rk 'plan("0002-k2").get("message", "")')"
assert_sql "and did not run" f "SELECT to_regclass('public.k2') IS NOT NULL"
daemon_stop rk
assert_eq "exit 0" 0 "$DRC"

env_finish
