#!/usr/bin/env bash
# Offline lint, side by side with squawk: the same N migrations (one nullable
# ADD COLUMN and one CREATE INDEX CONCURRENTLY on the same table each) as
# taskslaps plans for `taskslapsctl lint DIR` and as SQL files for
# `squawk --reporter gcc FILES` (and both tools' JSON output). Time per
# migration.
#
#   bash bench/peers/lint.sh                        builds build/bench, installs squawk-cli (npm)
#   RUNS=9 MIGRATIONS=5000 bash bench/peers/lint.sh  (LINT_MIGRATIONS wins over MIGRATIONS)
#
# Each case runs once untimed (page cache warm), then RUNS times (default 5);
# median wall time and median CPU time (user + system). Both
# tools exit 1 here: squawk finds something to say about every file
# (lock_timeout, IF NOT EXISTS, int vs bigint), and that is fine; a crash is
# not. taskslaps must find nothing (exit 0): the plans are clean.
#
# Goal: taskslaps takes at least 10x less time per migration than squawk.
set -euo pipefail
# shellcheck source=bench/lib/common.sh
. "$(dirname "$0")/../lib/common.sh"

bench_runs 5
n=${LINT_MIGRATIONS:-${MIGRATIONS:-1000}}

bench_ctl
bench_need_squawk
bench_work

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
	printf 'ALTER TABLE %s ADD COLUMN c integer;\nCREATE INDEX CONCURRENTLY %s_c_idx ON %s (c);\n' \
		"$t" "$t" "$t" >"$WORK/sql/$f.sql"
done
sync

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

row() { # label taskslaps-wall squawk-wall taskslaps-cpu squawk-cpu
	printf '%-30s %11.1f %11.1f %9.1f %12.3f %10.3f\n' "$1" \
		"$(bench_calc "$2 * 1e6 / $n")" "$(bench_calc "$3 * 1e6 / $n")" "$(bench_calc "$3 / $2")" "$4" "$5"
}
echo
echo "== lint: $n migrations (ADD COLUMN + CREATE INDEX CONCURRENTLY each), median of $RUNS"
echo "   taskslaps $("$CTL" --version | head -n 1), squawk $("$SQUAWK" --version | awk '{print $2}')"
echo "   $(bench_machine)"
echo
printf '%-30s %11s %11s %9s %12s %10s\n' "case" "taskslaps" "squawk" "squawk/" "taskslaps" "squawk"
printf '%-30s %11s %11s %9s %12s %10s\n' "" "µs/migr." "µs/migr." "taskslaps" "CPU s" "CPU s"
printf '%-30s %11s %11s %9s %12s %10s\n' "----" "---------" "---------" "---------" "-----" "-----"
row "lint DIR vs --reporter gcc" "$TW" "$SW" "$TC" "$SC"
row "lint --json vs --reporter json" "$TJW" "$SJW" "$TJC" "$SJC"
printf '%-30s %11.1f %11s %9s %12.3f %10s\n' "floor: cat the plan files" "$(bench_calc "$CW * 1e6 / $n")" "" "" "$CC" ""
echo
printf 'wall: taskslaps %.3f s, squawk %.3f s for %d migrations\n' "$TW" "$SW" "$n"
r=$(bench_calc "$SW / $TW" "%.2f")
if awk "BEGIN { exit !($r >= 10) }"; then
	echo "goal: >= 10x less time per migration than squawk: MET (${r}x)"
else
	echo "goal: >= 10x less time per migration than squawk: MISSED (${r}x)"
fi
