"""Writing a planned selective restore with the in-place restore's writer (``restores.inplace.
write.Writer``): the same key rule (original key when free, else a new one, references
remapped), the same file handling (files of re-created or changed rows stored in the
restore's own folder; replaced files removed only after the commit)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.core.files.storage import Storage

from backups import datasets as ds
from backups.archive.manifest import parse_members
from backups.importer import ImportResult
from organizations.models import Organization
from restores import engine
from restores.inplace.plan import ModelPlan, chunks, org_rows
from restores.inplace.write import Writer
from restores.selective.plan import SKIP, SelectivePlan


@dataclass
class Applied:
    plan: SelectivePlan
    old_files: list[str] = field(default_factory=list)
    new_keys: dict[str, dict[int, int]] = field(default_factory=dict)  # re-created under a new key

    def record_list(self) -> list[dict[str, Any]]:
        records = self.plan.record_list()
        for record in records:
            new = self.new_keys.get(record["model"], {}).get(record["id"])
            if new is not None:
                record["new_id"] = new
        return records


def lock_rows(organization: Organization, plan: SelectivePlan) -> int:
    """Lock the live rows the restore overwrites or refers to (``SELECT ... FOR UPDATE``): no
    maintenance window for the organization, only these rows wait for the restore."""
    locked = 0
    for _dataset, spec in plan.specs:
        pks = sorted(plan.live.get(spec.key, set()))
        for batch in chunks(pks):
            locked += len(list(org_rows(spec, organization).select_for_update().filter(pk__in=batch).values_list("pk")))
    return locked


def apply_plan(
    *,
    organization: Organization,
    reader: Any,
    plan: SelectivePlan,
    storage: Storage,
    result: ImportResult,
    folder: str,
    overwrite: bool,
) -> Applied:
    """Write the plan's records (call inside ``transaction.atomic()``; ``result.stored_files``
    lists the files written so far, also when this raises)."""
    plans: dict[str, ModelPlan] = {}
    for dataset, spec in plan.specs:
        model_plan = ModelPlan(dataset=dataset, spec=spec)
        model_plan.backup_pks = {pk for pk, item in plan.items.get(spec.key, {}).items() if item.action != SKIP}
        model_plan.external_live = set(plan.live.get(spec.key, set()))
        plans[spec.key] = model_plan
    for key, live in plan.live.items():  # parents of models the backup does not hold
        if key not in plans:
            dataset, spec = next((d.key, m) for d in ds.REGISTRY.values() for m in d.models if m.key == key)
            plans[key] = ModelPlan(dataset=dataset, spec=spec, external_live=set(live))
    writer = Writer(
        organization=organization,
        reader=engine._Progress(reader),
        storage=storage,
        folder=folder,
        result=result,
        plans=plans,
        members=parse_members(reader.manifest),
    )
    for dataset, spec in plan.specs:
        only = plan.to_write(spec.key)
        if not only:
            continue
        writer.plain(dataset, spec, only=only, overwrite=overwrite)
        counts = writer.counts.get(spec.key)
        if counts is not None:
            result.row_counts.setdefault(dataset, {})[spec.key] = {
                "created": counts.created,
                "overwritten": counts.updated,
                "unchanged": counts.unchanged,
            }
    engine.checkpoint("imported", organization=organization)
    return Applied(plan=plan, old_files=writer.old_files, new_keys=writer.id_maps)
