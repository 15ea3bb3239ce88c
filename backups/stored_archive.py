"""A backup's stored archive, opened for reading, and its rows: what compare, browse and restores share.

The archive is read where it is kept (``open_for_reading``: S3 by ranges), with this server's
limits and schema; a model's rows stream from its ``data/<data set>/<model>.jsonl`` member one at
a time (the member's hashes are checked when it is read to its end).
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

from django.core.files.storage import Storage, default_storage

from backups import datasets as ds
from backups.archive import ArchiveReader
from backups.keys import unwrap_password
from backups.models import Backup
from backups.storage_io import open_for_reading


class StoredArchiveReader(ArchiveReader):
    """A reader of a file opened from storage, which it closes with itself."""

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._file.close()


def open_backup_archive(
    backup: Backup, *, password: str | None = None, storage: Storage | None = None
) -> ArchiveReader:
    """The stored archive of ``backup``, opened with ``password`` or else the key ring's copy of it.

    Nothing is read yet (``reader.check()`` validates). Raises ``PasswordUnavailable`` (the key
    ring cannot unwrap the password) and ``FileNotFoundError`` (the file is gone from storage).
    """
    from backups.export import current_schema
    from backups.verify import archive_limits

    if password is None:
        password = unwrap_password(backup.password_wrapped)
    fh = open_for_reading(storage or default_storage, backup.file.name)
    try:
        return StoredArchiveReader(fh, password, limits=archive_limits(), current_schema=current_schema())
    except BaseException:
        fh.close()
        raise


def member_of(dataset: str, spec: ds.ModelSpec) -> str:
    """The archive member holding a data set's rows of one model."""
    return f"data/{dataset}/{spec.key}.jsonl"


def stream_rows(reader: Any, member: str) -> Iterator[dict[str, Any]]:
    """A member's rows, one at a time; nothing when the archive has no such member."""
    if member not in reader.names:
        return
    with reader.open(member) as fh:
        for line in io.TextIOWrapper(fh, encoding="utf-8"):
            if line.strip():
                yield json.loads(line)


def manifest_scope(manifest: dict[str, Any]) -> ds.Scope:
    """The scope a backup was taken with, as its manifest records it."""
    scope = manifest.get("scope") or {}
    ous = scope.get("ous")
    return ds.Scope(
        ou_ids=None if ous is None else frozenset(int(i) for i in ous),
        include_active=bool(scope.get("include_active", True)),
        include_inactive=bool(scope.get("include_inactive", False)),
        exclude_superseded=bool(scope.get("exclude_superseded", False)),
    )
