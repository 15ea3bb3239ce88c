"""Backup schedules (Owner and Admin): list with the next run, create, edit, delete."""

from __future__ import annotations

import pytest
from django.urls import reverse

from accounts.models import AuditLog
from backups.datasets import REGISTRY
from backups.models import Backup, BackupSchedule
from tests.backups.test_views_access import login, make_backup

pytestmark = pytest.mark.django_db


def _data(**overrides: object) -> dict[str, object]:
    return {
        "name": "Nightly",
        "frequency": "daily",
        "time_of_day": "02:30",
        "weekday": "6",
        "datasets": ["billing"],
        "include_active": "on",
        "keep_last": "5",
        "enabled": "on",
        **overrides,
    }


def test_empty_list_says_what_to_do(cast) -> None:  # type: ignore[no-untyped-def]
    page = login(cast.owner).get(reverse("backups:schedules")).content.decode()
    assert "No schedules yet" in page and "New schedule" in page


def test_create_a_daily_schedule_and_see_its_next_run(cast) -> None:  # type: ignore[no-untyped-def]
    client = login(cast.admin)  # an Admin needs no OU role for schedules
    form = client.get(reverse("backups:schedule_create")).content.decode()
    for field in ("frequency", "time_of_day", "weekday", "datasets", "keep_last", "enabled"):
        assert f'name="{field}"' in form
    response = client.post(reverse("backups:schedule_create"), _data(), follow=True)
    schedule = BackupSchedule.objects.get()
    assert schedule.organization == cast.org and schedule.created_by == cast.admin
    assert schedule.datasets == ["structure", "clients", "templates", "billing"]  # dependencies added
    assert schedule.keep_last == 5 and schedule.enabled
    assert schedule.next_run_at is not None
    assert (schedule.next_run_at.hour, schedule.next_run_at.minute) == (2, 30)
    page = response.content.decode()
    assert "saved: next run" in page
    assert "Daily at 02:30" in page
    assert schedule.next_run_at.strftime("%H:%M") in page.split('data-testid="next-run"')[1][:40]
    assert "Financial and billing data" in page
    assert AuditLog.objects.filter(action="backup_schedule.save").exists()


def test_weekly_schedule_runs_on_its_weekday(cast) -> None:  # type: ignore[no-untyped-def]
    every = list(REGISTRY)  # every data set ticked in the picker: "every data set", later ones too
    login(cast.owner).post(
        reverse("backups:schedule_create"), _data(frequency="weekly", weekday="2", datasets=every, time_of_day="23:00")
    )
    schedule = BackupSchedule.objects.get()
    assert schedule.next_run_at.weekday() == 2 and schedule.datasets == []
    page = login(cast.owner).get(reverse("backups:schedules")).content.decode()
    assert "Weekly at 23:00 on Wednesdays" in page and "Every data set" in page


def test_invalid_schedule_is_shown_with_its_errors(cast) -> None:  # type: ignore[no-untyped-def]
    response = login(cast.owner).post(reverse("backups:schedule_create"), _data(keep_last="0", time_of_day="25:99"))
    page = response.content.decode()
    assert response.status_code == 200
    assert "Keep at least one backup" in page or "greater than or equal to 1" in page
    assert "Enter a valid time" in page
    assert BackupSchedule.objects.count() == 0


def test_edit_and_disable(cast) -> None:  # type: ignore[no-untyped-def]
    client = login(cast.owner)
    client.post(reverse("backups:schedule_create"), _data())
    schedule = BackupSchedule.objects.get()
    url = reverse("backups:schedule_edit", args=[schedule.pk])
    assert 'value="Nightly"' in client.get(url).content.decode()
    data = _data(name="Nightly (paused)")
    del data["enabled"]
    response = client.post(url, data, follow=True)
    schedule.refresh_from_db()
    assert schedule.name == "Nightly (paused)" and not schedule.enabled and schedule.next_run_at is None
    assert "disabled, it will not run" in response.content.decode()


def test_delete_keeps_the_backups_it_made(cast) -> None:  # type: ignore[no-untyped-def]
    schedule = BackupSchedule.objects.create(organization=cast.org, name="Weekly")
    made = make_backup(cast.org, kind=Backup.Kind.SCHEDULED, schedule=schedule)
    response = login(cast.owner).post(reverse("backups:schedule_delete", args=[schedule.pk]), follow=True)
    assert "Schedule “Weekly” deleted" in response.content.decode()
    assert not BackupSchedule.objects.exists()
    made.refresh_from_db()
    assert made.schedule is None
    assert AuditLog.objects.filter(action="backup_schedule.delete").exists()


def test_schedules_link_shown_to_owners_only(cast) -> None:  # type: ignore[no-untyped-def]
    assert reverse("backups:schedules") in login(cast.owner).get(reverse("backups:list")).content.decode()
    assert reverse("backups:schedules") not in login(cast.editor).get(reverse("backups:list")).content.decode()


def test_other_organizations_schedules_are_not_listed(cast) -> None:  # type: ignore[no-untyped-def]
    BackupSchedule.objects.create(organization=cast.other_org, name="Theirs")
    assert "Theirs" not in login(cast.owner).get(reverse("backups:schedules")).content.decode()


def test_schedule_scope_limits_its_backups_to_the_chosen_ous(cast) -> None:  # type: ignore[no-untyped-def]
    from backups.schedules import schedules_run_due

    login(cast.admin).post(reverse("backups:schedule_create"), _data(ous=[cast.ou_b.pk]))
    schedule = BackupSchedule.objects.get()
    assert list(schedule.ous.all()) == [cast.ou_b]
    page = login(cast.admin).get(reverse("backups:schedules")).content.decode()
    assert "Finance" in page.split('data-testid="schedule-scope"')[1][:200]
    (backup,) = schedules_run_due(now=schedule.next_run_at)
    assert not backup.all_ous and list(backup.ous.all()) == [cast.ou_b]
    assert backup.label == schedule.backup_label(schedule.next_run_at)
    assert backup.label.startswith("Nightly · ") and backup.requested_via == "Schedule “Nightly”"


def test_no_data_set_ticked_is_refused(cast) -> None:  # type: ignore[no-untyped-def]
    response = login(cast.owner).post(reverse("backups:schedule_create"), _data(datasets=[]))
    assert "Pick at least one data set to back up." in response.content.decode()
    assert not BackupSchedule.objects.exists()


def test_no_schedule_without_a_subscription(cast) -> None:  # type: ignore[no-untyped-def]
    cast.org.subscription.delete()
    client = login(cast.owner)
    page = client.get(reverse("backups:schedules")).content.decode()
    assert 'data-testid="new-schedule"' not in page and 'data-testid="subscription-link"' in page
    response = client.post(reverse("backups:schedule_create"), _data(), follow=True)
    assert "no valid backup subscription" in response.content.decode()
    assert not BackupSchedule.objects.exists()


def test_times_are_shown_with_the_time_zone(cast, settings) -> None:  # type: ignore[no-untyped-def]
    response = login(cast.owner).post(reverse("backups:schedule_create"), _data(), follow=True)
    page = response.content.decode()
    assert f"({settings.TIME_ZONE})" in page  # in the message and the When column
    assert "Times are in the time zone" in page
