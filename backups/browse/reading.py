"""Reading a stored backup's records for the browse pages (plain Python over the archive reader)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from django.core.files.storage import Storage

from backups import datasets as ds
from backups.archive import ArchiveReader
from backups.archive.errors import ArchiveError, WrongPassword
from backups.keys import PasswordUnavailable
from backups.models import Backup
from backups.stored_archive import member_of, open_backup_archive, stream_rows

RELATED_LIMIT = 50  # related records shown per model on a record's page


class BrowseError(Exception):
    """The backup cannot be browsed; the message is a sentence for the user."""


class PasswordNeeded(BrowseError):
    """The backup keeps no wrapped copy of its password: the user must type it."""


def needs_password(backup: Backup) -> bool:
    """Whether only the user's own password opens this backup (no copy wrapped by the key ring)."""
    return not backup.password_wrapped


def open_reader(backup: Backup, *, password: str | None = None, storage: Storage | None = None) -> ArchiveReader:
    """The backup's stored archive, read in place (S3 by ranges), opened with the key ring's copy
    of its password, or with ``password`` for a backup that keeps none."""
    if backup.status != Backup.Status.COMPLETED or not backup.file:
        raise BrowseError(f"Backup “{backup.display_name}” has no kept file to browse (it expired or never completed).")
    if password is None and needs_password(backup):
        raise PasswordNeeded("This backup is protected by the password chosen when it was made; enter it.")
    try:
        reader = open_backup_archive(backup, password=password, storage=storage)
    except PasswordUnavailable as exc:
        raise BrowseError(str(exc)) from exc
    except FileNotFoundError as exc:
        raise BrowseError(f"The file of backup “{backup.display_name}” is missing from storage.") from exc
    try:
        reader.check()
    except WrongPassword as exc:
        reader.close()
        raise PasswordNeeded("The password is not correct.") from exc
    except ArchiveError as exc:
        reader.close()
        raise BrowseError(str(exc)) from exc
    except BaseException:
        reader.close()
        raise
    return reader


# ----------------------------------------------------------------------------------------------
# The registry, as browsing sees it


def find_spec(model_key: str) -> tuple[str, ds.ModelSpec]:
    """(data set key, spec) of a registry model key; ``LookupError`` when unknown."""
    for dataset in ds.REGISTRY.values():
        for spec in dataset.models:
            if spec.key == model_key:
                return dataset.key, spec
    raise LookupError(model_key)


def model_label(spec: ds.ModelSpec) -> str:
    return str(spec.model._meta.verbose_name_plural).capitalize() if spec.key != "profile" else "Profile"


def contents(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """Per data set of the backup: its models with their row counts (from the manifest)."""
    counts = manifest.get("row_counts") or {}
    chosen = (manifest.get("scope") or {}).get("datasets") or list(counts)
    out = []
    for key in ds.REGISTRY:
        if key not in chosen:
            continue
        dataset = ds.REGISTRY[key]
        per = counts.get(key) or {}
        models = [
            {"key": spec.key, "label": model_label(spec), "count": int(per.get(spec.key, 0) or 0)}
            for spec in dataset.models
        ]
        out.append({"key": key, "label": dataset.label, "models": models})
    return out


# ----------------------------------------------------------------------------------------------
# Pages of records


@dataclass
class Record:
    pk: int
    title: str
    row: dict[str, Any]


@dataclass
class Page:
    records: list[Record]
    total: int  # rows matching the search
    number: int
    per_page: int
    matching_ids: list[int] = field(default_factory=list)  # every match's id, when asked for

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))

    @property
    def has_previous(self) -> bool:
        return self.number > 1

    @property
    def has_next(self) -> bool:
        return self.number < self.pages


def labels_of(reader: Any, spec_key: str, pks: set[int]) -> dict[int, str]:
    """How the rows ``pks`` of model ``spec_key`` are named by other rows (one pass, only those kept)."""
    if not pks:
        return {}
    dataset, spec = find_spec(spec_key)
    found: dict[int, str] = {}
    for row in stream_rows(reader, member_of(dataset, spec)):
        pk = int(row["id"])
        if pk in pks:
            found[pk] = spec.row_label(row)
            if len(found) == len(pks):
                break
    return found


def full_titles(reader: Any, spec: ds.ModelSpec, rows: list[dict[str, Any]]) -> list[str]:
    """Rows' titles, led by the referenced row's label where the registry says so ("REF v3")."""
    titles = [spec.row_title(row) for row in rows]
    if spec.title_ref is None:
        return titles
    ref_field, target = spec.title_ref
    labels = labels_of(reader, target, {int(r[ref_field]) for r in rows if r.get(ref_field) is not None})
    return [
        f"{labels.get(int(row[ref_field]), '')} {title}".strip() if row.get(ref_field) is not None else title
        for row, title in zip(rows, titles, strict=True)
    ]


def matches(spec: ds.ModelSpec, row: dict[str, Any], query: str) -> bool:
    if not query:
        return True
    needle = query.casefold()
    return needle in spec.row_title(row).casefold() or needle == str(row.get("id"))


def page(
    reader: Any,
    dataset: str,
    spec: ds.ModelSpec,
    *,
    query: str = "",
    number: int = 1,
    per_page: int = 25,
    with_ids: bool = False,
) -> Page:
    """One page of a model's records matching ``query`` (in the title or the id), by scanning the
    member once and keeping only the page's rows (and, ``with_ids``, every match's id)."""
    number = max(1, number)
    start = (number - 1) * per_page
    kept: list[dict[str, Any]] = []
    ids: list[int] = []
    total = 0
    for row in stream_rows(reader, member_of(dataset, spec)):
        if not matches(spec, row, query):
            continue
        if start <= total < start + per_page:
            kept.append(row)
        if with_ids:
            ids.append(int(row["id"]))
        total += 1
    if not kept and total and number > 1:  # past the last page: show the last one
        last = max(1, -(-total // per_page))
        return page(reader, dataset, spec, query=query, number=last, per_page=per_page, with_ids=with_ids)
    titles = full_titles(reader, spec, kept)
    records = [Record(int(r["id"]), t, r) for r, t in zip(kept, titles, strict=True)]
    return Page(records=records, total=total, number=number, per_page=per_page, matching_ids=ids)


def find_row(reader: Any, dataset: str, spec: ds.ModelSpec, pk: int) -> dict[str, Any] | None:
    for row in stream_rows(reader, member_of(dataset, spec)):
        if int(row["id"]) == pk:
            return row
    return None


# ----------------------------------------------------------------------------------------------
# One record and its relations


@dataclass
class Related:
    key: str
    label: str
    field_label: str
    records: list[Record]
    more: bool = False


def referring_specs(spec_key: str) -> list[tuple[str, ds.ModelSpec, str]]:
    """(data set, spec, ref field) of every registered model with a reference to ``spec_key``."""
    found = []
    for dataset in ds.REGISTRY.values():
        for spec in dataset.models:
            for name, target in spec.refs.items():
                if target == spec_key:
                    found.append((dataset.key, spec, name))
    return found


def related(reader: Any, spec: ds.ModelSpec, row: dict[str, Any]) -> tuple[list[Related], list[Related]]:
    """The rows this row refers to (its client, its document) and the rows that refer to it (a
    client's matters and invoices, a document's versions), at most ``RELATED_LIMIT`` of each."""
    present = reader.names  # membership is a lookup in the reader's index
    parents: list[Related] = []
    for name, target in spec.refs.items():
        value = row.get(name)
        if value is None:
            continue
        dataset, target_spec = find_spec(target)
        found = (
            find_row(reader, dataset, target_spec, int(value)) if member_of(dataset, target_spec) in present else None
        )
        records = [Record(int(value), full_titles(reader, target_spec, [found])[0], found)] if found else []
        label = _field_label(spec, name)
        parents.append(Related(target, model_label(target_spec), label, records))
    children: list[Related] = []
    pk = int(row["id"])
    for dataset, child, name in referring_specs(spec.key):
        member = member_of(dataset, child)
        if member not in present:
            continue
        rows: list[dict[str, Any]] = []
        more = False
        for other in stream_rows(reader, member):
            if other.get(name) is not None and int(other[name]) == pk:
                if len(rows) >= RELATED_LIMIT:
                    more = True
                    continue
                rows.append(other)
        if rows:
            titles = full_titles(reader, child, rows)
            records = [Record(int(r["id"]), t, r) for r, t in zip(rows, titles, strict=True)]
            label = str(child.model._meta.get_field(name).verbose_name)
            children.append(Related(child.key, model_label(child), label, records, more))
    return parents, children


def _field_label(spec: ds.ModelSpec, name: str) -> str:
    label = str(spec.model._meta.get_field(name).verbose_name)
    return label.upper() if len(label) <= 3 else label.capitalize()  # "OU", not "Ou"


def record_label(spec: ds.ModelSpec) -> str:
    """The model's singular name ("Client", "Document version")."""
    return str(spec.model._meta.verbose_name).capitalize() if spec.key != "profile" else "Profile"


def field_rows(spec: ds.ModelSpec, row: dict[str, Any]) -> list[tuple[str, Any]]:
    """The record's own fields as (label, value) for display (references and files apart)."""
    out: list[tuple[str, Any]] = [("Id in the backup", row.get("id"))]
    names = list(spec.fields) or [k for k in row if k != "id"]
    for name in names:
        if name in spec.refs or name in spec.files:
            continue
        try:
            label = str(spec.model._meta.get_field(name).verbose_name).capitalize()
        except Exception:
            label = name.replace("_", " ").capitalize()
        value = row.get(name)
        if isinstance(value, dict | list):
            value = json.dumps(value, ensure_ascii=False)
        out.append((label, value))
    for name in spec.user_refs:
        out.append((name.replace("_", " ").capitalize(), row.get(name)))
    return out
