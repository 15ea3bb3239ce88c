"""SQLite (the embedded set-up) lets one transaction write at a time: while a restore's
transaction runs longer than the heartbeat limit, its beats cannot be recorded. Beat's sweep
neither waits for that lock (and fails with "database is locked") nor, once the lock is gone,
fails a restore whose worker is alive and ending it itself (with the real reason)."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Iterator

import pytest
from django.db import connections

from accounts.models import AuditLog, Notification
from restores import engine, services
from restores.models import Restore
from restores.services import running
from tests.factories import DEMO_PASSWORD
from tests.restores.conftest import confirmed_restore, run
from tests.support.procs import sqlite_file_database

pytestmark = pytest.mark.django_db(transaction=True)

LIMIT = dt.timedelta(seconds=3)  # the stale limit here (a beat every 0.3 s)
BUSY = 2  # seconds SQLite waits for the write lock (20 in settings; the limit is 10 minutes)


@pytest.fixture
def sqlite_file(transactional_db, tmp_path, settings) -> Iterator[None]:  # type: ignore[no-untyped-def]
    if connections["default"].vendor != "sqlite":
        pytest.skip("SQLite's one-writer lock; PostgreSQL beats beside a running transaction")
    settings.BACKUP_HEARTBEAT_STALE_AFTER = LIMIT
    options = connections["default"].settings_dict["OPTIONS"]
    busy = options.get("timeout")
    options["timeout"] = BUSY
    try:
        with sqlite_file_database(tmp_path / "db.sqlite3"):
            yield
    finally:
        options["timeout"] = busy


def _sweep_in_another_process_meanwhile(swept: list[object]) -> threading.Thread:
    """Beat's sweep, on its own connection (as beat's worker), while the restore runs."""

    def sweep() -> None:
        try:
            swept.append(services.restores_fail_stale())
        except Exception as exc:
            swept.append(repr(exc))
        finally:
            connections.close_all()

    thread = threading.Thread(target=sweep)
    thread.start()
    return thread


def test_a_sweep_during_a_long_restore_transaction_leaves_it_alone_at_once(
    sqlite_file, tenant, full_backup, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    restore = confirmed_restore(full_backup, tenant.owner, DEMO_PASSWORD)
    swept: list[object] = []
    checkpoint = engine.checkpoint

    def long_import(stage: str, **info: object) -> None:
        if stage == "imported":  # inside the restore's transaction, which holds the write lock
            time.sleep(LIMIT.total_seconds() + 0.5)  # longer than the limit: no beat was recorded
            started = time.monotonic()
            _sweep_in_another_process_meanwhile(swept).join(30)
            swept.append(time.monotonic() - started)
        checkpoint(stage, **info)

    monkeypatch.setattr(engine, "checkpoint", long_import)
    done = run(restore)
    assert done.status == Restore.Status.COMPLETED, done.failure_reason
    assert swept[0] == 0  # before: OperationalError('database is locked') after waiting 20 s
    assert swept[1] < BUSY


def test_a_restore_that_fails_itself_after_a_long_transaction_keeps_its_own_reason(
    sqlite_file, tenant, full_backup, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    restore = confirmed_restore(full_backup, tenant.owner, DEMO_PASSWORD)
    swept: list[object] = []
    checkpoint, delete_files = engine.checkpoint, running.delete_files

    def long_import_then_a_failure(stage: str, **info: object) -> None:
        if stage == "imported":
            time.sleep(LIMIT.total_seconds() + 0.5)  # no beat recorded meanwhile
            raise RuntimeError("injected")
        checkpoint(stage, **info)

    def cleanup_while_a_sweep_runs(names, storage):  # type: ignore[no-untyped-def]
        # Rolled back, the lock is free, the restore is removing its files (on an object store,
        # many files take a while) and has not recorded its failure yet: beat's sweep comes.
        _sweep_in_another_process_meanwhile(swept).join(30)
        return delete_files(names, storage)

    monkeypatch.setattr(engine, "checkpoint", long_import_then_a_failure)
    monkeypatch.setattr(running, "delete_files", cleanup_while_a_sweep_runs)
    done = run(restore)
    assert swept == [0]
    # Before: "The worker running this restore stopped; nothing was changed. Start the restore
    # again." (the sweep failed it first, though its worker was alive), and the Owner heard of
    # the failure twice.
    assert done.status == Restore.Status.FAILED
    assert done.failure_reason.startswith("An unexpected error stopped the restore (RuntimeError)")
    assert AuditLog.objects.filter(action="restore.fail", object_id=str(done.pk)).count() == 1
    assert Notification.objects.filter(user=tenant.owner, title__contains="failed").count() == 1


def test_a_dead_worker_is_still_swept_once_no_beat_is_locked_out(sqlite_file, tenant, full_backup) -> None:  # type: ignore[no-untyped-def]
    restore = confirmed_restore(full_backup, tenant.owner, DEMO_PASSWORD)
    claimed = services.restore_claim(restore_id=restore.pk)
    assert claimed is not None  # and its worker dies: no beat, no mark
    time.sleep(LIMIT.total_seconds() + 0.2)
    assert services.restores_fail_stale() == 1
    assert Restore.objects.get(pk=restore.pk).status == Restore.Status.FAILED
