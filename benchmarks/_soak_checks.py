"""The soak's final checks (benchmarks/soak.py), run once the workers are stopped and the stale
sweeps have run: each returns the figures it found and appends what is wrong to ``violations``."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import Counter
from typing import Any

from django.conf import settings
from django.utils import timezone

from backups.models import Backup
from backups.services import backups_fail_stale
from backups.verify import backup_verify
from organizations import models as om
from restores.models import Restore
from restores.services import restores_fail_stale
from tests.support.faults import referenced_files


def final_sweeps() -> dict[str, int]:
    """Beat's two stale sweeps, with the clock moved past their limits (no worker runs now: any
    job still in progress is dead), as beat would run them later."""
    now = timezone.now()
    stale = settings.BACKUP_HEARTBEAT_STALE_AFTER
    restore_limit = dt.timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT) + stale
    return {
        "backups failed by the final sweep": backups_fail_stale(now=now + stale + dt.timedelta(minutes=1)),
        "restores failed by the final sweep": restores_fail_stale(now=now + restore_limit + dt.timedelta(minutes=1)),
    }


def check_backups(violations: list[str]) -> dict[str, Any]:
    """Every backup final: completed and verifiable now (decrypted, every hash checked), or
    failed with a reason, or expired/cancelled; never pending or in progress."""
    by_outcome: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    # What the verifications during the run found (under faults), before this check re-verifies.
    verified = Backup.objects.exclude(last_verified_at=None)
    in_run = Counter(verified.filter(verification_ok=False).values_list("verification_message", flat=True))
    figures: dict[str, Any] = {
        "verifications during the run": f"{verified.count()} backups, {verified.filter(verification_ok=True).count()} "
        f"passed; failed: {dict(in_run) or 'none'}"
    }
    for backup in Backup.objects.order_by("pk"):
        key = f"{backup.get_kind_display().lower()} {backup.status}"
        by_outcome[key] += 1
        if backup.status == Backup.Status.COMPLETED:
            checked = backup_verify(backup=backup)
            if not checked.verification_ok:
                violations.append(
                    f"backup {backup.pk} is completed but does not verify: {checked.verification_message}"
                )
        elif backup.status == Backup.Status.FAILED:
            if not backup.failure_reason.strip():
                violations.append(f"backup {backup.pk} failed without a reason")
            reasons[backup.failure_reason[:110]] += 1
        elif backup.status in (Backup.Status.PENDING, Backup.Status.IN_PROGRESS):
            violations.append(f"backup {backup.pk} ({backup.label or backup.kind}) is still {backup.status}")
        elif backup.file:
            violations.append(f"backup {backup.pk} is {backup.status} but still names a file")
    figures["backups by outcome"] = dict(sorted(by_outcome.items()))
    figures["backup failure reasons"] = dict(reasons)
    return figures


def check_restores(violations: list[str], confirmed: list[int]) -> dict[str, Any]:
    by_outcome: Counter[str] = Counter(Restore.objects.values_list("status", flat=True))
    reasons: Counter[str] = Counter()
    for restore in Restore.objects.filter(status__in=Restore.ACTIVE_STATUSES):
        violations.append(f"restore {restore.pk} is still {restore.status}")
    for restore in Restore.objects.filter(status=Restore.Status.FAILED):
        if not restore.failure_reason.strip():
            violations.append(f"restore {restore.pk} failed without a reason")
        reasons[restore.failure_reason[:110]] += 1
    lost = set(confirmed) - set(Restore.objects.filter(pk__in=confirmed).values_list("pk", flat=True))
    if lost:
        violations.append(f"restores confirmed but not in the database: {sorted(lost)}")
    return {"restores by outcome": dict(sorted(by_outcome.items())), "restore failure reasons": dict(reasons)}


def check_requests(violations: list[str], labels: list[str]) -> dict[str, int]:
    """Every backup request the web confirmed is in the database with a final state."""
    found = dict(Backup.objects.filter(label__in=labels).values_list("label", "status"))
    for label in labels:
        if label not in found:
            violations.append(f"request lost: backup “{label}” was confirmed to its requester but has no row")
        elif found[label] in (Backup.Status.PENDING, Backup.Status.IN_PROGRESS):
            violations.append(f"request stuck: backup “{label}” is {found[label]}")
    return {"manual backup requests accepted": len(labels), "of them in the database": len(found)}


def check_maintenance(violations: list[str]) -> dict[str, int]:
    stuck = list(om.Organization.objects.exclude(maintenance_since=None).values_list("slug", "maintenance_reason"))
    for slug, reason in stuck:
        violations.append(f"organization {slug} left in maintenance ({reason})")
    return {"organizations in maintenance": len(stuck)}


def check_bucket(violations: list[str], stack: Any) -> dict[str, int]:
    """The bucket holds exactly the files rows point at; no unfinished multipart upload."""
    stored, wanted = stack.object_keys(), referenced_files()
    orphans, lost, uploads = stored - wanted, wanted - stored, stack.unfinished_uploads()
    for name in sorted(orphans):
        violations.append(f"orphan object {name}{_whose(stack, name)}")
    for name in sorted(lost):
        violations.append(f"file lost: {name} is referenced but not stored")
    for key in uploads:
        violations.append(f"unfinished multipart upload {key}")
    return {
        "objects in the bucket": len(stored),
        "orphan objects": len(orphans),
        "files lost": len(lost),
        "unfinished multipart uploads": len(uploads),
    }


def _whose(stack: Any, name: str) -> str:
    """Which backup an orphan archive was (keys are opaque: found by the content's SHA-256)."""
    if not name.startswith("backups/"):
        return ""
    body = stack.s3_client().get_object(Bucket=stack.bucket, Key=name)["Body"].read()
    backup = Backup.objects.filter(sha256=hashlib.sha256(body).hexdigest()).first()
    if backup is None:
        return " (no backup has its SHA-256)"
    return f" (the archive of backup {backup.pk}, {backup.get_kind_display().lower()}, now {backup.status})"
