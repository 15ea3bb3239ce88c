"""The two sides of a comparison: a stored backup's archive, or the organization's live rows.

Each side yields a model's rows as the backup writer wrote them (``ModelSpec.rows``' JSON shape),
in primary-key order, one at a time.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any, Protocol

from django.core.files.storage import Storage, default_storage

from backups import datasets as ds
from backups.archive import ArchiveReader
from backups.keys import PasswordUnavailable
from backups.models import Backup
from backups.stored_archive import manifest_scope, member_of, open_backup_archive, stream_rows
from organizations.models import Organization


class CompareError(Exception):
    """The comparison cannot be done; the message is a sentence for the user."""


class Side(Protocol):
    description: str

    def datasets(self) -> list[str]: ...

    def rows(self, dataset: str, spec: ds.ModelSpec) -> Iterator[dict[str, Any]]: ...

    def file_hash(self, value: Any) -> str | None: ...

    def close(self) -> None: ...


def open_backup_reader(backup: Backup, storage: Storage | None = None) -> ArchiveReader:
    """The stored archive of a completed backup, opened with the key ring's copy of its password."""
    if backup.status != Backup.Status.COMPLETED or not backup.file:
        raise CompareError(
            f"Backup “{backup.display_name}” has no kept file to compare (it expired or never completed)."
        )
    try:
        return open_backup_archive(backup, storage=storage)
    except PasswordUnavailable as exc:
        raise CompareError(str(exc)) from exc
    except FileNotFoundError as exc:
        raise CompareError(f"The file of backup “{backup.display_name}” is missing from storage.") from exc


class ArchiveSide:
    """A backup's rows, read member by member from its encrypted archive."""

    def __init__(self, backup: Backup, reader: ArchiveReader) -> None:
        self.backup = backup
        self.description = backup.display_name
        self._reader = reader
        self.manifest = reader.manifest
        self.scope = manifest_scope(self.manifest)

    @classmethod
    def open(cls, backup: Backup, storage: Storage | None = None) -> ArchiveSide:
        return cls(backup, open_backup_reader(backup, storage))

    def datasets(self) -> list[str]:
        return list((self.manifest.get("scope") or {}).get("datasets") or [])

    def row_count(self) -> int:
        counts = self.manifest.get("row_counts") or {}
        return sum(int(n) for per in counts.values() if isinstance(per, dict) for n in per.values())

    def rows(self, dataset: str, spec: ds.ModelSpec) -> Iterator[dict[str, Any]]:
        return stream_rows(self._reader, member_of(dataset, spec))

    def file_hash(self, value: Any) -> str | None:
        """The SHA-256 of a stored file a row refers to (``{"member": ...}``), from the manifest."""
        if not isinstance(value, dict) or not value.get("member"):
            return None
        listed = self._reader.members.get(value["member"])
        return listed[1] if listed is not None else None

    def close(self) -> None:
        self._reader.close()


class LiveSide:
    """The organization's rows now, limited to a backup's scope and data sets."""

    description = "now"

    def __init__(
        self, organization: Organization, scope: ds.Scope, datasets: list[str], storage: Storage | None = None
    ) -> None:
        self.organization = organization
        self.scope = scope
        self._datasets = datasets
        self._storage = storage or default_storage

    def datasets(self) -> list[str]:
        return list(self._datasets)

    def rows(self, dataset: str, spec: ds.ModelSpec) -> Iterator[dict[str, Any]]:
        return spec.rows(self.organization, self.scope)

    def file_hash(self, value: Any) -> str | None:
        """The SHA-256 of a stored file (the logo: one file, so reading it is cheap)."""
        if not value or not isinstance(value, str):
            return None
        digest = hashlib.sha256()
        try:
            with self._storage.open(value, "rb") as fh:
                while chunk := fh.read(1024 * 1024):
                    digest.update(chunk)
        except FileNotFoundError:
            return "missing"
        return digest.hexdigest()

    def close(self) -> None:
        pass
