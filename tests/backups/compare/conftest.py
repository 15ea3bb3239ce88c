"""Fixtures of the compare tests: the filled tenant of tests/backups and helpers that run a
comparison the way the worker does."""

from __future__ import annotations

from typing import Any

from backups.compare import services
from backups.models import Backup, BackupComparison
from tests.backups.conftest import add_document, storage, tenant  # noqa: F401 - fixtures re-exported
from tests.restores.conftest import make_backup  # noqa: F401 - re-exported


def run_compare(backup: Backup, other: Backup | None = None, user: Any = None) -> BackupComparison:
    """Request a comparison and run it as the worker would; it must complete."""
    comparison = services.comparison_request(backup=backup, other=other, requested_by=user)
    claimed = services.comparison_claim(comparison_id=comparison.pk)
    assert claimed is not None
    done = services.comparison_run(comparison=claimed)
    assert done.status == BackupComparison.Status.COMPLETED, done.failure_reason
    return done


def nonzero(summary: dict[str, Any]) -> dict[str, dict[str, dict[str, int]]]:
    """The summary without models that did not change."""
    out: dict[str, dict[str, dict[str, int]]] = {}
    for dataset, per_model in summary.items():
        for model, tally in per_model.items():
            kept = {k: v for k, v in tally.items() if v}
            if kept:
                out.setdefault(dataset, {})[model] = kept
    return out
