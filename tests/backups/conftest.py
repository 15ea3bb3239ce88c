"""A small but complete tenant for backup tests: every data set has rows, documents have files;
and the database and broker that worker processes started by a test share with it."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from accounts.models import Role
from organizations import models as om
from tests import factories as f
from tests.support.procs import Broker, database_url, make_broker, sqlite_file_database


def add_document(org, ou, reference: str, status: str = "active", versions: int = 1, content: bytes | None = None):  # type: ignore[no-untyped-def]
    doc = om.ControlledDocument.objects.create(
        organization=org, ou=ou, reference=reference, title=f"Procedure {reference}", status=status
    )
    for n in range(1, versions + 1):
        data = content if content is not None else (f"{reference} v{n}\n".encode() * 50 + os.urandom(64))
        v = om.DocumentVersion(
            document=doc,
            number=n,
            filename=f"{reference}-v{n}.txt",
            content_type="text/plain",
            size=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
        )
        v.file.save("x", ContentFile(data), save=False)
        v.save()
    return doc


@pytest.fixture
def tenant(cast):  # type: ignore[no-untyped-def]
    """cast.org filled with records in both OUs."""
    org = cast.org
    regs = [f.RegulationFactory(master_data_version=org.master_data_version) for _ in range(3)]
    org.regulations.add(*regs[:2])
    org.logo.save("logo", ContentFile(b"\x89PNG\r\n\x1a\n" + os.urandom(200)))
    om.OrganizationSetting.objects.create(organization=org, key="billing.currency", value={"code": "GBP"})
    om.OrganizationSetting.objects.create(organization=org, key="documents.review_days", value=365)
    custom = Role.objects.create(name="Reviewer", organization=org)
    f.OURoleAssignmentFactory(user=cast.member, ou=cast.ou_b, role=custom)
    code = f.BillingCodeFactory(organization=org, code="ADV")
    om.Template.objects.create(organization=org, name="Engagement letter", body="Dear {{ client }}")
    for i, ou in enumerate((cast.ou_a, cast.ou_b)):
        add_document(org, ou, f"A{i}-1", "active", versions=2)
        add_document(org, ou, f"A{i}-2", "inactive")
        add_document(org, ou, f"A{i}-3", "superseded")
        matter = f.MatterFactory(organization=org, ou=ou, reference=f"M-{i}")
        inv = om.Invoice.objects.create(
            organization=org,
            client=matter.client,
            matter=matter,
            number=f"INV-{i}",
            issued_on=dt.date(2026, 3, 1),
            due_on=dt.date(2026, 3, 31),
            total=Decimal("1200.50"),
        )
        om.TimeEntry.objects.create(
            organization=org,
            matter=matter,
            billing_code=code,
            invoice=inv,
            user_email=cast.editor.email,
            worked_on=dt.date(2026, 2, 27),
            minutes=90,
            rate=Decimal("180.00"),
            description="Drafting",
        )
        om.Payment.objects.create(
            organization=org, invoice=inv, amount=Decimal("600.25"), received_on=dt.date(2026, 4, 2)
        )
    # Another organization's data, which must never appear in cast.org's backups.
    other_ou = cast.other_org.ous.get()
    add_document(cast.other_org, other_ou, "OTHER-1")
    f.MatterFactory(organization=cast.other_org, ou=other_ou, reference="M-OTHER")
    return cast


@pytest.fixture
def storage():  # type: ignore[no-untyped-def]
    return default_storage


@pytest.fixture
def shared_db(transactional_db, tmp_path: Path) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """The URL of the test database, which worker processes can open (request it before data)."""
    with sqlite_file_database(tmp_path / "shared.sqlite3"):
        yield database_url()


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    b = make_broker(tmp_path / "var")
    try:
        yield b
    finally:
        b.cleanup()
