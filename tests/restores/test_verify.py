"""Verify: every hash, then a restore rehearsed in a transaction that is rolled back."""

from __future__ import annotations

import pytest

from accounts.models import AuditLog
from backups.models import Backup
from organizations.models import MasterDataVersion, Organization
from restores.verify import backup_verify_and_rehearse
from tests.restores.conftest import db_state, media_listing

pytestmark = pytest.mark.django_db


def test_a_good_backup_is_verified_and_rehearsed_without_a_trace(tenant, full_backup) -> None:  # type: ignore[no-untyped-def]
    organizations = set(Organization.objects.values_list("pk", flat=True))
    before, files = db_state(tenant.org), media_listing(exclude_prefix=())
    backup = backup_verify_and_rehearse(backup=full_backup, user=tenant.owner)
    assert backup.verification_ok is True, backup.verification_message
    assert "every SHA-256 matches" in backup.verification_message
    assert "Restore rehearsed:" in backup.verification_message and "then rolled back" in backup.verification_message
    assert set(Organization.objects.values_list("pk", flat=True)) == organizations
    assert db_state(tenant.org) == before
    assert media_listing(exclude_prefix=()) == files
    assert AuditLog.objects.filter(action="backup.rehearse", details__ok=True).exists()
    assert backup.events.filter(message__startswith="Rehearsed:").exists()


def test_a_backup_that_cannot_be_restored_here_fails_verification(tenant, full_backup) -> None:  # type: ignore[no-untyped-def]
    # The backup's master data version disappeared from this system: decrypting works, restoring would not.
    mdv = tenant.org.master_data_version
    replacement = MasterDataVersion.objects.create(code="OTHER", name="Other", released_on=mdv.released_on)
    Organization.objects.filter(master_data_version=mdv).update(master_data_version=replacement)
    mdv.delete()
    backup = backup_verify_and_rehearse(backup=full_backup, user=tenant.owner)
    assert backup.verification_ok is False
    assert "rehearsal failed" in backup.verification_message and "master data version" in backup.verification_message


def test_a_damaged_backup_fails_before_the_rehearsal(tenant, full_backup) -> None:  # type: ignore[no-untyped-def]
    path = full_backup.file.path
    with open(path, "r+b") as fh:
        fh.seek(100)
        byte = fh.read(1)
        fh.seek(100)
        fh.write(bytes([byte[0] ^ 0x55]))
    backup = backup_verify_and_rehearse(backup=full_backup)
    assert backup.verification_ok is False
    assert "Restore rehearsed" not in backup.verification_message
    assert not AuditLog.objects.filter(action="backup.rehearse").exists()
    assert Backup.objects.get(pk=full_backup.pk).last_verified_at is not None
