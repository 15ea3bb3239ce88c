"""Running a restore (the worker): claim a queued restore, run it (in place, selective or into
a new organization) with a pre-restore backup and a heartbeat, record a failure, and sweep the
restores whose worker died.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.files.storage import Storage, default_storage
from django.db import transaction
from django.utils import timezone

from accounts.services import audit_log
from backups.archive import ArchiveError
from backups.importer import ImportResult, delete_files
from backups.keys import PasswordUnavailable, unwrap_password
from backups.models import Backup
from backups.services import BackupError, backup_claim, backup_request, backup_run, storage_failure, worker_name
from backupsvc.lib import dberrors, heartbeats
from backupsvc.lib.logcontext import log_context
from backupsvc.lib.workerstop import WorkerStopping, stoppable
from organizations.models import Organization
from restores import engine, inplace
from restores.maintenance import maintenance_off, maintenance_on, maintenance_writes
from restores.models import Restore
from restores.notify import notify_finished
from restores.services.common import RestoreError, logger
from restores.services.files import _discard_stored_files, _remove_empty_folders, restore_files_folder

WORKER_STOPPED = "The worker was stopped while this restore ran; nothing was changed. Request it again."


def restore_claim(*, restore_id: int | None = None) -> Restore | None:
    """Atomically take a queued restore (the given one, or the oldest) and mark it running."""
    with transaction.atomic():
        qs = Restore.objects.filter(status=Restore.Status.QUEUED)
        if restore_id is not None:
            qs = qs.filter(pk=restore_id)
        candidate = qs.select_for_update(skip_locked=True).order_by("created_at", "pk").only("pk").first()
        if candidate is None:
            return None
        now = timezone.now()
        claimed = Restore.objects.filter(pk=candidate.pk, status=Restore.Status.QUEUED).update(
            status=Restore.Status.RUNNING, started_at=now, heartbeat_at=now, worker=worker_name()
        )
        if not claimed:
            return None
        restore = Restore.objects.select_related("organization", "backup", "upload", "requested_by").get(
            pk=candidate.pk
        )
        audit_log(action="restore.start", organization=restore.organization, obj=restore)
    return restore


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ArchiveError | engine.RestoreRefused | RestoreError | PasswordUnavailable | WorkerStopping):
        return str(exc)
    if dberrors.connection_lost(exc):
        dberrors.forget_lost_connection(exc)
        return "The database connection was lost during the restore; nothing was changed. Start the restore again."
    from backups.datasets import RestoreDataError

    if isinstance(exc, RestoreDataError):
        return f"The backup's data does not fit together: {exc}"
    storage = storage_failure(exc, remote_only=True)
    if storage:
        said = storage.removesuffix(" Try again later.").rstrip(".")
        return f"{said}; nothing was changed. Start the restore again later."
    return f"An unexpected error stopped the restore ({exc.__class__.__name__}); the operators can see the details."


def _fail(restore: Restore, reason: str) -> Restore:
    """Record the failure (nothing was changed), leave maintenance, tell the Owner."""
    # The failure may be the database connection itself: a dead one is dropped, so the failure
    # is recorded (and maintenance ended) on a new one instead of raising again.
    dberrors.forget_lost_connection()
    with transaction.atomic():
        Restore.objects.filter(pk=restore.pk, status__in=Restore.ACTIVE_STATUSES).update(
            status=Restore.Status.FAILED, failed_at=timezone.now(), failure_reason=reason[:2000]
        )
        if restore.kind == Restore.Kind.IN_PLACE and restore.organization is not None:
            maintenance_off(restore.organization)
        restore.refresh_from_db()
        audit_log(action="restore.fail", organization=restore.organization, obj=restore, details={"reason": reason})
    logger.warning("restore %s failed: %s", restore.pk, reason)
    notify_finished(restore)
    return restore


def _wait_for_backup(backup: Backup, timeout: float) -> Backup:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        backup.refresh_from_db()
        if backup.status not in (Backup.Status.PENDING, Backup.Status.IN_PROGRESS):
            return backup
        time.sleep(1)
    return backup


def _pre_restore_backup(restore: Restore, datasets: list[str] | None = None) -> Backup:
    """A backup of the organization as it is now (kind pre-restore), run here, synchronously
    (of ``datasets`` only, for a selective restore: the affected scope).

    One backup per organization may be pending (a database constraint): a pending one is run
    first (its requester wanted it anyway, and it captures the data before the restore too).
    """
    org = restore.organization
    assert org is not None  # noqa: S101 - in-place restores always have one
    stale = settings.BACKUP_HEARTBEAT_STALE_AFTER.total_seconds()
    for _ in range(3):
        try:
            backup, _password = backup_request(
                organization=org,
                requested_by=None,
                kind=Backup.Kind.PRE_RESTORE,
                label=f"Before restore #{restore.pk}",
                include_inactive=True,
                datasets=datasets,
                dispatch=False,
            )
            break
        except BackupError:
            pending = Backup.objects.filter(organization=org, status=Backup.Status.PENDING).first()
            if pending is None:
                continue
            claimed = backup_claim(backup_id=pending.pk)
            if claimed is not None:
                backup_run(backup=claimed)
            else:
                _wait_for_backup(pending, stale)
    else:
        raise engine.RestoreRefused("The pre-restore backup could not be started; nothing was changed. Try again.")
    claimed = backup_claim(backup_id=backup.pk)
    backup = backup_run(backup=claimed) if claimed is not None else _wait_for_backup(backup, stale)
    if backup.status != Backup.Status.COMPLETED:
        raise engine.RestoreRefused(
            f"The pre-restore backup failed ({backup.failure_reason or backup.get_status_display()}); "
            "nothing was changed."
        )
    Restore.objects.filter(pk=restore.pk).update(pre_restore_backup=backup)
    audit_log(action="restore.pre_restore_backup", organization=org, obj=restore, details={"backup": backup.pk})
    return backup


def restore_run(*, restore: Restore, storage: Storage | None = None) -> Restore:
    """Run a claimed (running) restore to completion or failure. Never raises for a restore
    that fails: the failure is recorded, and the organization is left as it was. Every log line
    written meanwhile carries the restore's id (and the pre-restore backup's, while it runs)."""
    if restore.status != Restore.Status.RUNNING:
        raise RestoreError(f"Restore {restore.pk} is {restore.status}, not running.")
    storage = storage or default_storage
    with (
        log_context(restore_id=restore.pk),
        stoppable(WORKER_STOPPED),
        heartbeats.beating(_beat(restore), what=f"restore {restore.pk}"),
    ):
        if restore.kind == Restore.Kind.IN_PLACE:
            return _run_in_place(restore, storage)
        if restore.kind == Restore.Kind.SELECTIVE:
            from restores.selective.services import run_selective

            return run_selective(restore, storage)
        return _run_new_organization(restore, storage)


def _beat(restore: Restore) -> Callable[[], bool]:
    def beat() -> bool:
        running = Restore.objects.filter(pk=restore.pk, status=Restore.Status.RUNNING)
        return bool(running.update(heartbeat_at=timezone.now()))

    return beat


def _run_in_place(restore: Restore, storage: Storage) -> Restore:
    org = restore.organization
    assert org is not None  # noqa: S101 - in-place restores always have one
    backup = restore.backup
    try:
        if backup is None:
            raise engine.RestoreRefused("The backup of this restore no longer exists.")
        reader = engine.open_backup(backup, storage)
    except Exception as exc:
        return _fail(restore, _reason(exc))
    try:
        # Every hash is checked before anything is touched: a damaged archive must cost neither
        # a maintenance window nor a pre-restore backup, and both come before the import, so
        # this restore cannot verify in the import's pass as one into a new organization does.
        reader.verify()
        maintenance_on(org, f"Restore #{restore.pk}")
        audit_log(action="restore.maintenance_on", organization=org, obj=restore)
        _pre_restore_backup(restore)
        result = ImportResult()
        try:
            with maintenance_writes(org.pk), transaction.atomic():
                target = Organization.objects.select_for_update().select_related("master_data_version").get(pk=org.pk)
                replaced = inplace.replace_in_scope(
                    organization=target,
                    reader=reader,
                    storage=storage,
                    result=result,
                    folder=restore_files_folder(restore),
                )
                done = Restore.objects.filter(pk=restore.pk, status=Restore.Status.RUNNING).update(
                    status=Restore.Status.COMPLETED,
                    completed_at=timezone.now(),
                    row_counts=result.row_counts,
                    files_restored=len(result.stored_files),
                )
                if not done:
                    raise RestoreError("The restore was stopped from outside while it ran.")
                maintenance_off(target)
                restore.refresh_from_db()
                audit_log(
                    action="restore.complete",
                    organization=target,
                    obj=restore,
                    details={"backup": backup.pk, "row_counts": result.row_counts, "changes": replaced.summary()},
                )
                engine.checkpoint("finalize", organization=target)
                old_files = replaced.old_files
                # Files of the replaced rows go only once the new rows are committed.
                transaction.on_commit(lambda: delete_files(old_files, storage))
        except BaseException:
            delete_files(result.stored_files, storage)
            _remove_empty_folders(restore, storage)
            raise
    except Exception as exc:
        logger.exception("restore %s of organization %s failed", restore.pk, org.pk)
        return _fail(restore, _reason(exc))
    finally:
        reader.close()
    logger.info("restore %s of organization %s completed", restore.pk, org.pk)
    notify_finished(restore)
    return restore


def _source_reader(restore: Restore, storage: Storage) -> Any:
    if restore.backup is not None:
        return engine.open_backup(restore.backup, storage)
    if restore.upload is not None:
        return engine.open_stored(restore.upload.file.name, unwrap_password(restore.upload.password_wrapped), storage)
    raise engine.RestoreRefused("The backup of this restore no longer exists.")


def _discard_wizard_files(restore: Restore, storage: Storage) -> None:
    profile = engine.NewOrganization.from_options(restore.options)
    names = [profile.logo] if profile.logo else []
    upload = restore.upload
    if upload is not None:
        names.append(upload.file.name)
        upload.delete()
    delete_files(names, storage)


def _run_new_organization(restore: Restore, storage: Storage) -> Restore:
    try:
        reader = _source_reader(restore, storage)
    except Exception as exc:
        _discard_wizard_files(restore, storage)
        return _fail(restore, _reason(exc))
    result = ImportResult()
    try:
        profile = engine.NewOrganization.from_options(restore.options)
        try:
            with transaction.atomic():
                # One pass over the archive: each member is verified as the import reads it,
                # the rest after it, all before the commit (a damaged one rolls everything back).
                with engine.verified_in_one_pass(reader):
                    org = engine.create_organization_from_archive(
                        reader=reader,
                        profile=profile,
                        created_by=restore.requested_by,
                        storage=storage,
                        result=result,
                        folder=restore_files_folder(restore),
                    )
                done = Restore.objects.filter(pk=restore.pk, status=Restore.Status.RUNNING).update(
                    status=Restore.Status.COMPLETED,
                    completed_at=timezone.now(),
                    organization=org,
                    row_counts=result.row_counts,
                    files_restored=len(result.stored_files),
                )
                if not done:
                    raise RestoreError("The restore was stopped from outside while it ran.")
                restore.refresh_from_db()
                audit_log(
                    action="restore.complete",
                    actor=restore.requested_by,
                    organization=org,
                    obj=restore,
                    details={"backup": restore.backup_id, "upload": restore.upload_id, "new_organization": org.pk},
                )
                engine.checkpoint("finalize", organization=org)
        except BaseException:
            delete_files(result.stored_files, storage)
            _remove_empty_folders(restore, storage)
            raise
    except Exception as exc:
        logger.exception("restore %s into a new organization failed", restore.pk)
        return _fail(restore, _reason(exc))
    finally:
        reader.close()
        _discard_wizard_files(restore, storage)
    logger.info("restore %s created organization %s", restore.pk, restore.organization_id)
    notify_finished(restore)
    return restore


def process_queue(*, limit: int | None = None) -> int:
    """Run queued restores one after another (beat's safety net when a dispatch was lost)."""
    done = 0
    while limit is None or done < limit:
        restore = restore_claim()
        if restore is None:
            break
        restore_run(restore=restore)
        done += 1
    return done


def restores_fail_stale(*, now: dt.datetime | None = None) -> int:
    """Fail restores whose worker died (their heartbeat went stale, ``backupsvc.lib.heartbeats``).
    Their database transaction was rolled back with the connection; this removes the files they
    had stored, ends maintenance and tells the Owner.

    The claim is the failing ``UPDATE`` itself, with the stale condition in it, and the files go
    in the same transaction: a worker that is alive after all cannot commit over it (its own
    final ``UPDATE`` waits for this row and then finds the restore failed), and a sweep stopped
    half-way rolls back, leaving the restore running for the next sweep rather than failed with
    files nobody will remove."""
    now = now or timezone.now()
    reason = "The worker running this restore stopped; nothing was changed. Start the restore again."
    count = 0
    dead = Restore.objects.filter(status=Restore.Status.RUNNING).filter(heartbeats.stale(now))
    for restore in dead:
        with transaction.atomic():
            claimed = (
                Restore.objects.filter(pk=restore.pk, status=Restore.Status.RUNNING)
                .filter(heartbeats.stale(now))
                .update(status=Restore.Status.FAILED, failed_at=timezone.now(), failure_reason=reason)
            )
            if not claimed:
                continue
            _discard_stored_files(restore)
            _fail(restore, reason)
        count += 1
    return count
