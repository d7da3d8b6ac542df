#!/usr/bin/env bash
# Application impact of a migration: pgbench (CLIENTS clients, default 4,
# each transaction reads one random row of t and updates another column of
# it) runs for SECONDS (default 20); MIGRATE_AT seconds in (default 2) one of
# these starts on the same table t (id bigint PRIMARY KEY, v integer) of
# ROWS rows (default 200,000):
#
#   none       no migration: the baseline;
#   taskslaps  `taskslapsctl apply` of three plans: expand (add_column c,
#              nullable) + backfill (UPDATE t SET c = id % 97, RATE rows/s,
#              default 20000, batches of 1000); then add_check_not_valid
#              (c IS NOT NULL) + validate_constraint + set_not_null; then
#              add_index_concurrently on c;
#   naive      the same change as plain statements, each its own transaction
#              (one psql each): ALTER TABLE t ADD COLUMN c integer; UPDATE t SET
#              c = id % 97; ALTER TABLE t ALTER c SET NOT NULL; CREATE INDEX
#              t_c_idx ON t (c).
#
#   bash bench/impact/run.sh                 builds build/bench (Release)
#   RUNS=5 SECONDS_=30 ROWS=500000 RATE=50000 CLIENTS=8 MIGRATE_AT=3 bash bench/impact/run.sh
#                                            (IMPACT_ROWS wins over ROWS)
#
# Latencies come from pgbench's per-transaction log (--log): p50, p99, p99.9
# and max over the whole run and over the migration's own window (the
# transactions that ended while it ran), transactions slower than 100 ms, and
# failed transactions (pgbench's failures plus clients aborted by an error).
# Each transaction over 100 ms is listed with the migration steps it
# overlapped (taskslaps' from its step.start and step.ok events).
# Every scenario of every run starts from a fresh copy of the table (CREATE
# DATABASE ... TEMPLATE; not timed). Medians of RUNS (default 3).
set -euo pipefail
# shellcheck source=bench/lib/common.sh
. "$(dirname "$0")/../lib/common.sh"

bench_runs 3
rows=${IMPACT_ROWS:-${ROWS:-200000}}
rate=${RATE:-20000}
clients=${CLIENTS:-4}
secs=${SECONDS_:-20}
at=${MIGRATE_AT:-2}
PGBENCH=$BENCH_PG_BIN/pgbench

bench_ctl
bench_work
bench_pg_start

bench_psql -c 'CREATE DATABASE imp_tmpl'
bench_psql -d imp_tmpl <<EOF
CREATE TABLE t (id bigint PRIMARY KEY, v integer NOT NULL DEFAULT 0);
INSERT INTO t (id) SELECT g FROM generate_series(1, $rows) g;
VACUUM (FREEZE, ANALYZE) t;
EOF

cat >"$WORK/app.sql" <<'EOF'
\set id random(1, :rows)
SELECT v FROM t WHERE id = :id;
UPDATE t SET v = v + 1 WHERE id = :id;
EOF

mkdir -p "$WORK/plans"
cat >"$WORK/plans/0001-c.yaml" <<EOF
id: 0001-c
title: t.c, filled
reason: impact benchmark
waves:
  - name: expand
    steps:
      - { op: add_column, table: t, name: c, type: integer, nullable: true }
  - name: backfill
    limits: { rows_per_second: $rate, batch_size: 1000 }
    steps:
      - op: backfill_sql
        sql: UPDATE t SET c = id % 97 WHERE c IS NULL
EOF
# The CHECK goes on after the backfill (a plan of its own): NOT VALID still
# checks every row an UPDATE writes, so the application's UPDATE of v on a
# row not yet filled would fail.
cat >"$WORK/plans/0002-c-not-null.yaml" <<EOF
id: 0002-c-not-null
title: t.c is never NULL
reason: impact benchmark
waves:
  - name: expand
    steps:
      - { op: add_check_not_valid, table: t, name: t_c_not_null, check: c IS NOT NULL }
  - name: validate
    steps:
      - { op: validate_constraint, table: t, name: t_c_not_null }
      - { op: set_not_null, table: t, column: c }
EOF
cat >"$WORK/plans/0003-c-index.yaml" <<EOF
id: 0003-c-index
title: index on t.c
reason: impact benchmark
steps:
  - { op: add_index_concurrently, table: t, name: t_c_idx, columns: [c] }
EOF

naive_steps=('ALTER TABLE t ADD COLUMN c integer' 'UPDATE t SET c = id % 97'
	'ALTER TABLE t ALTER COLUMN c SET NOT NULL' 'CREATE INDEX t_c_idx ON t (c)')
naive_labels=(add_column update set_not_null create_index)
# migrate SCENARIO DB PHASES: runs it; PHASES gets "START_US END_US LABEL" lines
# for the naive statements (taskslaps' come from its events afterwards)
migrate() {
	local i t0
	: >"$3"
	case $1 in
	none) ;;
	taskslaps) "$CTL" --db "$(bench_conninfo "$2")" apply "$WORK/plans" --quiet ;;
	naive)
		for i in "${!naive_steps[@]}"; do
			t0=$(date +%s%6N)
			bench_psql -d "$2" -c "${naive_steps[i]}" || return 1
			printf '%s %s %s\n' "$t0" "$(date +%s%6N)" "${naive_labels[i]}" >>"$3"
		done
		;;
	esac
}
# The steps of the taskslaps plans, from its audit events: "START_US END_US op".
ts_phases() {
	bench_psql -At -F ' ' -d "$1" -c "SELECT (extract(epoch FROM s.at) * 1e6)::bigint,
		(extract(epoch FROM coalesce(o.at, s.at)) * 1e6)::bigint, rtrim(split_part(s.message, ' ', 2), ':')
		FROM taskslaps.events s LEFT JOIN LATERAL (SELECT at FROM taskslaps.events o WHERE o.step_sha = s.step_sha
		AND o.type IN ('step.ok', 'step.already_present', 'step.error') ORDER BY id LIMIT 1) o ON true
		WHERE s.type = 'step.start' ORDER BY s.id"
}

# scenario NAME RUN: runs it; res[NAME,RUN] gets one line of its figures
scenario() {
	local name=$1 r=$2 db="${1}_$2" pid m0 m1 out=$WORK/$1_$2
	bench_psql -c "CREATE DATABASE $db TEMPLATE imp_tmpl"
	bench_psql -c CHECKPOINT
	mkdir -p "$out"
	(cd "$out" && exec "$PGBENCH" -n -M prepared -c "$clients" -j 2 -T "$secs" -D rows="$rows" \
		-f "$WORK/app.sql" --log --log-prefix=tx "$db" >"$out/pgbench.out" 2>"$out/pgbench.err") &
	pid=$!
	bench_bg_pid "$pid"
	sleep "$at"
	m0=$(date +%s%6N)
	migrate "$name" "$db" "$out/phases" >"$out/migrate.out" 2>&1 || {
		cat "$out/migrate.out" >&2
		bench_die "$name migration failed"
	}
	m1=$(date +%s%6N)
	wait "$pid" || true
	bench_bg_done
	[ "$name" = taskslaps ] && ts_phases "$db" >"$out/phases"
	if [ "$name" != none ]; then
		[ "$(bench_psql -At -d "$db" -c "SELECT count(*) FROM t WHERE c IS DISTINCT FROM id % 97")" = 0 ] ||
			bench_die "$name: t.c not filled"
		bench_psql -At -d "$db" -c "SELECT attnotnull FROM pg_attribute WHERE attrelid = 't'::regclass AND attname = 'c'" |
			grep -qx t || bench_die "$name: t.c is not NOT NULL"
	fi
	if [ $(((m1 - m0) / 1000000 + at)) -ge "$secs" ]; then
		bench_log "warning: the $name migration ($(((m1 - m0) / 1000)) ms) outlasted pgbench's ${secs}s: raise SECONDS_"
	fi
	local aborted
	aborted=$(grep -c 'aborted' "$out/pgbench.err" || true)
	[ "$name" = none ] && m1=$m0 # no window; slow transactions are timed from where a migration would start
	python3 "$bench_top/bench/impact/latency.py" --phases "$out/phases" "$m0" "$m1" "$out"/tx.* >"$out/latency"
	# one line: mig=S all_n=.. all_tps=.. ... window_n=.. ... aborted=N
	res[$name,$r]=$(printf 'mig=%s %s aborted=%s\n' "$(bench_calc "($m1 - $m0) / 1e6" "%.3f")" \
		"$(grep -E '^(all|window) ' "$out/latency" | awk '{ for (i = 2; i <= NF; i++) printf "%s_%s ", $1, $i }')" "$aborted")
	grep '^slow ' "$out/latency" | sed "s/^slow /run $((r + 1)): /" >>"$WORK/slow_$name" || true
	bench_psql -c "DROP DATABASE $db"
}

declare -A res
bench_log "impact: $clients clients for ${secs}s, migration at ${at}s, $rows rows, $RUNS runs"
for ((r = 0; r < RUNS; r++)); do
	for s in none taskslaps naive; do
		scenario "$s" "$r"
		bench_log "run $((r + 1))/$RUNS $s: ${res[$s,$r]}"
	done
done

# val SCENARIO RUN KEY: one figure of one run (KEY: mig, aborted, all_p99, window_max, ...)
val() { printf ' %s \n' "${res[$1,$2]}" | grep -o " $3=[^ ]*" | head -n 1 | cut -d= -f2; }
# get SCENARIO PART KEY: the median over the runs of PART_KEY (PART: all or window)
get() {
	local r vals=()
	for ((r = 0; r < RUNS; r++)); do vals+=("$(val "$1" "$r" "$2_$3")"); done
	bench_median "${vals[@]}"
}
mig() { # SCENARIO: median migration seconds
	local r vals=()
	for ((r = 0; r < RUNS; r++)); do vals+=("$(val "$1" "$r" mig)"); done
	bench_median "${vals[@]}"
}
failed() { # SCENARIO: failed transactions / aborted clients, summed over the runs
	local r tf=0 ta=0
	for ((r = 0; r < RUNS; r++)); do
		tf=$((tf + $(val "$1" "$r" all_failed))) ta=$((ta + $(val "$1" "$r" aborted)))
	done
	echo "$tf/$ta"
}

echo
echo "== application impact: pgbench, $clients clients, ${secs}s (SELECT + UPDATE of one random row of t, $rows rows); migration at ${at}s; median of $RUNS"
echo "   taskslaps $("$CTL" --version | head -n 1), backfill at $rate rows/s; PostgreSQL $(bench_psql -At -c 'SHOW server_version' | cut -d' ' -f1)"
echo "   $(bench_machine)"
echo
h='%-10s %7s | %6s %6s %7s %8s %7s %6s | %6s %6s %7s %7s %6s | %7s\n'
printf "$h" "" "migr." "whole" "run" "" "" "" "" "during" "the" "migra-" "tion" "" "failed/"
printf "$h" "scenario" "s" "tps" "p50 ms" "p99 ms" "p99.9 ms" "max ms" ">100ms" "tps" "p50 ms" "p99 ms" "max ms" ">100ms" "aborted"
printf "$h" "--------" "-----" "---" "------" "------" "--------" "------" "------" "---" "------" "------" "------" "------" "-------"
for s in none taskslaps naive; do
	if [ "$s" = none ]; then
		printf '%-10s %7s | %6.0f %6.2f %7.2f %8.2f %7.1f %6.0f | %6s %6s %7s %7s %6s | %7s\n' "$s" "-" \
			"$(get $s all tps)" "$(get $s all p50)" "$(get $s all p99)" "$(get $s all p999)" "$(get $s all max)" "$(get $s all slow)" \
			"-" "-" "-" "-" "-" "$(failed $s)"
	else
		printf '%-10s %7.2f | %6.0f %6.2f %7.2f %8.2f %7.1f %6.0f | %6.0f %6.2f %7.2f %7.1f %6.0f | %7s\n' "$s" "$(mig $s)" \
			"$(get $s all tps)" "$(get $s all p50)" "$(get $s all p99)" "$(get $s all p999)" "$(get $s all max)" "$(get $s all slow)" \
			"$(get $s window tps)" "$(get $s window p50)" "$(get $s window p99)" "$(get $s window max)" "$(get $s window slow)" "$(failed $s)"
	fi
done
echo
printf 'p99 over the whole run vs no migration: taskslaps %.2fx, naive %.2fx; max: taskslaps %.2fx, naive %.2fx\n' \
	"$(bench_calc "$(get taskslaps all p99) / $(get none all p99)")" "$(bench_calc "$(get naive all p99) / $(get none all p99)")" \
	"$(bench_calc "$(get taskslaps all max) / $(get none all max)")" "$(bench_calc "$(get naive all max) / $(get none all max)")"
echo "failed/aborted: failed transactions / clients aborted by an error, summed over the runs"
for s in none taskslaps naive; do
	[ -s "$WORK/slow_$s" ] || continue
	echo "transactions over 100 ms, $s (from/to: when each began and ended, seconds after the migration began; during: the steps it overlapped):"
	sed 's/^/  /' "$WORK/slow_$s"
done
