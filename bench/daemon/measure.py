#!/usr/bin/env python3
"""One daemon run of bench/daemon/run.sh: waits for the first pass, times PUSHES
pushes to applied, then the idle time; prints the figures and appends a summary
line (JSON) to RESULTS.

    measure.py RUNDIR PID PUSHES IDLE_SECONDS DAEMON SMAPS_PY RESULTS
"""
import json, os, socket, statistics, subprocess, sys, time

work, pid, pushes, idle_s, daemon = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
smaps_py, results = sys.argv[6], sys.argv[7]
sock_path = os.path.join(work, "bench.sock")
wt = os.path.join(work, "wt")
git = ["git", "-C", wt, "-c", "user.name=Bench", "-c", "user.email=bench@example.com",
       "-c", "commit.gpgsign=false"]
req_id = 0


def status(plan=None):
    """One status request over the control socket (JSON lines, protocol v1). With
    plan, the daemon is asked for that plan alone (args.plan; a daemon that does
    not know the argument ignores it and answers with every plan)."""
    global req_id
    req_id += 1
    rq = {"v": 1, "id": req_id, "cmd": "status"}
    if plan is not None:
        rq["args"] = {"plan": plan}
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(sock_path)
        s.sendall(json.dumps(rq).encode() + b"\n")
        buf = b""
        while not buf.endswith(b"\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
    finally:
        s.close()
    return json.loads(buf)["result"]


def wait(pred, timeout, interval=0.01, plan=""):
    end = time.monotonic() + timeout
    while True:
        try:
            st = status(plan)
            if pred(st):
                return st
        except (OSError, ValueError, KeyError):
            pass
        if time.monotonic() > end:
            sys.exit("bench: timed out waiting for the daemon; see %s/daemon.log" % work)
        time.sleep(interval)


def pst(st, plan):
    return next((p["status"] for p in st.get("plans") or [] if p["plan_id"] == plan), None)


def proc_cpu():
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def proc_mem():
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM", "Threads"):
                out[k] = int(v.split()[0])
    return out


def proc_rollup():
    """Rss split into what is shared with other processes (library code) and what is the daemon's own."""
    out = {}
    with open("/proc/%d/smaps_rollup" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("Pss", "Private_Clean", "Private_Dirty", "Shared_Clean", "Anonymous"):
                out[k] = int(v.split()[0])
    return out


def switches():
    n = 0
    for t in os.listdir("/proc/%d/task" % pid):
        with open("/proc/%d/task/%s/status" % (pid, t)) as f:
            for line in f:
                if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                    n += int(line.split()[1])
    return n


def pct(xs, p):
    xs = sorted(xs)
    k = (len(xs) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


existing = int(os.environ.get("EXISTING", "0"))
# The moment a push lands: a post-receive hook (run once the ref is updated)
# writes the wall clock; the same hook in the baseline repository, so that both
# pushes do the same work.
for repo in ("origin.git", "plain.git"):
    hook = os.path.join(work, repo, "hooks", "post-receive")
    with open(hook, "w") as f:
        f.write("#!/bin/sh\ndate +%%s.%%N >'%s'\n" % os.path.join(work, repo + ".landed"))
    os.chmod(hook, 0o755)
landed_file = os.path.join(work, "origin.git.landed")
poll = float(os.environ.get("POLL_STATUS_MS", "2")) / 1000
wait(lambda st: st.get("state") == "idle" and st.get("sync") == "in_sync", 30 + existing * 0.2, 0.2)
log_mark = os.path.getsize(os.path.join(work, "daemon.log"))
mem_start = proc_mem()

lat, push, base, land = [], [], [], []
for i in range(1, pushes + 1):
    plan = "%04d-t%d" % (i, i)
    with open(os.path.join(wt, "migrations", plan + ".yaml"), "w") as f:
        f.write("title: Table %d\nreason: benchmark\nsteps:\n"
                "  - { op: create_table, table: t%d, columns: [{ name: id, type: int, nullable: false }],"
                " primary_key: [id] }\n" % (i, i))
    subprocess.run(git + ["add", "-A"], check=True)
    subprocess.run(git + ["commit", "-qm", "Add " + plan], check=True)
    # the baseline: the same push to a repository nobody watches
    t0 = time.monotonic()
    subprocess.run(git + ["push", "-q", "plain", "main"], check=True)
    base.append(time.monotonic() - t0)
    # let the daemon be idle before the measured push
    wait(lambda st: st.get("state") == "idle", 30)
    t0 = time.monotonic()
    subprocess.run(git + ["push", "-q", "origin", "main"], check=True)
    t1 = time.monotonic()
    wait(lambda st: pst(st, plan) == "applied", 30, interval=poll, plan=plan)
    t2 = time.monotonic()
    w2 = time.time()
    with open(landed_file) as f:
        landed = float(f.read())
    push.append(t1 - t0)
    lat.append(t2 - t0)
    land.append(w2 - landed)

wait(lambda st: st.get("state") == "idle", 30)
time.sleep(1)
cpu0, sw0, mem0 = proc_cpu(), switches(), proc_mem()
time.sleep(idle_s)
cpu1, sw1, mem1 = proc_cpu(), switches(), proc_mem()
roll = proc_rollup()
st = status("")

# the passes that applied a pushed plan, section by section (TS_PASS_TIMING=1)
sections = {}
with open(os.path.join(work, "daemon.log")) as f:
    f.seek(log_mark)
    for line in f:
        if "pass timing:" not in line or " ran=1" not in line:
            continue
        for kv in line.split("pass timing:", 1)[1].split():
            k, _, v = kv.partition("=")
            if k != "ran":
                sections.setdefault(k, []).append(float(v))

ms = lambda x: "%.0f" % (x * 1000)
print("taskslapsd: %d applied plans at the tip; %d pushes of a one-step plan; then %.0f s idle "
      "(poll_interval %s, inotify)" % (existing, pushes, idle_s, os.environ.get("POLL", "30")))
print("daemon: %s" % daemon)
print()
print("%-44s %8s %8s %8s" % ("latency", "p50 ms", "p95 ms", "max ms"))
print("%-44s %8s %8s %8s" % ("-------", "------", "------", "------"))
for name, xs in (("baseline: git push to an unwatched repository", base),
                 ("git push to the followed repository", push),
                 ("push to applied (status over the socket)", lat),
                 ("  of which after the push returned", [a - b for a, b in zip(lat, push)]),
                 ("ref updated to applied (the daemon's part)", land)):
    print("%-44s %8s %8s %8s" % (name, ms(pct(xs, 50)), ms(pct(xs, 95)), ms(max(xs))))
print()
print("%-44s %12s" % ("idle", "value"))
print("%-44s %12s" % ("----", "-----"))
print("%-44s %12.3f" % ("CPU time over %.0f s idle, s" % idle_s, cpu1 - cpu0))
print("%-44s %12.3f" % ("  as a share of one core, %", (cpu1 - cpu0) / idle_s * 100))
print("%-44s %12d" % ("context switches (all threads)", sw1 - sw0))
mb = lambda kib: kib * 1024 / 1e6
print("%-44s %12.1f" % ("VmRSS after the first pass, MB", mb(mem_start["VmRSS"])))
print("%-44s %12.1f" % ("VmRSS idle after %d pushes, MB" % pushes, mb(mem1["VmRSS"])))
print("%-44s %12.1f" % ("VmHWM (peak RSS), MB", mb(mem1["VmHWM"])))
print("%-44s %12.1f" % ("  of RSS: shared library pages, MB", mb(roll["Shared_Clean"])))
print("%-44s %12.1f" % ("  of RSS: private (heap, stacks, data), MB", mb(roll["Private_Clean"] + roll["Private_Dirty"])))
print("%-44s %12.1f" % ("Pss (proportional set size), MB", mb(roll["Pss"])))
print("%-44s %12d" % ("threads", mem1["Threads"]))
print()
if sections:
    print("the passes that applied a pushed plan, section by section (medians of %d, ms):"
          % len(sections.get("total", [])))
    print("  " + "  ".join("%s %.1f" % (k, statistics.median(v)) for k, v in sections.items()))
    print()
if os.environ.get("SMAPS", "0") == "1":
    print("resident memory per mapping, after the idle time (bench/daemon/smaps.py):")
    sys.stdout.flush()
    subprocess.run([sys.executable, smaps_py, str(pid)], check=False)
    print()
with open(results, "a") as f:
    f.write(json.dumps({"label": os.environ.get("LABEL", ""), "plans": existing,
                        "p50": pct(lat, 50) * 1000, "p95": pct(lat, 95) * 1000,
                        "after_push_p50": pct([a - b for a, b in zip(lat, push)], 50) * 1000,
                        "landed_p50": pct(land, 50) * 1000, "push_p50": pct(push, 50) * 1000,
                        "idle_cpu": cpu1 - cpu0, "idle_s": idle_s, "switches": sw1 - sw0,
                        "rss_mb": mb(mem1["VmRSS"]),
                        "sections": {k: statistics.median(v) for k, v in sections.items()},
                        "load": os.getloadavg()[0]}) + "\n")
p50 = pct(lat, 50)
print("goal: no busy polling: %s (%.3f s CPU in %.0f s idle, %d wake-ups)" %
      ("met" if (cpu1 - cpu0) < 0.1 * idle_s / 60 else "MISSED", cpu1 - cpu0, idle_s, sw1 - sw0))
print("goal: RSS under 10 MB: %s (%.1f MB idle, %.1f MB peak)" %
      ("met" if mb(mem1["VmRSS"]) < 10 else "MISSED", mb(mem1["VmRSS"]), mb(mem1["VmHWM"])))
print("push to applied p50 %.0f ms = git push %.0f ms + %.0f ms" % (p50 * 1000, pct(push, 50) * 1000, (p50 - pct(push, 50)) * 1000))
if st.get("sync") != "in_sync":
    sys.exit("bench: the daemon ended out of sync")
