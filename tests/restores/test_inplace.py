"""The scope-exact in-place restore: inside the backup's scope the organization ends equal to
the backup; every row and file outside it stays as it was, primary keys included."""

from __future__ import annotations

import datetime as dt

import pytest

from backups.snapshot import logical_snapshot
from organizations import models as om
from restores import engine
from restores.models import Restore
from tests import factories as f
from tests.factories import DEMO_PASSWORD
from tests.restores.conftest import add_document, confirmed_restore, db_state, make_backup, media_listing, run
from tests.restores.inplace_helpers import restore_in_place, rows_by_key

pytestmark = pytest.mark.django_db


def test_an_active_documents_only_backup_keeps_every_inactive_document(tenant) -> None:  # type: ignore[no-untyped-def]
    """The reported bug: restoring a backup of active documents deleted every inactive one."""
    active_only = make_backup(tenant.org, tenant.owner, include_inactive=False)
    docs = om.ControlledDocument.objects.filter(organization=tenant.org)
    active_at_backup = logical_snapshot(tenant.org, datasets=["documents"])
    add_document(tenant.org, tenant.ou_a, "INACTIVE-LATER", "inactive")
    docs.filter(reference="A1-2").update(title="Inactive, renamed since")
    docs.filter(reference="A0-1").update(title="Active, renamed since")
    add_document(tenant.org, tenant.ou_b, "ACTIVE-LATER", "active")
    outside = {pk: row for pk, row in rows_by_key(tenant.org)["document"].items() if row["status"] == "inactive"}
    outside_versions = {
        pk: row for pk, row in rows_by_key(tenant.org)["document_version"].items() if row["document_id"] in outside
    }
    files_before = media_listing()
    restore = run(confirmed_restore(active_only, tenant.owner, DEMO_PASSWORD))
    assert restore.status == Restore.Status.COMPLETED, restore.failure_reason
    after = rows_by_key(tenant.org)
    assert {pk: after["document"].get(pk) for pk in outside} == outside  # every inactive document, as it was
    assert {pk: after["document_version"].get(pk) for pk in outside_versions} == outside_versions
    assert all(media_listing().get(row["file"]) == files_before[row["file"]] for row in outside_versions.values())
    assert not docs.filter(reference="ACTIVE-LATER").exists()
    assert docs.get(reference="A0-1").title == "Procedure A0-1"
    # Everything else in the documents data set is the backup's again.
    in_scope = logical_snapshot(tenant.org, datasets=["documents"])
    assert sorted(d for d in in_scope["document"] if '"inactive"' not in d) == sorted(
        d for d in active_at_backup["document"] if '"inactive"' not in d
    )


def test_an_ou_limited_backup_is_restored_over_its_ous_only(tenant) -> None:  # type: ignore[no-untyped-def]
    backup = make_backup(tenant.org, tenant.owner, ous=[tenant.ou_a])
    before = rows_by_key(tenant.org)
    in_a = {d.pk for d in om.ControlledDocument.objects.filter(ou=tenant.ou_a)}
    # Changes inside OU A, outside it, and a move out of OU A.
    om.ControlledDocument.objects.filter(pk__in=in_a).update(title="Changed in A")
    moved = om.ControlledDocument.objects.filter(pk__in=in_a).order_by("pk").first()
    om.ControlledDocument.objects.filter(pk=moved.pk).update(ou=tenant.ou_b)
    om.ControlledDocument.objects.filter(ou=tenant.ou_b).exclude(pk=moved.pk).update(title="Changed in B")
    om.Client.objects.filter(ou=tenant.ou_a).update(name="Renamed in A")
    om.Client.objects.filter(ou=tenant.ou_b).update(name="Renamed in B")
    add_document(tenant.org, tenant.ou_b, "B-LATER")
    gone = om.Payment.objects.filter(invoice__matter__ou=tenant.ou_a).get().pk
    om.Payment.objects.filter(pk=gone).delete()
    changed = rows_by_key(tenant.org)
    replaced = restore_in_place(backup)
    after = rows_by_key(tenant.org)
    for key in ("document", "client"):
        for pk, row in after[key].items():
            if row["ou_id"] == tenant.ou_b.pk and pk != moved.pk:
                assert row == changed[key][pk]  # outside the backup: untouched
            else:
                assert row == before[key][pk]  # inside: the backup's, same key
    assert after["payment"][gone] == before["payment"][gone]  # came back with its own key
    assert after["document"][moved.pk]["ou_id"] == tenant.ou_a.pk
    assert replaced.summary()["payment"]["created"] == 1


def test_a_facility_that_rows_outside_the_backup_use_is_kept(tenant) -> None:  # type: ignore[no-untyped-def]
    backup = make_backup(tenant.org, tenant.owner, ous=[tenant.ou_a])
    site = om.Facility.objects.create(organization=tenant.org, name="Added site", code="SITE")
    om.OrganisationalUnit.objects.filter(pk=tenant.ou_a.pk).update(facility=site)
    other = om.OrganisationalUnit.objects.create(organization=tenant.org, name="Added OU", code="ADD", facility=site)
    replaced = restore_in_place(backup)
    assert om.Facility.objects.filter(pk=site.pk).exists()
    assert om.OrganisationalUnit.objects.get(pk=other.pk).facility_id == site.pk
    assert om.OrganisationalUnit.objects.get(pk=tenant.ou_a.pk).facility_id is None
    assert replaced.kept["facility"] == {"organisational units outside the backup use them": 1}


def test_an_invoice_a_time_entry_outside_the_backup_points_at_is_kept(tenant) -> None:  # type: ignore[no-untyped-def]
    backup = make_backup(tenant.org, tenant.owner, ous=[tenant.ou_a])
    matter_a = om.Matter.objects.get(ou=tenant.ou_a)
    invoice = om.Invoice.objects.create(
        organization=tenant.org,
        client=matter_a.client,
        matter=matter_a,
        number="INV-LATER",
        issued_on=dt.date(2026, 5, 1),
        due_on=dt.date(2026, 5, 31),
    )
    entry = om.TimeEntry.objects.create(
        organization=tenant.org,
        matter=om.Matter.objects.get(ou=tenant.ou_b),
        invoice=invoice,
        user_email="someone@acme.test",
        worked_on=dt.date(2026, 5, 2),
        minutes=30,
    )
    replaced = restore_in_place(backup)
    assert om.TimeEntry.objects.get(pk=entry.pk).invoice_id == invoice.pk
    assert replaced.kept["invoice"] == {"time entries outside the backup use them": 1}


def test_a_reference_taken_by_a_row_outside_the_scope_refuses_the_restore(tenant) -> None:  # type: ignore[no-untyped-def]
    active_only = make_backup(tenant.org, tenant.owner, include_inactive=False)
    om.ControlledDocument.objects.filter(reference="A0-1").delete()
    add_document(tenant.org, tenant.ou_a, "A0-1", "inactive")  # outside the backup's scope now
    before = db_state(tenant.org)
    files = media_listing()
    with pytest.raises(engine.RestoreRefused) as refused:
        restore_in_place(active_only)
    assert "1 controlled document of the backup (“A0-1”) would take the reference" in str(refused.value)
    assert "Nothing was changed" in str(refused.value)
    assert db_state(tenant.org) == before
    assert media_listing() == files


def test_unique_values_can_move_between_rows(tenant) -> None:  # type: ignore[no-untyped-def]
    om.Template.objects.create(organization=tenant.org, name="Second")
    backup = make_backup(tenant.org, tenant.owner)
    first, second = om.Template.objects.filter(organization=tenant.org).order_by("pk")
    om.Template.objects.filter(pk=first.pk).update(name="swap")
    om.Template.objects.filter(pk=second.pk).update(name=first.name)
    om.Template.objects.filter(pk=first.pk).update(name=second.name)
    restore_in_place(backup)
    assert dict(om.Template.objects.filter(organization=tenant.org).values_list("pk", "name")) == {
        first.pk: first.name,
        second.pk: second.name,
    }


def test_an_unchanged_organization_is_not_written(tenant) -> None:  # type: ignore[no-untyped-def]
    backup = make_backup(tenant.org, tenant.owner)
    before = rows_by_key(tenant.org)
    files = media_listing()
    replaced = restore_in_place(backup)
    assert rows_by_key(tenant.org) == before
    assert media_listing() == files
    assert replaced.result.stored_files == [] and replaced.old_files == []
    assert all(c["updated"] == c["created"] == 0 for c in replaced.summary().values())


def test_a_deleted_row_comes_back_with_a_new_key_when_its_own_is_taken(tenant) -> None:  # type: ignore[no-untyped-def]
    backup = make_backup(tenant.org, tenant.owner)
    template = om.Template.objects.get(organization=tenant.org)
    old_pk = template.pk
    template.delete()
    # Another organization got the key (only possible when keys were set by hand).
    om.Template.objects.create(pk=old_pk, organization=tenant.other_org, name="Other's")
    restore_in_place(backup)
    back = om.Template.objects.get(organization=tenant.org)
    assert back.name == template.name and back.pk != old_pk
    assert om.Template.objects.get(pk=old_pk).organization_id == tenant.other_org.pk


def test_the_owner_stays_the_owner(tenant) -> None:  # type: ignore[no-untyped-def]
    from accounts.models import Membership

    backup = make_backup(tenant.org, tenant.owner)
    late = f.UserFactory(email="late@acme.test")
    Membership.objects.create(user=late, organization=tenant.org, role=Membership.Role.MEMBER)
    Membership.objects.filter(organization=tenant.org, user=tenant.member).delete()
    restore_in_place(backup)
    roles = dict(Membership.objects.filter(organization=tenant.org).values_list("user__email", "role"))
    assert roles["owner@acme.test"] == "owner"
    assert "late@acme.test" not in roles and roles["member@acme.test"] == "member"
