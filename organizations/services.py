"""Writes of the organizations app."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils.text import slugify

from accounts.models import Membership, Permission, Role, User
from accounts.permissions import (
    ADMINISTRATION_EDITOR,
    MANAGE_ACCOUNT_BACKUPS,
    MANAGE_ACCOUNT_BACKUPS_NAME,
)
from accounts.services import audit_log
from organizations.models import MasterDataVersion, Organization


def system_roles_ensure() -> Role:
    """Create the built-in permission and the Administration Editor role if missing."""
    perm, _ = Permission.objects.get_or_create(
        codename=MANAGE_ACCOUNT_BACKUPS, defaults={"name": MANAGE_ACCOUNT_BACKUPS_NAME}
    )
    role, _ = Role.objects.get_or_create(name=ADMINISTRATION_EDITOR, organization=None, defaults={"is_system": True})
    role.permissions.add(perm)
    return role


def unique_slug(name: str) -> str:
    base = slugify(name)[:50] or "organization"
    slug, n = base, 2
    while Organization.objects.filter(slug=slug).exists():
        slug, n = f"{base}-{n}", n + 1
    return slug


@transaction.atomic
def organization_create(
    *,
    name: str,
    owner: User,
    master_data_version: MasterDataVersion,
    slug: str | None = None,
    created_by: User | None = None,
    **profile: Any,
) -> Organization:
    """Create an organization together with its one Owner."""
    organization = Organization.objects.create(
        name=name, slug=slug or unique_slug(name), master_data_version=master_data_version, **profile
    )
    Membership.objects.create(user=owner, organization=organization, role=Membership.Role.OWNER)
    audit_log(action="organization.create", actor=created_by or owner, organization=organization, obj=organization)
    return organization


@transaction.atomic
def organization_transfer_ownership(*, organization: Organization, new_owner: User, actor: User) -> None:
    """Hand ownership to another member; the previous Owner becomes an Admin."""
    Membership.objects.filter(organization=organization, role=Membership.Role.OWNER).update(role=Membership.Role.ADMIN)
    Membership.objects.update_or_create(
        organization=organization, user=new_owner, defaults={"role": Membership.Role.OWNER}
    )
    audit_log(
        action="organization.transfer_ownership",
        actor=actor,
        organization=organization,
        obj=organization,
        details={"new_owner": new_owner.email},
    )
