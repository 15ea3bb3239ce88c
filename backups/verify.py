"""Verification of a stored backup: decrypt it, check every hash, record the result.

Used by ``manage.py backup verify`` and meant for the Verify button and the weekly beat job.
The archive is read with the key ring's copy of its password, so nobody types one. Reading
happens outside any transaction (it can take minutes); only the result is written atomically.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from typing import Any

from django.conf import settings
from django.core.files.storage import Storage, default_storage
from django.db import transaction
from django.db.models import DateTimeField, F, OuterRef, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from accounts.models import User
from accounts.services import audit_log
from backups.archive import ArchiveError, ArchiveReader, Limits
from backups.export import current_schema
from backups.keys import PasswordUnavailable, unwrap_password
from backups.models import Backup, BackupEvent
from backups.services import IllegalTransition
from backups.services.common import BackupError, _event
from backups.services.reasons import storage_failure
from backups.storage_io import open_for_reading

logger = logging.getLogger(__name__)

CHUNK_SIZE = 1024 * 1024


NOT_CHECKED = "Could not be checked: "  # how the timeline says a verification found no answer
_NEVER = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)  # before any result, for a backup never verified


class VerificationFailed(Exception):
    """Internal: the archive did not pass; the message is the sentence recorded on the backup."""


class VerificationNotChecked(BackupError):
    """The archive could not be read (the file storage could not be reached): no result, neither
    passed nor failed. The message is the sentence on the backup's timeline."""


def _not_checked_since(last_verified_at: F | OuterRef) -> QuerySet[BackupEvent]:
    """Verifications that could not check the archive, later than the backup's last result
    (``last_verified_at``: that column of the backup the events are filtered to), newest first."""
    since = Coalesce(last_verified_at, Value(_NEVER, output_field=DateTimeField()))
    return BackupEvent.objects.filter(message__startswith=NOT_CHECKED, created_at__gt=since).order_by(
        "-created_at", "-id"
    )


def not_checked_since_verified(backup: Backup) -> BackupEvent | None:
    """The latest verification that could not check the archive, if none gave a result since."""
    return _not_checked_since(F("backup__last_verified_at")).filter(backup=backup).first()


def with_not_checked(backups: QuerySet[Backup]) -> QuerySet[Backup]:
    """``backups`` with ``not_checked_at`` and ``not_checked_message`` (the timeline's sentence)
    of ``not_checked_since_verified`` (None when there is none), in the same query: the list
    shows it on every row."""
    latest = _not_checked_since(OuterRef("last_verified_at")).filter(backup=OuterRef("pk"))
    return backups.annotate(
        not_checked_at=Subquery(latest.values("created_at")[:1]),
        not_checked_message=Subquery(latest.values("message")[:1]),
    )


def archive_limits() -> Limits:
    """The expansion limits (zip-bomb protection) every reader of a backup applies, from settings."""
    return Limits(max_total_size=settings.BACKUP_MAX_EXPANDED_SIZE, max_ratio=float(settings.BACKUP_MAX_RATIO))


def _file_digest(fh: Any) -> tuple[int, str]:
    fh.seek(0)
    digest = hashlib.sha256()
    size = 0
    while chunk := fh.read(CHUNK_SIZE):
        digest.update(chunk)
        size += len(chunk)
    return size, digest.hexdigest()


def _check(backup: Backup, storage: Storage) -> str:
    """Verify the stored archive of ``backup``; return the success sentence or raise ``VerificationFailed``."""
    try:
        password = unwrap_password(backup.password_wrapped)
    except PasswordUnavailable as exc:
        raise VerificationFailed(str(exc)) from exc
    try:
        fh = open_for_reading(storage, backup.file.name)
    except FileNotFoundError as exc:
        raise VerificationFailed("The archive file is missing from storage.") from exc
    except OSError as exc:
        raise VerificationFailed(f"The archive could not be opened from storage: {exc.strerror or exc}.") from exc
    try:
        with fh:
            reader = ArchiveReader(fh, password, limits=archive_limits(), current_schema=current_schema())
            manifest = reader.verify()
            member_count = len(reader.names)
            # The archive passed its own checks; make sure it is the very file written for this
            # backup (not another valid archive put in its place).
            meta = manifest.get("backup") if isinstance(manifest.get("backup"), dict) else {}
            org = manifest.get("organization") if isinstance(manifest.get("organization"), dict) else {}
            if meta.get("id") not in (None, backup.pk) or org.get("id") not in (None, backup.organization_id):
                raise VerificationFailed("The stored archive belongs to another backup; it may have been replaced.")
            size, sha256 = _file_digest(fh)
    except ArchiveError as exc:
        if storage_failure(exc, remote_only=True):  # the store went away while it was read
            raise
        raise VerificationFailed(str(exc)) from exc
    except OSError as exc:
        raise VerificationFailed(f"Reading the archive from storage failed: {exc.strerror or exc}.") from exc
    if (backup.sha256 and sha256 != backup.sha256) or (backup.size is not None and size != backup.size):
        raise VerificationFailed(
            "The stored archive differs from the file recorded when the backup completed (size or SHA-256); "
            "it may have been altered."
        )
    return (
        f"{member_count} members, manifest {manifest.get('format')} created {manifest.get('created_at', '?')}, "
        f"every SHA-256 matches (archive {sha256[:16]}…)."
    )


def backup_verify(
    *, backup: Backup, user: User | None = None, request: Any = None, storage: Storage | None = None
) -> Backup:
    """Decrypt a completed backup's archive, check its structure, manifest, every member's HMAC
    and SHA-256 and the whole file's recorded SHA-256, and record the outcome on the backup
    (``last_verified_at``, ``verification_ok``, ``verification_message``), its timeline and the
    audit log. A failed check is a recorded result, not an exception; a backup that has no
    archive (not completed) raises ``IllegalTransition``. When the file storage cannot be
    reached the archive is not known to be bad: the last result stays, the timeline and the
    audit log say it could not be checked, and ``VerificationNotChecked`` is raised.
    """
    backup.refresh_from_db()
    if backup.status != Backup.Status.COMPLETED or not backup.file:
        raise IllegalTransition(
            f"Only a completed backup can be verified; backup {backup.pk} is {backup.get_status_display()}."
        )
    try:
        message = _check(backup, storage or default_storage)
        ok = True
    except VerificationFailed as exc:
        message = str(exc)
        ok = False
    except Exception as exc:
        raise_not_checked_if_storage_failed(backup, exc, user=user, request=request)
        raise
    with transaction.atomic():
        Backup.objects.filter(pk=backup.pk).update(
            last_verified_at=timezone.now(), verification_ok=ok, verification_message=message
        )
        backup.refresh_from_db()
        event = f"Verified: {message}" if ok else f"Verification failed: {message}"
        _record(backup, event=event, ok=ok, message=message, user=user, request=request)
    if ok:
        logger.info("backup %s verified: %s", backup.pk, message)
    else:
        logger.warning("backup %s failed verification: %s", backup.pk, message)
    return backup


def raise_not_checked_if_storage_failed(backup: Backup, exc: BaseException, *, user: User | None, request: Any) -> None:
    """If ``exc`` is the file storage failing (also wrapped), record that ``backup`` could not be
    checked (timeline, audit log; the last result stays) and raise ``VerificationNotChecked``
    from it; otherwise return. Any step reading the archive (the hash check, the restore
    rehearsal) ends this way when the store goes away."""
    reason = storage_failure(exc, remote_only=True)
    if reason is None:
        return
    with transaction.atomic():
        _record(backup, event=f"{NOT_CHECKED}{reason}", ok=None, message=reason, user=user, request=request)
    logger.warning("backup %s could not be verified: %s", backup.pk, reason)
    raise VerificationNotChecked(f"{NOT_CHECKED}{reason}") from exc


def _record(backup: Backup, *, event: str, ok: bool | None, message: str, user: User | None, request: Any) -> None:
    """A verification's line on the backup's timeline and its audit entry (``ok``: None when
    the archive could not be checked)."""
    _event(backup, backup.status, event, user)
    audit_log(
        action="backup.verify",
        actor=user,
        organization=backup.organization,
        obj=backup,
        request=request,
        details={"ok": ok, "message": message},
    )
