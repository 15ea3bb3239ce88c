"""End to end on real services: what users do, through gunicorn in production mode, with real
Celery workers on Redis, archives in S3 over HTTP and mail read from an SMTP server.

* request → queue → complete → email → download (presigned) → open with the password;
* in-place restore with the code the Owner received by email;
* wizard restore into a new organization, from an uploaded file;
* schedules and expiry, with the workers' clock moved forward.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import re
from typing import Any

import pytest
import requests
from django.utils import timezone

from backups.archive import ArchiveReader
from backups.models import Backup, BackupSchedule
from backups.snapshot import logical_snapshot
from organizations import models as om
from restores.models import Restore
from tests import factories as f
from tests.backups.conftest import add_document, tenant  # noqa: F401 - fixture
from tests.factories import DEMO_PASSWORD
from tests.support.mail import text_of
from tests.support.stack import Stack
from tests.support.web import WebClient, text_by_testid

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

DAY = 24 * 3600


def finished(model: Any, pk: int, *states: str) -> Any:
    obj = model.objects.get(pk=pk)
    return obj if obj.status in states else None


def request_backup(stack: Stack, web: WebClient, label: str, **choices: Any) -> tuple[Backup, str]:
    """The Request Backup dialog, submitted with the system-generated password the user copied
    (and ``choices`` changed from the dialog's defaults)."""
    dialog = web.get("/backups/request/")
    password = re.search(r'id="generated-password" value="([^"]+)"', dialog.text).group(1)  # type: ignore[union-attr]
    form = web.form(dialog, 'id="request-form"')
    page = web.submit(form, expect=200, label=label, **choices)
    assert f"Backup “{label}” requested" in page.text
    backup = Backup.objects.get(label=label)
    done = stack.wait(
        lambda: finished(Backup, backup.pk, Backup.Status.COMPLETED, Backup.Status.FAILED), 120, f"backup {label}"
    )
    assert done.status == Backup.Status.COMPLETED, f"{done.failure_reason}\n{stack.logs()}"
    return done, password


def download(stack: Stack, web: WebClient, backup: Backup) -> bytes:
    """The Download button: a redirect to a presigned S3 URL, fetched without the session."""
    response = web.get(f"/backups/{backup.pk}/download/", follow=False, expect=302)
    location = response.headers["Location"]
    assert location.startswith(stack.s3_endpoint + "/" + stack.bucket + "/backups/")
    assert "X-Amz-Expires=300" in location and "X-Amz-Signature=" in location
    body = requests.get(location, timeout=60).content
    assert len(body) == backup.size
    return body


def test_request_queue_complete_email_download_and_open(stack: Stack, tenant) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    stack.start_worker("worker-1")
    stack.start_worker("worker-2")
    stack.start_beat()
    # A load balancer's probe, over plain HTTP and without a session: every peer answers.
    health = requests.get(stack.base_url + "/health/", timeout=30)
    assert health.status_code == 200, health.text
    assert all(health.json()["checks"][name]["ok"] for name in ("database", "broker", "storage")), health.text
    web = stack.client()
    web.login(tenant.owner.email, DEMO_PASSWORD)
    assert "Strict-Transport-Security" in web.get("/backups/").headers

    backup, password = request_backup(stack, web, "End to end")
    assert backup.attempts == 1
    assert stack.object_keys("backups/") == {backup.file.name}

    mail = stack.smtp.wait_for("Backup completed: End to end", to=tenant.owner.email)
    link = re.search(r"Open it: (\S+)", text_of(mail)).group(1)  # type: ignore[union-attr]
    assert link == f"{stack.base_url}/backups/{backup.pk}/"
    assert password not in mail.as_string()
    detail = web.get(link.removeprefix(stack.base_url))
    assert text_by_testid(detail.text, "status-badge") == "Completed"

    body = download(stack, web, backup)
    reader = ArchiveReader(io.BytesIO(body), password)
    manifest = reader.verify()  # every member decrypts and matches the manifest's SHA-256
    assert manifest["organization"]["name"] == tenant.org.name
    versions = [json.loads(line) for line in reader.read_bytes("data/documents/document_version.jsonl").splitlines()]
    assert {v["id"] for v in versions} == set(
        # The dialog's defaults: inactive controlled documents left out.
        om.DocumentVersion.objects.filter(document__organization=tenant.org)
        .exclude(document__status="inactive")
        .values_list("pk", flat=True)
    )
    from django.core.files.storage import default_storage

    for row in versions:
        with default_storage.open(om.DocumentVersion.objects.get(pk=row["id"]).file.name, "rb") as original:
            assert reader.read_bytes(row["file"]["member"]) == original.read()
    with pytest.raises(Exception, match=r"(?i)password"):
        ArchiveReader(io.BytesIO(body), "not-the-password").verify()

    history = web.get(f"/backups/{backup.pk}/history/")
    assert tenant.owner.email in history.text


def test_in_place_restore_with_the_emailed_code(stack: Stack, tenant) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    stack.start_worker("worker-1")
    stack.start_beat()
    for ou in (tenant.ou_a, tenant.ou_b):  # the Admin may see (so restore) whole-organization backups
        f.OURoleAssignmentFactory(user=tenant.admin, ou=ou)
    owner = stack.client()
    owner.login(tenant.owner.email, DEMO_PASSWORD)
    backup, _ = request_backup(stack, owner, "Before the mistake", include_inactive="on")
    at_backup = logical_snapshot(tenant.org)
    # Work done after the backup, which the restore takes back.
    om.Template.objects.create(organization=tenant.org, name="Written after the backup")
    add_document(tenant.org, tenant.ou_a, "LATE-1")
    assert logical_snapshot(tenant.org) != at_backup

    admin = stack.client()
    admin.login(tenant.admin.email, DEMO_PASSWORD)
    start = admin.get(f"/restores/backup/{backup.pk}/")
    page = admin.submit(admin.form(start, 'data-testid="send-code"'), expect=200)
    assert "A code was sent to the Owner." in page.text
    mail = stack.smtp.wait_for("Restore code for", to=tenant.owner.email)
    code = re.search(r"^\s+(\d{8})\s*$", text_of(mail), re.MULTILINE).group(1)  # type: ignore[union-attr]
    assert code not in page.text
    assert not stack.smtp.matching("Restore code for", to=tenant.admin.email)

    restore = Restore.objects.get(backup=backup)
    confirm = admin.form(page, f"/restores/{restore.pk}/confirm/")
    page = admin.submit(confirm, expect=200, code=code, password=DEMO_PASSWORD)
    assert "Code accepted." in page.text
    done = stack.wait(
        lambda: finished(Restore, restore.pk, Restore.Status.COMPLETED, Restore.Status.FAILED), 180, "restore"
    )
    assert done.status == Restore.Status.COMPLETED, f"{done.failure_reason}\n{stack.logs()}"
    tenant.org.refresh_from_db()  # the restore replaced the logo file (the old one is deleted)
    assert logical_snapshot(tenant.org) == at_backup
    stack.smtp.wait_for("Restore completed:", timeout=20)
    # The safety backup taken just before the restore is a real, downloadable archive.
    safety = Backup.objects.filter(organization=tenant.org).exclude(pk=backup.pk).get()
    assert safety.status == Backup.Status.COMPLETED and safety.file.name in stack.object_keys("backups/")
    assert text_by_testid(admin.get(f"/restores/{restore.pk}/").text, "restore-status") == "Completed"


def test_wizard_restore_from_an_uploaded_file(stack: Stack, tenant) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    stack.start_worker("worker-1")
    stack.start_beat()
    owner = stack.client()
    owner.login(tenant.owner.email, DEMO_PASSWORD)
    backup, password = request_backup(stack, owner, "To move", include_inactive="on")
    body = download(stack, owner, backup)
    source = logical_snapshot(tenant.org)
    organizations = om.Organization.objects.count()

    admin = stack.client()
    admin.login(tenant.site_admin.email, DEMO_PASSWORD)
    admin.get("/restores/wizard/?new=1")
    upload = admin.get("/restores/wizard/upload/")
    profile = admin.submit(
        admin.form(upload, 'enctype="multipart/form-data"'),
        expect=200,
        files={"file": ("acme-backup.zip", body, "application/zip")},
        password=password,
    )
    assert "The file was verified: every check and hash passed." in profile.text
    # The uploaded file went to the S3 store, not to the web server's disk.
    assert any(key.startswith("restore-uploads/") for key in stack.object_keys())
    step = admin.submit(
        admin.form(profile, 'enctype="multipart/form-data"'), expect=200, name="Acme (moved)", slug="acme-moved"
    )
    # Address, contact, structure (read-only), regulations (read-only), modules: as pre-filled.
    for title in ("Address", "Contact", "Structure", "Regulations", "Modules"):
        assert text_by_testid(step.text, "wizard-step-title") == title
        step = admin.submit(admin.form(step, 'data-testid="wizard-next"'), expect=200)
    confirm = step
    assert "Acme (moved)" in text_by_testid(confirm.text, "wizard-summary") or "Acme (moved)" in confirm.text
    page = admin.submit(admin.form(confirm, 'data-testid="wizard-create"'), expect=200)
    assert "The organization is being created from the backup." in page.text

    restore = Restore.objects.get(kind=Restore.Kind.NEW_ORGANIZATION)
    done = stack.wait(
        lambda: finished(Restore, restore.pk, Restore.Status.COMPLETED, Restore.Status.FAILED), 120, "wizard restore"
    )
    assert done.status == Restore.Status.COMPLETED, f"{done.failure_reason}\n{stack.logs()}"
    new = om.Organization.objects.get(slug="acme-moved")
    assert new.name == "Acme (moved)"
    assert logical_snapshot(new) == source
    assert om.Organization.objects.count() == organizations + 1
    # The new organization's document files are real objects in the store, byte for byte.
    from django.core.files.storage import default_storage

    for version in om.DocumentVersion.objects.filter(document__organization=new):
        assert version.file.name in stack.object_keys("documents/")
        with default_storage.open(version.file.name, "rb") as copy:
            assert hashlib.sha256(copy.read()).hexdigest() == version.sha256


def test_schedules_and_expiry_with_the_clock_moved(stack: Stack, tenant) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    owner = stack.client()
    owner.login(tenant.owner.email, DEMO_PASSWORD)
    new = owner.get("/backups/schedules/new/")
    page = owner.submit(
        owner.form(new, "data-schedule-form"),
        expect=200,
        name="Nightly",
        frequency="daily",
        time_of_day="02:00",
        keep_last=2,
    )
    assert "Nightly" in page.text
    schedule = BackupSchedule.objects.get(organization=tenant.org)
    assert schedule.next_run_at is not None
    first_run = schedule.next_run_at

    def day(n: int) -> float:
        """Seconds from now to a minute after the n-th run of the schedule (n = 0: the first)."""
        return (first_run - timezone.now()).total_seconds() + n * DAY + 60

    # Three nights pass: each night beat's run_schedules reaches a worker living that night.
    made: list[Backup] = []
    for night in range(3):
        worker = stack.start_worker(f"night-{night}", clock_shift=day(night))
        stack.send("backups.tasks.run_schedules")
        backup = stack.wait(
            lambda: (
                Backup.objects.filter(schedule=schedule, status=Backup.Status.COMPLETED)
                .exclude(pk__in=[b.pk for b in made])
                .first()
            ),
            90,
            f"the scheduled backup of night {night}",
        )
        made.append(backup)
        assert backup.kind == Backup.Kind.SCHEDULED and backup.requested_by is None
        assert abs((backup.completed_at - (first_run + dt.timedelta(days=night))).total_seconds()) < 600
        # Named after the schedule and the night; its creator is told, by mail over SMTP.
        assert re.fullmatch(r"Nightly · \d{1,2} [A-Z][a-z]{2} \d{4}", backup.label), backup.label
        mail = stack.smtp.wait_for(f"Backup completed: {backup.label}", to=tenant.owner.email)
        assert 'Made by the schedule "Nightly"' in text_of(mail)
        stack.stop(worker.name)
    # keep_last=2: the first night's backup was expired when the third completed.
    for b in made:
        b.refresh_from_db()
    assert [b.status for b in made] == [Backup.Status.EXPIRED, Backup.Status.COMPLETED, Backup.Status.COMPLETED]
    assert stack.object_keys("backups/") == {made[1].file.name, made[2].file.name}

    # Past the download period, the expiry job deletes the files and keeps the records.
    later = (made[2].download_expires_at - timezone.now()).total_seconds() + 120
    stack.start_worker("after-the-download-period", clock_shift=later)
    stack.send("backups.tasks.expire_due")
    stack.wait(
        lambda: not Backup.objects.filter(schedule=schedule, status=Backup.Status.COMPLETED).exists(), 60, "expiry"
    )
    assert stack.object_keys("backups/") == set()
    assert Backup.objects.filter(schedule=schedule, status=Backup.Status.EXPIRED).count() == 3
    listing = owner.get("/backups/?status=expired")
    assert len(re.findall(r'data-testid="status-badge"[^>]*>Expired<', listing.text)) == 3
    gone = owner.get(f"/backups/{made[2].pk}/download/", expect=None, follow=False)
    assert gone.status_code == 410 and "Location" not in gone.headers
