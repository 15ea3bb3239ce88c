"""The storage audit: the backups' records against the objects in storage.

Every completed backup's file must exist with its recorded size, and every object under the
backups prefix must belong to a backup. A running backup's file and unfinished multipart upload
are normal, and so are the files failed or expired backups still name (the sweeps remove them).
Findings become ``StorageFinding`` rows (listed in the Django admin) and new ones are mailed to
the operators. Nothing is deleted unless asked (``fix=True``): then orphan objects are deleted and
orphan multipart uploads aborted. Missing or resized files are only reported: what to do with
such a backup is the operators' call.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.files.storage import Storage, default_storage
from django.db.models import Q
from django.utils import timezone

from backups.models import Backup, StorageFinding
from backups.notify import send_templated_mail

logger = logging.getLogger(__name__)

PREFIX = "backups/"
# Backups whose named file may exist without being a completed archive: the job still writes
# it, or a sweep will remove it.
UNSETTLED = (Backup.Status.IN_PROGRESS, Backup.Status.FAILED, Backup.Status.EXPIRED)


@dataclass
class AuditResult:
    backups_checked: int = 0
    objects_checked: int = 0
    found: list[StorageFinding] = field(default_factory=list)  # open after this run
    new: list[StorageFinding] = field(default_factory=list)
    fixed: list[StorageFinding] = field(default_factory=list)


def _key_prefix(storage: Storage) -> str:
    location = (getattr(storage, "location", "") or "").strip("/")
    return f"{location}/{PREFIX}" if location else PREFIX


def _stored_objects(storage: Storage) -> dict[str, int]:
    """Every object under the backups prefix: name -> size."""
    bucket = getattr(storage, "bucket", None)
    if bucket is not None:
        prefix = _key_prefix(storage)
        strip = len(prefix) - len(PREFIX)
        return {obj.key[strip:]: obj.size for obj in bucket.objects.filter(Prefix=prefix)}
    found: dict[str, int] = {}

    def walk(folder: str) -> None:
        try:
            dirs, files = storage.listdir(folder)
        except FileNotFoundError:
            return
        for name in files:
            found[f"{folder}/{name}"] = storage.size(f"{folder}/{name}")
        for sub in dirs:
            walk(f"{folder}/{sub}")

    walk(PREFIX.rstrip("/"))
    return found


def _unfinished_uploads(storage: Storage) -> dict[str, Any]:
    """Unfinished multipart uploads under the backups prefix (S3 only): name -> upload."""
    bucket = getattr(storage, "bucket", None)
    if bucket is None:
        return {}
    prefix = _key_prefix(storage)
    strip = len(prefix) - len(PREFIX)
    return {upload.object_key[strip:]: upload for upload in bucket.multipart_uploads.filter(Prefix=prefix)}


def storage_audit(*, fix: bool = False, storage: Storage | None = None) -> AuditResult:
    """Compare the records with the storage, record the findings and mail new ones."""
    storage = storage or default_storage
    now = timezone.now()
    result = AuditResult()
    # Storage first, records second: a backup that starts in between has its name recorded
    # before it writes, so it is never taken for an orphan.
    stored = _stored_objects(storage)
    uploads = _unfinished_uploads(storage)
    result.objects_checked = len(stored)
    named = dict(Backup.objects.exclude(file="").values_list("file", "status"))
    seen: list[tuple[str, str, dict[str, Any]]] = []

    for backup in Backup.objects.filter(status=Backup.Status.COMPLETED).exclude(file="").order_by("pk"):
        result.backups_checked += 1
        name = backup.file.name
        size = stored.get(name)
        if size is None and not name.startswith(PREFIX) and storage.exists(name):
            size = storage.size(name)
        if size is None:
            seen.append((StorageFinding.Kind.MISSING, name, {"backup": backup, "recorded_size": backup.size}))
        elif backup.size is not None and size != backup.size:
            details = {"backup": backup, "recorded_size": backup.size, "stored_size": size}
            seen.append((StorageFinding.Kind.SIZE, name, details))
    for name, size in sorted(stored.items()):
        if name not in named:
            seen.append((StorageFinding.Kind.ORPHAN, name, {"stored_size": size}))
    for name in sorted(uploads):
        if named.get(name) not in UNSETTLED:
            seen.append((StorageFinding.Kind.UNFINISHED_UPLOAD, name, {}))

    for kind, name, details in seen:
        finding = StorageFinding.objects.filter(kind=kind, name=name, resolved_at__isnull=True).first()
        if finding is None:
            finding = StorageFinding.objects.create(kind=kind, name=name, found_at=now, last_seen_at=now, **details)
            result.new.append(finding)
        else:
            StorageFinding.objects.filter(pk=finding.pk).update(last_seen_at=now, **details)
        if fix and kind in (StorageFinding.Kind.ORPHAN, StorageFinding.Kind.UNFINISHED_UPLOAD):
            try:
                if kind == StorageFinding.Kind.ORPHAN:
                    storage.delete(name)
                    resolution = "Deleted by audit-storage --fix."
                else:
                    uploads[name].abort()
                    resolution = "Aborted by audit-storage --fix."
            except Exception:
                logger.warning("storage audit: could not fix %s", name, exc_info=True)
            else:
                StorageFinding.objects.filter(pk=finding.pk).update(resolved_at=now, resolution=resolution)
                result.fixed.append(finding)
                continue
        result.found.append(finding)
    # Open findings this run did not see again are resolved (someone fixed them, or a sweep did).
    still = Q()
    for kind, name, _details in seen:
        still |= Q(kind=kind, name=name)
    gone = StorageFinding.objects.filter(resolved_at__isnull=True)
    if seen:
        gone = gone.exclude(still)
    gone.update(resolved_at=now, resolution="No longer found by the audit.")

    logger.info(
        "storage audit: %s backups and %s objects checked, %s findings open (%s new), %s fixed",
        result.backups_checked,
        result.objects_checked,
        len(result.found),
        len(result.new),
        len(result.fixed),
    )
    new_open = [f for f in result.new if f not in result.fixed]
    if new_open:
        _mail_operators(new_open, result)
    return result


def operator_emails() -> list[str]:
    """``ADMINS`` (``OPERATOR_EMAILS``), else the active staff users (who use the Django admin)."""
    from accounts.models import User

    emails = [email for _name, email in settings.ADMINS]
    if not emails:
        emails = list(User.objects.filter(is_staff=True, is_active=True).values_list("email", flat=True))
    return sorted({e for e in emails if e})


def _mail_operators(findings: list[StorageFinding], result: AuditResult) -> None:
    to = operator_emails()
    if not to:
        logger.warning("storage audit: %s new findings and no operator to mail (set OPERATOR_EMAILS)", len(findings))
        return
    context = {"findings": findings, "result": result, "admin_url": settings.SITE_URL.rstrip("/") + "/admin/"}
    try:
        send_templated_mail(template="backups/email/storage_audit", to=to, context=context)
    except Exception:
        logger.exception("storage audit: could not mail the operators")
