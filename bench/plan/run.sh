#!/usr/bin/env bash
# How fast `taskslapsctl lint` checks a large migrations directory, and what
# memory it needs: 10,000 generated YAML plans of 10 steps each, linted on
# one core, side by side with reading the same files (cat) and with a
# directory ten times smaller (memory must not grow with the directory).
#
#   bash bench/plan/run.sh                 builds build/bench (Release) first
#   TASKSLAPSCTL=path/to/taskslapsctl bash bench/plan/run.sh
#   PLANS=20000 RUNS=5 bash bench/plan/run.sh
#
# Goal: the whole 10,000-plan directory in under 1 s on one core.
# Each case runs RUNS times (default 3) after one untimed warm-up run (page
# cache warm); the table shows the best and the median wall time, and the
# largest peak RSS of the runs (/usr/bin/time -f %M).
set -euo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
plans=${PLANS:-10000}
runs=${RUNS:-3}
small=$((plans / 10))
cpu=${BENCH_CPU:-0}

if [ ! -x /usr/bin/time ]; then
	echo "bench: installing GNU time (for peak RSS)" >&2
	if [ "$(id -u)" -ne 0 ]; then
		echo "bench: /usr/bin/time is missing; apt-get install time" >&2
		exit 1
	fi
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >/dev/null ||
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >/dev/null; }
fi
command -v taskset >/dev/null || { echo "bench: taskset (util-linux) is missing" >&2; exit 1; }

ctl=${TASKSLAPSCTL:-}
if [ -z "$ctl" ]; then
	echo "bench: building build/bench (Release)" >&2
	cmake -S "$top" -B "$top/build/bench" -DCMAKE_BUILD_TYPE=Release -DTS_TESTS=OFF >/dev/null
	cmake --build "$top/build/bench" --target taskslapsctl -j"$(nproc)" >/dev/null
	ctl=$top/build/bench/taskslapsctl
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "bench: generating $plans plans of 10 steps in $tmp" >&2
python3 "$top/bench/plan/gen.py" "$tmp/big" "$plans"
python3 "$top/bench/plan/gen.py" "$tmp/small" "$small"
bytes=$(cat "$tmp"/big/* | wc -c)
sync # no write-back of the new files during the timed runs

# The plans must be clean, or the timing would measure something else.
if ! taskset -c "$cpu" "$ctl" lint "$tmp/big" >"$tmp/lint.out"; then
	echo "bench: lint of the generated plans did not exit 0:" >&2
	tail -n 5 "$tmp/lint.out" >&2
	exit 1
fi

# measure NAME PLANS CMD...: runs CMD (stdout to /dev/null) RUNS times, pinned
# to one CPU; prints a table row.
measure() {
	local name=$1 n=$2 i t0 t1 rss maxrss=0 times=()
	shift 2
	taskset -c "$cpu" "$@" >/dev/null 2>&1 || true # warm-up
	for ((i = 0; i < runs; i++)); do
		t0=$(date +%s%N)
		/usr/bin/time -f %M -o "$tmp/rss" taskset -c "$cpu" "$@" >/dev/null 2>"$tmp/err" || {
			# lint exits 1/2 on findings; only a crash matters here
			[ $? -lt 3 ] || { cat "$tmp/err" >&2; exit 1; }
		}
		t1=$(date +%s%N)
		times+=($(((t1 - t0) / 1000)))
		rss=$(tail -n 1 "$tmp/rss")
		[ "$rss" -gt "$maxrss" ] && maxrss=$rss
	done
	mapfile -t times < <(printf '%s\n' "${times[@]}" | sort -n)
	local best=${times[0]} median=${times[$((runs / 2))]}
	printf '%-34s %7d %9.3f %9.3f %10.0f %10.0f %9.1f\n' "$name" "$n" \
		"$(echo "$best / 1000000" | bc -l)" "$(echo "$median / 1000000" | bc -l)" \
		"$(echo "$n * 1000000 / $best" | bc -l)" "$(echo "$n * 10 * 1000000 / $best" | bc -l)" \
		"$(echo "$maxrss / 1024" | bc -l)"
	last_best=$best
	last_rss=$maxrss
}

command -v bc >/dev/null || { echo "bench: bc is missing (apt-get install bc)" >&2; exit 1; }

echo
echo "taskslapsctl lint: $plans plans x 10 steps ($((bytes / 1024)) KiB of YAML), CPU $cpu only, best of $runs"
echo "$(uname -m), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo
printf '%-34s %7s %9s %9s %10s %10s %9s\n' case plans "best s" "median s" plans/s steps/s "RSS MiB"
printf '%-34s %7s %9s %9s %10s %10s %9s\n' ---- ----- ------ -------- ------- ------- -------
measure "baseline: cat DIR/* >/dev/null" "$plans" sh -c 'cat "$0"/* >/dev/null' "$tmp/big"
measure "lint DIR" "$plans" "$ctl" lint "$tmp/big"
big_best=$last_best big_rss=$last_rss
measure "lint --json DIR" "$plans" "$ctl" lint --json "$tmp/big"
measure "lint --mode chaos DIR" "$plans" "$ctl" lint --mode chaos "$tmp/big"
measure "lint DIR/10 (memory check)" "$small" "$ctl" lint "$tmp/small"
small_rss=$last_rss
echo

secs=$(echo "$big_best / 1000000" | bc -l)
if [ "$big_best" -lt 1000000 ]; then
	printf 'goal: %d plans in < 1 s on one core: MET (%.3f s)\n' "$plans" "$secs"
else
	printf 'goal: %d plans in < 1 s on one core: MISSED (%.3f s)\n' "$plans" "$secs"
fi
printf 'memory: %.1f MiB for %d plans, %.1f MiB for %d plans (ratio %.2f)\n' \
	"$(echo "$big_rss / 1024" | bc -l)" "$plans" "$(echo "$small_rss / 1024" | bc -l)" "$small" \
	"$(echo "$big_rss / $small_rss" | bc -l)"
