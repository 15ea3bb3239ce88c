"""Re-wrapping every stored password under the first key of ``BACKUP_KEYS`` (key rotation).

Operators put a new key first in ``BACKUP_KEYS`` (the old ones after it), run
``manage.py backup rotate-keys``, and may then remove the old keys: every password stored
wrapped (backups, the wizard's uploads, anything registered with ``register_wrapped``) is then
readable with the new key alone. Idempotent and resumable: rows already under the first key are
counted and left alone, and each batch commits on its own, so a run stopped half-way is simply
run again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from cryptography.fernet import Fernet, InvalidToken
from django.apps import apps
from django.db import transaction

from backups.keys import first_key, key_ring

logger = logging.getLogger(__name__)

# (app_label.Model, field) of every password wrapped with BACKUP_KEYS; apps add theirs in ready().
WRAPPED: list[tuple[str, str]] = [("backups.Backup", "password_wrapped")]


def register_wrapped(model: str, field_name: str) -> None:
    """Declare a field that holds a password wrapped with ``backups.keys.wrap_password``."""
    if (model, field_name) not in WRAPPED:
        WRAPPED.append((model, field_name))


@dataclass
class RotationCounts:
    rewrapped: int = 0
    current: int = 0
    failed: int = 0
    failed_rows: list[str] = field(default_factory=list)  # "backups.Backup #12": for the operator


Progress = Callable[[str, "RotationCounts"], None]


def _is_current(primary: Fernet, token: bytes) -> bool:
    try:
        primary.decrypt(token)
    except InvalidToken:
        return False
    return True


def keys_rotate(
    *, batch_size: int = 500, progress: Callable[[str, RotationCounts], None] | None = None
) -> RotationCounts:
    """Re-wrap every registered password under the first key of ``BACKUP_KEYS``.

    Rows are taken in primary-key order, ``batch_size`` at a time, each batch locked and
    committed in its own transaction. A password no key of the ring opens is counted as failed
    (its backup can no longer be verified or restored by the server) and left as it is."""
    ring = key_ring()
    primary = first_key()
    counts = RotationCounts()
    for label, field_name in WRAPPED:
        model = apps.get_model(label)
        last_pk = 0
        while True:
            with transaction.atomic():
                rows = list(
                    model.objects.select_for_update()
                    .filter(pk__gt=last_pk)
                    .exclude(**{field_name: ""})
                    .order_by("pk")
                    .values_list("pk", field_name)[:batch_size]
                )
                for pk, wrapped in rows:
                    token = wrapped.encode("ascii")
                    if _is_current(primary, token):
                        counts.current += 1
                        continue
                    try:
                        rotated = ring.rotate(token).decode("ascii")
                    except InvalidToken:
                        counts.failed += 1
                        counts.failed_rows.append(f"{label} #{pk}")
                        logger.warning("key rotation: %s #%s cannot be unwrapped with any key of the ring", label, pk)
                        continue
                    model.objects.filter(pk=pk, **{field_name: wrapped}).update(**{field_name: rotated})
                    counts.rewrapped += 1
            if not rows:
                break
            last_pk = rows[-1][0]
            if progress is not None:
                progress(label, counts)
    logger.info(
        "key rotation: %s re-wrapped, %s already current, %s failed", counts.rewrapped, counts.current, counts.failed
    )
    return counts
