"""Settings: production refuses to start without secrets and passes check --deploy."""

from __future__ import annotations

import json
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


def test_production_settings_and_headers_are_https_only(tmp_path: Path) -> None:
    """The effective production settings, and what a response of the app carries behind the
    TLS proxy. (Full pages need collectstatic's manifest in production; the end-to-end suite
    serves them through gunicorn. A login redirect goes through every middleware just the same.)"""
    code = """
import json
from django.conf import settings
from django.test import Client
client = Client()
host = "backups.example.com"
secure = client.get("/backups/", HTTP_HOST=host, HTTP_X_FORWARDED_PROTO="https")
plain = client.get("/backups/", HTTP_HOST=host)
print(json.dumps({
    "settings": {name: getattr(settings, name) for name in (
        "DEBUG", "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE", "SECURE_SSL_REDIRECT",
        "SECURE_HSTS_SECONDS", "SECURE_HSTS_INCLUDE_SUBDOMAINS", "SECURE_PROXY_SSL_HEADER")},
    "secure": [secure.status_code, dict(secure.headers)],
    "plain": [plain.status_code, dict(plain.headers)],
}))
"""
    result = _manage(["shell", "--no-imports", "-c", code], _production_env(tmp_path))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    effective = report["settings"]
    assert effective["DEBUG"] is False
    assert effective["SESSION_COOKIE_SECURE"] is True and effective["CSRF_COOKIE_SECURE"] is True
    assert effective["SECURE_SSL_REDIRECT"] is True
    assert effective["SECURE_HSTS_SECONDS"] >= 31536000 and effective["SECURE_HSTS_INCLUDE_SUBDOMAINS"] is True
    assert effective["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]

    status, headers = report["secure"]
    assert status == 302 and headers["Location"] == "/accounts/login/?next=/backups/"
    hsts = headers["Strict-Transport-Security"]
    assert hsts.startswith("max-age=") and int(hsts.split(";")[0].removeprefix("max-age=")) >= 31536000
    assert "includeSubDomains" in hsts
    csp = headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp

    # Plain HTTP is sent to HTTPS before the app answers.
    status, headers = report["plain"]
    assert status == 301 and headers["Location"] == "https://backups.example.com/backups/"
