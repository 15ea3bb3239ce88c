"""The compare pages in a real browser: from a backup's details to the result, its drill-down
and search, with screenshots (artifacts/screenshots/compare-*.png)."""

from __future__ import annotations

import pytest

from backups.compare.services import comparisons_process
from organizations import models as om
from tests.backups.conftest import add_document, tenant  # noqa: F401 - fixtures
from tests.browser.conftest import login, screenshot
from tests.factories import DEMO_PASSWORD
from tests.restores.conftest import make_backup

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_compare_a_backup_with_now_and_drill_down(tenant, page) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    backup = make_backup(tenant.org, tenant.owner)
    # Work done after the backup: one document gone, one added, clients and an invoice changed.
    om.ControlledDocument.objects.filter(organization=tenant.org, reference="A0-1").delete()
    add_document(tenant.org, tenant.ou_b, "LATE-1")
    om.Client.objects.filter(organization=tenant.org).update(phone="+44 20 7946 0000")
    om.Invoice.objects.filter(organization=tenant.org, number="INV-0").update(status="paid")

    login(page, "owner@acme.test", DEMO_PASSWORD)
    page.get_by_test_id("dashboard-title").wait_for()
    page.goto(f"/backups/{backup.pk}/")
    page.get_by_test_id("compare-card").wait_for()
    page.get_by_test_id("compare-now").click()
    page.get_by_test_id("comparison-progress").wait_for()
    assert "Waiting for a worker" in page.get_by_test_id("comparison-progress").inner_text()
    screenshot(page, "compare-waiting")
    url = page.url

    # The worker runs it. The browser is parked first: with SQLite in memory the live server
    # shares this thread's database connection.
    page.goto("about:blank")
    assert comparisons_process() == 1

    page.goto(url)
    totals = page.get_by_test_id("comparison-totals").inner_text()
    assert "2 added" in totals and "3 removed" in totals and "3 changed" in totals
    assert "Computed" in page.get_by_test_id("computed-at").inner_text()
    summary = page.get_by_test_id("comparison-summary")
    assert "Controlled documents" in summary.inner_text() and "Financial and billing data" in summary.inner_text()
    screenshot(page, "compare-result")

    page.get_by_test_id("drill-document_version").click()
    rows = page.get_by_test_id("entry").all_inner_texts()
    assert any("A0-1 v1" in r and "Removed" in r for r in rows)
    assert any("LATE-1 v1" in r and "Added" in r for r in rows)
    screenshot(page, "compare-drill-down")

    page.goto(url)
    page.get_by_test_id("drill-client").click()
    page.get_by_test_id("search").fill(tenant.org.clients.order_by("pk").first().name[:4])
    page.get_by_role("button", name="Filter").click()
    rows = page.get_by_test_id("entry").all_inner_texts()
    assert rows and all("phone" in r and "+44 20 7946 0000" in r for r in rows)
    screenshot(page, "compare-search")

    page.get_by_test_id("compare-again").click()
    page.get_by_test_id("comparison-progress").wait_for()
