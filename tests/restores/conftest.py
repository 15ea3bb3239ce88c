"""Fixtures of the restore tests: a completed full backup of the tenant, state dumps to prove
"nothing changed", and helpers to ask for codes without reading mailboxes by hand."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core import mail
from django.core.files.storage import default_storage

from accounts.models import Membership, OURoleAssignment, Role
from backups import datasets as ds
from backups.models import Backup
from backups.services import backup_claim, backup_request, backup_run
from organizations.models import Organization
from restores import services
from restores.models import Restore
from tests import factories as f
from tests.backups.conftest import add_document, storage, tenant  # noqa: F401 - fixtures re-exported

CODE_RE = re.compile(r"\b(\d{8})\b")


@pytest.fixture(autouse=True)
def _no_dispatch(settings) -> None:  # type: ignore[no-untyped-def]
    settings.RESTORE_DISPATCH_IMMEDIATELY = False  # tests run restores themselves


def make_backup(org: Organization, user: Any = None, **kwargs: Any) -> Backup:
    """A completed backup of everything in the organization (inactive documents included)."""
    kwargs.setdefault("include_inactive", True)
    backup, _ = backup_request(organization=org, requested_by=user, **kwargs)
    claimed = backup_claim(backup_id=backup.pk)
    assert claimed is not None
    backup = backup_run(backup=claimed)
    assert backup.status == Backup.Status.COMPLETED, backup.failure_reason
    return backup


@pytest.fixture
def full_backup(tenant) -> Backup:  # type: ignore[no-untyped-def]  # noqa: F811
    """A full backup of the tenant. The Admin may see it: they hold Manage Account Backups in
    both OUs (an Admin restores only backups they may see)."""
    for ou in (tenant.ou_a, tenant.ou_b):
        f.OURoleAssignmentFactory(user=tenant.admin, ou=ou)
    return make_backup(tenant.org, tenant.owner)


def db_state(org: Organization) -> dict[str, Any]:
    """Every row of the organization in every table a restore touches, primary keys included."""
    state: dict[str, Any] = {}
    org.refresh_from_db()
    state["organization"] = {
        f.attname: str(getattr(org, f.attname))
        for f in Organization._meta.concrete_fields
        if f.name != "maintenance_since"
    }
    state["regulations"] = sorted(org.regulations.values_list("pk", flat=True))
    for key in ds.REGISTRY:
        for spec in ds.REGISTRY[key].models:
            model = spec.model
            if model in (Organization,) or spec.key == "regulation":
                continue
            if model is Membership:
                qs = Membership.objects.filter(organization=org)
            elif model is Role:
                qs = Role.objects.filter(organization=org)
            elif model is OURoleAssignment:
                qs = OURoleAssignment.objects.filter(ou__organization=org)
            elif spec.key == "document_version":
                qs = model.objects.filter(document__organization=org)
            else:
                qs = model.objects.filter(organization=org)
            state[spec.key] = sorted(repr(sorted(row.items())) for row in qs.values())
    state["backup_ous"] = sorted(
        Backup.ous.through.objects.filter(organisationalunit__organization=org)
        .exclude(backup__kind=Backup.Kind.PRE_RESTORE)
        .values_list("backup_id", "organisationalunit_id")
    )
    return state


def media_listing(exclude_prefix: tuple[str, ...] = ("backups/",)) -> dict[str, int]:
    """Files in storage (name -> size), archives of backups left out unless asked for."""
    root = Path(settings.MEDIA_ROOT)
    found: dict[str, int] = {}
    for folder, _dirs, files in os.walk(root):
        for name in files:
            rel = os.path.relpath(os.path.join(folder, name), root)
            if not rel.startswith(exclude_prefix):
                found[rel] = os.path.getsize(os.path.join(folder, name))
    return found


def last_code(to: str | None = None) -> str:
    """The code of the last restore-code email (Django's test outbox)."""
    for message in reversed(mail.outbox):
        if "restore code" in message.subject.lower() and (to is None or to in message.to):
            match = CODE_RE.search(message.body)
            assert match, message.body
            return match.group(1)
    raise AssertionError("no restore code email was sent")


def confirmed_restore(backup: Backup, user: Any, password: str) -> Restore:
    restore = services.restore_request_code(backup=backup, user=user)
    return services.restore_confirm(restore=restore, user=user, code=last_code(), password=password)


def run(restore: Restore) -> Restore:
    claimed = services.restore_claim(restore_id=restore.pk)
    assert claimed is not None
    return services.restore_run(restore=claimed)


@pytest.fixture
def listing() -> Callable[[], dict[str, int]]:
    return media_listing


@pytest.fixture
def media() -> Any:
    return default_storage
