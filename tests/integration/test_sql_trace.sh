#!/usr/bin/env bash
# Integration test of the planner's view of `sql` steps against what
# PostgreSQL 15 really does. For each statement of the corpus
# (tests/sql-corpus/corpus.txt), on the fixture as loaded
# (tests/sql-corpus/fixture.sql):
#
#   measured  the statement runs in a transaction, or outside one when
#             PostgreSQL refuses a transaction block (SQLSTATE 25001:
#             CONCURRENTLY, VACUUM, DETACH ... CONCURRENTLY); that choice is
#             the measured exec mode. In a transaction, the backend's own
#             pg_locks is read right after the statement, inside the same
#             transaction; outside one, the locks are trapped (below). Only
#             relations that existed in the fixture count. A table or
#             materialized view of the fixture whose relfilenode changed was
#             rewritten. Each worker (TS_SQL_TRACE_JOBS) has its own copy of
#             the fixture (CREATE DATABASE ... TEMPLATE) and rolls each
#             statement's transaction back, then checks that every table of
#             the fixture has its relfilenode again; a statement that runs
#             outside a transaction gets a fresh copy of its own, since its
#             effects stay.
#   derived   `taskslapsctl plan --json` of a one-step plan holding the
#             statement: obligations.lock_class_max, obligations.may_rewrite,
#             exec, hazard_reason.
#
# The rules (each failure names the statement):
#   - derived lock weaker than measured: failure;
#   - a measured rewrite the planner does not predict (may_rewrite false):
#     failure;
#   - exec: the planner says "transaction" (or "batched") for a statement
#     PostgreSQL refuses to run in a transaction block: failure. The other
#     way round ("outside_transaction" for a statement that could run in
#     one, ALTER TYPE ... ADD VALUE say) is safe and only reported;
#   - exact lock for at least TS_SQL_TRACE_MIN_EXACT percent of the corpus
#     (default 80), enforced once the analyser is in (some `sql` step gets a
#     lock other than AccessExclusiveLock, or a hazard_reason other than the
#     old "raw SQL" one); before that the count is only reported. A
#     statement the analyser does not know (AccessExclusiveLock and a
#     hazard_reason matching TS_SQL_TRACE_UNKNOWN_RE) or one the planner
#     refuses counts as not exact, and is no failure.
#   - the measured columns of docs/sql-locks.md match this run (the
#     derived ones are only compared, with a note): regenerate the page with
#     --write-doc when the corpus or the analyser changes.
#
# Locks outside a transaction ("trapped"): before the statement starts, one
# session per table and partitioned table of the fixture takes ACCESS
# EXCLUSIVE on it (LOCK TABLE ONLY) and waits in pg_sleep. Whenever the
# statement waits on one of these sessions (pg_blocking_pids: a lock it asks
# for, or an old snapshot or lock holder a CONCURRENTLY phase waits out), its
# locks, granted and requested, are read from pg_locks and that session is
# cancelled, which lets the statement go on. Each table's first lock request
# is seen with its mode; what is asked for later without waiting (a second,
# stronger lock on a table already released, a lock on an index) is seen
# only if it is held at the next wait. So the measured lock outside a
# transaction is a lower bound, and deterministic (it is read only while the
# statement waits).
#
#   bash tests/integration/test_sql_trace.sh               (TS_VERBOSE=1: every statement)
#   bash tests/integration/test_sql_trace.sh --write-doc   (also writes docs/sql-locks.md)
#   TASKSLAPSCTL=build/release/taskslapsctl bash tests/integration/test_sql_trace.sh
#   TS_SQL_TRACE_ONLY='^vacuum' ...                        (only names matching an ERE; no doc check)
#   TS_SQL_TRACE_JOBS=2 (default: 2) statements measured at a time.

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)

WRITE_DOC=0
for arg in "$@"; do
    case $arg in
    --write-doc) WRITE_DOC=1 ;;
    -h | --help)
        sed -n '2,/^$/{s/^# \{0,1\}//;p}' "$0"
        exit 0
        ;;
    *)
        echo "test_sql_trace.sh: unknown argument '$arg' (expected --write-doc or --help)" >&2
        exit 2
        ;;
    esac
done

# The exact-lock threshold, in percent of the corpus (see above).
MIN_EXACT=${TS_SQL_TRACE_MIN_EXACT:-80}
# What a hazard_reason says when the analyser does not know a statement.
UNKNOWN_RE=${TS_SQL_TRACE_UNKNOWN_RE:-cannot see|does not know|unknown|not recogni[sz]ed|unrecogni[sz]ed|not understood}
ONLY=${TS_SQL_TRACE_ONLY:-}
# Known failures of the planner, found by this test, to be fixed in src/plan,
# as NAME:KIND (KIND: lock, rewrite or exec), space-separated. Each is shown
# as KNOWN and marked "(known)" in docs/sql-locks.md instead of failing the
# test; a note says when one passes, so that it can be taken off. Empty: the
# two this test found (DETACH PARTITION CONCURRENTLY's lock on the
# partition, a bare CLUSTER outside a transaction) are fixed.
KNOWN_FAILURES=""
JOBS=${TS_SQL_TRACE_JOBS:-2}
CORPUS=$root/tests/sql-corpus/corpus.txt
FIXTURE=$root/tests/sql-corpus/fixture.sql
DOC=$root/docs/sql-locks.md

if [ "$WRITE_DOC" -eq 1 ] && [ -n "$ONLY" ]; then
    echo "test_sql_trace.sh: --write-doc needs the whole corpus: unset TS_SQL_TRACE_ONLY" >&2
    exit 2
fi
case $MIN_EXACT in '' | *[!0-9]*) echo "TS_SQL_TRACE_MIN_EXACT must be a whole percentage, got '$MIN_EXACT'" >&2; exit 2 ;; esac
case $JOBS in '' | *[!0-9]* | 0) echo "TS_SQL_TRACE_JOBS must be a positive integer, got '$JOBS'" >&2; exit 2 ;; esac

# Autovacuum would take locks of its own and could be trapped.
export TS_PG_CONF="autovacuum = off"
# shellcheck source=tests/lib/apply_env.sh
. "$here/../lib/apply_env.sh"
env_start

###########################################################################
section "corpus and fixture"

# The corpus, checked: "name: statement", names unique.
mkdir -p "$W/plans" "$W/plan" "$W/m" "$W/sql"
: >"$W/corpus.tsv"
n=0
bad=0
declare -A seen=()
lineno=0
while IFS= read -r line || [ -n "$line" ]; do
    lineno=$((lineno + 1))
    case $line in '' | '#'*) continue ;; esac
    if [[ ! $line =~ ^([a-z][a-z0-9_]*):[[:space:]]+([^[:space:]].*)$ ]]; then
        fail "corpus.txt:$lineno: expected 'name: statement' (name: lowercase letters, digits, _)" "$line"
        bad=1
        continue
    fi
    name=${BASH_REMATCH[1]}
    stmt=${BASH_REMATCH[2]}
    stmt=${stmt%"${stmt##*[![:space:];]}"}
    if [ -n "${seen[$name]:-}" ]; then
        fail "corpus.txt:$lineno: '$name' is already used at line ${seen[$name]}"
        bad=1
        continue
    fi
    seen[$name]=$lineno
    [ -z "$ONLY" ] || [[ $name =~ $ONLY ]] || continue
    n=$((n + 1))
    id=$(printf '%04d' "$n")
    printf '%s\t%s\t%s\n' "$id" "$name" "$stmt" >>"$W/corpus.tsv"
    printf '%s;\n' "$stmt" >"$W/sql/$id.sql"
done <"$CORPUS"
[ "$bad" -eq 0 ] || env_finish
if [ -z "$ONLY" ]; then
    assert_ge "the corpus has at least 60 statements" 60 "$n"
fi
[ "$n" -gt 0 ] || {
    fail "no statement of the corpus matches TS_SQL_TRACE_ONLY='$ONLY'"
    env_finish
}

PSQL_ERR=$W/fixture.err
if ! "$PSQL" -X -q -v ON_ERROR_STOP=1 -d postgres \
    -c "CREATE ROLE ts_trace_owner" -c "CREATE ROLE ts_trace_reader" \
    -c "CREATE DATABASE ts_fixture" 2>"$PSQL_ERR" ||
    ! "$PSQL" -X -q -v ON_ERROR_STOP=1 -d ts_fixture -f "$FIXTURE" >/dev/null 2>"$PSQL_ERR"; then
    fail "the fixture loads" "$(cat "$PSQL_ERR")"
    env_finish
fi
pass "the fixture loads"
PGVERSION=$(qdb ts_fixture "SHOW server_version")

# The fixture's relations: oid|name|relkind|relfilenode. Locks on anything
# else (catalogs, TOAST, what the statement creates) do not count.
qdb ts_fixture "
SELECT c.oid, c.oid::regclass, c.relkind, c.relfilenode
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'm', 'v', 'f', 'i', 'I', 'S')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'
ORDER BY c.oid" >"$W/relations" || {
    fail "the fixture's relations are listed"
    env_finish
}
# The tables the traps lock: plain and partitioned (LOCK TABLE takes no index
# or materialized view).
mapfile -t TRAP_TABLES < <(awk -F'|' '$3 == "r" || $3 == "p" { print $2 }' "$W/relations")
assert_ge "the fixture has tables to trap" 5 "${#TRAP_TABLES[@]}"

# The relfilenodes after the statement, as this session sees them.
FILES_SQL="SELECT 'ts:file', c.oid, c.relfilenode FROM pg_class c WHERE c.relkind IN ('r', 'm')
  AND c.relnamespace NOT IN ('pg_catalog'::regnamespace, 'information_schema'::regnamespace)"
# This backend's relation locks in this database.
LOCKS_SQL="SELECT 'ts:lock', l.relation, l.mode, l.granted FROM pg_locks l
  WHERE l.pid = pg_backend_pid() AND l.locktype = 'relation'
    AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"

###########################################################################
# measure_tx ID DB: statement ID in a transaction on DB, rolled back. Writes
# $W/m/ID.exec (transaction), ID.locks (oid|mode|granted), ID.files
# (oid|relfilenode after the statement), ID.restored (oid|relfilenode after
# the rollback: the next statement on DB must see the fixture as loaded);
# when PostgreSQL refuses a transaction block (SQLSTATE 25001, raised before
# the statement does anything), measures it with measure_trapped on a copy
# of its own; any other error goes to ID.error.
measure_tx() {
    local id=$1 db=$2 out=$W/m/$1
    {
        printf '\\set ON_ERROR_STOP 1\n\\set VERBOSITY sqlstate\nBEGIN;\n'
        cat "$W/sql/$id.sql"
        printf '%s;\n%s;\nROLLBACK;\n%s;\n' "$LOCKS_SQL" "$FILES_SQL" "${FILES_SQL/ts:file/ts:restored}"
    } >"$out.tx.sql"
    if "$PSQL" -X -q -At -d "$db" -f "$out.tx.sql" >"$out.tx.out" 2>"$out.tx.err"; then
        echo transaction >"$out.exec"
        sed -n 's/^ts:lock|//p' "$out.tx.out" >"$out.locks"
        sed -n 's/^ts:file|//p' "$out.tx.out" >"$out.files"
        sed -n 's/^ts:restored|//p' "$out.tx.out" >"$out.restored"
    elif grep -q 'ERROR:  25001' "$out.tx.err"; then
        echo outside_transaction >"$out.exec"
        if qdb postgres "CREATE DATABASE ts_s$id TEMPLATE ts_fixture" >/dev/null 2>"$out.error"; then
            measure_trapped "$id" "ts_s$id" "$out"
            qdb postgres "DROP DATABASE ts_s$id" >/dev/null 2>&1
        fi
    else
        cat "$out.tx.err" >"$out.error"
    fi
}

# close_fds FD...: closes these file descriptors of this shell.
close_fds() {
    local fd
    for fd in "$@"; do
        exec {fd}>&-
    done
}

# The trap sessions' lock modes, two per table: compatible with each other,
# so both are held at once. SHARE UPDATE EXCLUSIVE catches the first request
# of that mode or a stronger one (the weakest a statement that refuses a
# transaction block takes; the weaker ones, such as the ACCESS SHARE of a
# name lookup, pass); ROW EXCLUSIVE, when it is still held, catches a later
# request of SHARE or stronger on the same table.
TRAP_MODES=("ROW EXCLUSIVE" "SHARE UPDATE EXCLUSIVE")

# measure_trapped ID DB OUT: statement ID outside a transaction on DB (a
# fresh copy), its locks read each time it waits on a trap session (see the
# top of this file). Each trap session is a psql reading from a FIFO, idle in
# its transaction (no snapshot, so CONCURRENTLY does not wait for it); closing
# its FIFO ends it and frees its lock.
measure_trapped() {
    local id=$1 db=$2 out=$3 t m k=0 fd state spid blockers b s_pid rc end
    local fds=() pids=()
    : >"$out.locks"
    for t in "${TRAP_TABLES[@]}"; do
        for m in "${TRAP_MODES[@]}"; do
            k=$((k + 1))
            mkfifo "$out.trap$k"
            # (without the other traps' FIFOs: each must see its own end)
            (
                close_fds "${fds[@]}"
                PGAPPNAME=ts_trace_trap_$k exec "$PSQL" -X -q -d "$db" <"$out.trap$k" >/dev/null 2>&1
            ) &
            pids+=($!)
            exec {fd}>"$out.trap$k"
            fds[k]=$fd
            printf 'BEGIN;\nLOCK TABLE ONLY %s IN %s MODE;\n' "$t" "$m" >&"$fd"
        done
    done
    # every trap holds its lock
    end=$(($(ms_now) + 30000))
    until [ "$(qdb "$db" "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid)
                WHERE a.application_name LIKE 'ts\\_trace\\_trap\\_%' AND l.locktype = 'relation'
                  AND l.granted AND a.datname = current_database()")" = "$k" ]; do
        if [ "$(ms_now)" -gt "$end" ]; then
            echo "the trap sessions did not all take their locks within 30 s" >"$out.error"
            break
        fi
        sleep 0.01
    done
    if [ ! -s "$out.error" ]; then
        (
            close_fds "${fds[@]}"
            PGAPPNAME=ts_trace_stmt exec "$PSQL" -X -q -At -v ON_ERROR_STOP=1 -v VERBOSITY=sqlstate \
                -d "$db" -f "$W/sql/$id.sql" >"$out.nontx.out" 2>"$out.nontx.err"
        ) &
        s_pid=$!
        end=$(($(ms_now) + 60000))
        while kill -0 "$s_pid" 2>/dev/null; do
            # The statement's backend and the traps it waits on, in one round trip.
            state=$(qdb "$db" "SELECT a.pid, coalesce((SELECT string_agg(substr(t.application_name, 15), ' ')
                      FROM unnest(pg_blocking_pids(a.pid)) b JOIN pg_stat_activity t ON t.pid = b
                      WHERE t.application_name LIKE 'ts\\_trace\\_trap\\_%'), '')
                    FROM pg_stat_activity a
                    WHERE a.datname = current_database() AND a.application_name = 'ts_trace_stmt'" 2>/dev/null)
            spid=${state%%|*}
            blockers=${state#*|}
            if [ -n "$state" ] && [ -n "$blockers" ]; then
                # It waits: its locks now, then let it go on.
                qdb "$db" "SELECT l.relation, l.mode, l.granted FROM pg_locks l
                    WHERE l.pid = $spid AND l.locktype = 'relation'
                      AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())" \
                    >>"$out.locks" 2>/dev/null
                for b in $blockers; do
                    [ -z "${fds[b]:-}" ] || close_fds "${fds[b]}"
                    unset "fds[b]"
                done
                # (a trap let go may still show as a blocker until its
                # backend has ended: the statement then still waits, and its
                # locks read again are the same)
                continue
            fi
            if [ "$(ms_now)" -gt "$end" ]; then
                echo "the statement did not finish within 60 s" >"$out.error"
                kill "$s_pid" 2>/dev/null
                break
            fi
            sleep 0.005
        done
        wait "$s_pid"
        rc=$?
        if [ "$rc" -ne 0 ] && [ ! -s "$out.error" ]; then
            cat "$out.nontx.err" >"$out.error"
        fi
    fi
    close_fds "${fds[@]}"
    wait "${pids[@]}" 2>/dev/null
    rm -f "$out".trap*
    [ -s "$out.error" ] || qdb "$db" "$FILES_SQL" | sed -n 's/^ts:file|//p' >"$out.files"
}

# worker W: measures statements W+1, W+1+JOBS, ... in that order, on
# database ts_wW (a copy of the fixture).
worker() {
    local w=$1 id line=0
    qdb postgres "CREATE DATABASE ts_w$w TEMPLATE ts_fixture" >/dev/null || return 1
    while IFS=$'\t' read -r id _ _; do
        line=$((line + 1))
        [ $(((line - 1) % JOBS)) -eq "$w" ] || continue
        measure_tx "$id" "ts_w$w"
    done <"$W/corpus.tsv"
    qdb postgres "DROP DATABASE ts_w$w" >/dev/null
}

###########################################################################
section "planner: one-step plans"
while IFS=$'\t' read -r id name stmt; do
    f=$W/plans/$id-${name//_/-}.yaml
    {
        printf 'id: %s-%s\ntitle: SQL corpus, %s\nreason: the planner against PostgreSQL\n' "$id" "${name//_/-}" "$name"
        printf 'steps:\n  - op: sql\n    sql: |-\n      %s\n' "$stmt"
    } >"$f"
    "$TASKSLAPSCTL" plan --json "$f" >"$W/plan/$id.json" 2>"$W/plan/$id.err"
    echo $? >"$W/plan/$id.rc"
done <"$W/corpus.tsv"
pass "planned $n statements"

###########################################################################
section "PostgreSQL: locks, rewrites, exec"
t0=$(ms_now)
workers=()
for ((w = 0; w < JOBS; w++)); do
    worker "$w" &
    workers+=($!)
done
for p in "${workers[@]}"; do
    wait "$p" || fail "measuring worker $p exited with an error"
done
t1=$(ms_now)
[ -z "${TS_VERBOSE:-}" ] || printf 'measured %d statements in %d ms (%d at a time)\n' "$n" $((t1 - t0)) "$JOBS"

###########################################################################
section "derived against measured"
doc_args=()
[ "$WRITE_DOC" -eq 0 ] || doc_args=(--write-doc "$DOC")
[ -n "$ONLY" ] || doc_args+=(--check-doc "$DOC")
cat >"$W/compare.py" <<'PY'
import json, os, re, sys

work, min_exact, unknown_re, pgversion = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
known = set(sys.argv[5].split())
write_doc = check_doc = derive_as = None
rest = sys.argv[6:]
while rest:
    if rest[0] == "--write-doc":
        write_doc = rest[1]
    elif rest[0] == "--check-doc":
        check_doc = rest[1]
    elif rest[0] == "--derive-as":
        derive_as = rest[1]
    rest = rest[2:]

MODES = ["none", "AccessShareLock", "RowShareLock", "RowExclusiveLock",
         "ShareUpdateExclusiveLock", "ShareLock", "ShareRowExclusiveLock",
         "ExclusiveLock", "AccessExclusiveLock"]
RANK = {m: i for i, m in enumerate(MODES)}
OLD_REASON = "raw SQL: the planner cannot see what it does"

def lines(path):
    try:
        with open(path) as f:
            return [l.rstrip("\n") for l in f if l.strip()]
    except FileNotFoundError:
        return []

rels = {}
for l in lines(os.path.join(work, "relations")):
    oid, name, kind, node = l.split("|")
    rels[oid] = (name, kind, node)

def derived_of(id):
    rc = int((lines(os.path.join(work, "plan", id + ".rc")) or ["99"])[0])
    raw = open(os.path.join(work, "plan", id + ".json")).read()
    try:
        doc = json.loads(raw)[0]
    except (ValueError, IndexError):
        return {"refused": "taskslapsctl plan exited %d: %s" % (rc, raw.strip()[:200] or
                open(os.path.join(work, "plan", id + ".err")).read().strip()[:200])}
    if not doc.get("valid", True) or "waves" not in doc:
        msgs = "; ".join(e.get("message", "") for e in doc.get("errors", []))
        if rc != 2:
            return {"crash": "taskslapsctl plan exited %d on a plan it refuses (expected 2)" % rc}
        return {"refused": msgs or "refused"}
    if rc != 0:
        return {"crash": "taskslapsctl plan exited %d on a valid plan (expected 0)" % rc}
    step = doc["waves"][0]["steps"][0]
    ob = step["obligations"]
    return {"lock": ob["lock_class_max"], "rewrite": bool(ob["may_rewrite"]),
            "exec": step.get("exec", "transaction"), "hazard": step.get("hazard", ""),
            "reason": step.get("hazard_reason", "")}

def measured_of(id):
    base = os.path.join(work, "m", id)
    err = "\n".join(lines(base + ".error"))
    if err or not os.path.exists(base + ".exec"):
        return {"error": err or "not measured"}
    exec_ = lines(base + ".exec")[0]
    best = {}
    for l in lines(base + ".locks"):
        oid, mode, _granted = l.split("|")
        if oid in rels:
            best.setdefault(mode, set()).add(rels[oid][0])
    top = max(best, key=lambda m: RANK[m]) if best else "none"
    files = dict(l.split("|") for l in lines(base + ".files"))
    rewritten = sorted(rels[o][0] for o, (n, k, node) in rels.items()
                       if k in "rm" and o in files and files[o] != node)
    if exec_ == "transaction":
        restored = dict(l.split("|") for l in lines(base + ".restored"))
        changed = sorted(n for o, (n, k, node) in rels.items() if k in "rm" and restored.get(o) != node)
        if changed:
            return {"error": "after ROLLBACK, not as in the fixture: " + ", ".join(changed)}
    return {"exec": exec_, "lock": top, "on": sorted(best.get(top, [])),
            "rewritten": rewritten,
            "method": "in transaction" if exec_ == "transaction" else "trapped"}

corpus = [l.split("\t", 2) for l in lines(os.path.join(work, "corpus.tsv"))]
rows, failures, known_seen = [], [], []
def failure(name, kind, text):
    if name and "%s:%s" % (name, kind) in known:
        known_seen.append("%s:%s" % (name, kind))
        print("KNOWN (a failure on this list is not counted): " + text)
    else:
        failures.append(text)
analyser_in = False
for id, name, stmt in corpus:
    d, m = derived_of(id), measured_of(id)
    # The self-checks: a planner that derives what was measured, or nothing.
    if derive_as == "measured" and "error" not in m:
        d = {"lock": m["lock"], "rewrite": bool(m["rewritten"]), "exec": m["exec"],
             "reason": "self-check"}
    elif derive_as == "none":
        d = {"lock": "none", "rewrite": False, "exec": "transaction", "reason": "self-check"}
    if "lock" in d and (d["lock"] != "AccessExclusiveLock" or d["reason"] != OLD_REASON):
        analyser_in = True
    rows.append((id, name, stmt, d, m))

counts = {"exact": 0, "stronger": 0, "unknown": 0, "refused": 0, "lower": 0,
          "rewrite_exact": 0, "rewrite_over": 0, "rewrite_missed": 0,
          "exec_right": 0, "exec_conservative": 0, "exec_wrong": 0}
table = []
for id, name, stmt, d, m in rows:
    if "error" in m:
        failure(None, None, "%s: the statement does not run on the fixture: %s" % (name, m["error"]))
        continue
    if "crash" in d:
        failure(None, None, "%s: %s: %s" % (name, d["crash"], "\n".join(
            lines(os.path.join(work, "plan", id + ".err"))[:5])))
        continue
    notes = []
    if "refused" in d:
        verdict = "refused"
        counts["refused"] += 1
    else:
        dl, ml = RANK[d["lock"]], RANK[m["lock"]]
        if dl < ml:
            verdict = "LOWER" + (" (known)" if name + ":lock" in known else "")
            counts["lower"] += 1
            failure(name, "lock", "%s: derived %s is weaker than measured %s (on %s)" %
                            (name, d["lock"], m["lock"], ", ".join(m["on"])))
        elif dl == ml:
            verdict = "exact"
            counts["exact"] += 1
        elif d["lock"] == "AccessExclusiveLock" and re.search(unknown_re, d["reason"], re.I):
            verdict = "unknown"
            counts["unknown"] += 1
        else:
            verdict = "stronger"
            counts["stronger"] += 1
        if m["rewritten"] and not d["rewrite"]:
            counts["rewrite_missed"] += 1
            notes.append("REWRITE MISSED" + (" (known)" if name + ":rewrite" in known else ""))
            failure(name, "rewrite", "%s: rewrites %s, but may_rewrite is false" % (name, ", ".join(m["rewritten"])))
        elif bool(m["rewritten"]) == d["rewrite"]:
            counts["rewrite_exact"] += 1
        else:
            counts["rewrite_over"] += 1
            notes.append("rewrite over-predicted")
        if d["exec"] == m["exec"]:
            counts["exec_right"] += 1
        elif m["exec"] == "outside_transaction":
            counts["exec_wrong"] += 1
            notes.append("EXEC WRONG" + (" (known)" if name + ":exec" in known else ""))
            failure(name, "exec", "%s: PostgreSQL refuses it in a transaction block, the planner says %s" %
                            (name, d["exec"]))
        else:
            counts["exec_conservative"] += 1
            notes.append("exec: outside a transaction where one would do")
    table.append((id, name, stmt, d, m, verdict, notes))

total = len(rows)
pct = 100.0 * counts["exact"] / total if total else 0.0
summary = ("%d statements: exact lock %d (%.0f%%), stronger %d, unknown to the analyser %d, "
           "refused by the planner %d, LOWER %d; rewrite exact %d, over-predicted %d, MISSED %d; "
           "exec right %d, conservative %d, WRONG %d" %
           (total, counts["exact"], pct, counts["stronger"], counts["unknown"], counts["refused"],
            counts["lower"], counts["rewrite_exact"], counts["rewrite_over"], counts["rewrite_missed"],
            counts["exec_right"], counts["exec_conservative"], counts["exec_wrong"]))
if known_seen:
    summary += ("; known failures of the planner (listed in the test, not counted): %s" %
                ", ".join(sorted(set(known_seen))))
threshold = ("threshold: exact lock for >= %d%% of the corpus, %s" %
             (min_exact, "enforced (the analyser is in)" if analyser_in else
              "not enforced yet (no sql step has a derived lock of its own: the analyser is not in)"))
if analyser_in and pct < min_exact:
    failures.append("exact lock for %.0f%% of the corpus, below the threshold of %d%%" % (pct, min_exact))

def esc(s):
    return s.replace("|", "\\|")

def derived_cell(d):
    if "refused" in d:
        return ["refused", "", ""]
    return [d["lock"], "yes" if d["rewrite"] else "no", d["exec"].replace("_", " ")]

def measured_cell(m):
    lock = m["lock"] + (" (%s)" % ", ".join(m["on"]) if m["on"] else "")
    return [lock, ", ".join(m["rewritten"]) or "no", m["exec"].replace("_", " "), m["method"]]

head = ["#", "name", "statement", "derived lock", "may rewrite", "exec",
        "measured lock (on)", "rewritten", "measured exec", "measured", "verdict"]
MEASURED_COLS = [2, 6, 7, 8, 9]  # what PostgreSQL decides: checked against the page
md_rows = []
for id, name, stmt, d, m, verdict, notes in table:
    cells = [id, name, "`%s`" % esc(stmt)] + derived_cell(d) + measured_cell(m) + \
            ["; ".join([verdict] + notes)]
    md_rows.append("| " + " | ".join(esc(c) if i != 2 else c for i, c in enumerate(cells)) + " |")

for id, name, stmt, d, m, verdict, notes in table:
    dl = d.get("lock", "refused: " + d.get("refused", "")[:80])
    print("%-40s derived %-26s measured %-26s %s%s" % (name, dl, measured_cell(m)[0], verdict,
          "; " + "; ".join(notes) if notes else ""))
print(summary)
print(threshold)

doc = []
doc.append("""# Locks of SQL statements: derived and measured

For each statement of the SQL corpus (`tests/sql-corpus/corpus.txt`, run
against `tests/sql-corpus/fixture.sql`), what the planner derives for an
`sql` step holding it (`taskslapsctl plan --json`: `obligations.lock_class_max`,
`obligations.may_rewrite`, `exec`) and what PostgreSQL %s does (measured by
`tests/integration/test_sql_trace.sh` on the fixture as loaded: in a
transaction rolled back afterwards, or on a fresh copy for a statement that
cannot run in one). The
test fails when a derived lock is weaker than the measured one, when a
measured rewrite is not predicted, or when the planner would run in a
transaction a statement PostgreSQL refuses there.

To regenerate this page after a change of the corpus or of the planner:

```sh
cmake --build build/release -j2
TASKSLAPSCTL=build/release/taskslapsctl bash tests/integration/test_sql_trace.sh --write-doc
```

(`integration.sql_trace` fails when the measured columns here no longer match
a run.)

## How to read it

- **derived lock**, **may rewrite**, **exec**: the planner's view; `refused`:
  the planner does not accept the statement as an `sql` step.
- **measured lock (on)**: the strongest lock the statement takes on a
  relation that existed before it (a table, partition, index, view,
  materialized view or sequence of the fixture; the system catalogs, TOAST
  and what the statement creates do not count), and the relations that got
  it. The order is that of `lock_class_max`: none, AccessShareLock,
  RowShareLock, RowExclusiveLock, ShareUpdateExclusiveLock, ShareLock,
  ShareRowExclusiveLock, ExclusiveLock, AccessExclusiveLock.
- **rewritten**: the fixture's tables and materialized views whose
  relfilenode changed (a new file: the table was rewritten, or emptied by
  TRUNCATE).
- **measured exec**: `outside transaction` when PostgreSQL refuses to run the
  statement in a transaction block (SQLSTATE 25001), else `transaction`.
- **measured**: `in transaction`: the backend's own `pg_locks`, read in the
  statement's transaction right after it, so every lock it took is there.
  `trapped`: outside a transaction the locks are gone afterwards, so before
  the statement starts one session per table of the fixture holds ACCESS
  EXCLUSIVE on it; each time the statement waits on one of them, its locks
  (granted and requested) are read and that session is cancelled. Every
  table's first lock request is caught with its mode, but a lock taken later
  without a wait (on an index, or a stronger one on a table already let go)
  is not: a lower bound. For instance `DROP INDEX CONCURRENTLY` ends by
  taking ACCESS EXCLUSIVE on the index it drops, once no transaction can use
  it any more; the trap does not see that.
- **verdict**: `exact` (derived = measured), `stronger` (derived is
  stronger: safe, but the executor may refuse or delay the step for
  nothing), `unknown` (the planner does not know the statement and holds it
  to AccessExclusiveLock), `refused`, `LOWER` (derived weaker than measured:
  a failure); then notes: `rewrite over-predicted` (may rewrite, did not),
  `REWRITE MISSED` (a failure), `exec: outside a transaction where one would
  do` (safe), `EXEC WRONG` (a failure). `(known)`: a failure the test
  lists as a known bug of the planner (`KNOWN_FAILURES` in the test), shown
  but not counted until it is fixed.

## Summary

""" % pgversion)
doc.append(summary + ".\n\n" + threshold + ".\n\n## Statements\n\n")
doc.append("| " + " | ".join(head) + " |\n")
doc.append("|" + "|".join("---" for _ in head) + "|\n")
doc.append("\n".join(md_rows) + "\n")
text = "".join(doc)
with open(os.path.join(work, "sql-locks.md"), "w") as f:
    f.write(text)

def split_row(r):
    return [c.strip() for c in re.split(r"(?<!\\) \| ", r.strip()[2:-2])]

def table_rows(t):
    out = {}
    for r in t.splitlines():
        if r.startswith("| 0") or r.startswith("| 1"):
            c = split_row(r)
            out[c[1]] = c
    return out

if write_doc:
    with open(write_doc, "w") as f:
        f.write(text)
    print("wrote " + write_doc)
elif check_doc:
    if not os.path.exists(check_doc):
        failures.append("%s is missing: run this test with --write-doc" % check_doc)
    else:
        old, new = table_rows(open(check_doc).read()), table_rows(text)
        def measured(row):
            # Outside a transaction ("trapped") the mode is read while the
            # statement waits, and is the same from run to run; which other
            # relations it holds at that moment (an index it got to, say)
            # depends on timing, so only the mode is compared there.
            cols = [row[i] for i in MEASURED_COLS]
            if row[9] == "trapped":
                cols[1] = cols[1].split(" (")[0]
            return cols
        stale_m = [k for k in new if k not in old or measured(old[k]) != measured(new[k])]
        stale_m += [k for k in old if k not in new]
        stale_d = [k for k in new if k in old and old[k][3:6] != new[k][3:6]]
        if stale_m:
            failures.append("%s: the measured columns differ from this run for %d statements (first: %s); "
                            "regenerate it with --write-doc" % (check_doc, len(stale_m), stale_m[0]))
        if stale_d:
            print("note: %s shows other derived values for %d statements (the planner changed); "
                  "regenerate it with --write-doc" % (check_doc, len(stale_d)))

for k in sorted(known):
    if k not in known_seen and any(r[1] == k.split(":")[0] for r in rows):
        print("note: %s is on the list of known failures but passes: take it off KNOWN_FAILURES" % k)
for f in failures:
    print("FAILURE: " + f)
sys.exit(1 if failures else 0)
PY
python3 - "$W" "$MIN_EXACT" "$UNKNOWN_RE" "$PGVERSION" "$KNOWN_FAILURES" "${doc_args[@]}" \
    >"$W/compare.out" 2>&1 <"$W/compare.py"
rc=$?

# The comparison itself, on the same measurements: it must fail a planner
# that derives nothing, and pass one that derives what was measured. (On the
# whole corpus only: a part of it may hold no rewrite, or nothing that must
# run outside a transaction.)
if [ -z "$ONLY" ]; then
    python3 - "$W" "$MIN_EXACT" "$UNKNOWN_RE" "$PGVERSION" "" --derive-as none \
        >"$W/self-none.out" 2>&1 <"$W/compare.py"
    assert_rc "self-check: a planner that derives no lock fails" 1 $? "$(tail -n 3 "$W/self-none.out")"
    self=$(cat "$W/self-none.out")
    assert_contains "self-check: ... with its locks weaker than measured" "is weaker than measured" "$self"
    assert_contains "self-check: ... with its rewrites missed" "but may_rewrite is false" "$self"
    assert_contains "self-check: ... with its exec wrong" "refuses it in a transaction block" "$self"
    assert_contains "self-check: ... and below the exact-lock threshold" "below the threshold of $MIN_EXACT%" "$self"
    python3 - "$W" "$MIN_EXACT" "$UNKNOWN_RE" "$PGVERSION" "" --derive-as measured \
        >"$W/self-measured.out" 2>&1 <"$W/compare.py"
    assert_rc "self-check: a planner that derives what was measured passes" 0 $? "$(tail -n 3 "$W/self-measured.out")"
    assert_contains "self-check: ... with every lock exact, the threshold enforced" \
        "exact lock $n (100%)" "$(cat "$W/self-measured.out")"
    assert_contains "self-check: ... the threshold enforced" "enforced (the analyser is in)" \
        "$(cat "$W/self-measured.out")"
fi

if [ "$rc" -eq 0 ]; then
    pass "derived never weaker than measured, every rewrite predicted, exec right"
    [ -z "${TS_VERBOSE:-}" ] || cat "$W/compare.out"
    grep -E '^(note|wrote|KNOWN)' "$W/compare.out"
    grep -E '^[0-9]+ statements:|^threshold' "$W/compare.out"
else
    fail "derived against measured" "$(grep -E '^(FAILURE|Traceback|  File|[A-Za-z]+Error)' "$W/compare.out")"
    cat "$W/compare.out"
fi
env_finish
