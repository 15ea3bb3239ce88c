"""``manage.py restore in-place``: the scope-exact restore from the server shell, audited as
the operator, refused without --yes, one sentence and a non-zero exit on failure."""

from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from accounts.models import AuditLog
from backups.models import Backup
from organizations import models as om
from restores import engine
from restores.models import Restore
from tests import factories as f
from tests.restores.conftest import db_state, make_backup, media_listing
from tests.restores.inplace_helpers import rows_by_key

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator():  # type: ignore[no-untyped-def]
    return f.UserFactory(email="operator@platform.test", is_staff=True)


def restore(*args: str) -> str:
    out = StringIO()
    call_command("restore", *args, stdout=out)
    return out.getvalue()


def test_an_operator_restores_an_ou_limited_backup_in_place(tenant, operator) -> None:  # type: ignore[no-untyped-def]
    backup = make_backup(tenant.org, tenant.owner, ous=[tenant.ou_a])
    at_backup = rows_by_key(tenant.org)
    om.Client.objects.filter(ou=tenant.ou_a).update(name="Changed in A")
    om.Client.objects.filter(ou=tenant.ou_b).update(name="Changed in B")
    outside = {pk: r for pk, r in rows_by_key(tenant.org)["client"].items() if r["ou_id"] == tenant.ou_b.pk}
    out = restore("in-place", str(backup.pk), "--operator", "OPERATOR@platform.test", "--yes")
    done = Restore.objects.get()
    assert done.status == Restore.Status.COMPLETED
    assert out.startswith(f"Restore #{done.pk} completed")
    clients = rows_by_key(tenant.org)["client"]
    assert {pk: clients[pk] for pk in outside} == outside  # outside the backup: untouched
    assert all(clients[pk] == row for pk, row in at_backup["client"].items() if row["ou_id"] == tenant.ou_a.pk)
    assert done.pre_restore_backup.kind == Backup.Kind.PRE_RESTORE
    audited = AuditLog.objects.filter(object_id=str(done.pk), actor=operator).values_list("action", flat=True)
    assert {"restore.operator_start", "restore.operator_finish"} <= set(audited)


def test_without_yes_nothing_happens(tenant, operator) -> None:  # type: ignore[no-untyped-def]
    backup = make_backup(tenant.org, tenant.owner)
    before = db_state(tenant.org)
    with pytest.raises(CommandError, match="add --yes to confirm"):
        restore("in-place", str(backup.pk), "--operator", operator.email)
    assert db_state(tenant.org) == before and not Restore.objects.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["999999", "--operator", "operator@platform.test", "--yes"], "There is no backup with id 999999."),
        (["{backup}", "--operator", "owner@acme.test", "--yes"], "There is no active operator"),
    ],
)
def test_refusals_are_one_sentence(tenant, operator, args, message) -> None:  # type: ignore[no-untyped-def]
    backup = make_backup(tenant.org, tenant.owner)
    with pytest.raises(CommandError, match=message):
        restore("in-place", *[a.format(backup=backup.pk) for a in args])
    assert not Restore.objects.exists()


def test_a_failed_restore_exits_non_zero_and_changes_nothing(tenant, operator, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    backup = make_backup(tenant.org, tenant.owner)
    om.Template.objects.create(organization=tenant.org, name="Added since")
    before = db_state(tenant.org)
    files = media_listing()

    def checkpoint(stage: str, **info: Any) -> None:
        if stage == "imported":
            raise RuntimeError("injected")

    monkeypatch.setattr(engine, "checkpoint", checkpoint)
    with pytest.raises(CommandError, match=r"^Restore #\d+ failed: An unexpected error stopped the restore"):
        restore("in-place", str(backup.pk), "--operator", operator.email, "--yes")
    assert db_state(tenant.org) == before
    assert media_listing() == files
    assert Restore.objects.get().status == Restore.Status.FAILED


def test_storage_out_of_reach_is_said_as_such_without_its_address(tenant, operator, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from botocore.exceptions import EndpointConnectionError

    backup = make_backup(tenant.org, tenant.owner)
    before = db_state(tenant.org)

    def checkpoint(stage: str, **info: Any) -> None:
        if stage == "imported":
            raise OSError("storage lost") from EndpointConnectionError(endpoint_url="http://10.9.8.7:9000/bucket")

    monkeypatch.setattr(engine, "checkpoint", checkpoint)
    with pytest.raises(CommandError) as failed:
        restore("in-place", str(backup.pk), "--operator", operator.email, "--yes")
    reason = Restore.objects.get().failure_reason
    assert reason == (
        "Storage error: the file storage could not be reached (EndpointConnectionError); nothing was changed. "
        "Start the restore again later."
    )
    assert reason in str(failed.value) and "10.9.8.7" not in str(failed.value)
    assert db_state(tenant.org) == before


def test_the_command_line_runs(tenant, operator) -> None:  # type: ignore[no-untyped-def]
    """Through a real process: the exit status and the one line on stderr."""
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "manage.py", "restore", "in-place", "1"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "--operator" in result.stderr
