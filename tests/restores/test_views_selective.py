"""Selective restore pages: pick in the browse pages, preview, ask for the Owner's code, enter
it, the worker restores exactly the picked records; owner, allowed user, other org, anonymous."""

from __future__ import annotations

import pytest
from django.urls import reverse

from accounts.models import AuditLog
from organizations import models as om
from restores.models import Restore
from tests.factories import DEMO_PASSWORD, client_for
from tests.restores.conftest import last_code, run

pytestmark = pytest.mark.django_db


def test_owner_picks_previews_confirms_and_gets_the_records_back(tenant, full_backup) -> None:  # type: ignore[no-untyped-def]
    matter = om.Matter.objects.get(organization=tenant.org, reference="M-0")
    client_pk = matter.client_id
    om.TimeEntry.objects.filter(matter__client_id=client_pk).delete()
    om.Payment.objects.filter(invoice__client_id=client_pk).delete()
    om.Invoice.objects.filter(client_id=client_pk).delete()
    om.Matter.objects.filter(client_id=client_pk).delete()
    om.Client.objects.filter(pk=client_pk).delete()
    om.Template.objects.create(organization=tenant.org, name="Made after the backup")

    owner = client_for(tenant.owner)
    select = reverse("backups:browse_select", args=[full_backup.pk])
    owner.post(select, {"records": [f"client:{client_pk}"]})
    url = reverse("restores:selective", args=[full_backup.pk])
    page = owner.get(url, {"with_dependants": "1"})
    text = " ".join(page.content.decode().split())
    assert "Will be re-created" in text and "M-0" in text and "INV-0" in text

    response = owner.post(url, {"with_dependants": "1"})
    restore = Restore.objects.get(kind=Restore.Kind.SELECTIVE)
    assert response.status_code == 302 and response["Location"] == restore.get_absolute_url()
    assert restore.options["records"] == {"client": [client_pk]}
    confirm = owner.post(
        reverse("restores:confirm", args=[restore.pk]), {"code": last_code(), "password": DEMO_PASSWORD}
    )
    assert confirm.status_code == 302
    restore = run(Restore.objects.get(pk=restore.pk))
    assert restore.status == Restore.Status.COMPLETED, restore.failure_reason
    assert om.Matter.objects.filter(pk=matter.pk, client_id=client_pk).exists()
    assert om.Template.objects.filter(name="Made after the backup").exists()
    assert restore.pre_restore_backup is not None
    assert set(restore.pre_restore_backup.datasets) >= {"clients", "billing"}
    assert "documents" not in restore.pre_restore_backup.datasets
    audit = AuditLog.objects.get(action="restore.complete", object_id=str(restore.pk))
    assert {r["model"] for r in audit.details["records"]} >= {"client", "matter", "invoice", "time_entry"}
    detail = owner.get(restore.get_absolute_url())
    assert b"The picked records are back" in detail.content


def test_access_to_the_preview(tenant, full_backup) -> None:  # type: ignore[no-untyped-def]
    url = reverse("restores:selective", args=[full_backup.pk])
    assert client_for(None).get(url).status_code == 302
    assert client_for(tenant.other_owner).get(url).status_code == 404
    assert client_for(tenant.other_owner).post(url, {}).status_code == 404
    assert client_for(tenant.member).get(url).status_code == 404
    editor = client_for(tenant.editor)  # sees the backup, may not restore the organization
    template = om.Template.objects.filter(organization=tenant.org).first()
    editor.post(reverse("backups:browse_select", args=[full_backup.pk]), {"records": [f"template:{template.pk}"]})
    page = editor.get(url)
    assert page.status_code == 200 and b"not-allowed" in page.content
    editor.post(url, {})
    assert not Restore.objects.filter(kind=Restore.Kind.SELECTIVE).exists()
    admin = client_for(tenant.admin)  # sees the backup (OU roles in both OUs) and may restore
    assert admin.get(url).status_code == 200


def test_records_picked_in_the_compare_drill_down_go_to_the_preview(tenant, full_backup) -> None:  # type: ignore[no-untyped-def]
    from backups.compare import services as compare

    om.Template.objects.filter(organization=tenant.org, name="Engagement letter").delete()
    comparison = compare.comparison_request(backup=full_backup, requested_by=tenant.owner)
    compare.comparison_run(comparison=compare.comparison_claim(comparison_id=comparison.pk))
    owner = client_for(tenant.owner)
    drill = owner.get(comparison.get_absolute_url(), {"model": "template"})
    value = drill.content.decode().split('name="records" value="')[1].split('"')[0]
    assert value.startswith("template:")
    owner.post(reverse("backups:browse_select", args=[full_backup.pk]), {"records": [value]})
    preview = owner.get(reverse("restores:selective", args=[full_backup.pk]))
    assert "Engagement letter" in preview.content.decode()
    assert "1 to re-create" in " ".join(preview.content.decode().split())


def test_a_new_code_keeps_the_selection_and_a_failure_changes_nothing(tenant, full_backup, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from restores import engine
    from restores.selective.services import selection_options
    from tests.restores.conftest import media_listing
    from tests.restores.inplace_helpers import rows_by_key

    template = om.Template.objects.get(organization=tenant.org, name="Engagement letter")
    template_pk = template.pk
    template.delete()
    owner = client_for(tenant.owner)
    owner.post(reverse("backups:browse_select", args=[full_backup.pk]), {"records": [f"template:{template_pk}"]})
    owner.post(reverse("restores:selective", args=[full_backup.pk]), {})
    restore = Restore.objects.get(kind=Restore.Kind.SELECTIVE)
    owner.post(reverse("restores:resend", args=[restore.pk]))
    assert Restore.objects.get(pk=restore.pk).codes.count() == 2
    assert Restore.objects.filter(status=Restore.Status.AWAITING_CODE).get().pk == restore.pk  # still selective
    owner.post(reverse("restores:confirm", args=[restore.pk]), {"code": last_code(), "password": DEMO_PASSWORD})
    assert restore.options == selection_options(
        picks={"template": {template_pk}}, with_dependants=False, overwrite=False
    )

    before, files = rows_by_key(tenant.org), media_listing()

    def fail(stage: str, **info: object) -> None:
        if stage == "imported":
            raise RuntimeError("injected")

    monkeypatch.setattr(engine, "checkpoint", fail)
    done = run(Restore.objects.get(pk=restore.pk))
    assert done.status == Restore.Status.FAILED
    assert "unexpected error" in done.failure_reason
    after = rows_by_key(tenant.org)
    assert after == before
    assert not om.Template.objects.filter(pk=template_pk).exists()
    assert {k: v for k, v in media_listing().items() if f"restore-{done.pk}" in k} == {}
    assert set(media_listing()) - set(files) <= {k for k in media_listing() if k.startswith("backups/")}


def test_asking_while_an_in_place_restore_is_queued_shows_why_and_sends_no_code(tenant, full_backup) -> None:  # type: ignore[no-untyped-def]
    from django.core import mail

    from tests.restores.conftest import confirmed_restore

    queued = confirmed_restore(full_backup, tenant.owner, DEMO_PASSWORD)
    assert queued.status == Restore.Status.QUEUED
    sent = len(mail.outbox)
    template = om.Template.objects.filter(organization=tenant.org).first()
    owner = client_for(tenant.owner)
    owner.post(reverse("backups:browse_select", args=[full_backup.pk]), {"records": [f"template:{template.pk}"]})
    page = owner.post(reverse("restores:selective", args=[full_backup.pk]), {})
    assert page.status_code == 200
    assert "A restore of this organization is already queued or running." in page.content.decode()
    assert not Restore.objects.filter(kind=Restore.Kind.SELECTIVE).exists()
    assert len(mail.outbox) == sent
    assert Restore.objects.get(pk=queued.pk).status == Restore.Status.QUEUED


def _queued_in_place(tenant, backup) -> Restore:  # type: ignore[no-untyped-def]
    """An in-place restore of the organization queued after the selective request was opened
    (as an operator's, or one confirmed before the request rules held)."""
    return Restore.objects.create(
        kind=Restore.Kind.IN_PLACE,
        status=Restore.Status.QUEUED,
        organization=tenant.org,
        backup=backup,
        requested_by=tenant.owner,
    )


def test_the_code_of_an_open_request_is_refused_once_an_in_place_restore_is_queued(tenant, full_backup) -> None:  # type: ignore[no-untyped-def]
    from django.core import mail

    template = om.Template.objects.filter(organization=tenant.org).first()
    admin = client_for(tenant.admin)
    admin.post(reverse("backups:browse_select", args=[full_backup.pk]), {"records": [f"template:{template.pk}"]})
    admin.post(reverse("restores:selective", args=[full_backup.pk]), {})
    selective = Restore.objects.get(kind=Restore.Kind.SELECTIVE, status=Restore.Status.AWAITING_CODE)
    code = last_code()
    in_place = _queued_in_place(tenant, full_backup)
    sent = len(mail.outbox)

    page = admin.post(reverse("restores:resend", args=[selective.pk]), follow=True)
    assert "A restore of this organization is already queued or running." in page.content.decode()
    assert len(mail.outbox) == sent  # no new code
    page = admin.post(reverse("restores:confirm", args=[selective.pk]), {"code": code, "password": DEMO_PASSWORD})
    assert page.status_code == 400
    assert "A restore of this organization is already queued or running." in page.content.decode()
    selective.refresh_from_db()
    assert (selective.status, selective.attempts, selective.confirmed_at) == (Restore.Status.AWAITING_CODE, 0, None)
    assert list(Restore.objects.filter(status__in=Restore.ACTIVE_STATUSES)) == [in_place]

    Restore.objects.filter(pk=in_place.pk).update(status=Restore.Status.COMPLETED)  # once it has finished
    admin.post(reverse("restores:confirm", args=[selective.pk]), {"code": code, "password": DEMO_PASSWORD})
    assert Restore.objects.get(pk=selective.pk).status == Restore.Status.QUEUED
