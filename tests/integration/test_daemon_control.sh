#!/usr/bin/env bash
# Integration test of taskslapsd's control socket under misbehaving clients,
# against a running daemon whose descriptor limit is lowered with prlimit:
#   - more idle connections than it serves: the rest are refused with an
#     error line (taskslapsctl says so and exits 3), the daemon does not
#     spin, the worker keeps its descriptors and applies a push meanwhile;
#     status answers once they are gone;
#   - out of descriptors altogether (accept fails with EMFILE): no spin,
#     and accepting resumes when clients leave;
#   - clients that send thousands of requests and read nothing are
#     disconnected for real, with one rate-limited log line, and the
#     daemon's memory stays small;
#   - a request with a duplicate key is refused;
#   - who may ask what: the daemon lists its commands (a READ request,
#     "commands"); a local user who is not an admin gets every READ one and
#     is refused every other one, by name, and the refusals change nothing;
#     an unknown command is refused too.
#
#   bash tests/integration/test_daemon_control.sh   (TS_VERBOSE=1 prints passes)

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/lib/daemon.sh
. "$here/../lib/daemon.sh"
daemon_env_start

command -v prlimit >/dev/null || {
    echo "prlimit (util-linux) is needed" >&2
    exit 1
}

# cpu_ticks PID: user + system time of the process, in clock ticks.
cpu_ticks() {
    awk '{ print $14 + $15 }' "/proc/$1/stat"
}

# fds PID: open file descriptors of the process.
fds() {
    find "/proc/$1/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l
}

# rss_kb PID
rss_kb() {
    awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"
}

# start_idle_clients SOCKET N READY_FILE RESULT_FILE: opens N connections and holds them
# open until stdin closes. When every connection is made (or stuck), it writes
# "held H refused R stuck S" to READY_FILE: refused ones got an error line and
# were closed by the daemon; stuck ones could not connect within a second
# (the daemon did not accept: the backlog stayed full).
# The refusal messages go to RESULT_FILE.
start_idle_clients() {
    coproc IDLE (python3 -c '
import select, socket, struct, sys, time
path, n, ready, result = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
socks, stuck = [], 0
for i in range(n):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    # a blocking connect waits for room in the backlog, at most this long
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, struct.pack("ll", 1, 0))
    try:
        s.connect(path)
    except OSError:
        stuck += 1
        s.close()
        if stuck >= 3:
            break
        continue
    socks.append(s)
# a refused connection gets its line and EOF at once; a held one gets nothing
held, refused, msgs = [], 0, []
deadline = time.monotonic() + 2.0
pending = list(socks)
while pending and time.monotonic() < deadline:
    r, _, _ = select.select(pending, [], [], 0.2)
    for s in r:
        data = b""
        s.settimeout(1.0)
        try:
            while True:
                b = s.recv(4096)
                if not b:
                    break
                data += b
        except OSError:
            pass
        refused += 1
        msgs.append(data.decode(errors="replace").strip())
        pending.remove(s)
        s.close()
held = pending
with open(result, "w") as f:
    f.write("\n".join(msgs) + "\n")
with open(ready, "w") as f:
    f.write("held %d refused %d stuck %d\n" % (len(held), refused, stuck))
sys.stdin.read()
for s in held:
    s.close()
' "$1" "$2" "$3" "$4")
    _env_bg_pids+=("$IDLE_PID")
    IDLE_IN=${IDLE[1]}
}

# stop_idle_clients: closes the connections of start_idle_clients.
stop_idle_clients() {
    exec {IDLE_IN}>&-
    wait "$IDLE_PID" 2>/dev/null
}

newdb ctl1
repo_new origin
put_plan origin main dev@example.com 0001-t.yaml <<'EOF'
title: T
reason: something to apply
steps:
  - { op: create_table, table: t, columns: [{ name: id, type: int, nullable: false }], primary_key: [id] }
EOF
daemon_conf c1 "$W/origin.git" 'control_max_clients: 500'
daemon_start c1 || exit 1
PID=$(daemon_pid c1)
assert_status "the daemon is in sync" c1 "s['sync'] == 'in_sync'"

# ------------------------------------------------------------------ 7
section "more connections than the descriptors allow"
base_fds=$(fds "$PID")
soft_limit=$(awk '/^Max open files/ { print $4 }' "/proc/$PID/limits")
prlimit --pid "$PID" --nofile=160:
# 160 descriptors, 64 kept for the rest of the daemon: 96 clients at most
start_idle_clients "$W/c1.sock" 300 "$W/idle.ready" "$W/idle.msgs"
wait_file "$W/idle.ready" held 60
read -r _ held _ refused _ stuck <"$W/idle.ready"
assert_eq "96 connections are served (control_max_clients 500, limited by the descriptors)" 96 "$held"
assert_eq "the other 204 are refused" 204 "$refused"
assert_eq "none is left hanging" 0 "$stuck"
assert_contains "... each with an error line that says why" \
    '"code":"unavailable","message":"too many control connections (96, the most served at once): try again later"' \
    "$(head -n 1 "$W/idle.msgs")"
t0=$(cpu_ticks "$PID")
sleep 1
t1=$(cpu_ticks "$PID")
assert_le "the daemon does not spin while they are held ($((t1 - t0)) ticks in 1 s)" 10 "$((t1 - t0))"
for i in 1 2 3; do
    ctl c1 status
    assert_eq "taskslapsctl status meanwhile exits 3 (try $i)" 3 "$RC"
    assert_contains "... saying it was turned away, and why" \
        "turned the connection away: too many control connections (96, the most served at once)" "$ERR"
done
assert_le "its descriptors stay under the limit" 150 "$(fds "$PID")"
put_plan origin main dev@example.com 0002-u.yaml <<'EOF'
title: U
reason: applied while the control socket is full
steps:
  - { op: create_table, table: u, columns: [{ name: id, type: int, nullable: false }], primary_key: [id] }
EOF
if wait_for "SELECT status = 'applied' FROM taskslaps.plans WHERE plan_id = '0002-u'" 30; then
    pass "the worker applies a push meanwhile"
else
    fail "the worker applies a push meanwhile" "log: $(tail -n 5 "$W/c1.log")"
fi
assert_not_contains "no 'Too many open files' in the log" "Too many open files" "$(cat "$W/c1.log")"
assert_le "the refusals are logged once, not 204 times" 1 \
    "$(grep -c 'refused a connection' "$W/c1.log")"
stop_idle_clients
ctl c1 status
assert_eq "status answers once they are gone" 0 "$RC"
assert_le "their descriptors are closed" "$((base_fds + 2))" "$(fds "$PID")"

section "out of descriptors altogether"
# a limit just above what the daemon holds: accept(2) fails with EMFILE
now_fds=$(fds "$PID")
prlimit --pid "$PID" --nofile=$((now_fds + 4)):
start_idle_clients "$W/c1.sock" 40 "$W/idle2.ready" "$W/idle2.msgs"
wait_file "$W/idle2.ready" held 60
t0=$(cpu_ticks "$PID")
sleep 1
t1=$(cpu_ticks "$PID")
assert_le "the daemon does not spin on a listening socket it cannot accept from ($((t1 - t0)) ticks in 1 s)" 10 "$((t1 - t0))"
assert_contains "it says so in the log" "cannot accept a connection: Too many open files" "$(cat "$W/c1.log")"
stop_idle_clients
prlimit --pid "$PID" --nofile="$soft_limit":
ctl c1 status
assert_eq "status answers once they are gone" 0 "$RC"

# ------------------------------------------------------------------ 8
section "clients that never read"
rss0=$(rss_kb "$PID")
python3 - "$W/c1.sock" "$PID" >"$W/flood.out" 2>&1 <<'PY'
import os, select, socket, sys, time
path, pid = sys.argv[1], sys.argv[2]
line = b'{"v":1,"id":1,"cmd":"status"}\n'
clients = []
for i in range(20):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    s.setblocking(False)
    clients.append([s, line * 10000, False])   # socket, what is left to send, hung up on
# send everything, reading nothing, until sent or the daemon hangs up
deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    live = [c for c in clients if c[1] and not c[2]]
    if not live:
        break
    _, w, _ = select.select([], [c[0] for c in live], [], 0.5)
    for c in live:
        if c[0] in w:
            try:
                n = c[0].send(c[1][:65536])
                c[1] = c[1][n:]
            except (BrokenPipeError, ConnectionResetError):
                c[2] = True
# still reading nothing: a connection the daemon closed reports POLLHUP
p = select.poll()
for c in clients:
    p.register(c[0], select.POLLHUP)
hung, deadline = set(), time.monotonic() + 10
while len(hung) < len(clients) and time.monotonic() < deadline:
    for fd, ev in p.poll(500):
        if ev & (select.POLLHUP | select.POLLERR):
            hung.add(fd)
            p.unregister(fd)
rss = [l.split()[1] for l in open("/proc/%s/status" % pid) if l.startswith("VmRSS:")][0]
print("fds", len(os.listdir("/proc/%s/fd" % pid)))
print("rss", rss)
print("hung up", len(hung))
PY
assert_eq "all 20 are disconnected, though they read nothing" "hung up 20" "$(tail -n 1 "$W/flood.out")"
rss1=$(awk '/^rss/ { print $2 }' "$W/flood.out")
if grep -q __asan_init "$TASKSLAPSD"; then
    # AddressSanitizer keeps freed memory in quarantine: RSS says nothing here
    pass "(memory not measured under AddressSanitizer: $rss0 kB -> $rss1 kB)"
else
    assert_le "the daemon's memory grew by at most 20 MB while they held on ($rss0 kB -> $rss1 kB)" \
        $((rss0 + 20 * 1024)) "${rss1:-999999999}"
fi
assert_le "their descriptors were closed while they held on" "$((base_fds + 2))" \
    "$(awk '/^fds/ { print $2 }' "$W/flood.out")"
n=$(grep -c 'does not read' "$W/c1.log")
assert_ge "the disconnection is logged" 1 "$n"
assert_le "... once, not for every request ($n lines)" 1 "$n"
ctl c1 status
assert_eq "status answers after them" 0 "$RC"

# ------------------------------------------------------------------ 16
section "a duplicate key in a request"
reply=$(python3 - "$W/c1.sock" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
s.sendall(b'{"v":1,"id":5,"cmd":"status","cmd":"abort"}\n')
print(s.makefile().readline().strip())
PY
)
assert_contains "is refused as a bad request" '"id":5,"error":{"code":"bad_request","message":"duplicate key \"cmd\"' "$reply"

# ------------------------------------------------------------------ 4
section "who may ask what"
# ask SOCKET: sends "commands", then every listed command with a plan id,
# then an unknown one, on one connection; prints one line per command:
# NAME ACCESS OUTCOME [CODE MESSAGE], OUTCOME being ok or error.
ask() {
    python3 - "$1" <<'PY'
import json, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
f = s.makefile("rwb")
def call(i, cmd, args=None):
    req = {"v": 1, "id": i, "cmd": cmd}
    if args is not None:
        req["args"] = args
    f.write((json.dumps(req) + "\n").encode())
    f.flush()
    while True:
        r = json.loads(f.readline())
        assert r["id"] == i, r
        if "event" not in r:
            return r
r = call(1, "commands")
if "error" in r:
    print("commands - error %s %s" % (r["error"]["code"], r["error"]["message"]))
    sys.exit(0)
table = [(c["name"], c["access"]) for c in r["result"]["commands"]]
# a plan that exists: an admin command that got through would act on it
for i, (name, access) in enumerate(table + [("frobnicate", "-")], start=2):
    r = call(i, name, {"plan": "0001-t"})
    if "error" in r:
        print(name, access, "error", r["error"]["code"], r["error"]["message"])
    else:
        print(name, access, "ok")
PY
}
if [ "$(id -u)" -eq 0 ] && id nobody >/dev/null 2>&1; then
    # the socket opened to others, as a mode or a group would open it to some
    chmod 0711 "$W"
    chmod o+rw "$W/c1.sock"
    ev0=$(q "SELECT count(*) FROM taskslaps.events")
    (cd / && runuser -u nobody -- bash -c "$(declare -f ask); ask '$W/c1.sock'") >"$W/who.out" 2>"$W/who.err"
    assert_rc "nobody's requests run" 0 "$?" "$(cat "$W/who.err")"
    chmod 0700 "$W"
    read_cmds=$(awk '$2 == "read" { print $1 }' "$W/who.out" | sort | tr '\n' ' ')
    admin_cmds=$(awk '$2 == "admin" { print $1 }' "$W/who.out" | sort | tr '\n' ' ')
    # a command opened to readers is a decision: this list changes with it
    assert_eq "the commands any local user may ask for" "commands events status " "$read_cmds"
    assert_contains "abort is among the admin commands" " abort " " $admin_cmds"
    assert_eq "every command is read or admin" "" \
        "$(awk '$2 != "read" && $2 != "admin" && $1 != "frobnicate"' "$W/who.out")"
    while read -r name access outcome code msg; do
        case $access in
        read) assert_eq "nobody may ask for $name" "ok" "$outcome${code:+ $code $msg}" ;;
        admin)
            assert_eq "nobody is refused $name" "error forbidden" "$outcome $code"
            assert_eq "... saying what it needs" \
                "not allowed: '$name' needs root (no admin_group is configured)" "$msg"
            assert_contains "... and the daemon logs it" "refused '$name' from uid $(id -u nobody)" \
                "$(cat "$W/c1.log")"
            ;;
        -) assert_eq "an unknown command is refused" "error unknown_command" "$outcome $code"
           assert_contains "... naming the known ones" "expected status, events, commands," "$msg" ;;
        esac
    done <"$W/who.out"
    assert_ge "(at least four admin commands were tried)" 4 "$(grep -c ' admin ' "$W/who.out")"
    assert_eq "the refused commands changed nothing in the database" "$ev0" \
        "$(q "SELECT count(*) FROM taskslaps.events")"
    # root asks the same: every admin command gets past the check (accept-drift
    # and resume then answer for the plan, which needs neither)
    ask "$W/c1.sock" >"$W/who-root.out" 2>&1
    assert_eq "root is refused nothing" "" "$(grep ' forbidden ' "$W/who-root.out")"
    assert_eq "root sees the same table" "$(awk '{ print $1, $2 }' "$W/who.out")" \
        "$(awk '{ print $1, $2 }' "$W/who-root.out")"
    assert_status "still in sync after all that" c1 "s['sync'] == 'in_sync'"
else
    echo "who may ask what: skipped (needs root and the user nobody)"
fi

daemon_stop c1
assert_eq "exit 0" 0 "$DRC"
env_finish
