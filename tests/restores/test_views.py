"""The restore pages: the owner, an allowed user, a user of another organization (404) and an
anonymous user (login redirect) in every case."""

from __future__ import annotations

import pytest
from django.core import mail
from django.urls import reverse

from backups.models import Backup
from restores.models import Restore
from tests.factories import DEMO_PASSWORD, client_for
from tests.restores.conftest import last_code

pytestmark = pytest.mark.django_db


def test_the_warning_page_says_what_is_replaced_and_what_stays(tenant, full_backup) -> None:  # type: ignore[no-untyped-def]
    from organizations.models import Template

    Template.objects.create(organization=tenant.org, name="Added after the backup")
    response = client_for(tenant.admin).get(reverse("restores:start", args=[full_backup.pk]))
    assert response.status_code == 200
    text = " ".join(response.content.decode().split())
    assert "This replaces what the backup holds, and nothing else" in text and "Send code to the Owner" in text
    assert "Templates: 1 in the backup replaces the 2 in its scope now; at least 1 added since will be removed" in text
    assert "Controlled documents: 6 in the backup replace the 6 in its scope now" in text
    assert "Facilities: none in the backup, none in its scope now." in text


def test_the_warning_page_of_an_ou_limited_backup_names_what_stays(tenant) -> None:  # type: ignore[no-untyped-def]
    from tests.restores.conftest import make_backup

    partial = make_backup(tenant.org, tenant.owner, ous=[tenant.ou_a], include_inactive=False)
    response = client_for(tenant.owner).get(reverse("restores:start", args=[partial.pk]))
    assert response.status_code == 200
    text = " ".join(response.content.decode().split())
    assert "the organisational units Litigation" in text
    assert "2 inactive documents are not in this backup and stay as they are." in text
    assert "2 controlled documents of organisational units outside this backup stay as they are." in text
    assert "1 client of organisational units outside this backup stays as it is." in text
    assert 'data-testid="send-code"' in text  # no longer refused


def test_who_sees_the_warning_page(tenant, full_backup) -> None:  # type: ignore[no-untyped-def]
    url = reverse("restores:start", args=[full_backup.pk])
    assert client_for(tenant.owner).get(url).status_code == 200
    assert client_for(tenant.admin).get(url).status_code == 200
    # The editor may see the backup but is no Owner or Admin.
    denied = client_for(tenant.editor).get(url)
    assert denied.status_code == 403 and b"Only the Owner and Admins" in denied.content
    assert client_for(tenant.member).get(url).status_code == 404  # cannot see the backup
    assert client_for(tenant.other_owner).get(url).status_code == 404
    anonymous = client_for(None).get(url)
    assert anonymous.status_code == 302 and "/accounts/login/" in anonymous["Location"]


def test_owner_only_policy_shows_a_clear_page_to_admins(tenant, full_backup) -> None:  # type: ignore[no-untyped-def]
    owner = client_for(tenant.owner)
    response = owner.post(reverse("restores:settings"), {"restore_policy": "owner_only"})
    assert response.status_code == 302
    denied = client_for(tenant.admin).get(reverse("restores:start", args=[full_backup.pk]))
    assert denied.status_code == 403 and b"only the Owner may start restores" in denied.content


def test_the_settings_page(tenant) -> None:  # type: ignore[no-untyped-def]
    url = reverse("restores:settings")
    assert client_for(tenant.owner).get(url).context["can_change"] is True
    admin = client_for(tenant.admin)
    page = admin.get(url)
    assert page.status_code == 200 and page.context["can_change"] is False
    admin.post(url, {"restore_policy": "owner_only"})
    tenant.org.refresh_from_db()
    assert tenant.org.restore_policy == "owner_and_admins"
    assert client_for(tenant.member).get(url).status_code == 404
    assert client_for(tenant.other_owner).get(url).status_code == 200  # their own organization
    assert client_for(None).get(url).status_code == 302


def test_send_enter_and_queue_through_the_pages(tenant, full_backup) -> None:  # type: ignore[no-untyped-def]
    admin = client_for(tenant.admin)
    mail.outbox.clear()
    response = admin.post(reverse("restores:start", args=[full_backup.pk]))
    restore = Restore.objects.get()
    assert response.status_code == 302 and response["Location"] == restore.get_absolute_url()
    page = admin.get(restore.get_absolute_url())
    assert b"Enter the Owner's code" in page.content
    assert last_code() not in page.content.decode()  # the requester never sees the code
    wrong = admin.post(reverse("restores:confirm", args=[restore.pk]), {"code": "1", "password": DEMO_PASSWORD})
    assert wrong.status_code == 400 and b"The code is not correct. 4 attempt(s) left." in wrong.content
    ok = admin.post(reverse("restores:confirm", args=[restore.pk]), {"code": last_code(), "password": DEMO_PASSWORD})
    assert ok.status_code == 302
    restore.refresh_from_db()
    assert restore.status == Restore.Status.QUEUED
    status = admin.get(restore.get_absolute_url(), HTTP_HX_REQUEST="true")
    assert b'hx-trigger="every 2s"' in status.content and b"<html" not in status.content


def test_restore_pages_are_scoped(tenant, full_backup) -> None:  # type: ignore[no-untyped-def]
    client_for(tenant.admin).post(reverse("restores:start", args=[full_backup.pk]))
    restore = Restore.objects.get()
    url = restore.get_absolute_url()
    assert client_for(tenant.owner).get(url).status_code == 200  # the Owner may follow and cancel
    assert client_for(tenant.member).get(url).status_code == 404
    assert client_for(tenant.other_owner).get(url).status_code == 404
    assert client_for(None).get(url).status_code == 302
    response = client_for(tenant.other_owner).post(reverse("restores:confirm", args=[restore.pk]), {"code": "1"})
    assert response.status_code == 404
    assert client_for(tenant.owner).post(reverse("restores:cancel", args=[restore.pk])).status_code == 302
    assert Restore.objects.get().status == Restore.Status.CANCELLED


def test_verify_checks_and_rehearses(tenant, full_backup) -> None:  # type: ignore[no-untyped-def]
    response = client_for(tenant.owner).post(reverse("restores:verify", args=[full_backup.pk]))
    assert response.status_code == 302
    full_backup.refresh_from_db()
    assert full_backup.verification_ok is True and full_backup.last_verified_at is not None
    assert "Restore rehearsed:" in full_backup.verification_message
    assert client_for(tenant.other_owner).post(reverse("restores:verify", args=[full_backup.pk])).status_code == 404
    assert Backup.objects.filter(organization=tenant.org).count() == 1


def test_operators_see_restores_without_codes(tenant, full_backup) -> None:  # type: ignore[no-untyped-def]
    from tests import factories as f

    client_for(tenant.admin).post(reverse("restores:start", args=[full_backup.pk]))
    restore = Restore.objects.get()
    operator = client_for(f.UserFactory(email="ops@platform.test", is_staff=True, is_superuser=True))
    assert operator.get(reverse("admin:restores_restore_changelist")).status_code == 200
    page = operator.get(reverse("admin:restores_restore_change", args=[restore.pk]))
    assert page.status_code == 200 and last_code() not in page.content.decode()
    assert operator.get(reverse("admin:restores_restoreupload_changelist")).status_code == 200


def test_the_warning_page_shows_the_compare_with_now_before_the_code_is_asked_for(tenant, full_backup) -> None:  # type: ignore[no-untyped-def]
    from backups.compare.services import comparison_request, comparisons_process
    from organizations.models import Template

    url = reverse("restores:start", args=[full_backup.pk])
    page = " ".join(client_for(tenant.admin).get(url).content.decode().split())
    assert 'data-testid="restore-compare-start"' in page and "Compare with now" in page  # nothing compared yet

    Template.objects.create(organization=tenant.org, name="Added after the backup")
    comparison_request(backup=full_backup, other=None, requested_by=tenant.admin)
    page = " ".join(client_for(tenant.admin).get(url).content.decode().split())
    assert "A comparison with now is running" in page

    assert comparisons_process() == 1
    response = client_for(tenant.admin).get(url)
    page = " ".join(response.content.decode().split())
    assert 'data-testid="comparison-summary"' in page and "See every record that changed" in page
    # The template added since is the one difference: one added record among the templates.
    row = page.split('data-testid="summary-template"', 1)[1].split("</tr>", 1)[0]
    assert [c.split("</td>")[0].split(">")[-1] for c in row.split("<td")[2:]] == ["1", "2", "1", "0", "0"]
    assert page.index("comparison-summary") < page.index('data-testid="send-code"')
