"""gunicorn as production runs it (from the project folder, so with ./gunicorn.conf.py): a HEAD
request gets GET's headers without a body and no warning in the log, and no control socket is
bound (every instance used to bind the same one under the home directory)."""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.net import free_port, wait_for_port
from tests.support.procs import _SCRUBBED_PREFIXES

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent


def _request(port: int, method: str, path: str) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path)
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def test_head_requests_get_no_body_and_no_warning_and_no_control_socket_is_bound(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith((*_SCRUBBED_PREFIXES, "DEBUG"))}
    env.update(BACKUPSVC_VAR_DIR=str(tmp_path / "var"), PYTHONUNBUFFERED="1")
    migrate = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--no-input"], cwd=ROOT, env=env, capture_output=True, timeout=120
    )
    assert migrate.returncode == 0, migrate.stderr
    port = free_port()
    log = tmp_path / "gunicorn.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "backupsvc.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", "1"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for_port(port, timeout=60, what="gunicorn")
        for path in ("/accounts/login/", "/health/"):
            status, headers, body = _request(port, "GET", path)
            assert status == 200, (path, body[:300])
            head_status, head_headers, head_body = _request(port, "HEAD", path)
            assert head_status == 200 and head_body == b""
            assert head_headers.get("Content-Type") == headers.get("Content-Type")
            if path == "/accounts/login/":  # the health answer's latencies vary in length
                assert int(head_headers["Content-Length"]) == len(body)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    output = log.read_text(errors="replace")
    assert "no-body response" not in output, output
    assert "Control socket" not in output, output
