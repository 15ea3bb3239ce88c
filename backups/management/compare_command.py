"""``manage.py backup compare ID [--with ID2|now] [--json] --operator EMAIL --yes``.

Compares a backup with the organization now, or with another backup of the same organization,
and prints the counts (``--json``: exactly one object, data-set key -> model key ->
``{"added": N, "removed": N, "changed": N}``; the direction runs from ID to now or ID2). Nothing
is kept: it is read-only, but it reads tenant data, so it is audited as the operator and, like
every operators' command that touches a tenant, it is refused without ``--yes``.
"""

from __future__ import annotations

import json as jsonlib
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from accounts.models import User
from accounts.services import audit_log
from backups.archive import ArchiveError
from backups.compare import services
from backups.compare.alerts import model_label
from backups.compare.sides import CompareError
from backups.models import Backup


def add_parser(sub: Any, positive_int: Any) -> None:
    compare: ArgumentParser = sub.add_parser(
        "compare",
        help="Count the records added, removed and changed since a backup (or between two backups).",
        description="Compare backup ID with the organization now (within the backup's scope), or with backup "
        "ID2 of the same organization. Added: only in the later side (now or ID2); removed: only in ID. "
        "Audited as the operator; refused without --yes.",
    )
    compare.add_argument("backup_id", type=positive_int, metavar="ID", help="The (earlier) backup's id.")
    compare.add_argument(
        "--with", dest="other", default="now", metavar="ID2|now", help="Another backup's id, or now (the default)."
    )
    compare.add_argument("--json", action="store_true", help="Print one JSON object of counts.")
    compare.add_argument("--operator", required=True, metavar="EMAIL", help="The staff user running this.")
    compare.add_argument("--yes", action="store_true", help="Confirm that tenant data is to be read.")


def _backup(backup_id: int) -> Backup:
    backup = Backup.objects.select_related("organization").filter(pk=backup_id).first()
    if backup is None:
        raise CommandError(f"There is no backup with id {backup_id}.")
    if backup.status != Backup.Status.COMPLETED or not backup.file:
        raise CommandError(
            f"Backup {backup.pk} is {backup.get_status_display()}; only a completed backup can be compared."
        )
    return backup


def handle(command: BaseCommand, *, backup_id: int, other: str, json: bool, operator: str, yes: bool, **_: Any) -> None:
    staff = User.objects.filter(email__iexact=operator, is_active=True, is_staff=True).first()
    if staff is None:
        raise CommandError(f"{operator} is not an active staff user; give your own operator email.")
    if not yes:
        raise CommandError("Nothing was compared: add --yes to confirm that the tenant's data is to be read.")
    earlier = _backup(backup_id)
    later = None
    if other != "now":
        try:
            later = _backup(int(other))
        except ValueError:
            raise CommandError("--with takes a backup id or now.") from None
        if later.organization_id != earlier.organization_id:
            raise CommandError(f"Backups {earlier.pk} and {later.pk} belong to different organizations.")
        if later.pk == earlier.pk:
            raise CommandError("Give two different backups.")
    try:
        result = services.compute(earlier, later)
    except (CompareError, ArchiveError) as exc:
        raise CommandError(str(exc)) from None
    audit_log(
        action="backup.compare",
        actor=staff,
        organization=earlier.organization,
        obj=earlier,
        details={"via": "manage.py backup compare", "earlier": earlier.pk, "later": later.pk if later else "now"},
    )
    if json:
        command.stdout.write(jsonlib.dumps(result.summary))
        return
    target = f"backup {later.pk}" if later else "now"
    command.stdout.write(f"Backup {earlier.pk} ({earlier.organization.slug}) → {target}:")
    for dataset, per_model in result.summary.items():
        for model, tally in per_model.items():
            command.stdout.write(
                f"  {dataset}/{model} ({model_label(model)}): {tally['added']} added, {tally['removed']} removed, "
                f"{tally['changed']} changed"
            )
    for key in result.skipped:
        command.stdout.write(f"  {key}: not compared (only one side holds it)")
