"""Account Backups in Debian's chromium: request with the copied system password and with an own
password, the data-set picker, a pending row turning Completed while the page stays open, the
download opened with the copied password, the history dialog before and after, cancelling, and
the Request Backup button hidden while a backup is pending and without a subscription."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from backups import services
from backups.archive import ArchiveReader
from backups.keys import unwrap_password
from backups.models import Backup
from tests.backups.conftest import tenant  # noqa: F401 (fixture: a tenant with documents and records)
from tests.browser.conftest import login, screenshot
from tests.factories import DEMO_PASSWORD, SubscriptionFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _settled(page, selector: str = "#backup-modal") -> None:  # type: ignore[no-untyped-def]
    """Wait until a Bootstrap modal has finished fading in (for screenshots)."""
    page.wait_for_function(
        """sel => { const m = document.querySelector(sel); if (!m || !m.classList.contains('show')) return false;
        const t = getComputedStyle(m.querySelector('.modal-dialog')).transform;
        return getComputedStyle(m).opacity === '1' && (t === 'none' || t === 'matrix(1, 0, 0, 1, 0, 0)'); }""",
        arg=selector,
    )


def _open_request_dialog(page):  # type: ignore[no-untyped-def]
    page.get_by_test_id("request-backup").click()
    dialog = page.locator("#backup-modal")
    expect(dialog.get_by_role("heading", name="Request an Account Backup")).to_be_visible()
    return dialog


def _checked(dialog) -> set[str]:  # type: ignore[no-untyped-def]
    return set(dialog.locator("[data-picker-item] input:checked").evaluate_all("els => els.map(e => e.value)"))


def _visible(dialog) -> set[str]:  # type: ignore[no-untyped-def]
    return set(dialog.locator("[data-picker-item]:not(.d-none)").evaluate_all("els => els.map(e => e.dataset.key)"))


def test_request_with_copied_password_live_progress_download_and_history(tenant, page, settings) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    settings.CELERY_TASK_ALWAYS_EAGER = True  # the Verify button verifies in the web thread
    login(page, tenant.owner.email, DEMO_PASSWORD)
    page.goto("/backups/")
    expect(page.get_by_test_id("empty-state")).to_contain_text("No backups yet")
    expect(page.get_by_test_id("subscription-state")).to_contain_text("valid until")
    screenshot(page, "backups-list-empty")

    dialog = _open_request_dialog(page)
    expect(dialog.get_by_label("Include active controlled documents")).to_be_checked()
    dialog.get_by_label("Include inactive controlled documents").check()
    # OUs: type to filter.
    dialog.get_by_placeholder("Type to filter OUs").fill("fin")
    expect(dialog.get_by_label("Finance (FIN)")).to_be_visible()
    expect(dialog.get_by_label("Litigation (LIT)")).to_be_hidden()
    dialog.get_by_placeholder("Type to filter OUs").fill("")
    _settled(page)
    screenshot(page, "backups-request-dialog")

    # The data-set picker: search, Select visible, Invert visible, dependencies.
    expect(dialog.get_by_test_id("dataset-summary")).to_have_text("All 9 data sets selected.")
    dialog.get_by_test_id("choose-datasets").click()
    dialog.get_by_role("button", name="Clear").click()
    assert _checked(dialog) == set()
    dialog.get_by_placeholder("Search data sets").fill("billing")
    assert _visible(dialog) == {"templates", "billing"}
    dialog.get_by_role("button", name="Select visible").click()
    assert _checked(dialog) == {"templates", "billing"}
    deps = dialog.get_by_test_id("dataset-dependencies")
    expect(deps).to_contain_text("Clients and matters (needed by Financial and billing data)")
    expect(deps).to_contain_text("Organization structure (needed by Clients and matters)")
    expect(dialog.locator('[data-key="clients"] [data-picker-pulled]')).not_to_have_class(re.compile("d-none"))
    screenshot(page, "backups-dataset-picker")
    dialog.get_by_placeholder("Search data sets").fill("")
    dialog.get_by_role("button", name="Invert visible").click()
    assert _checked(dialog) == {"profile", "settings", "regulations", "structure", "users", "documents", "clients"}
    dialog.get_by_placeholder("Search data sets").fill("doc")
    dialog.get_by_role("button", name="Invert visible").click()  # only the visible one flips
    assert "documents" not in _checked(dialog) and "profile" in _checked(dialog)
    dialog.get_by_role("button", name="Cancel").click()  # back to what it was when opened: all
    expect(dialog.get_by_test_id("dataset-summary")).to_have_text("All 9 data sets selected.")
    expect(dialog.locator("[data-picker-panel]")).to_be_hidden()

    # The system-generated password, copied through the button.
    shown = dialog.get_by_test_id("generated-password").input_value()
    dialog.get_by_test_id("copy-password").click()
    expect(dialog.get_by_test_id("copy-password")).to_have_text(re.compile("Copied"))
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied == shown and len(copied) >= 30
    expect(dialog.get_by_test_id("encryption-notice")).to_contain_text("names of the files inside the .zip")
    dialog.get_by_label("Label").fill("Pre-Year-End Close")
    screenshot(page, "backups-request-password")
    dialog.get_by_role("button", name="Agree & Generate Backup").click()

    # Pending: the row polls; the Request Backup button is gone.
    expect(page.get_by_text("Backup “Pre-Year-End Close” requested")).to_be_visible()
    backup = Backup.objects.get()
    row = page.locator(f"#backup-{backup.pk}")
    expect(row).to_have_attribute("data-status", "pending")
    expect(page.get_by_test_id("request-backup")).to_have_count(0)
    expect(page.get_by_test_id("pending-note")).to_be_visible()
    screenshot(page, "backups-pending")

    # A worker runs the queue while the page stays open: the row turns Completed by itself.
    assert services.process_queue() == 1
    expect(row).to_have_attribute("data-status", "completed", timeout=10_000)
    expect(row.get_by_test_id("status-badge")).to_have_text("Completed")
    expect(row).not_to_have_attribute("hx-trigger", re.compile("."))
    expect(page.get_by_test_id("request-backup")).to_be_visible()  # the toolbar followed
    screenshot(page, "backups-completed")

    # History before a download.
    row.get_by_test_id("history").click()
    expect(page.get_by_test_id("history-empty")).to_have_text(re.compile("Backup not downloaded yet"))
    _settled(page)
    screenshot(page, "backups-history-empty")
    page.locator("#backup-modal .modal-footer").get_by_role("button", name="Close").click()
    expect(page.locator("#backup-modal")).to_be_hidden()

    # Download and open the file with the copied password.
    with page.expect_download() as info:
        row.get_by_test_id("download").click()
    download = info.value
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}-acme-pre-year-end-close\.zip", download.suggested_filename)
    manifest = ArchiveReader(download.path(), copied).verify()
    assert manifest["organization"]["name"] == "Acme Legal"
    assert manifest["scope"]["include_inactive"] is True

    # History after the download.
    row.get_by_test_id("history").click()
    history = page.get_by_test_id("history-table")
    expect(history.get_by_test_id("history-row")).to_have_count(1)
    expect(history).to_contain_text(tenant.owner.email)
    expect(history).to_contain_text("HeadlessChrome")
    _settled(page)
    screenshot(page, "backups-history-downloaded")
    page.locator("#backup-modal .modal-footer").get_by_role("button", name="Close").click()

    # Details.
    row.get_by_test_id("details").click()
    expect(page.get_by_test_id("detail-title")).to_have_text("Pre-Year-End Close")
    expect(page.get_by_test_id("sha256")).to_have_text(Backup.objects.get().sha256)
    expect(page.get_by_test_id("timeline")).to_contain_text("Requested")
    screenshot(page, "backups-detail")

    # Owner actions from the ⋮ menu: verify now, then expire early (confirmed); history stays.
    page.get_by_role("link", name="Account Backups").first.click()
    row.get_by_test_id("more-actions").click()
    row.get_by_test_id("verify").click()
    expect(page.locator("#messages")).to_contain_text("verified:")
    expect(row.locator(".bi-patch-check-fill")).to_be_visible()
    row.get_by_test_id("more-actions").click()
    row.get_by_test_id("expire").click()
    confirm = page.locator("#confirm-modal")
    expect(confirm).to_contain_text("Its file is deleted")
    confirm.get_by_role("button", name="Expire now").click()
    expect(row).to_have_attribute("data-status", "expired")
    expect(row.get_by_test_id("download")).to_have_count(0)
    row.get_by_test_id("history").click()
    expect(page.get_by_test_id("history-row")).to_have_count(1)
    screenshot(page, "backups-expired-history")
    assert page.js_errors == []


def test_request_with_own_password_then_cancel_it(cast, page) -> None:  # type: ignore[no-untyped-def]
    login(page, cast.editor.email, DEMO_PASSWORD)
    page.goto("/backups/")
    dialog = _open_request_dialog(page)
    dialog.get_by_label("Use my own password").check()
    expect(dialog.get_by_text("if you forget this password")).to_be_visible()
    expect(dialog.get_by_test_id("generated-password")).to_be_hidden()
    dialog.get_by_label("Your password", exact=True).fill("short")
    dialog.get_by_label("Repeat your password").fill("short")
    dialog.get_by_role("button", name="Agree & Generate Backup").click()
    expect(dialog.get_by_text("Your own password must be at least 12 characters.")).to_be_visible()
    assert Backup.objects.count() == 0
    own = "a long passphrase of my own"
    dialog.get_by_label("Your password", exact=True).fill(own)
    dialog.get_by_label("Repeat your password").fill(own)
    screenshot(page, "backups-request-own-password")
    dialog.get_by_role("button", name="Agree & Generate Backup").click()

    expect(page.locator("#messages")).to_contain_text("requested")
    backup = Backup.objects.get()
    assert backup.password_source == Backup.PasswordSource.USER and unwrap_password(backup.password_wrapped) == own
    row = page.locator(f"#backup-{backup.pk}")
    expect(page.get_by_test_id("request-backup")).to_have_count(0)

    row.get_by_test_id("cancel").click()
    confirm = page.locator("#confirm-modal")
    expect(confirm).to_contain_text("Cancel the pending backup")
    _settled(page, "#confirm-modal")
    screenshot(page, "backups-cancel-confirm")
    confirm.get_by_role("button", name="Cancel backup").click()
    expect(page.get_by_text("cancelled. You can request a new one.")).to_be_visible()
    expect(page.locator(f"#backup-{backup.pk}")).to_have_attribute("data-status", "cancelled")
    expect(page.get_by_test_id("request-backup")).to_be_visible()
    screenshot(page, "backups-cancelled")
    backup.refresh_from_db()
    assert backup.status == Backup.Status.CANCELLED
    assert page.js_errors == []

    # The session ends while a row is polling: the page goes to the sign-in form (not into the row).
    Backup.objects.create(organization=cast.org, requested_by=cast.editor)
    page.reload()
    expect(page.locator('[data-testid="backup-row"][data-status="pending"]')).to_have_count(1)
    page.context.clear_cookies()
    page.wait_for_url("**/accounts/login/**", timeout=10_000)


def test_request_button_hidden_without_a_subscription(cast, page) -> None:  # type: ignore[no-untyped-def]
    cast.org.subscription.delete()
    login(page, cast.owner.email, DEMO_PASSWORD)
    page.goto("/backups/")
    state = page.get_by_test_id("subscription-state")
    expect(state).to_contain_text("has no backup subscription")
    expect(state.get_by_test_id("subscription-link")).to_be_visible()
    expect(page.get_by_test_id("request-backup")).to_have_count(0)
    screenshot(page, "backups-no-subscription")
    page.get_by_role("link", name="Schedules").click()
    # No schedule without a subscription: the same calls to action instead.
    expect(page.get_by_test_id("new-schedule")).to_have_count(0)
    expect(page.get_by_test_id("subscription-cta")).to_be_visible()
    SubscriptionFactory(organization=cast.org)
    page.reload()
    expect(page.get_by_text("No schedules yet.")).to_be_visible()
    page.get_by_test_id("new-schedule").click()
    weekday = page.get_by_label("Weekday (weekly only)")
    expect(weekday).to_be_hidden()  # daily by default
    page.get_by_label("Frequency").select_option("weekly")
    expect(weekday).to_be_visible()
    weekday.select_option(label="Friday")
    page.locator("#id_time_of_day").fill("21:15")
    page.get_by_test_id("choose-datasets").click()
    page.get_by_role("button", name="Clear").click()
    page.get_by_label("Financial and billing data").check()
    page.get_by_role("button", name="Done").click()
    page.get_by_label("Rolling history: keep the last").fill("4")
    screenshot(page, "backups-schedule-form")
    page.get_by_role("button", name="Save schedule").click()
    expect(page.locator("#messages")).to_contain_text("saved: next run")
    row = page.get_by_test_id("schedule-row")
    expect(row).to_contain_text("Weekly at 21:15 on Fridays (UTC)")
    expect(row.get_by_test_id("next-run")).not_to_have_text("—")
    screenshot(page, "backups-schedules")
    assert page.js_errors == []
