"""The URL probe's walk: every URL pattern of the project, the world of rows that fills their
parameters (an object of the first organization, *acme*, and of the *other*), and the requests
as each actor with their outcomes (``tests/support/url_table.py`` says what they must be)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType
from django.core.files.base import ContentFile
from django.http import HttpResponse
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, resolve, reverse
from django.urls.exceptions import Resolver404

from accounts.models import User
from accounts.services import notification_send
from backups.compare import services as compare_services
from backups.models import BackupDownload, BackupSchedule, StorageFinding
from organizations.models import DocumentVersion, Facility, Organization
from restores.models import Restore, RestoreUpload
from tests import factories as f
from tests.backups.conftest import add_document
from tests.restores.conftest import make_backup
from tests.support.url_table import ACTORS, ADMIN_CATCH_ALL, Entry


@dataclass(frozen=True)
class Pattern:
    key: str  # the URL's name (namespaced), or its route when it has none
    route: str
    params: tuple[str, ...]


def walk_patterns(resolver: URLResolver | None = None, prefix: str = "", namespace: str = "") -> Iterator[Pattern]:
    """Every URL pattern below the resolver, with its full route and namespaced name."""
    resolver = resolver or get_resolver()
    for entry in resolver.url_patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            inner = ":".join(p for p in (namespace, entry.namespace or "") if p)
            yield from walk_patterns(entry, route, inner)
            continue
        assert isinstance(entry, URLPattern)
        name = f"{namespace}:{entry.name}" if namespace and entry.name else entry.name
        params = tuple(entry.pattern.regex.groupindex)
        yield Pattern(key=name or route, route=route, params=params)


def site_patterns() -> list[Pattern]:
    return [p for p in walk_patterns() if not p.route.startswith("admin/")]


def admin_patterns() -> list[Pattern]:
    return [p for p in walk_patterns() if p.route.startswith("admin/")]


def outcome(response: HttpResponse, requested: str) -> str:
    """The status code, or where a redirect leads (a login must come back to ``requested``)."""
    if response.status_code not in (301, 302, 303, 307, 308):
        return str(response.status_code)
    location = urlsplit(response["Location"])
    if location.netloc not in ("", "testserver"):
        return f"→elsewhere {response['Location']}"
    try:
        target = resolve(location.path).view_name
    except Resolver404:
        return f"→unknown {location.path}"
    if target in ("accounts:login", "admin:login"):
        nxt = parse_qs(location.query).get("next", [""])[0]
        if nxt != requested:
            return f"→{target} with next={nxt!r}"
    return f"→{target}"


@dataclass
class World:
    """The cast of tests/conftest.py with an operator and one row of everything the URLs take."""

    cast: Any
    operator: User
    objects: dict[str, dict[str, Any]]  # "acme"/"other" -> {"backup": ..., "restore": ...}

    def actor(self, name: str) -> User | None:
        if name == "anonymous":
            return None
        if name == "operator":
            return self.operator
        return getattr(self.cast, name)  # type: ignore[no-any-return]

    def clients(self, **kwargs: Any) -> dict[str, Client]:
        result = {}
        for name in ACTORS:
            client = Client(**kwargs)
            user = self.actor(name)
            if user is not None:
                client.force_login(user)
            result[name] = client
        return result


def _logo(org: Organization) -> None:
    org.logo.save("logo", ContentFile(b"\x89PNG\r\n\x1a\n" + os.urandom(200)))


@pytest.fixture
def world(tenant) -> World:  # type: ignore[no-untyped-def]
    cast = tenant
    operator = f.UserFactory(email="ops@platform.test", is_staff=True, is_superuser=True)
    f.SubscriptionFactory(organization=cast.other_org)
    _logo(cast.other_org)  # tenant gave acme its logo
    other_site_admin = f.UserFactory(email="site-admin-2@platform.test", is_site_admin=True)
    add_document(cast.other_org, cast.other_org.ous.first(), "OTH-1")  # a file to browse in its backup
    objects: dict[str, dict[str, Any]] = {}
    for key, org, owner, requester, uploader in (
        ("acme", cast.org, cast.owner, cast.admin, cast.site_admin),
        ("other", cast.other_org, cast.other_owner, cast.other_owner, other_site_admin),
    ):
        backup = make_backup(org, owner)  # a real archive: download, preview and logo work
        upload = RestoreUpload.objects.create(
            file=backup.file.name, password_wrapped=backup.password_wrapped, uploaded_by=uploader, size=backup.size
        )
        comparison = compare_services.comparison_request(backup=backup, requested_by=owner)
        compare_services.comparison_run(comparison=compare_services.comparison_claim(comparison_id=comparison.pk))
        objects[key] = {
            "organization": org,
            "backup": backup,
            "comparison": comparison,
            "schedule": BackupSchedule.objects.create(organization=org, name="Nightly"),
            "restore": Restore.objects.create(organization=org, backup=backup, requested_by=requester),
            "upload": upload,
            "version": DocumentVersion.objects.filter(document__organization=org).order_by("pk").first(),
        }
    # A row for every model the admin lists, so its change, history and delete pages render.
    Facility.objects.create(organization=cast.org, name="Head office", code="HQ")
    Group.objects.create(name="Operators")
    notification_send(user=cast.owner, organization=cast.org, title="Hello")
    BackupDownload.objects.create(backup=objects["acme"]["backup"], user=cast.owner, user_email=cast.owner.email)
    StorageFinding.objects.create(kind=StorageFinding.Kind.ORPHAN, name="backups/stray.zip", stored_size=3)
    for model in (AccessAttempt, AccessFailureLog, AccessLog):
        extra = {"get_data": "", "post_data": "", "failures_since_start": 1} if model is AccessAttempt else {}
        model.objects.create(user_agent="probe", ip_address="127.0.0.1", username="x@y.test", **extra)
    return World(cast=cast, operator=operator, objects=objects)


# URLs with more than the object's key: the rest, from the variant's objects.
EXTRA_PARAMS: dict[str, Any] = {
    "backups:browse_model": lambda objects: {"model": "client"},
    "backups:browse_record": lambda objects: {"model": "document_version", "record": objects["version"].pk},
    "backups:browse_file": lambda objects: {"model": "document_version", "record": objects["version"].pk},
}


def fill(pattern: Pattern, entry: Entry, world: World, variant: str) -> str:
    """The path of a site URL with its parameters filled from ``variant``'s object."""
    if not pattern.params:
        assert entry.obj is None, f"{pattern.key} takes no parameter but its entry names {entry.obj!r}"
        return reverse(pattern.key)
    assert entry.obj is not None, f"{pattern.key} takes {pattern.params}: say in the table which object fills them"
    obj = world.objects[variant][entry.obj]
    if pattern.key in EXTRA_PARAMS:
        return reverse(pattern.key, kwargs={"pk": obj.pk, **EXTRA_PARAMS[pattern.key](world.objects[variant])})
    (param,) = pattern.params
    value = obj.slug if param == "slug" else obj.pk
    return reverse(pattern.key, kwargs={param: value})


def admin_path(pattern: Pattern, world: World) -> str:
    """The path of an admin URL: object pages of a model take its first row."""
    if pattern.key == ADMIN_CATCH_ALL:
        return "/admin/no-such-page/"
    if pattern.key == "admin:app_list":
        return reverse(pattern.key, kwargs={"app_label": "restores"})
    if pattern.key == "admin:view_on_site":
        restore = world.objects["acme"]["restore"]
        ct = ContentType.objects.get_for_model(Restore)
        return reverse(pattern.key, kwargs={"content_type_id": ct.pk, "object_id": restore.pk})
    if pattern.key == "admin:auth_user_password_change":
        return reverse(pattern.key, kwargs={"id": world.cast.member.pk})
    if not pattern.params:
        return reverse(pattern.key)
    assert pattern.params == ("object_id",), pattern
    app, model_name = pattern.route.split("/")[1:3]
    model = ContentType.objects.get_by_natural_key(app, model_name).model_class()
    assert model is not None
    row = model._default_manager.order_by("pk").first()
    assert row is not None, f"the probe needs a row of {app}.{model_name}: add one to the world fixture"
    if pattern.key.startswith("admin:"):
        return reverse(pattern.key, kwargs={"object_id": row.pk})
    return f"/admin/{app}/{model_name}/{row.pk}/"


def probe(
    requests: list[tuple[str, str, dict[str, str]]], clients: dict[str, Client], actors: tuple[str, ...] = ACTORS
) -> tuple[list[str], int]:
    """GET each (label, path) as each actor; the mismatches against the expected rows."""
    mismatches = []
    count = 0
    for label, path, expected in requests:
        for actor in actors:
            response = clients[actor].get(path)
            count += 1
            got = outcome(response, path)
            if response.streaming:
                # Drained through the test client's wrapper, which closes the file. (Closing the
                # response directly sends request_finished, which drops the test's connection.)
                b"".join(response.streaming_content)  # type: ignore[arg-type]
            if got != expected[actor]:
                mismatches.append(f"{label} {path} as {actor}: expected {expected[actor]}, got {got}")
    return mismatches, count
