"""Backup schedules in Debian's chromium: the request dialog's data picker and OU scope, times
with their time zone, no schedule without a subscription (a call to action instead), and the
scheduled backups' mails (completed: the creator; failed: the creator, Owner and Admins) read
from a real SMTP server."""

from __future__ import annotations

import re

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from backups import services
from backups.models import Backup, BackupSchedule
from backups.schedules import schedules_run_due
from tests.backups.conftest import tenant  # noqa: F401 (fixture)
from tests.browser.conftest import login, screenshot
from tests.factories import DEMO_PASSWORD
from tests.support.mail import text_of

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _checked(form) -> set[str]:  # type: ignore[no-untyped-def]
    return set(form.locator("[data-picker-item] input:checked").evaluate_all("els => els.map(e => e.value)"))


def test_schedule_with_the_picker_and_ou_scope_then_its_mails(tenant, page, smtp, settings) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    settings.BACKUP_DISPATCH_IMMEDIATELY = False
    login(page, tenant.admin.email, DEMO_PASSWORD)  # an Admin without OU roles manages schedules
    page.goto("/backups/schedules/")
    expect(page.get_by_text("Times are in the time zone " + settings.TIME_ZONE)).to_be_visible()
    page.get_by_test_id("new-schedule").click()
    form = page.get_by_test_id("schedule-form")
    form.get_by_role("textbox", name="Name").fill("Nightly")
    form.locator("#id_time_of_day").fill("01:30")
    expect(form.get_by_text(f"In the time zone {settings.TIME_ZONE}.")).to_be_visible()

    # The OU scope, as in the request dialog: type to filter, tick Finance only.
    form.get_by_placeholder("Type to filter OUs").fill("fin")
    expect(form.get_by_label("Litigation (LIT)")).to_be_hidden()
    form.get_by_label("Finance (FIN)").check()
    form.get_by_placeholder("Type to filter OUs").fill("")

    # The data picker: search, Select visible, Invert visible, Clear (seed 004).
    expect(form.get_by_test_id("dataset-summary")).to_have_text("All 9 data sets selected.")
    form.get_by_test_id("choose-datasets").click()
    form.get_by_role("button", name="Clear").click()
    assert _checked(form) == set()
    form.get_by_placeholder("Search data sets").fill("billing")
    form.get_by_role("button", name="Select visible").click()
    assert _checked(form) == {"templates", "billing"}
    form.get_by_role("button", name="Invert visible").click()
    assert _checked(form) == set()
    form.get_by_role("button", name="Select visible").click()
    form.get_by_placeholder("Search data sets").fill("")
    expect(form.get_by_test_id("dataset-dependencies")).to_contain_text("Clients and matters")
    form.get_by_role("button", name="Done").click()
    expect(form.get_by_test_id("dataset-summary")).to_have_text("2 of 9 data sets selected.")
    screenshot(page, "schedule-form-picker")
    form.get_by_role("button", name="Save schedule").click()

    expect(page.locator("#messages")).to_contain_text("saved: next run")
    expect(page.locator("#messages")).to_contain_text(f"({settings.TIME_ZONE})")
    row = page.get_by_test_id("schedule-row")
    expect(row.get_by_test_id("schedule-when")).to_have_text(f"Daily at 01:30 ({settings.TIME_ZONE})")
    expect(row.get_by_test_id("schedule-scope")).to_contain_text("Finance")
    expect(row.get_by_test_id("schedule-scope")).not_to_contain_text("Litigation")
    screenshot(page, "schedules-list")
    schedule = BackupSchedule.objects.get()
    assert list(schedule.ous.all()) == [tenant.ou_b] and schedule.created_by == tenant.admin

    # The run: a worker's part, done here with the browser parked (SQLite shares a connection).
    page.goto("about:blank")
    run_at = schedule.next_run_at
    (backup,) = schedules_run_due(now=run_at)
    assert services.process_queue() == 1
    backup.refresh_from_db()
    assert backup.status == Backup.Status.COMPLETED and list(backup.ous.all()) == [tenant.ou_b]
    local = timezone.localtime(run_at)
    name = f"Nightly · {local.day} {local:%b %Y}"
    mail = smtp.wait_for(f"Backup completed: {name}", to=tenant.admin.email)
    body = text_of(mail)
    assert 'Made by the schedule "Nightly"' in body and re.search(r"Size: [\d.]+ (KiB|MiB|bytes)", body)
    assert smtp.matching("Backup completed", to=tenant.owner.email) == []  # the creator only

    page.goto("/backups/")
    listed = page.locator(f"#backup-{backup.pk}")
    expect(listed).to_contain_text(name)
    expect(listed).to_contain_text("Schedule “Nightly”")

    # The next run fails: the creator, the Owner and the Admins hear of it.
    page.goto("about:blank")
    (failing,) = schedules_run_due(now=BackupSchedule.objects.get().next_run_at)
    claimed = services.backup_claim(backup_id=failing.pk)
    services.backup_fail(backup=claimed, reason="Storage error: the file storage is full (No space left on device).")
    failed_to = {m["X-Envelope-To"] for m in smtp.matching("Backup failed: Nightly")}
    assert failed_to == {tenant.admin.email, tenant.owner.email}
    assert page.js_errors == []


def test_no_schedule_without_a_subscription_but_a_call_to_action(cast, page) -> None:  # type: ignore[no-untyped-def]
    cast.org.subscription.delete()
    login(page, cast.owner.email, DEMO_PASSWORD)
    page.goto("/backups/schedules/")
    expect(page.get_by_test_id("new-schedule")).to_have_count(0)
    cta = page.get_by_test_id("subscription-cta")
    expect(cta.get_by_role("link", name="Get a subscription")).to_be_visible()
    expect(page.get_by_test_id("subscription-state")).to_contain_text("Scheduled backups need one")
    page.goto("/backups/schedules/new/")
    expect(page.locator("#messages")).to_contain_text("no valid backup subscription")
    assert page.js_errors == []
