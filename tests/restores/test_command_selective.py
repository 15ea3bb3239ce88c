"""``manage.py restore selective`` and ``restore from-file``: operators' restores of picked
records and of a downloaded archive into a new organization."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from accounts.models import AuditLog
from backups.keys import unwrap_password
from organizations import models as om
from restores.models import Restore
from tests import factories as f
from tests.restores.conftest import make_backup
from tests.restores.inplace_helpers import rows_by_key

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator():  # type: ignore[no-untyped-def]
    return f.UserFactory(email="operator@platform.test", is_staff=True, is_site_admin=True)


def restore(*args: str) -> str:
    out = StringIO()
    call_command("restore", *args, stdout=out)
    return out.getvalue()


def test_an_operator_brings_back_a_deleted_document_and_a_taken_reference_is_suffixed(tenant, operator) -> None:  # type: ignore[no-untyped-def]
    backup = make_backup(tenant.org, tenant.owner)
    doc = om.ControlledDocument.objects.get(organization=tenant.org, reference="A1-1")
    doc_pk = doc.pk
    om.ControlledDocument.objects.filter(pk=doc_pk).delete()
    matter = om.Matter.objects.get(organization=tenant.org, reference="M-1")
    om.Matter.objects.filter(pk=matter.pk).update(title="Renamed since")
    before = rows_by_key(tenant.org)
    out = restore(
        "selective",
        str(backup.pk),
        "--records",
        f"documents.document:{doc_pk},clients.matter:{matter.pk}",
        "--with-dependants",
        "--operator",
        operator.email,
        "--yes",
    )
    assert "Created 3:" in out and f"document:{doc_pk} A1-1" in out
    assert "Overwrote 0:" in out
    after = rows_by_key(tenant.org)
    assert after["document"][doc_pk]["reference"] == "A1-1"
    assert len([v for v in after["document_version"].values() if v["document_id"] == doc_pk]) == 2
    assert after["matter"] == before["matter"]  # left alone without --overwrite-changed
    done = Restore.objects.get(kind=Restore.Kind.SELECTIVE)
    assert AuditLog.objects.filter(object_id=str(done.pk), actor=operator, action="restore.operator_finish").exists()

    out = restore(
        "selective",
        str(backup.pk),
        "--records",
        f"clients.matter:{matter.pk}",
        "--overwrite-changed",
        "--operator",
        operator.email,
        "--yes",
    )
    assert "Overwrote 1:" in out
    assert om.Matter.objects.get(pk=matter.pk).title != "Renamed since"


def test_refusals_are_one_sentence(tenant, operator) -> None:  # type: ignore[no-untyped-def]
    backup = make_backup(tenant.org, tenant.owner)
    with pytest.raises(CommandError, match="add --yes"):
        restore("selective", str(backup.pk), "--records", "clients.client:1", "--operator", operator.email)
    with pytest.raises(CommandError, match="is not a record that can be restored"):
        restore("selective", str(backup.pk), "--records", "profile.profile:1", "--operator", operator.email, "--yes")
    with pytest.raises(CommandError, match="holds no client with id 999999"):
        restore(
            "selective", str(backup.pk), "--records", "clients.client:999999", "--operator", operator.email, "--yes"
        )
    assert not Restore.objects.filter(status=Restore.Status.COMPLETED).exists()


def test_from_file_creates_a_new_organization(tenant, operator, tmp_path) -> None:  # type: ignore[no-untyped-def]
    backup = make_backup(tenant.org, tenant.owner)
    archive = tmp_path / "backup.zip"
    with backup.file.open("rb") as fh:
        archive.write_bytes(fh.read())
    secret = tmp_path / "password"
    secret.write_text(unwrap_password(backup.password_wrapped) + "\n")
    out = restore(
        "from-file",
        str(archive),
        "--password-file",
        str(secret),
        "--slug",
        "acme-recovered",
        "--operator",
        operator.email,
        "--yes",
    )
    assert "was created" in out
    org = om.Organization.objects.get(slug="acme-recovered")
    assert (
        om.Matter.objects.filter(organization=org).count() == om.Matter.objects.filter(organization=tenant.org).count()
    )
    secret.write_text("wrong password")
    with pytest.raises(CommandError):
        restore(
            "from-file",
            str(archive),
            "--password-file",
            str(secret),
            "--slug",
            "acme-2",
            "--operator",
            operator.email,
            "--yes",
        )
    assert not om.Organization.objects.filter(slug="acme-2").exists()


def test_refused_while_a_restore_of_the_organization_is_queued(tenant, operator) -> None:  # type: ignore[no-untyped-def]
    from tests.factories import DEMO_PASSWORD
    from tests.restores.conftest import confirmed_restore

    backup = make_backup(tenant.org, tenant.owner)
    queued = confirmed_restore(backup, tenant.owner, DEMO_PASSWORD)
    doc = om.ControlledDocument.objects.get(organization=tenant.org, reference="A1-1")
    om.ControlledDocument.objects.filter(pk=doc.pk).delete()
    with pytest.raises(CommandError, match=r"A restore of this organization is already queued or running\."):
        restore(
            "selective",
            str(backup.pk),
            "--records",
            f"documents.document:{doc.pk}",
            "--operator",
            operator.email,
            "--yes",
        )
    assert not om.ControlledDocument.objects.filter(pk=doc.pk).exists()
    assert list(Restore.objects.values_list("pk", "status")) == [(queued.pk, Restore.Status.QUEUED)]
