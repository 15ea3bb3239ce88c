"""The soak's faults (benchmarks/soak.py): each breaks one thing on the running stack, then puts
it back; they strike one at a time, every ``--fault-every`` seconds, each kind in turn in a
shuffled order (every kind has struck once before any strikes twice)."""

from __future__ import annotations

import contextlib
import errno
import os
import random
import signal
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from django.db import connection

from tests.support.net import StorageLink

OUTAGE = 20.0  # seconds the storage stays cut and the disk full
KINDS = ("worker killed", "redis restarted", "storage cut", "database backends terminated", "disk full")


class Link(StorageLink):
    """tests/support/net.py's link between the app and the S3 server (its cut shuts the listener
    down, so the next connection is refused; finished connections are closed), and whether it is cut."""

    is_cut = False

    def cut(self) -> None:
        super().cut()
        self.is_cut = True

    def restore(self) -> None:
        super().restore()
        self.is_cut = False


class SmallDisk:
    """A 16 MiB tmpfs: ``worker-1``'s temporary folder (TMPDIR), which the full-disk fault fills.
    Mounting needs root; without it the fault is not available and the report says why."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        mounted = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=16m,mode=1777", "tmpfs", str(path)],
            capture_output=True,
            text=True,
            check=False,
        )
        self.unavailable = "" if mounted.returncode == 0 else (mounted.stderr.strip() or "mount failed")

    def fill(self) -> int:
        """Write zeros until the disk is full; returns the bytes written."""
        written = 0
        chunk = b"\0" * (256 * 1024)
        with open(self.path / "filler", "wb", buffering=0) as fh:
            try:
                while True:
                    written += fh.write(chunk) or 0
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
        return written

    def free(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            (self.path / "filler").unlink()

    def unmount(self) -> None:
        self.free()
        if not self.unavailable:
            subprocess.run(["umount", "--lazy", str(self.path)], check=False, capture_output=True)


class Faults:
    def __init__(self, stack: Any, link: Any, disk: SmallDisk, worker_env: dict[str, dict[str, str]], seed: int):
        self.stack, self.link, self.disk, self.worker_env = stack, link, disk, worker_env
        self.rng = random.Random(seed)
        self.counts: Counter[str] = Counter()
        self.log: list[str] = []
        self._active = ""
        self._deck: list[str] = []
        self.started = time.monotonic()

    def active(self) -> str:
        """The fault in effect right now ("" when none), to tell expected failures apart."""
        return self._active

    def last(self) -> str:
        """The latest line of the fault log (what struck last, and when), for the error counts."""
        return f"(after {self.log[-1].strip()})" if self.log else "(before any fault)"

    def note(self, text: str) -> None:
        line = f"+{time.monotonic() - self.started:6.0f}s {text}"
        self.log.append(line)
        print(f"[soak] {line}", flush=True)

    def kinds(self) -> list[str]:
        return [k for k in KINDS if k != "disk full" or not self.disk.unavailable]

    def strike(self) -> None:
        if not self._deck:
            self._deck = self.kinds()
            self.rng.shuffle(self._deck)
        kind = self._deck.pop()
        self._active = kind
        try:
            detail = {
                "worker killed": self.kill_worker,
                "redis restarted": self.restart_redis,
                "storage cut": self.cut_storage,
                "database backends terminated": self.terminate_backends,
                "disk full": self.fill_disk,
            }[kind]()
        finally:
            self._active = ""
        self.counts[kind] += 1
        self.note(f"survived: {kind} ({detail})")

    def busy_workers(self) -> dict[str, list[str]]:
        """The jobs each worker runs now (its pool processes are in its process group)."""
        from backups.models import Backup
        from restores.models import Restore

        groups = {self.stack.processes[name].pid: name for name in self.worker_env}
        running = [
            (f"backup {pk}", who) for pk, who in Backup.objects.filter(status="in_progress").values_list("pk", "worker")
        ]
        running += [
            (f"restore {pk}", who) for pk, who in Restore.objects.filter(status="running").values_list("pk", "worker")
        ]
        busy: dict[str, list[str]] = {}
        for job, who in running:
            with contextlib.suppress(ValueError, ProcessLookupError, PermissionError):
                name = groups.get(os.getpgid(int(who.rsplit(":", 1)[1])))
                if name:
                    busy.setdefault(name, []).append(job)
        return busy

    def kill_worker(self) -> str:
        """SIGKILL a worker, one running a job when there is one (it is restarted at once)."""
        busy = self.busy_workers()
        name = self.rng.choice(sorted(busy) or sorted(self.worker_env))
        jobs = ", ".join(busy.get(name, [])) or "idle"
        self.note(f"SIGKILL {name} ({jobs})")
        self.stack.stop(name, signal.SIGKILL)
        time.sleep(1)
        self.stack.start_worker(name, env_changes=self.worker_env[name])
        return f"{name} killed while {jobs}, restarted"

    def restart_redis(self) -> str:
        self.note("redis-server stopped")
        queued = self.stack.queued("backups") + self.stack.queued("default")
        self.stack.stop("redis")
        time.sleep(1)
        self.stack.start_redis()
        return f"{queued} queued messages lost"

    def cut_storage(self) -> str:
        self.note(f"storage cut for {OUTAGE:.0f} s")
        self.link.cut()
        time.sleep(OUTAGE)
        self.link.restore()
        return "link put back"

    def terminate_backends(self) -> str:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid() AND coalesce(application_name, '') <> 'soak-driver'"
            )
            killed = sum(1 for (ok,) in cursor.fetchall() if ok)
        return f"{killed} connections of web, workers and beat"

    def fill_disk(self) -> str:
        written = self.disk.fill()
        self.note(f"worker-1's disk full ({written // 1024} KiB written) for {OUTAGE:.0f} s")
        try:
            time.sleep(OUTAGE)
        finally:
            self.disk.free()
        return "space freed"

    def repair(self) -> None:
        """Whatever the last fault left: the link back, the disk freed, every process running."""
        if self.link.is_cut:
            self.link.restore()
        self.disk.free()
        if not self.stack.processes["redis"].alive():
            self.stack.start_redis()
        for name, changes in self.worker_env.items():
            if not self.stack.processes[name].alive():
                self.stack.start_worker(name, env_changes=changes)


def fault_loop(faults: Faults, stop: threading.Event, every: tuple[float, float], first: float = 30.0) -> None:
    wait = first
    while not stop.wait(wait):
        try:
            faults.strike()
        except Exception as exc:  # a fault that could not be applied is reported, not fatal
            faults.note(f"fault failed to apply: {exc.__class__.__name__}: {exc}")
            faults.counts["fault not applied"] += 1
        wait = faults.rng.uniform(*every)
