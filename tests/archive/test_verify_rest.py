"""``verify_rest``: after using some members, verify the archive without reading them again."""

from __future__ import annotations

import struct

import pytest

from backups.archive import CorruptArchive
from tests.archive.test_rejections import MEMBERS, build, central_offset, flip, reader
from tests.support.decrypts import spy_on_decryption


def damaged(member: str) -> bytes:
    """The test archive with one byte of ``member``'s ciphertext flipped."""
    blob = build()
    offset = struct.unpack_from("<I", blob, central_offset(blob, member) + 42)[0]
    name_len, extra_len = struct.unpack_from("<HH", blob, offset + 26)
    csize = struct.unpack_from("<I", blob, central_offset(blob, member) + 20)[0]
    return flip(blob, offset + 30 + name_len + extra_len + csize // 2)


@pytest.fixture
def decrypted(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the members the reader decrypts from now on."""
    return spy_on_decryption(monkeypatch)


def test_members_read_to_their_end_are_not_read_again(decrypted: list[str]) -> None:
    r = reader(build())
    r.check()
    decrypted.clear()
    for name in MEMBERS:
        with r.open(name) as fh:
            assert fh.read() == MEMBERS[name]
    assert r.verify_rest()["format"]
    assert sorted(decrypted) == sorted(MEMBERS)  # each once, by open; the manifest when it was loaded


def test_a_member_read_in_part_is_verified_by_verify_rest(decrypted: list[str]) -> None:
    r = reader(damaged("data/docs/document.jsonl"))
    with r.open("data/docs/document.jsonl") as fh:
        fh.readline()  # the start decrypts; the damage is in the middle, the check at the end
    with r.open("index.csv") as fh:
        fh.read()
    decrypted.clear()
    with pytest.raises(CorruptArchive, match=r"document\.jsonl"):
        r.verify_rest()
    assert "index.csv" not in decrypted


def test_a_damaged_member_never_counts_as_verified() -> None:
    r = reader(damaged("files/0001"))
    with pytest.raises(CorruptArchive), r.open("files/0001") as fh:
        fh.read()
    with pytest.raises(CorruptArchive, match="files/0001"):
        r.verify_rest()


def test_verify_rest_without_reading_anything_is_verify() -> None:
    with pytest.raises(CorruptArchive, match=r"index\.csv"):
        reader(damaged("index.csv")).verify_rest()
    assert reader(build()).verify_rest()["format"]
