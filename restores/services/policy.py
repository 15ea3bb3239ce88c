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


def refuse_while_restoring(organization: Organization | int, *, other_than: Restore | None = None) -> None:
    """Raise ``RestoreError`` while a restore of ``organization`` (of any kind: in place,
    selective, an operator's; ``other_than`` aside) is queued or running, so a request is
    refused when it is made or its code entered rather than when the worker reaches it. Call
    inside the transaction that holds the organization's row lock (``lock_refusing_while_restoring``),
    so two requests cannot both pass."""
    active = Restore.objects.filter(organization=organization, status__in=Restore.ACTIVE_STATUSES)
    if other_than is not None:
        active = active.exclude(pk=other_than.pk)
    if active.exists():
        raise RestoreError(ALREADY_RESTORING)


def lock_refusing_while_restoring(organization_id: int, *, other_than: Restore | None = None) -> None:
    """Take the organization's row lock, which serializes its restore requests, code entries
    and operators' starts (call inside a transaction), then ``refuse_while_restoring``. Also
    checked before waiting: a running in-place restore holds that lock until it ends, and the
    refusal should not wait minutes for it."""
    refuse_while_restoring(organization_id, other_than=other_than)
    Organization.objects.select_for_update().filter(pk=organization_id).first()
    refuse_while_restoring(organization_id, other_than=other_than)


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
