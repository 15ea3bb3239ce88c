"""Faults survived, on the real stack (PostgreSQL, Redis, S3 over HTTP, SMTP, gunicorn, workers).

Each test breaks one thing while a job runs and then proves that nothing was lost or half
written: the organization's rows (``db_state``/``logical_snapshot``), every object in the
bucket against the rows that reference it (no orphan, nothing missing), unfinished multipart
uploads, the job's status, events and attempts; and that the product's way forward (the stale
sweep, a retry, a new request) then succeeds.

Here the processes: a worker or the broker goes.

* a worker SIGKILLed in the middle of an archive's multipart upload;
* a worker SIGKILLed in the middle of an in-place restore's import (its transaction open);
* Redis restarted with backups queued, without and with persistence.

The resources a job uses (the database connection, the store, the disk) are
``test_faults_resources.py``; the helpers of both are ``tests/support/faults.py``.

Holding a job "in the middle" is not left to timing: the test waits for the evidence (the
multipart upload has a part; the restore's transaction is open and it stored files), then
freezes the worker's process group (SIGSTOP) before it breaks something, so the state it
checks cannot move under it.
"""

from __future__ import annotations

import os
import re
import signal
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from accounts.models import Membership
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
    refreshed,
    request_backup,
    restore_held_mid_import,
    restore_with_code,
    shown_reason,
    snapshot,
    wait_backup,
    wait_restore,
    wait_task,
    without_maintenance,
)
from tests.support.procs import database_url
from tests.support.stack import Stack, running_stack
from tests.support.web import text_by_testid

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

STALE = settings.BACKUP_HEARTBEAT_STALE_AFTER.total_seconds()
# Beat sweeps restores every this many seconds; a dead worker's restore is failed by the first
# sweep after its heartbeat went stale, so within STALE + SWEEP_EVERY (at most 15 minutes).
SWEEP_EVERY = settings.CELERY_BEAT_SCHEDULE["restores-sweep-stale"]["schedule"]


# ------------------------------------------------------------------- 1. worker killed, backup


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

    key = hold_after_first_part(stack, backup, "doomed")
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


def test_worker_killed_mid_restore_changes_nothing_and_the_sweep_ends_maintenance(stack: Stack, tenant) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    org = tenant.org
    backup, at_backup, owner, before, before_rows, restore = restore_held_mid_import(stack, tenant, "doomed")
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
