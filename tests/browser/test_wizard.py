"""The organization wizard in a real browser, from Administration → Organization Management:
the standard creation and *Restore from backup*, with screenshots of every step at 1,366 and
390 px and a check that no page is wider than the window."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from backups.snapshot import logical_snapshot
from organizations import models as om
from restores.models import Restore
from tests import factories as f
from tests.backups.conftest import tenant  # noqa: F401 - fixtures
from tests.browser.conftest import login, screenshot
from tests.browser.test_restores import real_png, run_worker_while
from tests.factories import DEMO_PASSWORD
from tests.restores.conftest import _no_dispatch, make_backup  # noqa: F401 - fixtures

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WIDTHS = {1366: 900, 390: 844}
# axe-core (npm) checks every step when it is installed (tests/browser/README: npm install axe-core).
AXE = next(
    (
        p
        for p in (
            os.environ.get("AXE_CORE_JS", ""),
            Path(__file__).resolve().parents[2] / "node_modules/axe-core/axe.min.js",
        )
        if p and Path(p).is_file()
    ),
    None,
)


def axe_violations(page: Any) -> list[str]:
    """Violations of impact serious or critical on the page, as "rule: target" lines."""
    # Evaluated through the DevTools protocol: a <script> tag would break the page's CSP.
    page.evaluate(Path(AXE).read_text(encoding="utf-8") + "\n;true")
    result = page.evaluate("async () => (await axe.run(document)).violations")
    return [
        f"{v['id']}: {node['target']}" for v in result if v["impact"] in ("serious", "critical") for node in v["nodes"]
    ]


def shots(page: Any, name: str) -> None:
    """Screenshots at both widths; each page fits its window (no sideways scrolling)."""
    for width, height in WIDTHS.items():
        page.set_viewport_size({"width": width, "height": height})
        page.wait_for_function(f"() => window.innerWidth === {width}")
        wide = page.evaluate("() => document.documentElement.scrollWidth")
        assert wide <= width, f"{name} is {wide} px wide at {width} px"
        screenshot(page, f"wizard-{name}-{width}")
        if AXE is not None:
            assert axe_violations(page) == [], f"{name} at {width} px"
    page.set_viewport_size({"width": 1366, "height": 900})


def open_management(page: Any) -> None:
    login(page, "site-admin@platform.test", DEMO_PASSWORD)
    page.get_by_test_id("dashboard-title").wait_for()
    page.locator("#nav-administration").click()
    page.get_by_test_id("nav-organizations").click()
    page.get_by_test_id("page-title").wait_for()


def next_step(page: Any, title: str) -> None:
    page.get_by_test_id("wizard-next").click()
    assert page.get_by_test_id("wizard-step-title").inner_text() == title


def test_the_standard_wizard_from_organization_management(tenant, page, tmp_path) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    f.RegulationFactory(
        master_data_version=tenant.org.master_data_version, code="GDPR", title="General Data Protection"
    )
    organizations = om.Organization.objects.count()
    page.set_viewport_size({"width": 1366, "height": 900})
    open_management(page)
    assert page.get_by_test_id("organization-row").count() == organizations
    shots(page, "organization-management")
    page.get_by_test_id("wizard-more").click()
    page.get_by_test_id("wizard-restore").wait_for()  # ▾ offers Restore from backup
    shots(page, "organization-management-menu")
    page.keyboard.press("Escape")
    page.get_by_test_id("wizard-new").click()

    # Company
    assert page.get_by_test_id("wizard-step-title").inner_text() == "Company"
    assert page.get_by_label("Owner").input_value() == "site-admin@platform.test"
    page.get_by_label("Organization name").fill("Harbour Law")
    page.get_by_label("Address (slug)").fill("harbour-law")
    page.get_by_label("Legal name").fill("Harbour Law LLP")
    page.get_by_label("Sector").fill("Legal")
    page.get_by_label("Employees").select_option("11-50")
    page.get_by_label("Owner").fill("owner@acme.test")
    logo = tmp_path / "logo.png"
    logo.write_bytes(real_png())
    page.get_by_label("Logo").set_input_files(str(logo))
    shots(page, "new-company")
    next_step(page, "Address")

    # Address: a missing required field is named.
    page.get_by_label("Street and number").fill("1 Quay")
    page.get_by_test_id("wizard-next").click()
    page.get_by_test_id("step-errors").wait_for()
    shots(page, "new-address-error")
    page.get_by_label("City").fill("London")
    page.get_by_label("Country").fill("GB")
    next_step(page, "Contact")
    page.get_by_label("Contact person").fill("Hal Harbour")
    page.get_by_label("Contact email").fill("hal@harbour.test")
    shots(page, "new-contact")
    next_step(page, "Structure")

    # Structure: rows are added and removed with buttons.
    page.get_by_test_id("add-facility").click()
    page.get_by_label("Facility 1 name").fill("Docklands")
    page.get_by_label("Facility 1 code").fill("DOCK")
    page.get_by_label("Unit 1 name").fill("Shipping")
    page.get_by_label("Unit 1 code").fill("SHIP")
    page.get_by_label("Unit 1 facility code").fill("DOCK")
    page.get_by_test_id("add-ou").click()
    page.get_by_label("Unit 2 name").fill("Scratch")
    page.get_by_role("button", name="Remove unit 2").click()
    assert page.get_by_test_id("ou-row").count() == 1
    page.get_by_test_id("add-ou").click()
    page.get_by_label("Unit 2 name").fill("Trade")
    page.get_by_label("Unit 2 code").fill("TRADE")
    assert page.get_by_label("Facility 1 name").input_value() == "Docklands"  # kept across the posts
    shots(page, "new-structure")
    next_step(page, "Regulations")
    page.get_by_label("GDPR – General Data Protection").check()
    shots(page, "new-regulations")
    next_step(page, "Modules")
    page.get_by_label("Billing and time recording").uncheck()
    shots(page, "new-modules")
    next_step(page, "Review")
    summary = page.get_by_test_id("wizard-summary").inner_text()
    for text in ("Harbour Law LLP", "1 Quay, London, GB", "Docklands (DOCK)", "Shipping (SHIP, Docklands)", "GDPR"):
        assert text in summary, text
    shots(page, "new-review")
    page.get_by_test_id("wizard-create").click()
    page.get_by_text("The organization Harbour Law was created.").wait_for()

    org = om.Organization.objects.get(slug="harbour-law")
    assert om.Organization.objects.count() == organizations + 1
    assert org.memberships.get(role="owner").user.email == "owner@acme.test"
    assert sorted(org.ous.values_list("code", flat=True)) == ["SHIP", "TRADE"]
    assert list(org.regulations.values_list("code", flat=True)) == ["GDPR"]
    assert org.logo.read() == real_png()
    assert org.creation_wizard_data["modules"] == ["documents", "practice", "account_backups"]
    # The refused address step answered 400 (a form with errors), which the console reports.
    assert [e for e in page.js_errors if "status of 400" not in e] == []


def test_restore_from_backup_through_the_split_button(tenant, page) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    from django.core.files.base import ContentFile

    tenant.org.logo.save("logo", ContentFile(real_png()))
    backup = make_backup(tenant.org, tenant.owner)
    source = logical_snapshot(tenant.org)
    captured = tenant.org.creation_wizard_data
    page.set_viewport_size({"width": 1366, "height": 900})
    open_management(page)
    page.get_by_test_id("wizard-more").click()
    page.get_by_test_id("wizard-restore").click()

    # Backup selection, with the preview as labelled fields that fit the card.
    page.get_by_test_id("backup-group").first.wait_for()
    page.locator(f'a[href="?preview={backup.pk}"]').click()
    data = page.get_by_test_id("wizard-data")
    data.wait_for()
    text = data.inner_text()
    assert captured["company"]["legal_name"] in text and "{" not in text
    page.wait_for_function("() => document.querySelector('[data-testid=preview-logo]').naturalWidth === 8")
    shots(page, "restore-backup-selection")
    page.get_by_test_id("wizard-next").click()

    # The ordinary steps, pre-filled from the backup.
    assert page.get_by_test_id("wizard-step-title").inner_text() == "Company"
    assert page.get_by_label("Organization name").input_value() == "Acme Legal"
    assert page.get_by_label("Legal name").input_value() == captured["company"]["legal_name"]
    assert page.get_by_test_id("mdv").is_disabled()
    assert page.get_by_test_id("mdv").input_value() == tenant.org.master_data_version.code
    page.get_by_label("Organization name").fill("Acme Legal (restored)")
    page.get_by_label("Address (slug)").fill("acme-restored")
    shots(page, "restore-company")
    next_step(page, "Address")
    assert page.get_by_label("City").input_value() == captured["address"]["city"]
    shots(page, "restore-address")
    next_step(page, "Contact")
    assert page.get_by_label("Contact email").input_value() == captured["contact"]["email"]
    shots(page, "restore-contact")
    next_step(page, "Structure")
    readonly = page.get_by_test_id("structure-readonly")
    assert "cannot be changed in this step" in readonly.inner_text()
    assert page.get_by_text("Litigation").count() == 1
    shots(page, "restore-structure")
    next_step(page, "Regulations")
    boxes = page.get_by_test_id("regulations-readonly").get_by_role("checkbox")
    assert boxes.count() == 2 and boxes.first.is_disabled() and boxes.first.is_checked()
    assert "uploaded to the organization automatically" in page.get_by_test_id("regulations-note").inner_text()
    shots(page, "restore-regulations")
    next_step(page, "Modules")
    assert page.get_by_label("Account Backups").is_checked()
    shots(page, "restore-modules")
    next_step(page, "Review")
    summary = page.get_by_test_id("wizard-summary").inner_text()
    assert "The logo from the backup" in summary and "acme-restored" in summary
    shots(page, "restore-review")
    page.get_by_test_id("wizard-create").click()
    page.get_by_text("The organization is being created from the backup.").wait_for()

    restore = Restore.objects.get(kind=Restore.Kind.NEW_ORGANIZATION)
    run_worker_while(page, restore.pk)
    page.goto(restore.get_absolute_url())
    assert page.get_by_test_id("restore-status").inner_text() == "Completed"
    new = om.Organization.objects.get(slug="acme-restored")
    assert new.name == "Acme Legal (restored)"
    assert logical_snapshot(new) == source  # the data, logo and unedited wizard data restored
    assert page.js_errors == []


def test_account_menu_offers_the_wizard_to_a_site_admin_without_an_organization(tenant, page) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    backup = make_backup(tenant.org, tenant.owner)
    login(page, "site-admin@platform.test", DEMO_PASSWORD)  # a Site Admin, member of no organization
    page.get_by_test_id("dashboard-title").wait_for()
    page.locator("#user-menu").click()
    page.get_by_test_id("account-wizard-new").wait_for()
    page.get_by_test_id("account-wizard-restore").click()
    page.locator(f'a[href="?preview={backup.pk}"]').wait_for()  # Backup selection
    assert "Backup selection" in page.get_by_test_id("wizard-steps").inner_text()
    assert page.js_errors == []
