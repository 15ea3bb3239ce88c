"""The backup engine on S3-compatible storage (django-storages' S3Storage over HTTP to moto's
server): documents read from the bucket, the archive streamed into it as a multipart upload,
downloaded and opened, then deleted by expiry."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import io
import json
import os
import re
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from botocore.exceptions import ClientError
from django.core.files.storage import default_storage
from django.utils import timezone
from django.utils.functional import empty
from storages.backends.s3 import S3Storage

from accounts.models import AuditLog
from backups import services
from backups.archive import ArchiveReader
from backups.models import Backup
from backups.services.common import _delete_quietly
from organizations.models import DocumentVersion
from tests.backups.conftest import add_document
from tests.support import s3
from tests.support.net import StorageLink

pytestmark = pytest.mark.django_db

MIB = 1024 * 1024


@dataclass
class Bucket:
    name: str
    endpoint: str
    client: Any

    def object_keys(self, prefix: str = "") -> set[str]:
        listing = self.client.list_objects_v2(Bucket=self.name, Prefix=prefix)
        return {o["Key"] for o in listing.get("Contents", [])}


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    with s3.moto_server() as endpoint:
        yield endpoint


@pytest.fixture
def s3_default_storage(settings, s3_endpoint: str) -> Bucket:  # type: ignore[no-untyped-def]
    """A fresh bucket as the default storage. Request it before ``tenant`` so that the tenant's
    files are written to the bucket."""
    bucket = Bucket(s3.create_bucket(s3_endpoint), s3_endpoint, s3.client(s3_endpoint))
    settings.STORAGES = {**settings.STORAGES, "default": s3.storage_settings(s3_endpoint, bucket.name)}
    default_storage._wrapped = empty  # setting_changed resets it too; be sure, it is cached
    assert default_storage.bucket_name == bucket.name
    assert type(default_storage._wrapped) is S3Storage
    return bucket


def test_backup_on_s3_compatible_storage(
    s3_default_storage: Bucket, tenant, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    bucket = s3_default_storage
    big = os.urandom(6 * MIB + 4321)  # incompressible: the archive outgrows S3File's 5 MiB buffer
    add_document(tenant.org, tenant.ou_a, "BIG-1", content=big)
    big_version = DocumentVersion.objects.get(document__reference="BIG-1")
    # The tenant's files really are objects in the bucket.
    assert bucket.client.head_object(Bucket=bucket.name, Key=big_version.file.name)["ContentLength"] == len(big)
    assert tenant.org.logo.name in bucket.object_keys()

    backup, password = services.backup_request(
        organization=tenant.org, requested_by=tenant.owner, include_inactive=True, dispatch=False
    )
    assert services.process_queue() == 1
    backup.refresh_from_db()
    assert backup.status == Backup.Status.COMPLETED, backup.failure_reason
    key = backup.file.name
    assert re.fullmatch(r"backups/[0-9a-f]{32}\.zip", key)
    assert bucket.object_keys("backups/") == {key}

    head = bucket.client.head_object(Bucket=bucket.name, Key=key)
    assert head["ContentLength"] == backup.size > 6 * MIB
    # A multipart upload's ETag is "<md5 of the part md5s>-<number of parts>".
    parts = re.fullmatch(r'"?[0-9a-f]{32}-(\d+)"?', head["ETag"])
    assert parts and int(parts.group(1)) >= 2, head["ETag"]

    body = bucket.client.get_object(Bucket=bucket.name, Key=key)["Body"].read()
    assert len(body) == backup.size and hashlib.sha256(body).hexdigest() == backup.sha256
    reader = ArchiveReader(io.BytesIO(body), password)
    manifest = reader.verify()
    assert manifest["organization"]["name"] == tenant.org.name
    versions = [json.loads(line) for line in reader.read_bytes("data/documents/document_version.jsonl").splitlines()]
    assert len(versions) == 9
    big_row = next(v for v in versions if v["id"] == big_version.pk)
    assert reader.read_bytes(big_row["file"]["member"]) == big
    for row in versions:
        with default_storage.open(DocumentVersion.objects.get(pk=row["id"]).file.name, "rb") as original:
            assert reader.read_bytes(row["file"]["member"]) == original.read()

    # Production downloads are presigned URLs, valid for 5 minutes.
    url = default_storage.url(key)
    assert "X-Amz-Expires=300" in url and "X-Amz-Signature=" in url
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=30) as response:  # http, to the loopback test server
        assert response.read() == body

    # Expiry deletes the object; the record stays.
    later = timezone.now() + dt.timedelta(days=14, minutes=1)
    with django_capture_on_commit_callbacks(execute=True):
        assert services.backups_expire_due(now=later) == 1
    backup.refresh_from_db()
    assert backup.status == Backup.Status.EXPIRED and not backup.file
    with pytest.raises(ClientError) as missing:
        bucket.client.head_object(Bucket=bucket.name, Key=key)
    assert missing.value.response["Error"]["Code"] in ("404", "NoSuchKey")
    assert bucket.object_keys("backups/") == set()
    assert big_version.file.name in bucket.object_keys(), "expiry deletes the archive, not the tenant's files"


def test_removing_a_partial_archive_aborts_its_multipart_upload(s3_default_storage: Bucket) -> None:
    """A worker killed mid-upload leaves S3 parts behind; the clean-up must abort them."""
    bucket = s3_default_storage
    name = "backups/partial-test.zip"
    sink = default_storage.open(name, "wb")
    sink.write(os.urandom(6 * MIB))  # more than S3File's buffer: one part is uploaded
    sink.flush()
    uploads = bucket.client.list_multipart_uploads(Bucket=bucket.name).get("Uploads", [])
    assert [u["Key"] for u in uploads] == [name]
    # The writer never finishes (as if its process died); the sweep removes what is left.
    _delete_quietly(default_storage, name)
    assert bucket.client.list_multipart_uploads(Bucket=bucket.name).get("Uploads", []) == []
    assert name not in bucket.object_keys()


def test_a_stored_archive_is_read_by_ranges_without_a_whole_copy(s3_default_storage: Bucket) -> None:
    """Verifying or restoring reads the archive in place: S3File would download the whole object
    into memory first (a 10 GiB backup in the worker's memory)."""
    import random

    from backups.storage_io import READ_AHEAD, RangedObjectReader, open_for_reading

    bucket = s3_default_storage
    data = os.urandom(40 * MIB + 17)
    bucket.client.put_object(Bucket=bucket.name, Key="backups/ranged.bin", Body=data)

    fetched: list[int] = []
    with open_for_reading(default_storage, "backups/ranged.bin") as fh:
        assert isinstance(fh, RangedObjectReader) and fh.seekable() and fh.size == len(data)
        get = fh._obj.get

        def ranged_get(**kwargs: Any) -> Any:
            start, end = re.fullmatch(r"bytes=(\d+)-(\d+)", kwargs["Range"]).groups()  # type: ignore[union-attr]
            fetched.append(int(end) - int(start) + 1)
            return get(**kwargs)

        fh._obj.get = ranged_get
        rng = random.Random(7)
        for _ in range(40):
            offset = rng.randrange(len(data))
            size = rng.choice([0, 1, 4096, 65536, 3 * MIB])
            fh.seek(offset)
            assert fh.read(size) == data[offset : offset + size]
        fh.seek(-5, io.SEEK_END)
        assert fh.read() == data[-5:]
        fh.seek(0)
        digest = hashlib.sha256()
        while chunk := fh.read(MIB):
            digest.update(chunk)
        assert digest.hexdigest() == hashlib.sha256(data).hexdigest()
    assert fetched and max(fetched) <= READ_AHEAD, "every read is a bounded ranged GET, never the whole object"
    assert sum(fetched[-6:]) <= 6 * READ_AHEAD

    with pytest.raises(FileNotFoundError):
        open_for_reading(default_storage, "backups/not-there.zip")


def test_expiry_while_the_store_is_cut_off_keeps_the_name_and_the_next_sweep_removes_the_file(
    settings, s3_endpoint: str, cast, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    """The store goes down while a backup expires: the expiry stands (no download), the record
    keeps the file's name, and the next expiry sweep removes the object once the store is back.
    Before, the record forgot the name at once and the object stayed in the bucket for good."""
    link = StorageLink(int(s3_endpoint.rsplit(":", 1)[1]))
    bucket = Bucket(s3.create_bucket(s3_endpoint), s3_endpoint, s3.client(s3_endpoint))
    settings.STORAGES = {**settings.STORAGES, "default": s3.storage_settings(link.url, bucket.name)}
    default_storage._wrapped = empty
    try:
        backup, _ = services.backup_request(organization=cast.org, requested_by=cast.owner, dispatch=False)
        assert services.process_queue() == 1
        backup.refresh_from_db()
        key = backup.file.name
        assert backup.status == Backup.Status.COMPLETED and bucket.object_keys("backups/") == {key}

        link.cut()
        later = timezone.now() + dt.timedelta(days=14, minutes=1)
        with django_capture_on_commit_callbacks(execute=True):
            assert services.backups_expire_due(now=later) == 1
        backup.refresh_from_db()
        assert backup.status == Backup.Status.EXPIRED and not backup.is_downloadable
        assert backup.file.name == key, "the name of the file still to remove is kept"
        assert bucket.object_keys("backups/") == {key}
        # Still down at the next sweep: nothing lost, nothing forgotten.
        assert services.backups_expire_due(now=later) == 0
        backup.refresh_from_db()
        assert backup.file.name == key

        link.restore()
        assert services.backups_expire_due(now=later) == 0  # nothing new expires; the file goes
        backup.refresh_from_db()
        assert backup.status == Backup.Status.EXPIRED and not backup.file
        assert bucket.object_keys("backups/") == set()
    finally:
        with contextlib.suppress(OSError):
            link.cut()


def test_storage_audit_on_s3_reports_and_fixes_orphans_but_not_a_running_backups_upload(
    s3_default_storage: Bucket, cast, settings
) -> None:  # type: ignore[no-untyped-def]
    from django.core import mail

    from backups.audit import storage_audit
    from backups.models import StorageFinding

    bucket = s3_default_storage
    settings.ADMINS = [("Operators", "ops@platform.test")]
    intact, _ = services.backup_request(organization=cast.org, requested_by=cast.owner, dispatch=False)
    assert services.process_queue() == 1
    intact.refresh_from_db()
    gone = Backup.objects.create(
        organization=cast.other_org, status=Backup.Status.COMPLETED, file="backups/gone.zip", size=10
    )
    bucket.client.put_object(Bucket=bucket.name, Key="backups/stray.zip", Body=b"belongs to nobody")
    ghost = bucket.client.create_multipart_upload(Bucket=bucket.name, Key="backups/ghost.zip")["UploadId"]
    # A running backup's multipart upload is normal.
    running = Backup.objects.create(organization=cast.org, status=Backup.Status.IN_PROGRESS, file="backups/running.zip")
    live = bucket.client.create_multipart_upload(Bucket=bucket.name, Key=running.file.name)["UploadId"]
    mail.outbox.clear()

    result = storage_audit()
    assert {(f.kind, f.name) for f in result.found} == {
        (StorageFinding.Kind.MISSING, gone.file.name),
        (StorageFinding.Kind.ORPHAN, "backups/stray.zip"),
        (StorageFinding.Kind.UNFINISHED_UPLOAD, "backups/ghost.zip"),
    }
    assert result.backups_checked == 2 and result.objects_checked == 2  # the intact archive, the stray
    assert len(mail.outbox) == 1 and "backups/ghost.zip" in mail.outbox[0].body
    assert "backups/stray.zip" in bucket.object_keys("backups/")  # nothing deleted

    result = storage_audit(fix=True)
    assert {(f.kind, f.name) for f in result.fixed} == {
        (StorageFinding.Kind.ORPHAN, "backups/stray.zip"),
        (StorageFinding.Kind.UNFINISHED_UPLOAD, "backups/ghost.zip"),
    }
    assert bucket.object_keys("backups/") == {intact.file.name}
    uploads = {u["UploadId"] for u in bucket.client.list_multipart_uploads(Bucket=bucket.name).get("Uploads", [])}
    assert uploads == {live} and ghost not in uploads
    assert [(f.kind, f.name) for f in result.found] == [(StorageFinding.Kind.MISSING, gone.file.name)]


def test_verify_now_while_the_store_is_cut_off_says_it_could_not_check_and_records_no_failure(
    settings, s3_endpoint: str, cast
) -> None:  # type: ignore[no-untyped-def]
    """The archive is not known to be bad when the store cannot be reached: the backup's page
    says it could not be checked, the last result stays (not a failed check), and the next
    check that reaches the store gives the result. Before, nothing was recorded at all."""
    from django.urls import reverse

    from tests.factories import client_for

    settings.CELERY_TASK_ALWAYS_EAGER = True
    link = StorageLink(int(s3_endpoint.rsplit(":", 1)[1]))
    bucket = s3.create_bucket(s3_endpoint)
    settings.STORAGES = {**settings.STORAGES, "default": s3.storage_settings(link.url, bucket)}
    default_storage._wrapped = empty
    try:
        backup, _ = services.backup_request(organization=cast.org, requested_by=cast.owner, dispatch=False)
        assert services.process_queue() == 1
        owner = client_for(cast.owner)
        verify = reverse("backups:verify", args=[backup.pk])
        detail = reverse("backups:detail", args=[backup.pk])
        assert "verified: " in owner.post(verify, {"next": detail}, follow=True).content.decode()
        backup.refresh_from_db()
        passed_at = backup.last_verified_at

        link.cut()
        page = " ".join(owner.post(verify, {"next": detail}, follow=True).content.decode().split())
        assert "could not be checked: Storage error: the file storage could not be reached" in page  # the message
        field = page.split('data-testid="verification"')[1].split("</dd>")[0]
        assert "Not checked on" in field and "The archive is not known to be damaged." in field
        assert "Before that:" in field and "Passed" in field and "Failed" not in field
        backup.refresh_from_db()
        assert (backup.verification_ok, backup.last_verified_at) == (True, passed_at)
        assert AuditLog.objects.filter(action="backup.verify", details__ok=None).count() == 1
        cell = _verified_cell(owner.get(reverse("backups:list")).content.decode(), backup)
        assert "Not checked " in cell and "bi-patch-check-fill" not in cell  # the list says so too
        assert "Storage error: the file storage could not be reached" in cell  # its reason, on hover

        link.restore()
        page = " ".join(owner.post(verify, {"next": detail}, follow=True).content.decode().split())
        field = page.split('data-testid="verification"')[1].split("</dd>")[0]
        assert "verified: " in page and "Not checked" not in field and "Passed" in field
        cell = _verified_cell(owner.get(reverse("backups:list")).content.decode(), backup)
        assert "Not checked" not in cell and "bi-patch-check-fill" in cell
        assert "Could not be checked: Storage error" in page.split('data-testid="timeline"')[1]  # the history stays
    finally:
        with contextlib.suppress(OSError):
            link.cut()


def _verified_cell(page: str, backup: Backup) -> str:
    """The list's Last verified cell of ``backup``."""
    row = page.split(f'id="backup-{backup.pk}"')[1].split("</tr>")[0]
    return row.split('data-label="Last verified">')[1].split("</td>")[0]
