"""The Account Backups list in Debian's chromium, for issue 12: a cancel confirmed after the live
refresh ran for a while, the Admin without OU roles managing backups (seed 000), sortable headers,
Download in the ⋮ menu (seed 004), the queue's honest start time, clear failure sentences, the
operator named under Created by, an editor's filters and empty state, and the subscription's
calls to action (seed 002)."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from backups.models import Backup
from tests.backups.test_views_access import make_backup
from tests.browser.conftest import login, screenshot
from tests.factories import DEMO_PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_cancel_confirmed_after_five_seconds_of_live_refresh_cancels_it_as_an_admin_without_ou_roles(
    cast, page, settings
) -> None:  # type: ignore[no-untyped-def]
    """The Admin holds no OU role (seed 000: Owners and Admins manage every backup anyway)."""
    settings.BACKUP_DISPATCH_IMMEDIATELY = False
    backup = make_backup(cast.org, Backup.Status.PENDING, ous=(cast.ou_a,), requested_by=cast.editor_a)
    login(page, cast.admin.email, DEMO_PASSWORD)
    page.goto("/backups/")
    row = page.locator(f"#backup-{backup.pk}")
    expect(row).to_have_attribute("data-status", "pending")
    expect(row.get_by_test_id("queue-note")).to_have_text(re.compile(r"Starts within (a minute|about \d+ minutes)"))
    refreshes: list[str] = []
    page.on("request", lambda r: refreshes.append(r.url) if "/row/" in r.url else None)
    page.wait_for_timeout(2500)
    assert refreshes, "the pending row refreshes itself"
    row.get_by_test_id("cancel").click()
    confirm = page.locator("#confirm-modal")
    expect(confirm).to_contain_text("Cancel the pending backup")
    page.wait_for_timeout(5000)  # longer than two refresh periods
    confirm.get_by_role("button", name="Cancel backup").click()
    expect(page.locator("#messages")).to_contain_text("cancelled. You can request a new one.")
    expect(page.locator(f"#backup-{backup.pk}")).to_have_attribute("data-status", "cancelled")
    backup.refresh_from_db()
    assert backup.status == Backup.Status.CANCELLED

    # The same Admin sees and downloads a backup of an OU they hold no role in.
    finance = make_backup(cast.org, ous=(cast.ou_b,), requested_by=cast.owner, label="Finance only")
    page.reload()
    row = page.locator(f"#backup-{finance.pk}")
    with page.expect_download() as info:
        row.get_by_test_id("download").click()
    assert info.value.suggested_filename.endswith(".zip")
    expect(page.get_by_test_id("request-backup")).to_be_visible()
    assert page.js_errors == []


def test_cancel_still_works_when_the_row_was_replaced_while_confirming(cast, page) -> None:  # type: ignore[no-untyped-def]
    """Even if a refresh replaced the row after all, confirming submits the cancellation."""
    backup = make_backup(cast.org, Backup.Status.PENDING)
    login(page, cast.owner.email, DEMO_PASSWORD)
    page.goto("/backups/")
    row = page.locator(f"#backup-{backup.pk}")
    row.get_by_test_id("cancel").click()
    expect(page.locator("#confirm-modal")).to_contain_text("Cancel the pending backup")
    page.evaluate(
        f"htmx.ajax('GET', '/backups/{backup.pk}/row/', {{target: '#backup-{backup.pk}', swap: 'outerHTML'}})"
    )
    page.wait_for_timeout(500)
    page.locator("#confirm-modal").get_by_role("button", name="Cancel backup").click()
    expect(page.locator(f"#backup-{backup.pk}")).to_have_attribute("data-status", "cancelled")
    backup.refresh_from_db()
    assert backup.status == Backup.Status.CANCELLED


def test_sortable_headers_menu_download_wording_and_sizes(cast, page, settings) -> None:  # type: ignore[no-untyped-def]
    settings.BACKUP_DISPATCH_IMMEDIATELY = True
    now = timezone.now()
    small = make_backup(cast.org, label="Small one", requested_by=cast.editor, created_at=now - dt.timedelta(days=2))
    big = make_backup(
        cast.org,
        label="Big one",
        requested_by=cast.owner,
        created_at=now - dt.timedelta(days=1),
        content=b"x" * 3 * 1024 * 1024,
    )
    make_backup(
        cast.org,
        Backup.Status.FAILED,
        label="Broken one",
        created_at=now - dt.timedelta(hours=3),
        requested_via="Operator ops@acme.test via command line",
        failure_reason=(
            "Storage error: the file storage already holds a file under this backup's name (File exists); "
            "nothing was overwritten. Request the backup again."
        ),
    )
    pending = make_backup(cast.org, Backup.Status.PENDING, label="Waiting one")
    login(page, cast.owner.email, DEMO_PASSWORD)
    page.goto("/backups/")
    table = page.get_by_test_id("backup-table")
    names = table.locator("td.cell-name a")
    expect(names).to_have_text(["Waiting one", "Broken one", "Big one", "Small one"])
    created = table.locator("th", has_text="Created at")
    expect(created).to_have_attribute("aria-sort", "descending")

    # Sort by size (largest first) from its header: in the URL, aria-sort follows.
    table.get_by_test_id("sort-size").click()
    expect(page).to_have_url(re.compile(r"sort=-size"))
    expect(table.locator("th", has_text="Size")).to_have_attribute("aria-sort", "descending")
    expect(table.locator("th", has_text="Created at")).not_to_have_attribute("aria-sort", re.compile("."))
    expect(names.first).to_have_text("Big one")
    expect(page.get_by_label("Sort by")).to_have_value("-size")  # the form shows the same sort
    table.get_by_test_id("sort-size").click()
    expect(page).to_have_url(re.compile(r"sort=size"))
    expect(table.locator("th", has_text="Size")).to_have_attribute("aria-sort", "ascending")
    table.get_by_test_id("sort-created-by").click()
    expect(table.locator("th", has_text="Created by")).to_have_attribute("aria-sort", "ascending")

    page.goto("/backups/")
    # Wording: the failure as a sentence, the operator named, sizes in binary units.
    broken = page.locator("tr", has_text="Broken one")
    expect(broken.get_by_test_id("failure-reason")).to_have_text(
        re.compile(r"^Storage error: the file storage already holds a file .* Request the backup again\.$")
    )
    expect(broken.locator('td[data-label="Status"]')).not_to_have_text(re.compile(r"Failed\s*:"))
    expect(broken).to_contain_text("Operator ops@acme.test via command line")
    expect(page.locator(f"#backup-{big.pk}")).to_contain_text("3.0 MiB")
    expect(page.locator(f"#backup-{pending.pk}").get_by_test_id("queue-note")).to_have_text("Starting now")

    # Seed 004: Download from the ⋮ menu, the icon stays too (seed 002).
    row = page.locator(f"#backup-{small.pk}")
    expect(row.get_by_test_id("download")).to_be_visible()
    row.get_by_test_id("more-actions").click()
    with page.expect_download() as info:
        row.get_by_test_id("menu-download").click()
    assert info.value.suggested_filename.endswith(".zip")
    screenshot(page, "list-sorted-menu-download")
    assert page.js_errors == []


def test_queue_note_when_requests_wait_for_the_queue(cast, page, settings) -> None:  # type: ignore[no-untyped-def]
    settings.BACKUP_DISPATCH_IMMEDIATELY = False
    settings.BACKUP_QUEUE_INTERVAL = 15 * 60
    login(page, cast.owner.email, DEMO_PASSWORD)
    page.goto("/backups/")
    page.get_by_test_id("request-backup").click()
    dialog = page.locator("#backup-modal")
    dialog.get_by_role("button", name="Agree & Generate Backup").click()
    message = page.locator("#messages")
    expect(message).to_contain_text(
        re.compile(r"Starts within (a minute|about \d+ minutes), when the queue next runs \(it runs every 15 minutes\)")
    )
    backup = Backup.objects.get()
    note = page.locator(f"#backup-{backup.pk}").get_by_test_id("queue-note")
    expect(note).to_have_text(re.compile(r"^Starts within (a minute|about ([2-9]|1[0-5]) minutes)$"))


def test_editor_sees_only_their_filters_and_an_honest_empty_state(cast, page) -> None:  # type: ignore[no-untyped-def]
    """Seed 002: editor_a holds the permission in Litigation only."""
    make_backup(cast.org, requested_by=cast.editor)  # all OUs: not for editor_a
    make_backup(cast.org, ous=(cast.ou_b,), requested_by=cast.owner)
    login(page, cast.editor_a.email, DEMO_PASSWORD)
    page.goto("/backups/")
    empty = page.get_by_test_id("empty-state")
    expect(empty).to_contain_text("No backups you may see.")
    expect(empty).to_contain_text("2 backups including OUs where you do not hold")
    ou_options = page.get_by_label("OU").locator("option").all_inner_texts()
    assert ou_options == ["Any OU", "Litigation"]
    users = page.get_by_label("Created by").locator("option").all_inner_texts()
    assert users == ["Anyone"]  # nobody whose backups editor_a may see
    page.goto("/backups/?status=failed")
    expect(page.get_by_test_id("empty-state")).to_contain_text("No backup matches these filters.")
    assert page.js_errors == []


def test_subscription_calls_to_action_are_buttons(cast, page) -> None:  # type: ignore[no-untyped-def]
    cast.org.subscription.delete()
    login(page, cast.owner.email, DEMO_PASSWORD)
    page.goto("/backups/")
    cta = page.get_by_test_id("subscription-cta")
    expect(cta.get_by_role("link", name="Get a subscription")).to_have_class(re.compile(r"\bbtn\b"))
    expect(cta.get_by_role("link", name=re.compile("Ask sales"))).to_have_class(re.compile(r"\bbtn\b"))
    expect(page.get_by_test_id("empty-state")).to_contain_text("No backups yet.")
    screenshot(page, "list-no-subscription-cta")


def test_on_a_phone_rows_are_cards_and_the_filters_fold_away(cast, page) -> None:  # type: ignore[no-untyped-def]
    backup = make_backup(cast.org, label="Pocket-sized", requested_by=cast.owner)
    page.set_viewport_size({"width": 390, "height": 844})
    login(page, cast.owner.email, DEMO_PASSWORD)
    page.goto("/backups/")
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 390
    filters = page.get_by_test_id("filters")
    expect(filters).to_be_hidden()
    page.get_by_test_id("filters-toggle").click()
    expect(filters).to_be_visible()
    expect(page.get_by_label("Sort by")).to_be_visible()
    row = page.locator(f"#backup-{backup.pk}")
    expect(row.locator('td[data-label="Size"]')).to_be_visible()
    expect(page.get_by_test_id("backup-table").locator("thead")).to_be_hidden()  # each cell names its column
    row.get_by_test_id("more-actions").click()
    expect(row.get_by_test_id("menu-download")).to_be_visible()
    screenshot(page, "list-phone-card-menu")
    assert page.js_errors == []


def test_last_verified_says_not_checked_when_the_storage_could_not_be_reached(cast, page) -> None:  # type: ignore[no-untyped-def]
    from botocore.exceptions import EndpointConnectionError

    from backups.verify import VerificationNotChecked, raise_not_checked_if_storage_failed

    backup = make_backup(cast.org, label="Unreachable one", requested_by=cast.owner)
    Backup.objects.filter(pk=backup.pk).update(
        last_verified_at=timezone.now() - dt.timedelta(days=3), verification_ok=True, verification_message="Fine."
    )
    checked = make_backup(cast.org, label="Checked one", requested_by=cast.owner)
    Backup.objects.filter(pk=checked.pk).update(
        last_verified_at=timezone.now(), verification_ok=True, verification_message="Every SHA-256 matches."
    )
    with pytest.raises(VerificationNotChecked):  # what Verify now records when the store is down
        raise_not_checked_if_storage_failed(
            backup, EndpointConnectionError(endpoint_url="http://store.invalid/"), user=cast.owner, request=None
        )
    login(page, cast.owner.email, DEMO_PASSWORD)
    page.goto("/backups/")
    cell = page.locator(f"#backup-{backup.pk}").locator('td[data-label="Last verified"]')
    expect(cell).to_have_text(re.compile(r"^\s*Not checked \d{1,2} \w{3} \d{4}\s*$"))
    expect(cell.get_by_test_id("not-checked")).to_have_attribute(
        "title", re.compile(r"Storage error: the file storage could not be reached .*not known to be damaged")
    )
    other = page.locator(f"#backup-{checked.pk}").locator('td[data-label="Last verified"]')
    expect(other.get_by_test_id("not-checked")).to_have_count(0)
    expect(other.locator(".bi-patch-check-fill")).to_have_count(1)

    page.set_viewport_size({"width": 375, "height": 812})
    page.reload()
    expect(cell).to_be_visible()
    expect(cell).to_contain_text("Not checked")
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 375
    screenshot(page, "list-phone-not-checked")
    assert page.js_errors == []
