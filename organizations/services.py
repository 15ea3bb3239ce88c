"""Writes of the organizations app."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.files.storage import Storage, default_storage
from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from accounts.models import Membership, Permission, Role, User
from accounts.permissions import (
    ADMINISTRATION_EDITOR,
    MANAGE_ACCOUNT_BACKUPS,
    MANAGE_ACCOUNT_BACKUPS_NAME,
)
from accounts.services import audit_log
from organizations.models import Facility, MasterDataVersion, OrganisationalUnit, Organization, Regulation
from organizations.models.profile import logo_upload_to

# Logos uploaded in the creation wizard wait here until the organization is created.
WIZARD_UPLOADS = "wizard-uploads/"


class OrganizationRefused(Exception):
    """The wizard's answers cannot become an organization (a sentence for the user)."""


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


@transaction.atomic
def organization_create_from_wizard(
    *,
    answers: dict[str, Any],
    creation_wizard_data: dict[str, Any],
    created_by: User,
    logo: str = "",
    storage: Storage | None = None,
) -> Organization:
    """Create an organization from the creation wizard's answers: profile, Owner, logo,
    regulations, facilities and OUs, in one transaction (any failure leaves nothing behind).

    ``logo`` is a file in ``storage`` uploaded during the wizard; it is copied to the
    organization's logo and the caller deletes the temporary file.
    """
    storage = storage or default_storage
    company = answers["company"]
    owner = User.objects.filter(email__iexact=company["owner_email"], is_active=True).first()
    if owner is None:
        raise OrganizationRefused(f"There is no active user {company['owner_email']} to become the Owner.")
    mdv = MasterDataVersion.objects.filter(code=company["master_data_version"]).first()
    if mdv is None:
        raise OrganizationRefused(f"Master data version {company['master_data_version']} does not exist.")
    if Organization.objects.filter(slug=company["slug"]).exists():
        raise OrganizationRefused(f"The address “{company['slug']}” is taken by another organization; choose another.")
    languages = [code for code in company.get("available_languages", "").split(", ") if code]
    organization = organization_create(
        name=company["name"],
        slug=company["slug"],
        owner=owner,
        master_data_version=mdv,
        created_by=created_by,
        description=company.get("description", ""),
        license_identifier=company.get("license_identifier", ""),
        jurisdiction=company.get("jurisdiction", ""),
        language_settings={"default": company.get("default_language", ""), "available": languages},
        creation_wizard_data=creation_wizard_data,
    )
    codes = (answers.get("regulations") or {}).get("regulations") or []
    organization.regulations.set(Regulation.objects.filter(master_data_version=mdv, code__in=codes))
    structure = answers.get("structure") or {}
    facilities = {
        row["code"]: Facility.objects.create(organization=organization, name=row["name"], code=row["code"])
        for row in structure.get("facilities") or []
    }
    for row in structure.get("ous") or []:
        OrganisationalUnit.objects.create(
            organization=organization, name=row["name"], code=row["code"], facility=facilities.get(row.get("facility"))
        )
    if logo:
        if not storage.exists(logo):
            raise OrganizationRefused("The uploaded logo is no longer kept; upload it again in the Company step.")
        with storage.open(logo, "rb") as fh:
            name = storage.save(logo_upload_to(organization, "logo"), fh)
        # Last, so that nothing after it can roll the organization back and strand the file.
        organization.logo.name = name
        Organization.objects.filter(pk=organization.pk).update(logo=name)
    return organization


def wizard_uploads_cleanup(*, older_than: dt.timedelta = dt.timedelta(days=1), storage: Storage | None = None) -> int:
    """Delete logos uploaded in creation wizards that were abandoned (older than ``older_than``)."""
    storage = storage or default_storage
    try:
        _folders, names = storage.listdir(WIZARD_UPLOADS)
    except FileNotFoundError:
        return 0
    cutoff = timezone.now() - older_than
    count = 0
    for name in names:
        path = f"{WIZARD_UPLOADS}{name}"
        if storage.get_modified_time(path) < cutoff:
            storage.delete(path)
            count += 1
    return count
