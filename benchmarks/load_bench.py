"""Load test: the Account Backups pages at 50 concurrent users, on gunicorn and PostgreSQL.

Usage::

    python benchmarks/load_bench.py                      # 200 organizations, 20,000 backups, 50 users, 90 s
    python benchmarks/load_bench.py --results            # also append the figures to benchmarks/RESULTS.md (make loadtest)
    python benchmarks/load_bench.py --orgs 40 --users 10 --run-time 20s   # a quick try

Steps, all on this machine:

1. a throwaway PostgreSQL database (``--database``, default ``backupsvc_load``, dropped at the
   end) and media folder; ``migrate`` and ``collectstatic`` with production settings
   (``BACKUPSVC_ENV=production``, generated secrets);
2. the tenants, with bulk inserts: per organization an Owner, an Admin, an OU editor and a
   member, 3 to 6 OUs (facilities for every fourth), a subscription, a daily schedule, a few
   clients and matters; then one real backup made through the services (request, claim, run:
   a real encrypted archive) and 99 more backup rows over the last 13 days with the statuses
   a live installation has (mostly completed, some failed, expired early, cancelled, one
   pending or running at the top), their events, a few download records and verifications.
   Every completed backup has its own stored file: a hard link to the organization's real
   archive, with its size, SHA-256 and wrapped password. Then ``ANALYZE``, as autovacuum would;
3. the SQL queries each page makes, counted once through Django's test client;
4. gunicorn (``--workers``/``--threads``) on loopback, as behind a TLS-terminating proxy: the
   client sends ``X-Forwarded-Proto: https`` (production settings trust it), so the secure
   cookies, CSRF origin checks and HSTS of production are all in play, and django-axes stays on
   (every user signs in once, successfully: nothing is locked out);
5. ``locust --headless`` with ``benchmarks/locustfile.py``: each user signs in (login form and
   POST with the CSRF token) as the Owner or an Admin of a different organization, then loops
   over the list page (first page, later pages, filters and sort orders), a backup's details
   and a download, with a think time between requests; it stops by itself after ``--run-time``
   (90 s by default: signing 50 users in takes 10 to 20 s of it). Before it starts, the driver
   waits (at most ``--quiet-wait`` seconds) for the machine's other work to leave the CPUs alone,
   and during the run it samples the CPU time of gunicorn, locust, our PostgreSQL backends and
   everything else, since this machine is shared.

The figures (requests/s, p50/p95/p99, failures per endpoint) come from locust's CSV; pages are
measured once every user has signed in (logins hash a password for about 0.4 s of CPU each and
are reported on their own line). Exits non-zero when any request failed.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import random
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
BIN = Path(PY).parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks._common import (  # noqa: E402
    cpu_pressure,
    free_port,
    machine,
    manage,
    throwaway_env,
    wait_for,
    wait_for_quiet,
)

PG_URL = "postgres://postgres@127.0.0.1:5432"
RESULTS = ROOT / "benchmarks" / "RESULTS.md"
TARGET_P95_MS = 150
# Locust's request names (benchmarks/locustfile.py), in the table's order.
ENDPOINTS = ["login form", "login", "list", "detail", "download"]


# ----------------------------------------------------------------------------------------------
# The throwaway database


def _admin_sql(sql: str) -> None:
    import psycopg

    with psycopg.connect(f"{PG_URL}/postgres", autocommit=True) as conn:
        conn.execute(sql)  # type: ignore[arg-type]


def create_database(name: str) -> None:
    _admin_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    _admin_sql(f'CREATE DATABASE "{name}"')


def drop_database(name: str) -> None:
    _admin_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def bench_env(work: Path, database: str) -> dict[str, str]:
    """Production settings with generated secrets, the throwaway database and media folder."""
    from cryptography.fernet import Fernet

    env = throwaway_env(work)
    env.update(
        DJANGO_SETTINGS_MODULE="backupsvc.settings",
        PYTHONPATH=str(ROOT),
        BACKUPSVC_ENV="production",
        DATABASE_URL=f"{PG_URL}/{database}",
        SECRET_KEY=secrets.token_urlsafe(50),
        BACKUP_KEYS=Fernet.generate_key().decode(),
        RESTORE_CODE_KEY=secrets.token_urlsafe(32),
        ALLOWED_HOSTS="127.0.0.1,localhost",
        STATIC_ROOT=str(work / "static"),
        AWS_STORAGE_BUCKET_NAME="",
        CELERY_BROKER_URL="filesystem://",
    )
    return env


# ----------------------------------------------------------------------------------------------
# Seeding (runs in a child process with the benchmark's settings: ``load_bench.py _seed ...``)

FIRST_NAMES = ["Anna", "Ben", "Chloe", "David", "Elena", "Farid", "Greta", "Hugo", "Ines", "Jonas", "Kira", "Lars"]
LAST_NAMES = ["Adler", "Brennan", "Castillo", "Dufour", "Engel", "Fischer", "Grant", "Holm", "Ivers", "Jansen"]
FIRMS = ["Legal", "Partners", "Advisory", "Chambers", "Notaries", "Tax & Audit", "Consulting", "Law"]
LABELS = ["", "", "", "Before year-end", "Monthly archive", "Before migration", "Audit copy", "Quarter close"]
FAILURES = [
    "The worker running this backup stopped responding; request it again.",
    "Storage error: No space left on device",
    "Storage error: Connection reset by peer",
]


def seed(orgs: int, per_org: int, logins: int, out: Path) -> None:
    """Build the tenants and backups (see the module docstring) and write the logins to ``out``."""
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth.hashers import make_password
    from django.core.files.storage import default_storage
    from django.db import connection, transaction
    from django.utils import timezone

    from accounts.models import Membership, OURoleAssignment, User
    from backups.models import Backup, BackupDownload, BackupEvent, BackupSchedule
    from backups.services import backup_claim, backup_request, backup_run
    from organizations.demo.seeder import seed_master_data
    from organizations.models import (
        Client,
        Facility,
        Matter,
        OrganisationalUnit,
        Organization,
        OrganizationSetting,
        Subscription,
    )
    from organizations.services import system_roles_ensure

    rng = random.Random(2026)
    started = time.monotonic()
    now = timezone.now()
    password = secrets.token_urlsafe(18)
    hashed = make_password(password)  # hashed once: the same password for every user
    editor = system_roles_ensure()
    mdv = max(seed_master_data().values(), key=lambda v: v.released_on)

    with transaction.atomic():
        organizations = Organization.objects.bulk_create(
            [
                Organization(
                    slug=f"load-{i:03d}",
                    name=f"{LAST_NAMES[i % len(LAST_NAMES)]} {FIRMS[i % len(FIRMS)]} {i:03d}",
                    description="A load-test tenant.",
                    license_identifier=f"LIC-L{i:05d}",
                    jurisdiction="England and Wales" if i % 2 else "Germany",
                    master_data_version=mdv,
                    language_settings={"default": "en", "available": ["en", "de"]},
                    creation_wizard_data={"size": "small", "sector": "legal"},
                    created_at=now - dt.timedelta(days=400 - i),
                )
                for i in range(orgs)
            ]
        )
        today = timezone.localdate()
        Subscription.objects.bulk_create(
            Subscription(
                organization=o, starts_on=today - dt.timedelta(days=200), ends_on=today + dt.timedelta(days=165)
            )
            for o in organizations
        )
        facilities: dict[int, list[Facility]] = {}
        for i, o in enumerate(organizations):
            if i % 4 == 0:  # an enterprise account: two sites
                facilities[o.pk] = [Facility(organization=o, name=f"Site {n}", code=f"S{n}") for n in (1, 2)]
        Facility.objects.bulk_create(f for fs in facilities.values() for f in fs)
        ous: dict[int, list[OrganisationalUnit]] = {}
        for i, o in enumerate(organizations):
            sites = facilities.get(o.pk, [])
            ous[o.pk] = [
                OrganisationalUnit(
                    organization=o,
                    name=["Head office", "Litigation", "Corporate", "Private clients", "Tax", "Employment"][n],
                    code=f"OU{n + 1}",
                    facility=sites[n % 2] if sites else None,
                )
                for n in range(3 + i % 4)
            ]
        OrganisationalUnit.objects.bulk_create(ou for group in ous.values() for ou in group)

        roles = ("owner", "admin", "editor", "member")
        users: dict[int, dict[str, User]] = {}
        for i, o in enumerate(organizations):
            users[o.pk] = {
                role: User(
                    email=f"{role}.{o.slug}@load.test",
                    full_name=f"{FIRST_NAMES[(i + n) % len(FIRST_NAMES)]} {LAST_NAMES[(i * 3 + n) % len(LAST_NAMES)]}",
                    password=hashed,
                )
                for n, role in enumerate(roles)
            }
        User.objects.bulk_create(u for group in users.values() for u in group.values())
        member_role = {"owner": Membership.Role.OWNER, "admin": Membership.Role.ADMIN}
        Membership.objects.bulk_create(
            Membership(user=u, organization_id=org_pk, role=member_role.get(role, Membership.Role.MEMBER))
            for org_pk, group in users.items()
            for role, u in group.items()
        )
        assignments = []
        for i, o in enumerate(organizations):
            group, units = users[o.pk], ous[o.pk]
            # The Admin holds Manage Account Backups in every OU, except in every fifth
            # organization (all OUs but the last: sees only backups scoped to the others).
            admin_ous = units[:-1] if i % 5 == 3 else units
            assignments += [OURoleAssignment(user=group["admin"], ou=ou, role=editor) for ou in admin_ous]
            assignments.append(OURoleAssignment(user=group["editor"], ou=units[0], role=editor))
        OURoleAssignment.objects.bulk_create(assignments)
        OrganizationSetting.objects.bulk_create(
            OrganizationSetting(organization=o, key=key, value=value)
            for o in organizations
            for key, value in (
                ("billing.currency", "GBP"),
                ("billing.payment_terms_days", 30),
                ("security.session_timeout_minutes", 30),
            )
        )
        clients = Client.objects.bulk_create(
            Client(organization=o, ou=ous[o.pk][n % len(ous[o.pk])], name=f"Client {n + 1} of {o.name}")
            for o in organizations
            for n in range(4)
        )
        Matter.objects.bulk_create(
            Matter(
                organization_id=c.organization_id,
                ou_id=c.ou_id,
                client=c,
                reference=f"M-{c.pk:06d}",
                title=f"Matter for {c.name}",
                opened_on=today - dt.timedelta(days=90),
            )
            for c in clients
        )
        schedules = {
            s.organization_id: s
            for s in BackupSchedule.objects.bulk_create(
                BackupSchedule(organization=o, created_by=users[o.pk]["owner"], keep_last=14) for o in organizations
            )
        }
    seeded_tenants = time.monotonic() - started

    # One real archive per organization, through the services a worker runs.
    t0 = time.monotonic()
    real: dict[int, Backup] = {}
    for o in organizations:
        requested, _ = backup_request(
            organization=o, requested_by=users[o.pk]["owner"], label="Baseline", dispatch=False
        )
        claimed = backup_claim(backup_id=requested.pk)
        if claimed is None:
            raise RuntimeError(f"backup {requested.pk} could not be claimed")
        done = backup_run(backup=claimed)
        if done.status != Backup.Status.COMPLETED:
            raise RuntimeError(f"backup {done.pk} of {o.slug} ended {done.status}: {done.failure_reason}")
        real[o.pk] = done
    archives_seconds = time.monotonic() - t0

    # The other backups: 13 days of history per organization, newest last.
    t0 = time.monotonic()
    span = dt.timedelta(days=13)
    rows: list[Backup] = []
    scopes: list[list[OrganisationalUnit]] = []
    for i, o in enumerate(organizations):
        group, units, base = users[o.pk], ous[o.pk], real[o.pk]
        source = Path(settings.MEDIA_ROOT) / base.file.name
        requesters = [group["owner"], group["admin"], group["editor"]]
        for k in range(per_org - 1):
            newest = k == per_org - 2
            created = now - span + span * k / per_org + dt.timedelta(seconds=rng.randint(0, 600))
            if newest:
                created = now - dt.timedelta(minutes=rng.randint(2, 10))
            if newest and i % 3 == 0:
                status = Backup.Status.PENDING
            elif newest and i % 10 == 1:
                status = Backup.Status.IN_PROGRESS
            else:
                status = rng.choices(
                    [Backup.Status.COMPLETED, Backup.Status.FAILED, Backup.Status.EXPIRED, Backup.Status.CANCELLED],
                    weights=[85, 6, 5, 4],
                )[0]
            kind = rng.choices(
                [Backup.Kind.SCHEDULED, Backup.Kind.MANUAL, Backup.Kind.PRE_RESTORE], weights=[70, 27, 3]
            )[0]
            requester = {
                Backup.Kind.SCHEDULED: None,
                Backup.Kind.MANUAL: rng.choice(requesters),
                Backup.Kind.PRE_RESTORE: rng.choice(requesters[:2]),
            }[kind]
            explicit = kind == Backup.Kind.MANUAL and rng.random() < 0.5
            scope = rng.sample(units, rng.randint(1, len(units) - 1)) if explicit else []
            if requester is not None and requester == group["editor"]:
                scope = [units[0]]  # the editor may back up their one OU only
            b = Backup(
                organization=o,
                kind=kind,
                label={Backup.Kind.MANUAL: rng.choice(LABELS), Backup.Kind.PRE_RESTORE: "Before restore"}.get(kind, ""),
                status=status,
                requested_by=requester,
                schedule=schedules[o.pk] if kind == Backup.Kind.SCHEDULED else None,
                all_ous=not scope,
                datasets=base.datasets,
                password_wrapped=base.password_wrapped,
                password_source=base.password_source,
                created_at=created,
            )
            started_at = created + dt.timedelta(seconds=rng.randint(5, 900))
            if status != Backup.Status.PENDING and status != Backup.Status.CANCELLED:
                b.started_at = started_at
                b.heartbeat_at = started_at
                b.worker = f"worker-{rng.randint(1, 3)}:{rng.randint(1000, 9999)}"
                b.attempts = 1
                b.progress_items_total = b.progress_items_done = sum(
                    sum(c.values()) for c in (base.row_counts or {}).values()
                )
            if status == Backup.Status.CANCELLED:
                b.cancelled_at = created + dt.timedelta(seconds=rng.randint(5, 300))
            elif status == Backup.Status.IN_PROGRESS:
                b.heartbeat_at = now - dt.timedelta(seconds=1)
                b.progress_items_done = b.progress_items_total // 2
            elif status == Backup.Status.FAILED:
                b.failed_at = started_at + dt.timedelta(seconds=rng.randint(10, 600))
                b.failure_reason = rng.choice(FAILURES)
            elif status in (Backup.Status.COMPLETED, Backup.Status.EXPIRED):
                b.completed_at = started_at + dt.timedelta(seconds=rng.randint(10, 120))
                b.size, b.sha256 = base.size, base.sha256
                b.document_count, b.row_counts, b.captured = base.document_count, base.row_counts, base.captured
                b.download_expires_at = b.completed_at + settings.BACKUP_DOWNLOAD_LIFETIME
                if status == Backup.Status.EXPIRED:
                    b.expired_at = b.completed_at + dt.timedelta(hours=rng.randint(1, 48))
                else:
                    name = f"backups/{uuid.uuid4().hex}.zip"
                    os.link(source, Path(settings.MEDIA_ROOT) / name)
                    b.file = name
                    if rng.random() < 0.15:  # the weekly verification
                        b.last_verified_at = b.completed_at + dt.timedelta(hours=rng.randint(1, 72))
                        b.verification_ok = rng.random() < 0.97
                        b.verification_message = (
                            "Every hash matched; the restore rehearsal passed."
                            if b.verification_ok
                            else "Member data/clients/client.jsonl: SHA-256 mismatch."
                        )
            rows.append(b)
            scopes.append(scope)

    with transaction.atomic():
        Backup.objects.bulk_create(rows, batch_size=2000)
        Backup.ous.through.objects.bulk_create(
            (
                Backup.ous.through(backup_id=b.pk, organisationalunit_id=ou.pk)
                for b, scope in zip(rows, scopes, strict=True)
                for ou in scope
            ),
            batch_size=5000,
        )
        events: list[BackupEvent] = []
        downloads: list[BackupDownload] = []
        for b in rows:
            events.append(
                BackupEvent(
                    backup=b,
                    status=Backup.Status.PENDING,
                    message="Requested",
                    actor=b.requested_by,
                    created_at=b.created_at,
                )
            )
            if b.started_at:
                events.append(
                    BackupEvent(
                        backup=b,
                        status=Backup.Status.IN_PROGRESS,
                        message=f"Started on {b.worker}",
                        created_at=b.started_at,
                    )
                )
            if b.cancelled_at:
                events.append(
                    BackupEvent(
                        backup=b, status=b.status, message="Cancelled", actor=b.requested_by, created_at=b.cancelled_at
                    )
                )
            if b.failed_at:
                events.append(BackupEvent(backup=b, status=b.status, message=b.failure_reason, created_at=b.failed_at))
            if b.completed_at:
                events.append(
                    BackupEvent(
                        backup=b,
                        status=Backup.Status.COMPLETED,
                        message=f"{b.document_count} documents, {b.size} bytes",
                        created_at=b.completed_at,
                    )
                )
            if b.expired_at:
                owner = users[b.organization_id]["owner"]
                events.append(
                    BackupEvent(
                        backup=b, status=b.status, message="Expired early", actor=owner, created_at=b.expired_at
                    )
                )
            if b.file and rng.random() < 0.1:
                who = users[b.organization_id]["admin"]
                downloads += [
                    BackupDownload(
                        backup=b,
                        user=who,
                        user_email=who.email,
                        downloaded_at=b.completed_at + dt.timedelta(hours=n + 1),  # type: ignore[operator]
                        ip_address="203.0.113.7",
                        user_agent="Mozilla/5.0 (X11; Linux x86_64) Firefox/131.0",
                    )
                    for n in range(rng.randint(1, 2))
                ]
        BackupEvent.objects.bulk_create(events, batch_size=5000)
        BackupDownload.objects.bulk_create(downloads, batch_size=5000)
        # The real backup takes its place in the timeline: the newest but one.
        when = now - dt.timedelta(minutes=20)
        for o in organizations:
            b = real[o.pk]
            shift = when - b.created_at
            Backup.objects.filter(pk=b.pk).update(
                created_at=when,
                started_at=b.started_at + shift,  # type: ignore[operator]
                completed_at=b.completed_at + shift,  # type: ignore[operator]
                heartbeat_at=b.heartbeat_at + shift,  # type: ignore[operator]
                download_expires_at=b.download_expires_at + shift,  # type: ignore[operator]
            )
            for event in BackupEvent.objects.filter(backup=b):
                BackupEvent.objects.filter(pk=event.pk).update(created_at=event.created_at + shift)
    rows_seconds = time.monotonic() - t0
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")  # the planner statistics autovacuum keeps on a live installation

    # Logins: the Owner or the Admin of organizations spread over the whole set.
    step = max(1, orgs // logins)
    chosen = [organizations[(n * step) % orgs] for n in range(logins)]
    credentials = [
        {"email": users[o.pk]["owner" if n % 2 == 0 else "admin"].email, "password": password, "organization": o.slug}
        for n, o in enumerate(chosen)
    ]
    counts = {s: Backup.objects.filter(status=s).count() for s in Backup.Status.values}
    summary = {
        "organizations": Organization.objects.count(),
        "users": User.objects.count(),
        "ous": OrganisationalUnit.objects.count(),
        "backups": Backup.objects.count(),
        "statuses": counts,
        "events": BackupEvent.objects.count(),
        "downloads": BackupDownload.objects.count(),
        "stored_files": Backup.objects.exclude(file="").count(),
        "archive_bytes": real[organizations[0].pk].size,
        "seconds": {
            "tenants": round(seeded_tenants, 1),
            "real_archives": round(archives_seconds, 1),
            "backup_rows": round(rows_seconds, 1),
        },
        "queries": count_queries(credentials[0]["email"], credentials[1]["email"]),
    }
    assert default_storage.exists(real[organizations[0].pk].file.name)  # noqa: S101
    out.write_text(json.dumps({"logins": credentials, "summary": summary}, indent=2))


def count_queries(*emails: str) -> dict[str, int]:
    """SQL queries per page for an Owner and an Admin (the most either needs), through the test client."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from accounts.models import User

    worst: dict[str, int] = {}
    for email in emails:
        client = Client(HTTP_HOST="127.0.0.1")
        client.force_login(User.objects.get(email=email))
        first = client.get("/backups/", secure=True).content.decode()
        pk = re.findall(r'href="/backups/(\d+)/download/"', first)[0]
        pages = {
            "list": "/backups/",
            "list page 3": "/backups/?page=3",
            "list filtered": "/backups/?status=completed&kind=manual&sort=-size",
            "detail": f"/backups/{pk}/",
            "download": f"/backups/{pk}/download/",
        }
        for label, path in pages.items():
            with CaptureQueriesContext(connection) as ctx:
                response = client.get(path, secure=True)
                if response.streaming:
                    b"".join(response.streaming_content)  # type: ignore[arg-type]
            if response.status_code != 200:
                raise RuntimeError(f"{path} as {email}: HTTP {response.status_code}")
            worst[label] = max(worst.get(label, 0), len(ctx.captured_queries))
    return worst


# ----------------------------------------------------------------------------------------------
# Who used the CPUs during the run (the machine is shared with other work)

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


# ----------------------------------------------------------------------------------------------
# The run


def read_stats(path: Path) -> dict[str, dict[str, str]]:
    with path.open(newline="") as fh:
        return {row["Name"]: row for row in csv.DictReader(fh)}


def ms(value: str) -> str:
    return f"{float(value):.0f}" if value not in ("", "N/A") else "—"


def report(
    stats: dict[str, dict[str, str]],
    summary: dict[str, Any],
    args: argparse.Namespace,
    command: str,
    gunicorn_cmd: str,
    locust_cmd: str,
    steady: float | None,
    cpu: tuple[str, float],
) -> tuple[str, int, float | None]:
    """The markdown section, the number of failed requests and the list page's p95."""
    lines = [
        f"## Load test: the Account Backups pages at {args.users} concurrent users",
        "",
        f"- command: `{command}`",
        f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        f"- machine: {machine()}; PostgreSQL {postgres_version()} on the same machine, locust on the same cores",
        f"- server: `{gunicorn_cmd}`, `BACKUPSVC_ENV=production` (generated secrets, DEBUG off, "
        "secure cookies, HSTS, django-axes on), local file storage; requests carry `X-Forwarded-Proto: https` as "
        "from a TLS-terminating proxy",
        f"- load: `{locust_cmd}`; think time {args.wait_min:g}–{args.wait_max:g} s between requests; "
        "each user signs in once as the Owner or an Admin of a different organization, then loops: list page "
        "(first page 50 %, pages 2–4 20 %, a status/type/date filter 20 %, another sort order 10 %), "
        "details of a backup from that page, download of a downloadable one",
    ]
    s = summary
    st = s["statuses"]
    lines.append(
        f"- data: {s['organizations']} organizations, {s['users']} users, {s['ous']} OUs, {s['backups']:,} backups "
        f"({', '.join(f'{n:,} {k}' for k, n in st.items() if n)}), {s['events']:,} events, "
        f"{s['downloads']:,} download records, {s['stored_files']:,} stored archives of {s['archive_bytes']:,} bytes "
        f"(seeded in {sum(s['seconds'].values()):.0f} s)"
    )
    q = s["queries"]
    lines.append(
        "- SQL queries per page (test client, most of an Owner and an Admin): "
        + ", ".join(f"{k} {v}" for k, v in q.items())
    )
    if steady is not None:
        lines.append(f"- pages measured for {steady:.0f} s, once all {args.users} users had signed in")
    pages_rps = sum(float(stats[n]["Requests/s"]) for n in ("list", "detail", "download") if n in stats)
    if cpu[0]:
        per_request = f"; gunicorn: about {1000 * cpu[1] / pages_rps:.0f} ms of CPU per page" if pages_rps else ""
        lines.append(f"- CPU while pages were measured: {cpu[0]}{per_request}")
    lines += [
        "",
        "| endpoint | requests | failures | requests/s | p50 ms | p95 ms | p99 ms | max ms |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    failures = 0
    for name in ENDPOINTS:
        row = stats.get(name)
        if row is None:
            continue
        failures += int(row["Failure Count"])
        rps = float(row["Requests/s"])
        lines.append(
            f"| {name} | {int(row['Request Count']):,} | {int(row['Failure Count'])} | {rps:.1f} | "
            f"{ms(row['50%'])} | {ms(row['95%'])} | {ms(row['99%'])} | {ms(row['Max Response Time'])} |"
        )
    total = stats.get("Aggregated")
    if total is not None:
        failures = max(failures, int(total["Failure Count"]))
    lines.append(f"| **pages together** | | | **{pages_rps:.1f}** | | | | |")
    list_p95 = float(stats["list"]["95%"]) if "list" in stats and stats["list"]["95%"] not in ("", "N/A") else None
    verdict = "met" if list_p95 is not None and list_p95 < TARGET_P95_MS else "missed"
    lines += [
        "",
        f"- list page p95: **{list_p95:.0f} ms** (target < {TARGET_P95_MS} ms: {verdict}); failed requests: **{failures}**"
        if list_p95 is not None
        else "- list page: no request measured",
        "- percentiles are locust's (rounded to 2 significant digits above 100 ms); requests/s per endpoint "
        "from its first to its last request",
    ]
    return "\n".join(lines) + "\n", failures, list_p95


def postgres_version() -> str:
    import psycopg

    with psycopg.connect(f"{PG_URL}/postgres") as conn:
        row = conn.execute("SHOW server_version").fetchone()
    return str(row[0]).split()[0] if row else "?"


def stop(process: subprocess.Popen[bytes] | None) -> None:
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "_seed":
        seed(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), Path(sys.argv[5]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orgs", type=int, default=200)
    parser.add_argument("--backups-per-org", type=int, default=100)
    parser.add_argument("--users", type=int, default=50, help="concurrent locust users (default 50)")
    parser.add_argument("--spawn-rate", type=float, default=10)
    parser.add_argument("--run-time", default="90s", help="locust's --run-time (default 90s)")
    parser.add_argument("--wait-min", type=float, default=1.0, help="think time between requests, seconds")
    parser.add_argument("--wait-max", type=float, default=3.0)
    parser.add_argument("--workers", type=int, default=4, help="gunicorn worker processes")
    parser.add_argument("--threads", type=int, default=1, help="threads per worker (>1: the gthread worker)")
    parser.add_argument("--database", default="backupsvc_load")
    parser.add_argument(
        "--quiet-wait", type=float, default=120, help="wait up to this many seconds for idle CPUs before the load"
    )
    parser.add_argument("--workdir", type=Path, help="folder for the throwaway installation (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder and the database")
    parser.add_argument("--results", action="store_true", help="append the figures to benchmarks/RESULTS.md")
    args = parser.parse_args()
    if args.users > args.orgs:
        parser.error("each user needs an organization of their own: --users must not exceed --orgs")

    work = args.workdir or Path(tempfile.mkdtemp(prefix="load-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    env = bench_env(work, args.database)
    server: subprocess.Popen[bytes] | None = None
    log = None
    failed = False
    try:
        t0 = time.monotonic()
        create_database(args.database)
        manage(env, "migrate", "--no-input", "-v", "0")
        manage(env, "collectstatic", "--no-input", "-v", "0")
        print(f"database {args.database} migrated in {time.monotonic() - t0:.0f} s", file=sys.stderr)

        t0 = time.monotonic()
        seeded = work / "seeded.json"
        with (work / "seed.log").open("wb") as seed_log:  # the notification e-mails are echoed there
            done = subprocess.run(
                [PY, __file__, "_seed", str(args.orgs), str(args.backups_per_org), str(args.users), str(seeded)],
                cwd=ROOT,
                env=env,
                stdout=seed_log,
                stderr=subprocess.STDOUT,
                check=False,
            )
        if done.returncode:
            failed = True
            raise SystemExit(f"seeding failed; see {work / 'seed.log'}")
        data = json.loads(seeded.read_text())
        summary = data["summary"]
        (work / "logins.json").write_text(json.dumps(data["logins"]))
        print(f"seeded in {time.monotonic() - t0:.0f} s: {json.dumps(summary)}", file=sys.stderr)

        port = free_port()
        gunicorn = [
            str(BIN / "gunicorn"),
            "backupsvc.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(args.workers),
            *(["--worker-class", "gthread", "--threads", str(args.threads)] if args.threads > 1 else []),
            "--timeout",
            "60",
            "--no-control-socket",
            "--access-logfile",
            str(work / "access.log"),
        ]
        log = (work / "server.log").open("wb")
        server = subprocess.Popen(gunicorn, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        wait_for(port)

        prefix = work / "locust"
        locust = [
            str(BIN / "locust"),
            "-f",
            "benchmarks/locustfile.py",
            "--headless",
            "-u",
            str(args.users),
            "-r",
            f"{args.spawn_rate:g}",
            "--run-time",
            args.run_time,
            "--host",
            f"http://127.0.0.1:{port}",
            "--csv",
            str(prefix),
            "--only-summary",
            "--stop-timeout",
            "10",
        ]
        locust_env = {
            **os.environ,
            "LOAD_LOGINS": str(work / "logins.json"),
            "LOAD_WAIT": f"{args.wait_min},{args.wait_max}",
            "LOAD_MARKS": str(work / "marks.json"),
        }
        wait_for_quiet(args.quiet_wait)
        pressure = cpu_pressure()
        print(f"locust: {args.users} users for {args.run_time} against gunicorn on port {port}", file=sys.stderr)
        runner = subprocess.Popen(locust, cwd=ROOT, env=locust_env)
        sampler = CpuSampler(server.pid, runner.pid, args.database)
        sampler.start()
        returncode = runner.wait()
        sampler.done.set()
        sampler.join()
        stop(server)
        server = None

        stats = read_stats(Path(f"{prefix}_stats.csv"))
        marks = json.loads((work / "marks.json").read_text()) if (work / "marks.json").exists() else {}
        steady = marks["stopped"] - marks["all_signed_in"] if "all_signed_in" in marks and "stopped" in marks else None
        server_cmd = (
            f"gunicorn backupsvc.wsgi --workers {args.workers}"
            + (f" --worker-class gthread --threads {args.threads}" if args.threads > 1 else " (sync workers)")
            + " --access-logfile FILE"
        )
        locust_cmd = f"locust -f benchmarks/locustfile.py --headless -u {args.users} -r {args.spawn_rate:g} --run-time {args.run_time}"
        command = "python " + " ".join([os.path.relpath(sys.argv[0], ROOT), *sys.argv[1:]])
        text, gunicorn_cores = (
            sampler.between(marks["all_signed_in"], marks["stopped"]) if steady is not None else ("", 0.0)
        )
        cpu = (f"{text}; CPU pressure (PSI avg10) {pressure:.0f} % when the load started", gunicorn_cores)
        text, failures, _ = report(stats, summary, args, command, server_cmd, locust_cmd, steady, cpu)
        print(text)
        if args.results:
            with RESULTS.open("a") as fh:
                fh.write("\n" + text)
        errors = work / "locust_failures.csv"
        if failures and errors.exists():
            print(errors.read_text(), file=sys.stderr)
        if failures or returncode:
            print(
                f"FAILED: {failures} failed requests, locust exit {returncode}; logs kept in {work}",
                file=sys.stderr,
            )
            failed = True
            return 1
        return 0
    finally:
        stop(server)
        if log is not None:
            log.close()
        if not args.keep:
            drop_database(args.database)
            if not args.workdir and not failed:
                shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
