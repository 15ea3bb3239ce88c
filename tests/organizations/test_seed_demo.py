"""``manage.py seed_demo``: shapes, actors, real files, idempotency and determinism."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import random
import zipfile
from pathlib import Path

import pytest
from django.core.management import call_command
from PIL import Image

from accounts.models import Membership, OURoleAssignment, User
from accounts.permissions import ADMINISTRATION_EDITOR, MANAGE_ACCOUNT_BACKUPS, ous_with_permission
from organizations.demo.catalog import DEMO_PASSWORD
from organizations.demo.files import KINDS, DocumentInfo, HashingWriter, write_document_file
from organizations.demo.text import Corpus
from organizations.models import (
    Client,
    ControlledDocument,
    DocumentVersion,
    Invoice,
    Matter,
    Organization,
    Payment,
    Regulation,
    Subscription,
    TimeEntry,
)

pytestmark = pytest.mark.django_db
SMALL = ("--documents", "30", "--quiet")


@pytest.fixture(autouse=True)
def _fast_media_and_hashing(settings, tmp_path: Path) -> Path:  # type: ignore[no-untyped-def]
    """A private media folder (also when no shared conftest provides one) and a fast hasher."""
    media = tmp_path / "seed-media"
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(media)}},
    }
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    return media


def _stored_files(media: Path) -> set[str]:
    return {str(p.relative_to(media)) for p in media.rglob("*") if p.is_file()}


def _row_counts() -> dict[str, int]:
    models = (
        User,
        Membership,
        OURoleAssignment,
        Organization,
        Regulation,
        Subscription,
        Client,
        Matter,
        Invoice,
        TimeEntry,
        Payment,
        ControlledDocument,
        DocumentVersion,
    )
    return {m.__name__: m.objects.count() for m in models}


def test_second_run_adds_no_rows_and_no_files(_fast_media_and_hashing: Path) -> None:
    out = io.StringIO()
    call_command("seed_demo", "--documents", "30", stdout=out)
    counts, files = _row_counts(), _stored_files(_fast_media_and_hashing)

    quiet = io.StringIO()
    call_command("seed_demo", *SMALL, stdout=quiet)

    assert quiet.getvalue() == ""
    assert _row_counts() == counts
    assert _stored_files(_fast_media_and_hashing) == files
    assert counts["DocumentVersion"] + 3 == len(files)  # one file per version, plus three logos
    text = out.getvalue()
    assert "owner@acme.example.com" in text and DEMO_PASSWORD in text
    assert "valid until" in text and "stored bytes" in text


def test_regenerated_documents_are_identical() -> None:
    call_command("seed_demo", *SMALL)
    versions = DocumentVersion.objects.filter(document__organization__slug="nordwind")
    before = sorted(versions.values_list("document__reference", "number", "sha256", "size", "filename"))
    ControlledDocument.objects.filter(organization__slug="nordwind").delete()

    call_command("seed_demo", *SMALL)

    assert sorted(versions.values_list("document__reference", "number", "sha256", "size", "filename")) == before


def test_organizations_have_the_required_shapes() -> None:
    call_command("seed_demo", *SMALL)

    acme = Organization.objects.get(slug="acme")
    assert sorted(acme.facilities.values_list("name", flat=True)) == ["London HQ", "Manchester Office"]
    assert acme.ous.count() >= 6 and acme.ous.filter(facility__isnull=True).exists()
    assert acme.subscription.is_valid()
    assert acme.logo and acme.logo.storage.exists(acme.logo.name)
    assert acme.language_settings["default"] == "en" and acme.creation_wizard_data
    assert acme.regulations.exists()
    assert set(acme.regulations.values_list("master_data_version", flat=True)) == {acme.master_data_version_id}

    brightside = Organization.objects.get(slug="brightside")
    assert brightside.ous.count() == 2 and not brightside.facilities.exists()
    assert brightside.subscription.is_valid()

    nordwind = Organization.objects.get(slug="nordwind")
    assert not Subscription.objects.filter(organization=nordwind).exists()

    assert acme.documents.count() == 30
    for org in (acme, brightside, nordwind):
        assert org.memberships.filter(role=Membership.Role.OWNER).count() == 1
        assert org.clients.exists() and org.matters.exists() and org.invoices.exists()
        assert org.time_entries.filter(invoice__isnull=False).exists() and org.payments.exists()
        assert org.settings.filter(key="billing.currency").exists() and org.templates.exists()
        assert org.billing_codes.exists()
        assert set(org.documents.values_list("status", flat=True)) == {"active", "inactive", "superseded"}
        # OU-scoped records stay inside their organization.
        assert not org.matters.exclude(ou__organization=org).exists()
        assert not org.documents.exclude(ou__organization=org).exists()


def test_every_actor_has_a_user_with_the_right_role() -> None:
    call_command("seed_demo", *SMALL)
    acme = Organization.objects.get(slug="acme")
    london = set(acme.ous.filter(facility__name="London HQ").values_list("pk", flat=True))
    every_ou = set(acme.ous.values_list("pk", flat=True))

    def ous_of(email: str) -> set[int]:
        user = User.objects.get(email=email)
        return set(ous_with_permission(user, acme, MANAGE_ACCOUNT_BACKUPS).values_list("pk", flat=True))

    def role(email: str, slug: str) -> str:
        return Membership.objects.get(user__email=email, organization__slug=slug).role

    assert role("owner@acme.example.com", "acme") == Membership.Role.OWNER
    assert role("admin@acme.example.com", "acme") == Membership.Role.ADMIN
    assert role("member@acme.example.com", "acme") == Membership.Role.MEMBER
    assert role("owner@brightside.example.com", "brightside") == Membership.Role.OWNER
    assert role("owner@nordwind.example.com", "nordwind") == Membership.Role.OWNER
    assert ous_of("owner@acme.example.com") == every_ou
    assert ous_of("admin@acme.example.com") == every_ou
    assert ous_of("editor@acme.example.com") == london and london != every_ou
    assert ous_of("member@acme.example.com") == set()
    assert set(
        OURoleAssignment.objects.filter(user__email="editor@acme.example.com").values_list("role__name", flat=True)
    ) == {ADMINISTRATION_EDITOR}

    site_admin = User.objects.get(email="siteadmin@example.com")
    assert site_admin.is_site_admin and not site_admin.is_staff
    operator = User.objects.get(email="operator@example.com")
    assert operator.is_staff and operator.is_superuser and not operator.is_site_admin
    assert all(u.check_password(DEMO_PASSWORD) for u in User.objects.all())


def test_stored_files_are_real_mixed_and_match_their_sha256() -> None:
    call_command("seed_demo", *SMALL)
    versions = DocumentVersion.objects.all()
    assert versions.count() > 200  # "hundreds of documents" have even more versions

    extensions = {k.content_type: k.extension for k in KINDS.values()}
    content_types = set()
    for version in versions:
        with version.file.open("rb") as fh:
            data = fh.read()
        assert len(data) == version.size > 0
        assert hashlib.sha256(data).hexdigest() == version.sha256
        assert version.filename.endswith(f" v{version.number}.{extensions[version.content_type]}")
        content_types.add(version.content_type)
        if version.content_type == "application/pdf":
            assert data.startswith(b"%PDF-1.4") and data.rstrip().endswith(b"%%EOF")
        elif version.content_type.startswith("image/"):
            Image.open(io.BytesIO(data)).load()
        elif version.content_type.endswith("wordprocessingml.document"):
            with zipfile.ZipFile(io.BytesIO(data)) as zf:
                assert zf.testzip() is None and "word/document.xml" in zf.namelist()
        else:
            data.decode("utf-8")
    assert content_types == {k.content_type for k in KINDS.values()}
    # Storage keys are opaque: nothing of the tenant or the title leaks into them.
    assert not versions.filter(file__icontains="acme").exists()
    assert not versions.exclude(file__startswith="documents/").exists()


def test_gigabytes_sizes_the_scaled_organization() -> None:
    call_command("seed_demo", "--org", "nordwind", "--documents", "12", "--gigabytes", "0.004", "--quiet")

    stored = sum(DocumentVersion.objects.filter(document__organization__slug="nordwind").values_list("size", flat=True))
    assert 0.9 * 4_000_000 <= stored <= 1.1 * 4_000_000
    assert ControlledDocument.objects.filter(organization__slug="nordwind").count() == 12
    assert ControlledDocument.objects.filter(organization__slug="acme").count() == 300  # the default


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_generated_files_reach_their_size_and_are_deterministic(kind: str) -> None:
    corpus = Corpus(7)
    info = DocumentInfo("T-1", "Data Protection Policy", 1, "owner@example.com", dt.datetime(2026, 1, 1, tzinfo=dt.UTC))

    def generate() -> HashingWriter:
        writer = HashingWriter(io.BytesIO())  # type: ignore[arg-type]
        write_document_file(writer, kind=KINDS[kind], rng=random.Random(3), corpus=corpus, info=info, size=300_000)
        return writer

    first, second = generate(), generate()
    assert first.sha256 == second.sha256
    assert 0.95 * 300_000 <= first.size <= 1.1 * 300_000
