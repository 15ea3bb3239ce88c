"""A restore whose worker is stopped while it imports: failed with a reason, nothing applied,
maintenance over (the worker-level test with real processes is tests/backups/test_worker_stop.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from backupsvc.lib import workerstop
from restores import engine
from restores.models import Restore
from tests.factories import DEMO_PASSWORD
from tests.restores.conftest import confirmed_restore, db_state, media_listing, run

pytestmark = pytest.mark.django_db


@pytest.fixture
def stop_after_deleting_the_old_rows(monkeypatch) -> Iterator[None]:  # type: ignore[no-untyped-def]
    """The worker is told to stop once the restore has deleted the organization's old rows."""
    original = engine.checkpoint

    def checkpoint(stage: str, **info: Any) -> None:
        if stage == "deleted":
            workerstop._stopping.set()
        original(stage, **info)

    monkeypatch.setattr(engine, "checkpoint", checkpoint)
    try:
        yield
    finally:
        workerstop._stopping.clear()


def test_a_restore_stopped_with_its_worker_is_failed_with_a_reason_and_changes_nothing(  # type: ignore[no-untyped-def]
    tenant, full_backup, stop_after_deleting_the_old_rows
) -> None:
    tenant.org.name = "Renamed since the backup"
    tenant.org.save()
    before_rows, before_files = db_state(tenant.org), media_listing()
    restore = run(confirmed_restore(full_backup, tenant.owner, DEMO_PASSWORD))
    assert restore.status == Restore.Status.FAILED
    assert restore.failure_reason == (
        "The worker was stopped while this restore ran; nothing was changed. Request it again."
    )
    assert db_state(tenant.org) == before_rows
    assert media_listing() == before_files
    tenant.org.refresh_from_db()
    assert tenant.org.maintenance_since is None


def test_outside_a_worker_job_a_stop_changes_nothing() -> None:
    workerstop._stopping.set()
    try:
        workerstop.raise_if_stopping()  # a management command or the web: no job, no raise
        with workerstop.stoppable("Stopped."), pytest.raises(workerstop.WorkerStopping, match=r"^Stopped\.$"):
            workerstop.raise_if_stopping()
    finally:
        workerstop._stopping.clear()
