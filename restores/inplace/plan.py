"""Planning a scope-exact in-place restore (read-only: a refusal found here changes nothing).

Identity is the primary key within the organization. A row is *in scope* when it is in the
backup, or matches the backup's scope filter now (data sets by OUs by document statuses), or
belongs to an in-scope parent (a document's versions). In-scope rows absent from the backup
are deleted, unless a row that stays needs them (a facility shared with an OU outside the
backup, a time entry outside the scope pointing at an invoice): those are kept and counted.
Unique values the backup's rows would take from rows that stay are found here, all of them,
before anything is written.

Memory: one set of primary keys per model (the backup's, and the live in-scope rows'); the
rows themselves are streamed from the archive in chunks.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.core.files.storage import Storage
from django.db import models
from django.db.models import QuerySet, UniqueConstraint

from accounts.models import Membership, OURoleAssignment, Role
from backups import datasets as ds
from backups.stored_archive import manifest_scope as manifest_scope  # re-exported: the restore uses it from here
from backups.stored_archive import member_of, stream_rows
from organizations.models import DocumentVersion, Organization, Regulation

CHUNK = 500
# Rows applied as a whole (the profile) or by code (regulations), not planned by key.
WHOLE = ("profile", "regulation")
# Custom rows' references, which their specs do not declare (their exporters write them).
CUSTOM_REFS = {"ou_role": {"ou": "ou", "role": "role"}}


class RestoreConflict(Exception):
    """Rows the backup would bring back clash with rows outside its scope (a sentence)."""


@dataclass
class ModelPlan:
    dataset: str
    spec: ds.ModelSpec
    backup_pks: set[int] = field(default_factory=set)
    existing: set[int] = field(default_factory=set)  # backup keys that are rows of the organization now
    live_scope: set[int] = field(default_factory=set)  # the organization's rows in the scope now
    ref_targets: dict[str, set[int]] = field(default_factory=dict)  # ref -> keys the backup's rows name
    external_live: set[int] = field(default_factory=set)  # named by the backup, not in it, still here
    delete: set[int] = field(default_factory=set)
    kept: dict[str, int] = field(default_factory=dict)  # who needs them -> how many kept
    unique_changing: set[int] = field(default_factory=set)  # rows that give up a unique value

    @property
    def key(self) -> str:
        return self.spec.key

    @property
    def refs(self) -> dict[str, str]:
        return self.spec.refs or CUSTOM_REFS.get(self.spec.key, {})

    @property
    def kept_count(self) -> int:
        return sum(self.kept.values())


def chunks(values: Iterable[Any], size: int = CHUNK) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for value in values:
        batch.append(value)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def same_stored_file(
    storage: Storage, current: str, recorded_sha256: str, ref: Any, members: Mapping[str, tuple[int, str]]
) -> bool:
    """Whether the stored file ``current`` holds exactly the archive member ``ref`` names.

    The sizes first (storage metadata), then the SHA-256 the live row recorded when its file was
    stored, against the manifest's. Only a row that recorded none (a version added through the
    admin, which leaves the field blank) has its file read and hashed.
    """
    if not ref:
        return not current
    if not current or ref.get("member") not in members:
        return False
    size, sha256 = members[ref["member"]]
    try:
        if storage.size(current) != size:
            return False
        if recorded_sha256:
            return recorded_sha256 == sha256
        digest = hashlib.sha256()
        with storage.open(current, "rb") as fh:
            for chunk in iter(lambda: fh.read(1024 * 1024), b""):
                digest.update(chunk)
    except OSError:
        return False
    return digest.hexdigest() == sha256


def org_rows(spec: ds.ModelSpec, organization: Organization) -> QuerySet[Any]:
    """Every row of the organization of a data-set model (whatever a backup's scope was)."""
    model = spec.model
    if model is DocumentVersion:
        return DocumentVersion.objects.filter(document__organization=organization)
    if model is OURoleAssignment:
        return OURoleAssignment.objects.filter(ou__organization=organization)
    if model is Regulation:
        return organization.regulations.all()
    if model is Organization:
        return Organization.objects.filter(pk=organization.pk)
    if any(f.name == "organization" for f in model._meta.fields):
        return model._default_manager.filter(organization=organization)
    raise LookupError(f"The restore engine does not know how to find {model._meta.label} rows of an organization.")


def scope_rows(spec: ds.ModelSpec, organization: Organization, scope: ds.Scope) -> QuerySet[Any]:
    """The organization's rows of a model that match the scope's filter now."""
    if spec.queryset is not None:
        return spec.queryset(organization, scope)
    if spec.model is Role:
        return Role.objects.filter(organization=organization)
    if spec.model is Membership:
        return Membership.objects.filter(organization=organization)
    if spec.model is OURoleAssignment:
        return OURoleAssignment.objects.filter(ou__organization=organization).filter(scope.ou_filter())
    return org_rows(spec, organization)


def unique_fields(model: type[models.Model]) -> list[tuple[str, ...]]:
    """Each unconditional unique constraint's fields, the organization left out."""
    found = []
    for constraint in model._meta.constraints:
        if isinstance(constraint, UniqueConstraint) and constraint.condition is None and constraint.fields:
            fields = tuple(f for f in constraint.fields if f != "organization")
            if fields:
                found.append(fields)
    return found


def _existing(qs: QuerySet[Any], pks: Iterable[int]) -> set[int]:
    found: set[int] = set()
    for batch in chunks(pks):
        found.update(qs.filter(pk__in=batch).values_list("pk", flat=True))
    return found


def plan_restore(*, organization: Organization, reader: Any, keys: list[str], scope: ds.Scope) -> list[ModelPlan]:
    """What the restore will do, per model, in dependency order. Raises ``RestoreConflict``."""
    plans: list[ModelPlan] = []
    by_key: dict[str, ModelPlan] = {}
    for key in keys:
        for spec in ds.REGISTRY[key].models:
            if spec.key in WHOLE:
                continue
            plan = ModelPlan(dataset=key, spec=spec)
            plan.ref_targets = {name: set() for name in plan.refs}
            for row in stream_rows(reader, member_of(key, spec)):
                plan.backup_pks.add(int(row["id"]))
                for name in plan.refs:
                    if row.get(name) is not None:
                        plan.ref_targets[name].add(int(row[name]))
            mine = org_rows(spec, organization)
            plan.existing = _existing(mine, plan.backup_pks)
            plan.live_scope = set(scope_rows(spec, organization, scope).values_list("pk", flat=True))
            plan.live_scope |= plan.existing
            if spec.parent:
                parent = by_key[spec.refs[spec.parent]]
                attname = spec.model._meta.get_field(spec.parent).attname
                for batch in chunks(parent.backup_pks | parent.live_scope):
                    plan.live_scope.update(mine.filter(**{f"{attname}__in": batch}).values_list("pk", flat=True))
            plans.append(plan)
            by_key[spec.key] = plan
    for plan in plans:
        for name, target in plan.refs.items():
            other = by_key.get(target)
            if other is not None:
                outside = plan.ref_targets[name] - other.backup_pks
                other.external_live |= _existing(org_rows(other.spec, organization), outside)
    _plan_deletions(organization, plans, by_key)
    conflicts: list[str] = []
    for plan in plans:
        if plan.spec.model not in (Membership, OURoleAssignment):
            conflicts += _unique_conflicts(organization, reader, plan)
    if conflicts:
        raise RestoreConflict(
            "The backup cannot be restored in place: "
            + " ".join(conflicts)
            + " Nothing was changed; rename the rows that stay, or restore into a new organization."
        )
    return plans


def _plan_deletions(organization: Organization, plans: list[ModelPlan], by_key: dict[str, ModelPlan]) -> None:
    """Dependents first: a row that goes must not be needed by a row that stays."""
    by_model = {plan.spec.model: plan for plan in plans}
    registered = {spec.model for dataset in ds.REGISTRY.values() for spec in dataset.models}
    for plan in reversed(plans):
        candidates = plan.live_scope - plan.backup_pks
        if plan.spec.model is Membership:
            # The Owner stays the Owner: a restore never removes nor transfers ownership.
            owner = Membership.objects.filter(organization=organization, role=Membership.Role.OWNER)
            candidates -= set(owner.values_list("pk", flat=True))
        if not candidates:
            continue
        kept: dict[int, str] = {}
        for pk in candidates & plan.external_live:
            kept[pk] = "restored rows of the backup refer to them"
        for rel in plan.spec.model._meta.related_objects:
            if rel.many_to_many or rel.related_model not in registered:
                continue
            other = by_model.get(rel.related_model)
            going = other.delete if other else set()
            restored = other.backup_pks if other else set()
            attname = rel.field.attname
            label = str(rel.related_model._meta.verbose_name_plural)
            for batch in chunks(candidates - set(kept)):
                referring = rel.related_model._default_manager.filter(**{f"{attname}__in": batch})
                for pk, target in referring.values_list("pk", attname):
                    if pk not in going and pk not in restored:
                        kept.setdefault(target, f"{label} outside the backup use them")
        plan.delete = candidates - set(kept)
        for reason in kept.values():
            plan.kept[reason] = plan.kept.get(reason, 0) + 1


def _unique_conflicts(organization: Organization, reader: Any, plan: ModelPlan) -> list[str]:
    """Unique values the backup's rows need that rows staying in the organization hold."""
    model = plan.spec.model
    found: list[str] = []
    member = member_of(plan.dataset, plan.spec)
    mine = org_rows(plan.spec, organization)
    for fields in unique_fields(model):
        attnames = [model._meta.get_field(f).attname for f in fields]
        clashes: list[str] = []
        for batch in chunks(stream_rows(reader, member)):
            if any(f not in batch[0] for f in fields):
                break  # rows of an older format without these fields: nothing to compare
            wanted = {tuple(row[f] for f in fields): int(row["id"]) for row in batch}
            own = {int(row["id"]): tuple(row[f] for f in fields) for row in batch}
            firsts = {value[0] for value in wanted}
            for pk, *values in mine.filter(**{f"{attnames[0]}__in": firsts}).values_list("pk", *attnames):
                owner = wanted.get(tuple(values))
                if owner is None or owner == pk or pk in plan.backup_pks or pk in plan.delete:
                    continue
                clashes.append(str(values[-1] if len(values) > 1 else values[0]))
            for pk, *values in mine.filter(pk__in=list(own)).values_list("pk", *attnames):
                if tuple(values) != own[pk]:
                    plan.unique_changing.add(pk)
        if clashes:
            label = str(model._meta.verbose_name_plural if len(clashes) > 1 else model._meta.verbose_name)
            what = " and ".join(str(model._meta.get_field(f).verbose_name) for f in fields if f != "document")
            sample = ", ".join(f"“{c}”" for c in clashes[:5]) + (
                f" and {len(clashes) - 5} more" if len(clashes) > 5 else ""
            )
            found.append(
                f"{len(clashes)} {label} of the backup ({sample}) would take the {what} of rows outside the "
                "backup's scope that stay."
            )
    return found
