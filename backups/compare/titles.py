"""Human titles of compared records whose name includes another row's ("REF v3").

Resolved per batch of differences, never for the whole tenant: first from the organization's
live rows, then from the comparison's own entries (a document removed together with its
versions), else "document #12".
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from backups import datasets as ds
from backups.compare.engine import Difference
from backups.models import BackupComparison, ComparisonEntry
from backupsvc.lib.sqlids import padded

Labels = dict[tuple[str, int], str]


def _spec(key: str) -> ds.ModelSpec | None:
    for dataset in ds.REGISTRY.values():
        for spec in dataset.models:
            if spec.key == key:
                return spec
    return None


def ref_labels(comparison: BackupComparison, batch: Iterable[Difference]) -> Labels:
    batch = list(batch)
    wanted: dict[str, set[int]] = defaultdict(set)
    for diff in batch:
        spec = _spec(diff.model)
        if spec is not None and spec.title_ref is not None and diff.ref is not None:
            wanted[spec.title_ref[1]].add(diff.ref)
    labels: Labels = {}
    for target_key, pks in wanted.items():
        target = _spec(target_key)
        if target is None:
            continue
        model = target.model
        qs = model._default_manager.filter(pk__in=padded(pks))
        if any(f.name == "organization" for f in model._meta.fields):
            qs = qs.filter(organization_id=comparison.organization_id)
        for values in qs.values("pk", *target.fields):
            row = {k: ds.to_json(v) for k, v in values.items()}
            labels[(target_key, values["pk"])] = target.row_label(row)
        missing = pks - {pk for key, pk in labels if key == target_key}
        for diff in batch:  # a referenced row removed in the same batch
            if diff.model == target_key and diff.pk in missing:
                labels[(target_key, diff.pk)] = diff.label or diff.title
        missing = pks - {pk for key, pk in labels if key == target_key}
        if missing:
            kept = ComparisonEntry.objects.filter(
                comparison=comparison, model=target_key, record_pk__in=padded(missing)
            )
            for pk, label, title in kept.values_list("record_pk", "label", "title"):
                labels[(target_key, pk)] = label or title
    return labels


def full_title(diff: Difference, labels: Labels) -> str:
    spec = _spec(diff.model)
    if spec is None or spec.title_ref is None or diff.ref is None:
        return diff.title
    target_key = spec.title_ref[1]
    label = labels.get((target_key, diff.ref)) or f"{target_key.replace('_', ' ')} #{diff.ref}"
    return f"{label} {diff.title}".strip()
