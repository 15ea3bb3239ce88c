"""Shared fixtures: a private storage per test and the cast of DESIGN.md's actors."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from accounts.models import Membership, User
from organizations.models import OrganisationalUnit, Organization
from tests import factories as f


@pytest.fixture(autouse=True)
def _private_storage(settings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Every test writes files into its own folder, never into var/."""
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "media")},
        },
    }
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.AXES_ENABLED = False
    settings.BACKUP_DISPATCH_IMMEDIATELY = False  # tests run jobs themselves, or start real workers
    settings.RESTORE_DISPATCH_IMMEDIATELY = False
    # Fast hashing: tests create many users; production keeps Django's PBKDF2 default.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@dataclass
class Cast:
    """The actors of DESIGN.md around one organization with two OUs, and an outsider."""

    org: Organization
    ou_a: OrganisationalUnit
    ou_b: OrganisationalUnit
    owner: User
    admin: User
    editor: User  # holds Manage Account Backups in both OUs through Administration Editor
    editor_a: User  # holds it in OU A only
    member: User
    site_admin: User
    other_org: Organization
    other_owner: User


@pytest.fixture
def cast(db) -> Cast:  # type: ignore[no-untyped-def]
    org = f.OrganizationFactory(name="Acme Legal", slug="acme")
    f.SubscriptionFactory(organization=org)
    ou_a = f.OUFactory(organization=org, name="Litigation", code="LIT")
    ou_b = f.OUFactory(organization=org, name="Finance", code="FIN")
    owner = f.UserFactory(email="owner@acme.test")
    admin = f.UserFactory(email="admin@acme.test")
    editor = f.UserFactory(email="editor@acme.test")
    editor_a = f.UserFactory(email="editor-a@acme.test")
    member = f.UserFactory(email="member@acme.test")
    f.MembershipFactory(user=owner, organization=org, role=Membership.Role.OWNER)
    f.MembershipFactory(user=admin, organization=org, role=Membership.Role.ADMIN)
    for u in (editor, editor_a, member):
        f.MembershipFactory(user=u, organization=org, role=Membership.Role.MEMBER)
    f.OURoleAssignmentFactory(user=editor, ou=ou_a)
    f.OURoleAssignmentFactory(user=editor, ou=ou_b)
    f.OURoleAssignmentFactory(user=editor_a, ou=ou_a)
    site_admin = f.UserFactory(email="site-admin@platform.test", is_site_admin=True)
    other_org = f.OrganizationFactory(name="Other Org", slug="other")
    f.OUFactory(organization=other_org, name="Other OU", code="OTH")
    other_owner = f.UserFactory(email="owner@other.test")
    f.MembershipFactory(user=other_owner, organization=other_org, role=Membership.Role.OWNER)
    return Cast(org, ou_a, ou_b, owner, admin, editor, editor_a, member, site_admin, other_org, other_owner)


def pytest_report_header(config: pytest.Config) -> list[str]:
    """Say which real services this run uses, so a CI log shows them."""
    import importlib.metadata as md
    import os
    import shutil
    import subprocess

    from django.conf import settings

    db = settings.DATABASES["default"]
    lines = [f"database: {db['ENGINE'].rsplit('.', 1)[-1]} {db.get('HOST') or ''} {db.get('NAME')}".rstrip()]
    redis = shutil.which("redis-server")
    if redis:
        version = subprocess.run([redis, "--version"], capture_output=True, text=True, timeout=10).stdout.split()
        lines.append(f"redis-server: {next((v for v in version if v.startswith('v=')), '?')} ({redis})")
    else:
        lines.append("redis-server: not installed (the end-to-end and Redis fault tests need it)")
    if os.environ.get("TEST_REDIS_URL"):
        lines.append(f"shared Redis for worker tests: {os.environ['TEST_REDIS_URL']}")
    peers = ", ".join(f"{p} {md.version(p)}" for p in ("moto", "aiosmtpd", "gunicorn", "celery", "playwright"))
    lines.append(f"started by the tests: {peers}; browser: {shutil.which('chromium') or 'not installed'}")
    return lines


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    """Debian's chromium through Playwright, one per test process (tests/browser, tests/e2e)."""
    import os

    from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS

    if not Path(CHROMIUM).exists():
        if os.environ.get("REQUIRE_BROWSER"):
            pytest.fail(f"chromium not found at {CHROMIUM} (apt-get install chromium)")
        pytest.skip(f"chromium not found at {CHROMIUM}: install Debian's chromium to run browser tests")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()
