"""Browse pages: content per model, records by title with search and pages, one record with its
relations, a version's file out of the archive; owner, allowed user, other org (404), anonymous."""

from __future__ import annotations

import hashlib

import pytest
from django.urls import reverse

from backups.browse import files
from backups.models import Backup
from organizations import models as om
from tests.backups.conftest import add_document, storage, tenant  # noqa: F401
from tests.restores.conftest import make_backup

pytestmark = pytest.mark.django_db


@pytest.fixture
def backup(tenant) -> Backup:  # type: ignore[no-untyped-def]  # noqa: F811
    return make_backup(tenant.org, tenant.owner)


def _urls(backup: Backup) -> list[str]:
    client = om.Client.objects.filter(organization=backup.organization).first()
    version = om.DocumentVersion.objects.filter(document__organization=backup.organization).first()
    return [
        reverse("backups:browse", args=[backup.pk]),
        reverse("backups:browse_model", args=[backup.pk, "client"]),
        reverse("backups:browse_record", args=[backup.pk, "client", client.pk]),
        reverse("backups:browse_file", args=[backup.pk, "document_version", version.pk]),
    ]


def test_owner_sees_content_records_and_relations(client, tenant, backup) -> None:  # noqa: F811
    client.force_login(tenant.owner)
    page = client.get(reverse("backups:browse", args=[backup.pk]))
    assert page.status_code == 200
    assert b"Clients and matters" in page.content
    detail = client.get(backup.get_absolute_url())
    assert reverse("backups:browse", args=[backup.pk]).encode() in detail.content

    listing = client.get(reverse("backups:browse_model", args=[backup.pk, "matter"]), {"q": "M-1"})
    assert listing.status_code == 200
    assert b"M-1" in listing.content and b"M-0" not in listing.content
    assert b"1 record(s) match" in listing.content

    matter = om.Matter.objects.get(organization=tenant.org, reference="M-0")
    record = client.get(reverse("backups:browse_record", args=[backup.pk, "client", matter.client_id]))
    assert record.status_code == 200
    assert b"M-0" in record.content  # the client's matters
    assert b"INV-0" in record.content  # and invoices

    doc = om.ControlledDocument.objects.get(organization=tenant.org, reference="A0-1")
    record = client.get(reverse("backups:browse_record", args=[backup.pk, "document", doc.pk]))
    assert b"A0-1 v1" in record.content and b"A0-1 v2" in record.content


def test_version_file_downloads_decrypted_with_its_name(client, tenant, backup) -> None:  # noqa: F811
    version = om.DocumentVersion.objects.get(document__reference="A0-1", number=2)
    version.file.open("rb")
    expected = version.file.read()
    version.file.close()
    version.file.delete(save=False)  # served from the backup, not from the live storage
    client.force_login(tenant.owner)
    response = client.get(reverse("backups:browse_file", args=[backup.pk, "document_version", version.pk]))
    assert response.status_code == 200
    body = b"".join(response.streaming_content) if response.streaming else response.content
    assert hashlib.sha256(body).digest() == hashlib.sha256(expected).digest()
    assert response["Content-Disposition"] == 'attachment; filename="A0-1-v2.txt"'


def test_big_files_stream_and_a_damaged_one_is_cut_short(client, tenant, monkeypatch) -> None:  # noqa: F811
    add_document(tenant.org, tenant.ou_a, "BIG", versions=1, content=b"x" * 300_000)
    backup = make_backup(tenant.org, tenant.owner)
    version = om.DocumentVersion.objects.get(document__reference="BIG")
    monkeypatch.setattr(files, "VERIFY_FIRST_LIMIT", 1000)
    monkeypatch.setattr(files, "CHUNK", 64 * 1024)
    client.force_login(tenant.owner)
    url = reverse("backups:browse_file", args=[backup.pk, "document_version", version.pk])
    response = client.get(url)
    assert response.streaming
    assert b"".join(response.streaming_content) == b"x" * 300_000
    assert response["Content-Length"] == "300000"

    # The manifest's hash says otherwise: the last chunk never goes out, the stream fails.
    from backups.archive import reader as archive_reader

    original = archive_reader.ArchiveReader._load

    def tampered(self):  # type: ignore[no-untyped-def]
        original(self)
        directory = self._directory
        for index in directory.listing:
            if directory.name(index).startswith("files/"):
                directory.expected[32 * index : 32 * index + 32] = bytes(32)

    monkeypatch.setattr(archive_reader.ArchiveReader, "_load", tampered)
    response = client.get(url)
    received = b""
    with pytest.raises(Exception, match="SHA-256"):
        for chunk in response.streaming_content:
            received += chunk
    assert len(received) < 300_000

    monkeypatch.setattr(files, "VERIFY_FIRST_LIMIT", 10_000_000)
    response = client.get(url)
    assert response.status_code == 502
    assert b"damaged" in response.content


def test_selection_by_checkbox_and_every_search_result(client, tenant, backup) -> None:  # noqa: F811
    client.force_login(tenant.owner)
    url = reverse("backups:browse_select", args=[backup.pk])
    matter = om.Matter.objects.get(organization=tenant.org, reference="M-0")
    client.post(url, {"records": [f"matter:{matter.pk}"]})
    client.post(url, {"all_results": "1", "model": "document", "q": "A1-"})
    chosen = client.session[f"selective-{backup.pk}"]
    assert chosen["matter"] == [matter.pk]
    refs = set(om.ControlledDocument.objects.filter(pk__in=chosen["document"]).values_list("reference", flat=True))
    assert refs == {"A1-1", "A1-2", "A1-3"}
    page = client.get(reverse("backups:browse", args=[backup.pk]))
    assert b'data-testid="picked-count">4<' in page.content
    assert client.post(url, {"records": ["profile:1"]}).status_code == 302  # refused with a message


def test_access(client, tenant, backup) -> None:  # noqa: F811
    urls = _urls(backup)
    for url in urls:
        assert client.get(url).status_code == 302  # anonymous: to the login page
    client.force_login(tenant.other_owner)
    for url in urls:
        assert client.get(url).status_code == 404
    assert client.post(reverse("backups:browse_select", args=[backup.pk]), {}).status_code == 404
    client.force_login(tenant.editor)  # may back up both OUs: sees this backup
    for url in urls:
        assert client.get(url).status_code == 200
    client.force_login(tenant.member)
    for url in urls:
        assert client.get(url).status_code == 404


def test_a_backup_with_the_users_own_password_asks_for_it(client, tenant, backup) -> None:  # noqa: F811
    from backups.keys import unwrap_password

    password = unwrap_password(backup.password_wrapped)
    Backup.objects.filter(pk=backup.pk).update(password_wrapped="")
    client.force_login(tenant.owner)
    url = reverse("backups:browse_model", args=[backup.pk, "client"])
    page = client.get(url)
    assert b'name="password"' in page.content
    wrong = client.post(reverse("backups:browse", args=[backup.pk]), {"password": "nope", "next": url})
    assert b"not correct" in wrong.content
    right = client.post(reverse("backups:browse", args=[backup.pk]), {"password": password, "next": url})
    assert right.status_code == 302 and right["Location"] == url
    assert b"browse-record" in client.get(url).content
    assert password not in str(dict(client.session))
