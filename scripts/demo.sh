#!/usr/bin/env bash
# The taskslaps demo: GitOps migrations of the S.E.O. demo organisation.
#
#   bash scripts/demo.sh                 full demo (200,000 employees)
#   bash scripts/demo.sh --employees N   smaller data (CI runs it with 2000)
#   bash scripts/demo.sh --keep          leave PostgreSQL, daemons and repos running
#   bash scripts/demo.sh --fast          unthrottled backfills (for tests)
#
# It installs missing packages, builds, starts a throwaway PostgreSQL with two
# databases (seo_prod, seo_chaos) loaded with examples/seo, creates a bare git
# repository and a working clone, and starts two daemons: "prod" following the
# protected branch main, "chaos" following the unprotected branch chaos. Then
# it pushes the example plans one at a time and shows what an operator sees,
# including a plan that fails on a bad row, the revert file that undoes it to
# its expand wave (examples/revert/) and the plan that fixes it forward.
# Nothing is left behind unless --keep is given; running it again works.
# Its directories are made in TS_DEMO_TMPDIR (default /tmp), which the tests
# point at a directory of their own.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
employees=200000
keep=0
fast=0
while [ $# -gt 0 ]; do
	case "$1" in
	--employees) employees=$2; shift ;;
	--keep) keep=1 ;;
	--fast) fast=1 ;;
	-h|--help) sed -n '2,16p' "$0"; exit 0 ;;
	*) echo "demo: unknown option $1 (see --help)" >&2; exit 2 ;;
	esac
	shift
done

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
[ -t 1 ] && [ -z "${NO_COLOR:-}" ] || say() { printf '\n== %s\n' "$*"; }

bash "$top/scripts/deps.sh"
build=${TS_BUILD_DIR:-$top/build/release}
if [ ! -x "$build/taskslapsd" ] || [ ! -x "$build/taskslapsctl" ]; then
	say "building taskslaps"
	cmake -S "$top" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build "$build" -j"$(nproc)" --target taskslapsd taskslapsctl >/dev/null
fi
ctl=$build/taskslapsctl
daemon=$build/taskslapsd
psql=/usr/lib/postgresql/15/bin/psql
# shellcheck source=tests/lib/pg.sh
. "$top/tests/lib/pg.sh"

tmpbase=${TS_DEMO_TMPDIR:-/tmp}
work=$(mktemp -d "$tmpbase/taskslaps-demo.XXXXXX")
chmod 755 "$work"
pgdir=$(mktemp -d "$tmpbase/taskslaps-demo-pg.XXXXXX")
pids=()
cleanup() {
	local rc=$?
	if [ "$keep" = 1 ]; then
		cat <<EOF

The demo is still running (--keep):
  PostgreSQL:  PGHOST=$pgdir PGPORT=$PGPORT $psql -U postgres seo_prod
  repository:  $work/origin.git (clone in $work/clone)
  daemons:     $ctl --socket $work/prod.sock status
               $ctl --socket $work/chaos.sock status
  logs:        $work/prod.log $work/chaos.log
  stop it all: kill ${pids[*]}; bash $top/tests/lib/pg.sh stop $pgdir; rm -rf $work
EOF
		return
	fi
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	pg_stop "$pgdir" >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT

say "a throwaway PostgreSQL with the S.E.O. demo organisation ($employees employees)"
pg_start "$pgdir" >/dev/null
for db in seo_prod seo_chaos; do
	pg_createdb "$db" >/dev/null
	"$psql" -X -q -v ON_ERROR_STOP=1 -d "$db" -f "$top/examples/seo/schema.sql" >/dev/null
	"$psql" -X -q -v ON_ERROR_STOP=1 -d "$db" -v employees="$employees" \
		-f "$top/examples/seo/seed.sql" >/dev/null
done
"$psql" -X -At -d seo_prod -c "SELECT format('%s employees, %s teams, %s engagement events',
	(SELECT count(*) FROM employee), (SELECT count(*) FROM team),
	(SELECT count(*) FROM engagement_event))"

say "a bare migrations repository and a developer's clone"
git init -q --bare -b main "$work/origin.git"
git clone -q "$work/origin.git" "$work/clone" 2>/dev/null
g() { git -C "$work/clone" -c user.name="$1" -c user.email="$2" "${@:3}"; }
mkdir -p "$work/clone/migrations"
echo "# Migration plans, applied by taskslaps" > "$work/clone/migrations/README.md"
g Ada ada@seo.example add -A
g Ada ada@seo.example commit -qm "Start the migrations directory"
g Ada ada@seo.example push -q origin main
g Ada ada@seo.example push -q origin main:chaos

conninfo() { echo "host=$pgdir port=$PGPORT user=postgres dbname=$1"; }
for t in prod chaos; do
	branch=main
	[ "$t" = chaos ] && branch=chaos
	cat > "$work/$t.yaml" <<EOF
target: $t
repository: $work/origin.git
branch: $branch
migrations_dir: migrations
state_dir: $work/state-$t
protected_branches: [main]
database: "$(conninfo seo_$t)"
poll_interval: 5
control_socket: $work/$t.sock
chaos:
  max_plans_per_author_per_day: 3
EOF
	mkdir -p "$work/state-$t"
	"$daemon" --config "$work/$t.yaml" > "$work/$t.log" 2>&1 &
	pids+=($!)
done
echo "taskslapsd prod  follows main  (protected)  -> seo_prod"
echo "taskslapsd chaos follows chaos (chaos mode) -> seo_chaos"

# Waits until the daemon on socket $1 has seen tip $2 and finished its pass.
wait_synced() {
	local sock=$1 tip=$2 i
	for i in $(seq 1 600); do
		# status exits 1 when health is degraded (a blocked plan): read the document anyway
		if ("$ctl" --socket "$sock" status --json 2>/dev/null || true) | python3 -c '
import json, sys
s = json.load(sys.stdin)
sys.exit(0 if s.get("tip") == sys.argv[1] and s.get("state") in ("idle", "standby") else 1)
' "$tip"; then
			return 0
		fi
		sleep 0.2
	done
	echo "demo: the daemon on $sock did not finish in time; its log:" >&2
	tail -20 "${sock%.sock}.log" >&2
	return 1
}

# push BRANCH AUTHOR EMAIL FILE...: copy the plans in and push them.
push() {
	local branch=$1 name=$2 email=$3
	shift 3
	g "$name" "$email" checkout -q "$branch" 2>/dev/null || g "$name" "$email" checkout -q -b "$branch" "origin/$branch"
	for f in "$@"; do
		if [ "$fast" = 1 ]; then
			sed -E 's/"?rows_per_second"?: *[0-9]+/"rows_per_second": 0/' "$f" > "$work/clone/migrations/$(basename "$f")"
		else
			cp "$f" "$work/clone/migrations/"
		fi
	done
	g "$name" "$email" add -A
	g "$name" "$email" commit -qm "Add $(basename "$1")"
	g "$name" "$email" push -q origin "$branch"
	git -C "$work/clone" rev-parse HEAD
}

plans=("$top"/examples/plans/*)
say "push the seed's plan to main: the prod daemon plans and applies it"
tip=$(push main Ada ada@seo.example "${plans[0]}")
sleep 1
"$ctl" --socket "$work/prod.sock" status || true
wait_synced "$work/prod.sock" "$tip"
"$ctl" --socket "$work/prod.sock" status || true

for f in "${plans[@]:1}"; do
	say "push $(basename "$f") to main"
	"$ctl" plan "$f" | sed -n "1,3p"
	tip=$(push main Grace grace@seo.example "$f")
	wait_synced "$work/prod.sock" "$tip"
	"$ctl" --socket "$work/prod.sock" status | sed -n '1,12p' || true
done

say "a plan fails on a real bad row; a pushed revert file undoes it to expand; a fix goes forward"
# a legacy import left one address without an "@", before 0012's CHECK exists
"$psql" -X -q -d seo_prod -c "UPDATE employee SET email = 'see HR file 7' WHERE id = (SELECT min(id) FROM employee)"
tip=$(push main Grace grace@seo.example "$top/examples/revert/0012-email-domain.yaml")
wait_synced "$work/prod.sock" "$tip"
"$ctl" --socket "$work/prod.sock" status | grep -E '0012|failed|error' || true
"$ctl" plan "$top/examples/revert/0013-revert-email-domain.yaml" | sed -n '1,14p'
tip=$(push main Grace grace@seo.example "$top/examples/revert/0013-revert-email-domain.yaml")
wait_synced "$work/prod.sock" "$tip"
git -C "$work/origin.git" notes --ref=taskslaps/prod show "$tip" | sed -n '1,4p' || true
tip=$(push main Grace grace@seo.example "$top/examples/revert/0014-email-domain-fixed.yaml")
wait_synced "$work/prod.sock" "$tip"
"$ctl" --socket "$work/prod.sock" status | sed -n '1,20p' || true

say "chaos: an H1 plan runs, an H3 plan is refused on the unprotected branch"
tip=$(push chaos Linus linus@seo.example "${plans[0]}")
wait_synced "$work/chaos.sock" "$tip"
tip=$(push chaos Linus linus@seo.example "$top/examples/plans/0002-foreign-keys.yaml")
wait_synced "$work/chaos.sock" "$tip"
"$ctl" --socket "$work/chaos.sock" status || true

say "a broken plan gets an invalid note; the daemon carries on"
broken=("$top"/examples/plans-broken/*)
tip=$(push main Ken ken@seo.example "${broken[0]}")
wait_synced "$work/prod.sock" "$tip"
git -C "$work/origin.git" notes --ref=taskslaps/prod show "$tip" || true

say "the outcome, written back as git notes"
git -C "$work/origin.git" log --notes=taskslaps/prod --oneline main

say "the audit tables"
"$psql" -X -d seo_prod -c "SELECT plan_id, status, max_hazard, completed_at FROM taskslaps.plans ORDER BY plan_id"
"$psql" -X -d seo_prod -c "SELECT type, count(*) FROM taskslaps.events GROUP BY type ORDER BY type"

say "taskslapsctl status"
"$ctl" --socket "$work/prod.sock" status || true
