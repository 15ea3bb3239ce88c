"""Secrets for the embedded (development) set-up.

Production reads every secret from the environment (or a ``*_FILE``) and refuses to start
without them; the embedded set-up keeps generated ones under ``var/`` so that ``make run``
works on a fresh machine and keeps working across restarts (sessions and wrapped backup
passwords stay valid).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from cryptography.fernet import Fernet


def _read_or_create(path: Path, make: callable) -> str:  # type: ignore[valid-type]
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = make()
    # O_EXCL: two processes starting at once (web, worker, beat) must agree on one value.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as fh:
        fh.write(value + "\n")
    return value


def dev_secret_key(var_dir: Path) -> str:
    """The embedded set-up's SECRET_KEY, generated on first use."""
    return _read_or_create(var_dir / "secret_key", lambda: secrets.token_urlsafe(50))


def dev_backup_keys(var_dir: Path) -> list[str]:
    """The embedded set-up's Fernet key ring for wrapping archive passwords."""
    raw = _read_or_create(var_dir / "backup_keys", lambda: Fernet.generate_key().decode())
    return [k.strip() for k in raw.split(",") if k.strip()]


def dev_restore_code_key(var_dir: Path) -> str:
    """The embedded set-up's HMAC key for restore codes."""
    return _read_or_create(var_dir / "restore_code_key", lambda: secrets.token_urlsafe(32))
