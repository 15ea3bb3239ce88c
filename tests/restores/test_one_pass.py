"""A restore into a new organization reads the archive once: each member is verified as the
import reads it, the rest after it, all before the commit. A damaged member anywhere fails the
restore with the reason a verification first gives, and leaves nothing behind."""

from __future__ import annotations

from typing import Any

import pytest

from backups import importer
from backups.archive import ArchiveError
from backups.archive.members import data_start
from backups.models import Backup
from organizations.models import Organization
from restores import engine, services
from restores.models import Restore
from tests.restores.conftest import media_listing, run
from tests.support.decrypts import spy_on_decryption

pytestmark = pytest.mark.django_db


def damage(backup: Backup, storage: Any, pick: Any) -> str:
    """Flip one byte in the middle of the encrypted data of the member ``pick`` chooses from
    the names in archive order; return the member's name."""
    with engine.open_backup(backup, storage) as reader:
        directory = reader._loaded()
        names = [directory.name(i) for i in directory.in_offset_order()]
        name = pick(names)
        entry = directory.entry(directory.find(name))
        start = data_start(reader._src, entry, directory.cd_offset)
    salt_and_check, mac = 18, 10  # AES-256: 16 bytes of salt, 2 of password check; 10 of MAC
    at = start + salt_and_check + (entry.compressed - salt_and_check - mac) // 2
    with open(storage.path(backup.file.name), "r+b") as fh:
        fh.seek(at)
        byte = fh.read(1)
        fh.seek(at)
        fh.write(bytes([byte[0] ^ 0x01]))
    return name


def verification_reason(backup: Backup, storage: Any) -> str:
    """What verifying the whole archive first says of it."""
    with engine.open_backup(backup, storage) as reader, pytest.raises(ArchiveError) as caught:
        reader.verify()
    return str(caught.value)


def restore_into_new_organization(tenant: Any, backup: Backup) -> Restore:
    profile = engine.NewOrganization(name="Acme copy", slug="acme-copy", owner_email=tenant.owner.email)
    return run(services.restore_new_organization(user=tenant.site_admin, profile=profile, backup=backup))


def test_a_file_damaged_late_in_the_archive_fails_the_restore_and_leaves_nothing(  # type: ignore[no-untyped-def]
    tenant, full_backup, storage, monkeypatch
) -> None:
    member = damage(full_backup, storage, lambda names: [n for n in names if n.startswith("files/")][-1])
    reason = verification_reason(full_backup, storage)
    assert member in reason and "damaged" in reason
    organizations = set(Organization.objects.values_list("pk", flat=True))
    files = media_listing()
    stored: list[str] = []
    real_store = importer.store_file

    def store_file(*args: Any, **kwargs: Any) -> str:
        name = real_store(*args, **kwargs)
        stored.append(name)
        return name

    monkeypatch.setattr(importer, "store_file", store_file)
    restore = restore_into_new_organization(tenant, full_backup)
    assert restore.status == Restore.Status.FAILED
    assert restore.failure_reason == reason
    assert set(Organization.objects.values_list("pk", flat=True)) == organizations
    assert not Organization.objects.filter(slug="acme-copy").exists()
    assert len(stored) > 1  # files were stored before the damaged one was read ...
    assert media_listing() == files  # ... and every one is gone, the damaged one's partial file too
    assert restore.organization is None and restore.files_restored == 0


def test_a_damaged_member_the_import_does_not_read_fails_the_restore(tenant, full_backup, storage) -> None:  # type: ignore[no-untyped-def]
    member = damage(full_backup, storage, lambda names: "index.html")
    reason = verification_reason(full_backup, storage)
    assert member in reason
    organizations, files = set(Organization.objects.values_list("pk", flat=True)), media_listing()
    restore = restore_into_new_organization(tenant, full_backup)
    assert restore.status == Restore.Status.FAILED
    assert restore.failure_reason == reason
    assert set(Organization.objects.values_list("pk", flat=True)) == organizations
    assert media_listing() == files


def test_an_import_failing_on_a_damaged_archive_fails_with_the_archives_reason(  # type: ignore[no-untyped-def]
    tenant, full_backup, storage, monkeypatch
) -> None:
    # Damaged data can break the import before its member's end is checked (a row that does
    # not parse, a reference that is not there): the reason given is still the damage, as when
    # the archive was verified before the import.
    damage(full_backup, storage, lambda names: "index.csv")
    reason = verification_reason(full_backup, storage)

    def checkpoint(stage: str, **info: Any) -> None:
        if stage == "row":
            raise ValueError("a row that does not parse")

    monkeypatch.setattr(engine, "checkpoint", checkpoint)
    organizations, files = set(Organization.objects.values_list("pk", flat=True)), media_listing()
    restore = restore_into_new_organization(tenant, full_backup)
    assert restore.status == Restore.Status.FAILED
    assert restore.failure_reason == reason and "unexpected" not in reason
    assert set(Organization.objects.values_list("pk", flat=True)) == organizations
    assert media_listing() == files


def test_an_intact_archive_is_restored_reading_each_member_once(tenant, full_backup, storage, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    opened = spy_on_decryption(monkeypatch)
    restore = restore_into_new_organization(tenant, full_backup)
    assert restore.status == Restore.Status.COMPLETED, restore.failure_reason
    with engine.open_backup(full_backup, storage) as reader:
        members = list(reader.names)
    files = [n for n in members if n.startswith("files/")]
    assert restore.files_restored == len(files)  # the documents' files and the logo
    # Every member was decrypted, the files (the bulk of an archive) exactly once; only the
    # profile member is read twice (its first row tells where the logo is), and the manifest
    # (when the reader opens the archive).
    assert set(opened) == set(members)
    assert all(opened.count(n) == 1 for n in files)
