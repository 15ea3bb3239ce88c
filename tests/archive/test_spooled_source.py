"""An archive in a spooled temporary file (what an S3 object is downloaded into) is read where it
is, in memory: asking such a file for a descriptor writes it to the temporary folder first, and
on a full disk that lost its content, so a good backup read as "not a zip archive" (found by the
chaos soak: restores and verifications failed with that reason while a worker's disk was full)."""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.core.files import File

from backups.archive import ArchiveReader
from tests.archive.test_roundtrip import PASSWORD, write_archive

MEMBERS = {"files/random": os.urandom(200_000), "data/docs/document.jsonl": b'{"id": 1}\n' * 1000}


def spooled(body: bytes) -> tempfile.SpooledTemporaryFile[bytes]:
    """As django-storages downloads an S3 object (AWS_S3_MAX_MEMORY_SIZE 0: kept in memory)."""
    spool = tempfile.SpooledTemporaryFile(max_size=0)  # noqa: SIM115 - closed by the test
    spool.write(body)
    spool.seek(0)
    return spool


@pytest.mark.parametrize("wrapped", [False, True], ids=["spooled-file", "django-file"])
def test_an_archive_in_a_spooled_file_is_read_in_memory(wrapped: bool) -> None:
    spool = spooled(write_archive(MEMBERS))
    reader = ArchiveReader(File(spool) if wrapped else spool, PASSWORD)
    reader.verify()
    assert reader.read_bytes("files/random") == MEMBERS["files/random"]
    assert not spool._rolled, "the archive was written to the temporary folder"  # type: ignore[attr-defined]


@pytest.fixture
def full_temporary_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The temporary folder on a 1 MiB tmpfs filled to the last byte (needs root to mount)."""
    folder = tmp_path / "full"
    folder.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(folder)], capture_output=True, check=False
    )
    if mounted.returncode:
        pytest.skip("mounting a tmpfs needs root")
    try:
        with open(folder / "filler", "wb", buffering=0) as fh, pytest.raises(OSError):
            while True:
                fh.write(b"\0" * 65536)
        monkeypatch.setattr(tempfile, "tempdir", str(folder))
        yield folder
    finally:
        subprocess.run(["umount", "--lazy", str(folder)], check=False)


@pytest.fixture
def archive_bytes() -> bytes:
    """Written before the disk fills (the writer spools its bookkeeping to temporary files)."""
    return write_archive(MEMBERS)


def test_a_good_archive_reads_as_good_while_the_disk_is_full(archive_bytes: bytes, full_temporary_folder: Path) -> None:
    reader = ArchiveReader(File(spooled(archive_bytes)), PASSWORD)
    reader.verify()
    assert reader.read_bytes("data/docs/document.jsonl") == MEMBERS["data/docs/document.jsonl"]
