"""A restore whose worker died is failed by beat's sweep within 15 minutes: its heartbeat went
stale (the same rule as backups, ``backupsvc.lib.heartbeats``). Before, it stayed running, and
its organization in maintenance, for ``CELERY_TASK_TIME_LIMIT`` + 10 minutes (about 6 hours)."""

from __future__ import annotations

import datetime as dt
import threading
import time

import pytest
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.utils import timezone

from accounts.models import AuditLog
from backupsvc.lib import heartbeats
from restores import services
from restores.maintenance import maintenance_on
from restores.models import Restore
from restores.services import running
from tests.factories import DEMO_PASSWORD
from tests.restores.conftest import confirmed_restore, run

SWEEP_EVERY = dt.timedelta(seconds=settings.CELERY_BEAT_SCHEDULE["restores-sweep-stale"]["schedule"])


def killed_mid_import(backup, owner) -> Restore:  # type: ignore[no-untyped-def]
    """A restore as a SIGKILLed worker leaves it: running, the organization in maintenance, a
    file stored by its import (its transaction died with it), and no more heartbeats."""
    restore = confirmed_restore(backup, owner, DEMO_PASSWORD)
    claimed = services.restore_claim(restore_id=restore.pk)
    assert claimed is not None
    maintenance_on(claimed.organization, f"Restore #{claimed.pk}")
    folder = services.restore_files_folder(claimed)
    default_storage.save(f"documents/{folder}/imported.txt", ContentFile(b"stored by the import"))
    return claimed


@pytest.mark.django_db
def test_a_killed_restore_is_failed_its_files_removed_and_maintenance_ended_within_15_minutes(
    tenant, full_backup
) -> None:  # type: ignore[no-untyped-def]
    restore = killed_mid_import(full_backup, tenant.owner)
    started = restore.started_at
    assert started is not None and restore.heartbeat_at == started

    # The worst case: the last beat goes stale just after a sweep, and the next sweep fails it.
    assert dt.timedelta(minutes=15) >= settings.BACKUP_HEARTBEAT_STALE_AFTER + SWEEP_EVERY
    # Within the heartbeat limit the restore may still be alive: left alone.
    assert services.restores_fail_stale(now=started + settings.BACKUP_HEARTBEAT_STALE_AFTER) == 0
    restore.refresh_from_db()
    assert restore.status == Restore.Status.RUNNING

    assert services.restores_fail_stale(now=started + settings.BACKUP_HEARTBEAT_STALE_AFTER + SWEEP_EVERY) == 1
    restore.refresh_from_db()
    assert restore.status == Restore.Status.FAILED
    assert restore.failure_reason == (
        "The worker running this restore stopped; nothing was changed. Start the restore again."
    )
    org = restore.organization
    org.refresh_from_db()
    assert org.maintenance_since is None and org.maintenance_reason == ""
    assert not default_storage.exists(f"documents/{services.restore_files_folder(restore)}/imported.txt")
    assert AuditLog.objects.filter(action="restore.fail", object_id=str(restore.pk)).exists()
    # A second sweep finds nothing more to do.
    assert services.restores_fail_stale(now=started + dt.timedelta(hours=1)) == 0


@pytest.mark.django_db(transaction=True)
def test_a_running_restore_beats_so_the_sweep_leaves_it_alone(tenant, full_backup, settings, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A live worker beats while the restore runs (here: while its pre-restore backup is made),
    so a sweep with a one-second limit finds it alive, and the restore completes."""
    settings.BACKUP_HEARTBEAT_STALE_AFTER = dt.timedelta(seconds=1)  # a beat every 0.1 s
    restore = confirmed_restore(full_backup, tenant.owner, DEMO_PASSWORD)
    seen: dict[str, object] = {}
    original = running._pre_restore_backup

    def slow_pre_restore_backup(current: Restore):  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + 10
        first = Restore.objects.get(pk=current.pk).heartbeat_at
        while time.monotonic() < deadline and Restore.objects.get(pk=current.pk).heartbeat_at == first:
            time.sleep(0.05)
        time.sleep(1.5)  # longer than the limit: only the beats keep it alive
        seen["beats"] = Restore.objects.get(pk=current.pk).heartbeat_at != first
        seen["swept"] = services.restores_fail_stale()
        return original(current)

    # The in-place run looks the name up in ``running``, where it is defined.
    monkeypatch.setattr(running, "_pre_restore_backup", slow_pre_restore_backup)
    done = run(restore)
    assert seen == {"beats": True, "swept": 0}
    assert done.status == Restore.Status.COMPLETED, done.failure_reason
    assert not [t for t in threading.enumerate() if t.name.startswith("heartbeat ")]


def test_the_heartbeat_rule_is_shared_by_backups_and_restores() -> None:
    now = timezone.now()
    assert heartbeats.stale_before(now) == now - settings.BACKUP_HEARTBEAT_STALE_AFTER
    assert heartbeats.heartbeat_interval() * 5 <= settings.BACKUP_HEARTBEAT_STALE_AFTER.total_seconds()
