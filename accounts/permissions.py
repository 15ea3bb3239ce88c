"""Permission rules, in one place.

The rules (DESIGN.md, seeds 000 and 002):
- Site Admins hold every permission everywhere.
- An organization's Owner holds every permission in every OU of that organization.
- Account Backups (seed 000 decision, issue 12): the organization's Owners and Admins manage
  every backup of their organization (see, request for every OU, download, cancel) without
  any OU role: ``manages_all_backups``. Members hold Backups: Manage Account Backups in an OU
  only through a role assigned to them in that OU (seed 002). Restores stay Owner/Admin only
  (``restores.permissions``) and the restore code still goes to the Owner only.
- Every other permission is held in an OU only through a role assigned in that OU (Admins
  included).
Views and services ask these functions; none re-implements them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from django.db.models import QuerySet

from accounts.models import Membership

if TYPE_CHECKING:
    from accounts.models import User
    from organizations.models import OrganisationalUnit, Organization

MANAGE_ACCOUNT_BACKUPS = "backups.manage_account_backups"
MANAGE_ACCOUNT_BACKUPS_NAME = "Backups: Manage Account Backups"
ADMINISTRATION_EDITOR = "Administration Editor"


def role_in(user: User, organization: Organization) -> str | None:
    """The user's membership role in the organization (owner/admin/member), or None."""
    if not user.is_authenticated:
        return None
    cache = user.__dict__.setdefault("_role_cache", {})
    if organization.pk not in cache:
        cache[organization.pk] = (
            Membership.objects.filter(user=user, organization=organization).values_list("role", flat=True).first()
        )
    return cache[organization.pk]


def is_owner(user: User, organization: Organization) -> bool:
    return role_in(user, organization) == Membership.Role.OWNER


def is_owner_or_admin(user: User, organization: Organization) -> bool:
    return role_in(user, organization) in (Membership.Role.OWNER, Membership.Role.ADMIN)


def ous_with_permission(user: User, organization: Organization, codename: str) -> QuerySet[OrganisationalUnit]:
    """The OUs of the organization in which the user holds the permission."""
    from organizations.models import OrganisationalUnit

    ous = OrganisationalUnit.objects.filter(organization=organization)
    if not user.is_authenticated or not user.is_active:
        return ous.none()
    if user.is_site_admin or is_owner(user, organization):
        return ous
    if role_in(user, organization) is None:
        # A role assignment outlives a removed membership only by mistake; it grants nothing.
        return ous.none()
    return ous.filter(role_assignments__user=user, role_assignments__role__permissions__codename=codename).distinct()


def manages_all_backups(user: User, organization: Organization) -> bool:
    """Whether the user manages every backup of the organization whatever their OU roles:
    Site Admins, and the organization's Owner and Admins (seed 000)."""
    if not user.is_authenticated or not user.is_active:
        return False
    return bool(user.is_site_admin or is_owner_or_admin(user, organization))


def backup_ou_ids(user: User, organization: Organization) -> set[int]:
    """Ids of the OUs the user may back up (memoised on the user object for one request)."""
    from organizations.models import OrganisationalUnit

    cache = user.__dict__.setdefault("_backup_ou_cache", {})
    if organization.pk not in cache:
        if manages_all_backups(user, organization):
            ous = OrganisationalUnit.objects.filter(organization=organization)
        else:
            ous = ous_with_permission(user, organization, MANAGE_ACCOUNT_BACKUPS)
        cache[organization.pk] = set(ous.values_list("pk", flat=True))
    return cache[organization.pk]


def can_use_backups(user: User, organization: Organization) -> bool:
    """Whether the Account Backups menu shows: Site Admins, the organization's Owner and Admins,
    and members holding the permission in at least one OU."""
    if not user.is_authenticated:
        return False
    return manages_all_backups(user, organization) or bool(backup_ou_ids(user, organization))


def can_manage_backups_of(user: User, organization: Organization, ous: Iterable[OrganisationalUnit | int]) -> bool:
    """Whether the user holds Manage Account Backups in every one of the given OUs.

    An empty set of OUs means "all OUs of the organization".
    """
    wanted = {ou if isinstance(ou, int) else ou.pk for ou in ous}
    allowed = backup_ou_ids(user, organization)
    if not wanted:
        from organizations.models import OrganisationalUnit

        wanted = set(OrganisationalUnit.objects.filter(organization=organization).values_list("pk", flat=True))
    return bool(allowed) and wanted <= allowed
