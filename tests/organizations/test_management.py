"""Administration → Organization Management: Site Admins only; search, pagination, empty state."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from organizations.models import Organization
from tests import factories as f
from tests.factories import client_for

pytestmark = pytest.mark.django_db

LIST = reverse("management:organizations")


def test_the_site_admin_sees_every_organization_with_the_wizard_split_button(cast) -> None:  # type: ignore[no-untyped-def]
    page = client_for(cast.site_admin).get(LIST)
    assert page.status_code == 200
    text = page.content.decode()
    assert "Acme Legal" in text and "Other Org" in text and "owner@acme.test" in text
    assert reverse("management:wizard") in text  # + Add via wizard
    assert reverse("restores:wizard_backup") + "?new=1" in text  # ▾ Restore from backup


def test_owners_admins_and_members_get_a_404_and_anonymous_users_the_login(cast) -> None:  # type: ignore[no-untyped-def]
    for user in (cast.owner, cast.admin, cast.member, cast.other_owner):
        assert client_for(user).get(LIST).status_code == 404
        assert client_for(user).get(reverse("management:wizard")).status_code == 404
    anonymous = Client().get(LIST)
    assert anonymous.status_code == 302 and anonymous["Location"].startswith("/accounts/login/")


def test_the_navigation_leads_site_admins_only_to_organization_management(cast) -> None:  # type: ignore[no-untyped-def]
    assert LIST in client_for(cast.site_admin).get("/").content.decode()
    assert LIST not in client_for(cast.owner).get("/").content.decode()


def test_search_by_name_address_or_owner(cast) -> None:  # type: ignore[no-untyped-def]
    client = client_for(cast.site_admin)
    for query in ("acme l", "ACME", "owner@acme"):
        rows = client.get(LIST, {"q": query}).context["rows"]
        assert [org.slug for org, _owner in rows] == ["acme"], query
    empty = client.get(LIST, {"q": "no such thing"})
    assert empty.context["rows"] == [] and "No organization matches" in empty.content.decode()


def test_pages_of_25_keep_the_search(cast) -> None:  # type: ignore[no-untyped-def]
    for i in range(30):
        f.OrganizationFactory(name=f"Zeta {i:02d}", slug=f"zeta-{i:02d}")
    client = client_for(cast.site_admin)
    first = client.get(LIST, {"q": "zeta"})
    assert len(first.context["rows"]) == 25 and "q=zeta&amp;page=2" in first.content.decode()
    second = client.get(LIST, {"q": "zeta", "page": 2})
    assert [org.name for org, _ in second.context["rows"]] == [f"Zeta {i:02d}" for i in range(25, 30)]


def test_the_empty_state_invites_to_add_an_organization(db) -> None:  # type: ignore[no-untyped-def]
    admin = f.UserFactory(email="site-admin@platform.test", is_site_admin=True)
    assert not Organization.objects.exists()
    page = client_for(admin).get(LIST)
    assert "No organizations yet" in page.content.decode()
    # Without an organization of their own, Account offers + Add via wizard too.
    assert 'data-testid="account-wizard-restore"' in page.content.decode()
