"""``manage.py backup compare``: one JSON object of counts, both directions, audited, refusals."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from accounts.models import AuditLog
from backups import datasets as ds
from organizations import models as om
from tests import factories as f
from tests.backups.compare.conftest import make_backup

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command("backup", "compare", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def operator():  # type: ignore[no-untyped-def]
    return f.UserFactory(email="ops@platform.test", is_staff=True)


def test_json_counts_from_the_backup_to_now_and_between_backups(tenant, operator) -> None:  # type: ignore[no-untyped-def]
    before = make_backup(tenant.org, tenant.owner)
    om.Matter.objects.filter(organization=tenant.org, reference="M-0").update(title="Renamed")
    om.Payment.objects.filter(organization=tenant.org).delete()
    out = run(str(before.pk), "--json", "--operator", operator.email, "--yes")
    counts = json.loads(out)
    assert out.count("\n") <= 1  # one object
    assert list(counts) == ds.resolve(before.datasets)
    assert {m for per in counts.values() for m in per} == {s.key for k in counts for s in ds.REGISTRY[k].models}
    assert counts["clients"]["matter"] == {"added": 0, "removed": 0, "changed": 1}
    assert counts["billing"]["payment"] == {"added": 0, "removed": 2, "changed": 0}
    assert counts["documents"]["document"] == {"added": 0, "removed": 0, "changed": 0}

    after = make_backup(tenant.org, tenant.owner)
    forward = json.loads(run(str(before.pk), "--with", str(after.pk), "--json", "--operator", operator.email, "--yes"))
    backward = json.loads(run(str(after.pk), "--with", str(before.pk), "--json", "--operator", operator.email, "--yes"))
    assert forward == counts
    assert backward["billing"]["payment"] == {"added": 2, "removed": 0, "changed": 0}  # ID is the earlier side
    audit = AuditLog.objects.filter(action="backup.compare", actor=operator)
    assert audit.count() == 3 and audit.first().organization == tenant.org


def test_text_output_names_each_model(tenant, operator) -> None:  # type: ignore[no-untyped-def]
    backup = make_backup(tenant.org, tenant.owner)
    out = run(str(backup.pk), "--operator", operator.email, "--yes")
    assert f"Backup {backup.pk} (acme) → now:" in out
    assert "documents/document_version (Document versions): 0 added, 0 removed, 0 changed" in out


def test_refusals(tenant, operator) -> None:  # type: ignore[no-untyped-def]
    backup = make_backup(tenant.org, tenant.owner)
    f.SubscriptionFactory(organization=tenant.other_org)
    other = make_backup(tenant.other_org, tenant.other_owner)
    with pytest.raises(CommandError, match="add --yes"):
        run(str(backup.pk), "--operator", operator.email)
    with pytest.raises(CommandError, match="not an active staff user"):
        run(str(backup.pk), "--operator", tenant.owner.email, "--yes")
    with pytest.raises(CommandError, match="different organizations"):
        run(str(backup.pk), "--with", str(other.pk), "--operator", operator.email, "--yes")
    with pytest.raises(CommandError, match="no backup with id 999"):
        run("999", "--operator", operator.email, "--yes")
    assert not AuditLog.objects.filter(action="backup.compare").exists()
