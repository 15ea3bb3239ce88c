"""Writes on a backup's request side: request, retry, cancel, expire (also the expiry sweep and
the rotation of scheduled backups)."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import User
from accounts.permissions import backup_ou_ids
from accounts.services import audit_log
from backups import datasets as ds
from backups.archive import generate_password
from backups.keys import wrap_password
from backups.models import Backup, BackupSchedule
from backups.services.common import BackupError, IllegalTransition, _delete_quietly, _event
from organizations.models import Facility, OrganisationalUnit, Organization

# One logger for the backup services, under the name operators know from the logs.
logger = logging.getLogger("backups.services")


MIN_USER_PASSWORD = 12


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
    requested_via: str = "",
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
                requested_via=requested_via[:200],
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
                requested_via=backup.requested_via,
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


def backup_expire(*, backup: Backup, user: User | None = None, request: Any = None, early: bool = False) -> Backup:
    """Delete a completed backup's file; the record and its download history stay.

    The file goes once the expiry is committed, and the record forgets its name only when it
    is gone: when the storage cannot be reached, the expired backup keeps the name and the next
    expiry sweep (``backups_expire_due``) removes the file."""
    with transaction.atomic():
        current = Backup.objects.select_for_update().get(pk=backup.pk)
        if current.status != Backup.Status.COMPLETED:
            raise IllegalTransition(f"Only a completed backup can expire; this one is {current.get_status_display()}.")
        name = current.file.name
        Backup.objects.filter(pk=backup.pk).update(status=Backup.Status.EXPIRED, expired_at=timezone.now())
        backup.refresh_from_db()
        _event(backup, Backup.Status.EXPIRED, "Expired early" if early else "Download period over", user)
        audit_log(
            action="backup.expire_early" if early else "backup.expire",
            actor=user,
            organization=backup.organization,
            obj=backup,
            request=request,
        )
        transaction.on_commit(lambda: _remove_expired_file(backup.pk, name))
    return backup


def _remove_expired_file(backup_id: int, name: str) -> bool:
    """Delete an expired backup's file, then forget its name. False (the name stays, for the
    next sweep) when the storage could not be reached."""
    if not name:
        return True
    if not _delete_quietly(default_storage, name):
        return False
    Backup.objects.filter(pk=backup_id, status=Backup.Status.EXPIRED, file=name).update(file="")
    return True


def backups_expire_due(*, now: Any = None) -> int:
    """Expire every completed backup whose download period is over, and remove the files that
    earlier expiries could not (the storage was unreachable)."""
    now = now or timezone.now()
    count = 0
    for backup in Backup.objects.filter(status=Backup.Status.COMPLETED, download_expires_at__lte=now):
        try:
            backup_expire(backup=backup)
            count += 1
        except IllegalTransition:
            continue
    for pk, name in Backup.objects.filter(status=Backup.Status.EXPIRED).exclude(file="").values_list("pk", "file"):
        if not _remove_expired_file(pk, name):
            logger.warning("backup %s: the file of the expired backup could not be removed yet", pk)
    return count


def _rotate_scheduled(schedule: BackupSchedule) -> None:
    """Keep the last N completed scheduled backups of a schedule; expire older ones."""
    completed = Backup.objects.filter(schedule=schedule, status=Backup.Status.COMPLETED).order_by(
        "-completed_at", "-pk"
    )
    for old in completed[schedule.keep_last :]:
        backup_expire(backup=old)
