"""What the backup services share: their errors, the timeline event and the removal of a
(partial) archive from storage."""

from __future__ import annotations

import logging

from django.core.files.storage import Storage

from accounts.models import User
from backups.models import Backup, BackupEvent

# One logger for the backup services, under the name operators know from the logs.
logger = logging.getLogger("backups.services")


class BackupError(Exception):
    """A request or transition the rules refuse; the message is shown to the user as is."""


class IllegalTransition(BackupError):
    pass


class BackupAborted(Exception):
    """The job was cancelled or failed by someone else (e.g. the stale sweep) while running."""


def _event(backup: Backup, status: str, message: str = "", actor: User | None = None) -> None:
    BackupEvent.objects.create(backup=backup, status=status, message=message[:500], actor=actor)


def _delete_quietly(storage: Storage, name: str) -> bool:
    """Remove a (partial) archive. On S3, also abort an unfinished multipart upload: a worker
    killed mid-upload leaves parts that no object delete removes (and that are billed).
    Returns False when the storage could not be asked (it is unavailable): something may be left."""
    if not name:
        return True
    removed = True
    try:
        storage.delete(name)
    except Exception:
        removed = False
        logger.warning("could not delete the stored file %s", name, exc_info=True)
    bucket = getattr(storage, "bucket", None)
    if bucket is not None:
        try:
            key = storage._normalize_name(name)  # type: ignore[attr-defined]
            for upload in bucket.multipart_uploads.filter(Prefix=key):
                if upload.object_key == key:
                    upload.abort()
        except Exception:
            removed = False
            logger.warning("could not abort the multipart upload of %s", name, exc_info=True)
    return removed
