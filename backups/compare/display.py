"""What the compare pages (and the restore screen, through ``backups/_comparison_summary.html``)
show of a kept comparison."""

from __future__ import annotations

from typing import Any

from backups import datasets as ds
from backups.compare.alerts import model_label
from backups.models import Backup, BackupComparison


def summary_rows(comparison: BackupComparison) -> list[dict[str, Any]]:
    """Per data set of the result: its models with rows on each side and the differences."""
    rows = []
    for key, per_model in (comparison.summary or {}).items():
        dataset = ds.REGISTRY.get(key)
        models = []
        for spec in dataset.models if dataset else ():
            tally = per_model.get(spec.key, {})
            seen = (comparison.counts or {}).get(key, {}).get(spec.key, {})
            models.append(
                {
                    "key": spec.key,
                    "label": model_label(spec.key),
                    "earlier": seen.get("earlier", 0),
                    "later": seen.get("later", 0),
                    "added": tally.get("added", 0),
                    "removed": tally.get("removed", 0),
                    "changed": tally.get("changed", 0),
                    "any": any(tally.get(k) for k in ("added", "removed", "changed")),
                }
            )
        rows.append({"key": key, "label": dataset.label if dataset else key, "models": models})
    return rows


def latest_with_now(backup: Backup) -> BackupComparison | None:
    """The backup's latest comparison with now (for the restore screen: show it and when it was
    computed, or offer to compare)."""
    return BackupComparison.objects.filter(earlier=backup, later__isnull=True).order_by("-created_at", "-pk").first()
