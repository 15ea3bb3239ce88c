from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from accounts.permissions import can_use_backups, role_in
from organizations.middleware import SESSION_KEY
from organizations.models import Organization


def _organization_stats(org: Organization) -> dict[str, int]:
    return {
        "ous": org.ous.count(),
        "documents": org.documents.count(),
        "clients": org.clients.count(),
        "matters": org.matters.count(),
        "invoices": org.invoices.count(),
        "members": org.memberships.count(),
    }


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    org = request.organization or None  # type: ignore[attr-defined]
    context: dict[str, object] = {"organization": org}
    if org is not None:
        subscription = getattr(org, "subscription", None)
        context.update(
            stats=_organization_stats(org),
            role=role_in(request.user, org),  # type: ignore[arg-type]
            subscription=subscription,
            can_use_backups=can_use_backups(request.user, org),  # type: ignore[arg-type]
        )
    return render(request, "organizations/dashboard.html", context)


@login_required
def organization_detail(request: HttpRequest, slug: str) -> HttpResponse:
    org = get_object_or_404(
        Organization.objects.for_user(request.user)  # type: ignore[arg-type]
        .select_related("master_data_version")
        .annotate(regulation_count=Count("regulations")),
        slug=slug,
    )
    return render(
        request,
        "organizations/detail.html",
        {
            "organization": org,
            "stats": _organization_stats(org),
            "facilities": org.facilities.prefetch_related("ous"),
            "ous": org.ous.select_related("facility"),
        },
    )


@login_required
@require_POST
def organization_switch(request: HttpRequest) -> HttpResponse:
    org = get_object_or_404(Organization.objects.for_user(request.user), pk=request.POST.get("organization"))  # type: ignore[arg-type]
    request.session[SESSION_KEY] = org.pk
    messages.info(request, f"You are now working in {org.name}.")
    nxt = request.POST.get("next") or "/"
    if not url_has_allowed_host_and_scheme(nxt, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        nxt = "/"
    return redirect(nxt)
