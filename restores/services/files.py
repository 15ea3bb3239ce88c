"""Where a restore stores the files it imports, and removing them when it fails."""

from __future__ import annotations

import contextlib
import os

from django.core.files.storage import Storage, default_storage

from backups.importer import delete_files
from restores.models import Restore
from restores.services.common import logger


def restore_files_folder(restore: Restore) -> str:
    """The folder, inside each kind's own (``documents/restore-<id>/...``), where a restore
    stores the files it imports: if its worker dies, no committed row points at them, and the
    stale sweep finds them there."""
    return f"restore-{restore.pk}"


def _discard_stored_files(restore: Restore, storage: Storage | None = None) -> None:
    """Remove what a failed restore stored (none of it is referenced: its transaction never
    committed)."""
    storage = storage or default_storage
    folder = restore_files_folder(restore)
    names: list[str] = []
    try:
        kinds, _files = storage.listdir("")
        for kind in kinds:
            try:
                _dirs, files = storage.listdir(f"{kind}/{folder}")
            except FileNotFoundError:
                continue
            names += [f"{kind}/{folder}/{name}" for name in files]
    except Exception:
        logger.warning("restore %s: could not list the files it stored", restore.pk, exc_info=True)
    delete_files(names, storage)
    _remove_empty_folders(restore, storage)


def _remove_empty_folders(restore: Restore, storage: Storage) -> None:
    """Local storage keeps a folder when its last file is deleted: remove the restore's own
    folders (``<kind>/restore-<id>``) once empty. Object stores have no folders."""
    try:
        root = storage.path("")
    except NotImplementedError:
        return
    folder = restore_files_folder(restore)
    try:
        kinds = os.listdir(root)
    except OSError:
        return
    for kind in kinds:
        with contextlib.suppress(OSError):  # not there, or not empty: kept
            os.rmdir(os.path.join(root, kind, folder))
