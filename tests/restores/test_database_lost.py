"""The restore's database session ends in the middle of its import (PostgreSQL restarted, a
proxy cut the connection): the restore fails with a reason that names the database, on a new
connection, and nothing was changed. Before, the reason read "An unexpected error stopped the
restore (OperationalError)"."""

from __future__ import annotations

from typing import Any

import pytest

from restores import engine
from restores.models import Restore
from tests.factories import DEMO_PASSWORD
from tests.restores.conftest import confirmed_restore, db_state, media_listing, run
from tests.support.pgkill import require_postgresql, terminate_this_session

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_database_connection_lost_mid_restore_is_named_in_the_reason(tenant, full_backup, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    require_postgresql()
    org = tenant.org
    before = db_state(org)
    files_before = media_listing(exclude_prefix=("backups/",))
    restore = confirmed_restore(full_backup, tenant.owner, DEMO_PASSWORD)
    killed: list[str] = []

    def checkpoint(stage: str, **info: Any) -> None:
        if stage == "imported" and not killed:  # the old rows deleted, the backup's written
            killed.append(stage)
            terminate_this_session()

    monkeypatch.setattr(engine, "checkpoint", checkpoint)
    done = run(restore)
    assert killed
    assert done.status == Restore.Status.FAILED
    assert done.failure_reason == (
        "The database connection was lost during the restore; nothing was changed. Start the restore again."
    )
    org.refresh_from_db()
    assert org.maintenance_since is None
    assert db_state(org) == before
    assert media_listing(exclude_prefix=("backups/",)) == files_before
