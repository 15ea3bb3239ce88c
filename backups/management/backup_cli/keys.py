"""``rotate-keys``: re-wrap every stored password under the first key of ``BACKUP_KEYS``."""

from __future__ import annotations

from argparse import _SubParsersAction
from typing import Any

from django.core.management.base import CommandError

from backups.management.backup_cli import common
from backups.rotation import RotationCounts, keys_rotate


def add_parsers(sub: _SubParsersAction) -> None:  # type: ignore[type-arg]
    rotate = sub.add_parser(
        "rotate-keys",
        help="Re-wrap every stored password under the first key of BACKUP_KEYS.",
        description="After putting a new key first in BACKUP_KEYS (the old ones after it): re-wrap every "
        "stored archive password under the new key, so the old keys can then be removed. Idempotent and "
        "resumable (a batch commits at a time; run it again after an interruption). Prints how many "
        "passwords were re-wrapped, were already current and could not be opened with any key; exits "
        "non-zero when any could not.",
    )
    rotate.add_argument(
        "--batch-size", type=common.positive_int, default=500, metavar="N", help="Rows per transaction."
    )


class KeysCommands:
    """Mixed into the command: ``self.stdout`` is the command's."""

    def handle_rotate_keys(self, *, batch_size: int, verbosity: int = 1, **_: Any) -> None:
        def progress(label: str, counts: RotationCounts) -> None:
            if verbosity > 1:
                self.stdout.write(f"{label}: {counts.rewrapped} re-wrapped so far")  # type: ignore[attr-defined]

        counts = keys_rotate(batch_size=batch_size, progress=progress)
        self.stdout.write(  # type: ignore[attr-defined]
            f"Re-wrapped: {counts.rewrapped}\nAlready current: {counts.current}\nFailed: {counts.failed}"
        )
        if counts.failed:
            shown = ", ".join(counts.failed_rows[:20]) + (" …" if len(counts.failed_rows) > 20 else "")
            raise CommandError(
                f"{counts.failed} stored password(s) cannot be opened with any key of BACKUP_KEYS ({shown}); "
                "put the key they were wrapped with back into BACKUP_KEYS and run rotate-keys again."
            )
