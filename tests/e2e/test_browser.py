"""Debian's chromium against gunicorn in production mode: static files from whitenoise's
manifest, the security headers and the Content-Security-Policy, htmx's live row, a real worker
on Redis and the presigned S3 download, as a user sees them."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import requests
from playwright.sync_api import expect

from backups.archive import ArchiveReader
from backups.models import Backup
from tests.backups.conftest import tenant  # noqa: F401 - fixture
from tests.browser.conftest import open_page, screenshot
from tests.factories import DEMO_PASSWORD
from tests.support.stack import Stack

pytestmark = [pytest.mark.e2e, pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def prod_page(stack: Stack, browser) -> Iterator[object]:  # type: ignore[no-untyped-def]
    # TLS and its redirect at the load balancer; "localhost": chromium keeps the app's Secure
    # cookies there over plain HTTP, as it would over HTTPS.
    stack.stop("web")
    stack.start_web(SECURE_SSL_REDIRECT="false")
    with open_page(browser, stack.base_url.replace("127.0.0.1", "localhost"), timeout_ms=20_000) as page:
        yield page


def test_owner_requests_and_downloads_in_production_mode(stack: Stack, tenant, prod_page) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    page = prod_page
    stack.start_worker("worker-1")
    stack.start_beat()

    first = page.goto("/accounts/login/")
    assert first is not None
    headers = first.headers
    assert "script-src 'self'" in headers["content-security-policy"]
    assert headers["x-frame-options"] == "DENY" and headers["x-content-type-options"] == "nosniff"
    assert headers["cross-origin-opener-policy"] == "same-origin"
    # Static files come from whitenoise's manifest (hashed names, cached for a year).
    css = page.locator('link[rel="stylesheet"]').first.get_attribute("href")
    assert css and re.search(r"\.[0-9a-f]{12}\.css$", css), css
    static = requests.get(stack.base_url + css, timeout=10)
    assert static.status_code == 200 and "max-age=315360000" in static.headers["Cache-Control"]

    page.get_by_label("Email").fill(tenant.owner.email)
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_test_id("dashboard-title").wait_for()
    cookies = {c["name"]: c for c in page.context.cookies()}
    assert cookies["sessionid"]["secure"] and cookies["sessionid"]["httpOnly"]
    assert cookies["csrftoken"]["secure"]

    page.goto("/backups/")
    page.get_by_test_id("request-backup").click()
    dialog = page.locator("#backup-modal")
    expect(dialog.get_by_role("heading", name="Request an Account Backup")).to_be_visible()
    dialog.get_by_test_id("copy-password").click()
    expect(dialog.get_by_test_id("copy-password")).to_have_text(re.compile("Copied"))
    copied = page.evaluate("navigator.clipboard.readText()")
    dialog.get_by_label("Label").fill("Production check")
    dialog.get_by_role("button", name="Agree & Generate Backup").click()
    expect(page.get_by_text("Backup “Production check” requested")).to_be_visible()
    backup = Backup.objects.get(label="Production check")

    # The worker (Redis broker) runs it; the open page's row turns Completed by itself.
    row = page.locator(f"#backup-{backup.pk}")
    expect(row).to_have_attribute("data-status", "completed", timeout=60_000)
    screenshot(page, "e2e-production-completed")

    # The download is a redirect to a presigned S3 URL; chromium follows it.
    with page.expect_download() as info:
        row.get_by_test_id("download").click()
    manifest = ArchiveReader(info.value.path(), copied).verify()
    assert manifest["organization"]["name"] == tenant.org.name
    assert page.js_errors == [], page.js_errors  # CSP refusals included
