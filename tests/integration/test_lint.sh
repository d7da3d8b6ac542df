#!/usr/bin/env bash
# Integration test of `taskslapsctl lint` and `plan` as CI runs them: exit
# statuses (0 ok, 1 findings or blocked, 2 invalid or usage), diagnostics with
# file:line:column, --json output, colour only on a terminal, --help.
# Needs no database. Plans are written into a temporary directory.
#
#   TASKSLAPSCTL=build/taskslapsctl bash tests/integration/test_lint.sh
#   (TS_VERBOSE=1 prints passes; ctest sets TASKSLAPSCTL and TS_SRC_DIR)

set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
src=${TS_SRC_DIR:-$(cd "$here/../.." && pwd)}
ctl=${TASKSLAPSCTL:-$src/build/taskslapsctl}
if [ ! -x "$ctl" ]; then
    echo "test_lint: no taskslapsctl at $ctl (set TASKSLAPSCTL)" >&2
    exit 2
fi

# shellcheck source=tests/lib/assert.sh
. "$here/../lib/assert.sh"
# run CMD...: sets $out (stdout and stderr together) and $rc.
run() {
    out=$("$@" 2>&1)
    rc=$?
}
# json_ok DESC PYTHON-EXPR: $out parsed as JSON into `d` must make EXPR true.
json_ok() {
    local why
    if why=$(printf '%s' "$out" | python3 -c '
import json, sys
d = json.load(sys.stdin)
ok = eval(sys.argv[1])
print("" if ok else "expression is false: " + sys.argv[1])
sys.exit(0 if ok else 1)' "$2" 2>&1); then
        pass "$1"
    else
        fail "$1" "$why" "output: $(printf '%s' "$out" | head -c 600)"
    fi
}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
examples=$src/examples/plans
coffee=$examples/0001-coffee-dependency.yaml

# A plan every mode accepts, and one that only a protected branch runs.
mkdir -p "$tmp/chaos"
cp "$coffee" "$tmp/chaos/"
cat >"$tmp/chaos/0002-drop-badge.yaml" <<'EOF'
title: Drop the badge column
reason: The badge system is gone
steps:
  - { op: drop_column, table: employee, name: legacy_badge_code }
EOF

###########################################################################
# 1. The examples: clean in protected mode.
run "$ctl" lint "$examples"
assert_eq "lint examples/plans (protected) exits 0" 0 "$rc"
assert_contains "lint examples/plans reports no problems" ", 0 blocked, 0 with findings, 0 invalid" "$out"
assert_not_contains "lint examples/plans prints no warning" "warning:" "$out"
n_examples=$(find "$examples" -maxdepth 1 \( -name '*.yaml' -o -name '*.yml' -o -name '*.json' -o -name '*.sql' \) | wc -l)
assert_contains "lint counts every example" "$n_examples plans (protected mode)" "$out"

cp -r "$examples" "$tmp/copy"
run "$ctl" lint --mode protected "$tmp/copy"
assert_eq "lint of a copy, --mode protected, exits 0" 0 "$rc"

for f in "$examples"/*; do
    run "$ctl" plan "$f"
    assert_eq "plan $(basename "$f") exits 0" 0 "$rc"
done

###########################################################################
# 2. Chaos mode: H3 plans are blocked, H2 plans are not.
run "$ctl" lint --mode chaos "$tmp/chaos"
assert_eq "lint --mode chaos with an H3 plan exits 1" 1 "$rc"
assert_contains "chaos: the H3 plan is blocked" "0002-drop-badge  blocked" "$out"
assert_contains "chaos: the reason names the mode" "chaos" "$out"
assert_contains "chaos: the H2 plan is ok" "0001-coffee-dependency  ok" "$out"
assert_contains "chaos: summary" "2 plans (chaos mode): 1 ok, 1 blocked" "$out"

run "$ctl" lint --mode chaos "$examples"
assert_eq "lint --mode chaos examples/plans exits 1" 1 "$rc"
assert_contains "chaos: examples have blocked plans" "blocked" "$out"

run "$ctl" lint "$tmp/chaos"
assert_eq "the same directory in protected mode exits 0" 0 "$rc"

mkdir -p "$tmp/chaos-ok"
cp "$coffee" "$tmp/chaos-ok/"
run "$ctl" lint --mode chaos "$tmp/chaos-ok"
assert_eq "lint --mode chaos with only H2 plans exits 0" 0 "$rc"

###########################################################################
# 3. A finding: an sql step whose statement builds an index the blocking way
# (line 8, column 5): rule S001, and its fix.
mkdir -p "$tmp/finding"
cat >"$tmp/finding/0001-raw.yaml" <<'EOF'
title: Raw SQL
reason: Testing findings
steps:
  - op: add_column
    table: employee
    name: nickname
    type: text
  - op: sql
    sql: CREATE INDEX employee_nickname ON employee (nickname)
EOF
run "$ctl" lint "$tmp/finding"
assert_eq "lint with a finding exits 1" 1 "$rc"
assert_contains "finding has file:line:col: warning:" \
    "$tmp/finding/0001-raw.yaml:8:5: warning: sql: [S001 index-not-concurrent] CREATE INDEX without CONCURRENTLY blocks writes for the whole build; fix: build it with CREATE INDEX CONCURRENTLY" "$out"
assert_contains "finding: the plan's status" "0001-raw  findings" "$out"
assert_contains "finding: summary" "1 with findings" "$out"

cat >"$tmp/finding/0002-not-null.yaml" <<'EOF'
title: NOT NULL the blocking way
reason: Testing findings
steps:
  - { op: set_not_null, table: employee, column: nickname }
EOF
run "$ctl" lint "$tmp/finding"
assert_eq "lint with two findings exits 1" 1 "$rc"
assert_contains "set_not_null without a validated CHECK is a finding" \
    "$tmp/finding/0002-not-null.yaml:4:5: warning: set_not_null" "$out"

###########################################################################
# 4. Invalid plans: exit 2 with file:line:col: error:
mkdir -p "$tmp/invalid"
cp "$coffee" "$tmp/invalid/"
cat >"$tmp/invalid/0002-typo.yaml" <<'EOF'
title: A typo
reason: Testing errors
steps:
  - { op: add_colum, table: employee, name: x, type: text }
EOF
run "$ctl" lint "$tmp/invalid"
assert_eq "lint with an invalid plan exits 2" 2 "$rc"
assert_contains "invalid: file:line:col: error:" "$tmp/invalid/0002-typo.yaml:4:11: error: op: unknown op 'add_colum'" "$out"
assert_contains "invalid: status" "0002-typo.yaml: invalid" "$out"
assert_contains "invalid: the plans before it are still checked" "0001-coffee-dependency  ok" "$out"

# An invalid plan outranks findings and blocked plans.
cp "$tmp/finding/0001-raw.yaml" "$tmp/invalid/0003-raw.yaml"
run "$ctl" lint --mode chaos "$tmp/invalid"
assert_eq "invalid + finding + chaos exits 2" 2 "$rc"

mkdir -p "$tmp/invalid-json"
printf '{ "title": "t", "reason": "r", "steps": [ { "op": "drop_table", "table": "a b" } ] }\n' \
    >"$tmp/invalid-json/0001-bad.json"
run "$ctl" lint "$tmp/invalid-json"
assert_eq "lint with an invalid JSON plan exits 2" 2 "$rc"
assert_contains "invalid JSON: file:line:col: error:" "$tmp/invalid-json/0001-bad.json:1:" "$out"
assert_contains "invalid JSON: names the field" "error: table: expected a plain SQL identifier" "$out"

mkdir -p "$tmp/yaml-syntax"
printf 'title: t\nreason: r\nsteps: [\n' >"$tmp/yaml-syntax/0001-open.yaml"
run "$ctl" lint "$tmp/yaml-syntax"
assert_eq "lint of a YAML syntax error exits 2" 2 "$rc"
assert_contains "YAML syntax error has a position" "$tmp/yaml-syntax/0001-open.yaml:4:1: error: YAML syntax" "$out"

if [ -d "$src/examples/plans-broken" ]; then
    run "$ctl" lint "$src/examples/plans-broken"
    assert_eq "lint examples/plans-broken exits 2" 2 "$rc"
    assert_not_contains "examples/plans-broken: no plan is ok" "  ok" "$out"
fi

###########################################################################
# 5. Duplicate plan ids across two files.
mkdir -p "$tmp/dup"
cp "$coffee" "$tmp/dup/0001-coffee-dependency.yaml"
sed 's/^title: .*/title: Coffee, again/' "$coffee" >"$tmp/dup/0002-coffee-again.yaml"
run "$ctl" lint "$tmp/dup"
assert_eq "duplicate plan ids exit 2" 2 "$rc"
assert_contains "duplicate id: names the id and the first file" \
    "duplicate plan id '0001-coffee-dependency': $tmp/dup/0001-coffee-dependency.yaml has it already" "$out"
assert_contains "duplicate id: points at the id: field" "$tmp/dup/0002-coffee-again.yaml:2:5: error:" "$out"

# An id from the file name clashes with an explicit id too.
mkdir -p "$tmp/dup2"
cp "$coffee" "$tmp/dup2/a.yaml"
grep -v '^id:' "$coffee" >"$tmp/dup2/0001-coffee-dependency.yaml"
run "$ctl" lint "$tmp/dup2"
assert_eq "duplicate id (file name vs id:) exits 2" 2 "$rc"
assert_contains "duplicate id (file name vs id:) reported" "duplicate plan id '0001-coffee-dependency'" "$out"

###########################################################################
# 6. --json
run "$ctl" lint --json "$examples"
assert_eq "lint --json examples exits 0" 0 "$rc"
json_ok "lint --json parses, one entry per plan" "isinstance(d, list) and len(d) == $n_examples"
json_ok "lint --json: status ok for every plan" "all(p['status'] == 'ok' for p in d)"
json_ok "lint --json: plan_id, max_hazard, checksum" \
    "all(p['plan_id'] and p['max_hazard'] in ('H0','H1','H2','H3') and len(p['checksum']) == 64 for p in d)"

out=$("$ctl" lint --json --mode chaos "$tmp/chaos" 2>/dev/null)
rc=$?
assert_eq "lint --json --mode chaos exits 1" 1 "$rc"
json_ok "lint --json chaos: statuses" \
    "[p['status'] for p in d] == ['ok', 'blocked'] and 'blocked_reason' in d[1]"

out=$("$ctl" lint --json "$tmp/finding" 2>/dev/null)
json_ok "lint --json: findings with their line" \
    "d[0]['status'] == 'findings' and len(d[0]['diagnostics']) >= 1"

out=$("$ctl" lint --json "$tmp/invalid" 2>/dev/null)
rc=$?
assert_eq "lint --json with an invalid plan exits 2" 2 "$rc"
json_ok "lint --json: invalid plan status and diagnostics" \
    "[p['status'] for p in d] == ['ok', 'invalid', 'findings'] and len(d[1]['diagnostics']) >= 1"

out=$("$ctl" lint --json "$tmp/dup" 2>/dev/null)
json_ok "lint --json: duplicate id is invalid" "[p['status'] for p in d] == ['ok', 'invalid']"

###########################################################################
# 7. plan --json of the coffee plan.
out=$("$ctl" plan --json "$coffee" 2>/dev/null)
rc=$?
assert_eq "plan --json exits 0" 0 "$rc"
json_ok "plan --json: plan_id" "d[0]['plan_id'] == '0001-coffee-dependency'"
json_ok "plan --json: checksum is 64 hex digits" \
    "len(d[0]['checksum']) == 64 and all(c in '0123456789abcdef' for c in d[0]['checksum'])"
json_ok "plan --json: max_hazard H2" "d[0]['max_hazard'] == 'H2'"
json_ok "plan --json: chaos_compatible true" "d[0]['chaos_compatible'] is True"
json_ok "plan --json: waves expand, backfill" "[w['name'] for w in d[0]['waves']] == ['expand', 'backfill']"
json_ok "plan --json: steps have step_sha and obligations" \
    "all(len(s['step_sha']) == 64 and 'lock_class_max' in s['obligations'] for w in d[0]['waves'] for s in w['steps'])"
sum1=$(printf '%s' "$out" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["checksum"])')
sum2=$("$ctl" plan --json --mode chaos "$coffee" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["checksum"])')
assert_eq "checksum does not depend on the mode" "$sum1" "$sum2"

out=$("$ctl" plan --json "$examples"/0004-email-not-null.yaml 2>/dev/null)
json_ok "plan --json: an H3 plan is not chaos compatible" \
    "d[0]['max_hazard'] == 'H3' and d[0]['chaos_compatible'] is False"

run "$ctl" plan "$tmp/invalid/0002-typo.yaml"
assert_eq "plan of an invalid file exits 2" 2 "$rc"
assert_contains "plan of an invalid file: error with position" "0002-typo.yaml:4:11: error:" "$out"

###########################################################################
# 8. Colour: never when piped or with NO_COLOR; on a terminal, yes.
esc=$(printf '\033')
for args in "lint $examples" "lint --mode chaos $tmp/chaos" "plan $coffee" "lint $tmp/invalid"; do
    # shellcheck disable=SC2086
    out=$("$ctl" $args 2>&1)
    assert_not_contains "piped output has no escape bytes ($args)" "$esc" "$out"
    # shellcheck disable=SC2086
    out=$(NO_COLOR=1 "$ctl" $args 2>&1)
    assert_not_contains "NO_COLOR output has no escape bytes ($args)" "$esc" "$out"
done
if command -v script >/dev/null 2>&1; then
    out=$(script -qec "'$ctl' lint '$examples'" /dev/null 2>&1)
    assert_contains "a terminal gets coloured badges" "$esc[" "$out"
    out=$(NO_COLOR=1 script -qec "'$ctl' lint '$examples'" /dev/null 2>&1)
    assert_not_contains "NO_COLOR on a terminal: no escape bytes" "$esc" "$out"
fi

###########################################################################
# 8b. Links and special files. A pushed symbolic link to a file outside the
# directory (~/.pgpass) must not be read, let alone shown; a FIFO, or a link
# to /proc/kmsg, must not make lint wait. `timeout` turns a wait into a
# failure (exit 124) instead of a hung test.
mkdir -p "$tmp/links/sub" "$tmp/outside"
printf 'db.example:5432:*:app:s3cret-pgpass\n' >"$tmp/outside/pgpass"
mkfifo "$tmp/outside/fifo"
cp "$coffee" "$tmp/links/sub/coffee.yaml"
ln -s sub/coffee.yaml "$tmp/links/0001-coffee-dependency.yaml"
ln -s "$tmp/outside/pgpass" "$tmp/links/0002-pgpass.yaml"
ln -s ../outside/pgpass "$tmp/links/0003-dotdot.yaml"
ln -s /proc/kmsg "$tmp/links/0004-kmsg.yaml"
ln -s "$tmp/outside/fifo" "$tmp/links/0005-fifo-out.yaml"
mkfifo "$tmp/links/0006-fifo.yaml"
run timeout 30 "$ctl" lint "$tmp/links"
assert_eq "lint of a directory with links out and a FIFO exits 2, without waiting" 2 "$rc"
assert_contains "a link inside the directory is followed" "0001-coffee-dependency  ok" "$out"
for f in 0002-pgpass 0003-dotdot 0004-kmsg 0005-fifo-out; do
    assert_contains "a link out of the directory is refused by name ($f)" \
        "$tmp/links/$f.yaml: error: refused: a symbolic link that does not lead to a file inside its directory" "$out"
done
assert_contains "a FIFO is refused by name" \
    "$tmp/links/0006-fifo.yaml: error: refused: a FIFO, not a regular file" "$out"
assert_not_contains "the linked file's content is not shown" "s3cret" "$out"
assert_contains "lint counts them invalid" "6 plans (protected mode): 1 ok, 0 blocked, 0 with findings, 5 invalid" "$out"
out=$(timeout 30 "$ctl" lint --json "$tmp/links" 2>&1)
assert_not_contains "lint --json does not show it either" "s3cret" "$out"
run timeout 30 "$ctl" plan "$tmp/links/0002-pgpass.yaml" "$tmp/links/0006-fifo.yaml"
assert_eq "plan of a link out and of a FIFO exits 2" 2 "$rc"
assert_contains "plan names the link" "$tmp/links/0002-pgpass.yaml: error: refused: a symbolic link" "$out"
assert_contains "plan names the FIFO" "$tmp/links/0006-fifo.yaml: error: refused: a FIFO" "$out"
assert_not_contains "plan does not show the linked file's content" "s3cret" "$out"
# Named directly (the operator's choice, no link): read as a file, but the
# text of a file that is no plan is not quoted back.
run timeout 30 "$ctl" plan "$tmp/outside/pgpass"
assert_eq "plan of a file that is no plan exits 2" 2 "$rc"
assert_contains "it is said to be no plan" "expected a map with title, reason and waves or steps, found a string" "$out"
assert_not_contains "its content is not quoted" "s3cret" "$out"

###########################################################################
# 9. Usage: unknown verbs and flags, missing arguments, --help.
run "$ctl" frobnicate
assert_eq "unknown verb exits 2" 2 "$rc"
assert_contains "unknown verb is named" "unknown verb 'frobnicate'" "$out"
run "$ctl" --frobnicate lint "$examples"
assert_eq "unknown global flag exits 2" 2 "$rc"
run "$ctl" lint --frobnicate "$examples"
assert_eq "unknown lint flag exits 2" 2 "$rc"
run "$ctl" plan --frobnicate "$coffee"
assert_eq "unknown plan flag exits 2" 2 "$rc"
run "$ctl" lint --mode yolo "$examples"
assert_eq "lint --mode with a bad value exits 2" 2 "$rc"
assert_contains "bad --mode is explained" "expected protected or chaos" "$out"
run "$ctl" lint
assert_eq "lint without DIR exits 2" 2 "$rc"
run "$ctl" plan
assert_eq "plan without FILE exits 2" 2 "$rc"
run "$ctl"
assert_eq "no verb exits 2" 2 "$rc"
run "$ctl" lint "$tmp/no-such-dir"
assert_eq "lint of a missing directory exits 2" 2 "$rc"

run "$ctl" --help
assert_eq "taskslapsctl --help exits 0" 0 "$rc"
assert_contains "--help lists verbs" "Verbs:" "$out"
run "$ctl" -h
assert_eq "taskslapsctl -h exits 0" 0 "$rc"
# Every verb the tool lists has its own --help.
verbs=$("$ctl" --help | awk '/^Verbs:/ { on = 1; next } on && /^$/ { exit } on { print $1 }')
[ -n "$verbs" ] || fail "--help lists at least one verb"
for v in $verbs; do
    run "$ctl" "$v" --help
    assert_eq "taskslapsctl $v --help exits 0" 0 "$rc"
    assert_contains "taskslapsctl $v --help shows its usage" "usage: taskslapsctl $v" "$out"
done

assert_finish
