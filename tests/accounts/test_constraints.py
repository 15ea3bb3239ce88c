"""Database constraints hold even when code forgets them."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import IntegrityError, transaction

from accounts.models import Membership, Role
from organizations.services import organization_create, organization_transfer_ownership
from tests import factories as f

pytestmark = pytest.mark.django_db


def test_a_second_owner_is_refused_by_the_database(cast) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(IntegrityError), transaction.atomic():
        Membership.objects.create(user=f.UserFactory(), organization=cast.org, role=Membership.Role.OWNER)
    assert Membership.objects.filter(organization=cast.org, role="owner").count() == 1


def test_promoting_a_member_to_owner_beside_the_owner_is_refused(cast) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(IntegrityError), transaction.atomic():
        Membership.objects.filter(user=cast.admin, organization=cast.org).update(role=Membership.Role.OWNER)
    assert Membership.objects.get(user=cast.admin, organization=cast.org).role == "admin"


def test_each_organization_has_its_own_owner(cast) -> None:  # type: ignore[no-untyped-def]
    # The same person may own two organizations; the rule is per organization.
    f.MembershipFactory(user=cast.owner, organization=f.OrganizationFactory(), role=Membership.Role.OWNER)
    assert Membership.objects.filter(user=cast.owner, role="owner").count() == 2


def test_a_user_belongs_to_an_organization_once(cast) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(IntegrityError), transaction.atomic():
        Membership.objects.create(user=cast.member, organization=cast.org, role=Membership.Role.ADMIN)


def test_organization_create_makes_exactly_one_owner(db) -> None:  # type: ignore[no-untyped-def]
    owner = f.UserFactory()
    org = organization_create(name="Brand New Ltd", owner=owner, master_data_version=f.MasterDataVersionFactory())
    assert org.slug == "brand-new-ltd"
    assert list(org.memberships.values_list("user__email", "role")) == [(owner.email, "owner")]


def test_transfer_ownership_keeps_exactly_one_owner(cast) -> None:  # type: ignore[no-untyped-def]
    organization_transfer_ownership(organization=cast.org, new_owner=cast.admin, actor=cast.owner)
    roles = dict(cast.org.memberships.values_list("user__email", "role"))
    assert roles[cast.admin.email] == "owner"
    assert roles[cast.owner.email] == "admin"
    assert list(roles.values()).count("owner") == 1


def test_system_role_holds_manage_account_backups(db) -> None:  # type: ignore[no-untyped-def]
    role = Role.objects.get(name="Administration Editor", organization=None)
    assert role.is_system
    assert list(role.permissions.values_list("codename", flat=True)) == ["backups.manage_account_backups"]


def test_subscription_cannot_end_before_it_starts(cast) -> None:  # type: ignore[no-untyped-def]
    sub = cast.org.subscription
    sub.ends_on = sub.starts_on - dt.timedelta(days=1)
    with pytest.raises(IntegrityError), transaction.atomic():
        sub.save()


def test_ou_codes_are_unique_within_an_organization(cast) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(IntegrityError), transaction.atomic():
        f.OUFactory(organization=cast.org, code="LIT")
    f.OUFactory(organization=cast.other_org, code="LIT")  # another organization may reuse it
