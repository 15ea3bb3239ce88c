"""Reads behind the Account Backups pages: who may do what, the list's queryset, the request
dialog's choices and the details page's figures. Every backup is loaded through
``Backup.objects.visible_to``; nothing here writes."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from django.db.models import Prefetch, Q, QuerySet
from django.urls import NoReverseMatch, reverse

from accounts.models import Membership, User
from accounts.permissions import backup_ou_ids, can_use_backups, is_owner_or_admin
from backups import datasets as ds
from backups.models import Backup, BackupComparison, BackupSchedule
from backups.services import subscription_valid
from backups.verify import with_not_checked
from organizations.models import Facility, OrganisationalUnit, Organization

PAGE_SIZE = 25


def visible_backups(user: User) -> QuerySet[Backup]:
    """The one way views load backups: another organization's backup is simply not there (404)."""
    return Backup.objects.visible_to(user)


def list_queryset(user: User, organization: Organization | None) -> QuerySet[Backup]:
    """The rows of the list page, with everything a row shows loaded in a fixed number of queries.

    Site Admins see every organization's backups, grouped by organization (newest first inside
    each); everybody else the current organization's backups they may see.
    """
    qs = with_not_checked(visible_backups(user).select_related("organization", "requested_by"))
    qs = qs.prefetch_related(Prefetch("ous", queryset=OrganisationalUnit.objects.only("pk", "name").order_by("name")))
    if user.is_site_admin:
        return qs.order_by("organization__name", "organization_id", "-created_at", "-id")
    if organization is None:
        return qs.none()
    return qs.filter(organization=organization).order_by("-created_at", "-id")


def can_administer(user: User, organization: Organization) -> bool:
    """Owners, Admins and Site Admins: early expiry, verification, schedules, restore links."""
    return bool(user.is_authenticated and (user.is_site_admin or is_owner_or_admin(user, organization)))


def restore_enabled() -> bool:
    """Whether the restore screens exist yet (they are built separately): link only then."""
    try:
        reverse("restores:start", args=[1])
    except NoReverseMatch:
        return False
    return True


@dataclass(frozen=True)
class SubscriptionState:
    """What the page says about the organization's backup subscription."""

    valid: bool
    ends_on: Any  # date | None
    starts_on: Any
    exists: bool


def subscription_state(organization: Organization | None) -> SubscriptionState:
    if organization is None:
        return SubscriptionState(False, None, None, False)
    sub = getattr(organization, "subscription", None)
    if sub is None:
        return SubscriptionState(False, None, None, False)
    return SubscriptionState(sub.is_valid(), sub.ends_on, sub.starts_on, True)


def pending_backup(organization: Organization | None) -> Backup | None:
    if organization is None:
        return None
    return Backup.objects.filter(organization=organization, status=Backup.Status.PENDING).first()


_LOOK_UP = object()


def request_refusal(user: User, organization: Organization | None, *, pending: Any = _LOOK_UP) -> str:
    """Why the user cannot request a backup of the organization now ("" when they can).

    The button is hidden for the same reasons; the service refuses them again on POST. A caller
    that has already looked up ``pending_backup(organization)`` passes it as ``pending``.
    """
    if organization is None:
        return "You are not working in an organization."
    if not can_use_backups(user, organization):
        return "You do not hold Backups: Manage Account Backups in any OU of this organization."
    if not subscription_valid(organization):
        return "This organization has no valid backup subscription."
    if (pending_backup(organization) if pending is _LOOK_UP else pending) is not None:
        return "A backup of this organization is already pending; you can request another once it has started."
    return ""


def requestable_ous(user: User, organization: Organization) -> QuerySet[OrganisationalUnit]:
    """OUs the request dialog offers: those the user holds the backup permission in."""
    return (
        OrganisationalUnit.objects.filter(organization=organization, pk__in=backup_ou_ids(user, organization))
        .select_related("facility")
        .order_by("name")
    )


def requestable_facilities(user: User, organization: Organization) -> QuerySet[Facility]:
    """Facilities the dialog offers: those whose every OU the user may back up (picking a
    facility without any of its OUs backs up all of them)."""
    allowed = backup_ou_ids(user, organization)
    facilities = Facility.objects.filter(organization=organization, ous__isnull=False).distinct()
    forbidden = OrganisationalUnit.objects.filter(organization=organization, facility__isnull=False).exclude(
        pk__in=allowed
    )
    return facilities.exclude(pk__in=forbidden.values("facility_id")).order_by("name")


def dataset_choices() -> list[tuple[str, str]]:
    return [(key, dataset.label) for key, dataset in ds.REGISTRY.items()]


def dataset_dependency_map() -> str:
    """JSON for the picker: each data set's direct dependencies (the JS closes over them)."""
    return json.dumps({key: list(dataset.depends_on) for key, dataset in ds.REGISTRY.items()})


def dataset_label_map() -> str:
    return json.dumps({key: dataset.label for key, dataset in ds.REGISTRY.items()})


def dataset_rows(backup: Backup) -> list[dict[str, Any]]:
    """The details page's data sets: label, whether chosen or pulled in, rows per model."""
    chosen = list(backup.datasets or [])
    rows = []
    for key in chosen:
        dataset = ds.REGISTRY.get(key)
        counts = (backup.row_counts or {}).get(key, {})
        rows.append(
            {
                "key": key,
                "label": dataset.label if dataset else key,
                "description": dataset.description if dataset else "",
                "depends_on": [ds.REGISTRY[d].label for d in dataset.depends_on if d in ds.REGISTRY] if dataset else [],
                "counts": sorted(counts.items()),
                "total": sum(counts.values()) if counts else None,
            }
        )
    return rows


def history_for(backup: Backup) -> QuerySet[Any]:
    return backup.downloads.select_related("user").order_by("-downloaded_at", "-id")


def schedules_visible_to(user: User) -> QuerySet[BackupSchedule]:
    """Schedules the user may manage: Site Admins all; Owners and Admins their organizations'."""
    if not user.is_authenticated or not user.is_active:
        return BackupSchedule.objects.none()
    if user.is_site_admin:
        return BackupSchedule.objects.all()
    orgs = Membership.objects.filter(user=user, role__in=(Membership.Role.OWNER, Membership.Role.ADMIN)).values_list(
        "organization_id", flat=True
    )
    return BackupSchedule.objects.filter(organization_id__in=orgs)


def dataset_labels(keys: list[str]) -> list[str]:
    return [ds.REGISTRY[k].label for k in keys if k in ds.REGISTRY]


def users_for_filter(user: User, organization: Organization | None) -> QuerySet[User]:
    """Choices of the list's "Created by" filter: people who requested a backup the user may see
    (an editor is not shown who backed up OUs outside theirs: seed 002)."""
    # A semi-join on the requesters' ids: joining the backups (twice, as chained filters on a
    # multi-valued relation do) multiplied every requester by their backups before DISTINCT.
    backups = Backup.objects.all()
    if not user.is_site_admin:
        backups = visible_backups(user).filter(organization=organization) if organization else backups.none()
    return User.objects.filter(pk__in=backups.filter(requested_by__isnull=False).values("requested_by_id")).order_by(
        "email"
    )


def ous_for_filter(user: User, organization: Organization | None) -> QuerySet[OrganisationalUnit]:
    if user.is_site_admin:
        return OrganisationalUnit.objects.select_related("organization").order_by("organization__name", "name")
    if organization is None:
        return OrganisationalUnit.objects.none()
    # Only OUs the user may back up: the list shows no backup including any other.
    return OrganisationalUnit.objects.filter(
        organization=organization, pk__in=backup_ou_ids(user, organization)
    ).order_by("name")


def hidden_backup_count(user: User, organization: Organization | None) -> int:
    """How many backups of the organization the user may not see (the empty list says so)."""
    if organization is None or user.is_site_admin:
        return 0
    total = Backup.objects.filter(organization=organization).count()
    return total - visible_backups(user).filter(organization=organization).count() if total else 0


def ou_filter_q(ou: OrganisationalUnit) -> Q:
    """Backups that include the OU: explicitly, or as an all-OUs backup of its organization."""
    return Q(ous=ou) | Q(all_ous=True, organization_id=ou.organization_id)


def comparisons_of(user: User, backup: Backup) -> list[BackupComparison]:
    """The latest comparisons involving the backup that the user may see (details page)."""
    return list(
        BackupComparison.objects.visible_to(user)
        .filter(Q(earlier=backup) | Q(later=backup))
        .select_related("earlier", "later")
        .order_by("-created_at", "-pk")[:10]
    )
