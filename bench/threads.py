"""Where a process's CPU goes, thread by thread: CPU and wake-ups of each thread over a window.

    python -m bench.threads PID [--seconds 10]

On this machine a wake-up costs tens of microseconds, more than the messages it usually brings, so
the number of wake-ups decides a process's CPU as much as its code does. Every ZeroMQ process has an
I/O thread (`ZMQbg/IO/0`) next to its main one, and both wake for traffic: this shows how much each
costs. CPU is from /proc/PID/task/TID/schedstat (time on a CPU, in ns), wake-ups are the thread's
voluntary context switches (each one a sleep that something had to end).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import NamedTuple


class Sample(NamedTuple):
    name: str
    cpu_ns: int
    sleeps: int


def sample(pid: int) -> dict[int, Sample]:
    """Every thread of `pid` now (threads that end meanwhile are left out)."""
    out = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            name = (task / "comm").read_text().strip()
            cpu_ns = int((task / "schedstat").read_text().split()[0])
            status = (task / "status").read_text()
        except (FileNotFoundError, ProcessLookupError):
            continue
        sleeps = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("voluntary_ctxt"))
        out[int(task.name)] = Sample(name, cpu_ns, sleeps)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("pid", type=int)
    ap.add_argument("--seconds", type=float, default=10.0)
    args = ap.parse_args()
    before = sample(args.pid)
    time.sleep(args.seconds)
    after = sample(args.pid)
    total = 0.0
    print(f"{'thread':>8} {'name':16} {'cpu %':>6} {'wakes/s':>8}")
    for tid, now in sorted(after.items()):
        then = before.get(tid, Sample(now.name, 0, 0))
        cpu = (now.cpu_ns - then.cpu_ns) / args.seconds / 1e7
        total += cpu
        print(f"{tid:>8} {now.name:16} {cpu:6.2f} {(now.sleeps - then.sleeps) / args.seconds:8.0f}")
    print(f"{'':>8} {'all':16} {total:6.2f}")


if __name__ == "__main__":
    main()
