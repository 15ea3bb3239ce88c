"""Import an archive's rows into a target organization, with fresh primary keys.

The counterpart of ``backups.export``: it walks the same registry, in the same dependency
order. It does not manage transactions; callers (restore, verification) wrap it in one
and remove ``ImportResult.stored_files`` if the transaction is rolled back.
"""

from __future__ import annotations

import io
import json
import posixpath
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from django.core.files.storage import Storage, default_storage
from django.db import models

from backups import datasets as ds
from backups.archive import ArchiveReader
from organizations.models import Organization


class StoredFiles:
    """The names of the files an import stored, in the order stored: ``append``, ``len``,
    iteration. Kept in a temporary file, not in memory, so a restore of a million files holds
    no million strings (the names are only needed again to remove them after a rollback)."""

    def __init__(self) -> None:
        self._file: IO[str] | None = None  # created with the first name
        self._count = 0

    def append(self, name: str) -> None:
        if "\n" in name:
            raise ValueError(f"A stored file's name cannot hold a line break: {name!r}")
        if self._file is None:
            self._file = tempfile.TemporaryFile("w+", encoding="utf-8")  # noqa: SIM115 - closed when self goes
        self._file.write(name + "\n")
        self._count += 1

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[str]:
        if self._file is None:
            return
        self._file.flush()
        with open(self._file.fileno(), encoding="utf-8", closefd=False) as lines:
            lines.seek(0)
            for line in lines:
                yield line[:-1]

    def __eq__(self, other: object) -> bool:
        if isinstance(other, StoredFiles | list | tuple):
            return len(self) == len(other) and list(self) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"StoredFiles({len(self)} names)"


@dataclass
class ImportResult:
    row_counts: dict[str, dict[str, int]] = field(default_factory=dict)
    stored_files: StoredFiles = field(default_factory=StoredFiles)


def _rows(reader: ArchiveReader, name: str) -> Iterator[dict[str, Any]]:
    with reader.open(name) as fh:
        for line in io.TextIOWrapper(fh, encoding="utf-8"):
            if line.strip():
                yield json.loads(line)


def in_folder(name: str, folder: str) -> str:
    """``documents/<id>`` stored in ``folder``: ``documents/<folder>/<id>`` (unchanged without one)."""
    if not folder:
        return name
    head, tail = posixpath.split(name)
    return posixpath.join(head, folder, tail)


def store_file(storage: Storage, name: str, stream: Any, stored: StoredFiles, max_length: int | None = None) -> str:
    """Save an archive member's ``stream`` as ``name`` and record it in ``stored``.

    A member's checks run at its end, after its bytes went to the storage: when they fail (or
    the storage does), ``name`` is recorded all the same, so the rollback that follows removes
    what was written of it (local storage leaves a partial file behind). Names are fresh (the
    upload paths are random), so the name asked for is the one the storage writes.
    """
    try:
        name = storage.save(name, stream, max_length=max_length)
    finally:
        stored.append(name)
    return name


def _saver(storage: Storage, folder: str, stored: StoredFiles) -> Any:
    def save(fld: models.FileField, stream: Any, hint: str) -> str:
        name = fld.generate_filename(None, hint or "file")
        return store_file(storage, in_folder(name, folder), stream, stored, fld.max_length)

    return save


def import_archive(
    *,
    reader: ArchiveReader,
    organization: Organization,
    datasets: list[str] | None = None,
    storage: Storage | None = None,
    result: ImportResult | None = None,
    folder: str = "",
) -> ImportResult:
    """Create the archive's rows (all its data sets, or the given ones) in ``organization``.

    Files are written to storage as they come; their names are collected in the result (also
    when this raises, a file cut short by a damaged member included) so a caller can delete
    them after a rollback. With ``folder`` they go into that folder of their kind's
    (``documents/<folder>/...``), where a caller that died before it could delete them can
    still find them.
    """
    storage = storage or default_storage
    result = result if result is not None else ImportResult()
    manifest = reader.manifest
    in_archive = manifest.get("scope", {}).get("datasets") or []
    keys = [k for k in ds.resolve(datasets or in_archive) if k in in_archive]
    ctx = ds.ImportContext(
        organization=organization, open_member=reader.open, save_file=_saver(storage, folder, result.stored_files)
    )
    for key in keys:
        counts = result.row_counts.setdefault(key, {})
        for spec in ds.REGISTRY[key].models:
            member = f"data/{key}/{spec.key}.jsonl"
            if member not in reader.names:
                counts[spec.key] = 0
                continue
            rows = _rows(reader, member)
            if spec.importer is not None:
                counts[spec.key] = spec.importer(organization, list(rows), ctx)
            else:
                counts[spec.key] = ds.import_plain_rows(spec, rows, ctx)
    return result


def delete_files(names: Iterable[str], storage: Storage | None = None) -> None:
    """Remove files an import stored (after its transaction was rolled back)."""
    storage = storage or default_storage
    for name in names:
        try:
            storage.delete(name)
        except Exception:  # noqa: S112 - best effort; the rest must still go
            continue
