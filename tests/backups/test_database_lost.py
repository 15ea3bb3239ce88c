"""The backup's database session ends while its archive is written: the backup fails with a
reason that names the database (recorded on a new connection), its partial file removed.
Before, the reason was the driver's text, and recording it failed on the dead connection, so
the backup stayed in progress until the stale sweep."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.files.storage import default_storage

from backups import services
from backups.models import Backup
from backups.services.run import _Heartbeat
from tests.support.pgkill import require_postgresql, terminate_this_session

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_database_connection_lost_mid_backup_is_named_in_the_reason(tenant, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    require_postgresql()
    backup, _ = services.backup_request(organization=tenant.org, requested_by=tenant.owner, dispatch=False)
    original = _Heartbeat.__call__
    killed: list[bool] = []

    def beat(self: Any, items_done: int, bytes_done: int, *, force: bool = False) -> None:
        if not killed:
            killed.append(True)
            terminate_this_session()
        original(self, items_done, bytes_done, force=True)

    monkeypatch.setattr(_Heartbeat, "__call__", beat)
    claimed = services.backup_claim(backup_id=backup.pk)
    assert claimed is not None
    services.backup_run(backup=claimed)
    backup.refresh_from_db()
    assert killed
    assert backup.status == Backup.Status.FAILED
    assert backup.failure_reason == "The database connection was lost while the backup was written; request it again."
    assert not backup.file
    _dirs, files = default_storage.listdir("backups")
    assert files == []
