"""``manage.py restore``: restores from a shell, for operators.

``in-place BACKUP_ID --operator EMAIL --yes`` restores a backup over its organization, now, in
this process: the same scope-exact restore as the web's (a pre-restore backup first, then
exactly the backup's scope replaced in one transaction), audited as the operator. Refused
without ``--yes``. Every failure is one sentence and a non-zero exit. More actions
(``selective``, ``from-file``) join as further subcommands.
"""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from backups.models import Backup
from restores.models import Restore
from restores.operators import operator_for, restore_in_place_by_operator
from restores.services import RestoreError


class Command(BaseCommand):
    help = "Restore backups from the server shell (operators)."

    def add_arguments(self, parser: ArgumentParser) -> None:
        sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
        in_place = sub.add_parser(
            "in-place",
            help="Restore a backup over its organization now (scope-exact, with a pre-restore backup).",
            description=(
                "Restore a completed backup over its own organization, synchronously: a pre-restore "
                "backup of the current state is taken first, then exactly the backup's scope (its data "
                "sets, OUs and document statuses) is replaced in one transaction; everything outside it "
                "stays as it is. Audited as the operator. Refused without --yes."
            ),
        )
        in_place.add_argument("backup_id", type=int, metavar="BACKUP_ID")
        in_place.add_argument("--operator", required=True, metavar="EMAIL", help="Your operator (staff) account.")
        in_place.add_argument("--yes", action="store_true", help="Confirm: the organization's data is replaced.")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["action"] == "in-place":
            self._in_place(options)

    def _in_place(self, options: dict[str, Any]) -> None:
        backup = Backup.objects.select_related("organization").filter(pk=options["backup_id"]).first()
        if backup is None:
            raise CommandError(f"There is no backup with id {options['backup_id']}.")
        if not options["yes"]:
            raise CommandError(
                f"This replaces the data of {backup.organization} inside backup {backup.pk}'s scope; "
                "add --yes to confirm."
            )
        try:
            operator = operator_for(options["operator"])
            restore = restore_in_place_by_operator(backup=backup, operator=operator)
        except RestoreError as exc:
            raise CommandError(str(exc)) from exc
        if restore.status != Restore.Status.COMPLETED:
            reason = " ".join((restore.failure_reason or "The restore failed.").split())
            raise CommandError(f"Restore #{restore.pk} failed: {reason}")
        self.stdout.write(
            f"Restore #{restore.pk} completed: {backup.organization} holds backup {backup.pk}'s data inside its "
            f"scope (pre-restore backup {restore.pre_restore_backup_id})."
        )
