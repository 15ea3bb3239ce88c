"""``audit-storage``: the backups' records against the objects in storage."""

from __future__ import annotations

from argparse import _SubParsersAction
from typing import Any

from django.core.management.base import CommandError

from backups.audit import storage_audit


def add_parsers(sub: _SubParsersAction) -> None:  # type: ignore[type-arg]
    audit = sub.add_parser(
        "audit-storage",
        help="Check that every completed backup's file exists and every stored file has a backup.",
        description="Compare the backups' records with the objects under the backups prefix: every completed "
        "backup's file must exist with its recorded size, every object must belong to a backup (a running "
        "backup's upload is normal). Findings are recorded (Django admin: Storage findings) and new ones mailed "
        "to the operators. Nothing is deleted without --fix. Exits non-zero while findings remain open.",
    )
    audit.add_argument(
        "--fix",
        action="store_true",
        help="Delete objects that belong to no backup and abort orphan multipart uploads. Missing or resized "
        "files are only reported.",
    )


class StorageCommands:
    """Mixed into the command: ``self.stdout`` is the command's."""

    def handle_audit_storage(self, *, fix: bool, **_: Any) -> None:
        result = storage_audit(fix=fix)
        out = self.stdout  # type: ignore[attr-defined]
        out.write(f"Checked {result.backups_checked} completed backups and {result.objects_checked} stored objects.")
        for finding in result.fixed:
            out.write(f"Fixed: {finding.get_kind_display()}: {finding.name}")
        for finding in result.found:
            out.write(f"Found: {finding.get_kind_display()}: {finding.name}")
        if result.found:
            hint = "" if fix else " Run with --fix to delete orphan files and abort orphan uploads."
            raise CommandError(f"{len(result.found)} finding(s) open (Django admin: Storage findings).{hint}")
        out.write("No finding open.")
