"""Restores in a real browser: in place with the Owner's code read from a real SMTP server, and
into a new organization through the wizard."""

from __future__ import annotations

import re
import struct
import zlib
from typing import Any

import pytest
from django.core.files.base import ContentFile

from backups.compare.services import comparisons_process
from backups.snapshot import logical_snapshot
from organizations import models as om
from restores import engine
from restores.models import Restore
from restores.tasks import run_restore
from tests.backups.conftest import add_document, tenant  # noqa: F401 - fixtures
from tests.browser.conftest import login, screenshot
from tests.factories import DEMO_PASSWORD
from tests.restores.conftest import _no_dispatch, full_backup, make_backup  # noqa: F401 - fixtures
from tests.support.mail import text_of

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def run_worker_while(page: Any, restore_id: int) -> None:
    """Run the restore the way a worker would. The browser is parked first: with SQLite in
    memory the live server shares this thread's database connection."""
    page.goto("about:blank")
    run_restore(restore_id)


def test_in_place_restore_with_the_code_from_the_owners_mailbox(tenant, full_backup, smtp, page, monkeypatch) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    at_backup = logical_snapshot(tenant.org)
    # Work done after the backup, which the restore takes back.
    om.Template.objects.create(organization=tenant.org, name="Written after the backup")
    om.Client.objects.filter(organization=tenant.org).update(name="Renamed after the backup")
    add_document(tenant.org, tenant.ou_a, "LATE-1")
    assert logical_snapshot(tenant.org) != at_backup

    login(page, "admin@acme.test", DEMO_PASSWORD)
    page.get_by_test_id("dashboard-title").wait_for()
    page.goto(f"/restores/backup/{full_backup.pk}/")
    warning = page.get_by_test_id("restore-warning")
    warning.wait_for()
    assert "This replaces what the backup holds, and nothing else" in warning.inner_text()
    summary = page.get_by_test_id("restore-summary").inner_text()
    assert "Templates and billing codes" in summary and "Controlled documents" in summary
    screenshot(page, "restore-warning")
    page.get_by_test_id("send-code").click()
    page.get_by_text("A code was sent to the Owner.").wait_for()
    assert page.get_by_test_id("restore-status").inner_text() == "Waiting for the Owner's code"

    # The code arrives at the Owner's address only, over SMTP.
    mail = smtp.wait_for("Restore code for Acme Legal")
    assert mail["X-Envelope-To"] == "owner@acme.test"
    code = re.search(r"^\s+(\d{8})\s*$", text_of(mail), re.MULTILINE)
    assert code, text_of(mail)
    assert code.group(1) not in page.content()  # the requester's page never shows it

    page.get_by_label("Code from the Owner").fill(code.group(1))
    page.get_by_label("Your password").fill(DEMO_PASSWORD)
    screenshot(page, "restore-enter-code")
    page.get_by_test_id("confirm-restore").click()
    page.get_by_text("Code accepted.").wait_for()
    assert page.get_by_test_id("restore-status").inner_text() == "Queued"
    restore = Restore.objects.get()

    # While the data is replaced, the organization's users see the maintenance banner.
    banner: dict[str, str] = {}

    def checkpoint(stage: str, **info: Any) -> None:
        if stage == "imported":
            page.goto("/")
            banner["text"] = page.get_by_test_id("maintenance-banner").inner_text()
            screenshot(page, "restore-maintenance-banner")
            page.goto("about:blank")

    monkeypatch.setattr(engine, "checkpoint", checkpoint)
    run_worker_while(page, restore.pk)
    assert "is being restored from a backup" in banner["text"]

    page.goto(restore.get_absolute_url())
    status = page.get_by_test_id("restore-status")
    status.wait_for()
    assert status.inner_text() == "Completed"
    assert (
        "Inside the backup's scope the organization's data is now the backup's"
        in page.get_by_test_id("restore-result").inner_text()
    )
    screenshot(page, "restore-completed")
    assert page.get_by_test_id("maintenance-banner").count() == 0
    tenant.org.refresh_from_db()
    assert logical_snapshot(tenant.org) == at_backup
    finished = smtp.wait_for("Restore completed: Acme Legal")
    assert finished["X-Envelope-To"] in ("owner@acme.test", "admin@acme.test")
    assert page.js_errors == []


def test_an_ou_limited_backup_restored_in_place_leaves_other_ous_alone(tenant, smtp, page) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    """Restore a backup of OU Litigation with the Owner's code: Litigation's records come back,
    Finance's changes stay, and the restore screen said so beforehand."""
    from tests import factories as f

    for ou in (tenant.ou_a, tenant.ou_b):
        f.OURoleAssignmentFactory(user=tenant.admin, ou=ou)
    backup = make_backup(tenant.org, tenant.owner, ous=[tenant.ou_a], include_inactive=False)
    docs = om.ControlledDocument.objects.filter(organization=tenant.org)
    titles_a = dict(docs.filter(ou=tenant.ou_a).values_list("pk", "title"))
    docs.filter(ou=tenant.ou_a).update(title="Changed in Litigation")
    docs.filter(ou=tenant.ou_b).update(title="Changed in Finance")
    add_document(tenant.org, tenant.ou_a, "LIT-LATE")
    add_document(tenant.org, tenant.ou_b, "FIN-LATE")

    login(page, "admin@acme.test", DEMO_PASSWORD)
    page.get_by_test_id("dashboard-title").wait_for()
    page.goto(f"/restores/backup/{backup.pk}/")
    page.get_by_test_id("restore-warning").wait_for()
    assert "the organisational units Litigation" in page.get_by_test_id("restore-warning").inner_text()
    documents = page.get_by_test_id("restore-summary-documents").inner_text()
    assert "at least 1 added since will be removed" in documents
    assert "1 inactive documents are not in this backup" not in documents
    assert "2 inactive documents are not in this backup and stay as they are." in documents
    assert "organisational units outside this backup stay as they are." in documents

    # Compare first: from the restore screen, with now, record by record.
    page.get_by_test_id("restore-compare-start").click()
    page.get_by_test_id("comparison-progress").wait_for()
    page.goto("about:blank")  # the worker runs it (SQLite in memory: the live server shares this connection)
    assert comparisons_process() == 1
    page.goto(f"/restores/backup/{backup.pk}/")
    compare = page.get_by_test_id("restore-compare")
    compare.get_by_test_id("comparison-summary").wait_for()
    cells = compare.get_by_test_id("summary-document").locator("td").all_inner_texts()
    assert cells[1:] == ["2", "3", "1", "0", "2"], cells  # in the backup, now, added, removed, changed
    screenshot(page, "restore-screen-ou-limited")
    compare.get_by_test_id("restore-compare-open").click()
    page.get_by_test_id("drill-document").click()
    rows = page.get_by_test_id("entry").all_inner_texts()
    assert any("LIT-LATE" in r and "Added" in r for r in rows), rows
    assert not any("FIN-LATE" in r or "Changed in Finance" in r for r in rows), "outside the backup: not compared"
    assert sum("Changed in Litigation" in r for r in rows) == 2, rows
    screenshot(page, "compare-ou-limited")
    page.goto(f"/restores/backup/{backup.pk}/")
    page.get_by_test_id("send-code").click()
    page.get_by_text("A code was sent to the Owner.").wait_for()
    mail = smtp.wait_for("Restore code for Acme Legal")
    code = re.search(r"^\s+(\d{8})\s*$", text_of(mail), re.MULTILINE)
    assert code, text_of(mail)
    page.get_by_label("Code from the Owner").fill(code.group(1))
    page.get_by_label("Your password").fill(DEMO_PASSWORD)
    page.get_by_test_id("confirm-restore").click()
    page.get_by_text("Code accepted.").wait_for()
    restore = Restore.objects.get()
    run_worker_while(page, restore.pk)
    page.goto(restore.get_absolute_url())
    page.get_by_test_id("restore-status").wait_for()
    assert page.get_by_test_id("restore-status").inner_text() == "Completed"
    restored = dict(docs.filter(ou=tenant.ou_a, status="active").values_list("pk", "title"))
    assert restored == {pk: t for pk, t in titles_a.items() if pk in restored} and restored
    assert not docs.filter(reference="LIT-LATE").exists()
    assert set(docs.filter(ou=tenant.ou_b).values_list("title", flat=True)) == {
        "Changed in Finance",
        "Procedure FIN-LATE",
    }
    assert set(docs.filter(ou=tenant.ou_a, status="inactive").values_list("title", flat=True)) == {
        "Changed in Litigation"
    }
    assert page.js_errors == []


def wizard_to_confirm(page: Any, backup_pk: int, name: str, slug: str) -> None:
    page.goto("/restores/wizard/?new=1")
    page.get_by_test_id("wizard-from-backup").click()
    page.get_by_test_id("backup-group").first.wait_for()
    page.locator(f'a[href="?preview={backup_pk}"]').click()
    page.get_by_test_id("backup-preview").wait_for()
    page.get_by_test_id("wizard-next").click()
    page.get_by_label("Organization name").fill(name)
    page.get_by_label("Address (slug)").fill(slug)
    page.get_by_test_id("wizard-next").click()
    for _step in ("Address", "Contact", "Structure", "Regulations", "Modules"):
        page.get_by_test_id("wizard-next").click()
    page.get_by_test_id("wizard-summary").wait_for()


def real_png(size: int = 8) -> bytes:
    """A small, valid PNG (the tenant fixture's logo is only PNG-shaped)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    rows = b"".join(b"\x00" + b"\x1f\x6f\xd0" * size for _ in range(size))
    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def test_wizard_restore_into_a_new_organization(tenant, page, monkeypatch) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    tenant.org.logo.save("logo", ContentFile(real_png()))
    backup = make_backup(tenant.org, tenant.owner)
    source = logical_snapshot(tenant.org)
    organization_count = om.Organization.objects.count()
    login(page, "site-admin@platform.test", DEMO_PASSWORD)
    page.get_by_test_id("dashboard-title").wait_for()
    page.goto("/restores/wizard/?new=1")
    screenshot(page, "wizard-start")
    page.get_by_test_id("wizard-from-backup").click()

    # Step 1: backups grouped by organization, newest first, with the name at backup time.
    groups = page.get_by_test_id("backup-group")
    groups.first.wait_for()
    acme = groups.filter(has_text="Acme Legal")
    assert "Acme Legal" in acme.get_by_test_id("backup-version").first.inner_text()
    page.locator(f'a[href="?preview={backup.pk}"]').click()
    preview = page.get_by_test_id("backup-preview")
    preview.wait_for()
    assert preview.get_by_test_id("preview-name").inner_text() == "Acme Legal"
    assert preview.get_by_test_id("preview-license").inner_text() == tenant.org.license_identifier
    assert preview.get_by_test_id("preview-mdv").inner_text() == tenant.org.master_data_version.code
    assert "England and Wales" in preview.inner_text()
    assert "Legal name" in preview.get_by_test_id("wizard-data").inner_text()
    logo = preview.get_by_test_id("preview-logo")
    logo.wait_for()
    page.wait_for_function("() => document.querySelector('[data-testid=preview-logo]').naturalWidth === 8")
    screenshot(page, "wizard-backup-selection")
    page.get_by_test_id("wizard-next").click()

    # Step 2: the ordinary organization step, pre-filled from the backup.
    assert page.get_by_label("Organization name").input_value() == "Acme Legal"
    assert page.get_by_label("Description").input_value() == tenant.org.description
    assert page.get_by_label("License identifier").input_value() == tenant.org.license_identifier
    assert page.get_by_label("Available languages").input_value() == "en, de"
    assert page.get_by_label("Owner").input_value() == "site-admin@platform.test"
    assert page.get_by_test_id("mdv").input_value() == tenant.org.master_data_version.code
    page.get_by_label("Organization name").fill("Acme Legal (restored)")
    page.get_by_label("Address (slug)").fill("acme-restored")
    screenshot(page, "wizard-organization")
    page.get_by_test_id("wizard-next").click()
    for _step in ("Address", "Contact", "Structure"):
        page.get_by_test_id("wizard-next").click()

    # Step 3: the regulations are read-only.
    readonly = page.get_by_test_id("regulations-readonly")
    readonly.wait_for()
    boxes = readonly.get_by_role("checkbox")
    assert boxes.count() == 2
    assert all(boxes.nth(i).is_disabled() and boxes.nth(i).is_checked() for i in range(2))
    screenshot(page, "wizard-regulations")
    page.get_by_test_id("wizard-next").click()
    page.get_by_test_id("wizard-next").click()  # Modules, as in the backup

    # Step 4: confirm; without a new logo, the backup's is used.
    summary = page.get_by_test_id("wizard-summary").inner_text()
    assert "The logo from the backup" in summary and "acme-restored" in summary
    screenshot(page, "wizard-confirm")
    page.get_by_test_id("wizard-create").click()
    page.get_by_text("The organization is being created from the backup.").wait_for()
    restore = Restore.objects.get(kind=Restore.Kind.NEW_ORGANIZATION)
    assert not om.Organization.objects.filter(slug="acme-restored").exists()  # not before the worker ran
    run_worker_while(page, restore.pk)
    page.goto(restore.get_absolute_url())
    assert page.get_by_test_id("restore-status").inner_text() == "Completed"
    assert page.get_by_test_id("new-organization").inner_text() == "Acme Legal (restored)"
    screenshot(page, "wizard-completed")
    new = om.Organization.objects.get(slug="acme-restored")
    assert logical_snapshot(new) == source
    assert om.Organization.objects.count() == organization_count + 1

    # A failure after the organization was created leaves no organization behind.
    wizard_to_confirm(page, backup.pk, "Doomed", "doomed")
    page.get_by_test_id("wizard-create").click()
    page.get_by_text("The organization is being created from the backup.").wait_for()
    failing = Restore.objects.filter(kind=Restore.Kind.NEW_ORGANIZATION).latest("pk")

    def checkpoint(stage: str, **info: Any) -> None:
        if stage == "after_create":
            assert om.Organization.objects.filter(slug="doomed").exists()  # created...
            raise RuntimeError("injected failure after creation")

    monkeypatch.setattr(engine, "checkpoint", checkpoint)
    run_worker_while(page, failing.pk)
    page.goto(failing.get_absolute_url())
    assert page.get_by_test_id("restore-status").inner_text() == "Failed"
    assert "No organization was created." in page.get_by_test_id("restore-result").inner_text()
    screenshot(page, "wizard-failed")
    assert not om.Organization.objects.filter(slug="doomed").exists()  # ...and rolled back
    assert om.Organization.objects.count() == organization_count + 1
    assert page.js_errors == []
