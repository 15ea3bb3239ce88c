"""Selective restore engine: picked records come back with what they need and, when asked,
their dependants; existing records are left alone unless overwritten; conflicts are planned."""

from __future__ import annotations

import pytest

from organizations import models as om
from tests import factories as f
from tests.backups.conftest import add_document, storage, tenant  # noqa: F401
from tests.restores.conftest import make_backup
from tests.restores.inplace_helpers import rows_by_key
from tests.restores.selective_helpers import preview, restore_selected

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_deleted_client_comes_back_with_its_matters_and_nothing_else_changes(tenant) -> None:  # noqa: F811
    backup = make_backup(tenant.org, tenant.owner)
    matter = om.Matter.objects.get(organization=tenant.org, reference="M-0")
    client = matter.client
    client_pk = client.pk
    before = rows_by_key(tenant.org)
    om.TimeEntry.objects.filter(matter__client=client).delete()
    om.Payment.objects.filter(invoice__client=client).delete()
    om.Invoice.objects.filter(client=client).delete()
    om.Matter.objects.filter(client=client).delete()
    client.delete()
    added = f.MatterFactory(
        organization=tenant.org, ou=tenant.ou_b, client=om.Client.objects.exclude(pk=client_pk).first(), reference="NEW"
    )
    plan = preview(backup, {"client": {client_pk}}, with_dependants=True)
    assert {i.key for i in plan.by_action("create")} >= {"client", "matter", "invoice", "time_entry"}
    restore_selected(backup, {"client": {client_pk}}, with_dependants=True)
    after = rows_by_key(tenant.org)
    assert added.pk in after["matter"]
    del after["matter"][added.pk]
    assert after == before


def test_a_matter_brings_its_deleted_client_and_existing_rows_are_left_alone(tenant) -> None:  # noqa: F811
    backup = make_backup(tenant.org, tenant.owner)
    matter = om.Matter.objects.get(organization=tenant.org, reference="M-1")
    other = om.Matter.objects.get(organization=tenant.org, reference="M-0")
    om.Matter.objects.filter(pk=other.pk).update(title="Changed since")
    client_pk = matter.client_id
    om.TimeEntry.objects.filter(matter=matter).delete()
    om.Payment.objects.filter(invoice__client_id=client_pk).delete()
    om.Invoice.objects.filter(client_id=client_pk).delete()
    om.Matter.objects.filter(pk=matter.pk).delete()
    om.Client.objects.filter(pk=client_pk).delete()
    restore_selected(backup, {"matter": {matter.pk, other.pk}})
    assert om.Matter.objects.get(pk=matter.pk).client_id == client_pk
    assert om.Matter.objects.get(pk=other.pk).title == "Changed since"  # left alone
    assert not om.Invoice.objects.filter(client_id=client_pk).exists()  # not picked
    restore_selected(backup, {"matter": {other.pk}}, overwrite=True)
    assert om.Matter.objects.get(pk=other.pk).title != "Changed since"


def test_a_taken_reference_is_a_conflict_skipped_or_suffixed(tenant) -> None:  # noqa: F811
    backup = make_backup(tenant.org, tenant.owner)
    doc = om.ControlledDocument.objects.get(organization=tenant.org, reference="A0-2")
    om.ControlledDocument.objects.filter(pk=doc.pk).delete()
    add_document(tenant.org, tenant.ou_a, "A0-2")  # someone re-used the reference
    before = rows_by_key(tenant.org)
    plan = preview(backup, {"document": {doc.pk}}, with_dependants=True)
    assert [c.id for c in plan.conflicts] == [f"document:{doc.pk}"]
    assert {i.action for i in plan.all_items()} == {"skip"}  # the versions follow their document
    restore_selected(backup, {"document": {doc.pk}}, with_dependants=True)
    assert rows_by_key(tenant.org) == before
    restore_selected(backup, {"document": {doc.pk}}, with_dependants=True, on_conflict="suffix")
    back = om.ControlledDocument.objects.get(pk=doc.pk)
    assert back.reference == "A0-2-restored"
    assert back.versions.count() == 1


def test_refused_while_the_organization_is_restored_in_place(tenant) -> None:  # noqa: F811
    from django.core.files.storage import default_storage
    from django.db import transaction
    from django.utils import timezone

    from backups.importer import ImportResult
    from restores import engine
    from restores.models import Restore
    from restores.selective.services import apply_selective, selection_options

    backup = make_backup(tenant.org, tenant.owner)
    om.Organization.objects.filter(pk=tenant.org.pk).update(maintenance_since=timezone.now())
    template = om.Template.objects.get(organization=tenant.org)
    options = selection_options(picks={"template": {template.pk}}, with_dependants=False, overwrite=True)
    restore = Restore(kind=Restore.Kind.SELECTIVE, organization=tenant.org, backup=backup, options=options, pk=1)
    refused = pytest.raises(engine.RestoreRefused, match="being restored in place")
    with engine.open_backup(backup) as reader, transaction.atomic(), refused:
        apply_selective(restore=restore, reader=reader, storage=default_storage, result=ImportResult())
