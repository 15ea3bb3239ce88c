"""A backup whose database connection is cut while it runs (PostgreSQL restarted, a proxy, an
operator's pg_terminate_backend) is failed with the reason recorded on a new connection, not left
"In progress" until the stale sweep. Found by the chaos soak: the failure was written on the dead
connection, the task raised, and an in-place restore whose pre-restore backup met it stayed
running, its organization in maintenance, until the restore sweep (hours by default)."""

from __future__ import annotations

import psycopg
import pytest
from django.db import OperationalError, connection

from backups import services
from backups.models import Backup
from tests.support.procs import database_url

pytestmark = pytest.mark.django_db(transaction=True)


def cut_this_connection() -> None:
    """Terminate this process's database session from another one."""
    if connection.vendor != "postgresql":
        pytest.skip("terminating a session is a PostgreSQL test (the PostgreSQL pass of make test)")
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (pid,) = cursor.fetchone()
    with psycopg.connect(database_url(), autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [pid])


def test_a_backup_whose_connection_was_cut_is_failed_with_a_reason(tenant) -> None:  # type: ignore[no-untyped-def]
    backup, _ = services.backup_request(organization=tenant.org, requested_by=tenant.owner, dispatch=False)
    claimed = services.backup_claim(backup_id=backup.pk)
    assert claimed is not None
    cut_this_connection()

    done = services.backup_run(backup=claimed)

    assert done.status == Backup.Status.FAILED
    stored = Backup.objects.get(pk=backup.pk)  # as the database holds it
    assert stored.status == Backup.Status.FAILED and "connection" in stored.failure_reason
    assert not stored.file
    # The organization can be backed up again at once.
    again, _ = services.backup_request(organization=tenant.org, requested_by=tenant.owner, dispatch=False)
    assert again.status == Backup.Status.PENDING


def test_a_failure_recorded_without_its_exception_still_gets_a_new_connection(tenant) -> None:  # type: ignore[no-untyped-def]
    """The stale sweep and a stopped worker fail a backup with a reason only: a connection that
    died meanwhile (a query already met it) is dropped before the failure is recorded."""
    backup, _ = services.backup_request(organization=tenant.org, requested_by=tenant.owner, dispatch=False)
    claimed = services.backup_claim(backup_id=backup.pk)
    assert claimed is not None
    cut_this_connection()
    with pytest.raises(OperationalError):
        Backup.objects.filter(pk=backup.pk).exists()

    done = services.backup_fail(backup=claimed, reason="The worker was stopped while this backup ran.")

    assert done.status == Backup.Status.FAILED
    stored = Backup.objects.get(pk=backup.pk)
    assert stored.status == Backup.Status.FAILED and stored.failure_reason.startswith("The worker was stopped")
