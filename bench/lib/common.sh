# shellcheck shell=bash disable=SC2034 # (variables set here are for the scripts that source it)
# Shared helpers for the side-by-side benchmarks (bash; sourced, not run).
#
#   . "$(dirname "$0")/../lib/common.sh"
#   bench_ctl                  # $CTL: taskslapsctl (builds build/bench, Release, unless $TASKSLAPSCTL)
#   bench_pg_start [CONF]      # throwaway PostgreSQL 15 (tests/lib/pg.sh); exports PGHOST, PGPORT
#                              # (FSYNC=on: with fsync on; pg.sh's default is off)
#   bench_fsync                # "fsync = on" or "fsync = off": what the cluster runs with
#   bench_work                 # $WORK: a temporary directory, removed on exit
#   t=$(bench_time CMD...)     # wall time of CMD in µs (stdout and stderr to $WORK/last.out)
#   bench_median N...          # the median (mean of the two middle values for an even count)
#
# Everything a benchmark starts is stopped by the EXIT trap set here: the
# cluster is stopped and its directory removed, $WORK is removed, and
# background jobs registered with bench_bg_pid are killed (by pid; call
# bench_bg_done once they have been waited for).

bench_top=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BENCH_PG_BIN=${TS_PG_BIN:-/usr/lib/postgresql/15/bin}
PSQL=$BENCH_PG_BIN/psql
PEERS=$bench_top/build/bench/peers

. "$bench_top/tests/lib/pg.sh"

bench_log() { printf 'bench: %s\n' "$*" >&2; }
bench_die() { printf 'bench: %s\n' "$*" >&2; exit 1; }

_bench_pg_dir=
_bench_work=
_bench_pids=()
_bench_cleanup() {
	local pid
	for pid in "${_bench_pids[@]}"; do
		kill "$pid" 2>/dev/null || true
	done
	[ -n "$_bench_pg_dir" ] && pg_stop "$_bench_pg_dir" >/dev/null 2>&1
	[ -n "$_bench_work" ] && rm -rf -- "$_bench_work"
	_bench_pg_dir='' _bench_work=''
}
trap _bench_cleanup EXIT
trap 'exit 130' INT TERM

bench_bg_pid() { _bench_pids+=("$1"); }
bench_bg_done() { _bench_pids=(); } # after waiting for them: nothing left to kill

bench_work() {
	_bench_work=$(mktemp -d "${TMPDIR:-/tmp}/ts-bench.XXXXXX")
	WORK=$_bench_work
}

# bench_pg_start [EXTRA-CONF]: a cluster in its own mktemp directory (pg.sh
# needs one its OS user can reach). EXTRA-CONF lines go to postgresql.conf.
# FSYNC=on turns fsync on (every commit waits for its WAL flush, as on a
# real server); pg.sh's clusters run with fsync off.
bench_pg_start() {
	local conf=${1:-}
	case ${FSYNC:-off} in
	on) conf=$(printf '%s\nfsync = on\n' "$conf") ;;
	off) ;;
	*) bench_die "FSYNC must be on or off, not ${FSYNC}" ;;
	esac
	_bench_pg_dir=$(mktemp -d "${TMPDIR:-/tmp}/ts-bench-pg.XXXXXX")
	TS_PG_CONF="$conf" pg_start "$_bench_pg_dir" >/dev/null || bench_die "PostgreSQL did not start"
	PGDIR=$_bench_pg_dir
}

# What the running cluster says of fsync and synchronous_commit.
bench_fsync() {
	printf 'fsync = %s, synchronous_commit = %s' "$(bench_psql -At -c 'SHOW fsync')" \
		"$(bench_psql -At -c 'SHOW synchronous_commit')"
}

# The server log of the running cluster.
bench_pg_log() { printf '%s/log\n' "$_bench_pg_dir"; }

# conninfo DB: libpq conninfo for database DB on the bench cluster (UNIX socket).
bench_conninfo() { printf 'host=%s port=%s user=postgres dbname=%s' "$PGHOST" "$PGPORT" "$1"; }

bench_psql() { "$PSQL" -X -q -v ON_ERROR_STOP=1 "$@"; }

bench_ctl() {
	if [ -n "${TASKSLAPSCTL:-}" ]; then
		CTL=$TASKSLAPSCTL
	else
		bench_log "building build/bench/taskslapsctl (Release)"
		cmake -S "$bench_top" -B "$bench_top/build/bench" -DCMAKE_BUILD_TYPE=Release >/dev/null ||
			bench_die "cmake failed"
		make -s -C "$bench_top/build/bench" -j"$(nproc)" taskslapsctl >/dev/null || bench_die "build failed"
		CTL=$bench_top/build/bench/taskslapsctl
	fi
	[ -x "$CTL" ] || bench_die "no taskslapsctl at $CTL"
}

_bench_apt() {
	[ "$(id -u)" -eq 0 ] || bench_die "missing Debian packages ($*); as root: apt-get install $*"
	bench_log "installing $* (apt-get)"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null 2>&1 || {
		apt-get update -qq >/dev/null 2>&1
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
	} || bench_die "apt-get install $* failed"
}

# bench_need_cmd CMD PACKAGE: install PACKAGE when CMD is missing.
bench_need_cmd() { command -v "$1" >/dev/null || _bench_apt "$2"; }

bench_need_sqitch() {
	if ! command -v sqitch >/dev/null || ! perl -MDBD::Pg -e 1 2>/dev/null; then
		_bench_apt sqitch libdbd-pg-perl
	fi
	SQITCH=$(command -v sqitch)
}

# bench_need_npm PACKAGE@VERSION BIN-PATH: install an npm package under
# build/bench/peers/npm (never the source tree) unless BIN-PATH is there;
# prints the absolute BIN-PATH.
bench_need_npm() {
	local pkg=$1 bin=$PEERS/npm/$2
	if [ ! -x "$bin" ]; then
		command -v npm >/dev/null || _bench_apt npm
		mkdir -p "$PEERS/npm"
		[ -f "$PEERS/npm/package.json" ] || printf '{"name": "taskslaps-bench-peers", "private": true}\n' >"$PEERS/npm/package.json"
		bench_log "installing $pkg (npm, in $PEERS/npm)"
		(cd "$PEERS/npm" && npm install --no-audit --no-fund --silent "$pkg" >/dev/null) ||
			bench_die "npm install $pkg failed"
		[ -x "$bin" ] || bench_die "$pkg installed, but $bin is missing"
	fi
	printf '%s\n' "$bin"
}

bench_need_dbmate() {
	DBMATE=$(bench_need_npm "dbmate@${DBMATE_VERSION:-2.36.0}" node_modules/@dbmate/linux-x64/bin/dbmate) || exit 1
}

bench_need_squawk() {
	SQUAWK=$(bench_need_npm "squawk-cli@${SQUAWK_VERSION:-2.66.0}" node_modules/@squawk-cli/linux-x64/bin/squawk) || exit 1
}

bench_now_us() { echo $(($(date +%s%N) / 1000)); }

# bench_time CMD...: runs CMD, prints its wall time in µs; fails when CMD fails
# (its output is in $WORK/last.out).
bench_time() {
	local t0 t1
	t0=$(date +%s%N)
	"$@" >"$WORK/last.out" 2>&1 || {
		bench_log "failed ($?): $*"
		tail -n 20 "$WORK/last.out" >&2
		return 1
	}
	t1=$(date +%s%N)
	echo $(((t1 - t0) / 1000))
}

bench_median() {
	printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END {
		if (NR == 0) exit 1
		if (NR % 2) print v[(NR + 1) / 2]; else printf "%.6g\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
bench_min() { printf '%s\n' "$@" | sort -g | head -n 1; }
bench_max() { printf '%s\n' "$@" | sort -g | tail -n 1; }

# bench_calc EXPR: floating point arithmetic (awk), printed with %.6g unless FMT.
bench_calc() { awk "BEGIN { printf \"${2:-%.6g}\", $1 }"; }

# The machine, once per table.
bench_machine() {
	printf '%s, %s cores, %s; load average %s\n' "$(uname -m)" "$(nproc)" \
		"$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')" \
		"$(cut -d' ' -f1-3 /proc/loadavg)"
}

bench_runs() { RUNS=${RUNS:-${1:-5}}; [ "$RUNS" -ge 1 ] 2>/dev/null || bench_die "RUNS must be a positive integer"; }
