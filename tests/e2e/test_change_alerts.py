"""Change alerts end to end: scheduled backups run by a real Celery worker on Redis, archives in
S3 over HTTP, the change summary computed by the worker after each completion, and the alert
read from the SMTP server. A mass deletion between two scheduled backups mails the Owner and the
Admins and marks the backup; a small change does not."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from backups.models import Backup, BackupComparison, BackupSchedule
from organizations import models as om
from tests.backups.conftest import add_document, tenant  # noqa: F401 - fixture
from tests.factories import DEMO_PASSWORD
from tests.support.mail import text_of
from tests.support.stack import Stack

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def scheduled_backup(stack: Stack, schedule: BackupSchedule, made: list[Backup]) -> Backup:
    """Make the schedule due and let beat's run_schedules reach the worker; wait for the backup."""
    BackupSchedule.objects.filter(pk=schedule.pk).update(next_run_at=timezone.now() - dt.timedelta(minutes=1))
    stack.send("backups.tasks.run_schedules")
    return stack.wait(
        lambda: (
            Backup.objects.filter(schedule=schedule, status=Backup.Status.COMPLETED)
            .exclude(pk__in=[b.pk for b in made])
            .first()
        ),
        120,
        "a scheduled backup",
    )


def change_summary(stack: Stack, backup: Backup) -> BackupComparison:
    return stack.wait(
        lambda: BackupComparison.objects.filter(later=backup, status__in=("completed", "failed")).first(),
        120,
        f"the change summary of backup {backup.pk}",
    )


def test_a_mass_deletion_between_scheduled_backups_alerts_a_small_change_does_not(stack: Stack, tenant) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    for i in range(60):
        add_document(tenant.org, tenant.ou_a, f"BULK-{i}", "active", content=b"bulk")
    schedule = BackupSchedule.objects.create(
        organization=tenant.org, name="Nightly", include_inactive=True, next_run_at=timezone.now()
    )
    stack.start_worker()
    made = [scheduled_backup(stack, schedule, [])]
    assert not BackupComparison.objects.exists()  # the first has no previous backup

    om.ControlledDocument.objects.filter(organization=tenant.org, reference__startswith="BULK-").delete()
    made.append(scheduled_backup(stack, schedule, made))
    summary = change_summary(stack, made[1])
    assert summary.status == "completed", f"{summary.failure_reason}\n{stack.logs()}"
    assert summary.summary["documents"]["document"]["removed"] == 60

    mail = stack.smtp.wait_for("Mass change in Acme Legal", to=tenant.owner.email, timeout=30)
    body = text_of(mail)
    assert "Controlled documents: 60 removed, 0 changed of 66" in body
    assert f"{stack.base_url}/backups/comparisons/{summary.pk}/" in body
    stack.smtp.wait_for("Mass change in Acme Legal", to=tenant.admin.email, timeout=30)
    made[1].refresh_from_db()
    assert made[1].mass_change

    owner = stack.client()
    owner.login(tenant.owner.email, DEMO_PASSWORD)
    listing = owner.get("/backups/").text
    assert listing.count('data-testid="mass-change-marker"') == 1
    assert f'href="/backups/{made[1].pk}/changes/"' in listing
    page = owner.get(f"/backups/{made[1].pk}/changes/").text
    assert "Changes since the previous backup" in page and "120 removed" in page  # 60 documents, 60 versions

    # A small change: 2 of 6 documents removed is over 20 %, but under 50 records.
    om.ControlledDocument.objects.filter(organization=tenant.org, reference__in=["A0-1", "A1-1"]).delete()
    mails = len(stack.smtp.messages)
    made.append(scheduled_backup(stack, schedule, made))
    summary = change_summary(stack, made[2])
    assert summary.status == "completed" and summary.summary["documents"]["document"]["removed"] == 2
    assert not summary.mass_change
    made[2].refresh_from_db()
    assert not made[2].mass_change
    subjects = [m["Subject"] for m in stack.smtp.messages[mails:]]
    assert not any(s.startswith("Mass change") for s in subjects), subjects
