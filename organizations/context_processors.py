from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from accounts.models import Membership
from accounts.permissions import can_use_backups, is_owner
from organizations.models import Organization


def current_organization(request: HttpRequest) -> dict[str, Any]:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    org = getattr(request, "organization", None)
    org = org if org else None  # unwrap an empty SimpleLazyObject
    return {
        "current_organization": org,
        "switchable_organizations": Organization.objects.for_user(user).only("pk", "name", "slug")[:50],
        "nav_can_use_backups": bool(org) and can_use_backups(user, org),
        "nav_is_owner": bool(org) and is_owner(user, org),
        # Site Admins without an organization of their own get Account → + Add via wizard.
        "nav_has_membership": not user.is_site_admin or Membership.objects.filter(user=user).exists(),
    }
