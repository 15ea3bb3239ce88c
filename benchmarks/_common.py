"""What the benchmarks share: a throwaway installation's environment and manage.py runs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable


def throwaway_env(work: Path) -> dict[str, str]:
    """Environment of an installation under ``work``: SQLite, local files, no dispatch, no SMTP."""
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
    )
    return env


def manage(env: dict[str, str], *args: str) -> str:
    """Run ``manage.py`` with ``args``; exit with its output if it fails."""
    result = subprocess.run([PY, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    if result.returncode:
        raise SystemExit(f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout
