"""The web shell in a real browser: sign in, see the dashboard, switch organization, sign out."""

from __future__ import annotations

import pytest

from tests.browser.conftest import login, screenshot
from tests.factories import DEMO_PASSWORD, MembershipFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_owner_signs_in_and_sees_the_dashboard(cast, page) -> None:  # type: ignore[no-untyped-def]
    page.goto("/")
    assert "/accounts/login/" in page.url
    screenshot(page, "shell-login")
    login(page, "owner@acme.test", DEMO_PASSWORD)
    title = page.get_by_test_id("dashboard-title")
    title.wait_for()
    assert title.inner_text() == "Acme Legal"
    assert page.get_by_text("You are Owner").is_visible()
    # Styles and scripts come from our own static files: Bootstrap's navbar is dark and the
    # user menu opens (bootstrap.bundle.js loaded under the CSP).
    assert page.eval_on_selector("nav.navbar", "el => getComputedStyle(el).backgroundColor") != "rgba(0, 0, 0, 0)"
    page.locator("#user-menu").click()
    assert page.get_by_role("button", name="Sign out").is_visible()
    screenshot(page, "shell-dashboard")
    assert page.js_errors == []
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/accounts/login/")


def test_member_of_two_organizations_switches_between_them(cast, page) -> None:  # type: ignore[no-untyped-def]
    MembershipFactory(user=cast.member, organization=cast.other_org)
    login(page, "member@acme.test", DEMO_PASSWORD)
    page.get_by_test_id("dashboard-title").wait_for()
    page.locator("#org-switcher .dropdown-toggle").click()
    page.locator("#org-switcher").get_by_role("button", name="Other Org").click()
    page.get_by_text("You are now working in Other Org.").wait_for()
    assert page.get_by_test_id("dashboard-title").inner_text() == "Other Org"
    screenshot(page, "shell-switched-organization")


def test_wrong_password_is_explained(cast, page) -> None:  # type: ignore[no-untyped-def]
    login(page, "owner@acme.test", "not-the-password")
    assert page.get_by_text("Please enter a correct email and password").is_visible()
