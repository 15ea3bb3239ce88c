"""The URL probe's table: the expected outcome of every URL of the project (the Django admin's
included) for every actor, read by ``tests/test_url_probe.py`` and ``tests/test_url_probe_post.py``.

Outcomes are the status code, or for a redirect the name of the page it leads to
(``→accounts:login`` with ``?next=`` the requested path, ``→admin:login``, ``→dashboard``…).
"""

from __future__ import annotations

from dataclasses import dataclass

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


def admin_object_redirect(label: str) -> str:
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
        table[admin_object_redirect(label)] = Entry(
            only("operator", ok=to(f"{prefix}_change"), others=ADMIN_LOGIN, anonymous=ADMIN_LOGIN)
        )
    return table
