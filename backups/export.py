"""Build one organization's archive from the data-set registry (format backupsvc/1)."""

from __future__ import annotations

import contextlib
import functools
import json
import secrets
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from django.core.files.storage import Storage, default_storage
from django.db.migrations.recorder import MigrationRecorder
from django.db.models import Sum
from django.utils import timezone

import backupsvc
from backups import datasets as ds
from backups.archive import ArchiveWriter
from backups.archive.catalog import CatalogEntry, render_csv, render_html
from backups.archive.readahead import Fetched, FileHandle, ReadAhead
from backupsvc.lib.sqlids import padded_to
from organizations.models import ControlledDocument, OrganisationalUnit, Organization

SCHEMA_APPS = ("accounts", "organizations", "backups")
# Staged rows and catalog lines stay in memory up to this size, then go to disk. Small, so a
# large tenant's worker does not hold more than a small one's (three such files at a time: at
# 4 and 8 MB they made the 8 GiB tenant's peak 10 % above the 1 GiB tenant's).
SPOOL_IN_MEMORY = 512 * 1024
# One encoder for every row: ``json.dumps`` with options builds a new one per call (per document,
# on the thread that feeds the archive).
_row_json = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
# Catalog lines titled per query: at most this many document ids in one ``IN`` list (below
# SQLite's historical limit of 999 parameters).
TITLE_BATCH = 900


def current_schema() -> dict[str, str]:
    """The latest applied migration of each app whose tables a backup holds."""
    schema: dict[str, str] = {}
    for app, name in MigrationRecorder.Migration.objects.filter(app__in=SCHEMA_APPS).values_list("app", "name"):
        if name > schema.get(app, ""):
            schema[app] = name
    return schema


@dataclass
class ExportResult:
    bytes_written: int
    sha256: str
    row_counts: dict[str, dict[str, int]]
    document_count: int
    manifest: dict[str, Any]
    catalog_entries: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def estimate(organization: Organization, scope: ds.Scope, keys: list[str]) -> tuple[int, int]:
    """(rows, bytes of stored files) the export will go through, for progress."""
    rows = 0
    for key in keys:
        for spec in ds.REGISTRY[key].models:
            if spec.queryset is not None:
                rows += spec.queryset(organization, scope).count()
    file_bytes = 0
    if "documents" in keys:
        file_bytes = ds._versions(organization, scope).aggregate(total=Sum("size"))["total"] or 0
    return rows, file_bytes


def write_archive(
    *,
    organization: Organization,
    scope: ds.Scope,
    datasets: list[str],
    sink: BinaryIO,
    password: str,
    created_by: str = "",
    extra_manifest: dict[str, Any] | None = None,
    storage: Storage | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ExportResult:
    """Stream the organization's chosen data sets into ``sink`` as an encrypted archive.

    ``progress(items_done, bytes_done)`` is called regularly from this thread (the caller
    uses it as the job's heartbeat and may raise to abort).
    """
    storage = storage or default_storage
    keys = ds.resolve(datasets)
    items_done = 0
    row_counts: dict[str, dict[str, int]] = {}
    # The catalog grows with the tenant: it is staged on disk (a spooled temp file) with each
    # version's document id, and the documents' titles are looked up in batches at the end,
    # so memory stays flat whatever the number of documents.
    catalog = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)  # noqa: SIM115 - closed below
    catalog_count = 0
    ou_names = dict(OrganisationalUnit.objects.filter(organization=organization).values_list("pk", "name"))

    def report(bytes_done: int) -> None:
        if progress is not None:
            progress(items_done, bytes_done)

    writer = ArchiveWriter(sink, password, progress=report)
    member_names = _member_names()
    try:
        for key in keys:
            dataset = ds.REGISTRY[key]
            row_counts[key] = {}
            for spec in dataset.models:
                count = 0
                has_files = bool(spec.files) or spec.key == "profile"
                # Rows whose files go in as their own members are staged in a spooled temp
                # file (memory-bounded), because one member must be complete before the next.
                # Closed on every path: a stored file that cannot be read must not leave it open.
                staging_cm = (
                    tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)  # noqa: SIM115 - closed by the with
                    if has_files
                    else contextlib.nullcontext(None)
                )
                with staging_cm as staging:
                    member_cm = (
                        contextlib.nullcontext(staging)
                        if staging
                        else writer.open_member(f"data/{key}/{spec.key}.jsonl")
                    )
                    file_fields = spec.files + (("logo",) if spec.key == "profile" else ())
                    with (
                        member_cm as member,
                        _rows_with_files(spec.rows(organization, scope), file_fields, storage) as rows,
                    ):
                        for row, fetched in rows:
                            for fname, pending in zip(file_fields, fetched, strict=True):
                                if pending is None:
                                    continue
                                member_name = next(member_names)
                                row[fname] = {"member": member_name, "name": row.get("filename", fname)}
                                _add_file(writer, member_name, pending.result())
                                if spec.key == "document_version":
                                    entry = [row["document"], str(row.get("number", "")), int(row.get("size") or 0)]
                                    catalog.write(json.dumps([*entry, member_name]).encode() + b"\n")
                                    catalog_count += 1
                            member.write(_row_json(row).encode() + b"\n")
                            count += 1
                            items_done += 1
                            if items_done % 200 == 0:
                                report(writer.bytes_done)
                    if staging is not None:
                        staging.seek(0)
                        with writer.open_member(f"data/{key}/{spec.key}.jsonl") as member:
                            shutil.copyfileobj(staging, member, 1024 * 1024)
                row_counts[key][spec.key] = count
        titled = _title_catalog(catalog, ou_names)
        catalog.close()
        catalog = titled
        with writer.open_member("index.html") as member:
            for chunk in render_html(_catalog_entries(catalog), title=f"{organization.name} backup"):
                member.write(chunk)
        with writer.open_member("index.csv") as member:
            for chunk in render_csv(_catalog_entries(catalog)):
                member.write(chunk)
        manifest = {
            "app_version": backupsvc.__version__,
            "schema": current_schema(),
            "created_at": timezone.now().isoformat(),
            "created_by": created_by,
            "organization": {
                "id": organization.pk,
                "slug": organization.slug,
                "name": organization.name,
                "description": organization.description,
                "created_at": organization.created_at.isoformat(),
                "license_identifier": organization.license_identifier,
                "jurisdiction": organization.jurisdiction,
                "language_settings": organization.language_settings,
                "creation_wizard_data": organization.creation_wizard_data,
                "has_logo": bool(organization.logo),
            },
            "master_data_version": organization.master_data_version.code,
            "scope": {
                "ous": None if scope.ou_ids is None else sorted(scope.ou_ids),
                "ou_names": None
                if scope.ou_ids is None
                else sorted(ou_names[i] for i in scope.ou_ids if i in ou_names),
                "include_active": scope.include_active,
                "include_inactive": scope.include_inactive,
                "exclude_superseded": scope.exclude_superseded,
                "datasets": keys,
            },
            "row_counts": row_counts,
            **(extra_manifest or {}),
        }
        summary = writer.close(manifest=manifest)
    except BaseException:
        writer.abort()
        raise
    finally:
        catalog.close()
    return ExportResult(
        bytes_written=summary.bytes_written,
        sha256=summary.sha256,
        row_counts=row_counts,
        document_count=row_counts.get("documents", {}).get("document", 0),
        manifest=manifest,
        catalog_entries=catalog_count,
    )


def _title_catalog(staging: Any, ou_names: dict[int, str]) -> Any:
    """The staged catalog with each version's document title, status and OU, as a new spooled file.

    Documents are looked up ``TITLE_BATCH`` versions at a time, so neither the catalog nor an index
    of every document is ever held in memory.
    """
    out = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)  # noqa: SIM115 - the caller closes it
    batch = TITLE_BATCH
    staging.seek(0)
    while True:
        lines = [json.loads(line) for _, line in zip(range(batch), staging, strict=False)]
        if not lines:
            break
        # Always ``batch`` parameters (``backupsvc.lib.sqlids``): with one SQL text per batch
        # length, SQLite's driver held about 7 MB more at 145,000 versions than at 18,000, most
        # of the worker's growth from 1 to 8 GiB.
        ids = padded_to((line[0] for line in lines), batch)
        docs = {
            pk: (f"{ref} {title}".strip(), status, ou)
            for pk, ref, title, status, ou in ControlledDocument.objects.filter(pk__in=ids)
            .order_by()
            .values_list("pk", "reference", "title", "status", "ou_id")
        }
        for doc_id, number, size, member in lines:
            title, status, ou = docs.get(doc_id, ("", "", None))
            entry = [title, ou_names.get(ou, "") if ou is not None else "", status, number, size, member]
            out.write(json.dumps(entry, ensure_ascii=False).encode() + b"\n")
    return out


def _catalog_entries(staging: Any) -> Iterator[CatalogEntry]:
    """Read the staged catalog back, one entry at a time."""
    staging.seek(0)
    for line in staging:
        title, ou, status, version, size, member = json.loads(line)
        yield CatalogEntry(title=title, ou=ou, status=status, version=version, size=size, member=member)


def _member_names(batch: int = 256) -> Iterator[str]:
    """Random, unique-in-practice member names for stored files (128 bits each), drawn from the
    system's random source ``batch`` at a time: one ``urandom`` call per file was a system call,
    and a wait for the GIL after it, on the thread that feeds the archive."""
    while True:
        block = secrets.token_bytes(16 * batch)
        for start in range(0, len(block), 16):
            yield f"{ds.FILE_MEMBER_PREFIX}{block[start : start + 16].hex()}"


def _rows_with_files(
    rows: Iterator[dict[str, Any]], file_fields: tuple[str, ...], storage: Storage
) -> contextlib.AbstractContextManager[Iterable[tuple[dict[str, Any], list[FileHandle | None]]]]:
    """The rows, each with its stored files (one per field, None where the field is empty) being
    read ahead on a few threads while the rows before it are added (``archive.readahead``)."""
    if not file_fields:
        return contextlib.nullcontext((row, []) for row in rows)

    def openers(row: dict[str, Any]) -> list[tuple[Callable[[], BinaryIO], int | None] | None]:
        size = row.get("size")  # a document version's; a size hint, so the read-ahead's memory is bounded
        hint = size if isinstance(size, int) else None
        return [(functools.partial(storage.open, row[f], "rb"), hint) if row.get(f) else None for f in file_fields]

    return ReadAhead(rows, openers)


def _add_file(writer: ArchiveWriter, member_name: str, fetched: Fetched) -> None:
    """Add a stored file read ahead: whole when it fit in one chunk, else streamed on."""
    if fetched.rest is None:
        writer.add_bytes(member_name, fetched.head)
        return
    with fetched.rest:
        writer.add_stream(member_name, fetched.stream(), size=fetched.size)
