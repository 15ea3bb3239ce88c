"""Who may restore: the organization's setting, read in one place."""

from __future__ import annotations

from accounts.models import Membership, User
from accounts.permissions import is_owner, role_in
from organizations.models import Organization


def may_restore_in_place(user: User, organization: Organization) -> bool:
    """The Owner always; Admins too unless the Owner chose "the Owner only".

    Seeing the backup (``Backup.objects.visible_to``) is checked separately by the views.
    """
    role = role_in(user, organization)
    if role == Membership.Role.OWNER:
        return True
    return role == Membership.Role.ADMIN and organization.restore_policy == Organization.RestorePolicy.OWNER_AND_ADMINS


def may_change_restore_policy(user: User, organization: Organization) -> bool:
    return is_owner(user, organization)


def may_use_wizard(user: User) -> bool:
    """Restores into a new organization are for Site Admins (platform staff)."""
    return bool(user.is_authenticated and user.is_active and user.is_site_admin)
