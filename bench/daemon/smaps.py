#!/usr/bin/env python3
"""Resident memory of a process, per mapping, from /proc/PID/smaps.

    python3 bench/daemon/smaps.py PID [--all]

Groups the mappings by what backs them (each shared library, the
executable, [heap], [stack], anonymous mappings, thread stacks and their
guard pages) and prints, in KiB, Rss and how it splits: Shared_Clean (file
pages also mapped by another process), Private_Clean (file pages only this
process maps), Private_Dirty (written pages: heap, stacks, relocated data,
.bss). Rss is what VmRSS adds up (VmRSS also counts the few shmem pages).
--all prints every group, not only those with at least 4 KiB resident.
"""
import os
import re
import sys

FIELDS = ("Rss", "Pss", "Shared_Clean", "Shared_Dirty", "Private_Clean", "Private_Dirty", "Anonymous")
head = re.compile(r"^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \d+\s*(.*)$")


def thread_sps(pid):
    """Stack pointers of the threads blocked in a system call (/proc/PID/task/TID/syscall)."""
    sps = {}
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/syscall" % (pid, tid)) as f:
                parts = f.read().split()
            if len(parts) >= 9:
                sps[int(parts[-2], 16)] = tid
        except (OSError, ValueError):
            pass
    return sps


def groups(pid):
    out, cur = {}, None
    sps = thread_sps(pid)
    with open("/proc/%d/smaps" % pid) as f:
        for line in f:
            m = head.match(line)
            if m:
                start, end, perms, name = int(m.group(1), 16), int(m.group(2), 16), m.group(3), m.group(4)
                if not name:
                    # a thread's stack is an anonymous mapping (8 MiB by default)
                    # that holds the stack pointer of a thread blocked in a call
                    name = "[anon]"
                    for sp, tid in sps.items():
                        if start <= sp < end:
                            name = "[thread stack %s]" % tid
                    if perms.startswith("---"):
                        name = "[anon, no access: guard pages]"
                elif name.startswith("/"):
                    name = os.path.basename(name)
                cur = out.setdefault(name, dict.fromkeys(FIELDS + ("Size",), 0))
                cur["Size"] += (end - start) // 1024
                continue
            k, _, v = line.partition(":")
            if cur is not None and k in FIELDS:
                cur[k] += int(v.split()[0])
    return out


def main():
    pid = int(sys.argv[1])
    show_all = "--all" in sys.argv[2:]
    g = groups(pid)
    cols = ("Rss", "Shared_Clean", "Private_Clean", "Private_Dirty", "Pss")
    print("%-34s %8s %8s %8s %8s %8s" % ("mapping (KiB)", "Rss", "Sh_Clean", "Pr_Clean", "Pr_Dirty", "Pss"))
    tot = dict.fromkeys(cols, 0)
    for name, v in sorted(g.items(), key=lambda kv: -kv[1]["Rss"]):
        for c in cols:
            tot[c] += v[c]
        if v["Rss"] >= 4 or show_all:
            print("%-34s %8d %8d %8d %8d %8d" % ((name[:34],) + tuple(v[c] for c in cols)))
    print("%-34s %8d %8d %8d %8d %8d" % (("total",) + tuple(tot[c] for c in cols)))
    libs = sum(v["Rss"] for n, v in g.items() if ".so" in n)
    print("of which shared objects (.so): %d KiB; the rest (executable, heap, stacks, anon): %d KiB"
          % (libs, tot["Rss"] - libs))


if __name__ == "__main__":
    main()
