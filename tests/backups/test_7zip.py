"""7-Zip, the archive's peer outside the system, tests and extracts a backup made by the engine."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from django.core.files.storage import default_storage

from backups import services
from backups.models import Backup
from organizations.models import DocumentVersion
from tests.support.procs import skip_or_fail

pytestmark = pytest.mark.django_db

# Debian's 7zip package installs 7zz (bookworm) or 7z (trixie); p7zip-full installs 7z and 7za.
SEVEN_ZIP = next((p for p in map(shutil.which, ("7z", "7zz", "7za")) if p), None)


def _7z(*args: str) -> subprocess.CompletedProcess[str]:
    assert SEVEN_ZIP is not None
    return subprocess.run([SEVEN_ZIP, *args], capture_output=True, text=True, timeout=120)


def test_7zip_tests_and_extracts_a_backup_byte_for_byte(tenant, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    if SEVEN_ZIP is None:
        skip_or_fail("7-Zip is not installed (apt-get install 7zip)")
    backup, password = services.backup_request(
        organization=tenant.org, requested_by=tenant.owner, include_inactive=True, dispatch=False
    )
    services.process_queue()
    backup.refresh_from_db()
    assert backup.status == Backup.Status.COMPLETED, backup.failure_reason
    archive = Path(default_storage.path(backup.file.name))

    tested = _7z("t", f"-p{password}", "-bd", "-y", str(archive))
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "Everything is Ok" in tested.stdout
    wrong = _7z("t", "-pnot-the-password", "-bd", "-y", str(archive))
    assert wrong.returncode != 0, "7-Zip must refuse a wrong password"

    out = tmp_path / "extracted"
    extracted = _7z("x", f"-p{password}", f"-o{out}", "-bd", "-y", str(archive))
    assert extracted.returncode == 0, extracted.stdout + extracted.stderr
    on_disk = {p.relative_to(out).as_posix(): p for p in out.rglob("*") if p.is_file()}

    # The manifest lists every other member, and each one's SHA-256 is that of 7-Zip's output.
    manifest = json.loads(on_disk["manifest.json"].read_bytes())
    assert manifest["format"] == "backupsvc/1"
    listed = {m["path"]: m for m in manifest["members"]}
    assert set(on_disk) == set(listed) | {"manifest.json"}
    for path, member in listed.items():
        data = on_disk[path].read_bytes()
        assert len(data) == member["size"], path
        assert hashlib.sha256(data).hexdigest() == member["sha256"], path
    assert {"index.html", "index.csv", "data/documents/document_version.jsonl"} <= set(listed)

    # Every files/<id> member is a stored file, byte for byte: the document versions (mapped
    # through document_version.jsonl) and the logo (through the profile row).
    def rows(name: str) -> list[dict]:
        return [json.loads(line) for line in on_disk[name].read_text().splitlines() if line]

    expected: dict[str, str] = {}
    for row in rows("data/documents/document_version.jsonl"):
        expected[row["file"]["member"]] = DocumentVersion.objects.get(pk=row["id"]).file.name
    assert len(expected) == 8  # all six documents of the tenant, one of them with two versions
    [profile] = rows("data/profile/profile.jsonl")
    expected[profile["logo"]["member"]] = tenant.org.logo.name
    assert {p for p in on_disk if p.startswith("files/")} == set(expected)
    for member, stored in expected.items():
        with default_storage.open(stored, "rb") as original:
            assert on_disk[member].read_bytes() == original.read(), member
