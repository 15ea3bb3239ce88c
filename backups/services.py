"""Writes of the backup engine: request, cancel, claim, run, complete, fail, expire, sweep,
schedules. Views, tasks and the ``backup`` command call these; every state change is one
function here, claimed atomically, audited, and an illegal transition raises."""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Iterable
from typing import Any, BinaryIO

from django.conf import settings
from django.core.files.storage import Storage, default_storage
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from accounts.models import User
from accounts.permissions import backup_ou_ids
from accounts.services import audit_log
from backups import datasets as ds
from backups.archive import generate_password
from backups.export import estimate, write_archive
from backups.keys import wrap_password
from backups.models import Backup, BackupEvent, BackupSchedule, archive_upload_to
from backups.notify import backup_notify_finished
from backupsvc.lib.logcontext import log_context
from organizations.models import Facility, OrganisationalUnit, Organization

logger = logging.getLogger(__name__)

MIN_USER_PASSWORD = 12


class BackupError(Exception):
    """A request or transition the rules refuse; the message is shown to the user as is."""


class IllegalTransition(BackupError):
    pass


class BackupAborted(Exception):
    """The job was cancelled or failed by someone else (e.g. the stale sweep) while running."""


def _event(backup: Backup, status: str, message: str = "", actor: User | None = None) -> None:
    BackupEvent.objects.create(backup=backup, status=status, message=message[:500], actor=actor)


def subscription_valid(organization: Organization) -> bool:
    sub = getattr(organization, "subscription", None)
    return bool(sub and sub.is_valid())


def resolve_ous(
    *,
    organization: Organization,
    user: User | None,
    ous: Iterable[OrganisationalUnit],
    facilities: Iterable[Facility],
) -> tuple[set[int], bool]:
    """The OU ids a request covers and whether that is every OU of the organization.

    No OUs and no facilities: every OU the requester may back up. A facility none of whose
    OUs were picked: all of its OUs. Raises when an OU or facility is not the organization's
    or the requester lacks the permission in one of the OUs.
    """
    all_ids = set(OrganisationalUnit.objects.filter(organization=organization).values_list("pk", flat=True))
    ou_ids = {ou.pk for ou in ous}
    facility_list = list(facilities)
    if any(f.organization_id != organization.pk for f in facility_list) or not ou_ids <= all_ids:
        raise BackupError("Pick OUs and facilities of this organization only.")
    for facility in facility_list:
        mine = set(facility.ous.values_list("pk", flat=True))
        if not (mine & ou_ids):
            ou_ids |= mine
    allowed = backup_ou_ids(user, organization) if user is not None else all_ids
    if not ou_ids and not facility_list:
        ou_ids = set(allowed)
    if not ou_ids:
        raise BackupError("There are no OUs to back up: you hold the backup permission in none of them.")
    missing = ou_ids - allowed
    if missing:
        names = ", ".join(sorted(OrganisationalUnit.objects.filter(pk__in=missing).values_list("name", flat=True)))
        raise BackupError(f"You do not hold Backups: Manage Account Backups in {names}.")
    return ou_ids, ou_ids == all_ids


def backup_request(
    *,
    organization: Organization,
    requested_by: User | None,
    ous: Iterable[OrganisationalUnit] = (),
    facilities: Iterable[Facility] = (),
    include_active: bool = True,
    include_inactive: bool = False,
    exclude_superseded: bool = False,
    datasets: Iterable[str] | None = None,
    label: str = "",
    password: str | None = None,
    password_source: str | None = None,
    kind: str = Backup.Kind.MANUAL,
    schedule: BackupSchedule | None = None,
    request: Any = None,
    dispatch: bool | None = None,
) -> tuple[Backup, str]:
    """Queue a backup. Returns the backup and its password (shown once, never stored in clear).

    Refused (``BackupError``) without a valid subscription, while another backup of the
    organization is pending (also a database constraint), or when the requester lacks the
    permission in one of the chosen OUs. ``password_source`` records where a given password came
    from (the request dialog passes a password the system generated when it opened).
    """
    if not subscription_valid(organization) and kind != Backup.Kind.PRE_RESTORE:
        raise BackupError("This organization has no valid backup subscription.")
    if password is not None and password != "" and len(password) < MIN_USER_PASSWORD:
        raise BackupError(f"Your own password must be at least {MIN_USER_PASSWORD} characters long.")
    try:
        keys = ds.resolve(list(datasets) if datasets else None)
    except ValueError as exc:
        raise BackupError(str(exc)) from exc
    facility_list = list(facilities)
    ou_ids, all_ous = resolve_ous(organization=organization, user=requested_by, ous=list(ous), facilities=facility_list)
    source = password_source or (Backup.PasswordSource.USER if password else Backup.PasswordSource.GENERATED)
    password = password or generate_password()
    try:
        with transaction.atomic():
            if Backup.objects.pending().filter(organization=organization).exists():
                raise BackupError("A backup of this organization is already pending.")
            backup = Backup.objects.create(
                organization=organization,
                requested_by=requested_by,
                kind=kind,
                schedule=schedule,
                label=label.strip()[:120],
                all_ous=all_ous,
                include_active=include_active,
                include_inactive=include_inactive,
                exclude_superseded=exclude_superseded,
                datasets=keys,
                password_wrapped=wrap_password(password),
                password_source=source,
            )
            backup.ous.set(ou_ids)
            backup.facilities.set(facility_list)
            _event(backup, Backup.Status.PENDING, "Requested", requested_by)
            audit_log(
                action="backup.request",
                actor=requested_by,
                organization=organization,
                obj=backup,
                request=request,
                details={"datasets": keys, "ous": sorted(ou_ids), "kind": kind},
            )
            if dispatch if dispatch is not None else settings.BACKUP_DISPATCH_IMMEDIATELY:
                from backups.tasks import run_backup

                # robust: a broker outage must not turn a queued request into an error; beat
                # runs the queue anyway.
                transaction.on_commit(lambda: run_backup.delay(backup.pk), robust=True)
    except IntegrityError as exc:
        # Two requests raced past the check; the partial unique index decided.
        raise BackupError("A backup of this organization is already pending.") from exc
    logger.info("backup %s requested for organization %s", backup.pk, organization.pk)
    return backup, password


@transaction.atomic
def backup_cancel(*, backup: Backup, user: User | None, request: Any = None) -> Backup:
    """Cancel a pending backup. Only pending backups can be cancelled."""
    updated = Backup.objects.filter(pk=backup.pk, status=Backup.Status.PENDING).update(
        status=Backup.Status.CANCELLED, cancelled_at=timezone.now()
    )
    if not updated:
        backup.refresh_from_db()
        raise IllegalTransition(f"Only a pending backup can be cancelled; this one is {backup.get_status_display()}.")
    backup.refresh_from_db()
    _event(backup, Backup.Status.CANCELLED, "Cancelled", user)
    audit_log(action="backup.cancel", actor=user, organization=backup.organization, obj=backup, request=request)
    return backup


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


def _delete_quietly(storage: Storage, name: str) -> bool:
    """Remove a (partial) archive. On S3, also abort an unfinished multipart upload: a worker
    killed mid-upload leaves parts that no object delete removes (and that are billed).
    Returns False when the storage could not be asked (it is unavailable): something may be left."""
    if not name:
        return True
    removed = True
    try:
        storage.delete(name)
    except Exception:
        removed = False
        logger.warning("could not delete stored file of a failed backup: %s", name, exc_info=True)
    bucket = getattr(storage, "bucket", None)
    if bucket is not None:
        try:
            key = storage._normalize_name(name)  # type: ignore[attr-defined]
            for upload in bucket.multipart_uploads.filter(Prefix=key):
                if upload.object_key == key:
                    upload.abort()
        except Exception:
            removed = False
            logger.warning("could not abort the multipart upload of %s", name, exc_info=True)
    return removed


class _Heartbeat:
    """Progress writer and liveness signal; aborts the job if it was taken away."""

    def __init__(self, backup: Backup, total_items: int, total_bytes: int, interval: float = 2.0) -> None:
        self.backup = backup
        self.total_items = total_items
        self.total_bytes = total_bytes
        self.interval = interval
        self._last = 0.0

    def __call__(self, items_done: int, bytes_done: int, *, force: bool = False) -> None:
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
    with log_context(backup_id=backup.pk):
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
                created_by=backup.requested_by.email if backup.requested_by else "system",
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
    except Exception as exc:
        removed = _delete_quietly(storage, name)
        logger.exception("backup %s failed", backup.pk)
        return backup_fail(backup=backup, reason=_reason(exc), file_removed=removed)
    return backup_complete(backup=backup, result=result, name=name)


def _reason(exc: BaseException) -> str:
    """The failure as the user reads it. A storage failure (also one the archive writer wrapped)
    says so, without the store's address or the object's key, which botocore's messages carry."""
    storage = _storage_failure(exc)
    text = storage or str(exc).strip() or exc.__class__.__name__
    return text[:1000]


def _storage_failure(exc: BaseException) -> str | None:
    from botocore.exceptions import BotoCoreError, ClientError

    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno is not None:
            return f"Storage error: {current.strerror or current}"
        if isinstance(current, ClientError):
            code = current.response.get("Error", {}).get("Code", "") or "an error"
            return f"Storage error: the file storage refused the request ({code}). Try again later."
        if isinstance(current, BotoCoreError):
            return (
                f"Storage error: the file storage could not be reached ({current.__class__.__name__}). Try again later."
            )
        current = current.__cause__  # explicit chaining only: a handled error is not the cause
    return None


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


def backup_expire(*, backup: Backup, user: User | None = None, request: Any = None, early: bool = False) -> Backup:
    """Delete a completed backup's file; the record and its download history stay."""
    with transaction.atomic():
        current = Backup.objects.select_for_update().get(pk=backup.pk)
        if current.status != Backup.Status.COMPLETED:
            raise IllegalTransition(f"Only a completed backup can expire; this one is {current.get_status_display()}.")
        name = current.file.name
        Backup.objects.filter(pk=backup.pk).update(status=Backup.Status.EXPIRED, expired_at=timezone.now(), file="")
        backup.refresh_from_db()
        _event(backup, Backup.Status.EXPIRED, "Expired early" if early else "Download period over", user)
        audit_log(
            action="backup.expire_early" if early else "backup.expire",
            actor=user,
            organization=backup.organization,
            obj=backup,
            request=request,
        )
        transaction.on_commit(lambda: _delete_quietly(default_storage, name))
    return backup


def backups_expire_due(*, now: Any = None) -> int:
    """Expire every completed backup whose download period is over."""
    now = now or timezone.now()
    count = 0
    for backup in Backup.objects.filter(status=Backup.Status.COMPLETED, download_expires_at__lte=now):
        try:
            backup_expire(backup=backup)
            count += 1
        except IllegalTransition:
            continue
    return count


def backups_fail_stale(*, now: Any = None) -> int:
    """Fail jobs whose worker stopped sending heartbeats (it died), so they can be requested again;
    remove the partial files that failed jobs left while the storage could not be reached."""
    now = now or timezone.now()
    cutoff = now - settings.BACKUP_HEARTBEAT_STALE_AFTER
    count = 0
    stale = Backup.objects.filter(status=Backup.Status.IN_PROGRESS).filter(
        Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True, started_at__lt=cutoff)
    )
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
        backup = backup_claim()
        if backup is None:
            break
        backup_run(backup=backup)
        done += 1
    return done


# ----------------------------------------------------------------------------------------------
# Schedules


@transaction.atomic
def schedule_save(*, schedule: BackupSchedule, user: User | None, request: Any = None) -> BackupSchedule:
    """Create or update a schedule and compute its next run."""
    schedule.datasets = ds.resolve(schedule.datasets) if schedule.datasets else []
    schedule.next_run_at = schedule.compute_next_run(timezone.now()) if schedule.enabled else None
    if schedule.pk is None:
        schedule.created_by = user
    schedule.save()
    audit_log(
        action="backup_schedule.save", actor=user, organization=schedule.organization, obj=schedule, request=request
    )
    return schedule


@transaction.atomic
def schedule_delete(*, schedule: BackupSchedule, user: User | None, request: Any = None) -> None:
    """Delete a schedule; the backups it made stay (their ``schedule`` link is cleared)."""
    audit_log(
        action="backup_schedule.delete", actor=user, organization=schedule.organization, obj=schedule, request=request
    )
    schedule.delete()


def schedules_run_due(*, now: Any = None) -> list[Backup]:
    """Queue a backup for every enabled schedule whose time has come."""
    now = now or timezone.now()
    queued: list[Backup] = []
    due = BackupSchedule.objects.filter(enabled=True, next_run_at__lte=now).select_related("organization")
    for schedule in due:
        with transaction.atomic():
            # Claim the run first so two beats (or a retry) never queue it twice.
            claimed = BackupSchedule.objects.filter(pk=schedule.pk, next_run_at=schedule.next_run_at).update(
                last_run_at=now, next_run_at=schedule.compute_next_run(now)
            )
        if not claimed:
            continue
        try:
            backup, _ = backup_request(
                organization=schedule.organization,
                requested_by=None,
                datasets=schedule.datasets or None,
                include_active=schedule.include_active,
                include_inactive=schedule.include_inactive,
                exclude_superseded=schedule.exclude_superseded,
                label=f"{schedule.name} {timezone.localtime(now):%Y-%m-%d %H:%M}",
                kind=Backup.Kind.SCHEDULED,
                schedule=schedule,
            )
            queued.append(backup)
        except BackupError as exc:
            logger.warning("schedule %s skipped: %s", schedule.pk, exc)
    return queued


def _rotate_scheduled(schedule: BackupSchedule) -> None:
    """Keep the last N completed scheduled backups of a schedule; expire older ones."""
    completed = Backup.objects.filter(schedule=schedule, status=Backup.Status.COMPLETED).order_by(
        "-completed_at", "-pk"
    )
    for old in completed[schedule.keep_last :]:
        backup_expire(backup=old)


def backup_retry(*, backup: Backup, user: User | None, request: Any = None) -> Backup:
    """Queue a failed backup again with the same scope, data sets and (wrapped) password."""
    if backup.status != Backup.Status.FAILED:
        raise IllegalTransition(f"Only a failed backup can be retried; backup {backup.pk} is {backup.status}.")
    try:
        with transaction.atomic():
            if Backup.objects.pending().filter(organization=backup.organization).exists():
                raise BackupError("A backup of this organization is already pending.")
            retry = Backup.objects.create(
                organization=backup.organization,
                requested_by=backup.requested_by,
                kind=backup.kind,
                schedule=backup.schedule,
                label=backup.label,
                all_ous=backup.all_ous,
                include_active=backup.include_active,
                include_inactive=backup.include_inactive,
                exclude_superseded=backup.exclude_superseded,
                datasets=backup.datasets,
                password_wrapped=backup.password_wrapped,
                password_source=backup.password_source,
            )
            retry.ous.set(backup.ous.all())
            retry.facilities.set(backup.facilities.all())
            _event(retry, Backup.Status.PENDING, f"Retry of backup {backup.pk}", user)
            audit_log(action="backup.retry", actor=user, organization=backup.organization, obj=retry, request=request)
    except IntegrityError as exc:
        raise BackupError("A backup of this organization is already pending.") from exc
    return retry
