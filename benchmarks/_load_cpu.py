"""Who used the CPUs during the load test (benchmarks/load_bench.py): the machine is shared
with other work, so the run samples the CPU time of gunicorn, locust, our PostgreSQL backends
and everything else."""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class CpuSample:
    at: float  # time.time()
    busy: float  # CPU-seconds the whole machine spent busy since boot
    ours: dict[str, float]  # CPU-seconds of our processes, by kind


def cpu_sample(server: int, locust: int, database: str) -> CpuSample:
    """The machine's busy time and that of gunicorn (``server`` and its workers), locust and the
    PostgreSQL backends serving ``database``."""
    with open("/proc/stat") as fh:
        ticks = [int(x) for x in fh.readline().split()[1:]]
    busy = (sum(ticks[:3]) + sum(ticks[5:8])) / CLOCK_TICKS  # user nice system . . irq softirq steal
    ours = {"gunicorn": 0.0, "PostgreSQL": 0.0, "locust": 0.0}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        pid = int(entry.name)
        fields = stat.rsplit(")", 1)[1].split()  # from field 3 (state) on
        if server in (pid, int(fields[1])):
            kind = "gunicorn"
        elif pid == locust:
            kind = "locust"
        elif cmd.startswith("postgres:") and f" {database} " in cmd:
            kind = "PostgreSQL"
        else:
            continue
        ours[kind] += (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime
    return CpuSample(time.time(), busy, ours)


class CpuSampler(threading.Thread):
    """Samples the machine's and our processes' CPU time every second until stopped."""

    def __init__(self, server: int, locust: int, database: str) -> None:
        super().__init__(daemon=True)
        self.server, self.locust, self.database = server, locust, database
        self.samples: list[CpuSample] = []
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            self.samples.append(cpu_sample(self.server, self.locust, self.database))
            self.done.wait(1.0)

    def between(self, start: float, end: float) -> tuple[str, float]:
        """What each used between ``start`` and ``end``, as text, and gunicorn's cores busy."""
        inside = [s for s in self.samples if start <= s.at <= end]
        if len(inside) < 2:
            return "", 0.0
        first, last = inside[0], inside[-1]
        seconds = last.at - first.at
        ours = {k: last.ours[k] - first.ours[k] for k in first.ours}
        others = max(0.0, last.busy - first.busy - sum(ours.values()))
        parts = ", ".join(f"{k} {v / seconds:.2f}" for k, v in ours.items())
        text = f"{parts}, other processes on the machine {others / seconds:.2f} (cores busy on average, of {os.cpu_count()})"
        return text, ours["gunicorn"] / seconds
