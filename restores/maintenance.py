"""Maintenance mode: while a restore replaces an organization's data, its users see a banner
and every change to its records is refused.

The flag lives on the organization (``maintenance_since``), set and cleared with committed
``UPDATE``s so every process sees it. Changes are refused at the model level (a ``pre_save``
receiver on every model of the data-set registry), so no view, admin page or task can slip
through; the restore engine itself writes through ``maintenance_writes(org_id)``.
``MaintenanceMiddleware`` turns a refused change into a clear message instead of an error page.

Only ``pre_save`` is connected: a ``pre_delete`` receiver would stop Django from deleting rows
in bulk, which the restore engine relies on (and bulk deletes are the engine's alone).
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
from collections.abc import Callable, Iterator
from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db import models
from django.db.models.signals import pre_save
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.utils import timezone

from organizations.models import Organization

logger = logging.getLogger(__name__)

REFUSED = "This organization is being restored from a backup; changes are not possible until the restore has finished."

_writers: contextvars.ContextVar[frozenset[int]] = contextvars.ContextVar(
    "restore_maintenance_writers", default=frozenset()
)


class OrganizationInMaintenance(PermissionDenied):
    """A change to an organization that is being restored (shown to the user as it is)."""

    def __init__(self, organization_id: int) -> None:
        super().__init__(REFUSED)
        self.organization_id = organization_id


def maintenance_on(organization: Organization, reason: str) -> None:
    """Put the organization in maintenance (committed at once, outside any transaction)."""
    Organization.objects.filter(pk=organization.pk).update(
        maintenance_since=timezone.now(), maintenance_reason=reason[:200]
    )


def maintenance_off(organization: Organization) -> None:
    Organization.objects.filter(pk=organization.pk).update(maintenance_since=None, maintenance_reason="")


@contextlib.contextmanager
def maintenance_writes(organization_id: int) -> Iterator[None]:
    """Let this thread change the organization while it is in maintenance (the restore engine)."""
    token = _writers.set(_writers.get() | {organization_id})
    try:
        yield
    finally:
        _writers.reset(token)


def _organization_id(instance: models.Model) -> int | None:
    from accounts.models import OURoleAssignment
    from organizations.models import ControlledDocument, DocumentVersion, OrganisationalUnit

    if isinstance(instance, Organization):
        return instance.pk
    org_id = getattr(instance, "organization_id", None)
    if org_id is not None:
        return int(org_id)
    if isinstance(instance, DocumentVersion) and instance.document_id:
        return (
            ControlledDocument.objects.filter(pk=instance.document_id).values_list("organization_id", flat=True).first()
        )
    if isinstance(instance, OURoleAssignment) and instance.ou_id:
        return OrganisationalUnit.objects.filter(pk=instance.ou_id).values_list("organization_id", flat=True).first()
    return None


def refuse_changes_in_maintenance(
    sender: type[models.Model], instance: models.Model, raw: bool = False, **kwargs: Any
) -> None:
    if raw:  # fixtures
        return
    org_id = _organization_id(instance)
    if org_id is None or org_id in _writers.get():
        return
    if Organization.objects.filter(pk=org_id, maintenance_since__isnull=False).exists():
        raise OrganizationInMaintenance(org_id)


def guarded_models() -> set[type[models.Model]]:
    """The organization and every model a restore replaces (the data-set registry)."""
    from backups import datasets as ds

    found: set[type[models.Model]] = {Organization}
    for dataset in ds.REGISTRY.values():
        for spec in dataset.models:
            found.add(spec.model)
    return found


def connect_guard() -> None:
    for model in guarded_models():
        pre_save.connect(
            refuse_changes_in_maintenance, sender=model, dispatch_uid=f"restores-maintenance-{model._meta.label}"
        )


class MaintenanceMiddleware:
    """Refused changes become a message and a redirect back, not an error page.

    Register after ``CurrentOrganizationMiddleware``. Also refuses form posts to pages of an
    organization in maintenance before they reach a view (restore pages excepted).
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.method not in ("GET", "HEAD", "OPTIONS") and not request.path.startswith("/restores/"):
            org = getattr(request, "organization", None)
            if org and getattr(org, "maintenance_since", None):
                return self._refused(request)
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, OrganizationInMaintenance):
            return self._refused(request)
        return None

    @staticmethod
    def _refused(request: HttpRequest) -> HttpResponse:
        messages.error(request, REFUSED)
        back = request.META.get("HTTP_REFERER") or "/"
        from django.utils.http import url_has_allowed_host_and_scheme

        if not url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}):
            back = "/"
        return HttpResponseRedirect(back)
