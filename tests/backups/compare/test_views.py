"""Compare pages: start from a backup, follow the progress, read and download the result;
the change-alert thresholds. Owner, an allowed user, another organization (404), anonymous."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import AuditLog
from backups.compare import services
from backups.models import BackupComparison, ChangeAlertSettings
from organizations import models as om
from tests import factories as f
from tests.backups.compare.conftest import make_backup, run_compare
from tests.factories import client_for

pytestmark = pytest.mark.django_db


def _run_pending(comparison: BackupComparison) -> BackupComparison:
    claimed = services.comparison_claim(comparison_id=comparison.pk)
    assert claimed is not None
    return services.comparison_run(comparison=claimed)


def test_owner_compares_with_now_and_drills_down_to_named_records(tenant) -> None:  # type: ignore[no-untyped-def]
    backup = make_backup(tenant.org, tenant.owner)
    om.ControlledDocument.objects.filter(organization=tenant.org, reference="A0-1").delete()
    om.Client.objects.filter(organization=tenant.org).update(phone="+44 20 7946 0000")
    owner = client_for(tenant.owner)
    details = owner.get(reverse("backups:detail", args=[backup.pk])).content.decode()
    assert "Compare with now" in details and "Compare with another backup" in details

    response = owner.post(reverse("backups:compare", args=[backup.pk]), {"with": "now"})
    comparison = BackupComparison.objects.get()
    assert response.url == reverse("backups:comparison", args=[comparison.pk])
    assert AuditLog.objects.filter(action="backup.compare", actor=tenant.owner).exists()
    waiting = owner.get(response.url).content.decode()
    assert 'data-testid="comparison-progress"' in waiting and "Waiting for a worker" in waiting

    _run_pending(comparison)
    page = owner.get(response.url).content.decode()
    assert "1 added" not in page and "1 removed" not in page  # totals: 3 removed (1 document, 2 versions)
    assert "3 removed" in page and "2 changed" in page
    assert "Computed" in page and "Compare again" in page

    drill = owner.get(response.url, {"model": "document_version"}).content.decode()
    assert "A0-1 v1" in drill and "A0-1 v2" in drill
    clients = owner.get(response.url, {"model": "client", "kind": "changed"}).content.decode()
    assert "phone" in clients and "+44 20 7946 0000" in clients
    assert "No record matches" in owner.get(response.url, {"model": "client", "q": "nobody-like-this"}).content.decode()
    assert "No record matches" in owner.get(response.url, {"model": "client", "kind": "added"}).content.decode()

    csv = b"".join(owner.get(reverse("backups:comparison_csv", args=[comparison.pk])).streaming_content).decode()
    lines = csv.strip().splitlines()
    assert lines[0] == "data set,model,change,id,record,fields,details"
    assert len(lines) == 1 + 3 + 2
    assert any("documents,document,removed" in line and "A0-1 Procedure A0-1" in line for line in lines)


def test_progress_reloads_the_page_once_the_comparison_is_done(tenant) -> None:  # type: ignore[no-untyped-def]
    comparison = run_compare(make_backup(tenant.org, tenant.owner))
    response = client_for(tenant.owner).get(
        reverse("backups:comparison_progress", args=[comparison.pk]), HTTP_HX_REQUEST="true"
    )
    assert response.headers["HX-Refresh"] == "true"


def test_compare_with_another_backup_offers_only_this_organizations_backups(tenant) -> None:  # type: ignore[no-untyped-def]
    first = make_backup(tenant.org, tenant.owner)
    om.Template.objects.filter(organization=tenant.org).delete()
    second = make_backup(tenant.org, tenant.owner)
    f.SubscriptionFactory(organization=tenant.other_org)
    other = make_backup(tenant.other_org, tenant.other_owner)
    editor = client_for(tenant.editor)  # may back up both OUs: sees the full backups
    chooser = editor.get(reverse("backups:compare", args=[second.pk])).content.decode()
    assert f'name="with" value="{first.pk}"' in chooser and f'value="{other.pk}"' not in chooser
    assert editor.post(reverse("backups:compare", args=[second.pk]), {"with": other.pk}).status_code == 404
    response = editor.post(reverse("backups:compare", args=[second.pk]), {"with": first.pk})
    comparison = _run_pending(BackupComparison.objects.get(requested_by=tenant.editor))
    assert (comparison.earlier_id, comparison.later_id) == (first.pk, second.pk)
    assert comparison.summary["templates"]["template"] == {"added": 0, "removed": 1, "changed": 0}
    assert "Compare again" not in editor.get(response.url).content.decode()  # two backups: no moment to redo


def test_other_organization_and_unentitled_users_get_a_404(tenant) -> None:  # type: ignore[no-untyped-def]
    backup = make_backup(tenant.org, tenant.owner)
    comparison = run_compare(backup)
    urls = [
        reverse("backups:compare", args=[backup.pk]),
        reverse("backups:comparison", args=[comparison.pk]),
        reverse("backups:comparison_progress", args=[comparison.pk]),
        reverse("backups:comparison_csv", args=[comparison.pk]),
    ]
    for user in (tenant.other_owner, tenant.editor_a, tenant.member):  # editor_a lacks OU B
        client = client_for(user)
        for url in urls:
            assert client.get(url).status_code == 404, (user, url)
        assert client.post(urls[0], {"with": "now"}).status_code == 404
    anonymous = client_for(None)
    for url in urls:
        response = anonymous.get(url)
        assert response.status_code == 302 and response.url.startswith(reverse("accounts:login"))
    assert BackupComparison.objects.count() == 1


def test_starting_a_compare_needs_the_csrf_token(tenant) -> None:  # type: ignore[no-untyped-def]
    backup = make_backup(tenant.org, tenant.owner)
    client = Client(enforce_csrf_checks=True)
    client.force_login(tenant.owner)
    assert client.post(reverse("backups:compare", args=[backup.pk]), {"with": "now"}).status_code == 403
    assert not BackupComparison.objects.exists()


def test_owner_changes_alert_thresholds_admin_reads_them(tenant) -> None:  # type: ignore[no-untyped-def]
    url = reverse("backups:alert_settings")
    owner = client_for(tenant.owner)
    assert "Save" in owner.get(url).content.decode()
    response = owner.post(url, {"enabled": "on", "percent": "10", "min_records": "5"})
    assert response.status_code == 302
    saved = ChangeAlertSettings.objects.get(organization=tenant.org)
    assert (saved.percent, saved.min_records, saved.updated_by) == (10, 5, tenant.owner)
    assert "Choose a share between 1 and 100" in owner.post(url, {"percent": "0", "min_records": "5"}).content.decode()

    admin = client_for(tenant.admin)
    page = admin.get(url).content.decode()
    assert "Only the Owner can change these thresholds." in page
    admin.post(url, {"enabled": "on", "percent": "90", "min_records": "900"})
    assert ChangeAlertSettings.objects.get(organization=tenant.org).percent == 10
    assert client_for(tenant.member).get(url).status_code == 404
    assert client_for(None).get(url).status_code == 302
