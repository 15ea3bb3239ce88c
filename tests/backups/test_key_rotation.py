"""``manage.py backup rotate-keys`` end to end: backups made under key A, BACKUP_KEYS=B,A,
rotate, then BACKUP_KEYS=B alone: every backup verifies and restores (in place, for real)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from django.core.management import CommandError, call_command

from backups import rotation
from backups.keys import PasswordUnavailable, unwrap_password, wrap_password
from backups.models import Backup
from backups.snapshot import logical_snapshot
from organizations import models as om
from restores import services as restore_services
from restores.models import Restore
from restores.verify import backup_verify_and_rehearse
from tests.factories import DEMO_PASSWORD
from tests.restores.conftest import confirmed_restore, make_backup, run

pytestmark = pytest.mark.django_db

KEY_A = Fernet.generate_key().decode()
KEY_B = Fernet.generate_key().decode()


def rotate(**options: Any) -> str:
    out = io.StringIO()
    call_command("backup", "rotate-keys", stdout=out, **options)
    return out.getvalue()


def test_rotate_then_remove_the_old_key_every_backup_verifies_and_restores(tenant, settings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    settings.BACKUP_KEYS = [KEY_A]
    first = make_backup(tenant.org, tenant.owner)
    at_first = logical_snapshot(tenant.org)
    om.Template.objects.create(organization=tenant.org, name="After the first backup")
    second = make_backup(tenant.org, tenant.owner)
    # An uploaded file kept by the wizard: its password is wrapped with the same ring.
    upload_path = tmp_path / "upload.zip"
    with second.file.open("rb") as src:
        upload_path.write_bytes(src.read())
    upload = restore_services.restore_upload_create(
        user=tenant.site_admin, path=str(upload_path), password=unwrap_password(second.password_wrapped)
    )
    backups = list(Backup.objects.exclude(password_wrapped="").order_by("pk"))
    assert len(backups) == 2

    settings.BACKUP_KEYS = [KEY_B, KEY_A]
    assert rotate() == "Re-wrapped: 3\nAlready current: 0\nFailed: 0\n"
    # Idempotent: a second run finds everything current.
    assert rotate() == "Re-wrapped: 0\nAlready current: 3\nFailed: 0\n"

    settings.BACKUP_KEYS = [KEY_B]  # key A removed
    for backup in Backup.objects.filter(pk__in=[b.pk for b in backups]):
        # Decrypt, check every hash, and rehearse the restore in a transaction rolled back.
        verified = backup_verify_and_rehearse(backup=backup)
        assert verified.verification_ok, verified.verification_message
    upload.refresh_from_db()
    assert unwrap_password(upload.password_wrapped) == unwrap_password(
        Backup.objects.get(pk=second.pk).password_wrapped
    )
    # And for real, in place, from the older backup.
    om.Template.objects.create(organization=tenant.org, name="Written after both")
    done = run(confirmed_restore(first, tenant.owner, DEMO_PASSWORD))
    assert done.status == Restore.Status.COMPLETED, done.failure_reason
    assert logical_snapshot(tenant.org) == at_first

    # Without the rotation, removing key A would have lost them all: the control case.
    settings.BACKUP_KEYS = [KEY_A]
    with pytest.raises(PasswordUnavailable):
        unwrap_password(Backup.objects.get(pk=first.pk).password_wrapped)


def test_rotation_resumes_after_an_interruption_and_reports_what_no_key_opens(cast, settings, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    settings.BACKUP_KEYS = [KEY_A]
    for i in range(5):
        Backup.objects.create(
            organization=cast.org, status=Backup.Status.CANCELLED, password_wrapped=wrap_password(f"password-{i}")
        )
    lost = Fernet(Fernet.generate_key()).encrypt(b"wrapped with a key nobody kept").decode()
    orphan = Backup.objects.create(organization=cast.org, status=Backup.Status.CANCELLED, password_wrapped=lost)
    settings.BACKUP_KEYS = [KEY_B, KEY_A]

    # Stopped after the second batch (of two rows): those batches are committed.
    batches: list[int] = []

    def stop_after_two(label: str, counts: rotation.RotationCounts) -> None:
        batches.append(counts.rewrapped)
        if len(batches) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        rotation.keys_rotate(batch_size=2, progress=stop_after_two)
    assert batches == [2, 4]

    with pytest.raises(CommandError, match=rf"1 stored password\(s\) cannot be opened .*backups.Backup #{orphan.pk}"):
        rotate(batch_size=2)
    settings.BACKUP_KEYS = [KEY_B]
    for backup in Backup.objects.exclude(pk=orphan.pk):
        assert unwrap_password(backup.password_wrapped).startswith("password-")
    assert Backup.objects.get(pk=orphan.pk).password_wrapped == lost  # left as it was
