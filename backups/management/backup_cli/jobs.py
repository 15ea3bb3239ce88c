"""``create``, ``process`` and ``list``: queue and run backups, and show them."""

from __future__ import annotations

import logging
import os
from argparse import _SubParsersAction
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import CommandError
from django.utils import timezone

from backups import datasets as ds
from backups import services
from backups.compare.services import comparisons_process
from backups.management.backup_cli import common
from backups.models import Backup
from organizations.models import OrganisationalUnit

logger = logging.getLogger("backups.management.commands.backup")


def add_parsers(sub: _SubParsersAction) -> None:  # type: ignore[type-arg]
    create = sub.add_parser(
        "create",
        help="Queue a backup of one organization; print its id.",
        description=(
            "Queue a manual backup of one organization and print only its id on stdout. "
            "An archive password is required in one of two ways, and is never printed: "
            "--password-file reads your own password, --password-out writes a generated one to a "
            "new file readable only by you (mode 0600). Without either, nothing is queued."
        ),
    )
    create.add_argument("--org", required=True, metavar="SLUG", help="The organization's slug.")
    create.add_argument("--label", default="", help="A label shown in the backup list.")
    create.add_argument(
        "--datasets",
        type=common.csv,
        default=[],
        metavar="KEY,KEY",
        help=f"Data sets to include (default: all); the ones they depend on are added. Keys: {', '.join(ds.REGISTRY)}.",
    )
    create.add_argument(
        "--ous",
        type=common.csv,
        default=[],
        metavar="CODE,CODE",
        help="Limit the backup to these OUs (by code); default: every OU.",
    )
    create.add_argument("--include-inactive", action="store_true", help="Include inactive documents.")
    create.add_argument("--exclude-superseded", action="store_true", help="Leave superseded documents out.")
    create.add_argument("--no-active", action="store_true", help="Leave active documents out.")
    create.add_argument(
        "--operator",
        default="",
        metavar="NAME",
        help="Who asks, as the backup list shows it under Created by (e.g. your email address); "
        "default: your login name on this machine.",
    )
    password = create.add_mutually_exclusive_group()
    password.add_argument(
        "--password-file",
        type=Path,
        metavar="FILE",
        help="Use your own archive password, read from the single line of FILE (at least "
        f"{services.MIN_USER_PASSWORD} characters). If you forget it, the archive cannot be opened "
        "outside this system.",
    )
    password.add_argument(
        "--password-out",
        type=Path,
        metavar="FILE",
        help="Generate a strong password and write it to FILE, which must not exist yet and is "
        "created with mode 0600. It is not shown anywhere else.",
    )

    process = sub.add_parser(
        "process",
        help="Run the pending backups now, in the foreground.",
        description="Run the queue once in this process, print how many backups ran and each one's "
        "final status. Exits non-zero when one of them failed.",
    )
    process.add_argument("--limit", type=common.positive_int, metavar="N", help="Run at most N backups.")

    listing = sub.add_parser("list", help="Show backups as a table.", description="Show backups, newest first.")
    listing.add_argument("--org", metavar="SLUG", help="Only this organization's backups.")
    listing.add_argument("--status", choices=Backup.Status.values, help="Only backups in this status.")
    listing.add_argument("--limit", type=common.positive_int, metavar="N", help="Show at most N backups.")


class JobsCommands:
    """Mixed into the command: ``self.stdout`` and ``self.style`` are the command's."""

    def handle_create(
        self,
        *,
        org: str,
        label: str,
        datasets: list[str],
        ous: list[str],
        include_inactive: bool,
        exclude_superseded: bool,
        no_active: bool,
        password_file: Path | None,
        password_out: Path | None,
        operator: str = "",
        **_: Any,
    ) -> None:
        organization = common.organization(org)
        if password_file is None and password_out is None:
            raise CommandError(
                "Give --password-file FILE (your own password) or --password-out FILE (a generated password "
                "is written there with mode 0600); this command never prints passwords."
            )
        unknown = sorted(set(datasets) - set(ds.REGISTRY))
        if unknown:
            raise CommandError(f"Unknown data set(s): {', '.join(unknown)}. Known: {', '.join(ds.REGISTRY)}.")
        ou_list = list(OrganisationalUnit.objects.filter(organization=organization, code__in=ous))
        missing = sorted(set(ous) - {ou.code for ou in ou_list})
        if missing:
            raise CommandError(f"Organization {organization.slug!r} has no OU with the code(s) {', '.join(missing)}.")
        own_password = common.read_password(password_file) if password_file is not None else None
        # The password file is created before anything is queued, so a bad path refuses cleanly.
        fd = common.new_secret_file(password_out) if password_out is not None else None
        try:
            # Not dispatched by the service: the worker is started below, once the password is safe.
            backup, generated = services.backup_request(
                organization=organization,
                requested_by=None,
                ous=ou_list,
                datasets=datasets or None,
                label=label,
                password=own_password,
                include_active=not no_active,
                include_inactive=include_inactive,
                exclude_superseded=exclude_superseded,
                dispatch=False,
                requested_via=f"Operator {operator.strip() or common.login_name()} via command line",
            )
        except BaseException as exc:
            if fd is not None:
                os.close(fd)
                Path(password_out).unlink(missing_ok=True)  # type: ignore[arg-type]
            if isinstance(exc, services.BackupError):
                raise CommandError(str(exc)) from None
            raise
        if fd is not None:
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as out:
                    out.write(generated + "\n")
            except OSError as exc:
                Path(password_out).unlink(missing_ok=True)  # type: ignore[arg-type]
                raise CommandError(
                    f"The password could not be written to {password_out} ({exc.strerror or exc}); "
                    f"{self._cancel(backup)}"
                ) from None
        self.stdout.write(str(backup.pk))
        if password_out is not None:
            self.stderr.write(
                f"The archive password was written to {password_out} (mode 0600); it is not shown anywhere else.",
                style_func=self.style.WARNING,
            )
        if settings.BACKUP_DISPATCH_IMMEDIATELY:
            self._dispatch(backup)

    def _cancel(self, backup: Backup) -> str:
        try:
            services.backup_cancel(backup=backup, user=None)
        except services.BackupError:
            return f"backup {backup.pk} had already started and was not cancelled."
        return f"backup {backup.pk} was cancelled."

    def _dispatch(self, backup: Backup) -> None:
        """Start a worker on the new backup now; if the broker cannot be reached the backup stays
        queued and the periodic queue run picks it up, so this is a warning, not a failure."""
        from backups.tasks import run_backup

        try:
            run_backup.delay(backup.pk)
        except Exception as exc:
            logger.warning("backup %s: could not dispatch to a worker: %s", backup.pk, exc)
            self.stderr.write(
                f"No worker could be reached ({exc.__class__.__name__}); backup {backup.pk} stays queued for the "
                "next queue run, or run `manage.py backup process`.",
                style_func=self.style.WARNING,
            )

    # ----------------------------------------------------------------------------------- process

    def handle_process(self, *, limit: int | None, **_: Any) -> None:
        started = timezone.now()
        done = services.process_queue(limit=limit)
        # process_queue returns a count; the jobs this process ran carry its worker name.
        ran = list(
            Backup.objects.filter(worker=services.worker_name(), started_at__gte=started)
            .select_related("organization")
            .order_by("started_at", "pk")
        )
        self.stdout.write(f"Processed {done} backup(s).")
        for backup in ran:
            reason = f": {backup.failure_reason}" if backup.status == Backup.Status.FAILED else ""
            self.stdout.write(f"{backup.pk}  {backup.organization.slug}  {backup.status}{reason}")
        # The change summaries those backups queued (and any comparison left waiting).
        compared = comparisons_process()
        if compared:
            self.stdout.write(f"Processed {compared} comparison(s).")
        failed = sum(1 for b in ran if b.status == Backup.Status.FAILED)
        if failed:
            raise CommandError(f"{failed} of {done} backup(s) failed.")

    # -------------------------------------------------------------------------------------- list

    def handle_list(self, *, org: str | None, status: str | None, limit: int | None, **_: Any) -> None:
        qs = Backup.objects.select_related("organization").order_by("-created_at", "-pk")
        if org:
            qs = qs.filter(organization=common.organization(org))
        if status:
            qs = qs.filter(status=status)
        backups = list(qs[:limit] if limit else qs)
        if not backups:
            self.stdout.write("No backups.")
            return
        headers = ["ID", "ORGANIZATION", "KIND", "STATUS", "CREATED", "DOCUMENTS", "SIZE", "EXPIRES"]
        rows = [
            [
                str(b.pk),
                b.organization.slug,
                b.kind,
                b.status,
                common.when(b.created_at),
                "-" if b.document_count is None else str(b.document_count),
                common.size(b.size),
                common.when(b.download_expires_at) if b.status == Backup.Status.COMPLETED else "-",
            ]
            for b in backups
        ]
        self.stdout.write(common.table(headers, rows))
