"""An in-place restore whose database connection is cut is failed, and its organization leaves
maintenance, on a new connection: found by the chaos soak, where the failure was written on the
dead connection, the task raised, and the restore stayed running with its organization in
maintenance until the restore sweep (hours by default)."""

from __future__ import annotations

import pytest

from organizations.models import Organization
from restores import services
from restores.models import Restore
from tests.backups.test_connection_lost import cut_this_connection
from tests.factories import DEMO_PASSWORD
from tests.restores.conftest import confirmed_restore, db_state

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_restore_whose_connection_was_cut_is_failed_and_ends_maintenance(tenant, full_backup) -> None:  # type: ignore[no-untyped-def]
    before = db_state(tenant.org)
    restore = confirmed_restore(full_backup, tenant.owner, DEMO_PASSWORD)
    claimed = services.restore_claim(restore_id=restore.pk)
    assert claimed is not None
    cut_this_connection()

    services.restore_run(restore=claimed)

    stored = Restore.objects.get(pk=restore.pk)  # as the database holds it
    assert stored.status == Restore.Status.FAILED and stored.failure_reason
    org = Organization.objects.get(pk=tenant.org.pk)
    assert org.maintenance_since is None and org.maintenance_reason == ""
    assert db_state(org) == before
