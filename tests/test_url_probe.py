"""The URL probe: every URL pattern of the project, requested as every actor, against a table.

The walk enumerates ``get_resolver()`` recursively (the Django admin's patterns included), fills
each pattern's parameters with real rows (an object of the first organization, *acme*, and the
same URL with an object of the *other* organization), and GETs it as each actor. The outcome of
every request must equal the table below exactly. A URL that is not in the table, or a table
entry that no longer matches a URL, fails the probe: a new URL needs its row here.

Outcomes are the status code, or for a redirect the name of the page it leads to
(``→accounts:login`` with ``?next=`` the requested path, ``→admin:login``, ``→dashboard``…).
The walk is GET only; POST-only URLs answer GET with 405, and are checked separately to refuse
a POST without the CSRF token (403) and to be a 404 for a user of another organization.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.contrib import admin
from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType
from django.core.files.base import ContentFile
from django.http import HttpResponse
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, resolve, reverse
from django.urls.exceptions import Resolver404

from accounts.models import Notification, User
from accounts.services import notification_send
from backups.compare import services as compare_services
from backups.models import Backup, BackupDownload, BackupSchedule, StorageFinding
from organizations.models import DocumentVersion, Facility, Organization
from restores.models import Restore, RestoreUpload
from tests import factories as f
from tests.backups.conftest import add_document, tenant  # noqa: F401 - the filled-in organization, reused
from tests.restores.conftest import make_backup

pytestmark = pytest.mark.django_db

# ------------------------------------------------------------------------------------------------
# Actors and outcomes

USERS = ("owner", "admin", "editor", "editor_a", "member", "other_owner", "site_admin", "operator")
ACTORS = ("anonymous", *USERS)

OK = "200"
DENIED = "403"
MISSING = "404"
NOT_ALLOWED = "405"
LOGIN = "→accounts:login"
ADMIN_LOGIN = "→admin:login"


def to(view_name: str) -> str:
    """A redirect to another page of the site (not a login)."""
    return f"→{view_name}"


def only(*allowed: str, ok: str = OK, others: str = MISSING, anonymous: str = LOGIN, **special: str) -> dict[str, str]:
    """The outcome per actor: ``ok`` for the allowed users, ``others`` for the rest."""
    row = dict.fromkeys(USERS, others)
    row.update(dict.fromkeys(allowed, ok))
    row.update(special)
    row["anonymous"] = anonymous
    return row


EVERY_USER = only(*USERS)
SITE_ADMINS = only("site_admin")


@dataclass(frozen=True)
class Entry:
    """One URL's expected outcomes. ``obj`` names the row filling its parameters; then ``acme``
    is the outcome with the first organization's object and ``other`` with the other's."""

    acme: dict[str, str]
    other: dict[str, str] | None = None
    obj: str | None = None


def scoped(obj: str, acme: dict[str, str], other: dict[str, str]) -> Entry:
    return Entry(acme=acme, other=other, obj=obj)


def post_only(obj: str | None = None, anonymous: str = LOGIN) -> Entry:
    """login_required first, then require_POST: a GET learns nothing about the object."""
    row = only(others=NOT_ALLOWED, anonymous=anonymous)
    return Entry(acme=row, other=row if obj else None, obj=obj)


# Who sees acme's full (all-OUs) backup: the Owner and the Admin (they manage every backup of
# their organization, OU roles or not: seed 000), the Editor of both OUs, Site Admins. The Editor
# of OU A lacks OU B.
ACME_BACKUP = only("owner", "admin", "editor", "site_admin")
OTHER_BACKUP = only("other_owner", "site_admin")

# ------------------------------------------------------------------------------------------------
# The table: every URL of the site (the admin's follow below, from ADMIN_MODELS).

SITE_TABLE: dict[str, Entry] = {
    "dashboard": Entry(EVERY_USER),
    # public: load balancers and operators read it without a login; it names no tenant
    "health": Entry(only(others=OK, anonymous=OK)),
    # accounts
    "accounts:login": Entry(only(others=to("dashboard"), anonymous=OK)),
    "accounts:logout": post_only(anonymous=NOT_ALLOWED),  # Django's LogoutView is POST only
    "accounts:password_change": Entry(EVERY_USER),
    "accounts:password_change_done": Entry(EVERY_USER),
    "accounts:notifications": Entry(EVERY_USER),
    "accounts:notifications_read": post_only(),
    # organizations
    "organizations:switch": post_only(),
    "organizations:detail": scoped(
        "organization",
        only("owner", "admin", "editor", "editor_a", "member", "site_admin"),
        only("other_owner", "site_admin"),
    ),
    # Administration → Organization Management and the creation wizard: Site Admins only
    "management:organizations": Entry(SITE_ADMINS),
    "management:wizard": Entry(only("site_admin", ok=to("management:wizard_company"))),  # a fresh wizard
    "management:wizard_company": Entry(SITE_ADMINS),
    # a later step before the earlier ones are answered sends back to the first unanswered one
    **{
        f"management:wizard_{step}": Entry(only("site_admin", ok=to("management:wizard_company")))
        for step in ("address", "contact", "structure", "regulations", "modules", "review")
    },
    # backups: the pages of the current organization (the operator has none: 403)
    "backups:list": Entry(only("owner", "admin", "editor", "editor_a", "other_owner", "site_admin", others=DENIED)),
    "backups:toolbar": Entry(only("owner", "admin", "editor", "editor_a", "other_owner", "site_admin", others=DENIED)),
    "backups:request": Entry(only("owner", "admin", "editor", "editor_a", "other_owner", "site_admin", others=DENIED)),
    "backups:detail": scoped("backup", ACME_BACKUP, OTHER_BACKUP),
    "backups:row": scoped("backup", ACME_BACKUP, OTHER_BACKUP),
    "backups:history": scoped("backup", ACME_BACKUP, OTHER_BACKUP),
    "backups:download": scoped("backup", ACME_BACKUP, OTHER_BACKUP),
    "backups:cancel": post_only("backup"),
    "backups:expire": post_only("backup"),
    "backups:verify": post_only("backup"),
    "backups:compare": scoped("backup", ACME_BACKUP, OTHER_BACKUP),
    # browsing a backup: whoever sees the backup; picking records is a POST
    "backups:browse": scoped("backup", ACME_BACKUP, OTHER_BACKUP),
    "backups:browse_model": scoped("backup", ACME_BACKUP, OTHER_BACKUP),
    "backups:browse_record": scoped("backup", ACME_BACKUP, OTHER_BACKUP),
    "backups:browse_file": scoped("backup", ACME_BACKUP, OTHER_BACKUP),
    "backups:browse_select": post_only("backup"),
    # the probe's backups are their organization's first: no change summary, back to the details
    "backups:changes": scoped(
        "backup",
        only("owner", "admin", "editor", "site_admin", ok=to("backups:detail")),
        only("other_owner", "site_admin", ok=to("backups:detail")),
    ),
    "backups:comparison": scoped("comparison", ACME_BACKUP, OTHER_BACKUP),
    "backups:comparison_progress": scoped("comparison", ACME_BACKUP, OTHER_BACKUP),
    "backups:comparison_csv": scoped("comparison", ACME_BACKUP, OTHER_BACKUP),
    "backups:alert_settings": Entry(only("owner", "admin", "other_owner")),
    "backups:schedules": Entry(only("owner", "admin", "other_owner", "site_admin", others=DENIED)),
    "backups:schedule_create": Entry(only("owner", "admin", "other_owner", "site_admin", others=DENIED)),
    "backups:schedule_edit": scoped(
        "schedule", only("owner", "admin", "site_admin"), only("other_owner", "site_admin")
    ),
    "backups:schedule_delete": post_only("schedule"),
    # restores in place: the backup must be visible, then Owner (or Admin, by policy) only
    "restores:start": scoped(
        "backup",
        only("owner", "admin", editor=DENIED, site_admin=DENIED),
        only("other_owner", site_admin=DENIED),
    ),
    "restores:verify": post_only("backup"),
    # the selective restore's preview: whoever sees the backup (restoring is checked on POST)
    "restores:selective": scoped("backup", ACME_BACKUP, OTHER_BACKUP),
    # acme's request was made by its Admin; in-place restores are not shown to Site Admins
    "restores:detail": scoped("restore", only("owner", "admin"), only("other_owner")),
    "restores:confirm": post_only("restore"),
    "restores:resend": post_only("restore"),
    "restores:cancel": post_only("restore"),
    "restores:settings": Entry(only("owner", "admin", "other_owner")),
    # the wizard: Site Admins only, a 404 for everybody else
    "restores:wizard": Entry(SITE_ADMINS),
    "restores:wizard_backup": Entry(SITE_ADMINS),
    "restores:wizard_upload": Entry(SITE_ADMINS),
    "restores:wizard_profile": Entry(only("site_admin", ok=to("restores:wizard"))),  # no source chosen yet
    "restores:wizard_address": Entry(only("site_admin", ok=to("restores:wizard"))),
    "restores:wizard_contact": Entry(only("site_admin", ok=to("restores:wizard"))),
    "restores:wizard_structure": Entry(only("site_admin", ok=to("restores:wizard"))),
    "restores:wizard_regulations": Entry(only("site_admin", ok=to("restores:wizard"))),
    "restores:wizard_modules": Entry(only("site_admin", ok=to("restores:wizard"))),
    "restores:wizard_confirm": Entry(only("site_admin", ok=to("restores:wizard"))),
    "restores:backup_logo": scoped("backup", SITE_ADMINS, SITE_ADMINS),
    # the Site Admin's own upload, and one of another Site Admin
    "restores:upload_logo": scoped("upload", SITE_ADMINS, only()),
}

# The admin: anonymous users and users without is_staff are sent to the admin's login on every
# URL; the operator (is_staff) gets the pages. Every registered ModelAdmin is listed with the
# views its ModelAdmin switches off (403 for the operator too).
ADMIN_MODELS: dict[str, frozenset[str]] = {
    "accounts.auditlog": frozenset({"add", "delete"}),  # read-only trail (change is view-only)
    "accounts.membership": frozenset(),
    "accounts.notification": frozenset(),
    "accounts.ouroleassignment": frozenset(),
    "accounts.permission": frozenset(),
    "accounts.role": frozenset(),
    "accounts.user": frozenset(),
    "auth.group": frozenset(),
    "axes.accessattempt": frozenset({"add"}),
    "axes.accessfailurelog": frozenset({"add"}),
    "axes.accesslog": frozenset({"add"}),
    "backups.backup": frozenset({"add"}),
    "backups.backupdownload": frozenset({"add"}),
    "backups.backupevent": frozenset({"add"}),
    "backups.backupschedule": frozenset(),
    "backups.storagefinding": frozenset({"add"}),
    "organizations.billingcode": frozenset(),
    "organizations.client": frozenset(),
    "organizations.controlleddocument": frozenset(),
    "organizations.documentversion": frozenset(),
    "organizations.facility": frozenset(),
    "organizations.invoice": frozenset(),
    "organizations.masterdataversion": frozenset(),
    "organizations.matter": frozenset(),
    "organizations.organisationalunit": frozenset(),
    "organizations.organization": frozenset(),
    "organizations.organizationsetting": frozenset(),
    "organizations.payment": frozenset(),
    "organizations.regulation": frozenset(),
    "organizations.subscription": frozenset(),
    "organizations.template": frozenset(),
    "organizations.timeentry": frozenset(),
    "restores.restore": frozenset({"add"}),
    "restores.restoreupload": frozenset({"add"}),
}
ADMIN_MODEL_VIEWS = ("changelist", "add", "change", "history", "delete")
STAFF_ONLY = only("operator", others=ADMIN_LOGIN, anonymous=ADMIN_LOGIN)


def _admin_object_redirect(label: str) -> str:
    app, model = label.split(".")
    return f"admin/{app}/{model}/<path:object_id>/"  # unnamed: sends /<id>/ on to …/<id>/change/


ADMIN_CATCH_ALL = "admin/(?P<url>.*)$"  # unnamed: every other /admin/ path


def admin_table() -> dict[str, Entry]:
    table: dict[str, Entry] = {
        "admin:index": Entry(STAFF_ONLY),
        # A signed-in user without is_staff sees the form ("not authorized"); staff go on.
        "admin:login": Entry(only(others=OK, anonymous=OK, operator=to("admin:index"))),
        # Django's LogoutView is POST only; the admin sends those who are not staff to its index.
        "admin:logout": Entry(only(others=to("admin:index"), anonymous=to("admin:index"), operator=NOT_ALLOWED)),
        "admin:password_change": Entry(STAFF_ONLY),
        "admin:password_change_done": Entry(STAFF_ONLY),
        "admin:jsi18n": Entry(STAFF_ONLY),
        # Without its query (which model's field) the autocomplete view refuses even staff.
        "admin:autocomplete": Entry(only("operator", ok=DENIED, others=ADMIN_LOGIN, anonymous=ADMIN_LOGIN)),
        "admin:view_on_site": Entry(
            only("operator", ok=to("restores:detail"), others=ADMIN_LOGIN, anonymous=ADMIN_LOGIN)
        ),
        "admin:app_list": Entry(STAFF_ONLY),
        # django.contrib.auth's UserAdmin adds the form that sets another user's password.
        "admin:auth_user_password_change": Entry(STAFF_ONLY),
        ADMIN_CATCH_ALL: Entry(only("operator", ok=MISSING, others=ADMIN_LOGIN, anonymous=ADMIN_LOGIN)),
    }
    for label, switched_off in ADMIN_MODELS.items():
        prefix = "admin:" + label.replace(".", "_")
        for view in ADMIN_MODEL_VIEWS:
            ok = DENIED if view in switched_off else OK
            table[f"{prefix}_{view}"] = Entry(only("operator", ok=ok, others=ADMIN_LOGIN, anonymous=ADMIN_LOGIN))
        table[_admin_object_redirect(label)] = Entry(
            only("operator", ok=to(f"{prefix}_change"), others=ADMIN_LOGIN, anonymous=ADMIN_LOGIN)
        )
    return table


# ------------------------------------------------------------------------------------------------
# The walk


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
def world(tenant) -> World:  # type: ignore[no-untyped-def]  # noqa: F811
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


# ------------------------------------------------------------------------------------------------
# The tests


def test_every_url_of_the_project_has_an_entry_in_the_table() -> None:
    walked = {p.key for p in walk_patterns()}
    expected = set(SITE_TABLE) | set(admin_table())
    assert walked - expected == set(), "URLs without an entry in the probe's table"
    assert expected - walked == set(), "table entries matching no URL"
    assert all(p.key in SITE_TABLE for p in site_patterns()), "every site URL needs a name"


def test_admin_models_listed_are_the_registered_ones() -> None:
    registered = {model._meta.label_lower for model in admin.site._registry}
    assert registered == set(ADMIN_MODELS)


def test_every_site_url_as_every_actor(world: World) -> None:
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
        keys.add(_admin_object_redirect(label))
    return keys


def test_every_admin_url_as_every_actor(world: World) -> None:
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


POST_ONLY_URLS = sorted(
    key for key, entry in {**SITE_TABLE, **admin_table()}.items() if entry.acme["operator"] == NOT_ALLOWED
)


def _post_only_path(key: str, world: World, variant: str = "acme") -> str:
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


def test_no_url_takes_a_post_without_the_csrf_token(world: World) -> None:
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


def test_post_only_urls_are_404_for_another_organizations_user(world: World) -> None:
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
