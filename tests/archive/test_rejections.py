"""The reader refuses every kind of bad archive, each with its own exception and a sentence."""

from __future__ import annotations

import io
import json
import os
import struct
import zipfile
from collections import Counter
from pathlib import Path

import pytest
import pyzipper

from backups.archive import (
    ArchiveError,
    ArchiveReader,
    ArchiveTooLarge,
    ArchiveWriter,
    CorruptArchive,
    DuplicateMember,
    Limits,
    MissingMember,
    SchemaTooNew,
    SymlinkMember,
    TruncatedArchive,
    UnencryptedMember,
    UnexpectedMember,
    UnsafePath,
    UnsupportedFormat,
    WrongPassword,
)
from backups.archive import writer as writer_module

PASSWORD = "correct horse"
MEMBERS = {
    "index.csv": b"title,ou\r\n" + b"Quarterly report,Finance\r\n" * 40,
    "files/0001": os.urandom(2000),
    "data/docs/document.jsonl": b'{"id": 1, "title": "x"}\n' * 50,
}


class Sink(io.RawIOBase):
    def __init__(self) -> None:
        self.data = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, b: bytes) -> int:  # type: ignore[override]
        self.data += b
        return len(b)


def build(
    members: dict[str, bytes] | None = None, *, manifest: dict[str, object] | None = None, tamper: object = None
) -> bytes:
    """An archive of ``members``; ``tamper(writer)`` may edit the writer's records before close."""
    sink = Sink()
    with ArchiveWriter(sink, PASSWORD) as w:
        for name, data in (MEMBERS if members is None else members).items():
            w.add_bytes(name, data)
        if callable(tamper):
            w._drain()
            tamper(w)
        w.close(manifest=manifest)
    return bytes(sink.data)


def reader(blob: bytes, password: str = PASSWORD, **kwargs: object) -> ArchiveReader:
    return ArchiveReader(io.BytesIO(blob), password, **kwargs)  # type: ignore[arg-type]


def central_offset(blob: bytes, name: str) -> int:
    """Offset of the central directory header of ``name``."""
    pos = blob.index(b"PK\x01\x02")
    while pos >= 0:
        name_len = struct.unpack_from("<H", blob, pos + 28)[0]
        if blob[pos + 46 : pos + 46 + name_len] == name.encode():
            return pos
        pos = blob.find(b"PK\x01\x02", pos + 1)
    raise KeyError(name)


def flip(blob: bytes, position: int) -> bytes:
    data = bytearray(blob)
    data[position] ^= 0x01
    return bytes(data)


def assert_sentence(exc: ArchiveError) -> None:
    message = str(exc)
    assert message[0].isupper() and message.endswith((".", ")")), message


def test_a_good_archive_passes() -> None:
    manifest = reader(build()).verify()
    assert {m["path"] for m in manifest["members"]} == set(MEMBERS)


def test_wrong_password() -> None:
    with pytest.raises(WrongPassword) as info:
        reader(build(), "wrong horse").verify()
    assert_sentence(info.value)


def test_wrong_password_with_only_a_manifest() -> None:
    with pytest.raises(WrongPassword):
        reader(build({}), "wrong horse").check()


def test_damaged_manifest_with_the_right_password_is_corrupt_not_a_wrong_password() -> None:
    blob = build()
    manifest_header = blob.rindex(b"PK\x03\x04")
    with pytest.raises(CorruptArchive):
        reader(flip(blob, manifest_header + 120)).verify()


@pytest.mark.parametrize("member", list(MEMBERS))
def test_flipped_byte_in_member_data_is_corrupt(member: str) -> None:
    blob = build()
    offset = struct.unpack_from("<I", blob, central_offset(blob, member) + 42)[0]
    name_len, extra_len = struct.unpack_from("<HH", blob, offset + 26)
    data_start = offset + 30 + name_len + extra_len
    csize = struct.unpack_from("<I", blob, central_offset(blob, member) + 20)[0]
    for position in (data_start + 20, data_start + csize // 2, data_start + csize - 1):  # ciphertext, MAC
        with pytest.raises(CorruptArchive) as info:
            reader(flip(blob, position)).verify()
        assert_sentence(info.value)


def test_a_flipped_byte_anywhere_is_refused() -> None:
    blob = build({"index.csv": b"a,b\r\n" * 30, "files/x": b"\x89PNG\r\n\x1a\n" + bytes(100)})
    seen: Counter[str] = Counter()
    for position in range(len(blob)):
        with pytest.raises(ArchiveError) as info:
            reader(flip(blob, position)).verify()
        seen["CorruptArchive" if isinstance(info.value, CorruptArchive) else type(info.value).__name__] += 1
    # Names may turn into unsafe or unlisted ones; everything else is damage.
    assert seen["CorruptArchive"] > 0.85 * len(blob), seen


def test_truncated_archive() -> None:
    blob = build()
    for cut in (len(blob) // 10, len(blob) // 2, len(blob) - 100, len(blob) - 22, len(blob) - 1):
        with pytest.raises(TruncatedArchive) as info:
            reader(blob[:cut]).check()
        assert_sentence(info.value)


def test_member_listed_in_manifest_but_absent() -> None:
    def add_ghost(w: ArchiveWriter) -> None:
        w._ledger.listed.seek(0, io.SEEK_END)
        w._ledger.listed.write(b'{"path":"files/ghost","size":3,"sha256":"' + b"0" * 64 + b'"}\n')

    with pytest.raises(MissingMember) as info:
        reader(build(tamper=add_ghost)).check()
    assert "files/ghost" in str(info.value)


def test_member_present_but_not_in_manifest() -> None:
    def hide_first(w: ArchiveWriter) -> None:
        w._ledger.listed.seek(0)
        rest = w._ledger.listed.readlines()[1:]
        w._ledger.listed.seek(0)
        w._ledger.listed.truncate()
        w._ledger.listed.writelines(rest)

    with pytest.raises(UnexpectedMember) as info:
        reader(build(tamper=hide_first)).check()
    assert "index.csv" in str(info.value)


@pytest.mark.parametrize("fmt", ["backupsvc/2", "other/1", "backupsvc/x"])
def test_unsupported_manifest_format(monkeypatch: pytest.MonkeyPatch, fmt: str) -> None:
    monkeypatch.setattr(writer_module, "FORMAT", fmt)
    with pytest.raises(UnsupportedFormat) as info:
        reader(build()).check()
    assert_sentence(info.value)


def test_not_a_zip_and_zip_without_manifest_are_unsupported(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedFormat):
        reader(b"%PDF-1.7 definitely not a zip" * 10).check()
    plain = io.BytesIO()
    with pyzipper.AESZipFile(plain, "w", encryption=pyzipper.WZ_AES) as zf:
        zf.setpassword(PASSWORD.encode())
        zf.writestr("hello.txt", b"hi")
    with pytest.raises(UnsupportedFormat):
        reader(plain.getvalue()).check()


def test_ae1_members_are_refused() -> None:
    blob = io.BytesIO()
    with pyzipper.AESZipFile(blob, "w", compression=pyzipper.ZIP_DEFLATED, encryption=pyzipper.WZ_AES) as zf:
        zf.setpassword(PASSWORD.encode())
        zf.setencryption(pyzipper.WZ_AES, nbits=256, force_wz_aes_version=1)
        zf.writestr("manifest.json", json.dumps({"format": "backupsvc/1", "members": []}))
    with pytest.raises(UnsupportedFormat, match="AE-1"):
        reader(blob.getvalue()).check()


@pytest.mark.parametrize(
    ("backup", "current", "ok"),
    [
        ({"docs": "0003_add_title"}, {"docs": "0003_add_title"}, True),
        ({"docs": "0002_x"}, {"docs": "0003_y", "billing": "0001_initial"}, True),
        ({"docs": "0004_new"}, {"docs": "0003_y"}, False),
        ({"docs": "0001_initial", "newapp": "0001_initial"}, {"docs": "0003_y"}, False),
    ],
)
def test_schema_newer_than_the_running_code(backup: dict[str, str], current: dict[str, str], ok: bool) -> None:
    blob = build(manifest={"schema": backup})
    if ok:
        reader(blob, current_schema=current).verify()
    else:
        with pytest.raises(SchemaTooNew) as info:
            reader(blob, current_schema=current).check()
        assert_sentence(info.value)
    reader(blob).verify()  # no current schema given: not checked


@pytest.mark.parametrize("name", ["../evil", "/etc/cron.d/x", "C:/Windows/x", "a\\b", "files//x", "files/./x"])
def test_unsafe_member_names(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    monkeypatch.setattr(writer_module, "check_name", lambda _name: None)
    blob = build({"index.csv": b"x", name: b"payload"})
    with pytest.raises(UnsafePath) as info:
        reader(blob).check()
    assert_sentence(info.value)


def test_name_that_is_both_file_and_folder() -> None:
    with pytest.raises(UnsafePath, match="both a file and a folder"):
        reader(build({"files/a": b"1", "files/a/b": b"2"})).check()


def test_symlink_member() -> None:
    blob = bytearray(build())
    pos = central_offset(bytes(blob), "files/0001")
    struct.pack_into("<I", blob, pos + 38, 0o120777 << 16)  # external attributes: a symlink
    with pytest.raises(SymlinkMember) as info:
        reader(bytes(blob)).check()
    assert_sentence(info.value)


@pytest.mark.parametrize("second", [b"files/a", b"FILES/A"])
def test_duplicate_members(second: bytes) -> None:
    blob = build({"files/a": b"first", "files/b": b"second"})
    # Rename the second member, in its local header and its directory entry, to collide.
    patched = blob.replace(b"files/b", second)
    with pytest.raises(DuplicateMember) as info:
        reader(patched).check()
    assert_sentence(info.value)


def test_unencrypted_members() -> None:
    plain = io.BytesIO()
    with zipfile.ZipFile(plain, "w") as zf:
        zf.writestr("manifest.json", json.dumps({"format": "backupsvc/1", "members": []}))
    with pytest.raises(UnencryptedMember) as info:
        reader(plain.getvalue()).check()
    assert_sentence(info.value)


def test_too_many_members_or_too_large() -> None:
    blob = build()
    with pytest.raises(ArchiveTooLarge):
        reader(blob, limits=Limits(max_members=3)).check()
    with pytest.raises(ArchiveTooLarge) as info:
        reader(blob, limits=Limits(max_total_size=1000)).check()
    assert_sentence(info.value)
    reader(blob, limits=Limits(max_members=4, max_total_size=10_000)).verify()


def test_compression_ratio_limit() -> None:
    blob = build({"files/zeros": bytes(4 * 1024 * 1024)})
    with pytest.raises(ArchiveTooLarge, match="zip bomb"):
        reader(blob).check()
    reader(blob, limits=Limits(max_ratio=10_000)).verify()


def test_expansion_beyond_the_declared_size_is_stopped_while_streaming() -> None:
    blob = build({"files/text": b"abc" * 100_000})
    r = reader(blob)
    r.check()
    directory = r._directory
    parse = directory.entry

    def lying(index: int):  # type: ignore[no-untyped-def]
        entry = parse(index)
        if entry.name == "files/text":
            entry.uncompressed = 1000  # as if directory and manifest both lied
        return entry

    directory.entry = lying  # type: ignore[method-assign,union-attr]
    with pytest.raises(ArchiveTooLarge, match="beyond its declared size"):
        r.verify()


def test_failed_extraction_leaves_nothing_behind(tmp_path: Path) -> None:
    blob = build({f"files/{i:03d}": os.urandom(5000) for i in range(30)})
    pos = central_offset(blob, "files/029")
    offset = struct.unpack_from("<I", blob, pos + 42)[0]
    bad = flip(blob, offset + 30 + 9 + 11 + 18 + 100)  # inside the last member's ciphertext
    dest = tmp_path / "out"
    with pytest.raises(CorruptArchive):
        reader(bad).extract_all(dest)
    assert not any(p.is_file() for p in dest.rglob("*"))


def test_extract_refuses_to_overwrite(tmp_path: Path) -> None:
    (tmp_path / "index.csv").write_text("mine")
    with pytest.raises(FileExistsError):
        reader(build()).extract_all(tmp_path)
    assert (tmp_path / "index.csv").read_text() == "mine"


def test_extract_does_not_follow_a_symlinked_folder_out_of_the_destination(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "files").symlink_to(outside, target_is_directory=True)
    with pytest.raises(UnsafePath):
        reader(build()).extract_all(dest)
    assert not list(outside.iterdir())
