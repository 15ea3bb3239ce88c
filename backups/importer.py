"""Import an archive's rows into a target organization, with fresh primary keys.

The counterpart of ``backups.export``: it walks the same registry, in the same dependency
order. It does not manage transactions; callers (restore, verification) wrap it in one
and remove ``ImportResult.stored_files`` if the transaction is rolled back.
"""

from __future__ import annotations

import io
import json
import posixpath
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from django.core.files.storage import Storage, default_storage
from django.db import models

from backups import datasets as ds
from backups.archive import ArchiveReader
from organizations.models import Organization


@dataclass
class ImportResult:
    row_counts: dict[str, dict[str, int]] = field(default_factory=dict)
    stored_files: list[str] = field(default_factory=list)


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


def _saver(storage: Storage, folder: str = "") -> Any:
    def save(fld: models.FileField, stream: Any, hint: str) -> str:
        name = fld.generate_filename(None, hint or "file")
        return storage.save(in_folder(name, folder), stream)

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
    when this raises) so a caller can delete them after a rollback. With ``folder`` they go
    into that folder of their kind's (``documents/<folder>/...``), where a caller that died
    before it could delete them can still find them.
    """
    storage = storage or default_storage
    result = result if result is not None else ImportResult()
    manifest = reader.manifest
    in_archive = manifest.get("scope", {}).get("datasets") or []
    keys = [k for k in ds.resolve(datasets or in_archive) if k in in_archive]
    ctx = ds.ImportContext(organization=organization, open_member=reader.open, save_file=_saver(storage, folder))
    # Share the list so that files stored before a failure are still reported.
    ctx.stored_files = result.stored_files
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


def delete_files(names: list[str], storage: Storage | None = None) -> None:
    """Remove files an import stored (after its transaction was rolled back)."""
    storage = storage or default_storage
    for name in names:
        try:
            storage.delete(name)
        except Exception:  # noqa: S112 - best effort; the rest must still go
            continue
