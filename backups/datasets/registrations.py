"""The data sets a backup can hold, registered in dependency order, and the querysets that
limit their plain rows to a scope."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db import models
from django.db.models import Q, QuerySet

from accounts.models import Membership, OURoleAssignment, Role
from backups.datasets.custom import (
    export_memberships,
    export_ou_roles,
    export_profile,
    export_regulations,
    export_roles,
    import_memberships,
    import_ou_roles,
    import_profile,
    import_regulations,
    import_roles,
)
from backups.datasets.registry import DataSet, ModelSpec, Scope, register
from organizations import models as org_models
from organizations.models import Organization


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
                exporter=export_profile,
                importer=import_profile,
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
                exporter=export_regulations,
                importer=import_regulations,
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
                exporter=export_roles,
                importer=import_roles,
                title=_t("name"),
            ),
            ModelSpec(
                "membership",
                Membership,
                (),
                exporter=export_memberships,
                importer=import_memberships,
                title=_t("user", "role"),
            ),
            ModelSpec(
                "ou_role",
                OURoleAssignment,
                (),
                exporter=export_ou_roles,
                importer=import_ou_roles,
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
