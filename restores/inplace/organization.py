"""The in-place writer for the organization's rows with rules of their own: its profile
(updated, never re-created), its regulations (from the master data catalog), roles with their
permissions, memberships (accounts are never created; the Owner stays the Owner) and OU role
assignments. Every other model is a plain row (``Writer.plain``).
"""

from __future__ import annotations

from typing import Any

from accounts.models import Membership, OURoleAssignment, Permission, Role
from backups import datasets as ds
from organizations.models import MasterDataVersion, Organization, Regulation
from organizations.models.profile import logo_upload_to
from restores.inplace.plan import member_of, stream_rows
from restores.inplace.write import Counts, Writer

PROFILE_FIELDS = ("description", "license_identifier", "jurisdiction", "language_settings", "creation_wizard_data")


class OrganizationWriter(Writer):
    """``Writer`` with the models the scope-exact restore writes by their own rules."""

    def profile(self, manifest: dict[str, Any]) -> int:
        row = next(stream_rows(self.reader, "data/profile/profile.jsonl"), None)
        if row is None:
            return 0
        org = self.organization
        captured = manifest.get("organization") or {}
        changes: dict[str, Any] = {}
        name = captured.get("name") or row.get("name")
        if name and name != org.name:
            changes["name"] = name
        for fname in PROFILE_FIELDS:
            if fname in row and getattr(org, fname) != row[fname]:
                changes[fname] = row[fname]
        code = manifest.get("master_data_version")
        if code and code != org.master_data_version.code:
            changes["master_data_version"] = MasterDataVersion.objects.get(code=code)
        logo = row.get("logo")
        if not self.same_file(org.logo.name or "", logo):
            changes["logo"] = (
                self.store(Organization._meta.get_field("logo"), logo, logo_upload_to(org, "logo")) if logo else ""
            )
            if org.logo.name:
                self.old_files.append(org.logo.name)
        if changes:
            Organization.objects.filter(pk=org.pk).update(**changes)
            org.refresh_from_db()
        self.counts["profile"] = Counts(updated=1 if changes else 0, unchanged=0 if changes else 1)
        return 1

    def regulations(self) -> int:
        org = self.organization
        codes = {r["code"] for r in stream_rows(self.reader, "data/regulations/regulation.jsonl")}
        catalog = list(Regulation.objects.filter(master_data_version=org.master_data_version, code__in=codes))
        missing = codes - {r.code for r in catalog}
        if missing:
            raise ds.RestoreDataError(
                f"Regulations {', '.join(sorted(missing))} are not in master data version "
                f"{org.master_data_version.code}."
            )
        org.regulations.set(catalog)
        return len(codes)

    def roles(self, dataset: str, spec: ds.ModelSpec) -> int:
        plan = self.plans[spec.key]
        counts = self.counts.setdefault(spec.key, Counts())
        self.placeholders(plan)
        total = 0
        for row in stream_rows(self.reader, member_of(dataset, spec)):
            total += 1
            pk = int(row["id"])
            perms = set(Permission.objects.filter(codename__in=row.get("permissions") or []))
            role = Role.objects.filter(pk=pk, organization=self.organization).first()
            if role is None:
                free = self.free_keys(Role, [pk])
                role = Role(pk=pk if free else None, organization=self.organization, name=row["name"])
                Role.objects.bulk_create([role])
                if free:
                    self.advance_sequence(Role)
                else:
                    self.id_maps.setdefault(spec.key, {})[pk] = role.pk
                role.permissions.set(perms)
                counts.created += 1
                continue
            changed = role.name != row["name"] or pk in plan.unique_changing
            if changed:
                Role.objects.filter(pk=pk).update(name=row["name"])
            if set(role.permissions.all()) != perms:
                role.permissions.set(perms)
                changed = True
            counts.updated += changed
            counts.unchanged += not changed
        return total

    def memberships(self, dataset: str, spec: ds.ModelSpec) -> int:
        counts = self.counts.setdefault(spec.key, Counts())
        org = self.organization
        owner = Membership.objects.filter(organization=org, role=Membership.Role.OWNER).first()
        total = 0
        for row in stream_rows(self.reader, member_of(dataset, spec)):
            total += 1
            pk = int(row["id"])
            user = self.user(row.get("user"))
            if user is None:
                counts.skipped += 1
                continue
            role = row["role"]
            if owner is not None and pk == owner.pk:
                role = Membership.Role.OWNER  # the Owner stays the Owner
            elif role == Membership.Role.OWNER:
                role = Membership.Role.ADMIN  # ownership is never transferred by a restore
            current = Membership.objects.filter(pk=pk, organization=org).first()
            if current is not None:
                if (current.user_id, current.role) != (user.pk, role):
                    Membership.objects.filter(pk=pk).update(user=user, role=role)
                    counts.updated += 1
                else:
                    counts.unchanged += 1
                continue
            if Membership.objects.filter(organization=org, user=user).exists():
                counts.skipped += 1  # the user is a member under another row that stays (the Owner)
                continue
            free = self.free_keys(Membership, [pk])
            Membership.objects.bulk_create(
                [Membership(pk=pk if free else None, user=user, organization=org, role=role)]
            )
            if free:
                self.advance_sequence(Membership)
            counts.created += 1
        return total

    def ou_roles(self, dataset: str, spec: ds.ModelSpec) -> int:
        counts = self.counts.setdefault(spec.key, Counts())
        total = 0
        for row in stream_rows(self.reader, member_of(dataset, spec)):
            total += 1
            pk = int(row["id"])
            user = self.user(row.get("user"))
            if row.get("system_role"):
                role_id = (
                    Role.objects.filter(organization=None, name=row["system_role"]).values_list("pk", flat=True).first()
                )
            else:
                role_id = self.ref("role", row.get("role"), nullable=False)
            if user is None or role_id is None:
                counts.skipped += 1
                continue
            ou_id = self.ref("ou", row.get("ou"), nullable=False)
            wanted = {"user_id": user.pk, "ou_id": ou_id, "role_id": role_id}
            current = OURoleAssignment.objects.filter(pk=pk, ou__organization=self.organization).values(*wanted).first()
            if current == wanted:
                counts.unchanged += 1
                continue
            if OURoleAssignment.objects.filter(**wanted).exclude(pk=pk).exists():
                counts.skipped += 1  # the same assignment is held by a row that stays
                continue
            if current is not None:
                OURoleAssignment.objects.filter(pk=pk).update(**wanted)
                counts.updated += 1
                continue
            free = self.free_keys(OURoleAssignment, [pk])
            OURoleAssignment.objects.bulk_create([OURoleAssignment(pk=pk if free else None, **wanted)])
            if free:
                self.advance_sequence(OURoleAssignment)
            counts.created += 1
        return total
