"""Archive passwords at rest: wrapped with the BACKUP_KEYS ring (MultiFernet, rotatable)."""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings


class PasswordUnavailable(Exception):
    """The stored password cannot be unwrapped (its key was removed from BACKUP_KEYS)."""


def key_ring() -> MultiFernet:
    return MultiFernet([Fernet(k.encode() if isinstance(k, str) else k) for k in settings.BACKUP_KEYS])


def first_key() -> Fernet:
    """The key new passwords are wrapped with (and rotation re-wraps under)."""
    key = settings.BACKUP_KEYS[0]
    return Fernet(key.encode() if isinstance(key, str) else key)


def wrap_password(password: str) -> str:
    """Encrypt an archive password with the first key of the ring."""
    return key_ring().encrypt(password.encode("utf-8")).decode("ascii")


def unwrap_password(token: str) -> str:
    """Decrypt a wrapped archive password with any key of the ring."""
    try:
        return key_ring().decrypt(token.encode("ascii")).decode("utf-8")
    except (InvalidToken, ValueError) as exc:
        raise PasswordUnavailable(
            "The backup's password cannot be unwrapped: its key is no longer in BACKUP_KEYS."
        ) from exc
