"""Operators' restores from the server shell (``manage.py restore``).

The Owner's code protects the web path; whoever runs ``manage.py`` on the server is already
trusted with the database, so an operator's in-place restore needs no code. It is the same
scope-exact restore (pre-restore backup first, one transaction, maintenance banner), run
synchronously, and audited as the operator (a staff user named by email).
"""

from __future__ import annotations

import logging

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import User
from accounts.services import audit_log
from backups.models import Backup
from backups.services import worker_name
from organizations.models import Organization
from restores.models import Restore
from restores.services import RestoreError, in_place_problems, restore_run

logger = logging.getLogger(__name__)


def operator_for(email: str) -> User:
    """The active staff user (operator) with this email; ``RestoreError`` otherwise."""
    operator = User.objects.filter(email__iexact=email.strip(), is_active=True, is_staff=True).first()
    if operator is None:
        raise RestoreError(f"There is no active operator (staff user) with the email {email}.")
    return operator


def restore_in_place_by_operator(*, backup: Backup, operator: User) -> Restore:
    """Restore ``backup`` over its organization now, in this process, as ``operator``.

    Returns the finished restore (completed or failed: its ``failure_reason`` says why; the
    organization is then as it was). Raises ``RestoreError`` when it cannot start.
    """
    problems = in_place_problems(backup)
    if problems:
        raise RestoreError(" ".join(problems))
    org = backup.organization
    now = timezone.now()
    try:
        with transaction.atomic():
            Organization.objects.select_for_update().filter(pk=org.pk).first()
            active = Restore.objects.filter(
                organization=org, kind=Restore.Kind.IN_PLACE, status__in=Restore.ACTIVE_STATUSES
            )
            if active.exists():
                raise RestoreError("A restore of this organization is already queued or running.")
            restore = Restore.objects.create(
                kind=Restore.Kind.IN_PLACE,
                status=Restore.Status.RUNNING,
                organization=org,
                backup=backup,
                requested_by=operator,
                confirmed_at=now,
                started_at=now,
                worker=worker_name(),
            )
            audit_log(
                action="restore.operator_start",
                actor=operator,
                organization=org,
                obj=restore,
                details={"backup": backup.pk, "via": "manage.py restore in-place"},
            )
    except IntegrityError as exc:
        raise RestoreError("A restore of this organization was started at the same moment.") from exc
    logger.info("restore %s of organization %s started by operator %s", restore.pk, org.pk, operator.pk)
    restore = restore_run(restore=restore)
    audit_log(
        action="restore.operator_finish",
        actor=operator,
        organization=org,
        obj=restore,
        details={"backup": backup.pk, "status": restore.status, "reason": restore.failure_reason},
    )
    return restore
