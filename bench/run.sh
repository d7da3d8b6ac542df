#!/usr/bin/env bash
# All side-by-side benchmarks, one command. Each prints one table with
# taskslaps' figure, the peer's (or the baseline's) and their ratio, and says
# whether its goal is met.
#
#   bash bench/run.sh                      apply lint backfill impact
#   bash bench/run.sh apply lint           only these
#   bash bench/run.sh plan daemon          the others: 10,000-plan lint (bench/plan/run.sh),
#                                          taskslapsd latency and idle cost (bench/daemon/run.sh)
#   bash bench/run.sh all                  all six
#   RUNS=9 bash bench/run.sh apply         RUNS for every benchmark (default 5; 3 for
#                                          backfill and impact, whose runs are long)
#   Sizes: APPLY_MIGRATIONS (200), LINT_MIGRATIONS (1000), BACKFILL_ROWS (1,000,000),
#   IMPACT_ROWS (200,000), RATE (20000 rows/s), SECONDS_ (impact's pgbench, 20);
#   each script's header lists the rest.
#
#   apply     bench/peers/apply.sh     N one-step migrations: taskslaps vs Sqitch vs dbmate
#   lint      bench/peers/lint.sh      1,000 migrations linted: taskslaps vs squawk
#   backfill  bench/backfill/run.sh    1,000,000-row backfill: plain UPDATE vs taskslaps; pacing
#   impact    bench/impact/run.sh      pgbench latency during taskslaps vs a naive migration
#
# Run as root on Debian 12 (see /work/shared/MACHINE-NOTES.md): the peers are
# installed when missing (Sqitch with apt-get; dbmate and squawk with npm under
# build/bench/peers), taskslapsctl is built in build/bench (Release) unless
# TASKSLAPSCTL names one. Each benchmark starts its own throwaway PostgreSQL 15
# (UNIX socket only) and removes it when it ends. The default four take about
# 6 minutes on a quiet 2-core machine, 8 on a loaded one.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)

all=(apply lint backfill impact)
[ $# -gt 0 ] && all=("$@")
[ "${all[*]}" = all ] && all=(apply lint backfill impact plan daemon)
for b in "${all[@]}"; do
	case $b in
	apply | lint | backfill | impact | plan | daemon) ;;
	*) echo "bench/run.sh: unknown benchmark '$b' (apply, lint, backfill, impact, plan, daemon, all)" >&2; exit 2 ;;
	esac
done

if [ -z "${TASKSLAPSCTL:-}" ]; then
	echo "bench: building build/bench/taskslapsctl (Release)" >&2
	cmake -S "$top" -B "$top/build/bench" -DCMAKE_BUILD_TYPE=Release >/dev/null
	make -s -C "$top/build/bench" -j"$(nproc)" taskslapsctl taskslapsd >/dev/null
	export TASKSLAPSCTL=$top/build/bench/taskslapsctl TASKSLAPSD=$top/build/bench/taskslapsd
fi

echo "taskslaps benchmarks, $(date -u '+%Y-%m-%d %H:%M UTC'), git $(git -C "$top" rev-parse --short HEAD 2>/dev/null || echo '?')"
echo "load at start: $(uptime | sed 's/.*load average/load average/')"
rc=0
for b in "${all[@]}"; do
	case $b in
	apply) script=bench/peers/apply.sh ;;
	lint) script=bench/peers/lint.sh ;;
	backfill) script=bench/backfill/run.sh ;;
	impact) script=bench/impact/run.sh ;;
	plan) script=bench/plan/run.sh ;;
	daemon) script=bench/daemon/run.sh ;;
	esac
	t0=$(date +%s)
	bash "$top/$script" || { echo "bench: $script failed" >&2; rc=1; }
	echo "($script: $(($(date +%s) - t0)) s; load $(cut -d' ' -f1-3 /proc/loadavg))"
done
exit $rc
