"""The scope-exact in-place restore: replace exactly the rows inside a backup's scope.

A backup's scope is its data sets by its OUs/facilities by its document-status filters (its
manifest's ``scope``). Inside the scope the organization ends equal to the backup (rows added
since are removed, rows removed since come back, changed rows are as in the backup); every
row and stored file outside it is left untouched, primary keys included.

Contract (``restores.inplace.plan`` has the details):
- identity is the primary key within the organization: a row in both is updated in place;
  a backup row that is gone is re-created with its original key when that key is free (keys
  are never reissued: AUTOINCREMENT on SQLite, sequences on PostgreSQL), else with a new key
  and the references to it remapped;
- in-scope rows absent from the backup are deleted, dependents first, except those rows
  outside the scope still need (kept, and counted in ``Replaced.kept``); they give up their
  unique values first and go last, once the restored rows no longer refer to them;
- unique values the backup would take from rows that stay refuse the restore before anything
  is written (``RestoreRefused`` with a sentence);
- whole-organization data sets (profile, settings, regulations, templates) are replaced whole;
  memberships and roles are organization-wide, OU role assignments OU-scoped; the Owner stays
  the Owner.

Call inside ``transaction.atomic()`` (and ``maintenance_writes``). ``result.stored_files``
lists the files written so far, also when this raises; ``Replaced.old_files`` are the files
of replaced rows, to remove only after the commit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.core.files.storage import Storage, default_storage

from backups import datasets as ds
from backups.archive.manifest import parse_members
from backups.importer import ImportResult
from organizations.models import Organization
from restores import engine, upgrades
from restores.inplace.organization import OrganizationWriter
from restores.inplace.plan import ModelPlan, RestoreConflict, manifest_scope, plan_restore
from restores.inplace.write import Counts

__all__ = ["Replaced", "replace_in_scope"]


@dataclass
class Replaced:
    result: ImportResult
    old_files: list[str]
    datasets: list[str]
    # Per model key: rows deleted, kept (in scope, not in the backup, needed by rows outside)
    deleted: dict[str, int] = field(default_factory=dict)
    kept: dict[str, dict[str, int]] = field(default_factory=dict)
    counts: dict[str, Counts] = field(default_factory=dict)

    def summary(self) -> dict[str, dict[str, int]]:
        """Per model: what the restore did (for the audit log and the restore's record)."""
        out: dict[str, dict[str, int]] = {}
        for key, c in self.counts.items():
            out[key] = {"updated": c.updated, "created": c.created, "unchanged": c.unchanged}
            if c.skipped:
                out[key]["skipped"] = c.skipped
        for key, n in self.deleted.items():
            out.setdefault(key, {})["deleted"] = n
        for key, reasons in self.kept.items():
            if reasons:
                out.setdefault(key, {})["kept"] = sum(reasons.values())
        return out


def replace_in_scope(
    *,
    organization: Organization,
    reader: Any,
    storage: Storage | None = None,
    result: ImportResult | None = None,
    folder: str = "",
) -> Replaced:
    """Make the backup's scope of ``organization`` equal to the archive; touch nothing else."""
    storage = storage or default_storage
    result = result if result is not None else ImportResult()
    engine.checkpoint("begin", organization=organization)
    reader = upgrades.upgraded(reader)
    manifest = reader.manifest
    keys = ds.resolve((manifest.get("scope") or {}).get("datasets") or [])
    problems = engine.in_place_problems(
        organization=organization, datasets=keys, master_data_version=manifest.get("master_data_version")
    )
    if problems:
        raise engine.RestoreRefused(" ".join(problems))
    scope = manifest_scope(manifest)
    try:
        plans = plan_restore(organization=organization, reader=reader, keys=keys, scope=scope)
    except RestoreConflict as exc:
        raise engine.RestoreRefused(str(exc)) from exc
    engine.checkpoint("planned", organization=organization)
    by_key: dict[str, ModelPlan] = {plan.key: plan for plan in plans}
    writer = OrganizationWriter(
        organization=organization,
        reader=engine._Progress(reader),
        storage=storage,
        folder=folder,
        result=result,
        plans=by_key,
        members=parse_members(manifest),
    )
    writer.release(plans)
    writer.delete(plans, leaves=True)
    for key in keys:
        counts = result.row_counts.setdefault(key, {})
        for spec in ds.REGISTRY[key].models:
            if spec.key == "profile":
                counts[spec.key] = writer.profile(manifest)
            elif spec.key == "regulation":
                counts[spec.key] = writer.regulations()
            elif spec.key == "role":
                counts[spec.key] = writer.roles(key, spec)
            elif spec.key == "membership":
                counts[spec.key] = writer.memberships(key, spec)
            elif spec.key == "ou_role":
                counts[spec.key] = writer.ou_roles(key, spec)
            else:
                counts[spec.key] = writer.plain(key, spec)
    writer.delete(plans, leaves=False)
    engine.checkpoint("deleted", organization=organization)
    engine.checkpoint("imported", organization=organization)
    return Replaced(
        result=result,
        old_files=writer.old_files,
        datasets=keys,
        deleted={plan.key: len(plan.delete) for plan in plans if plan.delete},
        kept={plan.key: dict(plan.kept) for plan in plans if plan.kept},
        counts=writer.counts,
    )
