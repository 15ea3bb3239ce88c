"""One backup: details, download (streamed, Range, presigned S3, recorded, refused when expired),
download history, cancel, early expiry and verification."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import os
from urllib.parse import parse_qs, urlparse

import pytest
from django.core.files.storage import default_storage
from django.http import FileResponse, StreamingHttpResponse
from django.urls import reverse
from django.utils import timezone
from storages.backends.s3 import S3Storage

from accounts.models import AuditLog
from backups import downloads, services
from backups.archive import ArchiveReader
from backups.keys import wrap_password
from backups.models import Backup, BackupDownload, BackupEvent
from tests.backups.test_views_access import login, make_backup

pytestmark = pytest.mark.django_db

AGENT = "Mozilla/5.0 (X11; Linux x86_64) TestBrowser/1.0"


def _body(response) -> bytes:  # type: ignore[no-untyped-def]
    return b"".join(response.streaming_content)


def _download(client, backup: Backup, **headers):  # type: ignore[no-untyped-def]
    return client.get(reverse("backups:download", args=[backup.pk]), HTTP_USER_AGENT=AGENT, **headers)


# -- details -----------------------------------------------------------------------------------------------


def test_details_show_capture_scope_hash_verification_and_timeline(tenant) -> None:  # type: ignore[no-untyped-def]
    backup, _ = services.backup_request(
        organization=tenant.org,
        requested_by=tenant.owner,
        label="Before Trust Migration",
        ous=[tenant.ou_a],
        datasets=["billing"],
        exclude_superseded=True,
        dispatch=False,
    )
    services.process_queue()
    backup.refresh_from_db()
    tenant.org.name = "Acme Legal (renamed)"
    tenant.org.save()
    page = login(tenant.owner).get(reverse("backups:detail", args=[backup.pk])).content.decode()
    assert "Acme Legal" in page and "Organization at backup time" in page
    assert tenant.org.master_data_version.code in page
    assert 'data-testid="scope-ous">Litigation<' in page
    assert "active; superseded excluded" in page
    for label in ("Financial and billing data", "Clients and matters", "Organization structure"):
        assert label in page
    assert "invoice: 1" in page  # rows per model, OU A only
    assert backup.sha256 in page
    assert "Not verified yet" in page
    for step in ("Requested", "Started on", "documents,"):
        assert step in page
    assert str(backup.size) in page


def test_details_of_a_failed_backup_show_the_reason(cast) -> None:  # type: ignore[no-untyped-def]
    backup = make_backup(cast.org, Backup.Status.FAILED, failure_reason="Storage error: No space left on device")
    page = login(cast.owner).get(reverse("backups:detail", args=[backup.pk])).content.decode()
    assert 'data-testid="failure-reason"' in page and "No space left on device" in page


# -- download ----------------------------------------------------------------------------------------------


def test_download_streams_the_file_under_a_name_that_says_what_it_holds(cast) -> None:  # type: ignore[no-untyped-def]
    data = os.urandom(300_000)
    backup = make_backup(cast.org, content=data, label="Pre-Year-End Close / Q4 *final*")
    response = _download(login(cast.owner), backup, REMOTE_ADDR="203.0.113.7")
    assert response.status_code == 200
    assert isinstance(response, FileResponse) and response.streaming  # never one big string
    day = timezone.localtime(backup.completed_at).strftime("%Y-%m-%d")
    assert response["Content-Disposition"] == f'attachment; filename="{day}-acme-pre-year-end-close-q4-final.zip"'
    assert response["Content-Type"] == "application/zip"
    assert response["Content-Length"] == str(len(data))
    assert response["Accept-Ranges"] == "bytes"
    assert response["ETag"] == f'"{backup.sha256}"'
    assert _body(response) == data
    record = BackupDownload.objects.get()
    assert (record.user, record.ip_address, record.user_agent) == (cast.owner, "203.0.113.7", AGENT)
    assert record.user_email == cast.owner.email
    assert AuditLog.objects.filter(action="backup.download", object_id=str(backup.pk)).exists()


def test_filename_without_a_label(cast) -> None:  # type: ignore[no-untyped-def]
    backup = make_backup(cast.org, kind=Backup.Kind.SCHEDULED)
    assert downloads.download_filename(backup).endswith("-acme-scheduled-backup.zip")


@pytest.mark.parametrize(
    "header,first,last",
    [("bytes=0-99", 0, 99), ("bytes=1000-", 1000, 4095), ("bytes=-10", 4086, 4095), ("bytes=4000-99999", 4000, 4095)],
)
def test_range_requests_are_answered_with_206(cast, header: str, first: int, last: int) -> None:  # type: ignore[no-untyped-def]
    data = os.urandom(4096)
    backup = make_backup(cast.org, content=data)
    response = _download(login(cast.owner), backup, HTTP_RANGE=header)
    assert response.status_code == 206
    assert isinstance(response, StreamingHttpResponse)
    assert response["Content-Range"] == f"bytes {first}-{last}/4096"
    assert response["Content-Length"] == str(last - first + 1)
    assert response["Content-Disposition"].startswith("attachment; filename=")
    assert _body(response) == data[first : last + 1]
    # Only the range from byte 0 counts as a download (a resuming client asks for many).
    assert BackupDownload.objects.count() == (1 if first == 0 else 0)


@pytest.mark.parametrize("header", ["bytes=4096-", "bytes=5000-6000", "bytes=-0"])
def test_unsatisfiable_ranges_get_416(cast, header: str) -> None:  # type: ignore[no-untyped-def]
    backup = make_backup(cast.org, content=os.urandom(4096))
    response = _download(login(cast.owner), backup, HTTP_RANGE=header)
    assert response.status_code == 416
    assert response["Content-Range"] == "bytes */4096"
    assert BackupDownload.objects.count() == 0


@pytest.mark.parametrize("header", ["bytes=0-1,5-6", "items=0-5", "bytes=9-3", "bytes=abc"])
def test_ranges_we_do_not_serve_get_the_whole_file(cast, header: str) -> None:  # type: ignore[no-untyped-def]
    data = os.urandom(2048)
    backup = make_backup(cast.org, content=data)
    response = _download(login(cast.owner), backup, HTTP_RANGE=header)
    assert response.status_code == 200 and _body(response) == data


def test_if_range_with_another_version_gets_the_whole_file(cast) -> None:  # type: ignore[no-untyped-def]
    data = os.urandom(2048)
    backup = make_backup(cast.org, content=data)
    client = login(cast.owner)
    stale = _download(client, backup, HTTP_RANGE="bytes=100-", HTTP_IF_RANGE='"0000"')
    assert stale.status_code == 200 and _body(stale) == data
    fresh = _download(client, backup, HTTP_RANGE="bytes=100-", HTTP_IF_RANGE=f'"{backup.sha256}"')
    assert fresh.status_code == 206 and _body(fresh) == data[100:]


def test_head_is_not_recorded(cast) -> None:  # type: ignore[no-untyped-def]
    backup = make_backup(cast.org)
    response = login(cast.owner).head(reverse("backups:download", args=[backup.pk]))
    assert response.status_code == 200 and response["Content-Length"] == "4096"
    assert BackupDownload.objects.count() == 0


@pytest.mark.parametrize("status,code", [("expired", 410), ("pending", 409), ("failed", 409), ("cancelled", 409)])
def test_backups_that_are_not_completed_cannot_be_downloaded_and_say_so(cast, status: str, code: int) -> None:  # type: ignore[no-untyped-def]
    backup = make_backup(cast.org, status)
    response = _download(login(cast.owner), backup)
    assert response.status_code == code
    page = response.content.decode()
    assert "cannot be downloaded" in page
    assert ("has expired" in page) == (status == "expired")
    assert BackupDownload.objects.count() == 0


def test_a_completed_backup_past_its_download_expiry_is_not_served(cast) -> None:  # type: ignore[no-untyped-def]
    backup = make_backup(cast.org)
    Backup.objects.filter(pk=backup.pk).update(download_expires_at=timezone.now() - dt.timedelta(minutes=1))
    response = _download(login(cast.owner), backup)
    assert response.status_code == 410 and "has expired" in response.content.decode()


def test_a_missing_file_is_explained(cast) -> None:  # type: ignore[no-untyped-def]
    backup = make_backup(cast.org)
    default_storage.delete(backup.file.name)
    response = _download(login(cast.owner), backup)
    assert response.status_code == 410 and "no longer in storage" in response.content.decode()
    assert BackupDownload.objects.count() == 0


def test_completed_backups_stay_downloadable_after_the_subscription_ends(cast) -> None:  # type: ignore[no-untyped-def]
    backup = make_backup(cast.org)
    cast.org.subscription.delete()
    assert _download(login(cast.owner), backup).status_code == 200


class _FakeS3(S3Storage):
    """django-storages' S3 backend; presigning is local (no network), ``exists`` is stubbed."""

    def exists(self, name: str) -> bool:
        return True


def test_s3_storage_answers_with_a_presigned_url_valid_five_minutes(cast, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    backup = make_backup(cast.org, label="Year end")
    storage = _FakeS3(
        bucket_name="backups",
        access_key="AKIDEXAMPLE",
        secret_key="secret",
        endpoint_url="http://s3.example.test",
        region_name="us-east-1",
        signature_version="s3v4",
        addressing_style="path",
        querystring_auth=True,
    )
    # The view serves from the file field's storage: make it S3.
    monkeypatch.setattr(Backup._meta.get_field("file"), "storage", storage)
    response = _download(login(cast.owner), backup, REMOTE_ADDR="198.51.100.4")
    assert response.status_code == 302
    url = urlparse(response["Location"])
    query = parse_qs(url.query)
    assert url.netloc == "s3.example.test" and url.path == f"/backups/{backup.file.name}"
    assert query["X-Amz-Expires"] == ["300"]
    day = timezone.localtime(backup.completed_at).strftime("%Y-%m-%d")
    assert query["response-content-disposition"] == [f'attachment; filename="{day}-acme-year-end.zip"']
    assert query["response-content-type"] == ["application/zip"]
    assert BackupDownload.objects.get().ip_address == "198.51.100.4"


def test_a_download_while_the_storage_cannot_be_reached_says_so_instead_of_a_server_error(cast, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Found by the chaos soak: with the store cut off, Download answered 500."""
    from botocore.config import Config

    from tests.support.net import free_port

    backup = make_backup(cast.org, label="Year end")
    storage = S3Storage(  # a real S3 client, at an address where nothing answers
        bucket_name="backups",
        access_key="AKIDEXAMPLE",
        secret_key="secret",
        endpoint_url=f"http://127.0.0.1:{free_port()}",
        region_name="us-east-1",
        client_config=Config(retries={"max_attempts": 1}, connect_timeout=2),
    )
    monkeypatch.setattr(Backup._meta.get_field("file"), "storage", storage)
    response = _download(login(cast.owner), backup)
    assert response.status_code == 503 and response["Retry-After"] == "60"
    page = response.content.decode()
    assert "The file storage cannot be reached right now" in page and "try again in a few minutes" in page
    assert "127.0.0.1" not in page
    assert BackupDownload.objects.count() == 0


def test_a_real_archive_downloads_and_opens_with_its_password(tenant) -> None:  # type: ignore[no-untyped-def]
    backup, password = services.backup_request(organization=tenant.org, requested_by=tenant.editor, dispatch=False)
    services.process_queue()
    backup.refresh_from_db()
    response = _download(login(tenant.editor), backup)
    data = _body(response)
    assert hashlib.sha256(data).hexdigest() == backup.sha256
    manifest = ArchiveReader(io.BytesIO(data), password).verify()
    assert manifest["organization"]["name"] == "Acme Legal"


# -- history -------------------------------------------------------------------------------------------------


def test_history_before_and_after_a_download(cast) -> None:  # type: ignore[no-untyped-def]
    backup = make_backup(cast.org)
    client = login(cast.editor)
    url = reverse("backups:history", args=[backup.pk])
    dialog = client.get(url, HTTP_HX_REQUEST="true").content.decode()
    assert "Backup not downloaded yet" in dialog and "<html" not in dialog
    _body(_download(client, backup, REMOTE_ADDR="192.0.2.10"))
    dialog = client.get(url, HTTP_HX_REQUEST="true").content.decode()
    assert "Backup not downloaded yet" not in dialog
    assert cast.editor.email in dialog and "192.0.2.10" in dialog and AGENT in dialog
    page = client.get(url).content.decode()  # without htmx: a page
    assert "<html" in page and "192.0.2.10" in page


def test_history_stays_after_expiry(cast) -> None:  # type: ignore[no-untyped-def]
    backup = make_backup(cast.org)
    client = login(cast.owner)
    _body(_download(client, backup))
    services.backup_expire(backup=backup)
    dialog = client.get(reverse("backups:history", args=[backup.pk]), HTTP_HX_REQUEST="true").content.decode()
    assert cast.owner.email in dialog and "Expired" in dialog


# -- cancel --------------------------------------------------------------------------------------------------


def test_cancel_a_pending_backup(cast) -> None:  # type: ignore[no-untyped-def]
    backup = make_backup(cast.org, Backup.Status.PENDING)
    client = login(cast.editor)
    response = client.post(reverse("backups:cancel", args=[backup.pk]), follow=True)
    backup.refresh_from_db()
    assert backup.status == Backup.Status.CANCELLED and backup.cancelled_at
    assert "cancelled. You can request a new one." in response.content.decode()
    assert BackupEvent.objects.filter(backup=backup, status="cancelled", actor=cast.editor).exists()
    assert 'data-testid="request-backup"' in response.content.decode()


def test_only_pending_backups_can_be_cancelled(cast) -> None:  # type: ignore[no-untyped-def]
    backup = make_backup(cast.org, Backup.Status.IN_PROGRESS)
    response = login(cast.owner).post(reverse("backups:cancel", args=[backup.pk]), follow=True)
    assert "Only a pending backup can be cancelled; this one is In Progress." in response.content.decode()
    backup.refresh_from_db()
    assert backup.status == Backup.Status.IN_PROGRESS


def test_post_returns_to_a_safe_next_url_only(cast) -> None:  # type: ignore[no-untyped-def]
    backup = make_backup(cast.org, Backup.Status.PENDING)
    detail = reverse("backups:detail", args=[backup.pk])
    response = login(cast.owner).post(reverse("backups:cancel", args=[backup.pk]), {"next": detail})
    assert response["Location"] == detail
    other = make_backup(cast.org, Backup.Status.PENDING)
    response = login(cast.owner).post(reverse("backups:cancel", args=[other.pk]), {"next": "https://evil.test/"})
    assert response["Location"] == reverse("backups:list")


# -- early expiry ----------------------------------------------------------------------------------------------


def test_owner_expires_a_completed_backup_early_file_goes_record_and_history_stay(
    cast, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    backup = make_backup(cast.org)
    BackupDownload.objects.create(backup=backup, user=cast.editor, user_email=cast.editor.email)
    name = backup.file.name
    with django_capture_on_commit_callbacks(execute=True):
        response = login(cast.owner).post(reverse("backups:expire", args=[backup.pk]), follow=True)
    assert "its file was removed, its history stays" in response.content.decode()
    backup.refresh_from_db()
    assert backup.status == Backup.Status.EXPIRED and not backup.file
    assert not default_storage.exists(name)
    assert backup.downloads.count() == 1
    assert BackupEvent.objects.filter(backup=backup, message="Expired early", actor=cast.owner).exists()


def test_editor_cannot_expire_early(cast) -> None:  # type: ignore[no-untyped-def]
    backup = make_backup(cast.org)
    page = login(cast.editor).get(reverse("backups:list")).content.decode()
    assert reverse("backups:expire", args=[backup.pk]) not in page  # hidden ...
    assert login(cast.editor).post(reverse("backups:expire", args=[backup.pk])).status_code == 403  # ... and refused
    backup.refresh_from_db()
    assert backup.status == Backup.Status.COMPLETED


def test_expiring_a_backup_that_is_not_completed_says_why(cast) -> None:  # type: ignore[no-untyped-def]
    backup = make_backup(cast.org, Backup.Status.FAILED)
    response = login(cast.owner).post(reverse("backups:expire", args=[backup.pk]), follow=True)
    assert "Only a completed backup can expire; this one is Failed." in response.content.decode()


# -- verify ----------------------------------------------------------------------------------------------------


def test_verify_runs_synchronously_when_celery_is_eager(tenant, settings) -> None:  # type: ignore[no-untyped-def]
    settings.CELERY_TASK_ALWAYS_EAGER = True
    backup, _ = services.backup_request(organization=tenant.org, requested_by=tenant.owner, dispatch=False)
    services.process_queue()
    response = login(tenant.owner).post(reverse("backups:verify", args=[backup.pk]), follow=True)
    assert "verified: " in response.content.decode()
    backup.refresh_from_db()
    assert backup.verification_ok is True and backup.last_verified_at is not None
    assert 'class="bi bi-patch-check-fill text-success"' in response.content.decode()  # Last verified column


def test_a_damaged_archive_fails_verification_and_says_so(cast, settings) -> None:  # type: ignore[no-untyped-def]
    settings.CELERY_TASK_ALWAYS_EAGER = True
    backup = make_backup(cast.org, password_wrapped=wrap_password("x" * 20))  # random bytes, not an archive
    response = login(cast.owner).post(reverse("backups:verify", args=[backup.pk]), follow=True)
    assert "failed verification" in response.content.decode()
    backup.refresh_from_db()
    assert backup.verification_ok is False


def test_verify_queues_the_task_after_commit(cast, monkeypatch, django_capture_on_commit_callbacks) -> None:  # type: ignore[no-untyped-def]
    from backups import tasks

    queued: list[int] = []
    monkeypatch.setattr(tasks.verify_backup, "delay", lambda pk: queued.append(pk))
    backup = make_backup(cast.org)
    with django_capture_on_commit_callbacks(execute=True):
        response = login(cast.owner).post(reverse("backups:verify", args=[backup.pk]), follow=True)
    assert queued == [backup.pk]
    assert "Verification of" in response.content.decode()


def test_verify_refuses_backups_without_a_file(cast, settings) -> None:  # type: ignore[no-untyped-def]
    settings.CELERY_TASK_ALWAYS_EAGER = True
    backup = make_backup(cast.org, Backup.Status.EXPIRED)
    response = login(cast.owner).post(reverse("backups:verify", args=[backup.pk]), follow=True)
    assert "Only a completed backup whose file is still stored can be verified." in response.content.decode()
