"""The URL probe's POSTs: every URL refuses a POST without the CSRF token (403) and changes
nothing, and the POST-only URLs are a 404 for a user of another organization. The table is
``tests/support/url_table.py``; the GET walk is ``tests/test_url_probe.py``.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse

from accounts.models import Notification, User
from backups.models import Backup, BackupSchedule
from organizations.models import Organization
from restores.models import Restore, RestoreUpload
from tests import factories as f
from tests.backups.conftest import tenant  # noqa: F401 - the filled-in organization, reused
from tests.support.url_table import DENIED, LOGIN, MISSING, NOT_ALLOWED, SITE_TABLE, Entry, admin_table
from tests.support.url_walk import World, admin_path, admin_patterns, fill, site_patterns, world  # noqa: F401 - fixture

pytestmark = pytest.mark.django_db

POST_ONLY_URLS = sorted(
    key for key, entry in {**SITE_TABLE, **admin_table()}.items() if entry.acme["operator"] == NOT_ALLOWED
)


def _post_only_path(key: str, world: World, variant: str = "acme") -> str:  # noqa: F811
    if key.startswith("admin:"):
        return reverse(key)
    pattern = next(p for p in site_patterns() if p.key == key)
    return fill(pattern, SITE_TABLE[key], world, variant)


def _snapshot() -> list[Any]:
    """The rows a stray POST could change."""
    rows: list[Any] = []
    for model in (Organization, User, Backup, BackupSchedule, Restore, RestoreUpload, Notification):
        rows += list(model._default_manager.order_by("pk").values())
    return rows


def _csrf_actor(key: str, entry: Entry) -> str:
    """Someone the URL lets in (a POST is refused by the CSRF check before the view runs, so
    this only makes sure the refusal is not a login redirect or a 404 in disguise)."""
    if key.startswith("admin"):
        return "operator"
    refused = (LOGIN, MISSING, DENIED)
    for actor in ("owner", "admin", "site_admin", "operator", "other_owner", "anonymous"):
        if entry.acme[actor] not in refused:
            return actor
    raise AssertionError(entry)


def test_no_url_takes_a_post_without_the_csrf_token(world: World) -> None:  # noqa: F811
    """Every URL, the POST-only ones first among them, refuses a POST without the token (403)
    and changes nothing; the wizard's upload, exempt for its streaming upload handler, too."""
    assert len(POST_ONLY_URLS) == 13, POST_ONLY_URLS
    table = {**SITE_TABLE, **admin_table()}
    clients = world.clients(enforce_csrf_checks=True)
    before = _snapshot()
    paths = [(p.key, fill(p, SITE_TABLE[p.key], world, "acme")) for p in site_patterns()]
    paths += [(p.key, admin_path(p, world)) for p in admin_patterns()]
    assert {key for key, _ in paths} >= set(POST_ONLY_URLS)
    data = {"organization": world.cast.org.pk, "restore_policy": "owner_only", "name": "Changed"}
    for key, path in paths:
        actor = _csrf_actor(key, table[key])
        response = clients[actor].post(path, data)
        assert response.status_code == 403, (key, actor, response.status_code)
        assert b"CSRF verification failed" in response.content, (key, actor)
    assert _snapshot() == before
    assert clients["owner"].get(reverse("dashboard")).status_code == 200  # nobody was signed out
    assert clients["operator"].get(reverse("admin:index")).status_code == 200


def test_post_only_urls_are_404_for_another_organizations_user(world: World) -> None:  # noqa: F811
    """With a valid token (the test client's default), the other organization's Owner POSTing
    to acme's objects meets a 404 and changes nothing."""
    client = world.clients()["other_owner"]
    before = _snapshot()
    keys = [k for k in POST_ONLY_URLS if SITE_TABLE.get(k, Entry({})).obj is not None]
    assert len(keys) == 9, keys
    for key in keys:
        response = client.post(_post_only_path(key, world), {"code": "12345678", "password": f.DEMO_PASSWORD})
        assert response.status_code == 404, (key, response.status_code)
    response = client.post(reverse("organizations:switch"), {"organization": world.cast.org.pk})
    assert response.status_code == 404
    assert _snapshot() == before
