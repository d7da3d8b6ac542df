#!/usr/bin/env bash
# Backfill throughput and pacing: `UPDATE t SET c = id % 97` over a table
# t (id bigint PRIMARY KEY, c integer) of ROWS rows (default 1,000,000):
#
#   - the plain single UPDATE (one statement, psql): the physical limit here,
#     and a lock on every row for the whole statement;
#   - taskslaps unthrottled (backfill_sql, rows_per_second: 0, batch_size
#     10000): keyset batches, each its own transaction with its checkpoint
#     and its lock proof;
#   - taskslaps throttled (rows_per_second: RATE, default 20000, batch_size
#     THROTTLED_BATCH, default 1000) on a smaller table (THROTTLED_ROWS,
#     default 200,000): the achieved rate and its error against the target.
#
#   bash bench/backfill/run.sh                 builds build/bench (Release)
#   RUNS=5 ROWS=5000000 bash bench/backfill/run.sh   (BACKFILL_ROWS wins over ROWS)
#   BATCH=5000 RATE=50000 THROTTLED_ROWS=500000 THROTTLED_BATCH=500 bash bench/backfill/run.sh
#   PROFILE=1 bash bench/backfill/run.sh       server time per batch statement even when
#                                              the goals are met (PROFILE=0: never; default: on a miss)
#   FSYNC=on bash bench/backfill/run.sh        the cluster with fsync on (default off)
#   BEFORE=path/taskslapsctl bash bench/backfill/run.sh   also the unthrottled backfill of
#                                              that build (an older one) in every run, right
#                                              after this one's, side by side
#
# Every run starts from a fresh copy of the loaded, vacuumed table (CREATE
# DATABASE ... TEMPLATE; then CHECKPOINT; not timed). The taskslaps databases
# log every statement with its duration (ALTER DATABASE ... SET
# log_min_duration_statement = 0), which gives the longest batch transaction
# (BEGIN to COMMIT in the server log, ms precision): an upper bound on any
# lock a batch holds. The rate is rows updated / the step's execution time
# (execution_time_ms of the step.ok event; from the start of the step to its
# ledger row). Medians of RUNS (default 3: a run takes about a minute).
#
# Goals: unthrottled within 1.1x the plain UPDATE; throttled within +-5% of
# the target rate.
set -euo pipefail
# shellcheck source=bench/lib/common.sh
. "$(dirname "$0")/../lib/common.sh"

bench_runs 3
rows=${BACKFILL_ROWS:-${ROWS:-1000000}}
batch=${BATCH:-10000}
rate=${RATE:-20000}
trows=${THROTTLED_ROWS:-200000}
profile=${PROFILE:-auto}
tbatch=${THROTTLED_BATCH:-1000}
before=${BEFORE:-}
[ -z "$before" ] || [ -x "$before" ] || bench_die "BEFORE: no taskslapsctl at $before"

bench_ctl
bench_work
bench_pg_start
log=$(bench_pg_log)

load() { # DB ROWS
	bench_psql -c "CREATE DATABASE $1"
	bench_psql -d "$1" <<EOF
CREATE TABLE t (id bigint PRIMARY KEY, c integer);
INSERT INTO t SELECT g, NULL FROM generate_series(1, $2) g;
VACUUM (FREEZE, ANALYZE) t;
EOF
}
bench_log "backfill: loading $rows rows and $trows rows"
load bf_big "$rows"
load bf_small "$trows"

mkdir -p "$WORK/fast" "$WORK/slow"
plan() { # FILE RATE BATCH
	cat >"$1" <<EOF
id: backfill-c
title: fill t.c
reason: backfill benchmark
waves:
  - name: backfill
    limits: { rows_per_second: $2, batch_size: $3 }
    steps:
      - op: backfill_sql
        sql: UPDATE t SET c = id % 97
EOF
}
plan "$WORK/fast/0001-backfill-c.yaml" 0 "$batch"
plan "$WORK/slow/0001-backfill-c.yaml" "$rate" "$tbatch"

fresh() { # DB TEMPLATE [log]
	bench_psql -c "CREATE DATABASE $1 TEMPLATE $2"
	[ "${3:-}" = log ] && bench_psql -c "ALTER DATABASE $1 SET log_min_duration_statement = 0"
	bench_psql -c CHECKPOINT
}
apply() { "$CTL" --db "$(bench_conninfo "$1")" apply "$2" --quiet; }
apply_before() { "$before" --db "$(bench_conninfo "$1")" apply "$2" --quiet; }
# step DB: "execution_time_ms rows_affected degraded_decisions" of the backfill
step() {
	bench_psql -At -F ' ' -d "$1" -c "SELECT (SELECT (metrics->>'execution_time_ms')::bigint FROM taskslaps.events WHERE type = 'step.ok'),
		(SELECT (metrics->>'rows_affected')::bigint FROM taskslaps.events WHERE type = 'step.ok'),
		(SELECT count(*) FROM taskslaps.events WHERE type = 'governor.degraded')"
}
span() { # DB: "max median" of the BEGIN..COMMIT spans in ms
	python3 "$bench_top/bench/lib/pglog.py" spans "$log" "$1" |
		sed -n 's/.* median_ms=\([0-9.]*\) .* max_ms=\([0-9.]*\) .*/\2 \1/p'
}
check() { # DB: every row filled
	[ "$(bench_psql -At -d "$1" -c 'SELECT count(*) FROM t WHERE c IS DISTINCT FROM id % 97')" = 0 ] ||
		bench_die "$1: rows left unfilled"
}

declare -a pw tw tx ts_span ts_med sw sx s_span s_med s_rate degr bw bx
for ((r = 0; r < RUNS; r++)); do
	fresh "plain_$r" bf_big
	pw+=("$(bench_time bench_psql -d "plain_$r" -c 'UPDATE t SET c = id % 97')")
	check "plain_$r"
	bench_psql -c "DROP DATABASE plain_$r"

	fresh "fast_$r" bf_big log
	tw+=("$(bench_time apply "fast_$r" "$WORK/fast")")
	check "fast_$r"
	read -r ms n d < <(step "fast_$r")
	[ "$n" = "$rows" ] || bench_die "fast_$r: $n rows updated, expected $rows"
	tx+=("$ms")
	degr+=("$d")
	read -r a b < <(span "fast_$r")
	ts_span+=("$a") ts_med+=("$b")
	[ "$r" -gt 0 ] && bench_psql -c "DROP DATABASE fast_$r" # fast_0 stays for the profile

	if [ -n "$before" ]; then
		fresh "before_$r" bf_big
		bw+=("$(bench_time apply_before "before_$r" "$WORK/fast")")
		check "before_$r"
		read -r ms n d < <(step "before_$r")
		bx+=("$ms")
		bench_psql -c "DROP DATABASE before_$r"
	fi

	fresh "slow_$r" bf_small log
	sw+=("$(bench_time apply "slow_$r" "$WORK/slow")")
	check "slow_$r"
	read -r ms n d < <(step "slow_$r")
	sx+=("$ms")
	s_rate+=("$(bench_calc "$n * 1000 / $ms" "%.1f")")
	read -r a b < <(span "slow_$r")
	s_span+=("$a") s_med+=("$b")
	bench_psql -c "DROP DATABASE slow_$r"
	bench_log "run $((r + 1))/$RUNS: plain $((pw[r] / 1000)) ms, unthrottled $((tw[r] / 1000)) ms (step $((tx[r])) ms, longest batch ${ts_span[r]} ms)${before:+, BEFORE unthrottled $((bw[r] / 1000)) ms (step ${bx[r]} ms)}, throttled ${s_rate[r]} rows/s"
done

P=$(bench_calc "$(bench_median "${pw[@]}") / 1e6" "%.3f")
T=$(bench_calc "$(bench_median "${tw[@]}") / 1e6" "%.3f")
TX=$(bench_calc "$(bench_median "${tx[@]}") / 1e3" "%.3f")
SW=$(bench_calc "$(bench_median "${sw[@]}") / 1e6" "%.3f")
SX=$(bench_calc "$(bench_median "${sx[@]}") / 1e3" "%.3f")
SR=$(bench_median "${s_rate[@]}")
TSPAN=$(bench_max "${ts_span[@]}")
SSPAN=$(bench_max "${s_span[@]}")
ratio=$(bench_calc "$T / $P" "%.2f")
err=$(bench_calc "($SR - $rate) * 100 / $rate" "%+.1f")

echo
echo "== backfill: UPDATE t SET c = id % 97, t (id bigint PRIMARY KEY, c integer), median of $RUNS"
echo "   taskslaps $("$CTL" --version | head -n 1), PostgreSQL $(bench_psql -At -c 'SHOW server_version' | cut -d' ' -f1)"
echo "   $(bench_machine)"
echo "   cluster: $(bench_fsync)"
echo
printf '%-50s %8s %7s %7s %8s %9s %9s\n' "case" "rows" "wall s" "step s" "rows/s" "vs plain" "lock ms"
printf '%-50s %8s %7s %7s %8s %9s %9s\n' "----" "----" "------" "------" "------" "--------" "-------"
printf '%-50s %8d %7.3f %7s %8.0f %9s %9.0f\n' "plain UPDATE, one statement" "$rows" "$P" "" \
	"$(bench_calc "$rows / $P")" "1.00" "$(bench_calc "$P * 1000")"
printf '%-50s %8d %7.3f %7.3f %8.0f %9.2f %9s\n' "taskslaps unthrottled, batch_size $batch" "$rows" "$T" "$TX" \
	"$(bench_calc "$rows / $TX")" "$ratio" "$(printf '%.0f/%.0f' "$TSPAN" "$(bench_median "${ts_med[@]}")")"
if [ -n "$before" ]; then
	BW=$(bench_calc "$(bench_median "${bw[@]}") / 1e6" "%.3f")
	BX=$(bench_calc "$(bench_median "${bx[@]}") / 1e3" "%.3f")
	printf '%-50s %8d %7.3f %7.3f %8.0f %9.2f %9s\n' "BEFORE build unthrottled, batch_size $batch" "$rows" "$BW" "$BX" \
		"$(bench_calc "$rows / $BX")" "$(bench_calc "$BW / $P" "%.2f")" ""
fi
printf '%-50s %8d %7.3f %7.3f %8.0f %9s %9s\n' "taskslaps rows_per_second $rate, batch_size $tbatch" "$trows" "$SW" "$SX" \
	"$SR" "" "$(printf '%.0f/%.0f' "$SSPAN" "$(bench_median "${s_med[@]}")")"
echo
echo "lock ms: plain = the whole statement (every row stays locked until it ends);"
echo "taskslaps = longest/median batch transaction, BEGIN to COMMIT (longest over all runs)."
echo "unthrottled taskslaps / plain UPDATE: ${ratio}x wall (apply, including connection and schema install), $(bench_calc "$TX / $P" "%.2f")x step time"
[ -z "$before" ] || echo "BEFORE build ($before) / plain UPDATE: $(bench_calc "$BW / $P" "%.2f")x wall, $(bench_calc "$BX / $P" "%.2f")x step time; run by run, ms (plain / unthrottled / BEFORE): $(for ((r = 0; r < RUNS; r++)); do printf '%s/%s/%s ' $((pw[r] / 1000)) $((tw[r] / 1000)) $((bw[r] / 1000)); done)"
echo "throttled: target $rate rows/s, achieved $SR rows/s (median; runs: ${s_rate[*]}), error ${err}%"
echo "governor degraded decisions during the unthrottled runs: ${degr[*]} (autovacuum on the table or lock waiters halve the rate)"
missed=0
if awk "BEGIN { exit !($ratio <= 1.1) }"; then
	echo "goal: unthrottled <= 1.1x the plain UPDATE: MET (${ratio}x)"
else
	echo "goal: unthrottled <= 1.1x the plain UPDATE: MISSED (${ratio}x)"
	missed=1
fi
if awk "BEGIN { e = $err; if (e < 0) e = -e; exit !(e <= 5) }"; then
	echo "goal: throttled rate within +-5% of $rate rows/s: MET (${err}%)"
else
	echo "goal: throttled rate within +-5% of $rate rows/s: MISSED (${err}%)"
fi

# Where an unthrottled backfill spends its time: the server's time per batch,
# by statement, from the first run's log (its database logged every statement).
if [ "$profile" = 1 ] || { [ "$profile" = auto ] && [ "$missed" = 1 ]; }; then
	echo
	echo "-- profile: the first unthrottled run, $(((rows + batch - 1) / batch)) batches"
	python3 "$bench_top/bench/lib/pglog.py" statements "$log" fast_0 "$(((rows + batch - 1) / batch))" |
		sed 's/per step/per batch/'
fi
