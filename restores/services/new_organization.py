"""Into a new organization (the Site Admins' wizard): queue the restore of a backup or an
uploaded file, verify and keep uploads, and delete the uploads the wizard never used.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

from django.core.files import File
from django.core.files.storage import Storage, default_storage
from django.db import transaction
from django.utils import timezone

from accounts.models import User
from accounts.services import audit_log
from backups.archive import ArchiveError
from backups.importer import delete_files
from backups.keys import wrap_password
from backups.models import Backup
from restores import engine
from restores.models import Restore, RestoreUpload
from restores.permissions import may_use_wizard
from restores.services.common import RestoreError, _dispatch


def restore_new_organization(
    *,
    user: User,
    profile: engine.NewOrganization,
    backup: Backup | None = None,
    upload: RestoreUpload | None = None,
    request: Any = None,
) -> Restore:
    """Queue the creation of a new organization from a backup or an uploaded file."""
    if not may_use_wizard(user):
        raise RestoreError("Only Site Admins can restore into a new organization.")
    if (backup is None) == (upload is None):
        raise RestoreError("Choose one backup or one uploaded file.")
    if backup is not None and (backup.status != Backup.Status.COMPLETED or not backup.file):
        raise RestoreError("Only a completed backup whose file is still kept can be restored.")
    with transaction.atomic():
        restore = Restore.objects.create(
            kind=Restore.Kind.NEW_ORGANIZATION,
            status=Restore.Status.QUEUED,
            backup=backup,
            upload=upload,
            requested_by=user,
            confirmed_at=timezone.now(),
            options=profile.__dict__,
        )
        audit_log(
            action="restore.new_organization",
            actor=user,
            obj=restore,
            request=request,
            details={
                "backup": backup.pk if backup else None,
                "upload": upload.pk if upload else None,
                "slug": profile.slug,
            },
        )
        _dispatch("run_restore", restore.pk)
    return restore


def _sha256_of(path: str) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(1024 * 1024):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def restore_upload_create(
    *,
    user: User,
    path: str,
    password: str,
    original_name: str = "",
    request: Any = None,
    storage: Storage | None = None,
) -> RestoreUpload:
    """Verify an uploaded backup file (every check and hash) and keep it for the wizard.

    Raises ``RestoreError`` with the reader's sentence when the file is refused; nothing is
    stored then.
    """
    if not may_use_wizard(user):
        raise RestoreError("Only Site Admins can restore into a new organization.")
    storage = storage or default_storage
    try:
        with engine.open_reader(path, password) as reader:
            manifest = reader.verify()
            summary = engine.preview(reader)
    except ArchiveError as exc:
        audit_log(action="restore.upload_refused", actor=user, request=request, details={"reason": str(exc)})
        raise RestoreError(str(exc)) from exc
    size, sha256 = _sha256_of(path)
    upload = RestoreUpload(
        uploaded_by=user,
        password_wrapped=wrap_password(password),
        original_name=original_name[:255],
        size=size,
        sha256=sha256,
        manifest_summary={**summary, "format": manifest.get("format")},
    )
    with open(path, "rb") as fh:
        upload.file.save("upload.zip", File(fh), save=False)
    try:
        with transaction.atomic():
            upload.save()
            audit_log(
                action="restore.upload",
                actor=user,
                obj=upload,
                request=request,
                details={"size": size, "sha256": sha256},
            )
    except BaseException:
        delete_files([upload.file.name], storage)
        raise
    return upload


def uploads_cleanup(*, older_than: dt.timedelta = dt.timedelta(days=1)) -> int:
    """Delete uploads the wizard never used (abandoned) and their files."""
    count = 0
    for upload in RestoreUpload.objects.filter(created_at__lt=timezone.now() - older_than):
        if upload.restores.filter(status__in=Restore.ACTIVE_STATUSES).exists():
            continue
        delete_files([upload.file.name])
        upload.delete()
        count += 1
    return count
