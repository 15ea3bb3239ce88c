"""Ctrl-C on ``make run`` while a backup runs: honcho stops web, worker and beat within 5 s
without SIGKILL, and the backup is failed with a reason, not left "In progress".

The same processes as ``make run`` (``honcho start -f Procfile.dev``) on a private var/ folder
(SQLite, local files, the filesystem broker), after ``migrate`` and ``seed_demo``. The running
backup is made deterministic: a document's stored file is a FIFO the test feeds slowly, so the
worker is inside that file when the test sends SIGINT to honcho, as a terminal does on Ctrl-C.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.support.net import free_port, wait_for_port
from tests.support.procs import _SCRUBBED_PREFIXES

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent

# Run inside the embedded set-up (manage.py shell): a FIFO as the stored file of a new document
# of Acme, then a backup of Acme requested as its Owner would (dispatched at once).
START_BACKUP = """
import hashlib, os, json
from django.core.files.storage import default_storage
from accounts.models import User
from backups import services
from organizations.models import ControlledDocument, DocumentVersion, Organization
from organizations.models import OrganisationalUnit
org = Organization.objects.get(slug="acme")
ou = OrganisationalUnit.objects.filter(organization=org).first()
doc = ControlledDocument.objects.create(
    organization=org, ou=ou, reference="ZZ-SLOW", title="Slow file", status="active")
name = "documents/slow-fifo"
path = default_storage.path(name)
os.makedirs(os.path.dirname(path), exist_ok=True)
os.mkfifo(path)
DocumentVersion.objects.create(document=doc, number=1, file=name, filename="slow.bin",
    content_type="application/octet-stream", size=1, sha256=hashlib.sha256(b"").hexdigest())
backup, _ = services.backup_request(organization=org, requested_by=User.objects.get(email="owner@acme.example.com"))
print(json.dumps({"backup": backup.pk, "fifo": path}))
"""

BACKUP_STATE = """
import json
from backups.models import Backup
b = Backup.objects.get(pk={pk})
print(json.dumps({{"status": b.status, "reason": b.failure_reason}}))
"""


def _shell(env: dict[str, str], code: str) -> dict:
    """Run ``code`` in ``manage.py shell``; the last line it prints is JSON."""
    return json.loads(_manage(env, "shell", "--no-imports", "-c", code).strip().splitlines()[-1])


def _manage(env: dict[str, str], *args: str, timeout: float = 120) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _feed_slowly(fifo: str, stop: threading.Event) -> None:
    chunk = os.urandom(32 * 1024)
    with contextlib.suppress(OSError), open(fifo, "wb", buffering=0) as out:
        while not stop.is_set():
            out.write(chunk)
            time.sleep(0.01)


def test_ctrl_c_on_make_run_stops_everything_within_5_s_and_fails_the_running_backup(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith((*_SCRUBBED_PREFIXES, "DEBUG"))}
    port = free_port()
    env.update(
        BACKUPSVC_VAR_DIR=str(tmp_path / "var"),
        WEB_PORT=str(port),
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
        PYTHONUNBUFFERED="1",
    )
    _manage(env, "migrate", "--no-input")
    _manage(env, "seed_demo")

    log = tmp_path / "honcho.log"
    with open(log, "wb") as out:
        honcho = subprocess.Popen(
            [str(BIN / "honcho"), "start", "-f", "Procfile.dev"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # like a terminal's job: the test signals honcho only
        )
    stop_feeding = threading.Event()
    try:
        wait_for_port(port, timeout=60, what="runserver")
        deadline = time.monotonic() + 60
        while " ready." not in log.read_text(errors="replace"):
            assert time.monotonic() < deadline, log.read_text(errors="replace")
            time.sleep(0.2)
        started = _shell(env, START_BACKUP)
        threading.Thread(target=_feed_slowly, args=(started["fifo"], stop_feeding), daemon=True).start()
        state_code = BACKUP_STATE.format(pk=started["backup"])

        deadline = time.monotonic() + 60
        while _shell(env, state_code)["status"] != "in_progress":
            assert time.monotonic() < deadline, log.read_text(errors="replace")
            time.sleep(0.5)
        time.sleep(1)  # well inside the slow file

        sent = time.monotonic()
        honcho.send_signal(signal.SIGINT)
        try:
            honcho.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pytest.fail(f"honcho did not stop within 30 s:\n{log.read_text(errors='replace')[-5000:]}")
        took = time.monotonic() - sent
    finally:
        stop_feeding.set()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(honcho.pid, signal.SIGKILL)
        honcho.wait(timeout=10)

    output = log.read_text(errors="replace")
    tail = output[-4000:]
    assert "SIGKILL" not in output, tail
    assert took < 5.0, f"{took:.1f} s\n{tail}"
    for name in ("web.1", "worker.1", "beat.1"):
        assert f"{name} stopped" in output, tail
    assert "No hostname was supplied" not in output
    state = _shell(env, state_code)
    assert state == {"status": "failed", "reason": "The worker was stopped while this backup ran; request it again."}
