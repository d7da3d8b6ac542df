#!/usr/bin/env python3
"""Latency figures from pgbench per-transaction logs (pgbench --log, PG 15:
`client_id transaction_no time script_no time_epoch time_us [...]`, time in
µs, or `failed` / `serialization` / `deadlock` for a failed transaction).

  latency.py [--phases FILE] FROM_US TO_US LOGFILE...

Prints two lines of key=value pairs: `all` (every transaction) and `window`
(transactions that ended between FROM_US and TO_US, epoch microseconds; the
migration). Keys: n, tps, p50, p99, p999, max (ms), slow (transactions over
100 ms) and failed. Then one `slow` line per transaction over 100 ms: when
it began and ended, relative to FROM_US, and with --phases (lines `START_US
END_US LABEL`: the migration's steps) the phases it overlapped, else
(before), (after) or (between steps).
"""
import sys


def pct(v, p):
    if not v:
        return 0.0
    k = min(len(v) - 1, max(0, int(p / 100.0 * len(v) + 0.999999) - 1))
    return v[k]


def stats(name, lat, failed, t0, t1):
    lat.sort()
    span = (t1 - t0) / 1e6 if t1 > t0 else 0
    print(f"{name} n={len(lat)} tps={len(lat) / span if span else 0:.1f} "
          f"p50={pct(lat, 50):.2f} p99={pct(lat, 99):.2f} p999={pct(lat, 99.9):.2f} "
          f"max={lat[-1] if lat else 0:.2f} slow={sum(1 for x in lat if x > 100)} failed={failed}")


def main(argv):
    phases = []
    if len(argv) > 2 and argv[1] == "--phases":
        with open(argv[2]) as f:
            for line in f:
                p = line.split(None, 2)
                if len(p) == 3:
                    phases.append((int(float(p[0])), int(float(p[1])), p[2].strip().replace(" ", "_")))
        argv = argv[:1] + argv[3:]
    if len(argv) < 4:
        sys.stderr.write(__doc__)
        return 2
    w0, w1 = int(argv[1]), int(argv[2])
    slow = []
    lat_all, lat_win = [], []
    fail_all = fail_win = 0
    first, last = None, None
    for path in argv[3:]:
        with open(path) as f:
            for line in f:
                p = line.split()
                if len(p) < 6:
                    continue
                at = int(p[4]) * 1000000 + int(p[5])
                first = at if first is None or at < first else first
                last = at if last is None or at > last else last
                inside = w0 <= at <= w1
                if not p[2].isdigit():
                    fail_all += 1
                    fail_win += inside
                    continue
                ms = int(p[2]) / 1000.0
                lat_all.append(ms)
                if ms > 100:
                    slow.append((at - int(p[2]), at, ms))
                if inside:
                    lat_win.append(ms)
    stats("all", lat_all, fail_all, first or 0, last or 0)
    stats("window", lat_win, fail_win, w0, w1)
    for b, e, ms in sorted(slow):
        over = [lab for (s0, s1, lab) in phases if s0 <= e and s1 >= b]
        if not over:
            over = ["(before)" if e < w0 else "(after)" if b > w1 else "(between steps)"]
        print(f"slow from={(b - w0) / 1e6:+.3f}s to={(e - w0) / 1e6:+.3f}s ms={ms:.1f} "
              f"during={','.join(over)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
