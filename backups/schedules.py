"""Writes of backup schedules: save (with its scope), delete, and queue the runs that are due.
Each run is an ordinary request (``services.backup_request``) of kind *scheduled*."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts.models import User
from accounts.services import audit_log
from backups import datasets as ds
from backups.models import Backup, BackupSchedule
from backups.services import BackupError, backup_request, resolve_ous, subscription_valid
from organizations.models import Facility, OrganisationalUnit

logger = logging.getLogger(__name__)


@transaction.atomic
def schedule_save(
    *,
    schedule: BackupSchedule,
    user: User | None,
    ous: Iterable[OrganisationalUnit] | None = None,
    facilities: Iterable[Facility] | None = None,
    request: Any = None,
) -> BackupSchedule:
    """Create or update a schedule and compute its next run. ``ous``/``facilities`` (None: keep)
    limit its backups as in a request; none of either backs up every OU. Refused without a
    valid subscription (its backups could not run)."""
    if not subscription_valid(schedule.organization):
        raise BackupError("This organization has no valid backup subscription: its scheduled backups could not run.")
    ou_list = list(ous) if ous is not None else None
    facility_list = list(facilities) if facilities is not None else None
    if ou_list is not None or facility_list is not None:
        # The same checks as a request: OUs and facilities of this organization, the user's own.
        resolve_ous(organization=schedule.organization, user=user, ous=ou_list or [], facilities=facility_list or [])
    schedule.datasets = ds.resolve(schedule.datasets) if schedule.datasets else []
    schedule.next_run_at = schedule.compute_next_run(timezone.now()) if schedule.enabled else None
    if schedule.pk is None:
        schedule.created_by = user
    schedule.save()
    if ou_list is not None:
        schedule.ous.set(ou_list)
    if facility_list is not None:
        schedule.facilities.set(facility_list)
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
    """Queue a backup for every enabled schedule whose time has come, with the schedule's scope."""
    now = now or timezone.now()
    queued: list[Backup] = []
    due = (
        BackupSchedule.objects.filter(enabled=True, next_run_at__lte=now)
        .select_related("organization")
        .prefetch_related("ous", "facilities")
    )
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
                requested_via=f"Schedule “{schedule.name}”",
                ous=list(schedule.ous.all()),
                facilities=list(schedule.facilities.all()),
                datasets=schedule.datasets or None,
                include_active=schedule.include_active,
                include_inactive=schedule.include_inactive,
                exclude_superseded=schedule.exclude_superseded,
                label=schedule.backup_label(now),
                kind=Backup.Kind.SCHEDULED,
                schedule=schedule,
            )
            queued.append(backup)
        except BackupError as exc:
            logger.warning("schedule %s skipped: %s", schedule.pk, exc)
    return queued
