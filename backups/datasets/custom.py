"""Custom rows: the profile, the regulation catalog, users and roles, which are not plain
tenant rows and have their own exporter and importer."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from accounts.models import Membership, OURoleAssignment, Permission, Role
from backups.datasets.registry import ImportContext, RestoreDataError, Scope, to_json
from organizations import models as org_models
from organizations.models import Organization

PROFILE_FIELDS = (
    "name",
    "description",
    "license_identifier",
    "jurisdiction",
    "language_settings",
    "creation_wizard_data",
    "created_at",
)


def export_profile(organization: Organization, scope: Scope) -> Iterator[dict[str, Any]]:
    row = {name: to_json(getattr(organization, name)) for name in PROFILE_FIELDS}
    row["id"] = organization.pk
    row["slug"] = organization.slug
    row["master_data_version"] = organization.master_data_version.code
    row["logo"] = organization.logo.name or None
    yield row


def import_profile(organization: Organization, rows: list[dict[str, Any]], ctx: ImportContext) -> int:
    """Apply the backed-up profile to the target. The target keeps its own slug and name.

    The name is the one the user chose (the wizard pre-fills it from the backup); an in-place
    restore passes the backup's name through ``organization`` itself beforehand.
    """
    if not rows:
        return 0
    row = rows[0]
    for name in ("description", "license_identifier", "jurisdiction", "language_settings", "creation_wizard_data"):
        if not getattr(organization, name) and row.get(name):
            setattr(organization, name, row[name])
    logo = row.get("logo")
    if logo and not organization.logo:
        with ctx.open_member(logo["member"]) as stream:
            stored = ctx.save_file(Organization._meta.get_field("logo"), stream, "logo")
        organization.logo.name = stored
    organization.save()
    ctx.id_map("profile")[int(row["id"])] = organization.pk
    return 1


def export_regulations(organization: Organization, scope: Scope) -> Iterator[dict[str, Any]]:
    regulations = organization.regulations.order_by("pk")
    for pk, code, mdv in regulations.values_list("pk", "code", "master_data_version__code"):
        yield {"id": pk, "code": code, "master_data_version": mdv}


def import_regulations(organization: Organization, rows: list[dict[str, Any]], ctx: ImportContext) -> int:
    """Link the target to the catalog entries of its master data version with the same codes."""
    codes = {r["code"] for r in rows}
    catalog = org_models.Regulation.objects.filter(master_data_version=organization.master_data_version, code__in=codes)
    missing = codes - set(catalog.values_list("code", flat=True))
    if missing:
        raise RestoreDataError(
            f"Regulations {', '.join(sorted(missing))} are not in master data version "
            f"{organization.master_data_version.code}."
        )
    organization.regulations.add(*catalog)
    return len(codes)


def export_roles(organization: Organization, scope: Scope) -> Iterator[dict[str, Any]]:
    for role in Role.objects.filter(organization=organization).prefetch_related("permissions").order_by("pk"):
        yield {"id": role.pk, "name": role.name, "permissions": sorted(p.codename for p in role.permissions.all())}


def import_roles(organization: Organization, rows: list[dict[str, Any]], ctx: ImportContext) -> int:
    id_map = ctx.id_map("role")
    for row in rows:
        role, _ = Role.objects.get_or_create(organization=organization, name=row["name"])
        role.permissions.set(Permission.objects.filter(codename__in=row["permissions"]))
        id_map[int(row["id"])] = role.pk
    return len(rows)


def export_memberships(organization: Organization, scope: Scope) -> Iterator[dict[str, Any]]:
    qs = Membership.objects.filter(organization=organization).order_by("pk")
    for pk, email, name, role in qs.values_list("pk", "user__email", "user__full_name", "role"):
        yield {"id": pk, "user": email, "full_name": name, "role": role}


def import_memberships(organization: Organization, rows: list[dict[str, Any]], ctx: ImportContext) -> int:
    """Re-create memberships of users that exist on this system.

    Users are global and never created by a restore (a backup must not mint accounts). The
    target's Owner stays the Owner: a restore never transfers ownership.
    """
    existing = set(Membership.objects.filter(organization=organization).values_list("user__email", flat=True))
    count = 0
    for row in rows:
        user = ctx.user(row["user"])
        if user is None or row["user"] in existing:
            continue
        role = Membership.Role.ADMIN if row["role"] == Membership.Role.OWNER else row["role"]
        Membership.objects.create(user=user, organization=organization, role=role)
        count += 1
    return count


def export_ou_roles(organization: Organization, scope: Scope) -> Iterator[dict[str, Any]]:
    qs = OURoleAssignment.objects.filter(ou__organization=organization).filter(scope.ou_filter())
    for pk, email, ou_id, role_id, role_name, role_org in qs.order_by("pk").values_list(
        "pk", "user__email", "ou_id", "role_id", "role__name", "role__organization_id"
    ):
        yield {
            "id": pk,
            "user": email,
            "ou": ou_id,
            "role": role_id if role_org else None,
            "system_role": None if role_org else role_name,
        }


def import_ou_roles(organization: Organization, rows: list[dict[str, Any]], ctx: ImportContext) -> int:
    count = 0
    for row in rows:
        user = ctx.user(row["user"])
        if user is None:
            continue
        if row.get("system_role"):
            role = Role.objects.filter(organization=None, name=row["system_role"]).first()
            if role is None:
                continue
            role_id = role.pk
        else:
            role_id = ctx.map_id("role", row["role"], nullable=False)  # type: ignore[assignment]
        ou_id = ctx.map_id("ou", row["ou"], nullable=False)
        OURoleAssignment.objects.get_or_create(user=user, ou_id=ou_id, role_id=role_id)
        count += 1
    return count
