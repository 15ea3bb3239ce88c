"""A worker stopped while it writes a backup: it exits within seconds, and the backup is failed
with a reason (never left "In progress"), its partial file removed.

Real ``celery worker`` processes on the embedded set-up's filesystem broker (or Redis when
TEST_REDIS_URL is set), both ways a worker is stopped:

* SIGTERM to the whole process group, pool processes included (honcho on Ctrl-C of
  ``make run``, ``tests/support``), on the prefork pool; this used to hang on the pool's queue
  lock until honcho sent SIGKILL;
* SIGTERM to the main process only (``docker stop``, a Ctrl-C in a terminal), on the threads pool
  that ``Procfile.dev`` runs, and on the prefork pool of production after the grace period.

"Mid-backup" is deterministic: the last document's stored file is a FIFO that the test feeds
slowly, so the worker is inside that file, sending heartbeats, for as long as the test wants.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
from django.core.files.storage import default_storage

from backups import services
from backups.models import Backup
from tests.backups.conftest import add_document
from tests.backups.test_processes import _archives, _stalling_document
from tests.support.procs import (
    spawn,
    wait_until,
    worker_env,
)

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

# Seconds from SIGTERM to exit. The threads pool is what make run starts: honcho sends SIGKILL
# after 5 s. Closing a prefork pool alone takes billiard about 4 s (its threads and children poll
# once a second); production's supervisors wait longer (compose: 90 s), so 10 s plus the grace.
STOP_WITHIN = {"threads": 5.0, "prefork": 10.0}


class _SlowFeeder(threading.Thread):
    """Writes into the FIFO a little at a time until the reader goes away (or ``stop``)."""

    def __init__(self, fifo: Path) -> None:
        super().__init__(daemon=True)
        self.fifo = fifo
        self.written = 0
        self.chunk = os.urandom(32 * 1024)  # about 3 MB/s: a 1 MiB chunk of the writer every 0.3 s
        self.stopped = threading.Event()

    def run(self) -> None:
        with contextlib.suppress(OSError), open(self.fifo, "wb", buffering=0) as out:
            while not self.stopped.is_set():
                out.write(self.chunk)
                self.written += len(self.chunk)
                time.sleep(0.01)


@pytest.mark.parametrize(
    ("pool", "whole_group", "grace"),
    [("prefork", True, "0"), ("threads", False, "0"), ("prefork", False, "1")],
    ids=["prefork-group-sigterm", "threads-main-sigterm", "prefork-main-sigterm-after-grace"],
)
def test_worker_stopped_mid_backup_exits_promptly_and_fails_the_backup_with_a_reason(  # type: ignore[no-untyped-def]
    shared_db, broker, tenant, tmp_path: Path, pool: str, whole_group: bool, grace: str
) -> None:
    """The last case is ``docker stop``: the main process alone gets SIGTERM and passes it to
    its pool processes after WORKER_STOP_GRACE_SECONDS (60 in production, 1 here)."""
    org, ou = tenant.org, tenant.ou_a
    add_document(org, ou, "BIG-00", content=os.urandom(256 * 1024))
    _version, fifo = _stalling_document(org, ou, b"")
    backup, _pw = services.backup_request(organization=org, requested_by=tenant.owner, dispatch=False)

    queue = broker.queue()
    env = worker_env(
        var_dir=tmp_path / "var", media_root=default_storage.location, database_url=shared_db, broker=broker
    )
    env["WORKER_STOP_GRACE_SECONDS"] = grace
    cmd = ["celery", "-A", "backupsvc", "worker", "--queues", queue, "--hostname", f"stop-{broker.token}@%h"]
    cmd += ["--pool", pool, "--concurrency", "2", "--without-mingle", "--without-gossip", "--without-heartbeat"]
    worker = spawn(name=f"stop-{pool}", cmd=[str(Path(os.sys.executable)), "-m", *cmd], env=env, log_dir=tmp_path)
    feeder = _SlowFeeder(fifo)
    feeder.start()
    try:
        worker.wait_ready()
        broker.send("backups.tasks.run_backup", queue=queue, args=(backup.pk,))

        def inside_the_slow_file() -> bool:
            b = Backup.objects.get(pk=backup.pk)
            return b.status == Backup.Status.IN_PROGRESS and feeder.written > 2 * 1024 * 1024

        wait_until(inside_the_slow_file, 60, "the worker to be inside the slow file", [worker])
        assert len(_archives()) == 1, "a partial archive is in storage while the backup runs"

        started = time.monotonic()
        if whole_group:
            os.killpg(worker.pid, signal.SIGTERM)
        else:
            worker.proc.send_signal(signal.SIGTERM)
        try:
            returncode = worker.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the worker did not stop within 30 s:\n{worker.output(tail=60)}")
        took = time.monotonic() - started
    finally:
        feeder.stopped.set()
        worker.stop()

    log = worker.output(tail=400)
    limit = STOP_WITHIN[pool] + float(grace)
    assert took < limit, f"the worker took {took:.1f} s to stop:\n{log}"
    assert returncode == 0, log
    backup.refresh_from_db()
    assert backup.status == Backup.Status.FAILED, log
    assert backup.failure_reason == "The worker was stopped while this backup ran; request it again."
    assert _archives() == set(), "the partial archive is removed"
    # The job is over and the organization may request again.
    assert not Backup.objects.filter(organization=org, status__in=["pending", "in_progress"]).exists()
