"""Who may open which Account Backups URL: every URL for an allowed user, a user lacking the
OU permission in one OU of the backup, a user of another organization (404), a Site Admin and an
anonymous user (login redirect); every change is a POST with CSRF; GET on POST-only URLs is 405.

The helpers here (``make_backup``, ``login``) are shared by the other ``test_views_*`` modules.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import User
from backups.models import Backup, BackupSchedule, archive_upload_to
from organizations.models import OrganisationalUnit, Organization
from tests.factories import client_for as login  # the view tests import it from here

pytestmark = pytest.mark.django_db


def make_backup(
    org: Organization,
    status: str = Backup.Status.COMPLETED,
    *,
    ous: tuple[OrganisationalUnit, ...] = (),
    requested_by: User | None = None,
    content: bytes | None = None,
    label: str = "",
    created_at: dt.datetime | None = None,
    **fields: object,
) -> Backup:
    """A backup row made directly (no archive writer); completed ones get a stored file."""
    now = timezone.now()
    backup = Backup.objects.create(
        organization=org,
        status=status,
        label=label,
        requested_by=requested_by,
        all_ous=not ous,
        created_at=created_at or now,
        **fields,
    )
    if ous:
        backup.ous.set(ous)
    if status == Backup.Status.COMPLETED:
        data = content if content is not None else os.urandom(4096)
        name = default_storage.save(archive_upload_to(backup, ""), ContentFile(data))
        Backup.objects.filter(pk=backup.pk).update(
            file=name,
            size=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
            completed_at=now,
            download_expires_at=now + dt.timedelta(days=14),
            document_count=3,
        )
        backup.refresh_from_db()
    return backup


@dataclass
class Url:
    name: str
    method: str  # "get" or "post"
    needs_admin: bool = False  # Owner/Admin/Site Admin only (others who see the backup: 403)


OBJECT_URLS = [
    Url("backups:detail", "get"),
    Url("backups:row", "get"),
    Url("backups:history", "get"),
    Url("backups:download", "get"),
    Url("backups:cancel", "post"),
    Url("backups:expire", "post", needs_admin=True),
    Url("backups:verify", "post", needs_admin=True),
]


def _call(client: Client, url: Url, pk: int):  # type: ignore[no-untyped-def]
    return getattr(client, url.method)(reverse(url.name, args=[pk]))


@pytest.fixture
def eager_celery(settings):  # type: ignore[no-untyped-def]
    settings.CELERY_TASK_ALWAYS_EAGER = True


@pytest.fixture
def all_ous_backup(cast) -> Backup:  # type: ignore[no-untyped-def]
    return make_backup(cast.org, requested_by=cast.owner, label="Everything")


@pytest.fixture
def pending_all_ous(cast) -> Backup:  # type: ignore[no-untyped-def]
    return make_backup(cast.org, Backup.Status.PENDING, requested_by=cast.owner)


# -- object URLs ---------------------------------------------------------------------------------


@pytest.mark.parametrize("url", OBJECT_URLS, ids=lambda u: u.name)
def test_owner_may_use_every_backup_url(cast, url: Url, eager_celery) -> None:  # type: ignore[no-untyped-def]
    backup = make_backup(cast.org, Backup.Status.PENDING if url.name == "backups:cancel" else "completed")
    response = _call(login(cast.owner), url, backup.pk)
    assert response.status_code in (200, 302), response.status_code
    if url.method == "post":
        assert response["Location"] == reverse("backups:list")


@pytest.mark.parametrize("url", OBJECT_URLS, ids=lambda u: u.name)
def test_editor_of_every_ou_may_use_the_backup_but_not_owner_actions(cast, url: Url, eager_celery) -> None:  # type: ignore[no-untyped-def]
    backup = make_backup(cast.org, Backup.Status.PENDING if url.name == "backups:cancel" else "completed")
    response = _call(login(cast.editor), url, backup.pk)
    if url.needs_admin:
        assert response.status_code == 403
        assert b"Owner and Admins" in response.content
    else:
        assert response.status_code in (200, 302)


@pytest.mark.parametrize("url", OBJECT_URLS, ids=lambda u: u.name)
def test_user_lacking_the_permission_in_one_ou_of_the_backup_gets_404(cast, url: Url) -> None:  # type: ignore[no-untyped-def]
    status = Backup.Status.PENDING if url.name == "backups:cancel" else "completed"
    every_ou = make_backup(cast.org, status)
    client = login(cast.editor_a)
    assert _call(client, url, every_ou.pk).status_code == 404
    every_ou.status = Backup.Status.CANCELLED  # free the one-pending slot for the next one
    every_ou.save(update_fields=["status"])
    both = make_backup(cast.org, status, ous=(cast.ou_a, cast.ou_b))
    assert _call(client, url, both.pk).status_code == 404
    both.refresh_from_db()
    assert both.status == status  # nothing changed


@pytest.mark.parametrize("url", OBJECT_URLS, ids=lambda u: u.name)
def test_user_of_another_organization_gets_404(cast, url: Url) -> None:  # type: ignore[no-untyped-def]
    status = Backup.Status.PENDING if url.name == "backups:cancel" else "completed"
    backup = make_backup(cast.org, status)
    assert _call(login(cast.other_owner), url, backup.pk).status_code == 404
    backup.refresh_from_db()
    assert backup.status == status


@pytest.mark.parametrize("url", OBJECT_URLS, ids=lambda u: u.name)
def test_site_admin_may_use_every_backup_url(cast, url: Url, eager_celery) -> None:  # type: ignore[no-untyped-def]
    status = Backup.Status.PENDING if url.name == "backups:cancel" else "completed"
    backup = make_backup(cast.other_org, status)  # any organization
    response = _call(login(cast.site_admin), url, backup.pk)
    assert response.status_code in (200, 302)


@pytest.mark.parametrize("url", OBJECT_URLS, ids=lambda u: u.name)
def test_anonymous_user_is_sent_to_login(cast, url: Url) -> None:  # type: ignore[no-untyped-def]
    backup = make_backup(cast.org)
    response = _call(Client(), url, backup.pk)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:login"))


def test_admin_without_ou_roles_manages_every_backup(cast) -> None:  # type: ignore[no-untyped-def]
    """Seed 000: Owners and Admins manage every backup of their organization, OU roles or not."""
    backup = make_backup(cast.org, ous=(cast.ou_a,))
    client = login(cast.admin)
    assert client.get(reverse("backups:detail", args=[backup.pk])).status_code == 200
    assert f'id="backup-{backup.pk}"' in client.get(reverse("backups:list")).content.decode()
    # ... but never another organization's.
    other = make_backup(cast.other_org)
    assert client.get(reverse("backups:detail", args=[other.pk])).status_code == 404


def test_unknown_backup_is_404(cast) -> None:  # type: ignore[no-untyped-def]
    assert login(cast.owner).get(reverse("backups:detail", args=[999999])).status_code == 404


# -- page URLs -------------------------------------------------------------------------------------

PAGE_URLS = ["backups:list", "backups:toolbar", "backups:request"]


@pytest.mark.parametrize("name", PAGE_URLS)
def test_page_urls_for_each_actor(cast, name: str) -> None:  # type: ignore[no-untyped-def]
    url = reverse(name)
    for user, expected in (
        (cast.owner, 200),
        (cast.editor, 200),
        (cast.editor_a, 200),  # holds the permission in one OU
        (cast.site_admin, 200),
        (cast.other_owner, 200),  # their own organization's page
        (cast.admin, 200),  # Owners and Admins manage backups without OU roles (seed 000)
        (cast.member, 403),
    ):
        response = login(user).get(url)
        assert response.status_code == expected, (user.email, response.status_code)
    response = Client().get(url)
    assert response.status_code == 302 and response["Location"].startswith(reverse("accounts:login"))


def test_other_organizations_list_does_not_show_our_backups(cast) -> None:  # type: ignore[no-untyped-def]
    make_backup(cast.org, label="Acme secret backup")
    response = login(cast.other_owner).get(reverse("backups:list"))
    assert response.status_code == 200
    assert b"Acme secret backup" not in response.content


SCHEDULE_PAGES = ["backups:schedules", "backups:schedule_create"]


@pytest.mark.parametrize("name", SCHEDULE_PAGES)
def test_schedule_pages_are_for_owners_admins_and_site_admins(cast, name: str) -> None:  # type: ignore[no-untyped-def]
    url = reverse(name)
    for user, expected in (
        (cast.owner, 200),
        (cast.admin, 200),
        (cast.site_admin, 200),
        (cast.editor, 403),
        (cast.member, 403),
    ):
        assert login(user).get(url).status_code == expected, user.email
    assert Client().get(url)["Location"].startswith(reverse("accounts:login"))


@pytest.mark.parametrize("name,method", [("backups:schedule_edit", "get"), ("backups:schedule_delete", "post")])
def test_schedule_object_urls(cast, name: str, method: str) -> None:  # type: ignore[no-untyped-def]
    def fresh() -> BackupSchedule:
        return BackupSchedule.objects.create(organization=cast.org, name="Nightly")

    def call(user: User | None, schedule: BackupSchedule):  # type: ignore[no-untyped-def]
        client = login(user) if user else Client()
        return getattr(client, method)(reverse(name, args=[schedule.pk]))

    schedule = fresh()
    assert call(cast.other_owner, schedule).status_code == 404  # another organization
    assert call(cast.editor, schedule).status_code == 404  # not Owner/Admin
    assert call(cast.editor_a, schedule).status_code == 404
    anon = call(None, schedule)
    assert anon.status_code == 302 and anon["Location"].startswith(reverse("accounts:login"))
    assert call(cast.owner, schedule).status_code in (200, 302)
    for user in (cast.admin, cast.site_admin):
        schedule = schedule if BackupSchedule.objects.filter(pk=schedule.pk).exists() else fresh()
        assert call(user, schedule).status_code in (200, 302)


# -- POST only, with CSRF ------------------------------------------------------------------------------

POST_ONLY: list[tuple[str, Callable[..., list[int]]]] = [
    ("backups:cancel", lambda b, s: [b.pk]),
    ("backups:expire", lambda b, s: [b.pk]),
    ("backups:verify", lambda b, s: [b.pk]),
    ("backups:schedule_delete", lambda b, s: [s.pk]),
]


@pytest.mark.parametrize("name,args", POST_ONLY, ids=[n for n, _ in POST_ONLY])
def test_changes_refuse_get(cast, name: str, args) -> None:  # type: ignore[no-untyped-def]
    backup = make_backup(cast.org)
    schedule = BackupSchedule.objects.create(organization=cast.org)
    assert login(cast.owner).get(reverse(name, args=args(backup, schedule))).status_code == 405


CSRF_POSTS: list[tuple[str, Callable[..., list[int]], str]] = [
    ("backups:cancel", lambda b, s: [b.pk], Backup.Status.PENDING),
    ("backups:expire", lambda b, s: [b.pk], Backup.Status.COMPLETED),
    ("backups:verify", lambda b, s: [b.pk], Backup.Status.COMPLETED),
    ("backups:request", lambda b, s: [], Backup.Status.CANCELLED),
    ("backups:schedule_create", lambda b, s: [], Backup.Status.COMPLETED),
    ("backups:schedule_edit", lambda b, s: [s.pk], Backup.Status.COMPLETED),
    ("backups:schedule_delete", lambda b, s: [s.pk], Backup.Status.COMPLETED),
]


@pytest.mark.parametrize("name,args,status", CSRF_POSTS, ids=[n for n, _, _ in CSRF_POSTS])
def test_every_change_needs_the_csrf_token(cast, name: str, args, status: str) -> None:  # type: ignore[no-untyped-def]
    backup = make_backup(cast.org, status)
    schedule = BackupSchedule.objects.create(organization=cast.org, name="Nightly")
    client = login(cast.owner, enforce_csrf_checks=True)
    url = reverse(name, args=args(backup, schedule))
    response = client.post(url, {"name": "Changed", "frequency": "daily", "time_of_day": "03:00", "keep_last": 3})
    assert response.status_code == 403
    backup.refresh_from_db()
    assert backup.status == status
    assert Backup.objects.count() == 1
    assert BackupSchedule.objects.filter(pk=schedule.pk, name="Nightly").exists()
    assert BackupSchedule.objects.count() == 1


def test_a_post_with_the_csrf_token_goes_through(cast) -> None:  # type: ignore[no-untyped-def]
    backup = make_backup(cast.org, Backup.Status.PENDING)
    client = login(cast.owner, enforce_csrf_checks=True)
    page = client.get(reverse("backups:list"))
    token = page.context["csrf_token"]
    response = client.post(reverse("backups:cancel", args=[backup.pk]), {"csrfmiddlewaretoken": str(token)})
    assert response.status_code == 302
    backup.refresh_from_db()
    assert backup.status == Backup.Status.CANCELLED
