"""The registry mechanism: what a data set and a model's rows are, the scope, how plain rows
travel to and from JSON, and ``REGISTRY`` with ``register`` and ``resolve``. The data sets
themselves are registered in ``registrations``."""

from __future__ import annotations

import bisect
import datetime as dt
import decimal
import uuid
from array import array
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from django.db import models
from django.db.models import Q, QuerySet

from accounts.models import User
from organizations import models as org_models
from organizations.models import Organization

FILE_MEMBER_PREFIX = "files/"


@dataclass(frozen=True)
class Scope:
    """What a backup covers inside one organization."""

    ou_ids: frozenset[int] | None = None  # None: every OU
    include_active: bool = True
    include_inactive: bool = False
    exclude_superseded: bool = False

    def document_statuses(self) -> list[str]:
        Status = org_models.ControlledDocument.Status
        statuses = []
        if self.include_active:
            statuses.append(Status.ACTIVE)
        if self.include_inactive:
            statuses.append(Status.INACTIVE)
        if not self.exclude_superseded:
            statuses.append(Status.SUPERSEDED)
        return statuses

    def ou_filter(self, prefix: str = "") -> Q:
        return Q() if self.ou_ids is None else Q(**{f"{prefix}ou_id__in": self.ou_ids})


class RestoreDataError(Exception):
    """The archive's rows do not fit together (a reference to a row that is not there)."""


@dataclass(frozen=True)
class ModelSpec:
    """How one model's rows travel in a backup."""

    key: str  # the member name: data/<dataset>/<key>.jsonl, and the id-map key
    model: type[models.Model]
    fields: tuple[str, ...]
    refs: dict[str, str] = field(default_factory=dict)  # FK field -> ModelSpec key of its target
    user_refs: tuple[str, ...] = ()  # FKs to User, carried as email
    files: tuple[str, ...] = ()  # FileFields, carried as archive members
    # The ref whose row owns this one (a document's versions): an in-place restore treats the
    # rows of an in-scope parent as in scope, whatever the scope's filter says of them.
    parent: str = ""
    queryset: Callable[[Organization, Scope], QuerySet[Any]] | None = None
    # Custom export/import for rows that are not plain tenant rows (profile, users, catalog).
    exporter: Callable[[Organization, Scope], Iterator[dict[str, Any]]] | None = None
    importer: Callable[[Organization, list[dict[str, Any]], ImportContext], int] | None = None
    # Human names (DESIGN.md, Restore item 6), used by the compare: ``title`` is what a user
    # recognises a row by; ``label`` is the short name other rows use when they name this one (a
    # document's reference); ``title_ref`` is (field, spec key) of a row whose label goes first
    # ("REF v3" for a document version). Rows are identified across backups by their primary key.
    title: Callable[[dict[str, Any]], str] | None = None
    label: Callable[[dict[str, Any]], str] | None = None
    title_ref: tuple[str, str] | None = None

    def row_title(self, row: dict[str, Any]) -> str:
        """The row's own title (without the referenced row's label)."""
        if self.title is None:
            return f"{self.key} #{row.get('id')}"
        return " ".join(self.title(row).split()) or f"{self.key} #{row.get('id')}"

    def row_label(self, row: dict[str, Any]) -> str:
        """How another row names this one."""
        return " ".join(self.label(row).split()) if self.label is not None else self.row_title(row)

    def rows(self, organization: Organization, scope: Scope) -> Iterator[dict[str, Any]]:
        if self.exporter is not None:
            yield from self.exporter(organization, scope)
            return
        if self.queryset is None:
            raise TypeError(f"ModelSpec {self.key} needs a queryset or an exporter.")
        qs = self.queryset(organization, scope).order_by("pk")
        attnames = [self.model._meta.get_field(f).attname for f in self.refs]
        user_cols = [f"{f}__email" for f in self.user_refs]
        columns = ["pk", *self.fields, *attnames, *user_cols, *self.files]
        for values in qs.values_list(*columns).iterator(chunk_size=2000):
            row: dict[str, Any] = {"id": values[0]}
            i = 1
            for name in self.fields:
                row[name] = to_json(values[i])
                i += 1
            for name in self.refs:
                row[name] = values[i]
                i += 1
            for name in self.user_refs:
                row[name] = values[i]
                i += 1
            for name in self.files:
                row[name] = values[i] or None  # replaced by the writer with a member reference
                i += 1
            yield row


@dataclass(frozen=True)
class DataSet:
    key: str
    label: str
    description: str
    models: tuple[ModelSpec, ...]
    depends_on: tuple[str, ...] = ()
    ou_scoped: bool = False  # whether an OU-limited backup limits this data set


class IdMap:
    """A model's old primary keys -> new ones, 16 bytes a row: two arrays of 64-bit integers,
    searched by bisection, while the old keys come in increasing order (as the export writes
    them); keys out of order (a custom importer's) go to a dict, which wins."""

    def __init__(self) -> None:
        self._old = array("q")
        self._new = array("q")
        self._other: dict[int, int] = {}

    def __setitem__(self, old: int, new: int) -> None:
        if not self._other and (not self._old or old > self._old[-1]):
            self._old.append(old)
            self._new.append(new)
        else:
            self._other[old] = new

    def get(self, old: int) -> int | None:
        if old in self._other:
            return self._other[old]
        at = bisect.bisect_left(self._old, old)
        return self._new[at] if at < len(self._old) and self._old[at] == old else None

    def __len__(self) -> int:
        return len(self._old) + len(self._other)


@dataclass
class ImportContext:
    """State shared while importing one archive into one target organization."""

    organization: Organization
    open_member: Callable[[str], Any]  # member name -> readable binary stream
    # (field, stream, name hint) -> stored name; it records the file for the caller's rollback
    save_file: Callable[[models.FileField, Any, str], str]
    id_maps: dict[str, IdMap] = field(default_factory=dict)
    users_by_email: dict[str, User] = field(default_factory=dict)
    batch_size: int = 1000

    def id_map(self, spec_key: str) -> IdMap:
        """The key map of a model's rows (created empty)."""
        if spec_key not in self.id_maps:
            self.id_maps[spec_key] = IdMap()
        return self.id_maps[spec_key]

    def map_id(self, spec_key: str, old: int | None, *, nullable: bool) -> int | None:
        if old is None:
            return None
        new = self.id_map(spec_key).get(int(old))
        if new is None and not nullable:
            raise RestoreDataError(f"A {spec_key} row refers to a missing {spec_key} #{old}.")
        return new

    def user(self, email: str | None) -> User | None:
        if not email:
            return None
        if email not in self.users_by_email:
            self.users_by_email[email] = User.objects.filter(email=email).first()  # type: ignore[assignment]
        return self.users_by_email[email]


_PLAIN = (str, int, float, bool, type(None))


def to_json(value: Any) -> Any:
    if type(value) in _PLAIN:  # most values: the isinstance checks below cost more than the row itself
        return value
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def import_plain_rows(spec: ModelSpec, rows: Iterable[dict[str, Any]], ctx: ImportContext) -> int:
    """Create rows with fresh primary keys, mapping references through ``ctx.id_maps``."""
    model = spec.model
    id_map = ctx.id_map(spec.key)
    batch: list[tuple[int, models.Model]] = []
    count = 0

    def flush() -> None:
        created = model.objects.bulk_create([obj for _, obj in batch])  # type: ignore[attr-defined]
        for (old, _), obj in zip(batch, created, strict=True):
            if obj.pk is None:  # backends that cannot return keys from bulk inserts
                raise RestoreDataError("The database did not return new primary keys.")
            id_map[old] = obj.pk
        batch.clear()

    for row in rows:
        kwargs: dict[str, Any] = {"organization": ctx.organization} if _has_org(model) else {}
        for name in spec.fields:
            if name in row:
                kwargs[name] = _from_json(model, name, row[name])
        for name, target in spec.refs.items():
            nullable = model._meta.get_field(name).null
            kwargs[f"{name}_id"] = ctx.map_id(target, row.get(name), nullable=nullable)
        for name in spec.user_refs:
            kwargs[name] = ctx.user(row.get(name))
        for name in spec.files:
            ref = row.get(name)
            if ref:
                fld = model._meta.get_field(name)
                with ctx.open_member(ref["member"]) as stream:
                    stored = ctx.save_file(fld, stream, ref.get("name", ""))
                kwargs[name] = stored
        batch.append((int(row["id"]), model(**kwargs)))
        count += 1
        if len(batch) >= ctx.batch_size:
            flush()
    if batch:
        flush()
    return count


def _has_org(model: type[models.Model]) -> bool:
    return any(f.name == "organization" for f in model._meta.fields)


def _from_json(model: type[models.Model], name: str, value: Any) -> Any:
    if value is None:
        return None
    fld = model._meta.get_field(name)
    if isinstance(fld, models.DateTimeField):
        return dt.datetime.fromisoformat(value)
    if isinstance(fld, models.DateField):
        return dt.date.fromisoformat(value)
    if isinstance(fld, models.TimeField):
        return dt.time.fromisoformat(value)
    if isinstance(fld, models.DecimalField):
        return decimal.Decimal(value)
    return value


REGISTRY: dict[str, DataSet] = {}


def register(dataset: DataSet) -> DataSet:
    for dep in dataset.depends_on:
        if dep not in REGISTRY:
            raise ValueError(f"Data set {dataset.key} depends on {dep}, which must be registered first.")
    REGISTRY[dataset.key] = dataset
    return dataset


def all_keys() -> list[str]:
    return list(REGISTRY)


def resolve(keys: Iterable[str] | None) -> list[str]:
    """The chosen data sets plus everything they depend on, in registry (dependency) order.

    No choice (None or empty) means every data set. Unknown keys raise ``ValueError``.
    """
    chosen = set(keys or REGISTRY)
    unknown = chosen - set(REGISTRY)
    if unknown:
        raise ValueError(f"Unknown data set: {', '.join(sorted(unknown))}.")
    pending = list(chosen)
    while pending:
        for dep in REGISTRY[pending.pop()].depends_on:
            if dep not in chosen:
                chosen.add(dep)
                pending.append(dep)
    return [k for k in REGISTRY if k in chosen]
