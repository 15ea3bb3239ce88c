"""``manage.py restore``: restores from a shell, for operators.

``in-place BACKUP_ID --operator EMAIL --yes`` restores a backup over its organization, now, in
this process: the same scope-exact restore as the web's (a pre-restore backup first, then
exactly the backup's scope replaced in one transaction), audited as the operator. Refused
without ``--yes``. ``selective BACKUP_ID --records KEY:ID[,KEY:ID...]`` brings back picked
records (with the records they need; ``--with-dependants``, ``--overwrite-changed``,
``--on-conflict skip|suffix``). ``from-file FILE --password-file F --slug NEW_SLUG`` restores
a downloaded archive into a new organization (the wizard's engine). Every failure is one
sentence and a non-zero exit.
"""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from backups.browse.selection import parse
from backups.models import Backup
from restores.models import Restore
from restores.operators import (
    operator_for,
    restore_from_file_by_operator,
    restore_in_place_by_operator,
    restore_selective_by_operator,
)
from restores.selective.plan import SelectionError
from restores.selective.services import selection_options
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

        selective = sub.add_parser(
            "selective",
            help="Bring back picked records of a backup into its organization (nothing else changes).",
            description=(
                "Restore the records KEY:ID (KEY the registry's dataset.model, ID the record's id in the "
                "backup) into the backup's organization, with the records they need; a pre-restore backup of "
                "the affected data sets first, then one transaction. Audited as the operator."
            ),
        )
        selective.add_argument("backup_id", type=int, metavar="BACKUP_ID")
        selective.add_argument("--records", required=True, metavar="KEY:ID[,KEY:ID...]")
        selective.add_argument("--with-dependants", action="store_true", help="Also the records that depend on them.")
        selective.add_argument("--overwrite-changed", action="store_true", help="Overwrite records changed since.")
        selective.add_argument("--on-conflict", choices=("skip", "suffix"), default="skip")
        selective.add_argument("--operator", required=True, metavar="EMAIL")
        selective.add_argument("--yes", action="store_true", help="Confirm.")
        from_file = sub.add_parser(
            "from-file",
            help="Restore a downloaded backup file into a new organization (disaster recovery).",
            description=(
                "Verify a downloaded archive with its password (every hash) and restore it into a new "
                "organization with the given slug, as the wizard's upload does. The operator must be a "
                "Site Admin; they become the Owner unless --owner names another user."
            ),
        )
        from_file.add_argument("file", metavar="FILE")
        from_file.add_argument("--password-file", required=True, metavar="F", help="A file holding the password.")
        from_file.add_argument("--slug", required=True, metavar="NEW_SLUG")
        from_file.add_argument("--owner", default="", metavar="EMAIL", help="The new organization's Owner.")
        from_file.add_argument("--operator", required=True, metavar="EMAIL")
        from_file.add_argument("--yes", action="store_true", help="Confirm.")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["action"] == "in-place":
            self._in_place(options)
        elif options["action"] == "selective":
            self._selective(options)
        elif options["action"] == "from-file":
            self._from_file(options)

    def _selective(self, options: dict[str, Any]) -> None:
        backup = Backup.objects.select_related("organization").filter(pk=options["backup_id"]).first()
        if backup is None:
            raise CommandError(f"There is no backup with id {options['backup_id']}.")
        try:
            picks = parse(options["records"].split(","))
            if not picks:
                raise ValueError("Name at least one record with --records KEY:ID.")
            selection = selection_options(
                picks=picks,
                with_dependants=options["with_dependants"],
                overwrite=options["overwrite_changed"],
                on_conflict=options["on_conflict"],
            )
        except (ValueError, SelectionError) as exc:
            raise CommandError(str(exc)) from exc
        if not options["yes"]:
            raise CommandError(f"This changes records of {backup.organization}; add --yes to confirm.")
        try:
            restore = restore_selective_by_operator(
                backup=backup, operator=operator_for(options["operator"]), options=selection
            )
        except RestoreError as exc:
            raise CommandError(str(exc)) from exc
        if restore.status != Restore.Status.COMPLETED:
            reason = " ".join((restore.failure_reason or "The restore failed.").split())
            raise CommandError(f"Restore #{restore.pk} failed: {reason}")
        records = (restore.row_counts or {}).get("records") or []
        for action, label in (("create", "Created"), ("overwrite", "Overwrote"), ("skip", "Skipped")):
            done = [r for r in records if r["action"] == action]
            self.stdout.write(f"{label} {len(done)}:")
            for r in done:
                new = f" (now #{r['new_id']})" if r.get("new_id") else ""
                why = f": {r['reason']}" if r.get("reason") else ""
                self.stdout.write(f"  {r['model']}:{r['id']}{new} {r['title']}{why}")
        self.stdout.write(f"Restore #{restore.pk} completed (pre-restore backup {restore.pre_restore_backup_id}).")

    def _from_file(self, options: dict[str, Any]) -> None:
        if not options["yes"]:
            raise CommandError(f"This creates the organization “{options['slug']}”; add --yes to confirm.")
        try:
            with open(options["password_file"], encoding="utf-8") as fh:
                password = fh.read().strip()
        except OSError as exc:
            raise CommandError(f"The password file cannot be read ({exc.strerror}).") from exc
        try:
            operator = operator_for(options["operator"])
            restore = restore_from_file_by_operator(
                path=options["file"],
                password=password,
                slug=options["slug"],
                operator=operator,
                owner_email=options["owner"],
            )
        except RestoreError as exc:
            raise CommandError(" ".join(str(exc).split())) from exc
        except FileNotFoundError as exc:
            raise CommandError(f"There is no file {options['file']}.") from exc
        if restore.status != Restore.Status.COMPLETED:
            reason = " ".join((restore.failure_reason or "The restore failed.").split())
            raise CommandError(f"Restore #{restore.pk} failed: {reason}")
        self.stdout.write(f"Restore #{restore.pk} completed: organization “{restore.organization}” was created.")

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
