"""The backup engine with real worker processes: ``celery -A backupsvc worker`` subprocesses that
share the test's database, files and key ring, on a broker of the test's own.

* A worker killed with SIGKILL in the middle of an archive leaves the job in progress; the
  stale sweep fails it and removes the partial file; a new request then completes.
  (SQLite: the test database is moved to a file for the duration; PostgreSQL: as is.)
  "Mid-archive" is made deterministic, not a race: the last document's stored file is a FIFO,
  so the worker blocks opening it after writing megabytes of earlier members, like a storage
  that stopped answering; the test kills it there.
* Two worker processes on 50 pending backups process each exactly once (PostgreSQL only:
  the claim relies on ``SELECT ... FOR UPDATE SKIP LOCKED``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.storage import default_storage
from django.db import connection
from django.utils import timezone

from backups import services
from backups.archive import ArchiveReader
from backups.models import Backup, BackupEvent
from organizations.models import ControlledDocument, DocumentVersion
from tests import factories as f
from tests.backups.conftest import add_document
from tests.support.procs import (
    Broker,
    Worker,
    start_worker,
    wait_until,
    worker_env,
)

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

KIB = 1024


@pytest.fixture
def workers(shared_db: str, broker: Broker, tmp_path: Path) -> Iterator[_Workers]:
    pool = _Workers(shared_db, broker, tmp_path)
    try:
        yield pool
    finally:
        pool.stop_all()


class _Workers:
    """Starts workers for one test and makes sure none outlives it."""

    def __init__(self, db_url: str, broker: Broker, tmp_path: Path) -> None:
        self.broker = broker
        self.queue = broker.queue()
        self.tmp_path = tmp_path
        self.db_url = db_url
        self.started: list[Worker] = []

    def start(self, label: str) -> Worker:
        env = worker_env(
            var_dir=self.tmp_path / "var",
            media_root=default_storage.location,
            database_url=self.db_url,
            broker=self.broker,
        )
        worker = start_worker(
            name=f"{label}-{self.broker.token}", queue=self.queue, env=env, log_dir=self.tmp_path / "logs"
        )
        self.started.append(worker)
        return worker

    def send(self, task: str, *args: object) -> None:
        self.broker.send(task, queue=self.queue, args=args)

    def stop_all(self) -> None:
        for worker in self.started:
            worker.stop()


def _archives() -> set[str]:
    """Every stored file under the archives' prefix (``backups/``), as storage names."""
    root = Path(default_storage.path("backups"))
    return {f"backups/{p.relative_to(root).as_posix()}" for p in root.rglob("*") if p.is_file()}


def _stalling_document(org, ou, content: bytes) -> tuple[DocumentVersion, Path]:  # type: ignore[no-untyped-def]
    """A document (sorted last) whose stored file is a FIFO: a worker opening it blocks there
    until someone writes, i.e. it stays mid-archive, with the earlier members already written."""
    doc = ControlledDocument.objects.create(
        organization=org, ou=ou, reference="ZZ-STALL", title="Stalls the writer", status="active"
    )
    name = f"documents/{uuid.uuid4().hex}"
    path = Path(default_storage.path(name))
    path.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(path)
    version = DocumentVersion.objects.create(
        document=doc,
        number=1,
        file=name,
        filename="stall.bin",
        content_type="application/octet-stream",
        size=len(content),
        sha256=hashlib.sha256(content).hexdigest(),
    )
    return version, path


def test_worker_killed_mid_backup_is_failed_by_the_sweep_and_leaves_no_file(workers, tenant) -> None:  # type: ignore[no-untyped-def]
    org, ou = tenant.org, tenant.ou_a
    for i in range(12):  # 3 MiB of incompressible files before the stalling one
        add_document(org, ou, f"BIG-{i:02d}", content=os.urandom(256 * KIB))
    stalled_content = os.urandom(64 * KIB)
    _version, fifo = _stalling_document(org, ou, stalled_content)
    assert _archives() == set()

    backup, _pw = services.backup_request(organization=org, requested_by=tenant.owner, dispatch=False)
    worker = workers.start("doomed")
    workers.send("backups.tasks.run_backup", backup.pk)

    def mid_archive() -> tuple[Backup, str] | None:
        b = Backup.objects.get(pk=backup.pk)
        # In progress, with a heartbeat sent since the claim, and a partial archive in storage.
        if b.status != Backup.Status.IN_PROGRESS or not b.heartbeat_at > b.started_at:
            return None
        partials = _archives()
        if len(partials) != 1 or default_storage.size(next(iter(partials))) < 2 * 1024 * KIB:
            return None
        return b, next(iter(partials))

    running, partial = wait_until(mid_archive, 60, "the worker to be mid-archive", [worker])
    assert worker.kill(signal.SIGKILL) == -signal.SIGKILL
    assert running.worker and running.attempts == 1 and running.progress_items_total > 0

    # Dead worker: the job stays in progress and its partial archive stays in storage, under
    # the name the engine recorded before writing (which is how the sweep finds it).
    backup.refresh_from_db()
    assert backup.status == Backup.Status.IN_PROGRESS
    assert _archives() == {partial}
    assert backup.file.name == partial, "the archive's name must be recorded before writing"
    # The sweep leaves a job whose heartbeat is recent alone ...
    assert services.backups_fail_stale() == 0
    # ... and fails it once the heartbeat is older than BACKUP_HEARTBEAT_STALE_AFTER.
    later = timezone.now() + settings.BACKUP_HEARTBEAT_STALE_AFTER + dt.timedelta(minutes=1)
    assert services.backups_fail_stale(now=later) == 1
    backup.refresh_from_db()
    assert backup.status == Backup.Status.FAILED and backup.failed_at
    assert "stopped responding" in backup.failure_reason
    assert not backup.file
    assert list(backup.events.values_list("status", flat=True)) == ["pending", "in_progress", "failed"]
    assert not default_storage.exists(partial)
    assert _archives() == set(), "the killed worker's partial archive must be deleted by the sweep"

    # The storage hiccup is over (the FIFO becomes the real file); a new request completes,
    # run by a fresh worker, and its archive is the only one in storage.
    fifo.unlink()
    fifo.write_bytes(stalled_content)
    again, password = services.backup_request(organization=org, requested_by=tenant.owner, dispatch=False)
    fresh = workers.start("fresh")
    workers.send("backups.tasks.run_backup", again.pk)
    wait_until(
        lambda: Backup.objects.filter(pk=again.pk).exclude(status__in=["pending", "in_progress"]).exists(),
        60,
        "the new backup to finish",
        [fresh],
    )
    again.refresh_from_db()
    assert again.status == Backup.Status.COMPLETED, again.failure_reason
    assert again.worker.endswith(tuple(f":{pid}" for pid in _pids_of(fresh)))
    assert _archives() == {again.file.name}
    assert again.size == default_storage.size(again.file.name)
    with default_storage.open(again.file.name, "rb") as fh:
        reader = ArchiveReader(fh, password)
        manifest = reader.verify()
        members = {m["path"]: m for m in manifest["members"]}
        versions = _jsonl(reader, "data/documents/document_version.jsonl")
        stalled_row = next(r for r in versions if r["filename"] == "stall.bin")
        assert reader.read_bytes(stalled_row["file"]["member"]) == stalled_content
        assert members[stalled_row["file"]["member"]]["sha256"] == hashlib.sha256(stalled_content).hexdigest()
    # The tenant's active and superseded documents (4), the big ones, the stalling one.
    assert again.document_count == 4 + 12 + 1


def _pids_of(worker: Worker) -> set[int]:
    """The worker's main process and its pool children (which run the tasks)."""
    pids = {worker.pid}
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if os.getpgid(int(proc.name)) == worker.pid:
                    pids.add(int(proc.name))
            except ProcessLookupError:
                continue
    return pids


def _jsonl(reader: ArchiveReader, name: str) -> list[dict]:
    return [json.loads(line) for line in reader.read_bytes(name).splitlines() if line]


@pytest.mark.postgres
@pytest.mark.skipif(
    not settings.DATABASES["default"]["ENGINE"].endswith("postgresql"),
    reason="needs PostgreSQL (SELECT ... FOR UPDATE SKIP LOCKED between processes): "
    "runs in the PostgreSQL pass of make test",
)
def test_two_workers_process_fifty_pending_backups_exactly_once(workers) -> None:  # type: ignore[no-untyped-def]
    assert connection.vendor == "postgresql"
    mdv = f.MasterDataVersionFactory()
    pending: list[int] = []
    for i in range(50):
        org = f.OrganizationFactory(master_data_version=mdv)
        f.SubscriptionFactory(organization=org)
        ou = f.OUFactory(organization=org)
        add_document(org, ou, f"D{i}-1")
        add_document(org, ou, f"D{i}-2")
        backup, _ = services.backup_request(organization=org, requested_by=None, dispatch=False)
        pending.append(backup.pk)
    assert Backup.objects.pending().count() == 50

    pool = [workers.start("w1"), workers.start("w2")]
    for worker in pool:
        worker.wait_ready()
    # Beat's queue task, sent twice: each idle worker takes one and drains the queue with it.
    workers.send("backups.tasks.process_queue")
    workers.send("backups.tasks.process_queue")
    wait_until(
        lambda: not Backup.objects.filter(pk__in=pending, status__in=["pending", "in_progress"]).exists(),
        90,
        "50 backups to finish",
        pool,
    )
    for worker in pool:
        worker.stop()

    backups = list(Backup.objects.filter(pk__in=pending))
    assert len(backups) == 50
    assert {b.status for b in backups} == {Backup.Status.COMPLETED}, {b.pk: b.failure_reason for b in backups}
    assert {b.pk: b.attempts for b in backups if b.attempts != 1} == {}, "claimed more than once"
    started = list(BackupEvent.objects.filter(backup__in=pending, status=Backup.Status.IN_PROGRESS))
    assert sorted(e.backup_id for e in started) == sorted(pending), "every backup started exactly once"
    runners = {e.message.removeprefix("Started on ") for e in started}
    assert runners == {b.worker for b in backups}
    assert len(runners) == 2, f"both worker processes took part: {runners}"
    # Exactly one archive per backup, each the size the backup records.
    assert _archives() == {b.file.name for b in backups}
    assert all(b.size == default_storage.size(b.file.name) for b in backups)
