"""The compare reports every kind of difference in every data set, in both directions."""

from __future__ import annotations

import datetime as dt
import os
from decimal import Decimal

import pytest
from django.core.files.base import ContentFile

from accounts.models import Membership, OURoleAssignment, Role
from backups.models import ComparisonEntry
from organizations import models as om
from tests import factories as f
from tests.backups.compare.conftest import add_document, make_backup, nonzero, run_compare

pytestmark = pytest.mark.django_db


def mutate_everything(cast) -> None:  # type: ignore[no-untyped-def]
    """One addition, removal or change in each data set."""
    org = cast.org
    org.description = "Changed since the backup"
    org.save()
    org.logo.save("logo", ContentFile(b"\x89PNG\r\n\x1a\n" + os.urandom(100)))  # a new file: the logo changed
    om.OrganizationSetting.objects.filter(organization=org, key="billing.currency").update(value={"code": "EUR"})
    om.OrganizationSetting.objects.create(organization=org, key="new.setting", value=1)
    org.regulations.remove(org.regulations.order_by("pk").first())
    f.FacilityFactory(organization=org, name="Annex", code="ANX")
    Role.objects.filter(organization=org, name="Reviewer").update(name="Senior reviewer")
    Membership.objects.filter(organization=org, user=cast.member).update(role=Membership.Role.ADMIN)
    OURoleAssignment.objects.filter(user=cast.editor_a).delete()
    doc = om.ControlledDocument.objects.get(organization=org, reference="A0-2")
    doc.delete()  # the document and its version are removed
    add_document(org, cast.ou_b, "NEW-1", "active")
    om.DocumentVersion.objects.filter(document__reference="A1-1", number=2).update(note="Reviewed")
    om.Client.objects.filter(organization=org, matters__reference="M-0").update(email="new@client.test")
    om.Template.objects.filter(organization=org).update(body="x" * 200)
    om.Payment.objects.filter(organization=org, invoice__number="INV-1").delete()
    om.Invoice.objects.filter(organization=org, number="INV-0").update(status="paid", total=Decimal("99.00"))
    om.TimeEntry.objects.filter(organization=org, matter__reference="M-1").update(worked_on=dt.date(2026, 3, 1))


EXPECTED = {
    "profile": {"profile": {"changed": 1}},
    "settings": {"setting": {"added": 1, "changed": 1}},
    "regulations": {"regulation": {"removed": 1}},
    "structure": {"facility": {"added": 1}},
    "users": {"role": {"changed": 1}, "membership": {"changed": 1}, "ou_role": {"removed": 1}},
    "documents": {
        "document": {"added": 1, "removed": 1},
        "document_version": {"added": 1, "removed": 1, "changed": 1},
    },
    "clients": {"client": {"changed": 1}},
    "templates": {"template": {"changed": 1}},
    "billing": {"invoice": {"changed": 1}, "payment": {"removed": 1}, "time_entry": {"changed": 1}},
}


def _reverse(expected):  # type: ignore[no-untyped-def]
    swap = {"added": "removed", "removed": "added", "changed": "changed"}
    return {d: {m: {swap[k]: v for k, v in t.items()} for m, t in per.items()} for d, per in expected.items()}


def test_nothing_changed_reports_no_difference(tenant) -> None:  # type: ignore[no-untyped-def]
    backup = make_backup(tenant.org, tenant.owner)
    comparison = run_compare(backup)
    assert nonzero(comparison.summary) == {}
    assert comparison.entries.count() == 0
    assert comparison.counts["documents"]["document"] == {"earlier": 6, "later": 6}


def test_every_kind_of_difference_in_every_data_set_against_now(tenant) -> None:  # type: ignore[no-untyped-def]
    backup = make_backup(tenant.org, tenant.owner)
    mutate_everything(tenant)
    comparison = run_compare(backup)
    assert nonzero(comparison.summary) == EXPECTED
    entries = {(e.model, e.kind): e for e in comparison.entries.all()}
    assert entries[("document", "removed")].title == "A0-2 Procedure A0-2"
    assert entries[("document_version", "removed")].title == "A0-2 v1"  # the removed document's reference
    assert entries[("document_version", "added")].title == "NEW-1 v1"
    changed = entries[("document_version", "changed")]
    assert changed.title == "A1-1 v2"
    assert changed.details == [{"field": "note", "old": "", "new": "Reviewed"}]
    assert entries[("client", "changed")].details[0]["field"] == "email"
    assert entries[("template", "changed")].details == [{"field": "body", "long": True}]
    assert entries[("invoice", "changed")].title == "INV-0"
    assert [d["field"] for d in entries[("invoice", "changed")].details] == ["status", "total"]
    assert entries[("payment", "removed")].title.startswith("INV-1 payment")
    assert entries[("ou_role", "removed")].title.startswith("LIT editor-a@acme.test")
    assert {d["field"] for d in entries[("profile", "changed")].details} == {"description", "logo"}
    assert entries[("setting", "added")].title == "new.setting"
    assert entries[("facility", "added")].title == "ANX Annex"


def test_two_backups_in_either_order_compare_from_the_older_to_the_newer(tenant) -> None:  # type: ignore[no-untyped-def]
    before = make_backup(tenant.org, tenant.owner)
    mutate_everything(tenant)
    after = make_backup(tenant.org, tenant.owner)
    forward = run_compare(before, after)
    backward = run_compare(after, before)
    assert nonzero(forward.summary) == EXPECTED
    assert nonzero(backward.summary) == EXPECTED
    assert (backward.earlier_id, backward.later_id) == (before.pk, after.pk)


def test_the_later_backup_against_now_sees_the_changes_undone(tenant) -> None:  # type: ignore[no-untyped-def]
    """Direction: from the backup to now. Undoing a deletion shows as an addition."""
    backup = make_backup(tenant.org, tenant.owner)
    om.Payment.objects.filter(organization=tenant.org).delete()
    assert nonzero(run_compare(backup).summary) == {"billing": {"payment": {"removed": 2}}}
    after = make_backup(tenant.org, tenant.owner)
    om.Payment.objects.create(
        organization=tenant.org,
        invoice=om.Invoice.objects.get(number="INV-0"),
        amount=Decimal("1.00"),
        received_on=dt.date(2026, 5, 1),
    )
    assert nonzero(run_compare(after).summary) == {"billing": {"payment": {"added": 1}}}
    assert _reverse({"billing": {"payment": {"added": 1}}}) == {"billing": {"payment": {"removed": 1}}}


def test_a_limited_backup_compares_only_its_scope(tenant) -> None:  # type: ignore[no-untyped-def]
    backup = make_backup(tenant.org, tenant.owner, ous=[tenant.ou_a], include_inactive=False)
    om.ControlledDocument.objects.filter(organization=tenant.org, ou=tenant.ou_b).delete()  # outside the OU
    om.ControlledDocument.objects.filter(organization=tenant.org, reference="A0-2").update(title="Inactive: outside")
    add_document(tenant.org, tenant.ou_a, "IN-1", "active")
    comparison = run_compare(backup)
    assert nonzero(comparison.summary)["documents"] == {"document": {"added": 1}, "document_version": {"added": 1}}
    assert ComparisonEntry.objects.filter(comparison=comparison, model="document").get().title == "IN-1 Procedure IN-1"
