"""Replay one night of scheduled backups for many organizations: when does the last one finish?

Usage::

    python benchmarks/capacity_sim.py --workers 24            # finish time with 24 worker processes
    python benchmarks/capacity_sim.py --find-workers --window-hours 6
    make capacity                                              # the figures of docs/capacity.md

The simulation follows the product's queue rules (backups/services.py, backups/tasks.py,
backupsvc/settings.py), not an idealised pool:

* every organization has a nightly schedule; ``run_schedules`` (every 60 s) requests the
  backups that are due and sends one ``run_backup`` task each to the broker (FIFO, prefetch 1);
  a schedule whose organization still has a pending backup is skipped (one pending backup per
  organization, a database constraint);
* ``process_queue`` (every ``--queue-interval`` s, 15 minutes by default) is one more task: the
  worker that takes it claims pending backups, oldest first, one after another until none is
  left; a ``run_backup`` task whose backup was already claimed costs nothing;
* a run fails with probability ``--fail-rate`` at a random point (work lost); a worker dies
  with probability ``--crash-rate`` (restarted after 30 s) and its backup stays *in progress*
  until the stale sweep (every 5 minutes) finds its heartbeat older than 10 minutes;
* a failed backup is requested again (``--max-attempts``) and waits for the next queue run:
  the product's Retry action; an operator could automate it the same way;
* a run costs ``fixed + GiB * per_gib + documents / 1000 * per_1000_documents`` seconds of one
  worker process (measured by ``benchmarks/capacity_bench.py``; defaults below).

Sizes are log-normal: median ``--median-mb`` with ``--tail-share`` of the organizations above
``--tail-gib``. Documents per organization follow from ``--kb-per-document``.
"""

from __future__ import annotations

import argparse
import heapq
import math
import random
import statistics
from collections import deque
from dataclasses import dataclass, field
from statistics import NormalDist

# From benchmarks/capacity_bench.py (RESULTS.md, 2026-12-01): on the real stack the fit was 0.95 s
# per backup + 80.6 s per GiB + 50.7 s per 1,000 versions, measured at a load average of 20 on
# 2 cores; the same day a 4 GiB backup ran 14x slower than on the quiet machine, so these are the
# fit divided by 14 (fixed cost rounded up to 1 s): one worker process with ~2 cores to itself.
DEFAULT_FIXED_S = 1.0
DEFAULT_PER_GIB_S = 6.0
DEFAULT_PER_1000_DOCS_S = 3.6
MULTIPART_PART = 5 * 1024 * 1024  # django-storages' S3File buffer: one multipart part per 5 MiB written
STALE_AFTER = 600.0  # BACKUP_HEARTBEAT_STALE_AFTER
SWEEP_EVERY = 300.0  # backups-sweep-stale in CELERY_BEAT_SCHEDULE
SCHEDULE_TICK = 60.0  # backups-run-schedules
RESTART_AFTER = 30.0


@dataclass
class Org:
    idx: int
    gib: float
    documents: int
    due: float  # seconds after the window opens


@dataclass
class Backup:
    org: Org
    requested: float
    attempt: int
    status: str = "pending"  # pending, in_progress, completed, failed


@dataclass(order=True)
class Event:
    time: float
    seq: int
    kind: str = field(compare=False)
    data: object = field(compare=False, default=None)


@dataclass
class Stats:
    completed: int = 0
    failed_runs: int = 0
    crashes: int = 0
    retries: int = 0
    given_up: int = 0
    skipped_schedules: int = 0
    busy_s: float = 0.0
    max_broker: int = 0
    finish: float = 0.0
    claims: int = 0
    bytes_read: float = 0.0


def organizations(args: argparse.Namespace, rng: random.Random) -> list[Org]:
    """Log-normal sizes: median ``median_mb``, ``tail_share`` above ``tail_gib``."""
    mu = math.log(args.median_mb / 1024)
    sigma = math.log(args.tail_gib * 1024 / args.median_mb) / NormalDist().inv_cdf(1 - args.tail_share)
    orgs = []
    for i in range(args.orgs):
        gib = math.exp(rng.gauss(mu, sigma))
        docs = max(1, round(gib * 1024 * 1024 / args.kb_per_document))
        due = rng.uniform(0, args.spread_minutes * 60) if args.spread_minutes else 0.0
        orgs.append(Org(i, gib, docs, due))
    if args.largest_first:  # schedules staggered so the largest organizations are due first
        for rank, org in enumerate(sorted(orgs, key=lambda o: -o.gib)):
            org.due = rank * 1e-3
    return orgs


def duration(org: Org, args: argparse.Namespace) -> float:
    return args.fixed + org.gib * args.per_gib + org.documents / 1000 * args.per_1000_docs


def simulate(args: argparse.Namespace, workers: int, seed: int) -> Stats:
    """One night; returns the statistics (``finish`` is when the last backup ended)."""
    rng = random.Random(seed)
    orgs = organizations(args, rng)
    stats = Stats()
    events: list[Event] = []
    seq = 0

    def at(time: float, kind: str, data: object = None) -> None:
        nonlocal seq
        seq += 1
        heapq.heappush(events, Event(time, seq, kind, data))

    broker: deque[object] = deque()  # Backup (a run_backup task) or "queue" (process_queue)
    pending: deque[Backup] = deque()  # oldest first, as backup_claim() orders them
    has_pending: set[int] = set()
    running: dict[int, tuple[Backup, float, bool]] = {}  # worker -> (backup, start, draining)
    stale: list[tuple[Backup, float]] = []  # in progress on a dead worker: (backup, last heartbeat)
    idle: list[int] = list(range(workers))
    unscheduled = sorted(orgs, key=lambda o: o.due)
    next_due = 0
    open_jobs = len(orgs)

    def request(org: Org, now: float, attempt: int) -> Backup:
        backup = Backup(org, now, attempt)
        pending.append(backup)
        has_pending.add(org.idx)
        return backup

    def claim(backup: Backup | None = None) -> Backup | None:
        stats.claims += 1
        if backup is None:
            while pending and pending[0].status != "pending":
                pending.popleft()
            if not pending:
                return None
            backup = pending.popleft()
        elif backup.status != "pending":
            return None
        backup.status = "in_progress"
        has_pending.discard(backup.org.idx)
        return backup

    def start(worker: int, backup: Backup, now: float, draining: bool) -> None:
        cost = duration(backup.org, args)
        roll = rng.random()
        running[worker] = (backup, now, draining)
        if roll < args.crash_rate:
            at(now + rng.uniform(0, cost), "crash", worker)
        elif roll < args.crash_rate + args.fail_rate:
            at(now + rng.uniform(0, cost), "fail", worker)
        else:
            at(now + cost, "done", worker)

    def give_work(now: float) -> None:
        while idle and broker:
            task = broker.popleft()
            worker = idle.pop()
            backup = claim(None if task == "queue" else task)  # type: ignore[arg-type]
            if backup is None:
                idle.append(worker)
                continue
            start(worker, backup, now, draining=task == "queue")

    def finished(worker: int, now: float) -> None:
        _backup, began, draining = running.pop(worker)
        stats.busy_s += now - began
        nxt = claim() if draining else None
        if nxt is not None:
            start(worker, nxt, now, draining=True)
        else:
            idle.append(worker)

    def retry(backup: Backup, now: float) -> None:
        nonlocal open_jobs
        if backup.attempt < args.max_attempts:
            stats.retries += 1
            request(backup.org, now, backup.attempt + 1)
        else:
            stats.given_up += 1
            open_jobs -= 1

    at(0.0, "schedules")
    at(args.queue_interval * args.queue_phase, "queue")
    at(SWEEP_EVERY, "sweep")
    while events and open_jobs > 0:
        ev = heapq.heappop(events)
        now = ev.time
        if ev.kind == "schedules":
            while next_due < len(unscheduled) and unscheduled[next_due].due <= now:
                org = unscheduled[next_due]
                next_due += 1
                if org.idx in has_pending:
                    stats.skipped_schedules += 1
                    open_jobs -= 1
                    continue
                broker.append(request(org, now, 1))
            if next_due < len(unscheduled):
                at(now + SCHEDULE_TICK, "schedules")
        elif ev.kind == "queue":
            broker.append("queue")
            at(now + args.queue_interval, "queue")
        elif ev.kind == "sweep":
            for backup, _beat in [s for s in stale if now - s[1] >= STALE_AFTER]:
                stale.remove((backup, _beat))
                backup.status = "failed"
                retry(backup, now)
            at(now + SWEEP_EVERY, "sweep")
        elif ev.kind == "done":
            backup = running[ev.data][0]  # type: ignore[index]
            backup.status = "completed"
            stats.completed += 1
            stats.bytes_read += backup.org.gib
            stats.finish = now
            open_jobs -= 1
            finished(ev.data, now)  # type: ignore[arg-type]
        elif ev.kind == "fail":
            backup = running[ev.data][0]  # type: ignore[index]
            backup.status = "failed"
            stats.failed_runs += 1
            retry(backup, now)
            finished(ev.data, now)  # type: ignore[arg-type]
        elif ev.kind == "crash":
            backup, began, _draining = running.pop(ev.data)  # type: ignore[arg-type]
            stats.busy_s += now - began
            stats.crashes += 1
            stale.append((backup, now))
            at(now + RESTART_AFTER, "restart", ev.data)
        elif ev.kind == "restart":
            idle.append(ev.data)  # type: ignore[arg-type]
        give_work(now)
        stats.max_broker = max(stats.max_broker, len(broker))
    return stats


def storage_and_requests(args: argparse.Namespace, seed: int) -> dict[str, float]:
    orgs = organizations(args, random.Random(seed))
    total_gib = sum(o.gib for o in orgs)
    docs = sum(o.documents for o in orgs)
    archive_gib = total_gib * args.archive_ratio
    parts = sum(math.ceil(o.gib * args.archive_ratio * 1024**3 / MULTIPART_PART) + 2 for o in orgs)
    return {
        "total_gib": total_gib,
        "largest_gib": max(o.gib for o in orgs),
        "over_50_gib": sum(o.gib > 50 for o in orgs),
        "documents": docs,
        "archive_gib": archive_gib,
        "put_requests": parts,
        "get_requests": docs,
        "work_hours": sum(duration(o, args) for o in orgs) / 3600,
        "largest_hours": max(duration(o, args) for o in orgs) / 3600,
    }


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workers", type=int, default=24, help="worker processes (Celery concurrency summed)")
    p.add_argument("--orgs", type=int, default=10_000)
    p.add_argument("--median-mb", type=float, default=200.0)
    p.add_argument("--tail-gib", type=float, default=20.0)
    p.add_argument("--tail-share", type=float, default=0.01)
    p.add_argument(
        "--kb-per-document", type=float, default=500.0, help="average stored file per version (seed_demo: 56)"
    )
    p.add_argument("--fixed", type=float, default=DEFAULT_FIXED_S, help="seconds per backup, whatever its size")
    p.add_argument("--per-gib", type=float, default=DEFAULT_PER_GIB_S, help="seconds per GiB of files")
    p.add_argument("--per-1000-docs", type=float, default=DEFAULT_PER_1000_DOCS_S, help="seconds per 1,000 documents")
    p.add_argument(
        "--archive-ratio",
        type=float,
        default=0.69,
        help="archive bytes / document bytes (seeded tenant: 697 / 1012 MB)",
    )
    p.add_argument("--fail-rate", type=float, default=0.01)
    p.add_argument("--crash-rate", type=float, default=0.001)
    p.add_argument("--max-attempts", type=int, default=3)
    p.add_argument("--queue-interval", type=float, default=900.0, help="BACKUP_QUEUE_INTERVAL, seconds")
    p.add_argument("--queue-phase", type=float, default=0.5, help="first queue run after this share of an interval")
    p.add_argument(
        "--spread-minutes", type=float, default=0, help="schedules spread over this many minutes (0: all at once)"
    )
    p.add_argument("--largest-first", action="store_true", help="the largest organizations' schedules come first")
    p.add_argument("--seeds", type=int, default=10, help="nights simulated (different size draws); the worst counts")
    p.add_argument("--window-hours", type=float, default=6.0)
    p.add_argument(
        "--find-workers", action="store_true", help="smallest worker count whose worst night fits the window"
    )
    return p.parse_args(argv)


def night(args: argparse.Namespace, workers: int) -> tuple[float, list[Stats]]:
    """(the worst finish time over ``--seeds`` simulated nights, their statistics)."""
    runs = [simulate(args, workers, seed) for seed in range(args.seeds)]
    return max(r.finish for r in runs), runs


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    totals = storage_and_requests(args, 0)
    print(
        f"{args.orgs} organizations: {totals['total_gib']:.0f} GiB of files, {totals['documents'] / 1e6:.1f} M documents; "
        f"largest {totals['largest_gib']:.0f} GiB ({totals['largest_hours']:.1f} h of one worker); "
        f"{totals['over_50_gib']} above 50 GiB"
    )
    print(
        f"work: {totals['work_hours']:.0f} worker-hours a night; archives {totals['archive_gib']:.0f} GiB a night; "
        f"S3: {totals['put_requests'] / 1e3:.0f} k PUT/multipart requests, {totals['get_requests'] / 1e6:.1f} M GETs"
    )
    workers = args.workers
    if args.find_workers:
        window = args.window_hours * 3600
        longest = max(storage_and_requests(args, seed)["largest_hours"] for seed in range(args.seeds))
        if longest * 3600 > window:
            raise SystemExit(
                f"no worker count finishes within {args.window_hours:g} h in all {args.seeds} nights: the largest "
                f"backup alone takes up to {longest:.1f} h of one worker (one backup runs in one worker process)"
            )
        lo = max(1, math.ceil(totals["work_hours"] * 3600 / window))
        hi = lo
        while night(args, hi)[0] > window:
            hi *= 2
            if hi > 100_000:
                raise SystemExit("no worker count finishes within the window")
        while lo < hi:
            mid = (lo + hi) // 2
            if night(args, mid)[0] <= window:
                hi = mid
            else:
                lo = mid + 1
        workers = hi
    finish, runs = night(args, workers)
    mid = runs[[r.finish for r in runs].index(sorted(r.finish for r in runs)[len(runs) // 2])]
    util = mid.busy_s / (workers * mid.finish) if mid.finish else 0.0
    print(
        f"workers: {workers} -> last backup finished after {finish / 3600:.2f} h in the worst of {args.seeds} nights "
        f"(median {statistics.median(r.finish for r in runs) / 3600:.2f} h, best {min(r.finish for r in runs) / 3600:.2f} h)"
    )
    print(
        f"median night: {mid.completed} completed, {mid.failed_runs} failed runs, {mid.crashes} worker crashes, "
        f"{mid.retries} retries, {mid.given_up} given up, {mid.skipped_schedules} schedules skipped (still pending); "
        f"worker utilisation {100 * util:.0f} %, broker queue peak {mid.max_broker}, claims {mid.claims}"
    )


if __name__ == "__main__":
    main()
