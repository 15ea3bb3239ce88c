"""The list page's filters and sort order (django-filter)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import django_filters
from django import forms
from django.db.models import F, QuerySet
from django.http import QueryDict

from accounts.models import User
from backups import selectors
from backups.models import Backup
from organizations.models import OrganisationalUnit, Organization

SORTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "-date": ("Newest first", ("-created_at", "-id")),
    "date": ("Oldest first", ("created_at", "id")),
    "user": ("Created by, A to Z", ("requested_by__email", "-created_at", "-id")),
    "-user": ("Created by, Z to A", ("-requested_by__email", "-created_at", "-id")),
    "type": ("Type, A to Z", ("kind", "-created_at", "-id")),
    "-type": ("Type, Z to A", ("-kind", "-created_at", "-id")),
    "status": ("Status, A to Z", ("status", "-created_at", "-id")),
    "-status": ("Status, Z to A", ("-status", "-created_at", "-id")),
    "-size": ("Largest first", ("-size", "-created_at", "-id")),
    "size": ("Smallest first", ("size", "-created_at", "-id")),
}

# The table's sortable headers: column -> (ascending sort, descending sort, first click). They
# offer exactly the sorts of the form's "Sort by" and write them to the URL the same way.
SORTABLE_COLUMNS: dict[str, tuple[str, str, str]] = {
    "created": ("date", "-date", "-date"),
    "user": ("user", "-user", "user"),
    "type": ("type", "-type", "type"),
    "status": ("status", "-status", "status"),
    "size": ("size", "-size", "-size"),
}


@dataclass(frozen=True)
class SortHeader:
    url: str
    aria_sort: str  # "ascending", "descending" or "none"
    next_label: str


def sort_headers(params: QueryDict, current: str) -> dict[str, SortHeader]:
    """For each sortable column: the list's URL sorted by it (the other filters kept, back to
    page 1), its ``aria-sort`` and what a click does."""
    headers = {}
    for column, (asc, desc, first) in SORTABLE_COLUMNS.items():
        if current == asc:
            state, target = "ascending", desc
        elif current == desc:
            state, target = "descending", asc
        else:
            state, target = "none", first
        query = [(k, v) for k, v in params.items() if k not in ("sort", "page") and v]
        query.append(("sort", target))
        headers[column] = SortHeader(f"?{urlencode(query)}", state, SORTS[target][0])
    return headers


class _DateInput(forms.DateInput):
    input_type = "date"


class BackupFilter(django_filters.FilterSet):
    date_from = django_filters.DateFilter(
        field_name="created_at", lookup_expr="date__gte", label="Created from", widget=_DateInput
    )
    date_to = django_filters.DateFilter(field_name="created_at", lookup_expr="date__lte", label="to", widget=_DateInput)
    user = django_filters.ModelChoiceFilter(
        field_name="requested_by", queryset=User.objects.none(), label="Created by", empty_label="Anyone"
    )
    kind = django_filters.ChoiceFilter(choices=Backup.Kind.choices, label="Type", empty_label="Any type")
    status = django_filters.ChoiceFilter(choices=Backup.Status.choices, label="Status", empty_label="Any status")
    ou = django_filters.ModelChoiceFilter(
        queryset=OrganisationalUnit.objects.none(), label="OU", method="filter_ou", empty_label="Any OU"
    )
    organization = django_filters.ModelChoiceFilter(
        queryset=Organization.objects.none(), label="Organization", empty_label="Every organization"
    )
    sort = django_filters.ChoiceFilter(
        choices=[(k, v[0]) for k, v in SORTS.items()], label="Sort by", method="filter_sort", empty_label=None
    )

    class Meta:
        model = Backup
        fields: list[str] = []

    def __init__(self, *args: Any, user: User, organization: Organization | None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.group_by_organization = bool(user.is_site_admin)
        self.filters["user"].queryset = selectors.users_for_filter(user, organization)
        self.filters["ou"].queryset = selectors.ous_for_filter(user, organization)
        if user.is_site_admin:
            self.filters["organization"].queryset = Organization.objects.order_by("name")
            self.filters["ou"].field.label_from_instance = lambda ou: f"{ou.organization.name}: {ou.name}"
        else:
            del self.filters["organization"]

    def filter_ou(self, queryset: QuerySet[Backup], name: str, value: OrganisationalUnit) -> QuerySet[Backup]:
        return queryset.filter(selectors.ou_filter_q(value)).distinct()

    def filter_sort(self, queryset: QuerySet[Backup], name: str, value: str) -> QuerySet[Backup]:
        order = SORTS.get(value, SORTS["-date"])[1]
        if self.group_by_organization:
            order = ("organization__name", "organization_id", *order)
        # Empty values (no size yet, no requester) sort last on every database (PostgreSQL
        # would put NULLs first in descending order).
        return queryset.order_by(
            *(F(o[1:]).desc(nulls_last=True) if o.startswith("-") else F(o).asc(nulls_last=True) for o in order)
        )

    @property
    def is_filtered(self) -> bool:
        data = self.form.cleaned_data if self.form.is_bound and self.form.is_valid() else {}
        return any(v not in (None, "", []) for k, v in data.items() if k != "sort")
