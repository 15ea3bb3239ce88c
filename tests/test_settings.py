"""Settings: production refuses to start without secrets and passes check --deploy."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parent.parent


def _manage(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DATABASE_URL", "SECRET_KEY", "BACKUP_KEYS", "DJANGO_ALLOW_ASYNC_UNSAFE"))
    }
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env={**base, **env}, capture_output=True, text=True, timeout=120
    )


def _production_env(tmp_path: Path) -> dict[str, str]:
    key_file = tmp_path / "backup_keys"
    key_file.write_text(f"{Fernet.generate_key().decode()},{Fernet.generate_key().decode()}")
    return {
        "BACKUPSVC_ENV": "production",
        "BACKUPSVC_VAR_DIR": str(tmp_path / "var"),
        "SECRET_KEY": "x" * 20 + "-production-only-secret-key-for-the-check-1234567890",
        "BACKUP_KEYS_FILE": str(key_file),
        "RESTORE_CODE_KEY": "another-long-random-production-key-0987654321",
        "ALLOWED_HOSTS": "backups.example.com",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'prod.sqlite3'}",
    }


def test_check_deploy_is_clean_with_production_values(tmp_path: Path) -> None:
    result = _manage(["check", "--deploy", "--fail-level", "WARNING"], _production_env(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_production_refuses_to_start_without_backup_keys(tmp_path: Path) -> None:
    env = _production_env(tmp_path)
    del env["BACKUP_KEYS_FILE"]
    result = _manage(["check"], env)
    assert result.returncode != 0
    assert "BACKUP_KEYS (or BACKUP_KEYS_FILE) must be set in production" in result.stderr


def test_production_refuses_to_start_without_secret_key(tmp_path: Path) -> None:
    env = _production_env(tmp_path)
    del env["SECRET_KEY"]
    result = _manage(["check"], env)
    assert result.returncode != 0
    assert "SECRET_KEY (or SECRET_KEY_FILE) must be set in production" in result.stderr


def test_embedded_mode_generates_secrets_once_under_var(tmp_path: Path) -> None:
    var = tmp_path / "var"
    code = "from django.conf import settings; print(settings.SECRET_KEY[:8], settings.BACKUP_KEYS[0][:8])"
    env = {"BACKUPSVC_VAR_DIR": str(var), "DJANGO_SETTINGS_MODULE": "backupsvc.settings"}
    first = _manage(["shell", "-c", code], env)
    second = _manage(["shell", "-c", code], env)
    assert first.returncode == 0, first.stderr
    assert first.stdout == second.stdout
    assert (var / "secret_key").stat().st_mode & 0o077 == 0
