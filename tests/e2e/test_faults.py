"""Faults survived, on the real stack (PostgreSQL, Redis, S3 over HTTP, SMTP, gunicorn, workers).

Each test breaks one thing while a job runs and then proves that nothing was lost or half
written: the organization's rows (``db_state``/``logical_snapshot``), every object in the
bucket against the rows that reference it (no orphan, nothing missing), unfinished multipart
uploads, the job's status, events and attempts; and that the product's way forward (the stale
sweep, a retry, a new request) then succeeds.

* a worker SIGKILLed in the middle of an archive's multipart upload;
* a worker SIGKILLed in the middle of an in-place restore's import (its transaction open);
* Redis restarted with backups queued, without and with persistence;
* the worker's PostgreSQL connection terminated in the middle of a restore's import;
* the store cut off from the app in the middle of an archive's upload (and a request made
  while it is unreachable);
* the disk (a small tmpfs) filling while a worker writes an archive to local storage.

Holding a job "in the middle" is not left to timing: the test waits for the evidence (the
multipart upload has a part; the restore's transaction is open and it stored files), then
freezes the worker's process group (SIGSTOP) before it breaks something, so the state it
checks cannot move under it.
"""

from __future__ import annotations

import contextlib
import html
import io
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest
import requests
from django.conf import settings
from django.core.files.storage import default_storage
from django.db import connection
from django.utils.functional import empty

from accounts.models import Membership
from backups.archive import ArchiveReader
from backups.models import Backup, BackupEvent
from backups.snapshot import logical_snapshot
from organizations import models as om
from restores.models import Restore, RestoreUpload
from tests import factories as f
from tests.backups.conftest import add_document, tenant  # noqa: F401 - fixture
from tests.factories import DEMO_PASSWORD
from tests.restores.conftest import db_state, make_backup
from tests.support.mail import text_of
from tests.support.net import StorageLink
from tests.support.procs import database_url, skip_or_fail
from tests.support.stack import Stack, running_stack
from tests.support.web import WebClient, text_by_testid

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

KIB = 1024
MIB = 1024 * KIB
STALE = settings.BACKUP_HEARTBEAT_STALE_AFTER.total_seconds()
# Beat sweeps restores every this many seconds; a dead worker's restore is failed by the first
# sweep after its heartbeat went stale, so within STALE + SWEEP_EVERY (at most 15 minutes).
SWEEP_EVERY = settings.CELERY_BEAT_SCHEDULE["restores-sweep-stale"]["schedule"]


# ---------------------------------------------------------------------------------- helpers


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


# ------------------------------------------------------------------- 1. worker killed, backup


def _hold_after_first_part(stack: Stack, backup: Backup, worker: str) -> str:
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


def test_worker_killed_mid_upload_is_failed_by_the_sweep_and_leaves_no_object_or_upload(stack: Stack, tenant) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    org = tenant.org
    doomed = stack.start_worker("doomed", wait=False)  # it starts while the files are stored
    for i in range(12):  # 12 MiB of incompressible files: a multipart upload of three parts
        add_document(org, tenant.ou_a, f"BIG-{i:02d}", content=os.urandom(MIB))
    before = snapshot(org)
    doomed.wait_ready()
    owner = stack.client()
    owner.login(tenant.owner.email, DEMO_PASSWORD)
    backup, _ = request_backup(owner, "Killed mid-way")

    key = _hold_after_first_part(stack, backup, "doomed")
    assert Backup.objects.get(pk=backup.pk).status == Backup.Status.IN_PROGRESS
    assert key in stack.unfinished_uploads() and key not in stack.object_keys()
    stack.stop("doomed", signal.SIGKILL)

    # Dead worker: the job stays in progress, its upload unfinished, until the sweep.
    backup.refresh_from_db()
    assert backup.status == Backup.Status.IN_PROGRESS and backup.attempts == 1
    assert stack.unfinished_uploads() == [key]
    # Beat's stale sweep reaching a worker that lives past BACKUP_HEARTBEAT_STALE_AFTER.
    stack.start_worker("sweeper", clock_shift=STALE + 120)
    stack.send("backups.tasks.sweep_stale")
    failed = stack.wait(lambda: refreshed(Backup, backup.pk, Backup.Status.FAILED), 60, "the sweep")
    wait_task(stack, "sweeper", "backups.tasks.sweep_stale")
    fresh = stack.start_worker("fresh", wait=False)  # a worker on today's clock, for what follows
    stack.stop("sweeper")
    assert "stopped responding" in failed.failure_reason
    assert not failed.file and failed.completed_at is None and not failed.sha256
    assert events(failed) == ["pending", "in_progress", "failed"]
    assert stack.object_keys("backups/") == set()
    assert_bucket_consistent(stack)  # the multipart upload was aborted, not only the object deleted
    page = owner.get(f"/backups/{backup.pk}/")
    assert "stopped responding" in shown_reason(page.text)

    # A new request completes, and its archive is the only one.
    fresh.wait_ready()
    again, password = request_backup(owner, "After the crash")
    again = wait_backup(stack, again)
    assert again.status == Backup.Status.COMPLETED, f"{again.failure_reason}\n{stack.logs()}"
    assert again.attempts == 1 and events(again) == ["pending", "in_progress", "completed"]
    assert stack.object_keys("backups/") == {again.file.name}
    assert_bucket_consistent(stack)
    manifest = archive_of(again, password)
    assert manifest["row_counts"]["documents"]["document"] == listed_documents(org) == again.document_count
    assert snapshot(org) == before


# ------------------------------------------------------------------ 2. worker killed, restore


def _restore_setup(stack: Stack, tenant: Any) -> tuple[Backup, dict[str, Any], WebClient]:  # noqa: F811
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


def _restore_held_mid_import(stack: Stack, tenant: Any, worker: str) -> HeldRestore:  # noqa: F811
    """Start ``worker``, make the backup, confirm an in-place restore with the emailed code and
    freeze the worker in the middle of its import."""
    started = stack.start_worker(worker, wait=False)
    backup, at_backup, owner = _restore_setup(stack, tenant)
    before, before_rows = snapshot(tenant.org), db_state(tenant.org)
    started.wait_ready()
    restore = restore_with_code(stack, owner, backup, tenant.owner.email)
    _hold_mid_import(stack, restore, worker)
    return HeldRestore(backup, at_backup, owner, before, before_rows, restore)


def test_worker_killed_mid_restore_changes_nothing_and_the_sweep_ends_maintenance(stack: Stack, tenant) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    org = tenant.org
    backup, at_backup, owner, before, before_rows, restore = _restore_held_mid_import(stack, tenant, "doomed")
    stack.stop("doomed", signal.SIGKILL)

    # PostgreSQL rolls the transaction back with the dead connection: the data is as before.
    stack.wait(lambda: not open_write_transactions(), 30, "the dead worker's transaction to end")
    org.refresh_from_db()
    assert org.maintenance_since is not None  # until the sweep: the worker cannot say it died
    assert org.maintenance_reason == f"Restore #{restore.pk}"
    assert without_maintenance(db_state(org)) == without_maintenance(before_rows)
    banner = owner.get("/backups/").text
    assert 'data-testid="maintenance-banner"' in banner and "is being restored from a backup" in banner
    # What the killed import had stored: files no committed row points at, in the restore's folder.
    leftovers = stack.object_keys(f"documents/restore-{restore.pk}/")
    assert leftovers and not leftovers & referenced_files()

    # Beat's first restore sweep after the heartbeat went stale, at most 15 minutes after the kill
    # (before the heartbeat, a restore counted as dead only after the longest a task may run: 6 h).
    assert STALE + SWEEP_EVERY <= 15 * 60
    stack.start_worker("sweeper", clock_shift=STALE + SWEEP_EVERY)
    stack.send("restores.tasks.sweep_stale")
    failed = stack.wait(lambda: refreshed(Restore, restore.pk, Restore.Status.FAILED), 60, "the restore sweep")
    wait_task(stack, "sweeper", "restores.tasks.sweep_stale")
    fresh = stack.start_worker("fresh", wait=False)  # a worker on today's clock, for the retry
    stack.stop("sweeper")
    assert "stopped" in failed.failure_reason and "nothing was changed" in failed.failure_reason
    org.refresh_from_db()
    assert org.maintenance_since is None and org.maintenance_reason == ""
    assert db_state(org) == before_rows
    assert snapshot(org) == before
    assert_bucket_consistent(stack)  # no file of the killed import left behind
    page = owner.get(f"/restores/{restore.pk}/")
    assert "stopped" in text_by_testid(page.text, "restore-result")
    assert "maintenance-banner" not in page.text

    # The restore can be run again, and completes.
    fresh.wait_ready()
    again = wait_restore(stack, restore_with_code(stack, owner, backup, tenant.owner.email))
    assert again.status == Restore.Status.COMPLETED, f"{again.failure_reason}\n{stack.logs()}"
    assert snapshot(org) == at_backup
    org.refresh_from_db()
    assert org.maintenance_since is None
    assert_bucket_consistent(stack)


# --------------------------------------------------------------- 3. Redis restarted, queued


@pytest.mark.parametrize("persistent", [False, True], ids=["messages-lost", "messages-kept"])
def test_redis_restarted_with_backups_queued_loses_none_and_runs_none_twice(  # type: ignore[no-untyped-def]
    transactional_db, tmp_path: Path, settings, static_root: Path, persistent: bool
) -> None:
    """Without persistence the queued messages die with Redis and beat's run of the database
    queue must find every backup; with persistence they survive and beat's run comes on top, so
    every backup is offered twice and the claim must run each once."""
    if connection.vendor != "postgresql":
        pytest.skip("the end-to-end suite runs on PostgreSQL (the PostgreSQL pass of make test)")
    with running_stack(tmp_path, database_url(), static_root, redis_persistent=persistent) as stack:
        stack.use_in_this_process(settings)
        mdv = f.MasterDataVersionFactory()
        requested: list[Backup] = []
        for i in range(4):
            org = f.OrganizationFactory(master_data_version=mdv, name=f"Queued {i}", slug=f"queued-{i}")
            f.SubscriptionFactory(organization=org)
            ou = f.OUFactory(organization=org)
            owner = f.UserFactory(email=f"owner-{i}@queued.test")
            f.MembershipFactory(user=owner, organization=org, role=Membership.Role.OWNER)
            add_document(org, ou, f"Q{i}-1")
            add_document(org, ou, f"Q{i}-2", content=os.urandom(256 * KIB))
            web = stack.client()
            web.login(owner.email, DEMO_PASSWORD)
            requested.append(request_backup(web, f"Queued {i}")[0])
        assert stack.queued() == 4, "the web queued one message per backup (no worker runs yet)"

        stack.stop("redis")
        stack.start_redis()
        assert stack.queued() == (4 if persistent else 0)
        stack.start_beat()
        if persistent:
            # Beat's queue run on top of the surviving messages: each backup is offered twice.
            stack.wait(lambda: stack.queued() > 4, 30, "beat to queue its run of the backup queue")
        workers = [stack.start_worker(f"worker-{n}", wait=False) for n in (1, 2)]
        for worker in workers:
            worker.wait_ready()
        stack.wait(
            lambda: not Backup.objects.filter(pk__in=[b.pk for b in requested]).exclude(status="completed").exists(),
            90,
            "every queued backup to complete",
        )
        stack.stop("beat")
        # Every message delivered and handled, duplicates included, before the runs are counted:
        # the web's four (when they survived) and beat's.
        dispatched = 4 if persistent else 0
        stack.wait(
            lambda: (
                stack.queued() == 0
                and _task_lines(stack, "backups.tasks.run_backup", "received") == dispatched
                and _task_lines(stack, "backups.tasks.process_queue", "received") >= 1
                and _tasks_settled(stack)
            ),
            60,
            "every message to be delivered and handled",
        )
        for worker in workers:
            stack.stop(worker.name)

        backups = list(Backup.objects.filter(pk__in=[b.pk for b in requested]).order_by("pk"))
        assert {b.status for b in backups} == {Backup.Status.COMPLETED}
        assert [b.attempts for b in backups] == [1, 1, 1, 1], "a backup was claimed twice"
        assert [events(b) for b in backups] == [["pending", "in_progress", "completed"]] * 4
        assert stack.object_keys("backups/") == {b.file.name for b in backups}
        assert_bucket_consistent(stack)
        for b in backups:
            assert stack.s3_client().head_object(Bucket=stack.bucket, Key=b.file.name)["ContentLength"] == b.size


_TASK_LINE = re.compile(r"Task (?P<name>[\w.]+)\[(?P<id>[0-9a-f-]+)\] (?P<what>received|succeeded|raised|failed)")


def _task_log(stack: Stack) -> list[re.Match[str]]:
    found: list[re.Match[str]] = []
    for proc in stack.processes.values():
        if proc.name.startswith("worker"):
            found += _TASK_LINE.finditer(proc.log.read_text(errors="replace"))
    return found


def _task_lines(stack: Stack, name: str, what: str) -> int:
    return sum(1 for m in _task_log(stack) if m["name"] == name and m["what"] == what)


def _tasks_settled(stack: Stack) -> bool:
    lines = _task_log(stack)
    received = {m["id"] for m in lines if m["what"] == "received"}
    finished = {m["id"] for m in lines if m["what"] != "received"}
    return received <= finished


# --------------------------------------------------------- 4. database connection dropped


def test_database_connection_dropped_mid_restore_changes_nothing_and_a_retry_completes(stack: Stack, tenant) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    org = tenant.org
    backup, at_backup, owner, before, before_rows, restore = _restore_held_mid_import(stack, tenant, "worker-1")
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

    key = _hold_after_first_part(stack, backup, "worker-1")
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
