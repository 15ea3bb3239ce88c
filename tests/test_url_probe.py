"""The URL probe: every URL pattern of the project, requested as every actor, against a table.

The walk enumerates ``get_resolver()`` recursively (the Django admin's patterns included), fills
each pattern's parameters with real rows (an object of the first organization, *acme*, and the
same URL with an object of the *other* organization), and GETs it as each actor. The outcome of
every request must equal the table (``tests/support/url_table.py``) exactly. A URL that is not
in the table, or a table entry that no longer matches a URL, fails the probe: a new URL needs
its row there. The walk and its world of rows are ``tests/support/url_walk.py``.

Outcomes are the status code, or for a redirect the name of the page it leads to
(``→accounts:login`` with ``?next=`` the requested path, ``→admin:login``, ``→dashboard``…).
The walk is GET only; POST-only URLs answer GET with 405, and ``tests/test_url_probe_post.py``
checks that they refuse a POST without the CSRF token (403) and are a 404 for a user of another
organization.
"""

from __future__ import annotations

import pytest
from django.contrib import admin

from tests.backups.conftest import tenant  # noqa: F401 - the filled-in organization, reused
from tests.support.url_table import (
    ACTORS,
    ADMIN_MODEL_VIEWS,
    ADMIN_MODELS,
    MISSING,
    NOT_ALLOWED,
    SITE_TABLE,
    admin_object_redirect,
    admin_table,
)
from tests.support.url_walk import World, admin_path, admin_patterns, fill, probe, site_patterns, walk_patterns, world  # noqa: F401 - fixture

pytestmark = pytest.mark.django_db


def test_every_url_of_the_project_has_an_entry_in_the_table() -> None:
    walked = {p.key for p in walk_patterns()}
    expected = set(SITE_TABLE) | set(admin_table())
    assert walked - expected == set(), "URLs without an entry in the probe's table"
    assert expected - walked == set(), "table entries matching no URL"
    assert all(p.key in SITE_TABLE for p in site_patterns()), "every site URL needs a name"


def test_admin_models_listed_are_the_registered_ones() -> None:
    registered = {model._meta.label_lower for model in admin.site._registry}
    assert registered == set(ADMIN_MODELS)


def test_every_site_url_as_every_actor(world: World) -> None:  # noqa: F811
    requests = []
    for pattern in site_patterns():
        entry = SITE_TABLE[pattern.key]
        requests.append((pattern.key, fill(pattern, entry, world, "acme"), entry.acme))
        if entry.obj is not None:
            assert entry.other is not None, pattern.key
            requests.append((pattern.key, fill(pattern, entry, world, "other"), entry.other))
    mismatches, count = probe(requests, world.clients())
    assert not mismatches, f"{len(mismatches)} of {count} requests:\n" + "\n".join(mismatches)
    assert count == len(requests) * len(ACTORS) > 500


def test_another_organizations_user_gets_404_on_every_acme_object() -> None:
    """The rule of the issue, read off the table: no acme object URL is anything but a 404 to
    the other organization's Owner (POST-only ones are checked with a POST below)."""
    for key, entry in SITE_TABLE.items():
        if entry.obj is not None and entry.acme["other_owner"] != NOT_ALLOWED:
            assert entry.acme["other_owner"] == MISSING, key


# The admin's own pages and every changelist are requested as every actor. The object pages of
# each model (add, change, history, delete) answer every user without is_staff the same way
# (``AdminSite.admin_view`` runs before the ModelAdmin), so they are requested as the anonymous
# user, a plain member, the Site Admin (the strongest user without is_staff) and the operator:
# this keeps the walk fast while every admin URL still meets a signed-in user who is not staff.
OBJECT_PAGE_ACTORS = ("anonymous", "member", "site_admin", "operator")


def model_object_pages() -> set[str]:
    keys = {"admin:auth_user_password_change"}
    for label in ADMIN_MODELS:
        prefix = "admin:" + label.replace(".", "_")
        keys |= {f"{prefix}_{view}" for view in ADMIN_MODEL_VIEWS if view != "changelist"}
        keys.add(admin_object_redirect(label))
    return keys


def test_every_admin_url_as_every_actor(world: World) -> None:  # noqa: F811
    table = admin_table()
    clients = world.clients()
    object_pages = model_object_pages()
    pages, objects = [], []
    for pattern in admin_patterns():
        request = (pattern.key, admin_path(pattern, world), table[pattern.key].acme)
        (objects if pattern.key in object_pages else pages).append(request)
    assert len(pages) == len(ADMIN_MODELS) + 10, [label for label, _, _ in pages]  # changelists and the site's
    mismatches, count = probe(pages, clients)
    more, more_count = probe(objects, clients, OBJECT_PAGE_ACTORS)
    mismatches += more
    assert not mismatches, f"{len(mismatches)} of {count + more_count} requests:\n" + "\n".join(mismatches)
