"""The data-set registry: the one place that maps a backup's scope to models.

A data set is what a user picks when creating a backup ("Financial and billing data"). It
lists its models in dependency order, says how to export an organization's rows (optionally
limited to OUs and document filters) and how to import them into a target organization with
fresh primary keys. The backup writer, the restore engine, the selection UI and the manifest all
read this registry: adding a model to backups is one ``ModelSpec`` in one registration.

Rows are JSON objects. ``id`` is the row's primary key in the source; references to other
exported rows carry the source key and are mapped to the new keys on import; references to
users are carried as email addresses; stored files are carried as opaque archive members.
"""

from __future__ import annotations

import datetime as dt
import decimal
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from django.db import models
from django.db.models import Q, QuerySet

from accounts.models import Membership, OURoleAssignment, Permission, Role, User
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


@dataclass
class ImportContext:
    """State shared while importing one archive into one target organization."""

    organization: Organization
    open_member: Callable[[str], Any]  # member name -> readable binary stream
    save_file: Callable[[models.FileField, Any, str], str]  # (field, stream, name hint) -> stored name
    id_maps: dict[str, dict[int, int]] = field(default_factory=dict)
    stored_files: list[str] = field(default_factory=list)
    users_by_email: dict[str, User] = field(default_factory=dict)
    batch_size: int = 1000

    def map_id(self, spec_key: str, old: int | None, *, nullable: bool) -> int | None:
        if old is None:
            return None
        new = self.id_maps.get(spec_key, {}).get(int(old))
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
    id_map = ctx.id_maps.setdefault(spec.key, {})
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
                ctx.stored_files.append(stored)
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


# ----------------------------------------------------------------------------------------------
# Custom rows: the profile, the regulation catalog, users and roles


PROFILE_FIELDS = (
    "name",
    "description",
    "license_identifier",
    "jurisdiction",
    "language_settings",
    "creation_wizard_data",
    "created_at",
)


def _export_profile(organization: Organization, scope: Scope) -> Iterator[dict[str, Any]]:
    row = {name: to_json(getattr(organization, name)) for name in PROFILE_FIELDS}
    row["id"] = organization.pk
    row["slug"] = organization.slug
    row["master_data_version"] = organization.master_data_version.code
    row["logo"] = organization.logo.name or None
    yield row


def _import_profile(organization: Organization, rows: list[dict[str, Any]], ctx: ImportContext) -> int:
    """Apply the backed-up profile to the target. The target keeps its own slug and name.

    The name is the one the user chose (the wizard pre-fills it from the backup); an in-place
    restore passes the backup's name through ``organization`` itself beforehand.
    """
    if not rows:
        return 0
    row = rows[0]
    for name in ("description", "license_identifier", "jurisdiction", "language_settings", "creation_wizard_data"):
        if not getattr(organization, name) and row.get(name):
            setattr(organization, name, row[name])
    logo = row.get("logo")
    if logo and not organization.logo:
        with ctx.open_member(logo["member"]) as stream:
            stored = ctx.save_file(Organization._meta.get_field("logo"), stream, "logo")
        ctx.stored_files.append(stored)
        organization.logo.name = stored
    organization.save()
    ctx.id_maps.setdefault("profile", {})[int(row["id"])] = organization.pk
    return 1


def _export_regulations(organization: Organization, scope: Scope) -> Iterator[dict[str, Any]]:
    regulations = organization.regulations.order_by("pk")
    for pk, code, mdv in regulations.values_list("pk", "code", "master_data_version__code"):
        yield {"id": pk, "code": code, "master_data_version": mdv}


def _import_regulations(organization: Organization, rows: list[dict[str, Any]], ctx: ImportContext) -> int:
    """Link the target to the catalog entries of its master data version with the same codes."""
    codes = {r["code"] for r in rows}
    catalog = org_models.Regulation.objects.filter(master_data_version=organization.master_data_version, code__in=codes)
    missing = codes - set(catalog.values_list("code", flat=True))
    if missing:
        raise RestoreDataError(
            f"Regulations {', '.join(sorted(missing))} are not in master data version "
            f"{organization.master_data_version.code}."
        )
    organization.regulations.add(*catalog)
    return len(codes)


def _export_roles(organization: Organization, scope: Scope) -> Iterator[dict[str, Any]]:
    for role in Role.objects.filter(organization=organization).prefetch_related("permissions").order_by("pk"):
        yield {"id": role.pk, "name": role.name, "permissions": sorted(p.codename for p in role.permissions.all())}


def _import_roles(organization: Organization, rows: list[dict[str, Any]], ctx: ImportContext) -> int:
    id_map = ctx.id_maps.setdefault("role", {})
    for row in rows:
        role, _ = Role.objects.get_or_create(organization=organization, name=row["name"])
        role.permissions.set(Permission.objects.filter(codename__in=row["permissions"]))
        id_map[int(row["id"])] = role.pk
    return len(rows)


def _export_memberships(organization: Organization, scope: Scope) -> Iterator[dict[str, Any]]:
    qs = Membership.objects.filter(organization=organization).order_by("pk")
    for pk, email, name, role in qs.values_list("pk", "user__email", "user__full_name", "role"):
        yield {"id": pk, "user": email, "full_name": name, "role": role}


def _import_memberships(organization: Organization, rows: list[dict[str, Any]], ctx: ImportContext) -> int:
    """Re-create memberships of users that exist on this system.

    Users are global and never created by a restore (a backup must not mint accounts). The
    target's Owner stays the Owner: a restore never transfers ownership.
    """
    existing = set(Membership.objects.filter(organization=organization).values_list("user__email", flat=True))
    count = 0
    for row in rows:
        user = ctx.user(row["user"])
        if user is None or row["user"] in existing:
            continue
        role = Membership.Role.ADMIN if row["role"] == Membership.Role.OWNER else row["role"]
        Membership.objects.create(user=user, organization=organization, role=role)
        count += 1
    return count


def _export_ou_roles(organization: Organization, scope: Scope) -> Iterator[dict[str, Any]]:
    qs = OURoleAssignment.objects.filter(ou__organization=organization).filter(scope.ou_filter())
    for pk, email, ou_id, role_id, role_name, role_org in qs.order_by("pk").values_list(
        "pk", "user__email", "ou_id", "role_id", "role__name", "role__organization_id"
    ):
        yield {
            "id": pk,
            "user": email,
            "ou": ou_id,
            "role": role_id if role_org else None,
            "system_role": None if role_org else role_name,
        }


def _import_ou_roles(organization: Organization, rows: list[dict[str, Any]], ctx: ImportContext) -> int:
    count = 0
    for row in rows:
        user = ctx.user(row["user"])
        if user is None:
            continue
        if row.get("system_role"):
            role = Role.objects.filter(organization=None, name=row["system_role"]).first()
            if role is None:
                continue
            role_id = role.pk
        else:
            role_id = ctx.map_id("role", row["role"], nullable=False)  # type: ignore[assignment]
        ou_id = ctx.map_id("ou", row["ou"], nullable=False)
        OURoleAssignment.objects.get_or_create(user=user, ou_id=ou_id, role_id=role_id)
        count += 1
    return count


# ----------------------------------------------------------------------------------------------
# Querysets of plain tenant rows, by scope


def _facilities(org: Organization, scope: Scope) -> QuerySet[Any]:
    qs = org_models.Facility.objects.filter(organization=org)
    if scope.ou_ids is not None:
        qs = qs.filter(ous__in=scope.ou_ids).distinct()
    return qs


def _ous(org: Organization, scope: Scope) -> QuerySet[Any]:
    qs = org_models.OrganisationalUnit.objects.filter(organization=org)
    return qs if scope.ou_ids is None else qs.filter(pk__in=scope.ou_ids)


def _documents(org: Organization, scope: Scope) -> QuerySet[Any]:
    return org_models.ControlledDocument.objects.filter(
        scope.ou_filter(), organization=org, status__in=scope.document_statuses()
    )


def _versions(org: Organization, scope: Scope) -> QuerySet[Any]:
    return org_models.DocumentVersion.objects.filter(document__in=_documents(org, scope))


def _clients(org: Organization, scope: Scope) -> QuerySet[Any]:
    return org_models.Client.objects.filter(scope.ou_filter(), organization=org)


def _matters(org: Organization, scope: Scope) -> QuerySet[Any]:
    return org_models.Matter.objects.filter(scope.ou_filter(), organization=org, client__in=_clients(org, scope))


def _invoices(org: Organization, scope: Scope) -> QuerySet[Any]:
    return org_models.Invoice.objects.filter(organization=org, client__in=_clients(org, scope)).filter(
        Q(matter__isnull=True) | Q(matter__in=_matters(org, scope))
    )


def _time_entries(org: Organization, scope: Scope) -> QuerySet[Any]:
    return org_models.TimeEntry.objects.filter(organization=org, matter__in=_matters(org, scope))


def _payments(org: Organization, scope: Scope) -> QuerySet[Any]:
    return org_models.Payment.objects.filter(organization=org, invoice__in=_invoices(org, scope))


def _whole(model: type[models.Model]) -> Callable[[Organization, Scope], QuerySet[Any]]:
    return lambda org, scope: model.objects.filter(organization=org)  # type: ignore[attr-defined]


def _t(*names: str) -> Callable[[dict[str, Any]], str]:
    """A title made of the row's fields ``names``, blanks left out."""
    return lambda row: " ".join(str(row[n]) for n in names if row.get(n) not in (None, ""))


# ----------------------------------------------------------------------------------------------
# The registry

REGISTRY: dict[str, DataSet] = {}


def register(dataset: DataSet) -> DataSet:
    for dep in dataset.depends_on:
        if dep not in REGISTRY:
            raise ValueError(f"Data set {dataset.key} depends on {dep}, which must be registered first.")
    REGISTRY[dataset.key] = dataset
    return dataset


register(
    DataSet(
        key="profile",
        label="Organization profile and logo",
        description="Name, description, logo, license, jurisdiction, languages and wizard data.",
        models=(
            ModelSpec(
                "profile",
                Organization,
                (),
                exporter=_export_profile,
                importer=_import_profile,
                title=_t("name"),
            ),
        ),
    )
)
register(
    DataSet(
        key="settings",
        label="Configuration and settings",
        description="The organization's settings.",
        models=(
            ModelSpec(
                "setting",
                org_models.OrganizationSetting,
                ("key", "value"),
                queryset=_whole(org_models.OrganizationSetting),
                title=_t("key"),
            ),
        ),
    )
)
register(
    DataSet(
        key="regulations",
        label="Regulations",
        description="The regulations chosen from the master data version's catalog.",
        models=(
            ModelSpec(
                "regulation",
                org_models.Regulation,
                (),
                exporter=_export_regulations,
                importer=_import_regulations,
                title=_t("code"),
            ),
        ),
    )
)
register(
    DataSet(
        key="structure",
        label="Organization structure",
        description="Facilities and organisational units.",
        ou_scoped=True,
        models=(
            ModelSpec(
                "facility",
                org_models.Facility,
                ("name", "code"),
                queryset=_facilities,
                title=_t("code", "name"),
                label=_t("code"),
            ),
            ModelSpec(
                "ou",
                org_models.OrganisationalUnit,
                ("name", "code"),
                refs={"facility": "facility"},
                queryset=_ous,
                title=_t("code", "name"),
                label=_t("code"),
            ),
        ),
    )
)
register(
    DataSet(
        key="users",
        label="Users and roles",
        description="Memberships, organization roles and OU role assignments (users by email).",
        depends_on=("structure",),
        ou_scoped=True,
        models=(
            ModelSpec(
                "role",
                Role,
                (),
                exporter=_export_roles,
                importer=_import_roles,
                title=_t("name"),
            ),
            ModelSpec(
                "membership",
                Membership,
                (),
                exporter=_export_memberships,
                importer=_import_memberships,
                title=_t("user", "role"),
            ),
            ModelSpec(
                "ou_role",
                OURoleAssignment,
                (),
                exporter=_export_ou_roles,
                importer=_import_ou_roles,
                title=_t("user", "system_role"),
                title_ref=("ou", "ou"),
            ),
        ),
    )
)
register(
    DataSet(
        key="documents",
        label="Controlled documents",
        description="Documents with every version and its file (filtered by status).",
        depends_on=("structure",),
        ou_scoped=True,
        models=(
            ModelSpec(
                "document",
                org_models.ControlledDocument,
                ("reference", "title", "status", "owner_email", "created_at", "updated_at"),
                refs={"ou": "ou"},
                queryset=_documents,
                title=_t("reference", "title"),
                label=_t("reference"),
            ),
            ModelSpec(
                "document_version",
                org_models.DocumentVersion,
                ("number", "filename", "content_type", "size", "sha256", "note", "created_at"),
                refs={"document": "document"},
                files=("file",),
                parent="document",
                queryset=_versions,
                title=lambda row: f"v{row.get('number')}",
                title_ref=("document", "document"),
            ),
        ),
    )
)
register(
    DataSet(
        key="clients",
        label="Clients and matters",
        description="Clients and their matters.",
        depends_on=("structure",),
        ou_scoped=True,
        models=(
            ModelSpec(
                "client",
                org_models.Client,
                ("name", "email", "phone", "address", "created_at"),
                refs={"ou": "ou"},
                queryset=_clients,
                title=_t("name"),
            ),
            ModelSpec(
                "matter",
                org_models.Matter,
                ("reference", "title", "status", "opened_on", "closed_on"),
                refs={"ou": "ou", "client": "client"},
                queryset=_matters,
                title=_t("reference", "title"),
                label=_t("reference"),
            ),
        ),
    )
)
register(
    DataSet(
        key="templates",
        label="Templates and billing codes",
        description="Letter, invoice, email and document templates; billing codes and rates.",
        models=(
            ModelSpec(
                "template",
                org_models.Template,
                ("name", "kind", "body", "updated_at"),
                queryset=_whole(org_models.Template),
                title=_t("name"),
            ),
            ModelSpec(
                "billing_code",
                org_models.BillingCode,
                ("code", "description", "hourly_rate"),
                queryset=_whole(org_models.BillingCode),
                title=_t("code", "description"),
            ),
        ),
    )
)
register(
    DataSet(
        key="billing",
        label="Financial and billing data",
        description="Invoices, time entries and payments.",
        depends_on=("clients", "templates"),
        ou_scoped=True,
        models=(
            ModelSpec(
                "invoice",
                org_models.Invoice,
                ("number", "issued_on", "due_on", "status", "currency", "total"),
                refs={"client": "client", "matter": "matter"},
                queryset=_invoices,
                title=_t("number"),
            ),
            ModelSpec(
                "time_entry",
                org_models.TimeEntry,
                ("user_email", "worked_on", "minutes", "description", "rate"),
                refs={"matter": "matter", "billing_code": "billing_code", "invoice": "invoice"},
                parent="matter",
                queryset=_time_entries,
                title=_t("worked_on", "user_email", "description"),
                title_ref=("matter", "matter"),
            ),
            ModelSpec(
                "payment",
                org_models.Payment,
                ("amount", "received_on", "method", "reference"),
                refs={"invoice": "invoice"},
                parent="invoice",
                queryset=_payments,
                title=lambda row: f"payment {row.get('received_on') or ''} {row.get('amount') or ''}",
                title_ref=("invoice", "invoice"),
            ),
        ),
    )
)


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
