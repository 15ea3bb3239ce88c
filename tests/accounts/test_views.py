"""The web shell: login, logout, password change, notifications, organization switcher."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import AuditLog, Notification
from accounts.services import notification_send
from tests.factories import DEMO_PASSWORD

pytestmark = pytest.mark.django_db


def test_anonymous_users_are_sent_to_login(client: Client) -> None:
    for url in (reverse("dashboard"), reverse("accounts:notifications"), reverse("accounts:password_change")):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("accounts:login"))


def test_login_with_email_and_password_shows_the_dashboard(cast, client: Client) -> None:  # type: ignore[no-untyped-def]
    response = client.post(
        reverse("accounts:login"), {"username": "OWNER@acme.test".lower(), "password": DEMO_PASSWORD}, follow=True
    )
    assert response.status_code == 200
    assert b"Acme Legal" in response.content
    assert b"You are Owner" in response.content


def test_wrong_password_says_so_and_does_not_log_in(cast, client: Client) -> None:  # type: ignore[no-untyped-def]
    response = client.post(reverse("accounts:login"), {"username": "owner@acme.test", "password": "nope"})
    assert response.status_code == 200
    assert b"Please enter a correct email and password" in response.content
    assert "_auth_user_id" not in client.session


def test_logout_needs_post(cast, client: Client) -> None:  # type: ignore[no-untyped-def]
    client.force_login(cast.owner)
    assert client.get(reverse("accounts:logout")).status_code == 405
    assert client.post(reverse("accounts:logout")).status_code == 302
    assert "_auth_user_id" not in client.session


def test_password_change(cast, client: Client) -> None:  # type: ignore[no-untyped-def]
    client.force_login(cast.member)
    response = client.post(
        reverse("accounts:password_change"),
        {
            "old_password": DEMO_PASSWORD,
            "new_password1": "a-much-longer-passphrase-9",
            "new_password2": "a-much-longer-passphrase-9",
        },
    )
    assert response.status_code == 302
    cast.member.refresh_from_db()
    assert cast.member.check_password("a-much-longer-passphrase-9")


def test_notifications_inbox_and_unread_count(cast, client: Client) -> None:  # type: ignore[no-untyped-def]
    n1 = notification_send(user=cast.owner, title="Backup completed", organization=cast.org)
    notification_send(user=cast.owner, title="Restore code requested", organization=cast.org)
    notification_send(user=cast.admin, title="Not for the owner")
    client.force_login(cast.owner)
    page = client.get(reverse("accounts:notifications")).content.decode()
    assert "Backup completed" in page and "Restore code requested" in page
    assert "Not for the owner" not in page
    assert 'data-testid="unread-count">2<' in page
    client.post(reverse("accounts:notifications_read"), {"id": n1.pk})
    assert Notification.objects.filter(user=cast.owner, read_at__isnull=True).count() == 1
    client.post(reverse("accounts:notifications_read"))
    assert not Notification.objects.filter(user=cast.owner, read_at__isnull=True).exists()
    # Another user's notification is never marked by this user.
    assert Notification.objects.get(user=cast.admin).read_at is None


def test_empty_inbox_explains_itself(cast, client: Client) -> None:  # type: ignore[no-untyped-def]
    client.force_login(cast.member)
    assert b"No notifications yet" in client.get(reverse("accounts:notifications")).content


def test_switcher_lists_only_own_organizations_and_switches(cast, client: Client) -> None:  # type: ignore[no-untyped-def]
    from tests.factories import MembershipFactory

    MembershipFactory(user=cast.member, organization=cast.other_org)
    client.force_login(cast.member)
    page = client.get(reverse("dashboard")).content.decode()
    assert 'id="org-switcher"' in page and "Other Org" in page
    client.post(reverse("organizations:switch"), {"organization": cast.other_org.pk, "next": "/"})
    assert b'data-testid="dashboard-title">Other Org<' in client.get(reverse("dashboard")).content


def test_switching_to_a_foreign_organization_is_a_404(cast, client: Client) -> None:  # type: ignore[no-untyped-def]
    client.force_login(cast.member)
    assert client.post(reverse("organizations:switch"), {"organization": cast.other_org.pk}).status_code == 404
    assert client.get(reverse("organizations:switch")).status_code == 405


def test_switch_ignores_an_offsite_next(cast, client: Client) -> None:  # type: ignore[no-untyped-def]
    client.force_login(cast.owner)
    response = client.post(reverse("organizations:switch"), {"organization": cast.org.pk, "next": "https://evil.test/"})
    assert response["Location"] == "/"


def test_single_organization_users_see_no_switcher(cast, client: Client) -> None:  # type: ignore[no-untyped-def]
    client.force_login(cast.owner)
    assert 'id="org-switcher"' not in client.get(reverse("dashboard")).content.decode()


@pytest.mark.parametrize(
    ("actor", "status"),
    [("owner", 200), ("member", 200), ("site_admin", 200), ("other_owner", 404)],
)
def test_organization_profile_is_scoped(cast, client: Client, actor: str, status: int) -> None:  # type: ignore[no-untyped-def]
    client.force_login(getattr(cast, actor))
    assert client.get(reverse("organizations:detail", args=[cast.org.slug])).status_code == status


def test_backups_menu_for_owners_admins_and_permission_holders(cast, client: Client) -> None:  # type: ignore[no-untyped-def]
    for user, shown in ((cast.editor_a, True), (cast.member, False), (cast.admin, True), (cast.owner, True)):
        client.force_login(user)
        assert (b"Administration</a>" in client.get(reverse("dashboard")).content) is shown, user


def test_user_without_organization_gets_a_helpful_empty_state(db, client: Client) -> None:  # type: ignore[no-untyped-def]
    from tests.factories import UserFactory

    client.force_login(UserFactory())
    assert b"not a member of any organization" in client.get(reverse("dashboard")).content


def test_pages_send_security_headers(cast, client: Client) -> None:  # type: ignore[no-untyped-def]
    response = client.get(reverse("accounts:login"))
    assert "script-src 'self'" in response["Content-Security-Policy"]
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"


def test_creating_an_organization_is_audited(db) -> None:  # type: ignore[no-untyped-def]
    from organizations.services import organization_create
    from tests.factories import MasterDataVersionFactory, UserFactory

    owner = UserFactory()
    org = organization_create(name="Audit Me", owner=owner, master_data_version=MasterDataVersionFactory())
    entry = AuditLog.objects.get(action="organization.create")
    assert (entry.actor, entry.organization, entry.object_id) == (owner, org, str(org.pk))


def test_sign_in_failures_and_password_changes_are_audited(cast, client: Client) -> None:  # type: ignore[no-untyped-def]
    client.post(reverse("accounts:login"), {"username": "owner@acme.test", "password": "wrong-guess"})
    failed = AuditLog.objects.get(action="auth.login_failed")
    assert failed.details == {"email": "owner@acme.test"} and "wrong-guess" not in str(failed.details)
    client.post(reverse("accounts:login"), {"username": "owner@acme.test", "password": DEMO_PASSWORD})
    assert AuditLog.objects.filter(action="auth.login", actor=cast.owner).exists()
    client.post(
        reverse("accounts:password_change"),
        {
            "old_password": DEMO_PASSWORD,
            "new_password1": "another-long-pass-77",
            "new_password2": "another-long-pass-77",
        },
    )
    assert AuditLog.objects.filter(action="auth.password_change", actor=cast.owner).exists()
    client.post(reverse("accounts:logout"))
    assert AuditLog.objects.filter(action="auth.logout", actor=cast.owner).exists()


def test_site_admins_reach_the_restore_wizard_from_the_menus(cast, client: Client) -> None:  # type: ignore[no-untyped-def]
    client.force_login(cast.site_admin)
    page = client.get(reverse("dashboard")).content.decode()
    assert "Organization Management" in page and reverse("restores:wizard") in page
    client.force_login(cast.owner)
    page = client.get(reverse("dashboard")).content.decode()
    assert reverse("restores:wizard") not in page
    assert reverse("restores:settings") in page  # the Owner's restore policy
