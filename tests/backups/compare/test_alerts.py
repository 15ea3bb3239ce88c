"""Change alerts: each completed backup gets a change summary against the previous backup of the
same scope; a mass change marks the backup and tells the Owner and Admins (mail and in-app)."""

from __future__ import annotations

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse

from accounts.models import Notification
from backups.compare.services import comparisons_process
from backups.models import Backup, BackupComparison, BackupEvent, ChangeAlertSettings
from backups.services import backup_expire
from organizations import models as om
from tests.backups.compare.conftest import add_document, make_backup

pytestmark = pytest.mark.django_db


def _scheduled(cast) -> Backup:  # type: ignore[no-untyped-def]
    return make_backup(cast.org, None, kind=Backup.Kind.SCHEDULED)


def _many_documents(cast, n: int) -> None:  # type: ignore[no-untyped-def]
    for i in range(n):
        add_document(cast.org, cast.ou_a, f"BULK-{i}", "active", content=b"x")


def test_a_mass_deletion_between_two_scheduled_backups_alerts_owner_and_admins(tenant) -> None:  # type: ignore[no-untyped-def]
    _many_documents(tenant, 60)
    first = _scheduled(tenant)
    assert not BackupComparison.objects.exists()  # the first backup has nothing to compare with
    om.ControlledDocument.objects.filter(organization=tenant.org, reference__startswith="BULK-").delete()
    mail.outbox.clear()
    second = _scheduled(tenant)
    comparison = BackupComparison.objects.get()
    assert (comparison.earlier, comparison.later, comparison.status) == (first, second, "pending")

    assert comparisons_process() == 1
    comparison.refresh_from_db()
    second.refresh_from_db()
    assert comparison.mass_change and second.mass_change
    assert comparison.summary["documents"]["document"]["removed"] == 60
    recipients = sorted(m.to[0] for m in mail.outbox)
    assert recipients == ["admin@acme.test", "owner@acme.test"]
    message = mail.outbox[0]
    assert "Mass change in Acme Legal" in message.subject
    assert "Controlled documents: 60 removed, 0 changed of 66" in message.body
    assert reverse("backups:comparison", args=[comparison.pk]) in message.body
    assert Notification.objects.filter(user=tenant.owner, url=reverse("backups:comparison", args=[comparison.pk]))
    assert Notification.objects.filter(user=tenant.admin, level="warning").exists()
    assert not Notification.objects.filter(user=tenant.member).exists()

    client = Client()
    client.force_login(tenant.owner)
    page = client.get(reverse("backups:list")).content.decode()
    assert 'data-testid="mass-change-marker"' in page
    assert "many records were removed or changed since the previous backup" in page  # for screen readers
    assert client.get(reverse("backups:changes", args=[second.pk])).url == comparison.get_absolute_url()


def test_a_small_change_does_not_alert(tenant) -> None:  # type: ignore[no-untyped-def]
    _many_documents(tenant, 60)
    _scheduled(tenant)
    om.ControlledDocument.objects.filter(reference__in=[f"BULK-{i}" for i in range(10)]).delete()  # 10 of 66
    mail.outbox.clear()
    second = _scheduled(tenant)
    comparisons_process()
    second.refresh_from_db()
    comparison = BackupComparison.objects.get()
    assert comparison.summary["documents"]["document"]["removed"] == 10
    assert not comparison.mass_change and not second.mass_change
    assert mail.outbox == []
    page = Client()
    page.force_login(tenant.owner)
    assert 'data-testid="mass-change-marker"' not in page.get(reverse("backups:list")).content.decode()


def test_the_owners_thresholds_decide(tenant) -> None:  # type: ignore[no-untyped-def]
    ChangeAlertSettings.objects.create(organization=tenant.org, percent=5, min_records=1)
    _scheduled(tenant)
    om.Payment.objects.filter(organization=tenant.org, invoice__number="INV-0").delete()  # 1 of 2 payments
    _scheduled(tenant)
    comparisons_process()
    assert BackupComparison.objects.get().mass_change
    assert len(mail.outbox) == 2


def test_only_a_backup_of_the_same_scope_is_the_previous_one(tenant) -> None:  # type: ignore[no-untyped-def]
    make_backup(tenant.org, tenant.owner, ous=[tenant.ou_a])  # another scope
    full = make_backup(tenant.org, tenant.owner)
    assert not BackupComparison.objects.exists()
    again = make_backup(tenant.org, tenant.owner)
    assert BackupComparison.objects.get().earlier == full and BackupComparison.objects.get().later == again


def test_an_expired_previous_backup_leaves_a_note_instead(tenant) -> None:  # type: ignore[no-untyped-def]
    first = make_backup(tenant.org, tenant.owner)
    backup_expire(backup=first)
    second = make_backup(tenant.org, tenant.owner)
    assert not BackupComparison.objects.exists()
    note = BackupEvent.objects.filter(backup=second, message__startswith="No change summary").get()
    assert "has expired" in note.message
