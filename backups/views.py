"""Account Backups pages. Every view loads backups through ``Backup.objects.visible_to``."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from accounts.permissions import can_use_backups
from backups.models import Backup


def _visible(request: HttpRequest):  # type: ignore[no-untyped-def]
    return Backup.objects.visible_to(request.user)  # type: ignore[arg-type]


@login_required
def backup_list(request: HttpRequest) -> HttpResponse:
    org = request.organization or None  # type: ignore[attr-defined]
    if not request.user.is_site_admin and (org is None or not can_use_backups(request.user, org)):  # type: ignore[union-attr,arg-type]
        raise Http404
    qs = _visible(request).select_related("organization", "requested_by").prefetch_related("ous")
    if not request.user.is_site_admin:  # type: ignore[union-attr]
        qs = qs.filter(organization=org)
    page = Paginator(qs, 25).get_page(request.GET.get("page"))
    return render(request, "backups/list.html", {"page": page, "organization": org})


@login_required
def backup_detail(request: HttpRequest, pk: int) -> HttpResponse:
    backup = get_object_or_404(_visible(request).select_related("organization", "requested_by"), pk=pk)
    return render(request, "backups/detail.html", {"backup": backup, "events": backup.events.select_related("actor")})
