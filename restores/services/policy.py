"""Who may start in-place restores of an organization (its restore policy, the Owner's choice),
and when: one restore of an organization at a time, whatever its kind."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from accounts.models import User
from accounts.services import audit_log
from organizations.models import Organization
from restores.models import Restore
from restores.permissions import may_change_restore_policy
from restores.services.common import RestoreError

ALREADY_RESTORING = "A restore of this organization is already queued or running."


def refuse_while_restoring(organization: Organization) -> None:
    """Raise ``RestoreError`` while a restore of ``organization`` (of any kind: in place,
    selective, an operator's) is queued or running, so a request is refused when it is made
    rather than when the worker reaches it. Call inside the transaction that holds the
    organization's row lock, so two requests cannot both pass."""
    if Restore.objects.filter(organization=organization, status__in=Restore.ACTIVE_STATUSES).exists():
        raise RestoreError(ALREADY_RESTORING)


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
