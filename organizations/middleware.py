"""Resolve the organization the signed-in user is working in."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.utils.functional import SimpleLazyObject

from organizations.models import Organization

SESSION_KEY = "current_organization_id"


def current_organization(request: HttpRequest) -> Organization | None:
    """The organization chosen in the switcher, else the user's first one."""
    user = request.user
    if not user.is_authenticated:
        return None
    allowed = Organization.objects.for_user(user).select_related("master_data_version")  # type: ignore[arg-type]
    chosen = request.session.get(SESSION_KEY)
    if chosen is not None:
        org = allowed.filter(pk=chosen).first()
        if org is not None:
            return org
    return allowed.order_by("name").first()


class CurrentOrganizationMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.organization = SimpleLazyObject(lambda: current_organization(request))  # type: ignore[attr-defined]
        return self.get_response(request)
