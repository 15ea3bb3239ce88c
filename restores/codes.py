"""Restore codes: random digits from ``secrets``, kept only as an HMAC bound to their request."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from django.conf import settings

CODE_DIGITS = 8


def generate_code() -> str:
    """A fresh code of ``CODE_DIGITS`` digits (leading zeros kept)."""
    return f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"


def normalize(code: str) -> str:
    """What the user typed, without the spaces and dashes people add when copying."""
    return "".join(ch for ch in code if ch.isdigit())


def code_digest(
    *, restore_id: int, backup_id: int | None, organization_id: int | None, requester_id: int | None, code: str
) -> str:
    """HMAC-SHA256 of the code and everything it is bound to, with ``settings.RESTORE_CODE_KEY``."""
    key = settings.RESTORE_CODE_KEY
    key_bytes = key.encode("utf-8") if isinstance(key, str) else key
    message = f"restore-code/v1|{restore_id}|{backup_id}|{organization_id}|{requester_id}|{code}".encode()
    return hmac.new(key_bytes, message, hashlib.sha256).hexdigest()


def code_matches(expected_digest: str, **bound: object) -> bool:
    """Compare in constant time (the digest of what was typed against the stored one)."""
    return hmac.compare_digest(expected_digest, code_digest(**bound))  # type: ignore[arg-type]
