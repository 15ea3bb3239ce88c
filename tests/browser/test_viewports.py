"""Every page of the URL probe's table, as the Owner and as the Site Admin, at a phone's
390 x 844 and a laptop's 1,366 x 900: no page is wider than the window, and axe-core finds no
violation of impact "serious" or "critical". Screenshots of the list, the request dialog and the
organization wizard at both sizes are saved as artifacts. The request dialog puts the focus on
its first field and keeps Tab inside until it is closed.

axe-core comes from the npm registry (package.json pins it; ``npm ci`` installs it into
node_modules/, as .ci/run does). It is evaluated through Playwright (the DevTools protocol), not
added as a <script> tag, so the page's Content-Security-Policy (script-src 'self') stays as is.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client
from playwright.sync_api import expect

from tests.backups.conftest import tenant  # noqa: F401 (fixture of the probe's world)
from tests.browser.conftest import open_page, screenshot
from tests.support.procs import wait_for_live_server_requests
from tests.support.url_table import OK, SITE_TABLE
from tests.support.url_walk import World, fill, site_patterns, world  # noqa: F401 (fixture)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"
SIZES = {"phone": (390, 844), "laptop": (1366, 900)}
ACTORS = ("owner", "site_admin")
BLOCKING = ("serious", "critical")
# Pages whose screenshots are kept (when the table has them).
SHOTS = {"backups:list": "list", "restores:wizard": "wizard", "organizations:wizard": "wizard"}


def _html_pages(world: World, actor: str, client: Client) -> list[tuple[str, str]]:  # noqa: F811
    """(name, path) of every GET page of the table the actor may open that is a whole HTML page
    (fragments polled by htmx, downloads, images and JSON are not pages)."""
    pages = []
    for pattern in site_patterns():
        entry = SITE_TABLE[pattern.key]
        if entry.acme[actor] != OK:
            continue
        path = fill(pattern, entry, world, "acme")
        response = client.get(path)
        if response.streaming or not response.get("Content-Type", "").startswith("text/html"):
            continue
        if not response.content.lstrip()[:15].lower().startswith(b"<!doctype html"):
            continue
        pages.append((pattern.key, path))
    return pages


def _axe(page) -> list[str]:  # type: ignore[no-untyped-def]
    if not page.evaluate("() => Boolean(window.axe)"):
        page.evaluate(AXE.read_text(encoding="utf-8") + "\n;0")
    found = page.evaluate(
        """async () => (await axe.run(document, {resultTypes: ["violations"]})).violations.map(v => ({
          id: v.id, impact: v.impact, help: v.help,
          nodes: v.nodes.slice(0, 3).map(n => `${n.target.join(" ")} (${(n.failureSummary || "").slice(0, 160)})`),
        }))"""
    )
    return [f"{v['impact']} {v['id']}: {v['help']} at {v['nodes']}" for v in found if v["impact"] in BLOCKING]


def _signed_in(browser, live_server, user):  # type: ignore[no-untyped-def]
    client = Client()
    client.force_login(user)
    cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
    return client, cookie


@pytest.mark.parametrize("actor", ACTORS)
def test_every_page_fits_phones_and_laptops_and_passes_axe(world: World, browser, live_server, actor: str) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    if not AXE.exists():
        missing = f"axe-core is missing at {AXE}: run `npm ci` (package.json pins it)"
        if os.environ.get("REQUIRE_BROWSER"):  # CI (.ci/run) installs it: missing there is a failure
            pytest.fail(missing)
        pytest.skip(missing)
    client, cookie = _signed_in(browser, live_server, world.actor(actor))
    pages = _html_pages(world, actor, client)
    names = {name for name, _ in pages}
    assert {"backups:list", "dashboard"} <= names, names
    problems: list[str] = []
    try:
        with open_page(browser, live_server.url) as page:
            page.context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": cookie, "url": live_server.url}])
            for size, (width, height) in SIZES.items():
                page.set_viewport_size({"width": width, "height": height})
                for name, path in pages:
                    page.goto(path)
                    page.wait_for_load_state("load")
                    wide = page.evaluate("() => document.documentElement.scrollWidth")
                    room = page.evaluate("() => document.documentElement.clientWidth")
                    if wide > room:
                        problems.append(f"{size} {name} {path}: the page is {wide} px wide in a {room} px window")
                    problems += [f"{size} {name} {path}: {v}" for v in _axe(page)]
                    if name in SHOTS:
                        screenshot(page, f"viewport-{actor}-{SHOTS[name]}-{width}")
                    if name == "backups:list" and actor == "owner":
                        problems += [f"{size} request dialog: {v}" for v in _request_dialog(page, width)]
            assert not [e for e in page.js_errors if "Content Security Policy" in e]
    finally:
        wait_for_live_server_requests()
    assert not problems, f"{len(problems)} problem(s):\n" + "\n".join(problems)


def _request_dialog(page, width: int) -> list[str]:  # type: ignore[no-untyped-def]
    """Open the request dialog: focus on its first field, Tab stays inside, axe, screenshot."""
    page.get_by_test_id("request-backup").click()
    dialog = page.locator("#backup-modal")
    expect(dialog.get_by_role("heading", name="Request an Account Backup")).to_be_visible()
    expect(dialog.get_by_label("Label")).to_be_focused()
    page.wait_for_function("() => getComputedStyle(document.querySelector('#backup-modal')).opacity === '1'")
    for _ in range(40):  # more stops than the dialog has: Tab wraps around inside it
        page.keyboard.press("Tab")
        inside = page.evaluate("() => document.querySelector('#backup-modal').contains(document.activeElement)")
        assert inside, "Tab left the open request dialog for " + page.evaluate(
            "() => document.activeElement.outerHTML.slice(0, 200)"
        )
    for _ in range(5):
        page.keyboard.press("Shift+Tab")
        assert page.evaluate("() => document.querySelector('#backup-modal').contains(document.activeElement)")
    problems = _axe(page)
    wide = page.evaluate("() => document.documentElement.scrollWidth > document.documentElement.clientWidth")
    if wide:
        problems.append("the page with the request dialog open is wider than the window")
    screenshot(page, f"viewport-owner-request-dialog-{width}")
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    return problems
