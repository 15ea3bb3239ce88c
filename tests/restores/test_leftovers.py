"""A failed restore on local storage leaves nothing behind: not its files, and not the empty
``restore-<id>`` folders they were stored in (before, the folders stayed)."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from organizations.models import ControlledDocument
from restores import engine, services
from restores.models import Restore
from tests.factories import DEMO_PASSWORD
from tests.restores.conftest import confirmed_restore, media_listing, run

pytestmark = pytest.mark.django_db


def restore_folders() -> list[str]:
    root = Path(settings.MEDIA_ROOT)
    return sorted(str(p.relative_to(root)) for p in root.rglob("restore-*") if p.is_dir())


def test_a_failed_restore_removes_its_files_and_their_folders(tenant, full_backup, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    # A document deleted since the backup: the restore brings it back, storing its files (an
    # unchanged document keeps its stored file and the restore stores nothing for it).
    ControlledDocument.objects.filter(organization=tenant.org).order_by("pk").first().delete()
    files_before = media_listing()
    restore = confirmed_restore(full_backup, tenant.owner, DEMO_PASSWORD)
    stored: list[str] = []

    def checkpoint(stage: str, **info: Any) -> None:
        if stage == "imported":
            stored.extend(restore_folders())
            raise RuntimeError("injected failure after the files were stored")

    monkeypatch.setattr(engine, "checkpoint", checkpoint)
    done = run(restore)
    assert done.status == Restore.Status.FAILED
    assert f"documents/restore-{restore.pk}" in stored  # the import had stored files there
    assert media_listing() == files_before
    assert restore_folders() == []


def test_the_sweep_removes_a_killed_restores_folders(tenant, full_backup) -> None:  # type: ignore[no-untyped-def]
    restore = confirmed_restore(full_backup, tenant.owner, DEMO_PASSWORD)
    claimed = services.restore_claim(restore_id=restore.pk)
    assert claimed is not None
    default_storage.save(f"documents/restore-{restore.pk}/x", ContentFile(b"stored by the import"))
    os.makedirs(Path(settings.MEDIA_ROOT) / "logos" / f"restore-{restore.pk}")  # emptied already
    later = claimed.started_at + settings.BACKUP_HEARTBEAT_STALE_AFTER + dt.timedelta(minutes=5)
    assert services.restores_fail_stale(now=later) == 1
    assert restore_folders() == []
