"""Writes of restores: ask for a code, confirm it, cancel, claim and run a restore, the wizard's
restore into a new organization, uploads, and the organization's restore policy.

Every state change is one function here, claimed with a conditional ``UPDATE`` (so two
submissions of the right code start exactly one restore), audited in the same transaction,
and an illegal transition raises ``RestoreError`` with a sentence for the user.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import logging
import os
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.files import File
from django.core.files.storage import Storage, default_storage
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone

from accounts.models import User
from accounts.services import audit_log, notification_send
from backups.archive import ArchiveError
from backups.archive.manifest import check_schema
from backups.export import current_schema
from backups.importer import ImportResult, delete_files
from backups.keys import PasswordUnavailable, unwrap_password, wrap_password
from backups.models import Backup
from backups.services import BackupError, backup_claim, backup_request, backup_run, worker_name
from backupsvc.lib import dberrors, heartbeats
from backupsvc.lib.logcontext import log_context
from backupsvc.lib.workerstop import WorkerStopping, stoppable
from organizations.models import Organization
from restores import engine, inplace
from restores.codes import code_digest, code_matches, generate_code, normalize
from restores.maintenance import maintenance_off, maintenance_on, maintenance_writes
from restores.models import Restore, RestoreCode, RestoreUpload
from restores.notify import notify_finished, notify_locked, owner_of, send_code
from restores.permissions import may_change_restore_policy, may_restore_in_place, may_use_wizard

logger = logging.getLogger(__name__)

WORKER_STOPPED = "The worker was stopped while this restore ran; nothing was changed. Request it again."

HOUR = dt.timedelta(hours=1)


class RestoreError(Exception):
    """A request the rules refuse; the message is shown to the user as it is."""


def _dispatch(task_name: str, *args: Any) -> None:
    """Queue a task once the transaction commits (unless tests or operators run them)."""
    if not getattr(settings, "RESTORE_DISPATCH_IMMEDIATELY", True):
        return
    from restores import tasks

    task = getattr(tasks, task_name)
    transaction.on_commit(lambda: task.delay(*args), robust=True)


# ----------------------------------------------------------------------------------------------
# In place: the Owner's code


def in_place_problems(backup: Backup) -> list[str]:
    """Why this backup cannot be restored over its organization, from what the backup recorded."""
    if backup.status != Backup.Status.COMPLETED or not backup.file:
        return ["Only a completed backup whose file is still kept can be restored."]
    problems = []
    try:
        check_schema((backup.captured or {}).get("schema"), current_schema())
    except ArchiveError as exc:
        problems.append(str(exc))
    return problems + engine.in_place_problems(
        organization=backup.organization,
        datasets=list(backup.datasets),
        master_data_version=(backup.captured or {}).get("master_data_version"),
    )


def _issue_code(restore: Restore, *, request: Any = None) -> RestoreCode:
    """Create a new code for an open request (retiring the previous) and send it to the Owner."""
    org = restore.organization
    assert org is not None  # noqa: S101 - in-place restores always have one
    now = timezone.now()
    recent = list(
        RestoreCode.objects.filter(organization=org, created_at__gt=now - HOUR)
        .order_by("created_at")
        .values_list("created_at", flat=True)
    )
    if len(recent) >= settings.RESTORE_CODES_PER_HOUR:
        again = timezone.localtime(recent[0] + HOUR)
        raise RestoreError(
            f"This organization has been sent {len(recent)} restore codes in the last hour, the most allowed; "
            f"you can ask for another at {again:%H:%M}."
        )
    owner = owner_of(org)
    if owner is None:
        raise RestoreError("This organization has no Owner to send the code to.")
    code = generate_code()
    expires = now + settings.RESTORE_CODE_LIFETIME
    sent = RestoreCode.objects.create(
        restore=restore,
        organization=org,
        digest=code_digest(
            restore_id=restore.pk,
            backup_id=restore.backup_id,
            organization_id=org.pk,
            requester_id=restore.requested_by_id,
            code=code,
        ),
        created_at=now,
        expires_at=expires,
        sent_to=owner.email,
    )
    audit_log(
        action="restore.code_sent",
        actor=restore.requested_by,
        organization=org,
        obj=restore,
        request=request,
        details={"backup": restore.backup_id, "sent_to": owner.email, "expires_at": expires.isoformat()},
    )
    try:
        send_code(restore=restore, owner=owner, code=code, expires_at=expires)
    except Exception as exc:
        logger.exception("restore %s: the code could not be sent", restore.pk)
        raise RestoreError("The code could not be sent to the Owner (the mail server refused it); try again.") from exc
    return sent


def restore_request_code(*, backup: Backup, user: User, request: Any = None) -> Restore:
    """Open a restore request for ``backup`` over its organization and send the Owner a code.

    Asking again for the same backup re-sends a code on the same request: the count of wrong
    entries is kept. At most ``RESTORE_CODES_PER_HOUR`` codes per organization and hour.
    """
    org = Organization.objects.select_related("master_data_version").get(pk=backup.organization_id)
    if not Backup.objects.visible_to(user).filter(pk=backup.pk).exists():
        raise RestoreError("You may not see this backup, so you cannot restore it.")
    if not may_restore_in_place(user, org):
        raise RestoreError("You may not restore this organization (see who may restore in its restore settings).")
    problems = in_place_problems(backup)
    if problems:
        raise RestoreError(" ".join(problems))
    try:
        with transaction.atomic():
            # Serialize requests of one organization (rate limit, one open request).
            Organization.objects.select_for_update().filter(pk=org.pk).first()
            if Restore.objects.filter(organization=org, status__in=Restore.ACTIVE_STATUSES).exists():
                raise RestoreError("A restore of this organization is already queued or running.")
            carried = 0
            open_request = Restore.objects.filter(organization=org, status=Restore.Status.AWAITING_CODE).first()
            if open_request is not None:
                same = open_request.backup_id == backup.pk and open_request.requested_by_id == user.pk
                if same and open_request.kind == Restore.Kind.IN_PLACE:
                    _issue_code(open_request, request=request)
                    return open_request
                latest = open_request.codes.first()
                if open_request.requested_by_id != user.pk and latest is not None and not latest.is_expired:
                    until = timezone.localtime(latest.expires_at)
                    raise RestoreError(
                        f"{open_request.requested_by} is waiting for a code to restore this organization "
                        f"(until {until:%H:%M}); try again later."
                    )
                # The same requester switching backups keeps the wrong entries made so far.
                carried = open_request.attempts if open_request.requested_by_id == user.pk else 0
                Restore.objects.filter(pk=open_request.pk, status=Restore.Status.AWAITING_CODE).update(
                    status=Restore.Status.CANCELLED, cancelled_at=timezone.now(), failure_reason="Superseded."
                )
                audit_log(action="restore.superseded", actor=user, organization=org, obj=open_request, request=request)
            restore = Restore.objects.create(
                kind=Restore.Kind.IN_PLACE,
                organization=org,
                backup=backup,
                requested_by=user,
                attempts=carried,
            )
            audit_log(
                action="restore.request",
                actor=user,
                organization=org,
                obj=restore,
                request=request,
                details={"backup": backup.pk},
            )
            _issue_code(restore, request=request)
    except IntegrityError as exc:
        raise RestoreError("Another restore request of this organization was made at the same moment.") from exc
    logger.info("restore %s requested for organization %s from backup %s", restore.pk, org.pk, backup.pk)
    return restore


def restore_resend_code(*, restore: Restore, user: User, request: Any = None) -> Restore:
    """A new code for an open request (the count of wrong entries stays)."""
    if restore.backup is None:
        raise RestoreError("The backup of this request no longer exists.")
    if restore.requested_by_id != user.pk:
        raise RestoreError("Only the person who asked for this restore can ask for a new code.")
    if restore.status != Restore.Status.AWAITING_CODE:
        raise RestoreError(f"This restore request is {restore.get_status_display().lower()}; no new code can be sent.")
    if restore.kind == Restore.Kind.SELECTIVE:  # the same request, with its picked records
        with transaction.atomic():
            Organization.objects.select_for_update().filter(pk=restore.organization_id).first()
            _issue_code(restore, request=request)
        return restore
    return restore_request_code(backup=restore.backup, user=user, request=request)


def restore_confirm(*, restore: Restore, user: User, code: str, password: str, request: Any = None) -> Restore:
    """Accept the Owner's code and the requester's password, and queue the restore.

    Refusals raise ``RestoreError``; wrong entries are counted (and committed) first, and the
    ``RESTORE_CODE_MAX_ATTEMPTS``-th locks the request. The claim is a conditional ``UPDATE``
    of the request and of the code, so the right code submitted twice queues one restore.
    """
    refusal = ""
    locked = False
    with transaction.atomic():
        current = Restore.objects.select_for_update().get(pk=restore.pk)
        if current.requested_by_id != user.pk:
            raise RestoreError("This restore request was made by someone else; only they can enter its code.")
        if current.status == Restore.Status.LOCKED:
            raise RestoreError(
                f"This restore request was cancelled after {current.attempts} wrong entries. Ask for a new restore."
            )
        if current.status in (Restore.Status.QUEUED, Restore.Status.RUNNING, Restore.Status.COMPLETED):
            raise RestoreError("This code has already been used: the restore was started.")
        if current.status != Restore.Status.AWAITING_CODE:
            raise RestoreError(f"This restore request is {current.get_status_display().lower()}.")
        latest = current.codes.first()
        if latest is None:
            raise RestoreError("No code was sent for this request yet.")
        if latest.used_at is not None:
            raise RestoreError("This code has already been used.")
        if latest.is_expired:
            raise RestoreError("The code has expired. Ask for a new one.")
        password_ok = user.check_password(password)
        code_ok = code_matches(
            latest.digest,
            restore_id=current.pk,
            backup_id=current.backup_id,
            organization_id=current.organization_id,
            requester_id=user.pk,
            code=normalize(code),
        )
        if password_ok and code_ok:
            now = timezone.now()
            claimed = Restore.objects.filter(pk=current.pk, status=Restore.Status.AWAITING_CODE).update(
                status=Restore.Status.QUEUED, confirmed_at=now
            )
            used = RestoreCode.objects.filter(pk=latest.pk, used_at__isnull=True).update(used_at=now)
            if not (claimed and used):
                raise RestoreError("This code has already been used: the restore was started.")
            current.refresh_from_db()
            audit_log(
                action="restore.confirm", actor=user, organization=current.organization, obj=current, request=request
            )
            _dispatch("run_restore", current.pk)
            logger.info("restore %s confirmed by %s", current.pk, user.pk)
            return current
        Restore.objects.filter(pk=current.pk).update(attempts=F("attempts") + 1)
        current.refresh_from_db()
        what = "code" if not code_ok else "password"
        audit_log(
            action="restore.code_wrong",
            actor=user,
            organization=current.organization,
            obj=current,
            request=request,
            details={"attempts": current.attempts, "wrong": what},
        )
        if current.attempts >= settings.RESTORE_CODE_MAX_ATTEMPTS:
            Restore.objects.filter(pk=current.pk, status=Restore.Status.AWAITING_CODE).update(
                status=Restore.Status.LOCKED, locked_at=timezone.now()
            )
            current.refresh_from_db()
            audit_log(
                action="restore.locked", actor=user, organization=current.organization, obj=current, request=request
            )
            locked = True
            refusal = (
                f"That was the {current.attempts}th wrong entry: this restore request is cancelled and the Owner "
                "was told. Ask for a new restore if you still need one."
            )
        else:
            wrong = "The code is not correct" if not code_ok else "Your password is not correct"
            refusal = f"{wrong}. {current.attempts_left} attempt(s) left."
    if locked:
        notify_locked(current)
    raise RestoreError(refusal)


def restore_cancel(*, restore: Restore, user: User, request: Any = None) -> Restore:
    """Cancel an open request (the requester or the Owner)."""
    org = restore.organization
    if restore.requested_by_id != user.pk and not (org and may_change_restore_policy(user, org)):
        raise RestoreError("Only the requester or the Owner can cancel this restore request.")
    with transaction.atomic():
        updated = Restore.objects.filter(pk=restore.pk, status=Restore.Status.AWAITING_CODE).update(
            status=Restore.Status.CANCELLED, cancelled_at=timezone.now()
        )
        if not updated:
            restore.refresh_from_db()
            raise RestoreError(
                f"This restore request is {restore.get_status_display().lower()}; it cannot be cancelled."
            )
        restore.refresh_from_db()
        audit_log(action="restore.cancel", actor=user, organization=org, obj=restore, request=request)
    return restore


def restore_unlock(*, restore: Restore, user: User | None = None, request: Any = None) -> Restore:
    """Reopen a request locked after too many wrong entries (operators, in the Django admin).

    The request waits for a code again with its count of wrong entries back at zero, and every
    code sent for it is retired first: no code sent before the lock works again. The requester
    asks for a new code, which goes to the Owner as always, so the restore still needs the
    Owner's code. Refused (``RestoreError``) unless the request is locked, its requester may
    still restore from its backup, and no other request of the organization waits for a code.
    """
    try:
        with transaction.atomic():
            current = Restore.objects.select_for_update().get(pk=restore.pk)
            if current.status != Restore.Status.LOCKED:
                raise RestoreError(f"Restore #{current.pk} is {current.get_status_display().lower()}, not locked.")
            org, requester, backup = current.organization, current.requested_by, current.backup
            if org is None or requester is None or backup is None:
                raise RestoreError(f"Restore #{current.pk}: its organization, requester or backup is gone.")
            restorable = Backup.objects.visible_to(requester).filter(pk=backup.pk, status=Backup.Status.COMPLETED)
            if not may_restore_in_place(requester, org) or not restorable.exclude(file="").exists():
                raise RestoreError(
                    f"Restore #{current.pk}: {requester} may no longer restore this organization from its backup."
                )
            if Restore.objects.filter(organization=org, status=Restore.Status.AWAITING_CODE).exists():
                raise RestoreError(f"Restore #{current.pk}: another request of {org} is waiting for a code.")
            now = timezone.now()
            retired = RestoreCode.objects.filter(restore=current, used_at__isnull=True, expires_at__gt=now).update(
                expires_at=now
            )
            details = {
                "attempts": current.attempts,
                "locked_at": current.locked_at.isoformat() if current.locked_at else None,
                "codes_retired": retired,
            }
            Restore.objects.filter(pk=current.pk, status=Restore.Status.LOCKED).update(
                status=Restore.Status.AWAITING_CODE, attempts=0, locked_at=None
            )
            current.refresh_from_db()
            audit_log(
                action="restore.unlock", actor=user, organization=org, obj=current, request=request, details=details
            )
            body = (
                f"An operator reopened the restore request of {requester} that was locked after "
                f"{details['attempts']} wrong entries. Codes sent before no longer work; a new one goes to the Owner."
            )
            owner = owner_of(org)
            for recipient in {u.pk: u for u in (owner, requester) if u is not None}.values():
                notification_send(
                    user=recipient,
                    organization=org,
                    title=f"Restore request #{current.pk} unlocked",
                    body=body,
                    url=current.get_absolute_url(),
                    level="warning",
                )
    except IntegrityError as exc:  # another request was opened at the same moment
        raise RestoreError(
            f"Restore #{restore.pk}: another request of this organization is waiting for a code."
        ) from exc
    logger.info("restore %s unlocked by %s", current.pk, user.pk if user else None)
    return current


# ----------------------------------------------------------------------------------------------
# Running a restore (the worker)


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
    return f"An unexpected error stopped the restore ({exc.__class__.__name__}); the operators can see the details."


def _fail(restore: Restore, reason: str) -> Restore:
    """Record the failure (nothing was changed), leave maintenance, tell the Owner."""
    if not connection.in_atomic_block:
        # The failure may be the database connection itself: a dead one is dropped, so the
        # failure is recorded (and maintenance ended) on a new one instead of raising again.
        connection.close_if_unusable_or_obsolete()
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
        # Every hash is checked before the database is touched.
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
        reader.verify()
        profile = engine.NewOrganization.from_options(restore.options)
        try:
            with transaction.atomic():
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


def restore_files_folder(restore: Restore) -> str:
    """The folder, inside each kind's own (``documents/restore-<id>/...``), where a restore
    stores the files it imports: if its worker dies, no committed row points at them, and the
    stale sweep finds them there."""
    return f"restore-{restore.pk}"


def _discard_stored_files(restore: Restore, storage: Storage | None = None) -> None:
    """Remove what a failed restore stored (none of it is referenced: its transaction never
    committed)."""
    storage = storage or default_storage
    folder = restore_files_folder(restore)
    names: list[str] = []
    try:
        kinds, _files = storage.listdir("")
        for kind in kinds:
            try:
                _dirs, files = storage.listdir(f"{kind}/{folder}")
            except FileNotFoundError:
                continue
            names += [f"{kind}/{folder}/{name}" for name in files]
    except Exception:
        logger.warning("restore %s: could not list the files it stored", restore.pk, exc_info=True)
    delete_files(names, storage)
    _remove_empty_folders(restore, storage)


def _remove_empty_folders(restore: Restore, storage: Storage) -> None:
    """Local storage keeps a folder when its last file is deleted: remove the restore's own
    folders (``<kind>/restore-<id>``) once empty. Object stores have no folders."""
    try:
        root = storage.path("")
    except NotImplementedError:
        return
    folder = restore_files_folder(restore)
    try:
        kinds = os.listdir(root)
    except OSError:
        return
    for kind in kinds:
        with contextlib.suppress(OSError):  # not there, or not empty: kept
            os.rmdir(os.path.join(root, kind, folder))


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


# ----------------------------------------------------------------------------------------------
# Into a new organization (the wizard) and uploads


def restore_new_organization(
    *,
    user: User,
    profile: engine.NewOrganization,
    backup: Backup | None = None,
    upload: RestoreUpload | None = None,
    request: Any = None,
) -> Restore:
    """Queue the creation of a new organization from a backup or an uploaded file."""
    if not may_use_wizard(user):
        raise RestoreError("Only Site Admins can restore into a new organization.")
    if (backup is None) == (upload is None):
        raise RestoreError("Choose one backup or one uploaded file.")
    if backup is not None and (backup.status != Backup.Status.COMPLETED or not backup.file):
        raise RestoreError("Only a completed backup whose file is still kept can be restored.")
    with transaction.atomic():
        restore = Restore.objects.create(
            kind=Restore.Kind.NEW_ORGANIZATION,
            status=Restore.Status.QUEUED,
            backup=backup,
            upload=upload,
            requested_by=user,
            confirmed_at=timezone.now(),
            options=profile.__dict__,
        )
        audit_log(
            action="restore.new_organization",
            actor=user,
            obj=restore,
            request=request,
            details={
                "backup": backup.pk if backup else None,
                "upload": upload.pk if upload else None,
                "slug": profile.slug,
            },
        )
        _dispatch("run_restore", restore.pk)
    return restore


def _sha256_of(path: str) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(1024 * 1024):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def restore_upload_create(
    *,
    user: User,
    path: str,
    password: str,
    original_name: str = "",
    request: Any = None,
    storage: Storage | None = None,
) -> RestoreUpload:
    """Verify an uploaded backup file (every check and hash) and keep it for the wizard.

    Raises ``RestoreError`` with the reader's sentence when the file is refused; nothing is
    stored then.
    """
    if not may_use_wizard(user):
        raise RestoreError("Only Site Admins can restore into a new organization.")
    storage = storage or default_storage
    try:
        with engine.open_reader(path, password) as reader:
            manifest = reader.verify()
            summary = engine.preview(reader)
    except ArchiveError as exc:
        audit_log(action="restore.upload_refused", actor=user, request=request, details={"reason": str(exc)})
        raise RestoreError(str(exc)) from exc
    size, sha256 = _sha256_of(path)
    upload = RestoreUpload(
        uploaded_by=user,
        password_wrapped=wrap_password(password),
        original_name=original_name[:255],
        size=size,
        sha256=sha256,
        manifest_summary={**summary, "format": manifest.get("format")},
    )
    with open(path, "rb") as fh:
        upload.file.save("upload.zip", File(fh), save=False)
    try:
        with transaction.atomic():
            upload.save()
            audit_log(
                action="restore.upload",
                actor=user,
                obj=upload,
                request=request,
                details={"size": size, "sha256": sha256},
            )
    except BaseException:
        delete_files([upload.file.name], storage)
        raise
    return upload


def uploads_cleanup(*, older_than: dt.timedelta = dt.timedelta(days=1)) -> int:
    """Delete uploads the wizard never used (abandoned) and their files."""
    count = 0
    for upload in RestoreUpload.objects.filter(created_at__lt=timezone.now() - older_than):
        if upload.restores.filter(status__in=Restore.ACTIVE_STATUSES).exists():
            continue
        delete_files([upload.file.name])
        upload.delete()
        count += 1
    return count


# ----------------------------------------------------------------------------------------------
# Who may restore


def restore_policy_set(*, organization: Organization, user: User, policy: str, request: Any = None) -> Organization:
    """Choose who may start in-place restores. The Owner only."""
    if not may_change_restore_policy(user, organization):
        raise RestoreError("Only the Owner can choose who may restore this organization.")
    if policy not in Organization.RestorePolicy.values:
        raise RestoreError("Choose one of the offered settings.")
    with transaction.atomic():
        current = Organization.objects.select_for_update().get(pk=organization.pk)
        if current.maintenance_since is not None:
            raise RestoreError("This organization is being restored; change the setting when the restore has finished.")
        old = current.restore_policy
        Organization.objects.filter(pk=organization.pk).update(restore_policy=policy)
        organization.refresh_from_db()
        audit_log(
            action="restore.policy",
            actor=user,
            organization=organization,
            obj=organization,
            request=request,
            details={"from": old, "to": policy},
        )
    return organization
