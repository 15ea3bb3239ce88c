"""Verify now on S3-compatible storage that goes away after the hash check, before the restore
rehearsal has read the archive: the backup could not be checked (the storage wording), it is
not reported damaged, and the page does not fail."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.files.storage import default_storage
from django.db.models.signals import post_save
from django.urls import reverse
from django.utils.functional import empty

from accounts.models import AuditLog
from backups import services
from backups.models import Backup, BackupEvent
from tests.factories import client_for
from tests.support import s3
from tests.support.net import StorageLink

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    with s3.moto_server() as endpoint:
        yield endpoint


@pytest.fixture
def link(settings, s3_endpoint: str) -> Iterator[StorageLink]:  # type: ignore[no-untyped-def]
    """A fresh bucket, reached through a link that can be cut, as the default storage."""
    link = StorageLink(int(s3_endpoint.rsplit(":", 1)[1]))
    settings.STORAGES = {**settings.STORAGES, "default": s3.storage_settings(link.url, s3.create_bucket(s3_endpoint))}
    default_storage._wrapped = empty
    try:
        yield link
    finally:
        with contextlib.suppress(OSError):
            link.cut()
        default_storage._wrapped = empty


def test_storage_lost_between_the_hash_check_and_the_rehearsal_says_not_checked_not_damaged(
    settings, link: StorageLink, cast
) -> None:  # type: ignore[no-untyped-def]
    settings.CELERY_TASK_ALWAYS_EAGER = True
    backup, _ = services.backup_request(organization=cast.org, requested_by=cast.owner, dispatch=False)
    assert services.process_queue() == 1

    def cut_once_the_hashes_passed(sender: Any, instance: BackupEvent, created: bool, **kwargs: Any) -> None:
        if created and instance.message.startswith("Verified:"):
            link.cut()  # the store goes down: the rehearsal is next

    post_save.connect(cut_once_the_hashes_passed, sender=BackupEvent)
    try:
        owner = client_for(cast.owner)
        detail = reverse("backups:detail", args=[backup.pk])
        response = owner.post(reverse("backups:verify", args=[backup.pk]), {"next": detail}, follow=True)
    finally:
        post_save.disconnect(cut_once_the_hashes_passed, sender=BackupEvent)

    assert response.status_code == 200
    page = " ".join(response.content.decode().split())
    assert "could not be checked: Storage error: the file storage could not be reached" in page  # the message
    field = page.split('data-testid="verification"')[1].split("</dd>")[0]
    assert "Not checked on" in field and "The archive is not known to be damaged." in field
    assert "Failed" not in field and "rehearsal failed" not in page
    backup = Backup.objects.get(pk=backup.pk)
    assert backup.verification_ok is True  # the hashes did pass; nothing says the archive is bad
    assert not backup.events.filter(message__startswith="Rehearsal failed").exists()
    assert not AuditLog.objects.filter(action="backup.rehearse", details__ok=False).exists()
    assert AuditLog.objects.filter(action="backup.verify", details__ok=None).count() == 1

    link.restore()  # the next check that reaches the store rehearses the restore
    page = " ".join(owner.post(reverse("backups:verify", args=[backup.pk]), follow=True).content.decode().split())
    assert "Restore rehearsed:" in page
