"""Verification with a rehearsal: decrypt, check every hash (``backups.verify``), then restore
the archive into a throwaway organization inside a transaction that is rolled back.

The rehearsal writes files into a scratch folder that is removed afterwards, so it never
touches real storage; the database sees nothing of it once the transaction is rolled back.
"""

from __future__ import annotations

import logging
import tempfile
import uuid
from typing import Any

from django.core.files.storage import FileSystemStorage, Storage
from django.db import transaction
from django.utils import timezone

from accounts.models import User
from accounts.services import audit_log
from backups import datasets as ds
from backups.archive import ArchiveError
from backups.importer import ImportResult, import_archive
from backups.keys import PasswordUnavailable
from backups.models import Backup, BackupEvent
from backups.verify import backup_verify, raise_not_checked_if_storage_failed
from organizations.models import MasterDataVersion, Organization
from restores import engine, upgrades

logger = logging.getLogger(__name__)


class _Rehearsed(Exception):
    """Raised to roll the rehearsal back once the import went through."""


class RehearsalFailed(Exception):
    pass


def rehearse(reader: Any) -> str:
    """Import the archive into a throwaway organization and roll everything back.

    Returns a sentence describing what was imported; raises ``RehearsalFailed`` with the reason.
    """
    reader = upgrades.upgraded(reader)
    manifest = reader.manifest
    result = ImportResult()
    code = manifest.get("master_data_version")
    with tempfile.TemporaryDirectory(prefix="restore-rehearsal-") as scratch:
        storage = FileSystemStorage(location=scratch)
        try:
            with transaction.atomic():
                mdv = MasterDataVersion.objects.filter(code=code).first()
                if mdv is None:
                    raise RehearsalFailed(
                        f"the backup needs master data version {code}, which this system does not have"
                    )
                org = Organization.objects.create(
                    slug=f"rehearsal-{uuid.uuid4().hex[:20]}",
                    name=str((manifest.get("organization") or {}).get("name") or "Rehearsal"),
                    master_data_version=mdv,
                )
                import_archive(reader=reader, organization=org, storage=storage, result=result)
                raise _Rehearsed
        except _Rehearsed:
            pass
        except RehearsalFailed:
            raise
        except (ArchiveError, ds.RestoreDataError, engine.RestoreRefused) as exc:
            raise RehearsalFailed(str(exc)) from exc
        except Exception as exc:
            logger.exception("restore rehearsal failed")
            raise RehearsalFailed(f"an unexpected error ({exc.__class__.__name__})") from exc
    expected = manifest.get("row_counts") or {}
    rows = 0
    for key, per_model in result.row_counts.items():
        for spec in ds.REGISTRY[key].models:
            got = per_model.get(spec.key, 0)
            rows += got
            want = (expected.get(key) or {}).get(spec.key)
            # Custom importers may skip rows on purpose (memberships of users unknown here).
            if spec.importer is None and want is not None and got != want:
                raise RehearsalFailed(f"{spec.key} rows imported {got}, the backup holds {want}")
    return f"Restore rehearsed: {rows} rows and {len(result.stored_files)} files imported, then rolled back."


def backup_verify_and_rehearse(
    *, backup: Backup, user: User | None = None, request: Any = None, storage: Storage | None = None
) -> Backup:
    """Verify a completed backup (every hash, via ``backups.verify.backup_verify``) and rehearse
    its restore; record the outcome on the backup (``last_verified_at``, ``verification_ok``,
    ``verification_message``), its timeline and the audit log. When the file storage cannot be
    reached, for the hash check or for the rehearsal, ``VerificationNotChecked`` is raised (the
    timeline says it could not be checked; no failed rehearsal is recorded)."""
    backup = backup_verify(backup=backup, user=user, request=request, storage=storage)
    if not backup.verification_ok:
        return backup
    try:
        with engine.open_backup(backup, storage) as reader:
            sentence = rehearse(reader)
        ok, message = True, f"{backup.verification_message} {sentence}"
    except (RehearsalFailed, engine.RestoreRefused, ArchiveError, PasswordUnavailable) as exc:
        # The store went away after the hash check: no verdict on the restore, not a failure.
        raise_not_checked_if_storage_failed(backup, exc, user=user, request=request)
        ok, message = False, f"The archive is intact, but its restore rehearsal failed: {exc}."
    except Exception as exc:
        raise_not_checked_if_storage_failed(backup, exc, user=user, request=request)
        raise
    with transaction.atomic():
        Backup.objects.filter(pk=backup.pk).update(
            last_verified_at=timezone.now(), verification_ok=ok, verification_message=message
        )
        backup.refresh_from_db()
        BackupEvent.objects.create(
            backup=backup,
            status=backup.status,
            message=("Rehearsed: " if ok else "Rehearsal failed: ") + message[:480],
            actor=user,
        )
        audit_log(
            action="backup.rehearse",
            actor=user,
            organization=backup.organization,
            obj=backup,
            request=request,
            details={"ok": ok, "message": message},
        )
    log = logger.info if ok else logger.warning
    log("backup %s rehearsal: %s", backup.pk, message)
    return backup
