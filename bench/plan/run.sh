#!/usr/bin/env bash
# How fast `taskslapsctl lint` checks a large migrations directory, and what
# memory it needs: 10,000 generated YAML plans of 10 steps each, linted on
# one core and with --jobs 2 on two, side by side with reading the same files
# (cat) and with a directory ten times smaller (memory must not grow with the
# directory).
#
#   bash bench/plan/run.sh                 builds build/bench (Release) first
#   TASKSLAPSCTL=path/to/taskslapsctl bash bench/plan/run.sh
#   BASELINE=path/to/other/taskslapsctl bash bench/plan/run.sh
#   PLANS=20000 RUNS=5 bash bench/plan/run.sh
#
# Goals: the whole 10,000-plan directory in under 1 s on one core, and in
# under 1 s with --jobs 2 on two cores (CPUs 0 and 1; BENCH_CPUS to change).
# Each case runs RUNS times (default 3) after one untimed warm-up run (page
# cache warm); the table shows the best and the median wall time, and the
# largest peak RSS of the runs (/usr/bin/time -f %M). With BASELINE, every
# lint case is run by both binaries alternately (baseline, then this one,
# RUNS times), so both see the same load; the load average is printed.
set -euo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
plans=${PLANS:-10000}
runs=${RUNS:-3}
small=$((plans / 10))
cpu=${BENCH_CPU:-0}
cpus=${BENCH_CPUS:-0,1}
base=${BASELINE:-}

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

# once CPUS CMD...: one timed run of CMD (stdout to /dev/null) pinned to CPUS;
# sets once_us (wall time) and once_rss (peak RSS, KiB).
once() {
	local c=$1 t0 t1
	shift
	t0=$(date +%s%N)
	/usr/bin/time -f %M -o "$tmp/rss" taskset -c "$c" "$@" >/dev/null 2>"$tmp/err" || {
		# lint exits 1/2 on findings; only a crash matters here
		[ $? -lt 3 ] || { cat "$tmp/err" >&2; exit 1; }
	}
	t1=$(date +%s%N)
	once_us=$(((t1 - t0) / 1000))
	once_rss=$(tail -n 1 "$tmp/rss")
}

# row NAME PLANS RSS TIMES...: prints a table row; sets last_best, last_rss.
row() {
	local name=$1 n=$2 maxrss=$3 times
	shift 3
	mapfile -t times < <(printf '%s\n' "$@" | sort -n)
	local best=${times[0]} median=${times[$((runs / 2))]}
	printf '%-40s %7d %9.3f %9.3f %10.0f %10.0f %9.1f\n' "$name" "$n" \
		"$(echo "$best / 1000000" | bc -l)" "$(echo "$median / 1000000" | bc -l)" \
		"$(echo "$n * 1000000 / $best" | bc -l)" "$(echo "$n * 10 * 1000000 / $best" | bc -l)" \
		"$(echo "$maxrss / 1024" | bc -l)"
	last_best=$best
	last_rss=$maxrss
}

# measure NAME PLANS CPUS CMD...: runs CMD RUNS times after a warm-up, pinned
# to CPUS; prints a table row.
measure() {
	local name=$1 n=$2 c=$3 i maxrss=0 times=()
	shift 3
	taskset -c "$c" "$@" >/dev/null 2>&1 || true # warm-up
	for ((i = 0; i < runs; i++)); do
		once "$c" "$@"
		times+=("$once_us")
		[ "$once_rss" -gt "$maxrss" ] && maxrss=$once_rss
	done
	row "$name" "$n" "$maxrss" "${times[@]}"
}

# lint_case NAME PLANS CPUS LINT-ARGS...: `lint LINT-ARGS` by this binary, and
# with BASELINE by the baseline too, alternately; one row each (this one last,
# so last_best and last_rss are its own).
lint_case() {
	local name=$1 n=$2 c=$3 i brss=0 rss=0 btimes=() times=()
	shift 3
	if [ -z "$base" ]; then
		measure "$name" "$n" "$c" "$ctl" lint "$@"
		return
	fi
	taskset -c "$c" "$base" lint "$@" >/dev/null 2>&1 || true # warm-up
	taskset -c "$c" "$ctl" lint "$@" >/dev/null 2>&1 || true
	for ((i = 0; i < runs; i++)); do
		once "$c" "$base" lint "$@"
		btimes+=("$once_us")
		[ "$once_rss" -gt "$brss" ] && brss=$once_rss
		once "$c" "$ctl" lint "$@"
		times+=("$once_us")
		[ "$once_rss" -gt "$rss" ] && rss=$once_rss
	done
	row "baseline: $name" "$n" "$brss" "${btimes[@]}"
	base_best=$last_best
	row "$name" "$n" "$rss" "${times[@]}"
}

command -v bc >/dev/null || { echo "bench: bc is missing (apt-get install bc)" >&2; exit 1; }

echo
echo "taskslapsctl lint: $plans plans x 10 steps ($((bytes / 1024)) KiB of YAML), CPU $cpu only (--jobs 2: CPUs $cpus), best of $runs"
echo "$(uname -m), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "$(date -u '+%Y-%m-%d %H:%M UTC'), load average $(cut -d' ' -f1-3 /proc/loadavg)${base:+, baseline $base}"
echo
printf '%-40s %7s %9s %9s %10s %10s %9s\n' case plans "best s" "median s" plans/s steps/s "RSS MiB"
printf '%-40s %7s %9s %9s %10s %10s %9s\n' ---- ----- ------ -------- ------- ------- -------
measure "cat DIR/* >/dev/null" "$plans" "$cpu" sh -c 'cat "$0"/* >/dev/null' "$tmp/big"
lint_case "lint DIR" "$plans" "$cpu" "$tmp/big"
big_best=$last_best big_rss=$last_rss
lint_case "lint --jobs 2 DIR (2 CPUs)" "$plans" "$cpus" --jobs 2 "$tmp/big"
jobs_best=$last_best
lint_case "lint --json DIR" "$plans" "$cpu" --json "$tmp/big"
lint_case "lint --mode chaos DIR" "$plans" "$cpu" --mode chaos "$tmp/big"
measure "lint DIR/10 (memory check)" "$small" "$cpu" "$ctl" lint "$tmp/small"
small_rss=$last_rss
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo

# goal TEXT MICROSECONDS
goal() {
	local secs
	secs=$(echo "$2 / 1000000" | bc -l)
	if [ "$2" -lt 1000000 ]; then
		printf 'goal: %d plans in < 1 s %s: MET (%.3f s)\n' "$plans" "$1" "$secs"
	else
		printf 'goal: %d plans in < 1 s %s: MISSED (%.3f s)\n' "$plans" "$1" "$secs"
	fi
}
goal "on one core" "$big_best"
goal "with --jobs 2 on two cores" "$jobs_best"
printf 'memory: %.1f MiB for %d plans, %.1f MiB for %d plans (ratio %.2f)\n' \
	"$(echo "$big_rss / 1024" | bc -l)" "$plans" "$(echo "$small_rss / 1024" | bc -l)" "$small" \
	"$(echo "$big_rss / $small_rss" | bc -l)"
