#!/usr/bin/env bash
# Offline lint, side by side with squawk: the same N migrations (one nullable
# ADD COLUMN and one CREATE INDEX CONCURRENTLY on the same table each) as
# taskslaps plans for `taskslapsctl lint DIR` and as SQL files for
# `squawk --reporter gcc FILES` (and both tools' JSON output). Time per
# migration.
#
#   bash bench/peers/lint.sh                        builds build/bench, installs squawk-cli (npm)
#   RUNS=9 MIGRATIONS=5000 bash bench/peers/lint.sh  (LINT_MIGRATIONS wins over MIGRATIONS)
#   LINT_STATEMENTS=1 LINT_MIGRATIONS=10000 bash bench/peers/lint.sh timing
#                                                   one statement a migration (the ADD COLUMN alone)
#
# Each case runs once untimed (page cache warm), then RUNS times (default 5);
# median wall time and median CPU time (user + system). Both
# tools exit 1 here: squawk finds something to say about every file
# (lock_timeout, IF NOT EXISTS, int vs bigint), and that is fine; a crash is
# not. taskslaps must find nothing (exit 0): the plans are clean.
#
# Goal: taskslaps takes at least 10x less time per migration than squawk.
#
# Then, findings side by side on the SQL corpus (tests/sql-corpus/corpus.txt,
# the statements integration.sql_trace measures): each statement as a
# one-step `sql` plan for `taskslapsctl plan --json` and `lint --json`, and
# as a .sql file for `squawk --reporter json`; per statement, what each tool
# reports, the lock squawk says the statement takes (its require-lock-timeout
# message), and the lock PostgreSQL was measured to take (docs/sql-locks.md).
#
#   bash bench/peers/lint.sh timing | findings      only one of the two parts
set -euo pipefail
# shellcheck source=bench/lib/common.sh
. "$(dirname "$0")/../lib/common.sh"

parts=${1:-timing findings}
case $parts in
timing | findings | "timing findings") ;;
*) bench_die "usage: bash bench/peers/lint.sh [timing | findings]" ;;
esac

bench_runs 5
n=${LINT_MIGRATIONS:-${MIGRATIONS:-1000}}
stmts=${LINT_STATEMENTS:-2}
case $stmts in 1 | 2) ;; *) bench_die "LINT_STATEMENTS is 1 or 2" ;; esac

bench_ctl
bench_need_squawk
bench_work

# findings: the corpus, side by side (see the top). Prints one line per
# statement and a summary.
findings() {
	local corpus=$bench_top/tests/sql-corpus/corpus.txt doc=$bench_top/docs/sql-locks.md
	local line name stmt id k=0
	mkdir -p "$WORK/corpus/plans" "$WORK/corpus/sql" "$WORK/corpus/plan"
	while IFS= read -r line || [ -n "$line" ]; do
		case $line in '' | '#'*) continue ;; esac
		name=${line%%:*}
		stmt=${line#*:}
		stmt=${stmt# }
		k=$((k + 1))
		id=$(printf '%04d-%s' "$k" "${name//_/-}")
		printf '%s;\n' "$stmt" >"$WORK/corpus/sql/$id.sql"
		printf 'id: %s\ntitle: SQL corpus, %s\nreason: lint side by side\nsteps:\n  - op: sql\n    sql: |-\n      %s\n' \
			"$id" "$name" "$stmt" >"$WORK/corpus/plans/$id.yaml"
		"$CTL" plan --json "$WORK/corpus/plans/$id.yaml" >"$WORK/corpus/plan/$id.json" 2>/dev/null || true
	done <"$corpus"
	# lint exits 1 on findings, 2 when a plan is invalid (a refused
	# statement): both are answers here.
	"$CTL" lint --json "$WORK/corpus/plans" >"$WORK/corpus/lint.json" 2>"$WORK/corpus/lint.err" ||
		[ $? -le 2 ] || bench_die "taskslapsctl lint failed: $(tail -n 3 "$WORK/corpus/lint.err")"
	(cd "$WORK/corpus" && "$SQUAWK" --pg-version=15 --reporter json sql/*.sql) >"$WORK/corpus/squawk.json" \
		2>"$WORK/corpus/squawk.err" || [ $? -eq 1 ] ||
		bench_die "squawk failed: $(tail -n 3 "$WORK/corpus/squawk.err")"
	echo
	echo "== findings on the SQL corpus ($k statements): taskslaps $("$CTL" --version | head -n 1), squawk $("$SQUAWK" --version | awk '{print $2}')"
	python3 - "$WORK/corpus" "$doc" <<'PY'
import json, os, re, sys

work, doc = sys.argv[1], sys.argv[2]
MODES = ["none", "AccessShareLock", "RowShareLock", "RowExclusiveLock", "ShareUpdateExclusiveLock",
         "ShareLock", "ShareRowExclusiveLock", "ExclusiveLock", "AccessExclusiveLock"]
RANK = {m: i for i, m in enumerate(MODES)}
# squawk's rules that fire on nearly every statement: timeouts and re-runnability
HYGIENE = {"require-statement-timeout", "require-lock-timeout", "prefer-robust-stmts"}
SHORT = {"AccessShareLock": "AS", "RowShareLock": "RS", "RowExclusiveLock": "RX",
         "ShareUpdateExclusiveLock": "SUX", "ShareLock": "S", "ShareRowExclusiveLock": "SRX",
         "ExclusiveLock": "X", "AccessExclusiveLock": "AX", "none": "-", "?": "?"}

measured = {}
if os.path.exists(doc):
    for r in open(doc):
        if re.match(r"\| \d{4} \|", r):
            c = [x.strip() for x in re.split(r"(?<!\\) \| ", r.strip()[2:-2])]
            measured[c[1]] = (c[6].split(" ")[0], c[7] != "no")

def rule_of(msg):
    """A short name for a taskslaps lint message: its rule id, when it has one."""
    m = re.search(r"\[(S\d+ [a-z-]+)\]", msg)
    if m:
        return m.group(1)
    if "lock_class_max" in msg:
        return "no lock_class_max"
    if "expected a statement" in msg:
        return "refused"
    return msg[:30]

def squawk_mode(text):
    m = re.search(r"requires: ([A-Z ]+?) lock", text or "")
    return "".join(w.capitalize() for w in m.group(1).lower().split()) + "Lock" if m else None

sq = {}
for f in json.load(open(os.path.join(work, "squawk.json"))):
    e = sq.setdefault(os.path.basename(f["file"])[:-4], {"rules": set(), "lock": None})
    e["rules"].add(f["rule_name"])
    e["lock"] = e["lock"] or squawk_mode(f.get("help"))
lint = {}
for p in json.load(open(os.path.join(work, "lint.json"))):
    lint[p.get("plan_id") or os.path.basename(p["file"])[:-5]] = p

rows = []
for f in sorted(os.listdir(os.path.join(work, "plans"))):
    id = f[:-5]
    name = id[5:].replace("-", "_")
    try:
        step = json.load(open(os.path.join(work, "plan", id + ".json")))[0]["waves"][0]["steps"][0]
        ts = "%s %s%s" % (step["hazard"], SHORT[step["obligations"]["lock_class_max"]],
                          " rewrite" if step["obligations"]["may_rewrite"] else "")
        ts_flag = step["hazard"] == "H3"
    except (KeyError, IndexError, ValueError):
        ts, ts_flag = "refused", True
    diags = lint.get(id, {}).get("diagnostics", [])
    ts_lint = sorted({rule_of(d["message"]) for d in diags})
    ts_flag = ts_flag or bool(diags)
    s = sq.get(id, {"rules": set(), "lock": None})
    rules = sorted(s["rules"] - HYGIENE)
    m_lock, m_rw = measured.get(name, ("?", False))
    rows.append((name, m_lock, m_rw, ts, ts_lint, ts_flag, s["lock"], rules))

print("\nmeasured: PostgreSQL's lock (docs/sql-locks.md); taskslaps: hazard, lock_class_max, may_rewrite, lint;")
print("squawk: the lock it names (require-lock-timeout), rules other than %s" % ", ".join(sorted(HYGIENE)))
print("locks: AS RS RX SUX S SRX X AX = AccessShare ... AccessExclusive; - none; ? not named\n")
fmt = "%-38s %-11s | %-14s %-31s | %-4s %s"
print(fmt % ("statement", "measured", "taskslaps", "lint", "lock", "squawk rules"))
print(fmt % ("---------", "--------", "---------", "----", "----", "------------"))
both = only_t = only_s = neither = 0
s_named = s_exact = s_lower = s_higher = 0
t_exact = t_lower = 0
for name, m_lock, m_rw, ts, ts_lint, ts_flag, s_lock, rules in rows:
    s_flag = bool(rules)
    both += ts_flag and s_flag
    only_t += ts_flag and not s_flag
    only_s += s_flag and not ts_flag
    neither += not ts_flag and not s_flag
    if s_lock and m_lock in RANK:
        s_named += 1
        s_exact += s_lock == m_lock
        s_lower += RANK[s_lock] < RANK[m_lock]
        s_higher += RANK[s_lock] > RANK[m_lock]
    t_lock = ts.split(" ")[1] if " " in ts else None
    if t_lock and m_lock in RANK:
        full = [k for k, v in SHORT.items() if v == t_lock][0]
        t_exact += full == m_lock
        t_lower += RANK[full] < RANK[m_lock]
    print(fmt % (name[:38], SHORT.get(m_lock, m_lock) + (" rewrite" if m_rw else ""), ts,
                 ",".join(ts_lint) or "-", SHORT[s_lock] if s_lock else "?",
                 ", ".join(rules) or "-"))
print()
print("flagged (taskslaps: refused, H3 or a lint finding; squawk: a rule outside the three above):")
print("  both %d, only taskslaps %d, only squawk %d, neither %d (of %d)" % (both, only_t, only_s, neither, len(rows)))
print("lock against the measured one: taskslaps exact %d, weaker %d (of %d planned); "
      "squawk names one for %d: exact %d, weaker %d, stronger %d" %
      (t_exact, t_lower, sum(1 for r in rows if r[3] != "refused"), s_named, s_exact, s_lower, s_higher))
PY
}

if [ "$parts" = findings ]; then
	findings
	exit 0
fi

mkdir -p "$WORK/plans" "$WORK/sql"
for ((i = 1; i <= n; i++)); do
	t=$(printf 't%04d' "$i")
	f=$(printf '%04d-c-on-%s' "$i" "$t")
	cat >"$WORK/plans/$f.yaml" <<EOF
id: $f
title: c on $t, indexed
reason: lint benchmark
steps:
  - { op: add_column, table: $t, name: c, type: integer, nullable: true }
  - { op: add_index_concurrently, table: $t, name: ${t}_c_idx, columns: [c] }
EOF
	if [ "$stmts" = 1 ]; then
		sed -i '$d' "$WORK/plans/$f.yaml"
		printf 'ALTER TABLE %s ADD COLUMN c integer;\n' "$t" >"$WORK/sql/$f.sql"
	else
		printf 'ALTER TABLE %s ADD COLUMN c integer;\nCREATE INDEX CONCURRENTLY %s_c_idx ON %s (c);\n' \
			"$t" "$t" "$t" >"$WORK/sql/$f.sql"
	fi
done
sync

# the .sql files lint clean too (CREATE INDEX CONCURRENTLY, a nullable column: no finding)
"$CTL" lint "$WORK/sql" >"$WORK/lint-sql.out" 2>&1 || {
	tail -n 5 "$WORK/lint-sql.out" >&2
	bench_die "taskslapsctl lint of the generated .sql plans did not exit 0"
}
"$CTL" lint "$WORK/plans" >"$WORK/lint.out" 2>&1 || {
	tail -n 5 "$WORK/lint.out" >&2
	bench_die "taskslapsctl lint of the generated plans did not exit 0"
}
cd "$WORK" # squawk looks for .squawk.toml here: there is none
"$SQUAWK" --pg-version=15 --reporter gcc sql/*.sql >"$WORK/squawk.out" 2>&1 || [ $? -eq 1 ] ||
	bench_die "squawk failed: $(tail -n 3 "$WORK/squawk.out")"
[ "$(cut -d: -f1 "$WORK/squawk.out" | sort -u | wc -l)" -eq "$n" ] ||
	bench_die "squawk did not report on every file"

# measure CMD...: sets WALL and CPU (medians over RUNS runs, seconds); CPU is
# user + system time of CMD (bash's time keyword: getrusage, µs resolution).
measure() {
	local i walls=() cpus=() t0 t1 u s rc TIMEFORMAT='%U %S'
	"$@" >/dev/null 2>&1 || true
	for ((i = 0; i < RUNS; i++)); do
		rc=0
		t0=$(date +%s%N)
		{ time "$@" >/dev/null 2>&1 || rc=$?; } 2>"$WORK/time"
		t1=$(date +%s%N)
		[ $rc -le 1 ] || bench_die "exit $rc: $*"
		read -r u s <"$WORK/time"
		walls+=("$(bench_calc "($t1 - $t0) / 1e9" "%.6f")")
		cpus+=("$(bench_calc "$u + $s" "%.3f")")
	done
	WALL=$(bench_median "${walls[@]}")
	CPU=$(bench_median "${cpus[@]}")
}

bench_log "lint: $n migrations, $RUNS runs per case"
measure sh -c 'cat "$@" >/dev/null' cat plans/*.yaml
CW=$WALL CC=$CPU
measure "$CTL" lint plans
TW=$WALL TC=$CPU
measure "$SQUAWK" --pg-version=15 --reporter gcc sql/*.sql
SW=$WALL SC=$CPU
measure "$CTL" lint --json plans
TJW=$WALL TJC=$CPU
measure "$SQUAWK" --pg-version=15 --reporter json sql/*.sql
SJW=$WALL SJC=$CPU
# the very files squawk reads, as plain .sql plans (each statement parsed,
# analysed and its generated checks read back by PostgreSQL's parser)
measure "$CTL" lint sql
TQW=$WALL TQC=$CPU

row() { # label taskslaps-wall squawk-wall taskslaps-cpu squawk-cpu
	printf '%-30s %11.1f %11.1f %9.1f %12.3f %10.3f\n' "$1" \
		"$(bench_calc "$2 * 1e6 / $n")" "$(bench_calc "$3 * 1e6 / $n")" "$(bench_calc "$3 / $2")" "$4" "$5"
}
echo
if [ "$stmts" = 1 ]; then
	echo "== lint: $n migrations (one ADD COLUMN each), median of $RUNS"
else
	echo "== lint: $n migrations (ADD COLUMN + CREATE INDEX CONCURRENTLY each), median of $RUNS"
fi
echo "   taskslaps $("$CTL" --version | head -n 1), squawk $("$SQUAWK" --version | awk '{print $2}')"
echo "   $(bench_machine)"
echo
printf '%-30s %11s %11s %9s %12s %10s\n' "case" "taskslaps" "squawk" "squawk/" "taskslaps" "squawk"
printf '%-30s %11s %11s %9s %12s %10s\n' "" "µs/migr." "µs/migr." "taskslaps" "CPU s" "CPU s"
printf '%-30s %11s %11s %9s %12s %10s\n' "----" "---------" "---------" "---------" "-----" "-----"
row "lint DIR vs --reporter gcc" "$TW" "$SW" "$TC" "$SC"
row "lint --json vs --reporter json" "$TJW" "$SJW" "$TJC" "$SJC"
row "lint sql/ (same .sql files)" "$TQW" "$SW" "$TQC" "$SC"
printf '%-30s %11.1f %11s %9s %12.3f %10s\n' "floor: cat the plan files" "$(bench_calc "$CW * 1e6 / $n")" "" "" "$CC" ""
echo
printf 'wall: taskslaps %.3f s, squawk %.3f s for %d migrations\n' "$TW" "$SW" "$n"
r=$(bench_calc "$SW / $TW" "%.2f")
if awk "BEGIN { exit !($r >= 10) }"; then
	echo "goal: >= 10x less time per migration than squawk: MET (${r}x)"
else
	echo "goal: >= 10x less time per migration than squawk: MISSED (${r}x)"
fi
[ "$parts" = timing ] || findings
