#!/usr/bin/env python3
"""Reads a PostgreSQL server log written with log_min_duration_statement = 0
and log_line_prefix = '%m [%p] %u@%d ' (tests/lib/pg.sh), for the benchmarks.

  pglog.py statements LOG DB [STEPS]
      server time per statement class in database DB: how many of each, and
      the time spent in parse (parse + analyze + rewrite), bind (planning) and
      execute, in total and per step when STEPS is given.

  pglog.py spans LOG DB [REGEX]
      transactions in database DB, from the end of BEGIN to the end of COMMIT
      in the same backend (ms precision of %m): count, median, p99 and max, and
      the longest single statement matching REGEX (default UPDATE). A
      statement outside BEGIN ... COMMIT counts as its own transaction.
      Prints one line of key=value pairs.
"""
import re
import sys
from datetime import datetime

LINE = re.compile(
    r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}) \S+ \[(\d+)\] (\S*)@(\S*) LOG:  "
    r"duration: ([0-9.]+) ms  (parse|bind|execute|statement)( [^:]*)?: (.*)$"
)


def records(path, db):
    """(timestamp s, pid, phase, duration ms, statement text) per logged phase."""
    cur = None
    with open(path, errors="replace") as f:
        for raw in f:
            line = raw.rstrip("\n")
            if line.startswith("\t") and cur is not None:
                cur[4] += "\n" + line[1:]
                continue
            if cur is not None:
                yield tuple(cur)
                cur = None
            m = LINE.match(line)
            if not m or m.group(4) != db:
                continue
            ts = datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S.%f").timestamp()
            cur = [ts, int(m.group(2)), m.group(6), float(m.group(5)), m.group(8)]
    if cur is not None:
        yield tuple(cur)


def normalize(sql):
    s = " ".join(sql.split())
    s = re.sub(r"'(?:[^']|'')*'", "'?'", s)
    s = re.sub(r"\d+", "N", s)
    s = re.sub(r'"[^"]*"', '"?"', s)
    return s


def statements(path, db, steps, top=16):
    by = {}
    for _ts, _pid, phase, ms, sql in records(path, db):
        key = normalize(sql)
        row = by.setdefault(key, {"n": 0, "parse": 0.0, "bind": 0.0, "execute": 0.0})
        if phase in ("execute", "statement"):
            row["n"] += 1
            row["execute"] += ms
        else:
            row[phase] += ms
    total = sum(r["parse"] + r["bind"] + r["execute"] for r in by.values())
    n = sum(r["n"] for r in by.values())
    div = steps if steps else 1
    unit = "per step" if steps else "total"
    print(f"server time by statement in {db} ({unit}; parse = parse+analyze, bind = plan):")
    print(f"{'count':>7} {'parse ms':>9} {'bind ms':>9} {'exec ms':>9} {'share':>6}  statement")
    rows = sorted(by.items(), key=lambda kv: -(kv[1]["parse"] + kv[1]["bind"] + kv[1]["execute"]))
    if len(rows) > top:
        rest = {"n": 0, "parse": 0.0, "bind": 0.0, "execute": 0.0}
        for _k, r in rows[top - 1:]:
            for f in rest:
                rest[f] += r[f]
        rows = rows[:top - 1] + [(f"({len(rows) - top + 1} other statements)", rest)]
    for key, r in rows:
        t = r["parse"] + r["bind"] + r["execute"]
        print(f"{r['n'] / div:7.2f} {r['parse'] / div:9.3f} {r['bind'] / div:9.3f} {r['execute'] / div:9.3f} "
              f"{100 * t / total if total else 0:5.1f}%  {key[:110]}")
    print(f"{n / div:7.2f} statements, {total / div:.3f} ms of server time {unit}")


def pct(v, p):
    if not v:
        return 0.0
    v = sorted(v)
    k = min(len(v) - 1, max(0, int(round(p / 100.0 * len(v) + 0.5)) - 1))
    return v[k]


def spans(path, db, regex):
    rx = re.compile(regex, re.I)
    open_at = {}
    out = []
    longest = 0.0
    for ts, pid, phase, ms, sql in records(path, db):
        if phase not in ("execute", "statement"):
            continue
        word = sql.strip().split(None, 1)[0].upper().rstrip(";") if sql.strip() else ""
        if rx.search(sql):
            longest = max(longest, ms)
        if word in ("BEGIN", "START"):
            open_at[pid] = ts
        elif word in ("COMMIT", "ROLLBACK", "END"):
            if pid in open_at:
                out.append((ts - open_at.pop(pid)) * 1000.0 + 0.0)
        elif pid not in open_at and rx.search(sql):
            out.append(ms)
    print(f"transactions={len(out)} median_ms={pct(out, 50):.1f} p99_ms={pct(out, 99):.1f} "
          f"max_ms={max(out) if out else 0:.1f} longest_stmt_ms={longest:.1f}")


def main(argv):
    if len(argv) >= 4 and argv[1] == "statements":
        statements(argv[2], argv[3], int(argv[4]) if len(argv) > 4 else 0)
    elif len(argv) >= 4 and argv[1] == "spans":
        spans(argv[2], argv[3], argv[4] if len(argv) > 4 else r"^\s*UPDATE\b")
    else:
        sys.stderr.write(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
