"""Faults of the resources a job uses, survived on the real stack: each test breaks one while
a job runs, proves that nothing was lost or half written, and that the way forward succeeds
(what is checked, and how a job is held in the middle: ``test_faults.py``, which breaks the
processes; the helpers of both: ``tests/support/faults.py``).

* the worker's PostgreSQL connection terminated in the middle of a restore's import;
* the store cut off from the app in the middle of an archive's upload (and a request made
  while it is unreachable);
* the disk (a small tmpfs) filling while a worker writes an archive to local storage.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from django.core.files.storage import default_storage
from django.db import connection
from django.utils.functional import empty

from backups.archive import ArchiveReader
from backups.models import Backup
from restores.models import Restore
from tests import factories as f
from tests.backups.conftest import add_document, tenant  # noqa: F401 - fixture
from tests.factories import DEMO_PASSWORD
from tests.restores.conftest import db_state
from tests.support.faults import (
    KIB,
    MIB,
    archive_of,
    assert_bucket_consistent,
    events,
    hold_after_first_part,
    listed_documents,
    open_write_transactions,
    referenced_files,
    request_backup,
    restore_held_mid_import,
    restore_with_code,
    shown_reason,
    snapshot,
    wait_backup,
    wait_restore,
)
from tests.support.net import StorageLink
from tests.support.procs import skip_or_fail
from tests.support.stack import Stack
from tests.support.web import text_by_testid

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


# --------------------------------------------------------- 4. database connection dropped


def test_database_connection_dropped_mid_restore_changes_nothing_and_a_retry_completes(stack: Stack, tenant) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    org = tenant.org
    backup, at_backup, owner, before, before_rows, restore = restore_held_mid_import(stack, tenant, "worker-1")
    # The restore's session goes, as when PostgreSQL restarts or a proxy cuts the connection.
    victims = open_write_transactions()
    with connection.cursor() as cursor:
        for pid, _state in victims:
            cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
    stack.wait(lambda: not open_write_transactions(), 30, "the terminated session to end")
    stack.resume("worker-1")

    failed = wait_restore(stack, restore, 60)
    assert failed.status == Restore.Status.FAILED, stack.logs()
    # Recorded by the task on a new connection, naming the database.
    assert failed.failure_reason.startswith("The database connection was lost during the restore")
    org.refresh_from_db()
    assert org.maintenance_since is None and org.maintenance_reason == ""
    assert db_state(org) == before_rows
    assert snapshot(org) == before
    assert_bucket_consistent(stack)  # the files the import had stored were removed
    page = owner.get(f"/restores/{restore.pk}/")
    assert "Nothing was changed." in text_by_testid(page.text, "restore-result")

    # The same worker (its connection opened anew) runs the retry to completion.
    again = wait_restore(stack, restore_with_code(stack, owner, backup, tenant.owner.email))
    assert again.status == Restore.Status.COMPLETED, f"{again.failure_reason}\n{stack.logs()}"
    assert snapshot(org) == at_backup
    assert_bucket_consistent(stack)


# ------------------------------------------------------------------ 5. storage unavailable


@pytest.fixture
def link(stack: Stack) -> Iterator[StorageLink]:
    proxy = StorageLink(stack.s3_port)
    try:
        yield proxy
    finally:
        with contextlib.suppress(OSError):
            proxy.cut()


def test_storage_lost_mid_upload_fails_the_backup_and_leaves_nothing_once_back(stack: Stack, link, tenant) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    org = tenant.org
    # The web and the worker reach the store through the link; this test looks at it directly.
    stack.stop("web")
    stack.start_web(AWS_S3_ENDPOINT_URL=link.url)
    worker = stack.start_worker("worker-1", env_changes={"AWS_S3_ENDPOINT_URL": link.url}, wait=False)
    stack.start_beat()  # runs the database queue (the operator's retry)
    for i in range(12):
        add_document(org, tenant.ou_a, f"BIG-{i:02d}", content=os.urandom(MIB))
    worker.wait_ready()
    owner = stack.client()
    owner.login(tenant.owner.email, DEMO_PASSWORD)
    backup, password = request_backup(owner, "Cut off mid-upload")

    key = hold_after_first_part(stack, backup, "worker-1")
    assert key in stack.unfinished_uploads() and key not in stack.object_keys()
    link.cut()
    stack.resume("worker-1")
    failed = wait_backup(stack, backup, 60)
    assert failed.status == Backup.Status.FAILED, stack.logs()
    reason = shown_reason(owner.get(f"/backups/{backup.pk}/").text)
    assert "Storage error: the file storage could not be reached" in reason, reason
    assert str(link.port) not in reason and stack.bucket not in reason, "the reason leaks the store's address"
    assert failed.completed_at is None and not failed.sha256 and not failed.size
    assert events(failed) == ["pending", "in_progress", "failed"]

    # While the store is down the web answers, and says what is wrong.
    assert owner.get("/backups/").status_code == 200
    health = requests.get(f"{stack.base_url}/health/", timeout=30)
    assert health.status_code == 503
    checks = health.json()["checks"]
    assert not checks["storage"]["ok"] and checks["database"]["ok"] and checks["broker"]["ok"]
    during, _ = request_backup(owner, "While the store is down")
    during = wait_backup(stack, during, 60)
    assert during.status == Backup.Status.FAILED and "Storage error" in during.failure_reason
    # The parts already uploaded could not be removed while the store was unreachable: the
    # failed backup keeps the name, for the sweep.
    assert stack.unfinished_uploads() == [key]
    assert Backup.objects.get(pk=backup.pk).file.name == key

    link.restore()
    stack.send("backups.tasks.sweep_stale")  # as beat does every few minutes
    stack.wait(
        lambda: not Backup.objects.filter(status=Backup.Status.FAILED).exclude(file="").exists(),
        60,
        "the sweep to remove what the failed uploads left",
    )
    assert_bucket_consistent(stack)

    # The operator's retry (Django admin action): same scope, same password.
    operator = f.UserFactory(email="ops@platform.test", is_staff=True, is_superuser=True)
    admin = stack.client()
    admin.login(operator.email, DEMO_PASSWORD)
    changelist = admin.get("/admin/backups/backup/?status__exact=failed")
    page = admin.submit(
        admin.form(changelist, 'id="changelist-form"'), expect=200, action="retry_failed", _selected_action=backup.pk
    )
    assert "1 backup(s) queued again." in page.text
    retry = Backup.objects.exclude(pk__in=[backup.pk, during.pk]).get(organization=org)
    done = wait_backup(stack, retry)
    assert done.status == Backup.Status.COMPLETED, f"{done.failure_reason}\n{stack.logs()}"
    assert done.attempts == 1 and events(done) == ["pending", "in_progress", "completed"]
    assert stack.object_keys("backups/") == {done.file.name}
    assert_bucket_consistent(stack)
    # The password the user copied for the failed request opens the retried archive.
    location = owner.get(f"/backups/{done.pk}/download/", follow=False, expect=302).headers["Location"]
    body = requests.get(location, timeout=60).content
    manifest = ArchiveReader(io.BytesIO(body), password).verify()
    assert manifest["row_counts"]["documents"]["document"] == listed_documents(org)


# ------------------------------------------------------------------------- 6. disk filling


@pytest.fixture
def small_disk(stack: Stack, settings, tmp_path: Path) -> Iterator[Path]:  # type: ignore[no-untyped-def]
    """Local storage (no S3) on a 1 MiB tmpfs, used by this process and by workers given it."""
    media = tmp_path / "small-disk"
    media.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m,mode=0755", "tmpfs", str(media)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        skip_or_fail(f"cannot mount a tmpfs for the disk-full test (needs root): {mounted.stderr.strip()}")
    try:
        settings.MEDIA_ROOT = str(media)
        settings.STORAGES = {
            **settings.STORAGES,
            "default": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(media)}},
        }
        default_storage._wrapped = empty
        yield media
    finally:
        stack.stop_all()  # nothing may hold a file on it
        subprocess.run(["umount", "--lazy", str(media)], check=False)


def _files_under(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def test_disk_filling_while_writing_fails_the_backup_and_leaves_no_file(stack: Stack, small_disk: Path, tenant) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    org = tenant.org
    for i in range(6):  # 768 KiB of incompressible files on a 1 MiB disk: the archive cannot fit
        add_document(org, tenant.ou_a, f"FILL-{i}", content=os.urandom(128 * KIB))
    tenant_files = _files_under(small_disk)
    assert tenant_files == referenced_files()
    used = shutil.disk_usage(small_disk).used
    local = {"AWS_STORAGE_BUCKET_NAME": None, "MEDIA_ROOT": str(small_disk)}
    stack.start_worker("local-worker", env_changes=local)
    owner = stack.client()
    owner.login(tenant.owner.email, DEMO_PASSWORD)

    backup, _ = request_backup(owner, "Too big for the disk")
    failed = wait_backup(stack, backup, 60)
    assert failed.status == Backup.Status.FAILED, stack.logs()
    reason = shown_reason(owner.get(f"/backups/{backup.pk}/").text)
    assert "Storage error: the file storage is full (No space left on device)" in reason, reason
    assert not failed.file and failed.completed_at is None and not failed.sha256 and not failed.size
    assert events(failed) == ["pending", "in_progress", "failed"]
    assert not Backup.objects.filter(status=Backup.Status.COMPLETED).exists()
    assert _files_under(small_disk) == tenant_files, "the partial archive must be removed"
    assert shutil.disk_usage(small_disk).used == used

    # Space is added (the volume grown in place); a new request completes.
    subprocess.run(["mount", "-o", "remount,size=8m", str(small_disk)], check=True)
    again, password = request_backup(owner, "After growing the disk")
    again = wait_backup(stack, again)
    assert again.status == Backup.Status.COMPLETED, f"{again.failure_reason}\n{stack.logs()}"
    assert _files_under(small_disk) == tenant_files | {again.file.name}
    assert (small_disk / again.file.name).stat().st_size == again.size
    manifest = archive_of(again, password)
    assert manifest["row_counts"]["documents"]["document"] == listed_documents(org)
