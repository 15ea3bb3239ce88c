"""Restore into a new organization through the wizard, from a kept backup or an uploaded file."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from accounts.models import AuditLog, Membership
from backups.archive import ArchiveWriter
from backups.archive import writer as writer_module
from backups.keys import unwrap_password
from backups.snapshot import logical_snapshot
from organizations.models import Organization
from restores import engine, services
from restores.models import Restore, RestoreUpload
from tests.restores.conftest import media_listing, run

pytestmark = pytest.mark.django_db

PNG = b"\x89PNG\r\n\x1a\n" + b"new logo" * 20


@pytest.fixture
def admin_client(tenant) -> Client:  # type: ignore[no-untyped-def]
    client = Client()
    client.force_login(tenant.site_admin)
    return client


def profile_post(client: Client, **changes: Any) -> Any:
    """Submit the company step with the pre-filled values, changed where asked."""
    form = client.get(reverse("restores:wizard_profile")).context["form"]
    data = {name: form.initial.get(name, "") for name in form.fields if name != "logo"}
    data.update(changes)
    return client.post(reverse("restores:wizard_profile"), data)


def accept_step(client: Client, name: str) -> None:
    """Submit a step as pre-filled from the backup (read-only steps: just continue)."""
    page = client.get(reverse(name))
    assert page.status_code == 200, (name, page.status_code)
    form = page.context.get("form")
    data = {k: v for k, v in (form.initial if form is not None else {}).items() if v not in (None, "")}
    response = client.post(reverse(name), data)
    assert response.status_code == 302, response.content.decode()[-1500:]


def finish(client: Client) -> Restore:
    for name in ("address", "contact", "structure", "regulations", "modules"):
        accept_step(client, f"restores:wizard_{name}")
    response = client.post(reverse("restores:wizard_confirm"))
    assert response.status_code == 302, response.content[:500]
    restore = Restore.objects.get(kind=Restore.Kind.NEW_ORGANIZATION)
    assert response["Location"] == restore.get_absolute_url()
    return restore


def test_restore_from_a_kept_backup_into_a_new_organization(tenant, full_backup, admin_client) -> None:  # type: ignore[no-untyped-def]
    source = logical_snapshot(tenant.org)
    older = full_backup
    from tests.restores.conftest import make_backup

    newest = make_backup(tenant.org, tenant.owner)
    page = admin_client.get(reverse("restores:wizard_backup"))
    groups = page.context["groups"]
    acme = next(g for g in groups if g["organization"] == tenant.org)
    assert [b.pk for b in acme["backups"]] == [newest.pk, older.pk]  # newest first
    page = admin_client.get(reverse("restores:wizard_backup"), {"preview": older.pk})
    preview = page.context["preview"]
    assert preview["organization"]["name"] == "Acme Legal"
    assert preview["organization"]["license_identifier"] == tenant.org.license_identifier
    assert preview["master_data_version"] == tenant.org.master_data_version.code
    assert preview["has_logo"] and len(preview["regulations"]) == 2
    logo = admin_client.get(reverse("restores:backup_logo", args=[older.pk]))
    assert logo["Content-Type"] == "image/png" and logo.content == tenant.org.logo.read()
    assert admin_client.post(reverse("restores:wizard_backup"), {"backup": older.pk}).status_code == 302
    form = admin_client.get(reverse("restores:wizard_profile")).context["form"]
    assert form.initial["name"] == "Acme Legal" and form.initial["description"] == tenant.org.description
    assert form.initial["owner_email"] == tenant.site_admin.email and form.initial["slug"] == "acme-legal"
    posted = profile_post(admin_client, name="Acme Legal (restored)", slug="acme-restored")
    assert posted.status_code == 302, posted.context["form"].errors
    for name in ("address", "contact", "structure"):
        accept_step(admin_client, f"restores:wizard_{name}")
    regulations = admin_client.get(reverse("restores:wizard_regulations"))
    assert b"<fieldset disabled" in regulations.content
    restore = finish(admin_client)
    restore = run(restore)
    assert restore.status == Restore.Status.COMPLETED, restore.failure_reason
    new = Organization.objects.get(slug="acme-restored")
    assert new.name == "Acme Legal (restored)"
    assert new.master_data_version == tenant.org.master_data_version
    assert logical_snapshot(new) == source  # logo from the backup included
    assert Membership.objects.get(organization=new, role="owner").user == tenant.site_admin
    assert restore.organization == new
    assert AuditLog.objects.filter(action="organization.create", organization=new).exists()


def test_a_new_logo_replaces_the_backups(tenant, full_backup, admin_client) -> None:  # type: ignore[no-untyped-def]
    admin_client.post(reverse("restores:wizard_backup"), {"backup": full_backup.pk})
    form = admin_client.get(reverse("restores:wizard_profile")).context["form"]
    data = {name: form.initial.get(name, "") for name in form.fields if name != "logo"}
    data.update(slug="with-new-logo", owner_email=tenant.other_owner.email, logo=SimpleUploadedFile("l.png", PNG))
    assert admin_client.post(reverse("restores:wizard_profile"), data).status_code == 302
    restore = run(finish(admin_client))
    assert restore.status == Restore.Status.COMPLETED
    new = Organization.objects.get(slug="with-new-logo")
    assert new.logo.read() == PNG
    assert Membership.objects.get(organization=new, role="owner").user == tenant.other_owner
    assert not [n for n in media_listing() if n.startswith("restore-uploads/")]  # the wizard's copy is gone


@pytest.mark.parametrize("stage", ["after_create", "row", "imported", "finalize"])
def test_a_failure_after_creation_leaves_no_organization(tenant, full_backup, admin_client, monkeypatch, stage) -> None:  # type: ignore[no-untyped-def]
    admin_client.post(reverse("restores:wizard_backup"), {"backup": full_backup.pk})
    profile_post(admin_client, slug="doomed", logo=SimpleUploadedFile("l.png", PNG))
    restore = finish(admin_client)
    organizations = set(Organization.objects.values_list("pk", flat=True))
    files = media_listing(exclude_prefix=("backups/", "restore-uploads/"))

    def checkpoint(name: str, **info: Any) -> None:
        if name == stage:
            raise RuntimeError(f"injected at {stage}")

    monkeypatch.setattr(engine, "checkpoint", checkpoint)
    restore = run(restore)
    assert restore.status == Restore.Status.FAILED
    assert set(Organization.objects.values_list("pk", flat=True)) == organizations
    assert not Organization.objects.filter(slug="doomed").exists()
    assert media_listing() == files  # no stored file left: documents, logo, the wizard's logo copy
    page = admin_client.get(restore.get_absolute_url())
    assert b"No organization was created." in page.content


def test_the_wizard_is_for_site_admins_only(tenant, full_backup) -> None:  # type: ignore[no-untyped-def]
    for user in (tenant.owner, tenant.admin, tenant.member):
        client = Client()
        client.force_login(user)
        for name in ("restores:wizard", "restores:wizard_backup", "restores:wizard_upload"):
            assert client.get(reverse(name)).status_code == 404
        assert client.get(reverse("restores:backup_logo", args=[full_backup.pk])).status_code == 404
        with pytest.raises(services.RestoreError):
            services.restore_new_organization(
                user=user,
                backup=full_backup,
                profile=engine.NewOrganization(name="x", slug="x", owner_email=user.email),
            )
    anonymous = Client().get(reverse("restores:wizard"))
    assert anonymous.status_code == 302 and "/accounts/login/" in anonymous["Location"]


def test_a_slug_in_use_is_refused_in_the_form(tenant, full_backup, admin_client) -> None:  # type: ignore[no-untyped-def]
    admin_client.post(reverse("restores:wizard_backup"), {"backup": full_backup.pk})
    response = profile_post(admin_client, slug="acme")
    assert response.status_code == 400
    assert "already uses this address" in response.content.decode()


# ----------------------------------------------------------------------------------------------
# From a file


def archive_bytes(backup: Any) -> bytes:
    return Path(backup.file.path).read_bytes()


def upload(client: Client, data: bytes, password: str) -> Any:
    return client.post(
        reverse("restores:wizard_upload"),
        {"password": password, "file": SimpleUploadedFile("backup.zip", data, content_type="application/zip")},
    )


def assert_nothing_created(organizations: set[int], files: dict[str, int]) -> None:
    assert not RestoreUpload.objects.exists()
    assert set(Organization.objects.values_list("pk", flat=True)) == organizations
    assert media_listing() == files


def test_an_uploaded_backup_is_verified_and_restored(tenant, full_backup, admin_client) -> None:  # type: ignore[no-untyped-def]
    source = logical_snapshot(tenant.org)
    data = archive_bytes(full_backup)
    response = upload(admin_client, data, unwrap_password(full_backup.password_wrapped))
    assert response.status_code == 302, response.content.decode()[-2000:]
    kept = RestoreUpload.objects.get()
    assert kept.sha256 == hashlib.sha256(data).hexdigest() and kept.size == len(data)
    assert kept.password_wrapped and unwrap_password(full_backup.password_wrapped) not in kept.password_wrapped
    form = admin_client.get(reverse("restores:wizard_profile")).context["form"]
    assert form.initial["name"] == "Acme Legal"
    logo = admin_client.get(reverse("restores:upload_logo", args=[kept.pk]))
    assert logo.status_code == 200 and logo.content == tenant.org.logo.read()
    profile_post(admin_client, slug="from-file")
    restore = run(finish(admin_client))
    assert restore.status == Restore.Status.COMPLETED, restore.failure_reason
    assert logical_snapshot(Organization.objects.get(slug="from-file")) == source
    # The uploaded file is not kept once restored.
    assert not RestoreUpload.objects.exists()
    assert not [n for n in media_listing() if n.startswith("restore-uploads/")]


def test_a_tampered_file_is_refused_and_nothing_is_created(tenant, full_backup, admin_client) -> None:  # type: ignore[no-untyped-def]
    data = bytearray(archive_bytes(full_backup))
    data[len(data) // 3] ^= 0x01
    organizations, files = set(Organization.objects.values_list("pk", flat=True)), media_listing()
    response = upload(admin_client, bytes(data), unwrap_password(full_backup.password_wrapped))
    assert response.status_code == 400
    text = response.content.decode()
    assert "This file cannot be restored:" in text and ("damaged" in text or "altered" in text)
    assert_nothing_created(organizations, files)


def test_a_wrong_password_is_refused_and_nothing_is_created(tenant, full_backup, admin_client) -> None:  # type: ignore[no-untyped-def]
    organizations, files = set(Organization.objects.values_list("pk", flat=True)), media_listing()
    response = upload(admin_client, archive_bytes(full_backup), "not-the-password-at-all")
    assert response.status_code == 400
    assert "password" in response.content.decode().split("This file cannot be restored:")[1][:300]
    assert_nothing_created(organizations, files)
    assert AuditLog.objects.filter(action="restore.upload_refused").exists()


def test_a_zip_with_parent_paths_is_refused_and_nothing_is_created(tenant, admin_client, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(writer_module, "check_name", lambda _name: None)  # a hostile writer
    sink = io.BytesIO()
    writer = ArchiveWriter(sink, "hostile-password-123")
    writer.add_bytes("../../etc/evil", b"payload")
    writer.close(manifest={"organization": {"name": "Evil"}})
    monkeypatch.undo()
    organizations, files = set(Organization.objects.values_list("pk", flat=True)), media_listing()
    response = upload(admin_client, sink.getvalue(), "hostile-password-123")
    assert response.status_code == 400
    text = response.content.decode()
    assert "This file cannot be restored:" in text and "../../etc/evil" in text
    assert_nothing_created(organizations, files)
    assert not Path("/etc/evil").exists()


def test_an_oversized_file_is_refused_while_it_streams(tenant, full_backup, admin_client, settings) -> None:  # type: ignore[no-untyped-def]
    settings.BACKUP_UPLOAD_MAX_SIZE = 4096
    data = archive_bytes(full_backup)
    assert len(data) > 4096
    organizations, files = set(Organization.objects.values_list("pk", flat=True)), media_listing()
    response = upload(admin_client, data, unwrap_password(full_backup.password_wrapped))
    assert response.status_code == 400
    assert "larger than the limit of 4,096 bytes" in response.content.decode()
    assert_nothing_created(organizations, files)


def test_abandoned_uploads_are_cleaned_up(tenant, full_backup, admin_client) -> None:  # type: ignore[no-untyped-def]
    import datetime as dt

    from django.utils import timezone

    upload(admin_client, archive_bytes(full_backup), unwrap_password(full_backup.password_wrapped))
    RestoreUpload.objects.update(created_at=timezone.now() - dt.timedelta(days=2))
    assert services.uploads_cleanup() == 1
    assert not [n for n in media_listing() if n.startswith("restore-uploads/")]


def test_every_step_is_pre_filled_from_the_backup_and_edits_are_kept(tenant, full_backup, admin_client) -> None:  # type: ignore[no-untyped-def]
    captured = tenant.org.creation_wizard_data
    preview = admin_client.get(reverse("restores:wizard_backup"), {"preview": full_backup.pk}).content.decode()
    assert "Legal name" in preview and captured["company"]["legal_name"] in preview
    assert "{&#x27;" not in preview and "{'" not in preview  # labelled fields, not dictionaries
    admin_client.post(reverse("restores:wizard_backup"), {"backup": full_backup.pk})
    company = admin_client.get(reverse("restores:wizard_profile")).context["form"]
    assert company.initial["legal_name"] == captured["company"]["legal_name"]
    assert company.fields["master_data_version"].disabled
    profile_post(admin_client, slug="edited")
    address = admin_client.get(reverse("restores:wizard_address")).context["form"].initial
    assert address == captured["address"]
    data = dict(address, city="Bristol")
    assert admin_client.post(reverse("restores:wizard_address"), data).status_code == 302
    contact = admin_client.get(reverse("restores:wizard_contact")).context["form"].initial
    assert contact == captured["contact"]
    accept_step(admin_client, "restores:wizard_contact")
    # Structure is read-only: the backup's OUs come with its data; a posted change is ignored.
    structure = admin_client.get(reverse("restores:wizard_structure")).content.decode()
    assert "cannot be changed in this step" in structure and "Litigation" in structure and "Finance" in structure
    admin_client.post(reverse("restores:wizard_structure"), {"ou-TOTAL_FORMS": "1", "ou-0-name": "Injected"})
    assert "Injected" not in admin_client.get(reverse("restores:wizard_regulations")).content.decode()
    accept_step(admin_client, "restores:wizard_regulations")
    modules = admin_client.get(reverse("restores:wizard_modules")).context["form"].initial
    assert modules == {"modules": captured["modules"]}
    admin_client.post(reverse("restores:wizard_modules"), {"modules": ["documents"]})
    review = admin_client.get(reverse("restores:wizard_confirm")).content.decode()
    assert "Bristol" in review and "Litigation (LIT)" in review and "The logo from the backup" in review
    restore = run(finish_from_review(admin_client))
    assert restore.status == Restore.Status.COMPLETED, restore.failure_reason
    new = Organization.objects.get(slug="edited")
    assert new.creation_wizard_data["address"]["city"] == "Bristol"
    assert new.creation_wizard_data["modules"] == ["documents"]
    assert new.creation_wizard_data["company"] == captured["company"]
    assert new.creation_wizard_data["completed_at"] == captured["completed_at"]  # the original creation
    assert sorted(new.ous.values_list("code", flat=True)) == ["FIN", "LIT"]


def finish_from_review(client: Client) -> Restore:
    response = client.post(reverse("restores:wizard_confirm"))
    assert response.status_code == 302
    return Restore.objects.get(kind=Restore.Kind.NEW_ORGANIZATION)
