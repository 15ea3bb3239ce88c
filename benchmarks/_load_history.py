"""The load test's backup history (benchmarks/load_bench.py): 13 days of backups per
organization besides its real one, with the statuses a live installation has (mostly
completed, some failed, expired early, cancelled, one pending or running at the top), their
events, a few download records and verifications. Every completed backup has its own stored
file: a hard link to the organization's real archive, with its size, SHA-256 and wrapped
password. Imported once Django is set up (in the seeding child)."""

from __future__ import annotations

import datetime as dt
import os
import random
import uuid
from pathlib import Path

from django.conf import settings
from django.db import transaction

from backups.models import Backup, BackupDownload, BackupEvent
from benchmarks._load_tenants import Tenants
from organizations.models import OrganisationalUnit

LABELS = ["", "", "", "Before year-end", "Monthly archive", "Before migration", "Audit copy", "Quarter close"]
FAILURES = [
    "The worker running this backup stopped responding; request it again.",
    "Storage error: No space left on device",
    "Storage error: Connection reset by peer",
]


def history_rows(
    tenants: Tenants, real: dict[int, Backup], per_org: int, now: dt.datetime, rng: random.Random
) -> tuple[list[Backup], list[list[OrganisationalUnit]]]:
    """The other backups (not saved yet), newest last, and the OUs each is limited to."""
    users, ous, schedules = tenants.users, tenants.ous, tenants.schedules
    span = dt.timedelta(days=13)
    rows: list[Backup] = []
    scopes: list[list[OrganisationalUnit]] = []
    for i, o in enumerate(tenants.organizations):
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
    return rows, scopes


def save_history(
    tenants: Tenants,
    real: dict[int, Backup],
    rows: list[Backup],
    scopes: list[list[OrganisationalUnit]],
    now: dt.datetime,
    rng: random.Random,
) -> None:
    """Save the rows with their OUs, events and download records; then move each real backup
    to its place in the timeline (the newest but one)."""
    users = tenants.users
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
        for o in tenants.organizations:
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
