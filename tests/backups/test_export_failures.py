"""The archive writer's temporary files are closed when a stored file cannot be read."""

from __future__ import annotations

import io
import tempfile
from typing import Any

import pytest
from django.core.files.storage import FileSystemStorage, default_storage

from backups import datasets as ds
from backups import export

pytestmark = pytest.mark.django_db


class _Unreadable(io.RawIOBase):
    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        raise OSError(5, "Input/output error")


class _OpenFails(FileSystemStorage):
    def open(self, name: str, mode: str = "rb") -> Any:
        raise OSError(5, "Input/output error")


class _ReadFails(FileSystemStorage):
    def open(self, name: str, mode: str = "rb") -> Any:
        return io.BufferedReader(_Unreadable())


@pytest.fixture
def temp_files(monkeypatch) -> list[tempfile.SpooledTemporaryFile]:  # type: ignore[no-untyped-def,type-arg]
    """Every spooled temporary file the exporter creates."""
    made: list[tempfile.SpooledTemporaryFile] = []  # type: ignore[type-arg]

    class Tracked(tempfile.SpooledTemporaryFile):  # type: ignore[type-arg]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            made.append(self)

    monkeypatch.setattr(export.tempfile, "SpooledTemporaryFile", Tracked)
    return made


@pytest.mark.parametrize("storage_class", [_OpenFails, _ReadFails], ids=["open fails", "read fails"])
def test_a_stored_file_that_cannot_be_read_fails_the_export_and_leaves_no_temporary_file_open(  # type: ignore[no-untyped-def]
    tenant, temp_files, storage_class
) -> None:
    storage = storage_class(location=default_storage.location)
    with pytest.raises(OSError, match="Input/output error"):
        export.write_archive(
            organization=tenant.org,
            scope=ds.Scope(include_inactive=True),
            datasets=ds.all_keys(),
            sink=io.BytesIO(),
            password="a-password-for-the-test",
            storage=storage,
        )
    assert len(temp_files) >= 2, "the catalog and the staging file of the rows with files"
    assert [f for f in temp_files if not f.closed] == []
