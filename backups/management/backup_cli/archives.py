"""``verify``, ``export`` and ``decrypt``: check a stored archive, copy it out, open a download."""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
from argparse import _SubParsersAction
from pathlib import Path
from typing import Any, BinaryIO

from django.core.files.storage import default_storage
from django.core.management.base import CommandError

from accounts.services import audit_log
from backups import services
from backups.archive import ArchiveError, ArchiveReader
from backups.management.backup_cli import common
from backups.models import Backup
from backups.verify import archive_limits, backup_verify

COPY_BUFFER = 1024 * 1024


def add_parsers(sub: _SubParsersAction) -> None:  # type: ignore[type-arg]
    verify = sub.add_parser(
        "verify",
        help="Decrypt a stored backup and check every hash; record the result.",
        description="Decrypt a completed backup's stored archive with its wrapped password, check its "
        "structure, manifest and every member's SHA-256, and record the result on the backup. "
        "Exits non-zero when the check fails.",
    )
    verify.add_argument("backup_id", type=common.positive_int, metavar="ID", help="The backup's id.")

    export = sub.add_parser(
        "export",
        help="Copy a completed backup's archive out of storage to a file.",
        description="Copy a completed backup's (encrypted) archive to FILE, checking its SHA-256 on the way.",
    )
    export.add_argument("backup_id", type=common.positive_int, metavar="ID", help="The backup's id.")
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


class ArchivesCommands:
    """Mixed into the command: ``self.stdout`` is the command's."""

    def handle_verify(self, *, backup_id: int, **_: Any) -> None:
        backup = common.backup(backup_id)
        try:
            backup = backup_verify(backup=backup)
        except services.BackupError as exc:
            raise CommandError(str(exc)) from None
        if not backup.verification_ok:
            raise CommandError(f"Backup {backup.pk} failed verification: {backup.verification_message}")
        self.stdout.write(f"OK: {backup.verification_message}")

    # ------------------------------------------------------------------------------------ export

    def handle_export(self, *, backup_id: int, out: Path, force: bool, **_: Any) -> None:
        backup = common.backup(backup_id)
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
            f"Exported backup {backup.pk} to {out} ({common.size(sink.size)}, SHA-256 {sink.digest.hexdigest()})."
        )

    # ----------------------------------------------------------------------------------- decrypt

    def handle_decrypt(self, *, file: Path, password_file: Path, out: Path, **_: Any) -> None:
        if not file.is_file():
            raise CommandError(f"There is no file at {file}.")
        password = common.read_password(password_file)
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
