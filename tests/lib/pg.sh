#!/usr/bin/env bash
# Throwaway PostgreSQL 15 clusters for taskslaps tests, the demo and benchmarks.
#
# As a library (bash):
#   . tests/lib/pg.sh
#   dir=$(mktemp -d); trap 'pg_stop "$dir"' EXIT
#   pg_start "$dir"            # exports PGHOST PGPORT PGUSER PGDATABASE TS_TEST_DB
#   pg_psql -c 'SELECT 1'
#   pg_createdb other; pg_conninfo other
#   pg_stop "$dir"             # stops the server and removes DIR
#
# As a command:
#   eval "$(tests/lib/pg.sh start /tmp/pgX)"
#   tests/lib/pg.sh env /tmp/pgX      # the export lines again
#   tests/lib/pg.sh stop /tmp/pgX
#
# The cluster lives in DIR: DIR/data (data directory), DIR/log (server log),
# and the server's UNIX socket DIR/.s.PGSQL.<port>. It listens on no TCP
# address. Auth is trust; the superuser is "postgres". When run as root the
# server runs as the system user taskslaps-test (initdb refuses root), created
# if missing; DIR then belongs to that user and every directory above DIR must
# be searchable by it (a `mktemp -d` directory itself is fine; a directory
# inside one is not, since mktemp makes it mode 0700).
#
# Environment knobs: TS_PG_BIN (binaries, default /usr/lib/postgresql/15/bin),
# TS_PG_START_TIMEOUT (seconds, default 30), TS_PG_CONF (extra postgresql.conf
# lines, appended verbatim).

TS_PG_BIN=${TS_PG_BIN:-/usr/lib/postgresql/15/bin}
TS_PG_OS_USER=${TS_PG_OS_USER:-taskslaps-test}
TS_PG_MARKER=.taskslaps-test-cluster

_pg_err() { printf 'pg.sh: %s\n' "$*" >&2; }

# Run a command as the cluster's OS user: taskslaps-test when we are root,
# ourselves otherwise. cd to / first so the user is not left in a directory
# it cannot read (root's home, say).
_pg_as_owner() {
    if [ "$(id -u)" -eq 0 ]; then
        (cd / && runuser -u "$TS_PG_OS_USER" -- "$@")
    else
        "$@"
    fi
}

_pg_ensure_os_user() {
    [ "$(id -u)" -eq 0 ] || return 0
    id -u "$TS_PG_OS_USER" >/dev/null 2>&1 && return 0
    # Two tests starting at once may race here; the loser finds the user made.
    useradd --system --no-create-home --shell /usr/sbin/nologin "$TS_PG_OS_USER" 2>/dev/null ||
        id -u "$TS_PG_OS_USER" >/dev/null 2>&1 || {
        _pg_err "cannot create system user $TS_PG_OS_USER"
        return 1
    }
}

_pg_abs() { (cd "$1" 2>/dev/null && pwd -P); }

# pg_env DIR: export the connection variables of the cluster in DIR.
pg_env() {
    local dir port
    dir=$(_pg_abs "${1:?usage: pg_env DIR}") || { _pg_err "no such directory: $1"; return 1; }
    port=$(cat "$dir/port" 2>/dev/null) || { _pg_err "no cluster in $dir"; return 1; }
    unset PGHOSTADDR PGSERVICE PGSERVICEFILE PGPASSWORD PGPASSFILE PGOPTIONS PGSSLMODE
    export PGHOST="$dir" PGPORT="$port" PGUSER=postgres PGDATABASE=postgres
    export TS_TEST_DB="host=$dir port=$port user=postgres dbname=postgres"
    export TS_PG_DIR="$dir" TS_PG_BIN
}

# pg_start DIR: initialise and start a cluster in DIR (created if missing,
# must hold no cluster yet), wait until it accepts connections, export env.
pg_start() {
    local dir=${1:?usage: pg_start DIR} port timeout i _
    timeout=${TS_PG_START_TIMEOUT:-30}
    mkdir -p "$dir" || return 1
    dir=$(_pg_abs "$dir") || return 1
    if [ -e "$dir/data" ]; then
        _pg_err "$dir already holds a cluster"
        return 1
    fi
    [ -x "$TS_PG_BIN/initdb" ] || { _pg_err "no PostgreSQL binaries in $TS_PG_BIN"; return 1; }
    _pg_ensure_os_user || return 1
    : >"$dir/$TS_PG_MARKER"
    chmod 755 "$dir"
    if [ "$(id -u)" -eq 0 ]; then
        chown "$TS_PG_OS_USER:" "$dir" || return 1
        if ! runuser -u "$TS_PG_OS_USER" -- test -w "$dir"; then
            _pg_err "$dir is not reachable by $TS_PG_OS_USER (a parent directory is not searchable)"
            return 1
        fi
    fi

    if ! _pg_as_owner "$TS_PG_BIN/initdb" -D "$dir/data" --auth=trust -U postgres \
        --no-sync -E UTF8 --locale=C >"$dir/initdb.log" 2>&1; then
        _pg_err "initdb failed:"
        cat "$dir/initdb.log" >&2
        return 1
    fi

    # Our settings live in their own file, included from postgresql.conf;
    # ALTER SYSTEM (postgresql.auto.conf) still overrides them.
    printf "include 'taskslaps-test.conf'\n" >>"$dir/data/postgresql.conf"

    # A port nobody uses in DIR. The socket directory is private, so only a
    # stale socket file could clash; pick again if the server still refuses.
    for _ in 1 2 3 4 5; do
        port=$((20000 + RANDOM % 10000))
        [ -e "$dir/.s.PGSQL.$port" ] && continue
        cat >"$dir/data/taskslaps-test.conf" <<EOF2
# written by tests/lib/pg.sh
listen_addresses = ''
unix_socket_directories = '$dir'
port = $port
fsync = off
max_connections = 200
logging_collector = off
log_line_prefix = '%m [%p] %u@%d '
${TS_PG_CONF:-}
EOF2
        if _pg_as_owner "$TS_PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/log" -w -t "$timeout" \
            start >/dev/null 2>>"$dir/initdb.log"; then
            break
        fi
        port=
    done
    if [ -z "$port" ]; then
        _pg_err "server did not start; log:"
        tail -n 30 "$dir/log" >&2
        return 1
    fi
    printf '%s\n' "$port" >"$dir/port"
    # Readable by root's and other users' tools.
    chmod a+r "$dir/log" "$dir/port" 2>/dev/null

    for ((i = 0; i < timeout * 10; i++)); do
        "$TS_PG_BIN/pg_isready" -q -h "$dir" -p "$port" -U postgres -d postgres && break
        sleep 0.1
    done
    if ! "$TS_PG_BIN/pg_isready" -q -h "$dir" -p "$port" -U postgres -d postgres; then
        _pg_err "server in $dir not ready after ${timeout}s; log:"
        tail -n 30 "$dir/log" >&2
        return 1
    fi
    pg_env "$dir"
}

# pg_stop DIR: stop the cluster (fast, then immediate) and remove DIR.
# DIR is removed only if pg_start made it a cluster directory.
pg_stop() {
    local dir=${1:?usage: pg_stop DIR} pid
    dir=$(_pg_abs "$dir") || return 0
    if [ -f "$dir/data/postmaster.pid" ]; then
        _pg_as_owner "$TS_PG_BIN/pg_ctl" -D "$dir/data" -m fast -w -t 20 stop >/dev/null 2>&1 ||
            _pg_as_owner "$TS_PG_BIN/pg_ctl" -D "$dir/data" -m immediate -w -t 10 stop >/dev/null 2>&1
        # Last resort: the postmaster this directory's pid file names.
        if [ -f "$dir/data/postmaster.pid" ]; then
            pid=$(head -n 1 "$dir/data/postmaster.pid")
            if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
                kill -KILL "$pid" 2>/dev/null
                sleep 0.2
            fi
        fi
    fi
    if [ -f "$dir/$TS_PG_MARKER" ]; then
        rm -rf -- "$dir"
    else
        _pg_err "$dir was not made by pg_start; not removing it"
    fi
}

# pg_restart DIR: stop and start the server, keeping its data (to test
# reconnects). Same port, same environment.
pg_restart() {
    local dir=${1:?usage: pg_restart DIR}
    dir=$(_pg_abs "$dir") || return 1
    _pg_as_owner "$TS_PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/log" -m fast -w \
        -t "${TS_PG_START_TIMEOUT:-30}" restart >/dev/null
}

# pg_psql ARGS...: psql without ~/.psqlrc, quiet, stopping at the first error.
pg_psql() {
    "$TS_PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 "$@"
}

# pg_createdb NAME [OWNER]: create a database in the current cluster.
pg_createdb() {
    local name=${1:?usage: pg_createdb NAME [OWNER]}
    if [ -n "${2:-}" ]; then
        "$TS_PG_BIN/createdb" -O "$2" -- "$name"
    else
        "$TS_PG_BIN/createdb" -- "$name"
    fi
}

# pg_conninfo [DBNAME [USER]]: libpq conninfo of the current cluster.
pg_conninfo() {
    printf 'host=%s port=%s user=%s dbname=%s\n' "$PGHOST" "$PGPORT" "${2:-postgres}" "${1:-postgres}"
}

_pg_print_env() {
    local v
    for v in PGHOST PGPORT PGUSER PGDATABASE TS_TEST_DB TS_PG_DIR TS_PG_BIN; do
        printf 'export %s=%q\n' "$v" "${!v}"
    done
}

_pg_main() {
    local cmd=${1:-}
    shift || true
    case "$cmd" in
    start)
        [ $# -eq 1 ] || { _pg_err "usage: pg.sh start DIR"; return 2; }
        pg_start "$1" && _pg_print_env
        ;;
    env)
        [ $# -eq 1 ] || { _pg_err "usage: pg.sh env DIR"; return 2; }
        pg_env "$1" && _pg_print_env
        ;;
    stop)
        [ $# -eq 1 ] || { _pg_err "usage: pg.sh stop DIR"; return 2; }
        pg_stop "$1"
        ;;
    restart)
        [ $# -eq 1 ] || { _pg_err "usage: pg.sh restart DIR"; return 2; }
        pg_restart "$1"
        ;;
    *)
        _pg_err "usage: pg.sh start DIR | env DIR | stop DIR | restart DIR"
        return 2
        ;;
    esac
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    _pg_main "$@"
    exit $?
fi
