#!/usr/bin/env bash
# Shared setup of the torture tests (tests/torture/torture_*.sh): on top of
# tests/lib/apply_env.sh (a throwaway PostgreSQL cluster, $W, q, start_bg,
# wait_for, assertions) it adds the S.E.O. demo database as a template, the
# torture plans, a bare migrations repository, taskslapsd instances driven by
# signals, and a fingerprint of a database to compare runs with.
#
#   . "$here/lib.sh"
#   torture_init "$@"          # --long / TS_TORTURE_LONG=1, --seed N / TS_TORTURE_SEED
#   torture_start              # env_start + TS_TORTURE_KEEP_LOGS
#   seo_template tmpl 100000   # schema + seed + the update counter (below)
#   clone_db run1 tmpl
#   torture_plans "$W/plans"   # examples/plans unthrottled + tests/torture/plans
#   make_repo "$W/origin.git" "$W/plans"
#   daemon_conf t1 run1 "$W/origin.git"
#   daemon_start t1            # DPID
#   wait_in_sync t1 300 "$DPID"
#   daemon_term t1             # SIGTERM, waits; DRC is its exit status
#   fingerprint run1 >"$W/run1.fp"
#
# The update counter: employee gets a column torture_updates that a BEFORE
# UPDATE trigger increments for every update of a row, so a backfill batch
# applied twice shows as a row counted twice (the plan 0010 backfill is not
# idempotent either: a batch applied twice changes the data too).

# shellcheck disable=SC2034
_torture_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=tests/lib/apply_env.sh
. "$_torture_root/tests/lib/apply_env.sh"

TASKSLAPSD=${TASKSLAPSD:-$_torture_root/build/taskslapsd}
TORTURE_DIR=$_torture_root/tests/torture
TORTURE_LONG=0
TORTURE_SEED=
DPID=
DRC=
_torture_starts=0

# torture_init ARGS...: the common options of every torture script.
torture_init() {
    case "${TS_TORTURE_LONG:-}" in
    "" | 0) ;;
    *) TORTURE_LONG=1 ;;
    esac
    TORTURE_SEED=${TS_TORTURE_SEED:-}
    while [ $# -gt 0 ]; do
        case "$1" in
        --long) TORTURE_LONG=1 ;;
        --seed)
            TORTURE_SEED=$2
            shift
            ;;
        -v | --verbose) export TS_VERBOSE=1 ;;
        -h | --help)
            sed -n '2,/^$/p' "$0" | sed 's/^# \{0,1\}//'
            exit 0
            ;;
        *)
            echo "$(basename "$0"): unknown option $1 (see --help)" >&2
            exit 2
            ;;
        esac
        shift
    done
    # known leaks inside libgit2 (see the file), for sanitized builds
    export LSAN_OPTIONS="${LSAN_OPTIONS:+$LSAN_OPTIONS:}suppressions=$TORTURE_DIR/lsan.supp"
    [ -n "$TORTURE_SEED" ] || TORTURE_SEED=$(($$ ^ $(date +%s) % 32768))
    RANDOM=$TORTURE_SEED
    if [ ! -x "$TASKSLAPSD" ]; then
        echo "taskslapsd not found at $TASKSLAPSD (build first, or set TASKSLAPSD)" >&2
        exit 1
    fi
    local mode=short
    [ "$TORTURE_LONG" = 0 ] || mode=long
    echo "$(basename "$0" .sh): $mode variant, seed $TORTURE_SEED (TS_TORTURE_SEED=$TORTURE_SEED to replay)"
}

# torture_start: env_start (cluster, $W, cleanup on exit); with
# TS_TORTURE_KEEP_LOGS=DIR the daemons' logs are copied to DIR at the end.
torture_start() {
    env_start
    trap _torture_cleanup EXIT
}

_torture_mounts=()
_torture_cleanup() {
    local pid m
    if [ -n "${TS_TORTURE_KEEP_LOGS:-}" ] && [ -n "$W" ]; then
        mkdir -p "$TS_TORTURE_KEEP_LOGS" && cp "$W"/*.log "$W"/*.fp "$TS_TORTURE_KEEP_LOGS/" 2>/dev/null
    fi
    if [ "${#_torture_mounts[@]}" -gt 0 ]; then
        # the daemons first: a mount they use cannot go
        for pid in "${_env_bg_pids[@]}"; do kill -KILL "$pid" 2>/dev/null; done
        for pid in "${_env_bg_pids[@]}"; do wait "$pid" 2>/dev/null; done
        for m in "${_torture_mounts[@]}"; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null; done
    fi
    _env_cleanup
}

# torture_mount_tmpfs DIR SIZE: a tmpfs of SIZE (e.g. 8m) on DIR, unmounted
# at exit. Returns 1 when this process may not mount (not root, no CAP_SYS_ADMIN).
torture_mount_tmpfs() {
    mkdir -p "$1" || return 1
    mount -t tmpfs -o "size=$2,mode=0755" tmpfs "$1" 2>/dev/null || return 1
    _torture_mounts+=("$1")
}

# note TEXT...: a progress line, with the time since the start.
note() {
    awk -v a="$_env_t0" -v b="$(date +%s.%N)" -v m="$*" 'BEGIN { printf "[%6.1f s] %s\n", b - a, m }'
}

# rand N: a random integer in [0, N).
rand() {
    echo $(((RANDOM * 32768 + RANDOM) % $1))
}

# sleep_ms N
sleep_ms() {
    sleep "$(awk -v n="$1" 'BEGIN { printf "%.3f", n / 1000 }')"
}

# seo_template NAME EMPLOYEES: the demo database (examples/seo) with the
# update counter, vacuumed and analysed; used with clone_db.
seo_template() {
    local db=$1 n=$2
    newdb "$db"
    "$PSQL" -X -q -v ON_ERROR_STOP=1 -d "$db" -f "$_torture_root/examples/seo/schema.sql" &&
        "$PSQL" -X -q -v ON_ERROR_STOP=1 -d "$db" -v employees="$n" \
            -f "$_torture_root/examples/seo/seed.sql" &&
        "$PSQL" -X -q -v ON_ERROR_STOP=1 -d "$db" <<'EOF' || {
-- Every update of every employee row counts: a batch applied twice shows.
ALTER TABLE employee ADD COLUMN torture_updates int NOT NULL DEFAULT 0;
CREATE FUNCTION torture_count_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.torture_updates := OLD.torture_updates + 1;
    RETURN NEW;
END
$$;
CREATE TRIGGER employee_torture_count BEFORE UPDATE ON employee
    FOR EACH ROW EXECUTE FUNCTION torture_count_update();
VACUUM ANALYZE;
EOF
        echo "could not load the demo database" >&2
        exit 1
    }
}

# clone_db NAME TEMPLATE: a copy of TEMPLATE (which must have no sessions).
clone_db() {
    local i
    for i in 1 2 3 4 5; do
        "$PSQL" -X -q -d postgres -c "CREATE DATABASE \"$1\" TEMPLATE \"$2\"" 2>"$W/.clone.err" && break
        sleep 0.5
    done
    [ $i -lt 5 ] || { cat "$W/.clone.err" >&2; echo "could not copy $2 to $1" >&2; exit 1; }
    CURDB=$1
    CONNINFO=$(pg_conninfo "$1")
}

# drop_db NAME
drop_db() {
    "$PSQL" -X -q -d postgres -c "DROP DATABASE IF EXISTS \"$1\" WITH (FORCE)" >/dev/null
}

# torture_plans DIR: examples/plans with every backfill unthrottled
# (rows_per_second 0), plus the plans in tests/torture/plans.
torture_plans() {
    local dir=$1 f
    mkdir -p "$dir"
    for f in "$_torture_root"/examples/plans/*; do
        sed -E 's/"?rows_per_second"?: *[0-9]+/"rows_per_second": 0/' "$f" >"$dir/$(basename "$f")"
    done
    cp "$TORTURE_DIR"/plans/* "$dir/"
}

# git_as ARGS...: git in the working clone ($CLONE, default $W/clone) as a
# test author.
git_as() {
    git -C "${CLONE:-$W/clone}" -c user.name=Torture -c user.email=torture@seo.example \
        -c commit.gpgsign=false "$@"
}

# make_repo BARE [PLANS_DIR]: a bare repository (branch main) and a working
# clone in $CLONE (default $W/clone); with PLANS_DIR, one commit per plan,
# pushed at once.
make_repo() {
    local bare=$1 plans=${2:-} f clone=${CLONE:-$W/clone}
    git init -q --bare -b main "$bare" || exit 1
    rm -rf "$clone"
    git clone -q "$bare" "$clone" 2>/dev/null || exit 1
    git_as checkout -q -b main 2>/dev/null
    mkdir -p "$clone/migrations"
    echo "# migration plans" >"$clone/migrations/README.md"
    git_as add -A && git_as commit -qm "Start the migrations directory" || exit 1
    if [ -n "$plans" ]; then
        for f in "$plans"/*; do
            cp "$f" "$clone/migrations/"
            git_as add -A && git_as commit -qm "Add $(basename "$f")" || exit 1
        done
    fi
    git_as push -q origin main || exit 1
}

# push_plan FILE...: commit the files into migrations/ and push; prints the new tip.
push_plan() {
    local f
    for f in "$@"; do cp "$f" "${CLONE:-$W/clone}/migrations/"; done
    git_as add -A && git_as commit -qm "Add $(basename "$1")" && git_as push -q origin main ||
        { echo "push failed" >&2; return 1; }
    git_as rev-parse HEAD
}

# daemon_conf TARGET DB REPOSITORY [KEY: VALUE...]: writes $W/TARGET.yaml;
# the extra lines replace the defaults of the same top-level key.
daemon_conf() {
    local target=$1 db=$2 repo=$3 l
    shift 3
    mkdir -p "$W/$target.state"
    cat >"$W/$target.yaml" <<EOF
target: $target
repository: $repo
branch: main
migrations_dir: migrations
state_dir: $W/$target.state
protected_branches: [main]
database: "$(pg_conninfo "$db")"
poll_interval: 2
control_socket: $W/$target.sock
EOF
    for l in "$@"; do
        sed -i "/^${l%%:*}:/d" "$W/$target.yaml"
        printf '%s\n' "$l" >>"$W/$target.yaml"
    done
}

# daemon_start TARGET: starts taskslapsd for TARGET in the background; its
# pid in DPID, its stderr appended to $W/TARGET.log.
daemon_start() {
    local target=$1
    _torture_starts=$((_torture_starts + 1))
    "$TASKSLAPSD" --config "$W/$target.yaml" >>"$W/$target.log" 2>&1 &
    DPID=$!
    _env_bg_pids+=("$DPID")
}

# daemon_kill PID: SIGKILL and reap.
daemon_kill() {
    kill -KILL "$1" 2>/dev/null
    wait "$1" 2>/dev/null
}

# daemon_term PID [TIMEOUT]: SIGTERM, wait for the exit (TIMEOUT seconds,
# default 60, then SIGKILL); its exit status in DRC ("timeout" if killed).
daemon_term() {
    local pid=$1 timeout=${2:-60} i
    kill -TERM "$pid" 2>/dev/null
    for ((i = 0; i < timeout * 20; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    if kill -0 "$pid" 2>/dev/null; then
        daemon_kill "$pid"
        DRC=timeout
        return 1
    fi
    wait "$pid" 2>/dev/null
    DRC=$?
    return 0
}

# status_json TARGET: the daemon's status document (empty when unreachable).
status_json() {
    "$TASKSLAPSCTL" --socket "$W/$1.sock" status --json 2>/dev/null
    return 0
}

# status_field TARGET JQ: one field of the status document ("" when unreachable).
status_field() {
    status_json "$1" | jq -r "$2" 2>/dev/null
}

# wait_status TARGET JQ_BOOL TIMEOUT [PID]: polls the status document until
# the jq expression is true. Returns 1 on timeout or when PID has ended.
wait_status() {
    local target=$1 expr=$2 timeout=$3 pid=${4:-} end
    end=$(($(ms_now) + timeout * 1000))
    while :; do
        [ "$(status_json "$target" | jq -r "$expr" 2>/dev/null)" = true ] && return 0
        [ -z "$pid" ] || alive "$pid" || return 1
        [ "$(ms_now)" -lt "$end" ] || return 1
        sleep 0.1
    done
}

# wait_in_sync TARGET TIMEOUT [PID]: until the daemon says in_sync and idle
# (after a pass that saw the tip of the bare repository, when TIP is set).
wait_in_sync() {
    local tip=${TIP:-}
    if [ -n "$tip" ]; then
        wait_status "$1" ".sync == \"in_sync\" and .state == \"idle\" and .tip == \"$tip\"" "$2" "${3:-}"
    else
        wait_status "$1" '.sync == "in_sync" and .state == "idle"' "$2" "${3:-}"
    fi
}

# advisory_locks DB: advisory locks held in DB (pid mode application_name), one a line.
advisory_locks() {
    qdb "$1" "SELECT l.pid, l.mode, a.application_name FROM pg_locks l LEFT JOIN pg_stat_activity a USING (pid)
              WHERE l.locktype = 'advisory' AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
}

# wait_no_advisory DB TIMEOUT: until DB has no advisory lock; 1 on timeout.
wait_no_advisory() {
    local end=$(($(ms_now) + $2 * 1000))
    while [ -n "$(advisory_locks "$1" 2>/dev/null)" ]; do
        [ "$(ms_now)" -lt "$end" ] || return 1
        sleep 0.05
    done
    return 0
}

# fingerprint DB: sorted text of what must be identical between a tortured
# run and the reference: the catalog (tables, columns with types,
# nullability and defaults, indexes with indisvalid/indisready, constraints
# with convalidated, views, triggers) outside the taskslaps schema, a
# checksum of each table's rows in primary key order, the ledger's steps
# (each with its count), the plans' statuses and the backfill checkpoints.
fingerprint() {
    "$PSQL" -X -At -v ON_ERROR_STOP=1 -d "$1" -f "$TORTURE_DIR/fingerprint.sql"
}

# fingerprint_diff A B: a unified diff of two fingerprint files, cut short.
fingerprint_diff() {
    diff -u "$1" "$2" | head -n 60
}

# ---------------------------------------------------------------- full runs
# The kill and restart tortures share this: the ten plans on the demo
# database, an uninterrupted reference run, and the checks of each run.

# seo_setup EMPLOYEES: template database tmpl, plans in $W/plans, the bare
# repository $W/origin.git with one commit per plan; sets NPLANS and TIP.
seo_setup() {
    note "loading the demo database ($1 employees)"
    EMPLOYEES=$1
    seo_template tmpl "$1"
    torture_plans "$W/plans"
    NPLANS=$(find "$W/plans" -maxdepth 1 -type f | wc -l)
    make_repo "$W/origin.git" "$W/plans"
    TIP=$(git -C "$W/origin.git" rev-parse main)
}

# notes_applied TARGET: how many commits carry a note saying "applied".
notes_applied() {
    git -C "$W/origin.git" log --notes="refs/notes/taskslaps/$1" --format=%N main |
        grep -c "^taskslaps $1: applied "
}

# reference_run TIMEOUT: the uninterrupted run on a copy "ref" of tmpl;
# sets T_REF (ms to in sync) and REF_STEPS, writes $W/ref.fp. Exits the
# test when the reference itself does not finish.
reference_run() {
    section reference
    note "reference run (uninterrupted)"
    clone_db ref tmpl
    daemon_conf ref ref "$W/origin.git"
    local t0
    t0=$(ms_now)
    daemon_start ref
    if ! wait_in_sync ref "$1" "$DPID"; then
        fail "the reference run reaches in sync" "$(tail -n 20 "$W/ref.log")"
        env_finish
    fi
    T_REF=$(($(ms_now) - t0))
    daemon_term "$DPID"
    assert_eq "the reference daemon exits 0 on SIGTERM" 0 "$DRC"
    CURDB=ref
    fingerprint ref >"$W/ref.fp"
    REF_STEPS=$(q "SELECT count(*) FROM taskslaps.step_ledger")
    assert_sql "reference: every plan applied" "$NPLANS" "SELECT count(*) FROM taskslaps.plans WHERE status = 'applied'"
    # 0001 and 0003 update every row once, 0004 every 50th, 0010 every row
    assert_sql "reference: every backfilled row updated once per backfill" "$EMPLOYEES|0|0" \
        "SELECT count(*), count(*) FILTER (WHERE torture_updates <> 3 + (id % 50 = 0)::int),
                count(*) FILTER (WHERE kudos_points <> 1 + id % 5) FROM employee"
    assert_sql "reference: no INVALID index" 0 "SELECT count(*) FROM pg_index WHERE NOT indisvalid OR NOT indisready"
    assert_sql "reference: no failed step" 0 "SELECT count(*) FROM taskslaps.events WHERE type IN ('step.error', 'plan.failed')"
    assert_eq "reference: no advisory lock after the stop" "" "$(advisory_locks ref)"
    assert_eq "reference: a note 'applied' on each plan's commit" "$NPLANS" "$(notes_applied ref)"
    assert_ge "reference: at least 37 steps" 37 "$REF_STEPS"
    note "reference: $NPLANS plans, $REF_STEPS steps, in sync after $((T_REF / 1000)).$((T_REF % 1000 / 100)) s"
    drop_db ref
}

# check_run NAME TARGET [WHAT]: compares database TARGET (its daemon
# stopped) with the reference; RUN_OK=1 when everything held. The database
# is dropped when it matched.
check_run() {
    local name=$1 target=$2 what=${3:-}
    RUN_OK=1
    CURDB=$target
    fingerprint "$target" >"$W/$target.fp"
    if cmp -s "$W/ref.fp" "$W/$target.fp"; then
        pass "$name: identical to the reference"
    else
        RUN_OK=0
        fail "$name: identical to the reference${what:+ ($what)}" \
            "$(fingerprint_diff "$W/ref.fp" "$W/$target.fp")"
    fi
    assert_sql "$name: no INVALID index" 0 "SELECT count(*) FROM pg_index WHERE NOT indisvalid OR NOT indisready" || RUN_OK=0
    assert_sql "$name: no failed step" "" \
        "SELECT string_agg(type || ': ' || message, E'\n') FROM taskslaps.events WHERE type IN ('step.error', 'plan.failed')" || RUN_OK=0
    assert_eq "$name: no advisory lock after the stop" "" "$(advisory_locks "$target")" || RUN_OK=0
    assert_eq "$name: a note 'applied' on each plan's commit" "$NPLANS" "$(notes_applied "$target")" || RUN_OK=0
    if [ "$RUN_OK" = 1 ]; then
        drop_db "$target"
    else
        echo "     (TS_TORTURE_KEEP_LOGS=DIR keeps the daemons' logs and fingerprints)"
    fi
}

# kill_point DB PID: waits for a random moment of the run: half of the
# calls (by KILL_POINT_N's parity) a random time within what is likely left
# of the run (80 % of T_REF, scaled by the steps not yet in the ledger), the
# others a random step boundary still ahead (before the last step) plus a
# random delay. Both aim before the end, so few points come too late.
KILL_POINT_N=0
kill_point() {
    local db=$1 pid=$2 done_steps want left
    KILL_POINT_N=$((KILL_POINT_N + 1))
    done_steps=$(qdb "$db" "SELECT count(*) FROM taskslaps.step_ledger" 2>/dev/null)
    done_steps=${done_steps:-0}
    [ "$done_steps" -lt "$REF_STEPS" ] || done_steps=$((REF_STEPS - 1))
    if [ $((KILL_POINT_N % 2)) -eq 1 ]; then
        left=$((T_REF * 8 * (REF_STEPS - done_steps) / (10 * REF_STEPS)))
        [ "$left" -ge 300 ] || left=300
        sleep_ms "$(rand "$left")"
    else
        want=$((REF_STEPS - 1))
        [ "$done_steps" -ge "$want" ] || want=$((done_steps + 1 + $(rand $((REF_STEPS - 1 - done_steps)))))
        local end=$(($(ms_now) + 600000))
        while [ "$(qdb "$db" "SELECT count(*) >= $want FROM taskslaps.step_ledger" 2>/dev/null)" != t ]; do
            alive "$pid" && [ "$(ms_now)" -lt "$end" ] || return 0
            sleep 0.02
        done
        if [ "$(rand 2)" = 0 ]; then sleep_ms "$(rand 40)"; else sleep_ms "$(rand 400)"; fi
    fi
}

# run_phase DB: what the daemon was doing at a kill point, from its last events.
run_phase() {
    local p
    p=$(qdb "$1" "SELECT CASE WHEN type = 'step.start' THEN 'in ' || rtrim(split_part(message, ' ', 2), ':') || ' (' || plan_id || ')'
                              WHEN type = 'plan.ok' AND plan_id = (SELECT max(plan_id) FROM taskslaps.plans) THEN 'after the last plan'
                              ELSE 'between steps' END
                    FROM taskslaps.events WHERE type IN ('step.start', 'step.ok', 'step.already_present', 'step.skipped', 'plan.ok', 'plan.start')
                   ORDER BY id DESC LIMIT 1" 2>/dev/null)
    echo "${p:-at startup}"
}
