"""The two sides of a comparison: a stored backup's archive, or the organization's live rows.

Each side yields a model's rows as the backup writer wrote them (``ModelSpec.rows``' JSON shape),
in primary-key order, one at a time.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Iterator
from typing import Any, Protocol

from django.core.files.storage import Storage, default_storage

from backups import datasets as ds
from backups.archive import ArchiveReader
from backups.models import Backup
from organizations.models import Organization


class CompareError(Exception):
    """The comparison cannot be done; the message is a sentence for the user."""


class Side(Protocol):
    description: str

    def datasets(self) -> list[str]: ...

    def rows(self, dataset: str, spec: ds.ModelSpec) -> Iterator[dict[str, Any]]: ...

    def file_hash(self, value: Any) -> str | None: ...

    def close(self) -> None: ...


def scope_of(manifest: dict[str, Any]) -> ds.Scope:
    """The scope a backup was taken with, as its manifest records it."""
    scope = manifest.get("scope") or {}
    ous = scope.get("ous")
    return ds.Scope(
        ou_ids=None if ous is None else frozenset(int(i) for i in ous),
        include_active=bool(scope.get("include_active", True)),
        include_inactive=bool(scope.get("include_inactive", False)),
        exclude_superseded=bool(scope.get("exclude_superseded", False)),
    )


class _StoredReader(ArchiveReader):
    """A reader of a file opened from storage, which it closes with itself."""

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._file.close()


def open_backup_reader(backup: Backup, storage: Storage | None = None) -> ArchiveReader:
    """The stored archive of a completed backup, opened with the key ring's copy of its password."""
    from backups.export import current_schema
    from backups.keys import PasswordUnavailable, unwrap_password
    from backups.verify import archive_limits

    if backup.status != Backup.Status.COMPLETED or not backup.file:
        raise CompareError(
            f"Backup “{backup.display_name}” has no kept file to compare (it expired or never completed)."
        )
    try:
        password = unwrap_password(backup.password_wrapped)
    except PasswordUnavailable as exc:
        raise CompareError(str(exc)) from exc
    storage = storage or default_storage
    try:
        fh = storage.open(backup.file.name, "rb")
    except FileNotFoundError as exc:
        raise CompareError(f"The file of backup “{backup.display_name}” is missing from storage.") from exc
    try:
        return _StoredReader(fh, password, limits=archive_limits(), current_schema=current_schema())
    except BaseException:
        fh.close()
        raise


class ArchiveSide:
    """A backup's rows, read member by member from its encrypted archive."""

    def __init__(self, backup: Backup, reader: ArchiveReader) -> None:
        self.backup = backup
        self.description = backup.display_name
        self._reader = reader
        self.manifest = reader.manifest
        self.scope = scope_of(self.manifest)

    @classmethod
    def open(cls, backup: Backup, storage: Storage | None = None) -> ArchiveSide:
        return cls(backup, open_backup_reader(backup, storage))

    def datasets(self) -> list[str]:
        return list((self.manifest.get("scope") or {}).get("datasets") or [])

    def row_count(self) -> int:
        counts = self.manifest.get("row_counts") or {}
        return sum(int(n) for per in counts.values() if isinstance(per, dict) for n in per.values())

    def rows(self, dataset: str, spec: ds.ModelSpec) -> Iterator[dict[str, Any]]:
        name = f"data/{dataset}/{spec.key}.jsonl"
        if name not in self._reader.names:
            return
        with self._reader.open(name) as fh:
            for line in io.TextIOWrapper(fh, encoding="utf-8"):
                if line.strip():
                    yield json.loads(line)

    def file_hash(self, value: Any) -> str | None:
        """The SHA-256 of a stored file a row refers to (``{"member": ...}``), from the manifest."""
        if not isinstance(value, dict) or not value.get("member"):
            return None
        for item in self.manifest.get("members") or []:
            if item.get("path") == value["member"]:
                return str(item.get("sha256") or "")
        return None

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
