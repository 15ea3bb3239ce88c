"""The permission rules of accounts.permissions as a matrix over every actor."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser

from accounts.permissions import (
    MANAGE_ACCOUNT_BACKUPS,
    backup_ou_ids,
    can_manage_backups_of,
    can_use_backups,
    ous_with_permission,
)
from organizations.models import Organization
from tests import factories as f

pytestmark = pytest.mark.django_db


def _actor(cast, name: str):  # type: ignore[no-untyped-def]
    return AnonymousUser() if name == "anonymous" else getattr(cast, name)


# actor -> (OUs of cast.org they may back up, may back up both OUs, may back up OU A, menu shows)
MATRIX = {
    "owner": ({"LIT", "FIN"}, True, True, True),
    "admin": ({"LIT", "FIN"}, True, True, True),  # Owners and Admins manage every backup (seed 000)
    "editor": ({"LIT", "FIN"}, True, True, True),
    "editor_a": ({"LIT"}, False, True, True),
    "member": (set(), False, False, False),
    "other_owner": (set(), False, False, False),
    "site_admin": ({"LIT", "FIN"}, True, True, True),
    "anonymous": (set(), False, False, False),
}


@pytest.mark.parametrize("actor", sorted(MATRIX))
def test_permission_matrix(cast, actor: str) -> None:  # type: ignore[no-untyped-def]
    user = _actor(cast, actor)
    ous, both, only_a, menu = MATRIX[actor]
    held = set(cast.org.ous.filter(pk__in=backup_ou_ids(user, cast.org)).values_list("code", flat=True))
    assert held == ous
    assert can_manage_backups_of(user, cast.org, [cast.ou_a, cast.ou_b]) is both
    assert can_manage_backups_of(user, cast.org, [cast.ou_a]) is only_a
    # No OUs selected means every OU of the organization.
    assert can_manage_backups_of(user, cast.org, []) is both
    assert can_use_backups(user, cast.org) is menu


def test_admin_manages_every_backup_without_ou_roles_but_holds_other_permissions_per_ou(cast) -> None:  # type: ignore[no-untyped-def]
    """Seed 000: Admins manage backups of every OU; any other OU permission stays per role."""
    assert can_manage_backups_of(cast.admin, cast.org, [cast.ou_a, cast.ou_b])
    assert not ous_with_permission(cast.admin, cast.org, MANAGE_ACCOUNT_BACKUPS).exists()
    assert not ous_with_permission(cast.admin, cast.org, "documents.edit").exists()
    # A member demoted from Admin falls back to the per-OU rule.
    from accounts.models import Membership

    Membership.objects.filter(user=cast.admin, organization=cast.org).update(role=Membership.Role.MEMBER)
    cast.admin.__dict__.pop("_role_cache", None)
    cast.admin.__dict__.pop("_backup_ou_cache", None)
    f.OURoleAssignmentFactory(user=cast.admin, ou=cast.ou_b)
    assert can_manage_backups_of(cast.admin, cast.org, [cast.ou_b])
    assert not can_manage_backups_of(cast.admin, cast.org, [cast.ou_a, cast.ou_b])


def test_permission_in_another_organizations_ou_grants_nothing_here(cast) -> None:  # type: ignore[no-untyped-def]
    other_ou = cast.other_org.ous.get()
    f.MembershipFactory(user=cast.member, organization=cast.other_org)
    f.OURoleAssignmentFactory(user=cast.member, ou=other_ou)
    assert can_manage_backups_of(cast.member, cast.other_org, [other_ou])
    assert not can_use_backups(cast.member, cast.org)
    # Asking about OUs of another organization never succeeds, whoever asks.
    assert not can_manage_backups_of(cast.editor, cast.org, [other_ou])


def test_role_assignment_without_membership_grants_nothing(cast) -> None:  # type: ignore[no-untyped-def]
    stranger = f.UserFactory()
    f.OURoleAssignmentFactory(user=stranger, ou=cast.ou_a)
    assert not can_use_backups(stranger, cast.org)


def test_role_without_the_permission_grants_nothing(cast) -> None:  # type: ignore[no-untyped-def]
    from accounts.models import Role

    viewer = Role.objects.create(name="Viewer", organization=cast.org)
    f.OURoleAssignmentFactory(user=cast.member, ou=cast.ou_a, role=viewer)
    assert not can_use_backups(cast.member, cast.org)


def test_inactive_site_admin_holds_nothing(cast) -> None:  # type: ignore[no-untyped-def]
    cast.site_admin.is_active = False
    cast.site_admin.save()
    assert not ous_with_permission(cast.site_admin, cast.org, MANAGE_ACCOUNT_BACKUPS).exists()


@pytest.mark.parametrize(
    ("actor", "visible"),
    [
        ("owner", {"acme"}),
        ("admin", {"acme"}),
        ("editor_a", {"acme"}),
        ("member", {"acme"}),
        ("other_owner", {"other"}),
        ("site_admin", {"acme", "other"}),
        ("anonymous", set()),
    ],
)
def test_organizations_for_user(cast, actor: str, visible: set[str]) -> None:  # type: ignore[no-untyped-def]
    user = _actor(cast, actor)
    assert set(Organization.objects.for_user(user).values_list("slug", flat=True)) == visible
