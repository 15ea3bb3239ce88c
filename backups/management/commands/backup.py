"""``manage.py backup``: create, process, list, verify, export, decrypt and compare backups from a shell
(``compare`` lives in ``backups/management/compare_command.py``).

For operators and scripts. ``create`` prints only the new backup's id on stdout, so a script
can capture it; every refusal is one sentence and a non-zero exit (``CommandError``).
Passwords are never printed, logged or put in an error message: ``create`` either reads the
requester's own password from a file or writes the generated one to a new file with mode 0600.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import shutil
from argparse import ArgumentParser, ArgumentTypeError
from pathlib import Path
from typing import Any, BinaryIO

from django.conf import settings
from django.core.files.storage import default_storage
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from accounts.services import audit_log
from backups import datasets as ds
from backups import services
from backups.archive import ArchiveError, ArchiveReader
from backups.compare.services import comparisons_process
from backups.management import compare_command
from backups.models import Backup
from backups.verify import archive_limits, backup_verify
from organizations.models import OrganisationalUnit, Organization

COPY_BUFFER = 1024 * 1024
MAX_PASSWORD_FILE = 4096

logger = logging.getLogger(__name__)


def _positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise ArgumentTypeError(f"{value!r} is not a whole number") from None
    if number < 1:
        raise ArgumentTypeError("must be 1 or more")
    return number


def _csv(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


def _table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]
    lines = [headers, ["-" * w for w in widths], *rows]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in lines)


def _size(value: int | None) -> str:
    if value is None:
        return "-"
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{int(size)} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"  # pragma: no cover - the loop always returns


def _when(value: Any) -> str:
    return timezone.localtime(value).strftime("%Y-%m-%d %H:%M") if value else "-"


def _read_password(path: Path) -> str:
    """The password in ``path`` (one line; a trailing newline is ignored). Never echoed."""
    try:
        with path.open("rb") as fh:
            raw = fh.read(MAX_PASSWORD_FILE + 1)
    except FileNotFoundError:
        raise CommandError(f"The password file {path} does not exist.") from None
    except OSError as exc:
        raise CommandError(f"The password file {path} cannot be read: {exc.strerror or exc}.") from None
    if len(raw) > MAX_PASSWORD_FILE:
        raise CommandError(f"The password file {path} is too large to hold a password.")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise CommandError(f"The password file {path} is not UTF-8 text.") from None
    password = text.removesuffix("\n").removesuffix("\r")
    if "\n" in password or "\r" in password:
        raise CommandError(f"The password file {path} must hold the password on a single line.")
    if not password:
        raise CommandError(f"The password file {path} is empty.")
    return password


def _new_secret_file(path: Path) -> int:
    """Create ``path`` for writing, readable by its owner only; never replaces an existing file."""
    try:
        return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise CommandError(
            f"{path} already exists; give a new file for the password (it is never overwritten)."
        ) from None
    except FileNotFoundError:
        raise CommandError(f"The folder of {path} does not exist.") from None
    except OSError as exc:
        raise CommandError(f"{path} cannot be created: {exc.strerror or exc}.") from None


def _organization(slug: str) -> Organization:
    organization = Organization.objects.filter(slug=slug).first()
    if organization is None:
        raise CommandError(f"There is no organization with the slug {slug!r}.")
    return organization


def _backup(backup_id: int) -> Backup:
    backup = Backup.objects.select_related("organization").filter(pk=backup_id).first()
    if backup is None:
        raise CommandError(f"There is no backup with id {backup_id}.")
    return backup


class _HashingWriter:
    """A write-only file that hashes what passes through it."""

    def __init__(self, target: BinaryIO) -> None:
        self.target = target
        self.digest = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.digest.update(data)
        self.size += len(data)
        return self.target.write(data)


class Command(BaseCommand):
    help = (
        "Create, process, list, verify, export, decrypt and compare backups. "
        "Run `manage.py backup ACTION --help` for the options of one action."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

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
            type=_csv,
            default=[],
            metavar="KEY,KEY",
            help="Data sets to include (default: all); the ones they depend on are added. "
            f"Keys: {', '.join(ds.REGISTRY)}.",
        )
        create.add_argument(
            "--ous",
            type=_csv,
            default=[],
            metavar="CODE,CODE",
            help="Limit the backup to these OUs (by code); default: every OU.",
        )
        create.add_argument("--include-inactive", action="store_true", help="Include inactive documents.")
        create.add_argument("--exclude-superseded", action="store_true", help="Leave superseded documents out.")
        create.add_argument("--no-active", action="store_true", help="Leave active documents out.")
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
        process.add_argument("--limit", type=_positive_int, metavar="N", help="Run at most N backups.")

        listing = sub.add_parser("list", help="Show backups as a table.", description="Show backups, newest first.")
        listing.add_argument("--org", metavar="SLUG", help="Only this organization's backups.")
        listing.add_argument("--status", choices=Backup.Status.values, help="Only backups in this status.")
        listing.add_argument("--limit", type=_positive_int, metavar="N", help="Show at most N backups.")

        verify = sub.add_parser(
            "verify",
            help="Decrypt a stored backup and check every hash; record the result.",
            description="Decrypt a completed backup's stored archive with its wrapped password, check its "
            "structure, manifest and every member's SHA-256, and record the result on the backup. "
            "Exits non-zero when the check fails.",
        )
        verify.add_argument("backup_id", type=_positive_int, metavar="ID", help="The backup's id.")

        export = sub.add_parser(
            "export",
            help="Copy a completed backup's archive out of storage to a file.",
            description="Copy a completed backup's (encrypted) archive to FILE, checking its SHA-256 on the way.",
        )
        export.add_argument("backup_id", type=_positive_int, metavar="ID", help="The backup's id.")
        export.add_argument("--out", required=True, type=Path, metavar="FILE", help="Where to write the archive.")
        export.add_argument("--force", action="store_true", help="Replace FILE if it exists.")

        decrypt = sub.add_parser(
            "decrypt",
            help="Decrypt and extract a downloaded archive without 7-Zip.",
            description="Open a downloaded backup archive with its password, verify every member and extract "
            "them all into DIR (which must not hold files of the same names). Open DIR/index.html to browse.",
        )
        decrypt.add_argument("file", type=Path, metavar="FILE", help="The downloaded .zip archive.")
        decrypt.add_argument(
            "--password-file", required=True, type=Path, metavar="FILE", help="A file holding the password."
        )
        decrypt.add_argument("--out", required=True, type=Path, metavar="DIR", help="The folder to extract into.")

        compare_command.add_parser(sub, _positive_int)

    def handle(self, *args: Any, action: str, **options: Any) -> None:
        getattr(self, f"handle_{action}")(**options)

    def handle_compare(self, **options: Any) -> None:
        compare_command.handle(self, **options)

    # ------------------------------------------------------------------------------------ create

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
        **_: Any,
    ) -> None:
        organization = _organization(org)
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
        own_password = _read_password(password_file) if password_file is not None else None
        # The password file is created before anything is queued, so a bad path refuses cleanly.
        fd = _new_secret_file(password_out) if password_out is not None else None
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
            qs = qs.filter(organization=_organization(org))
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
                _when(b.created_at),
                "-" if b.document_count is None else str(b.document_count),
                _size(b.size),
                _when(b.download_expires_at) if b.status == Backup.Status.COMPLETED else "-",
            ]
            for b in backups
        ]
        self.stdout.write(_table(headers, rows))

    # ------------------------------------------------------------------------------------ verify

    def handle_verify(self, *, backup_id: int, **_: Any) -> None:
        backup = _backup(backup_id)
        try:
            backup = backup_verify(backup=backup)
        except services.BackupError as exc:
            raise CommandError(str(exc)) from None
        if not backup.verification_ok:
            raise CommandError(f"Backup {backup.pk} failed verification: {backup.verification_message}")
        self.stdout.write(f"OK: {backup.verification_message}")

    # ------------------------------------------------------------------------------------ export

    def handle_export(self, *, backup_id: int, out: Path, force: bool, **_: Any) -> None:
        backup = _backup(backup_id)
        if backup.status == Backup.Status.EXPIRED:
            raise CommandError(f"Backup {backup.pk} has expired; its archive was deleted.")
        if backup.status != Backup.Status.COMPLETED or not backup.file:
            raise CommandError(
                f"Backup {backup.pk} is {backup.get_status_display()}; only a completed backup can be exported."
            )
        if not backup.is_downloadable:
            raise CommandError(f"The download period of backup {backup.pk} is over; its archive is being deleted.")
        if out.is_dir():
            raise CommandError(f"{out} is a folder; give the path of the file to write.")
        if (out.exists() or out.is_symlink()) and not force:
            raise CommandError(f"{out} already exists; use --force to replace it.")
        if not out.parent.is_dir():
            raise CommandError(f"The folder of {out} does not exist.")
        try:
            src = default_storage.open(backup.file.name, "rb")
        except FileNotFoundError:
            raise CommandError(
                f"The archive of backup {backup.pk} is missing from storage; run `backup verify {backup.pk}`."
            ) from None
        # Written under a temporary name and renamed, so FILE is never a partial archive.
        temp = out.with_name(f".{out.name}.{secrets.token_hex(4)}.part")
        try:
            with src, temp.open("xb") as dst:
                sink = _HashingWriter(dst)
                shutil.copyfileobj(src, sink, COPY_BUFFER)
            if backup.sha256 and sink.digest.hexdigest() != backup.sha256:
                raise CommandError(
                    f"The stored archive of backup {backup.pk} does not match its recorded SHA-256; nothing was "
                    f"written. Run `backup verify {backup.pk}`."
                )
            os.replace(temp, out)
        except OSError as exc:
            raise CommandError(f"The archive could not be copied to {out}: {exc.strerror or exc}.") from None
        finally:
            temp.unlink(missing_ok=True)
        audit_log(
            action="backup.export",
            organization=backup.organization,
            obj=backup,
            details={"via": "manage.py backup export", "path": str(out)},
        )
        self.stdout.write(
            f"Exported backup {backup.pk} to {out} ({_size(sink.size)}, SHA-256 {sink.digest.hexdigest()})."
        )

    # ----------------------------------------------------------------------------------- decrypt

    def handle_decrypt(self, *, file: Path, password_file: Path, out: Path, **_: Any) -> None:
        if not file.is_file():
            raise CommandError(f"There is no file at {file}.")
        password = _read_password(password_file)
        if out.exists() and not out.is_dir():
            raise CommandError(f"{out} is a file; give a folder to extract into.")
        try:
            with ArchiveReader(file, password, limits=archive_limits()) as reader:
                manifest = reader.extract_all(out)
                count = len(reader.names)
        except ArchiveError as exc:
            raise CommandError(str(exc)) from None
        except FileExistsError as exc:
            raise CommandError(str(exc)) from None
        except OSError as exc:
            raise CommandError(f"The archive could not be extracted into {out}: {exc.strerror or exc}.") from None
        organization = manifest.get("organization", {}).get("name", "?")
        self.stdout.write(
            f"Extracted {count} files into {out}, every SHA-256 verified: backup of {organization} taken "
            f"{manifest.get('created_at', '?')}. Open {out / 'index.html'} to browse the documents."
        )
