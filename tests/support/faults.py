"""Helpers of the fault tests on the real stack (``tests/e2e/test_faults.py``,
``tests/e2e/test_faults_resources.py``): requesting and waiting for backups and restores through
the web and the workers, the bucket checked against the rows, holding a job in the middle (the
evidence first, then SIGSTOP), and the database's open write transactions.
"""

from __future__ import annotations

import html
import io
import os
import re
import time
from typing import Any, NamedTuple

import pytest
from django.core.files.storage import default_storage
from django.db import connection

from backups.archive import ArchiveReader
from backups.models import Backup, BackupEvent
from backups.snapshot import logical_snapshot
from organizations import models as om
from restores.models import Restore, RestoreUpload
from tests.backups.conftest import add_document
from tests.factories import DEMO_PASSWORD
from tests.restores.conftest import db_state, make_backup
from tests.support.mail import text_of
from tests.support.stack import Stack
from tests.support.web import WebClient

KIB = 1024
MIB = 1024 * KIB


def refreshed(model: Any, pk: int, *states: str) -> Any:
    obj = model.objects.get(pk=pk)
    return obj if obj.status in states else None


def request_backup(web: WebClient, label: str) -> tuple[Backup, str]:
    """The Request Backup dialog submitted as offered (the generated password copied); the
    backup is queued, not waited for."""
    dialog = web.get("/backups/request/")
    password = re.search(r'id="generated-password" value="([^"]+)"', dialog.text).group(1)  # type: ignore[union-attr]
    page = web.submit(web.form(dialog, 'id="request-form"'), expect=200, label=label)
    assert f"Backup “{label}” requested" in page.text
    return Backup.objects.get(label=label), password


def shown_reason(page: str) -> str:
    """The failure reason as the backup's detail page shows it."""
    match = re.search(r'data-testid="failure-reason"[^>]*>(.*?)</div>', page, re.S)
    assert match, "the detail page shows no failure reason"
    return html.unescape(re.sub(r"<[^>]+>", "", match.group(1))).strip()


def wait_backup(stack: Stack, backup: Backup, timeout: float = 90) -> Backup:
    done = stack.wait(
        lambda: refreshed(Backup, backup.pk, Backup.Status.COMPLETED, Backup.Status.FAILED),
        timeout,
        f"backup {backup.pk} to finish",
    )
    return done  # type: ignore[no-any-return]


def restore_with_code(stack: Stack, web: WebClient, backup: Backup, owner_email: str) -> Restore:
    """Ask for a code, read it from the Owner's mail, confirm it (the restore is then queued)."""
    sent = len(stack.smtp.matching("Restore code for", to=owner_email))
    start = web.get(f"/restores/backup/{backup.pk}/")
    page = web.submit(web.form(start, 'data-testid="send-code"'), expect=200)
    assert "A code was sent to the Owner." in page.text
    stack.wait(lambda: len(stack.smtp.matching("Restore code for", to=owner_email)) > sent, 20, "the code mail")
    mail = stack.smtp.matching("Restore code for", to=owner_email)[-1]
    code = re.search(r"^\s+(\d{8})\s*$", text_of(mail), re.MULTILINE).group(1)  # type: ignore[union-attr]
    restore = Restore.objects.get(backup=backup, status=Restore.Status.AWAITING_CODE)
    page = web.submit(web.form(page, f"/restores/{restore.pk}/confirm/"), expect=200, code=code, password=DEMO_PASSWORD)
    assert "Code accepted." in page.text
    return restore


def wait_restore(stack: Stack, restore: Restore, timeout: float = 90) -> Restore:
    done = stack.wait(
        lambda: refreshed(Restore, restore.pk, Restore.Status.COMPLETED, Restore.Status.FAILED),
        timeout,
        f"restore {restore.pk} to finish",
    )
    return done  # type: ignore[no-any-return]


def referenced_files() -> set[str]:
    """Every stored file a row points at: documents, logos, archives, uploaded backups."""
    names = set(om.DocumentVersion.objects.values_list("file", flat=True))
    names |= set(om.Organization.objects.exclude(logo="").values_list("logo", flat=True))
    names |= set(Backup.objects.exclude(file="").values_list("file", flat=True))
    names |= set(RestoreUpload.objects.exclude(file="").values_list("file", flat=True))
    return names


def assert_bucket_consistent(stack: Stack) -> None:
    """Nothing lost, nothing orphaned: the bucket holds exactly the files rows point at, and no
    unfinished multipart upload (whose parts no object delete removes)."""
    stored, wanted = stack.object_keys(), referenced_files()
    assert stored - wanted == set(), f"orphan objects: {sorted(stored - wanted)}"
    assert wanted - stored == set(), f"files lost: {sorted(wanted - stored)}"
    assert stack.unfinished_uploads() == []


def uploaded_parts(stack: Stack, key: str) -> int:
    client = stack.s3_client()
    for upload in client.list_multipart_uploads(Bucket=stack.bucket).get("Uploads", []):
        if upload["Key"] == key:
            parts = client.list_parts(Bucket=stack.bucket, Key=key, UploadId=upload["UploadId"])
            return len(parts.get("Parts", []))
    return 0


def wait_task(stack: Stack, worker: str, task: str) -> None:
    """Until the worker has finished running ``task`` (stopping it earlier would kill the task:
    the stop signal reaches the pool's processes too)."""
    done = re.compile(rf"Task {re.escape(task)}\[[0-9a-f-]+\] (succeeded|raised|failed)")
    stack.wait(lambda: done.search(stack.processes[worker].log.read_text(errors="replace")), 60, f"{task} to finish")


def without_maintenance(state: dict[str, Any]) -> dict[str, Any]:
    """``db_state`` without the organization's maintenance flag (on while a restore runs)."""
    profile = {k: v for k, v in state["organization"].items() if k != "maintenance_reason"}
    return {**state, "organization": profile}


def open_write_transactions() -> list[tuple[int, str]]:
    """Other sessions of this database inside a transaction that has written (or locked) rows:
    (pid, state). The test process's own session is left out."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid, state FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND backend_xid IS NOT NULL"
        )
        return list(cursor.fetchall())


def events(backup: Backup) -> list[str]:
    return list(BackupEvent.objects.filter(backup=backup).order_by("created_at", "pk").values_list("status", flat=True))


def archive_of(backup: Backup, password: str) -> dict[str, Any]:
    """The stored archive, opened with the password: every member decrypts and matches its hash."""
    with default_storage.open(backup.file.name, "rb") as fh:
        body = fh.read()
    assert len(body) == backup.size
    return ArchiveReader(io.BytesIO(body), password).verify()  # type: ignore[no-any-return]


def snapshot(org: om.Organization) -> dict[str, list[str]]:
    """``logical_snapshot`` of the organization as the database holds it now (a restore gives it
    a new logo file and deletes the old one: a stale instance would name the deleted file)."""
    org.refresh_from_db()
    return logical_snapshot(org)


def listed_documents(org: om.Organization) -> int:
    """Versions the request dialog's defaults back up (inactive documents left out)."""
    return om.ControlledDocument.objects.filter(organization=org).exclude(status="inactive").count()


def hold_after_first_part(stack: Stack, backup: Backup, worker: str) -> str:
    """Freeze ``worker`` once the archive's multipart upload has a part; return its key.

    The first part and the end of the upload can be a second apart: rather than race them, the
    worker is frozen once it writes and let run in 50 ms steps until a part is stored."""

    def writing() -> Backup | None:
        b = Backup.objects.get(pk=backup.pk)
        return b if b.status == Backup.Status.IN_PROGRESS and b.file else None

    key = stack.wait(writing, 60, "the worker to start writing the archive").file.name
    stack.pause(worker)
    for _ in range(600):
        if uploaded_parts(stack, key) >= 1:
            return key
        stack.resume(worker)
        time.sleep(0.05)
        stack.pause(worker)
    pytest.fail(f"no part of the archive was uploaded\n{stack.logs()}")


def _restore_setup(stack: Stack, tenant: Any) -> tuple[Backup, dict[str, Any], WebClient]:
    """A completed full backup of a tenant whose import takes a while (40 files of 256 KiB), then changes
    the restore would take back. Returns the backup, the state at backup time and the Owner's
    client."""
    org = tenant.org
    for i in range(40):
        add_document(org, tenant.ou_a, f"BULK-{i:02d}", content=os.urandom(256 * KIB))
    backup = make_backup(org, tenant.owner)
    at_backup = snapshot(org)
    om.Template.objects.create(organization=org, name="Written after the backup")
    # The bulk documents removed since, files and all: the scope-exact restore stores only the
    # files of rows it re-creates or changes, so these make its import store files.
    bulk = om.DocumentVersion.objects.filter(document__organization=org, document__reference__startswith="BULK-")
    names = list(bulk.values_list("file", flat=True))
    om.ControlledDocument.objects.filter(organization=org, reference__startswith="BULK-").delete()
    for name in names:
        default_storage.delete(name)
    owner = stack.client()
    owner.login(tenant.owner.email, DEMO_PASSWORD)
    return backup, at_backup, owner


def _hold_mid_import(stack: Stack, restore: Restore, worker: str) -> None:
    """Wait until the restore's import is under way (pre-restore backup done, its transaction
    open, document files stored), then freeze the worker there."""
    documents = stack.object_keys("documents/")

    def importing() -> bool:
        current = Restore.objects.get(pk=restore.pk)
        if current.status != Restore.Status.RUNNING or current.pre_restore_backup_id is None:
            return False
        return bool(stack.object_keys("documents/") - documents) and bool(open_write_transactions())

    stack.wait(importing, 90, "the restore's import to be under way")
    stack.pause(worker)
    assert open_write_transactions(), "the restore's transaction must be open"
    assert Restore.objects.get(pk=restore.pk).status == Restore.Status.RUNNING


class HeldRestore(NamedTuple):
    """An in-place restore frozen mid-import, with what the test compares against."""

    backup: Backup
    at_backup: dict[str, Any]  # the organization as the backup holds it
    owner: WebClient
    before: dict[str, Any]  # the organization just before the restore: snapshot ...
    before_rows: dict[str, Any]  # ... and every row
    restore: Restore


def restore_held_mid_import(stack: Stack, tenant: Any, worker: str) -> HeldRestore:
    """Start ``worker``, make the backup, confirm an in-place restore with the emailed code and
    freeze the worker in the middle of its import."""
    started = stack.start_worker(worker, wait=False)
    backup, at_backup, owner = _restore_setup(stack, tenant)
    before, before_rows = snapshot(tenant.org), db_state(tenant.org)
    started.wait_ready()
    restore = restore_with_code(stack, owner, backup, tenant.owner.email)
    _hold_mid_import(stack, restore, worker)
    return HeldRestore(backup, at_backup, owner, before, before_rows, restore)
