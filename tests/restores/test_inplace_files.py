"""Files in a scope-exact restore: an unchanged file stays where it is, a changed one (even of the
same size) is written again from the backup; whether a file changed is told by the SHA-256 its
row recorded, and only a row that recorded none has its file read."""

from __future__ import annotations

import hashlib
import os
from typing import Any

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from organizations import models as om
from restores.inplace.plan import same_stored_file
from tests.restores.conftest import make_backup
from tests.restores.inplace_helpers import restore_in_place

pytestmark = pytest.mark.django_db


def _version(tenant: Any) -> om.DocumentVersion:
    return om.DocumentVersion.objects.filter(document__organization=tenant.org).order_by("pk").first()  # type: ignore[return-value]


def _read(name: str) -> bytes:
    with default_storage.open(name, "rb") as fh:
        return fh.read()  # type: ignore[no-any-return]


def test_an_unchanged_file_is_not_rewritten(tenant) -> None:  # type: ignore[no-untyped-def]
    version = _version(tenant)
    backup = make_backup(tenant.org, tenant.owner)
    replaced = restore_in_place(backup)
    again = om.DocumentVersion.objects.get(pk=version.pk)
    assert again.file.name == version.file.name
    assert replaced.result.stored_files == [] and replaced.old_files == []


def test_a_changed_file_of_the_same_size_is_rewritten(tenant) -> None:  # type: ignore[no-untyped-def]
    version = _version(tenant)
    original = _read(version.file.name)
    backup = make_backup(tenant.org, tenant.owner)
    # A new upload under the version: same size, other bytes, its own SHA-256 recorded.
    other = os.urandom(len(original))
    version.file.save("changed", ContentFile(other), save=False)
    version.sha256 = hashlib.sha256(other).hexdigest()
    version.save()
    replaced = restore_in_place(backup, remove_old_files=False)
    again = om.DocumentVersion.objects.get(pk=version.pk)
    assert again.file.name != version.file.name
    assert _read(again.file.name) == original
    assert again.sha256 == hashlib.sha256(original).hexdigest()
    assert replaced.old_files == [version.file.name]


def test_a_file_replaced_as_the_admin_does_records_its_own_hash_and_is_restored(tenant) -> None:  # type: ignore[no-untyped-def]
    """The admin's form assigns the upload and saves; size and SHA-256 are read-only there. The
    recorded pair must follow the new bytes, or the restore would take the file for unchanged."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    version = _version(tenant)
    original = _read(version.file.name)
    backup = make_backup(tenant.org, tenant.owner)
    other = os.urandom(len(original))
    version.file = SimpleUploadedFile("replaced.pdf", other)
    version.save()
    version.refresh_from_db()
    assert (version.size, version.sha256) == (len(other), hashlib.sha256(other).hexdigest())
    restore_in_place(backup, remove_old_files=False)
    again = om.DocumentVersion.objects.get(pk=version.pk)
    assert _read(again.file.name) == original
    assert again.sha256 == hashlib.sha256(original).hexdigest()


def _member(reader_members: dict[str, tuple[int, str]], data: bytes) -> dict[str, Any]:
    reader_members["files/m"] = (len(data), hashlib.sha256(data).hexdigest())
    return {"member": "files/m", "name": "a.txt"}


class _CountingStorage:
    """Storage that serves sizes and counts the files it is asked to open."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files
        self.opened: list[str] = []

    def size(self, name: str) -> int:
        if name not in self.files:
            raise FileNotFoundError(name)
        return len(self.files[name])

    def open(self, name: str, mode: str = "rb") -> Any:
        import io

        self.opened.append(name)
        return io.BytesIO(self.files[name])


def test_a_recorded_sha256_decides_without_reading_the_file() -> None:
    data = b"x" * 100
    members: dict[str, tuple[int, str]] = {}
    ref = _member(members, data)
    storage = _CountingStorage({"live": data})
    assert same_stored_file(storage, "live", hashlib.sha256(data).hexdigest(), ref, members)  # type: ignore[arg-type]
    other = hashlib.sha256(b"y" * 100).hexdigest()
    assert not same_stored_file(storage, "live", other, ref, members)  # type: ignore[arg-type]
    assert storage.opened == []


def test_a_row_without_a_recorded_sha256_has_its_file_hashed() -> None:
    data = b"x" * 100
    members: dict[str, tuple[int, str]] = {}
    ref = _member(members, data)
    storage = _CountingStorage({"same": data, "other": b"y" * 100})
    assert same_stored_file(storage, "same", "", ref, members)  # type: ignore[arg-type]
    assert not same_stored_file(storage, "other", "", ref, members)  # type: ignore[arg-type]
    assert storage.opened == ["same", "other"]


def test_a_missing_or_resized_file_is_changed_and_no_file_is_unchanged_only_against_none() -> None:
    data = b"x" * 100
    members: dict[str, tuple[int, str]] = {}
    ref = _member(members, data)
    storage = _CountingStorage({"short": b"x" * 99})
    sha = hashlib.sha256(data).hexdigest()
    assert not same_stored_file(storage, "gone", sha, ref, members)  # type: ignore[arg-type]
    assert not same_stored_file(storage, "short", sha, ref, members)  # type: ignore[arg-type]
    assert not same_stored_file(storage, "", sha, ref, members)  # type: ignore[arg-type]
    assert same_stored_file(storage, "", "", None, members)  # type: ignore[arg-type]
    assert storage.opened == []
