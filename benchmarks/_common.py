"""What the benchmarks share: a throwaway installation's environment, manage.py runs, the
machine line of RESULTS.md and loopback ports for servers they start."""

from __future__ import annotations

import contextlib
import os
import platform
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable


def throwaway_env(work: Path) -> dict[str, str]:
    """Environment of an installation under ``work``: SQLite, local files, no dispatch, no SMTP.

    DEBUG is off, as on a production worker: with it on, Django keeps a log of the last 9,000 queries in
    every process (up to about 12 MB in the workers' peak RSS figures).
    """
    env = {
        k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CELERY_BROKER_URL", "AWS_STORAGE_BUCKET_NAME")
    }
    env.update(
        BACKUPSVC_VAR_DIR=str(work / "var"),
        DATABASE_URL=f"sqlite:///{work / 'db.sqlite3'}",
        MEDIA_ROOT=str(work / "media"),
        BACKUP_DISPATCH_IMMEDIATELY="0",
        LOG_LEVEL="WARNING",
        EMAIL_URL="",
        DEBUG="false",
    )
    return env


def manage(env: dict[str, str], *args: str) -> str:
    """Run ``manage.py`` with ``args``; exit with its output if it fails."""
    result = subprocess.run([PY, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    if result.returncode:
        raise SystemExit(f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def machine() -> str:
    """Host name, cores, CPU model and Python, for the RESULTS.md headers."""
    cpu = ""
    with contextlib.suppress(OSError, StopIteration), open("/proc/cpuinfo") as fh:
        cpu = next(ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name"))
    return f"{platform.node()} · {os.cpu_count()} CPUs · {cpu} · Python {platform.python_version()} · {platform.platform()}"


def free_port() -> int:
    """A TCP port on loopback nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(port: int, timeout: float = 30.0) -> None:
    """Wait until something accepts connections on ``127.0.0.1:port``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"the server did not listen on port {port}")


def cpu_pressure() -> float:
    """Share of the last 10 s in which some task waited for a CPU (Linux PSI), else the load average."""
    try:
        with open("/proc/pressure/cpu") as f:
            return float(f.readline().split()[1].split("=")[1])
    except (OSError, IndexError, ValueError):
        return os.getloadavg()[0] * 50


def wait_for_quiet(limit: float) -> None:
    """On a shared machine, wait (bounded) until other processes leave the CPUs alone."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline and cpu_pressure() > 5:
        time.sleep(2)
