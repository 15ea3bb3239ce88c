"""Browse a backup and restore picked records in a real browser: a client deleted with its
matters and a document's latest version come back with the Owner's code read from a real SMTP
server, while a record created after the backup stays."""

from __future__ import annotations

import re
from typing import Any

import pytest

from organizations import models as om
from restores.models import Restore
from restores.tasks import run_restore
from tests.backups.conftest import add_document, tenant  # noqa: F401 - fixtures
from tests.browser.conftest import login, screenshot
from tests.factories import DEMO_PASSWORD
from tests.restores.conftest import _no_dispatch, full_backup  # noqa: F401 - fixtures
from tests.support.mail import Inbox, text_of

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_browse_pick_preview_and_restore_a_client_and_a_document(tenant, full_backup, smtp: Inbox, page: Any) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    matter = om.Matter.objects.get(organization=tenant.org, reference="M-0")
    client = matter.client
    client_pk, client_name = client.pk, client.name
    matter_pks = set(om.Matter.objects.filter(client=client).values_list("pk", flat=True))
    om.TimeEntry.objects.filter(matter__client=client).delete()
    om.Payment.objects.filter(invoice__client=client).delete()
    om.Invoice.objects.filter(client=client).delete()
    om.Matter.objects.filter(client=client).delete()
    om.Client.objects.filter(pk=client_pk).delete()
    doc = om.ControlledDocument.objects.get(organization=tenant.org, reference="A0-1")
    latest = doc.versions.order_by("-number").first()
    latest_pk = latest.pk
    latest.delete()
    created_since = om.Template.objects.create(organization=tenant.org, name="Written after the backup")

    login(page, "admin@acme.test", DEMO_PASSWORD)
    page.get_by_test_id("dashboard-title").wait_for()
    page.goto(full_backup.get_absolute_url())
    page.get_by_test_id("browse").click()
    page.get_by_test_id("browse-content").wait_for()
    screenshot(page, "selective-browse")

    page.get_by_test_id("browse-model-client").click()
    page.get_by_test_id("browse-search").fill(client_name)
    page.get_by_test_id("browse-search-go").click()
    page.get_by_test_id("browse-total").wait_for()
    assert "match" in page.get_by_test_id("browse-total").inner_text()
    page.get_by_role("link", name=client_name, exact=True).click()
    page.get_by_test_id("record-title").wait_for()
    assert "M-0" in page.get_by_test_id("related-matter").inner_text()
    screenshot(page, "selective-record")
    page.get_by_test_id("pick-record").click()
    assert page.get_by_test_id("picked-count").inner_text() == "1"

    page.goto(f"/backups/{full_backup.pk}/browse/document/?q=A0-1")
    page.get_by_test_id("pick").first.check()
    page.get_by_test_id("add-to-selection").click()
    assert page.get_by_test_id("picked-count").inner_text() == "2"
    page.get_by_test_id("preview-restore").click()
    page.get_by_test_id("with-dependants").check()
    page.get_by_test_id("update-preview").click()
    created = page.get_by_test_id("preview-create").inner_text()
    assert client_name in created and "M-0" in created and "A0-1 v2" in created
    assert "Written after the backup" not in page.content()
    screenshot(page, "selective-preview")

    page.get_by_test_id("request-code").click()
    page.get_by_text("The Owner was sent a code.").wait_for()
    mail = smtp.wait_for("Restore code for Acme Legal")
    assert mail["X-Envelope-To"] == "owner@acme.test"
    code = re.search(r"^\s+(\d{8})\s*$", text_of(mail), re.MULTILINE)
    assert code, text_of(mail)
    page.get_by_label("Code from the Owner").fill(code.group(1))
    page.get_by_label("Your password").fill(DEMO_PASSWORD)
    page.get_by_test_id("confirm-restore").click()
    page.get_by_text("Code accepted.").wait_for()
    restore = Restore.objects.get(kind=Restore.Kind.SELECTIVE)
    page.goto("about:blank")  # the live server shares this thread's database connection
    run_restore(restore.pk)

    page.goto(restore.get_absolute_url())
    page.get_by_test_id("restore-status").wait_for()
    assert page.get_by_test_id("restore-status").inner_text() == "Completed"
    assert "The picked records are back" in page.get_by_test_id("restore-result").inner_text()
    screenshot(page, "selective-result")
    assert om.Client.objects.filter(pk=client_pk, name=client_name).exists()
    assert set(om.Matter.objects.filter(client_id=client_pk).values_list("pk", flat=True)) == matter_pks
    assert om.DocumentVersion.objects.filter(pk=latest_pk, document=doc).exists()
    assert om.Template.objects.filter(pk=created_since.pk).exists()
    assert page.js_errors == []
