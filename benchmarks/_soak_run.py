"""The soak's run (benchmarks/soak.py): the stack, the organizations, the work and the faults,
the drain, the checks and the report. Imported once Django is set up with the soak's settings."""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.contrib.auth.hashers import make_password
from django.core.management import call_command
from django.db import close_old_connections
from django.utils import timezone

from accounts.models import Membership, User
from backups.models import Backup, BackupSchedule
from benchmarks import _soak_checks as checks
from benchmarks._soak_faults import Faults, Link, SmallDisk, fault_loop
from benchmarks._soak_world import PASSWORD, Org, World, actor
from restores.models import Restore
from tests import factories as f
from tests.backups.conftest import add_document
from tests.support.mail import Inbox
from tests.support.stack import Stack, collectstatic

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
OUTAGE_JOIN = 60.0  # a fault in progress ends within its outage (20 s) and a restart


@dataclass
class SoakStack(Stack):
    """The e2e stack, with the web and the workers reaching the store through a link that the
    storage fault cuts, and the soak's shortened settings."""

    link_port: int = 0

    def env(self, **extra: str) -> dict[str, str]:
        from benchmarks.soak import SHORTENED

        env = super().env(**extra)
        env.update(SHORTENED)
        env["LOG_LEVEL"] = "INFO"
        if self.link_port and "AWS_S3_ENDPOINT_URL" not in extra:
            env["AWS_S3_ENDPOINT_URL"] = f"http://127.0.0.1:{self.link_port}"
        return env


def seed_orgs(count: int, stack: Stack) -> list[Org]:
    """``count`` organizations: an Owner, one OU, three tiny documents, a schedule keeping two."""
    mdv = f.MasterDataVersionFactory()
    hashed = make_password(PASSWORD)  # once: the same password for every Owner
    orgs = []
    for i in range(count):
        org = f.OrganizationFactory(master_data_version=mdv, name=f"Soak {i:02d}", slug=f"soak-{i:02d}")
        f.SubscriptionFactory(organization=org)
        ou = f.OUFactory(organization=org, name="Head office")
        owner = User.objects.create(email=f"owner-{i:02d}@soak.test", full_name=f"Owner {i:02d}", password=hashed)
        Membership.objects.create(user=owner, organization=org, role=Membership.Role.OWNER)
        for n in range(3):
            add_document(org, ou, f"D{n}")
        BackupSchedule.objects.create(organization=org, created_by=owner, keep_last=2, name="Every minute")
        orgs.append(Org(index=i, pk=org.pk, owner_email=owner.email, web=stack.client()))
    return orgs


def tick_schedules(stop: threading.Event) -> None:
    """Every minute, every schedule is due (beat's run_schedules queues it within the minute)."""
    while not stop.is_set():
        close_old_connections()
        BackupSchedule.objects.filter(enabled=True).update(next_run_at=timezone.now())
        stop.wait(60)


def _alive(worker: str) -> bool:
    """Whether the process a job names (``host:pid``, on this machine) still runs."""
    try:
        os.kill(int(worker.rsplit(":", 1)[1]), 0)
    except (ValueError, IndexError, ProcessLookupError):
        return False
    except PermissionError:
        pass
    return True


def drain(limit: float) -> float:
    """Until nothing is waiting and no live worker runs a job (a job whose worker was killed
    waits for the sweep), at most ``limit`` seconds."""
    started = time.monotonic()
    while time.monotonic() - started < limit:
        close_old_connections()
        waiting = Backup.objects.filter(status=Backup.Status.PENDING).exists()
        waiting |= Restore.objects.filter(status=Restore.Status.QUEUED).exists()
        running = Backup.objects.filter(status=Backup.Status.IN_PROGRESS).values_list("worker", flat=True)
        running = [*running, *Restore.objects.filter(status=Restore.Status.RUNNING).values_list("worker", flat=True)]
        if not waiting and not any(_alive(w) for w in running):
            break
        time.sleep(2)
    return time.monotonic() - started


def run(args: Any, *, work: Path, seed: int, inbox: Inbox, ports: dict[str, int], machine: str) -> int:
    t0 = time.monotonic()
    call_command("migrate", verbosity=0)
    stack = SoakStack(
        tmp=work,
        database_url=os.environ["DATABASE_URL"].split("?")[0],
        smtp=inbox,
        static_root=work / "static",
        redis_port=ports["redis"],
        s3_port=ports["s3"],
        web_port=ports["web"],
        bucket=os.environ["AWS_STORAGE_BUCKET_NAME"],
    )
    collectstatic(stack.static_root, stack.env())
    disk = SmallDisk(work / "worker-1-tmp")
    if disk.unavailable:
        print(f"[soak] no tmpfs for the full-disk fault ({disk.unavailable}): that fault is left out", flush=True)
    link: Link | None = None
    stop_work, stop_faults = threading.Event(), threading.Event()
    threads: list[threading.Thread] = []
    try:
        stack.start_redis()
        stack.start_s3()
        link = Link(stack.s3_port)
        stack.link_port = link.port
        orgs = seed_orgs(args.orgs, stack)
        stack.start_web()
        worker_env = {"worker-1": {"TMPDIR": str(disk.path)} if not disk.unavailable else {}, "worker-2": {}}
        for name, changes in worker_env.items():
            stack.start_worker(name, env_changes=changes, wait=False)
        for name in worker_env:
            stack.processes[name].wait_ready()
        stack.start_beat()
        for org in orgs:
            org.web.login(org.owner_email, PASSWORD)
        faults = Faults(stack, link, disk, worker_env, seed)
        world = World(stack, inbox, orgs, seed, faults)
        print(f"[soak] stack up and {len(orgs)} organizations seeded in {time.monotonic() - t0:.0f} s", flush=True)

        # The work and the faults, for --minutes.
        t_work = time.monotonic()
        threads = [threading.Thread(target=tick_schedules, args=(stop_work,), daemon=True)]
        threads += [threading.Thread(target=actor, args=(world, stop_work), daemon=True) for _ in range(args.actors)]
        fault_thread = threading.Thread(
            target=fault_loop, args=(faults, stop_faults, tuple(args.fault_every)), daemon=True
        )
        for thread in [*threads, fault_thread]:
            thread.start()
        deadline = t_work + args.minutes * 60
        while time.monotonic() < deadline:
            time.sleep(min(30, max(0.1, deadline - time.monotonic())))
            print(f"[soak] +{time.monotonic() - t_work:5.0f}s {dict(sorted(world.counts.items()))}", flush=True)
        stop_faults.set()
        fault_thread.join(timeout=OUTAGE_JOIN)
        stop_work.set()
        for thread in threads:
            thread.join(timeout=120)
        faults.repair()
        worked = time.monotonic() - t_work

        # The end: no new work, the queues drained, the workers stopped, the sweeps, the checks.
        BackupSchedule.objects.update(enabled=False)
        drained = drain(args.drain)
        for name in ("beat", *worker_env):
            stack.stop(name)
        figures: dict[str, Any] = {"drain (s)": round(drained)}
        figures.update(checks.final_sweeps())
        for org in orgs:
            world.settle(org)
            for hold in org.holds:
                world.violation(f"organization {org.index}: {hold.kind} {hold.key} never finished")
        violations = list(world.violations)
        figures.update(checks.check_requests(violations, world.accepted_backups))
        figures.update(checks.check_backups(violations))
        figures.update(checks.check_restores(violations, world.confirmed_restores))
        figures.update(checks.check_maintenance(violations))
        figures.update(checks.check_bucket(violations, stack))
        report(args, machine, seed, (worked, time.monotonic() - t0), faults, world, figures, violations)
        return 1 if violations else 0
    finally:
        stop_faults.set()
        stop_work.set()
        stack.stop_all()
        if link is not None:
            link.cut()
        disk.unmount()


def report(
    args: Any,
    machine: str,
    seed: int,
    durations: tuple[float, float],
    faults: Faults,
    world: World,
    figures: dict[str, Any],
    violations: list[str],
) -> None:
    worked, total = durations
    lines = [
        f"### Chaos soak, {timezone.now():%Y-%m-%d %H:%M} UTC",
        "",
        f"`python benchmarks/soak.py --minutes {args.minutes:g}` (seed {seed}); {machine}; "
        f"load average at the end {os.getloadavg()[0]:.1f}.",
        f"{args.orgs} organizations, {args.actors} simulated users, {worked / 60:.1f} min of work and faults "
        f"({total / 60:.1f} min in all, set-up, drain and checks included).",
        "",
        "Faults survived: " + (", ".join(f"{k} ×{v}" for k, v in sorted(faults.counts.items())) or "none"),
        (f"Full-disk fault left out: {faults.disk.unavailable}" if faults.disk.unavailable else ""),
        "",
        "What the users did: " + ", ".join(f"{k} {v}" for k, v in sorted(world.counts.items())),
        "",
    ]
    lines += [f"- {k}: {v}" for k, v in figures.items()]
    if world.reasons:
        lines += ["", "Refusals and errors the users saw:"]
        lines += [f"- {v}× {k}" for k, v in world.reasons.most_common(15)]
    lines += ["", "Fault log:", *[f"- {line}" for line in faults.log]]
    lines += ["", f"**Violations: {len(violations)}**", *[f"- {v}" for v in violations]]
    text = "\n".join(line for line in lines if line is not None)
    print("\n" + text, flush=True)
    if args.results:
        with open(RESULTS, "a") as fh:
            fh.write("\n" + text + "\n")
