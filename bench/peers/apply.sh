#!/usr/bin/env bash
# Apply overhead, side by side with Sqitch and dbmate: N one-step migrations
# (ADD COLUMN c integer, nullable, to each of N tables created beforehand),
# applied to a fresh database by each tool, then the same command again
# (nothing to do: the no-op re-run).
#
#   bash bench/peers/apply.sh                     builds build/bench, installs the peers
#   RUNS=9 MIGRATIONS=500 bash bench/peers/apply.sh   (APPLY_MIGRATIONS wins over MIGRATIONS)
#   SQITCH_VERIFY=0 bash bench/peers/apply.sh     leave out `sqitch deploy --verify`
#   FSYNC=on bash bench/peers/apply.sh            the cluster with fsync on (default off):
#                                                 every commit waits for its WAL flush
#   TASKSLAPSCTL=path/taskslapsctl bash bench/peers/apply.sh   another build (e.g. an older one)
#   PROFILE=1 bash bench/peers/apply.sh           profile even when the goals are met
#                                                 (PROFILE=0: never; default: on a miss)
#   BEFORE=path/taskslapsctl bash bench/peers/apply.sh   also time that build (an older
#                                                 one) in every run, next to this one (the
#                                                 two take turns going first), and print
#                                                 both side by side with dbmate
#
# taskslaps: N plans of one add_column step, `taskslapsctl --db ... apply DIR
# --quiet` (installs its schema in the fresh database, takes the runner lock,
# and per step runs the governor probe, prechecks, the statement, postchecks,
# the lock and rewrite proof and the ledger row in one transaction).
# Sqitch: a project with N changes (deploy, revert and verify scripts), `sqitch
# deploy` to db:pg over the socket, psql client from /usr/lib/postgresql/15/bin;
# also `sqitch deploy --verify`, which runs each change's verify script: the
# nearest thing Sqitch has to taskslaps' postchecks.
# dbmate: N migration files, `dbmate --no-dump-schema up` (the Go binary, not
# the node launcher).
# Every first apply gets its own fresh database (CREATE DATABASE ... TEMPLATE
# a database holding the N tables; not timed). Median of RUNS (default 5).
# A second case, taskslaps against dbmate only: the same apply into a database
# where each tool's own tables are there already (taskslaps' schema installed
# by `install-schema`, dbmate's schema_migrations by an `up` and a `rollback`
# of the first migration), as in a database that took migrations before; the
# two take turns going first.
#
# Goal: taskslaps faster than dbmate, and at least 5x faster than Sqitch; with
# FSYNC=on, no slower than dbmate (a one-step plan commits once, as dbmate's
# migration does: its statement and its version row in one transaction).
set -euo pipefail
# shellcheck source=bench/lib/common.sh
. "$(dirname "$0")/../lib/common.sh"

bench_runs 5
n=${APPLY_MIGRATIONS:-${MIGRATIONS:-200}}
verify=${SQITCH_VERIFY:-1}
profile=${PROFILE:-auto}
before=${BEFORE:-}
[ -z "$before" ] || [ -x "$before" ] || bench_die "BEFORE: no taskslapsctl at $before"

bench_ctl
bench_need_sqitch
bench_need_dbmate
bench_work
bench_pg_start

# --- the three projects -------------------------------------------------------
mkdir -p "$WORK/ts" "$WORK/dbmate" "$WORK/sqitch/deploy" "$WORK/sqitch/revert" "$WORK/sqitch/verify"
{
	printf '%%syntax-version=1.0.0\n%%project=tsbench\n\n'
	for ((i = 1; i <= n; i++)); do
		t=$(printf 't%04d' "$i")
		printf 'id: %04d-add-c-%s\ntitle: add c to %s\nreason: apply benchmark\nsteps:\n  - { op: add_column, table: %s, name: c, type: integer, nullable: true }\n' \
			"$i" "$t" "$t" "$t" >"$WORK/ts/$(printf %04d "$i")-add-c-$t.yaml"
		printf -- '-- migrate:up\nALTER TABLE %s ADD COLUMN c integer;\n\n-- migrate:down\nALTER TABLE %s DROP COLUMN c;\n' \
			"$t" "$t" >"$WORK/dbmate/$(printf '20240101%06d' "$i")_add_c_$t.sql"
		printf 'BEGIN;\nALTER TABLE %s ADD COLUMN c integer;\nCOMMIT;\n' "$t" >"$WORK/sqitch/deploy/add_c_$t.sql"
		printf 'BEGIN;\nALTER TABLE %s DROP COLUMN c;\nCOMMIT;\n' "$t" >"$WORK/sqitch/revert/add_c_$t.sql"
		printf 'SELECT c FROM %s WHERE false;\n' "$t" >"$WORK/sqitch/verify/add_c_$t.sql"
		printf 'add_c_%s 2024-01-01T00:00:00Z Bench <bench@example.invalid> # add c to %s\n' "$t" "$t"
	done
} >"$WORK/sqitch/sqitch.plan"
cat >"$WORK/sqitch/sqitch.conf" <<EOF
[core]
	engine = pg
	top_dir = .
[engine "pg"]
	client = $BENCH_PG_BIN/psql
EOF
printf '[user]\n\tname = Bench\n\temail = bench@example.invalid\n' >"$WORK/sqitch-user.conf"
export SQITCH_USER_CONFIG=$WORK/sqitch-user.conf SQITCH_SYSTEM_CONFIG=/dev/null

# The template: N empty tables (id bigint primary key, a text).
bench_psql -c 'CREATE DATABASE bench_tmpl'
for ((i = 1; i <= n; i++)); do
	printf 'CREATE TABLE t%04d (id bigint PRIMARY KEY, a text);\n' "$i"
done | bench_psql -d bench_tmpl

fresh() { bench_psql -c "CREATE DATABASE $1 TEMPLATE ${2:-bench_tmpl}"; }
check() { # every table got its column
	local got
	got=$(bench_psql -At -d "$1" -c "SELECT count(*) FROM information_schema.columns WHERE table_schema = 'public' AND column_name = 'c'")
	[ "$got" = "$n" ] || bench_die "$2 left $got of $n columns in $1"
}

run_ts() { "$CTL" --db "$(bench_conninfo "$1")" apply "$WORK/ts" --quiet; }
# The second case: databases where each tool's own tables are there already
# (taskslaps' schema installed; dbmate's schema_migrations made by an `up`
# and a `rollback`), as in a database that took migrations before.
bench_psql -c 'CREATE DATABASE bench_tmpl_ts TEMPLATE bench_tmpl' -c 'CREATE DATABASE bench_tmpl_dm TEMPLATE bench_tmpl'
"$CTL" --db "$(bench_conninfo bench_tmpl_ts)" install-schema >/dev/null
# (dbmate refuses an empty directory: the first migration, applied and then
# rolled back, leaves the table and no column)
mkdir -p "$WORK/dbmate-first"
cp "$WORK/dbmate/$(printf '20240101%06d' 1)_add_c_t0001.sql" "$WORK/dbmate-first/"
DATABASE_URL="postgres://postgres@:$PGPORT/bench_tmpl_dm?socket=$PGHOST&sslmode=disable" \
	"$DBMATE" --no-dump-schema --migrations-dir "$WORK/dbmate-first" up >/dev/null
DATABASE_URL="postgres://postgres@:$PGPORT/bench_tmpl_dm?socket=$PGHOST&sslmode=disable" \
	"$DBMATE" --no-dump-schema --migrations-dir "$WORK/dbmate-first" rollback >/dev/null
[ "$(bench_psql -At -d bench_tmpl_dm -c 'SELECT count(*) FROM public.schema_migrations')" = 0 ] ||
	bench_die "dbmate's rollback left a version row"
run_before() { "$before" --db "$(bench_conninfo "$1")" apply "$WORK/ts" --quiet; }
time_before() { # run: the BEFORE build on a fresh database
	fresh "tb_$1"
	tb+=("$(bench_time run_before "tb_$1")")
	tb0+=("$(bench_time run_before "tb_$1")")
	check "tb_$1" "taskslaps (BEFORE)"
	bench_psql -c "DROP DATABASE tb_$1"
}
run_dbmate() {
	DATABASE_URL="postgres://postgres@:$PGPORT/$1?socket=$PGHOST&sslmode=disable" \
		"$DBMATE" --no-dump-schema --migrations-dir "$WORK/dbmate" up
}
run_sqitch() { (cd "$WORK/sqitch" && "$SQITCH" deploy "$@"); }

declare -a ts ts0 tb tb0 dm dm0 sq sq0 sv sv0 tsi dmi
bench_log "apply: $n migrations, $RUNS runs per tool"
for ((r = 0; r < RUNS; r++)); do
	[ -n "$before" ] && [ $((r % 2)) = 1 ] && time_before "$r"
	fresh "ts_$r"
	ts+=("$(bench_time run_ts "ts_$r")")
	ts0+=("$(bench_time run_ts "ts_$r")")
	check "ts_$r" taskslaps
	[ -n "$before" ] && [ $((r % 2)) = 0 ] && time_before "$r"

	fresh "dm_$r"
	dm+=("$(bench_time run_dbmate "dm_$r")")
	dm0+=("$(bench_time run_dbmate "dm_$r")")
	check "dm_$r" dbmate

	fresh "tsi_$r" bench_tmpl_ts
	fresh "dmi_$r" bench_tmpl_dm
	if [ $((r % 2)) = 0 ]; then
		tsi+=("$(bench_time run_ts "tsi_$r")")
		dmi+=("$(bench_time run_dbmate "dmi_$r")")
	else
		dmi+=("$(bench_time run_dbmate "dmi_$r")")
		tsi+=("$(bench_time run_ts "tsi_$r")")
	fi
	check "tsi_$r" taskslaps
	check "dmi_$r" dbmate
	bench_psql -c "DROP DATABASE tsi_$r" -c "DROP DATABASE dmi_$r"

	fresh "sq_$r"
	sq+=("$(bench_time run_sqitch "db:pg://postgres@/sq_$r")")
	sq0+=("$(bench_time run_sqitch "db:pg://postgres@/sq_$r")")
	check "sq_$r" sqitch

	if [ "$verify" = 1 ]; then
		fresh "sv_$r"
		sv+=("$(bench_time run_sqitch --verify "db:pg://postgres@/sv_$r")")
		sv0+=("$(bench_time run_sqitch --verify "db:pg://postgres@/sv_$r")")
		check "sv_$r" "sqitch --verify"
	fi
	bench_log "run $((r + 1))/$RUNS: taskslaps $((ts[r] / 1000)) ms${before:+, BEFORE $((tb[r] / 1000)) ms}, dbmate $((dm[r] / 1000)) ms, sqitch $((sq[r] / 1000)) ms${sv:+, sqitch --verify $((sv[r] / 1000)) ms}"
	bench_psql -c "DROP DATABASE ts_$r" -c "DROP DATABASE dm_$r" -c "DROP DATABASE sq_$r"
	[ "$verify" = 1 ] && bench_psql -c "DROP DATABASE sv_$r"
done

m() { bench_calc "$(bench_median "$@") / 1000000" "%.3f"; }
row() { # label taskslaps-s peer-s
	printf '%-34s %12.3f %10.3f %16s\n' "$1" "$2" "$3" "$(bench_calc "$3 / $2" "%.2f")"
}
T=$(m "${ts[@]}") T0=$(m "${ts0[@]}") D=$(m "${dm[@]}") D0=$(m "${dm0[@]}")
S=$(m "${sq[@]}") S0=$(m "${sq0[@]}")

echo
echo "== apply overhead: $n one-step migrations (ADD COLUMN c integer to each of $n tables), fresh database per run, median of $RUNS"
echo "   taskslaps $("$CTL" --version 2>/dev/null | head -n 1), dbmate $("$DBMATE" --version | awk '{print $3}'), sqitch $("$SQITCH" --version | awk '{print $3}'), PostgreSQL $(bench_psql -At -c 'SHOW server_version')"
echo "   $(bench_machine)"
echo "   cluster: $(bench_fsync)"
echo
printf '%-34s %12s %10s %16s\n' "case" "taskslaps s" "peer s" "peer/taskslaps"
printf '%-34s %12s %10s %16s\n' "----" "-----------" "------" "--------------"
row "dbmate up" "$T" "$D"
row "dbmate up, no-op re-run" "$T0" "$D0"
TI=$(m "${tsi[@]}") DI=$(m "${dmi[@]}")
row "dbmate up, own tables there" "$TI" "$DI"
if [ -n "$before" ]; then
	B=$(m "${tb[@]}") B0=$(m "${tb0[@]}")
	row "dbmate up (BEFORE build)" "$B" "$D"
	row "dbmate up, no-op (BEFORE build)" "$B0" "$D0"
fi
row "sqitch deploy" "$T" "$S"
row "sqitch deploy, no-op re-run" "$T0" "$S0"
if [ "$verify" = 1 ]; then
	V=$(m "${sv[@]}") V0=$(m "${sv0[@]}")
	row "sqitch deploy --verify" "$T" "$V"
	row "sqitch deploy --verify, no-op" "$T0" "$V0"
fi
echo
printf 'per migration: taskslaps %.2f ms, dbmate %.2f ms, sqitch %.2f ms\n' \
	"$(bench_calc "$T * 1000 / $n")" "$(bench_calc "$D * 1000 / $n")" "$(bench_calc "$S * 1000 / $n")"
printf 'range (min-max s): taskslaps %.3f-%.3f, dbmate %.3f-%.3f, sqitch %.3f-%.3f\n' \
	"$(bench_calc "$(bench_min "${ts[@]}") / 1e6")" "$(bench_calc "$(bench_max "${ts[@]}") / 1e6")" \
	"$(bench_calc "$(bench_min "${dm[@]}") / 1e6")" "$(bench_calc "$(bench_max "${dm[@]}") / 1e6")" \
	"$(bench_calc "$(bench_min "${sq[@]}") / 1e6")" "$(bench_calc "$(bench_max "${sq[@]}") / 1e6")"
if [ -n "$before" ]; then
	printf 'BEFORE build: %s; per migration %.2f ms, %.2fx dbmate'"'"'s time; this build / BEFORE: %.2fx\n' \
		"$before" "$(bench_calc "$B * 1000 / $n")" "$(bench_calc "$B / $D")" "$(bench_calc "$T / $B")"
	echo "run by run, ms (taskslaps / BEFORE / dbmate): $(for ((r = 0; r < RUNS; r++)); do
		printf '%s/%s/%s ' $((ts[r] / 1000)) $((tb[r] / 1000)) $((dm[r] / 1000))
	done)"
fi
missed=0
if awk "BEGIN { exit !($T < $D) }"; then
	printf 'goal: faster than dbmate: MET (%.2fx)\n' "$(bench_calc "$D / $T")"
else
	printf 'goal: faster than dbmate: MISSED (taskslaps takes %.2fx dbmate'"'"'s time)\n' "$(bench_calc "$T / $D")"
	missed=1
fi
if [ "${FSYNC:-off}" = on ]; then
	if awk "BEGIN { exit !($T <= $D) }"; then
		printf 'goal: no slower than dbmate, fsync on: MET (%.2fx)\n' "$(bench_calc "$D / $T")"
	else
		printf 'goal: no slower than dbmate, fsync on: MISSED (taskslaps takes %.2fx dbmate'"'"'s time)\n' "$(bench_calc "$T / $D")"
		missed=1
	fi
	if awk "BEGIN { exit !($TI <= $DI) }"; then
		printf 'goal: no slower than dbmate, fsync on, own tables there: MET (%.2fx)\n' "$(bench_calc "$DI / $TI")"
	else
		printf 'goal: no slower than dbmate, fsync on, own tables there: MISSED (taskslaps takes %.2fx dbmate'"'"'s time)\n' "$(bench_calc "$TI / $DI")"
		missed=1
	fi
fi
if awk "BEGIN { exit !($S / $T >= 5) }"; then
	printf 'goal: >= 5x faster than sqitch deploy: MET (%.2fx)\n' "$(bench_calc "$S / $T")"
else
	printf 'goal: >= 5x faster than sqitch deploy: MISSED (%.2fx)\n' "$(bench_calc "$S / $T")"
	missed=1
fi

# --- where the time goes ------------------------------------------------------
# One more run of taskslaps and dbmate each, in databases that log every
# statement with its duration (ALTER DATABASE ... SET log_min_duration_statement
# = 0: no restart, only these sessions log): round trips per migration and the
# server's time per statement class; the client's own CPU from /usr/bin/time.
if [ "$profile" = 1 ] || { [ "$profile" = auto ] && [ "$missed" = 1 ]; }; then
	bench_need_cmd /usr/bin/time time
	log=$(bench_pg_log)
	for db in ts_prof dm_prof; do
		fresh "$db"
		bench_psql -c "ALTER DATABASE $db SET log_min_duration_statement = 0"
	done
	/usr/bin/time -f '%e %U %S' -o "$WORK/ts.time" "$CTL" --db "$(bench_conninfo ts_prof)" apply "$WORK/ts" --quiet
	run_dbmate dm_prof >/dev/null
	read -r wall usr sys <"$WORK/ts.time"
	echo
	echo "-- profile (one extra run of each, every statement logged with its duration)"
	printf 'taskslaps client: wall %.2f s, CPU %.2f s user + %.2f s system: the client waits on the server\n' "$wall" "$usr" "$sys"
	python3 "$bench_top/bench/lib/pglog.py" statements "$log" ts_prof "$n"
	echo
	python3 "$bench_top/bench/lib/pglog.py" statements "$log" dm_prof "$n"
fi
