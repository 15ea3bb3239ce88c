"""Writes on a backup's worker side: claim, run, complete, fail, the stale sweep and the queue."""

from __future__ import annotations

import logging
import os
import socket
import time
from typing import Any, BinaryIO

from django.conf import settings
from django.core.files.storage import Storage, default_storage
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from accounts.services import audit_log
from backups import datasets as ds
from backups.export import estimate, write_archive
from backups.models import Backup, archive_upload_to
from backups.notify import backup_notify_finished
from backups.services.common import BackupAborted, IllegalTransition, _delete_quietly, _event
from backups.services.reasons import _reason
from backups.services.request import _rotate_scheduled
from backupsvc.lib import dberrors, heartbeats
from backupsvc.lib.logcontext import log_context
from backupsvc.lib.workerstop import WorkerStopping, raise_if_stopping, stop_requested, stoppable

# One logger for the backup services, under the name operators know from the logs.
logger = logging.getLogger("backups.services")


WORKER_STOPPED = "The worker was stopped while this backup ran; request it again."


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def backup_claim(*, backup_id: int | None = None) -> Backup | None:
    """Atomically take one pending backup (the given one, or the oldest) and mark it in progress.

    Safe with any number of workers: rows are locked with ``SKIP LOCKED`` and the status is
    re-checked in the UPDATE, so a redelivered task or a second worker gets nothing.
    """
    with transaction.atomic():
        qs = Backup.objects.pending()
        if backup_id is not None:
            qs = qs.filter(pk=backup_id)
        candidate = qs.select_for_update(skip_locked=True).order_by("created_at", "pk").only("pk").first()
        if candidate is None:
            return None
        now = timezone.now()
        claimed = Backup.objects.filter(pk=candidate.pk, status=Backup.Status.PENDING).update(
            status=Backup.Status.IN_PROGRESS,
            started_at=now,
            heartbeat_at=now,
            worker=worker_name(),
            attempts=F("attempts") + 1,
        )
        if not claimed:
            return None
        backup = Backup.objects.select_related("organization__master_data_version", "requested_by").get(pk=candidate.pk)
        _event(backup, Backup.Status.IN_PROGRESS, f"Started on {backup.worker}")
    return backup


def _open_sink(storage: Storage, name: str) -> BinaryIO:
    """A write stream into storage: multipart upload on S3, a plain file locally."""
    try:
        path = storage.path(name)
    except NotImplementedError:
        return storage.open(name, "wb")  # type: ignore[return-value]
    os.makedirs(os.path.dirname(path), exist_ok=True)
    return open(path, "xb")


class _Heartbeat:
    """Progress writer and liveness signal; aborts the job if it was taken away."""

    def __init__(self, backup: Backup, total_items: int, total_bytes: int, interval: float = 2.0) -> None:
        self.backup = backup
        self.total_items = total_items
        self.total_bytes = total_bytes
        self.interval = interval
        self._last = 0.0

    def __call__(self, items_done: int, bytes_done: int, *, force: bool = False) -> None:
        raise_if_stopping()
        now = time.monotonic()
        if not force and now - self._last < self.interval:
            return
        self._last = now
        alive = Backup.objects.filter(pk=self.backup.pk, status=Backup.Status.IN_PROGRESS).update(
            heartbeat_at=timezone.now(),
            progress_items_done=min(items_done, self.total_items),
            progress_bytes_done=min(bytes_done, self.total_bytes) if self.total_bytes else bytes_done,
        )
        if not alive:
            raise BackupAborted(f"Backup {self.backup.pk} is no longer in progress.")


def backup_run(*, backup: Backup, storage: Storage | None = None) -> Backup:
    """Write the archive of a claimed (in-progress) backup and complete it, or fail it.
    Every log line written meanwhile carries the backup's id."""
    # A stopping worker fails it at its next heartbeat (backupsvc.lib.workerstop).
    with log_context(backup_id=backup.pk), stoppable(WORKER_STOPPED):
        return _backup_run(backup, storage)


def _backup_run(backup: Backup, storage: Storage | None) -> Backup:
    from backups.keys import unwrap_password

    if backup.status != Backup.Status.IN_PROGRESS:
        raise IllegalTransition(f"Backup {backup.pk} is {backup.status}, not in progress.")
    storage = storage or default_storage
    org = backup.organization
    ou_ids = None if backup.all_ous else frozenset(backup.ous.values_list("pk", flat=True))
    scope = ds.Scope(
        ou_ids=ou_ids,
        include_active=backup.include_active,
        include_inactive=backup.include_inactive,
        exclude_superseded=backup.exclude_superseded,
    )
    name = archive_upload_to(backup, "")
    try:
        rows, file_bytes = estimate(org, scope, backup.datasets)
        # Recorded before writing so that a worker killed mid-way leaves a name the sweep can delete.
        Backup.objects.filter(pk=backup.pk).update(
            progress_items_total=rows, progress_bytes_total=file_bytes, file=name
        )
    except Exception as exc:
        logger.exception("backup %s could not start", backup.pk)
        return backup_fail(backup=backup, reason=_reason(exc), file_removed=True)
    heartbeat = _Heartbeat(backup, rows, file_bytes)
    logger.info("backup %s: writing archive for organization %s", backup.pk, org.pk)
    try:
        sink = _open_sink(storage, name)
        try:
            result = write_archive(
                organization=org,
                scope=scope,
                datasets=backup.datasets,
                sink=sink,
                password=unwrap_password(backup.password_wrapped),
                created_by=backup.requested_by.email if backup.requested_by else (backup.requested_via or "system"),
                extra_manifest={"backup": {"id": backup.pk, "kind": backup.kind, "label": backup.label}},
                storage=storage,
                progress=heartbeat,
            )
        finally:
            sink.close()
    except BackupAborted:
        _delete_quietly(storage, name)
        logger.warning("backup %s was taken away while running; its partial file was removed", backup.pk)
        backup.refresh_from_db()
        return backup
    except WorkerStopping as exc:
        removed = _delete_quietly(storage, name)
        return backup_fail(backup=backup, reason=str(exc), file_removed=removed)
    except Exception as exc:
        removed = _delete_quietly(storage, name)
        logger.exception("backup %s failed", backup.pk)
        return backup_fail(backup=backup, reason=_reason(exc), file_removed=removed)
    return backup_complete(backup=backup, result=result, name=name)


def backup_complete(*, backup: Backup, result: Any, name: str) -> Backup:
    """Mark an in-progress backup completed with its archive's size, hash and counts."""
    now = timezone.now()
    with transaction.atomic():
        updated = Backup.objects.filter(pk=backup.pk, status=Backup.Status.IN_PROGRESS).update(
            status=Backup.Status.COMPLETED,
            completed_at=now,
            heartbeat_at=now,
            file=name,
            size=result.bytes_written,
            sha256=result.sha256,
            document_count=result.document_count,
            row_counts=result.row_counts,
            captured={
                "organization_name": result.manifest["organization"]["name"],
                "master_data_version": result.manifest["master_data_version"],
                "schema": result.manifest["schema"],
                "app_version": result.manifest["app_version"],
                "ou_names": result.manifest["scope"]["ou_names"],
            },
            download_expires_at=now + settings.BACKUP_DOWNLOAD_LIFETIME,
            progress_items_done=F("progress_items_total"),
            progress_bytes_done=F("progress_bytes_total"),
        )
        if not updated:
            transaction.on_commit(lambda: _delete_quietly(default_storage, name))
            backup.refresh_from_db()
            return backup
        backup.refresh_from_db()
        _event(backup, Backup.Status.COMPLETED, f"{result.document_count} documents, {result.bytes_written} bytes")
        audit_log(action="backup.complete", organization=backup.organization, obj=backup)
        if backup.kind == Backup.Kind.SCHEDULED and backup.schedule_id:
            _rotate_scheduled(backup.schedule)  # type: ignore[arg-type]
    logger.info("backup %s completed: %s bytes, sha256 %s", backup.pk, result.bytes_written, result.sha256)
    backup_notify_finished(backup)
    _request_change_summary(backup)
    return backup


def _request_change_summary(backup: Backup) -> None:
    """Queue the backup's change summary against the previous one (a worker runs it after the
    completion is recorded; trouble here never undoes the completion)."""
    if backup.kind == Backup.Kind.PRE_RESTORE:
        return
    from backups.compare.services import changes_request

    try:
        changes_request(backup=backup)
    except Exception:
        logger.exception("backup %s: could not queue its change summary", backup.pk)


def backup_fail(*, backup: Backup, reason: str, file_removed: bool = False) -> Backup:
    """Fail an in-progress backup: reason kept, partial file removed, new requests allowed.

    The partial file (and an unfinished multipart upload) goes before the record forgets its
    name, under the row lock: a process that dies in between (the sweep stopped mid-way) leaves
    the backup in progress with its file still named for the next sweep, not an object that no
    row points at. When the storage cannot be reached, the failed backup keeps the name and the
    sweep removes the leftovers once it answers again."""
    # The failure may be the database connection itself: a dead one is dropped so the failure
    # is recorded on a new one, not lost with it.
    dberrors.forget_lost_connection()
    with transaction.atomic():
        current = Backup.objects.select_for_update().get(pk=backup.pk)
        if current.status != Backup.Status.IN_PROGRESS:
            raise IllegalTransition(f"Only a backup in progress can fail; backup {backup.pk} is {current.status}.")
        name = current.file.name
        if name and not file_removed:
            file_removed = _delete_quietly(default_storage, name)
        Backup.objects.filter(pk=backup.pk).update(
            status=Backup.Status.FAILED,
            failed_at=timezone.now(),
            failure_reason=reason,
            file="" if file_removed else name,
        )
        backup.refresh_from_db()
        _event(backup, Backup.Status.FAILED, reason)
        audit_log(action="backup.fail", organization=backup.organization, obj=backup, details={"reason": reason})
    logger.warning("backup %s failed: %s", backup.pk, reason)
    backup_notify_finished(backup)
    return backup


def backups_fail_stale(*, now: Any = None) -> int:
    """Fail jobs whose worker stopped sending heartbeats (it died), so they can be requested again;
    remove the partial files that failed jobs left while the storage could not be reached."""
    now = now or timezone.now()
    count = 0
    stale = Backup.objects.filter(status=Backup.Status.IN_PROGRESS).filter(heartbeats.stale(now))
    for backup in stale:
        try:
            backup_fail(
                backup=backup,
                reason="The worker running this backup stopped responding; request it again.",
            )
            count += 1
        except IllegalTransition:
            continue
    # Partial files of backups that failed while the storage could not be reached.
    for failed in Backup.objects.filter(status=Backup.Status.FAILED).exclude(file=""):
        if _delete_quietly(default_storage, failed.file.name):
            Backup.objects.filter(pk=failed.pk, status=Backup.Status.FAILED).update(file="")
    return count


def process_queue(*, limit: int | None = None) -> int:
    """Run pending backups one after another until none is left (or ``limit`` ran)."""
    done = 0
    while limit is None or done < limit:
        if stop_requested():
            break  # the worker is stopping: the rest waits for the next queue run
        backup = backup_claim()
        if backup is None:
            break
        backup_run(backup=backup)
        done += 1
    return done
