"""The zip structure of a backupsvc archive: end records, central directory and their checks.

Everything here runs before a single member is decrypted, so a hostile file costs little:
no password, no decompression, only the directory is read.
"""

from __future__ import annotations

import io
import os
import stat
import struct
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from . import zipfmt
from .crypto import MAC_LEN, PWV_LEN, STRENGTHS
from .errors import (
    CorruptArchive,
    SymlinkMember,
    TruncatedArchive,
    UnencryptedMember,
    UnsafePath,
    UnsupportedFormat,
)
from .names import check_name

_MAX_COMMENT = 0xFFFF
DIRECTORY_CHUNK = 1 << 20


@dataclass(frozen=True)
class Limits:
    """Bounds a backup must respect before anything is extracted (zip-bomb protection).

    ``max_ratio`` (uncompressed / stored size) is only applied to members of at least
    ``ratio_min_size`` bytes: tiny members legitimately reach high ratios and cannot hurt.
    """

    max_total_size: int = 64 * 1024**3
    max_ratio: float = 200.0
    max_members: int = 1_000_000
    ratio_min_size: int = 1024 * 1024
    max_manifest_size: int = 256 * 1024 * 1024


class Source:
    """Positional reads from a path or a seekable binary file object, safe across threads."""

    def __init__(self, fileobj: BinaryIO) -> None:
        self._file = fileobj
        self._lock = threading.Lock()
        self._fd: int | None = None
        # A spooled temporary file still in memory (what an S3 object is downloaded into, also
        # inside a Django File) is read where it is: asking it for a descriptor would write it
        # to the temporary folder first, and on a full disk lose its content.
        inner = getattr(fileobj, "file", fileobj)
        if not (isinstance(inner, tempfile.SpooledTemporaryFile) and not inner._rolled):  # type: ignore[attr-defined]
            try:
                self._fd = fileobj.fileno()
                self.size = os.fstat(self._fd).st_size
                os.pread(self._fd, 0, 0)
            except (AttributeError, OSError, io.UnsupportedOperation):
                self._fd = None
        if self._fd is None:
            self.size = fileobj.seek(0, io.SEEK_END)

    def pread(self, offset: int, size: int) -> bytes:
        """Up to ``size`` bytes at ``offset`` (fewer only at the end of the file)."""
        if self._fd is not None:
            data = os.pread(self._fd, size, offset)
            while len(data) < size:  # pread may return short reads; loop until EOF
                more = os.pread(self._fd, size - len(data), offset + len(data))
                if not more:
                    break
                data += more
            return data
        with self._lock:
            self._file.seek(offset)
            return self._file.read(size)


def find_end(src: Source) -> tuple[int, int, int, int]:
    """Locate the end records; return (entry count, cd offset, cd size, end of cd)."""
    size = src.size
    head = src.pread(0, 4)
    if head not in (b"PK\x03\x04", b"PK\x05\x06"):
        raise UnsupportedFormat("This file is not a zip archive, so it cannot be a backupsvc backup.")
    tail_start = max(0, size - zipfmt.EOCD.size - _MAX_COMMENT)
    tail = src.pread(tail_start, size - tail_start)
    sig = struct.pack("<I", zipfmt.EOCD_SIG)
    pos = tail.rfind(sig)
    eocd = None
    while pos >= 0:
        if pos + zipfmt.EOCD.size <= len(tail):
            fields = zipfmt.EOCD.unpack_from(tail, pos)
            if pos + zipfmt.EOCD.size + fields[7] == len(tail):
                eocd = fields
                break
        pos = tail.rfind(sig, 0, pos)
    if eocd is None:
        if _damaged_end(tail, src.size):
            raise CorruptArchive("The archive's end record is damaged.")
        raise TruncatedArchive("The archive is incomplete: it ends early (an interrupted download or upload?).")
    eocd_pos = tail_start + pos
    _sig, disk, cd_disk, n_disk, count, cd_size, cd_offset, _comment = eocd
    end_of_cd = eocd_pos
    if count == zipfmt.MAX16 or cd_size == zipfmt.MAX32 or cd_offset == zipfmt.MAX32:
        loc_pos = eocd_pos - zipfmt.ZIP64_LOCATOR.size
        locator = src.pread(loc_pos, zipfmt.ZIP64_LOCATOR.size) if loc_pos >= 0 else b""
        if len(locator) == zipfmt.ZIP64_LOCATOR.size and locator[:4] == b"PK\x06\x07":
            _s, _z_disk, z_offset, _disks = zipfmt.ZIP64_LOCATOR.unpack(locator)
            record = src.pread(z_offset, zipfmt.ZIP64_EOCD.size)
            if (
                len(record) != zipfmt.ZIP64_EOCD.size
                or record[:4] != b"PK\x06\x06"
                or z_offset + zipfmt.ZIP64_EOCD.size > loc_pos
            ):
                raise CorruptArchive("The archive's zip64 end record is damaged.")
            (_s, _rs, _mb, _vn, disk, cd_disk, n_disk, count, cd_size, cd_offset) = zipfmt.ZIP64_EOCD.unpack(record)
            end_of_cd = z_offset
    if disk != 0 or cd_disk != 0 or n_disk != count:
        raise CorruptArchive("The archive's end record is damaged (or belongs to a split archive).")
    if cd_offset + cd_size != end_of_cd:
        raise CorruptArchive("The archive's central directory is damaged (its position does not add up).")
    return count, cd_offset, cd_size, end_of_cd


def _damaged_end(tail: bytes, size: int) -> bool:
    """Whether the file ends with an end record whose signature alone is damaged (not a truncation)."""
    if len(tail) < zipfmt.EOCD.size:
        return False
    fields = zipfmt.EOCD.unpack_from(tail, len(tail) - zipfmt.EOCD.size)
    _sig, disk, cd_disk, n_disk, count, cd_size, cd_offset, _comment = fields
    eocd_pos = size - zipfmt.EOCD.size
    if disk or cd_disk or n_disk != count:
        return False
    if cd_offset == zipfmt.MAX32:
        return tail[-42:-38] == b"PK\x06\x07"
    return cd_offset + cd_size == eocd_pos


def iter_central(src: Source, cd_offset: int, cd_size: int, count: int) -> Iterator[tuple[int, zipfmt.CentralEntry]]:
    """(position in the file, entry) of each of the ``count`` directory entries, read in chunks.

    Raises ``CorruptArchive`` when the directory holds more bytes than the entries.
    """
    end = cd_offset + cd_size
    buf = b""
    base = cd_offset  # file position of buf[0]
    pos = 0

    def ensure(n: int) -> None:
        nonlocal buf, base, pos
        if len(buf) - pos >= n or base + len(buf) >= end:
            return
        rest = buf[pos:]
        base += pos
        pos = 0
        want = min(max(DIRECTORY_CHUNK, n - len(rest)), end - base - len(rest))
        more = src.pread(base + len(rest), want)
        if len(more) != want:
            raise TruncatedArchive("The archive is incomplete: its central directory is cut short.")
        buf = rest + more

    for _ in range(count):
        ensure(zipfmt.CENTRAL.size)
        if len(buf) - pos >= zipfmt.CENTRAL.size:
            name_len, extra_len, comment_len = zipfmt.CENTRAL.unpack_from(buf, pos)[10:13]
            ensure(zipfmt.CENTRAL.size + name_len + extra_len + comment_len)
        entry, after = parse_central(buf, pos)
        yield base + pos, entry
        pos = after
    if base + pos != end:
        raise CorruptArchive("The archive's central directory is damaged (unexpected trailing bytes).")


def check_entry(entry: zipfmt.CentralEntry) -> None:
    """A member's own checks: a safe name of a regular file, encrypted as backups are."""
    name = entry.name
    check_name(name)
    mode = entry.unix_mode
    if mode is not None and stat.S_IFMT(mode):
        if stat.S_ISLNK(mode):
            raise SymlinkMember(f"The member {name!r} is a symbolic link; backups never contain links.")
        if not stat.S_ISREG(mode):
            raise UnsafePath(f"The member {name!r} is not a regular file.")


def overhead(entry: zipfmt.CentralEntry) -> int:
    """Bytes of an AES member's stored data that are not ciphertext (salt, verifier, MAC)."""
    return STRENGTHS.get(entry.aes_strength, (0, 0))[1] + PWV_LEN + MAC_LEN


def parse_central(directory: bytes, pos: int) -> tuple[zipfmt.CentralEntry, int]:
    """Parse the directory entry at ``pos`` (zip64 values applied); return it and the next position."""
    if pos + zipfmt.CENTRAL.size > len(directory):
        raise CorruptArchive("The archive's central directory is damaged (it ends inside an entry).")
    (
        sig,
        made_by,
        needed,
        flags,
        method,
        dos_time,
        dos_date,
        crc,
        compressed,
        uncompressed,
        name_len,
        extra_len,
        comment_len,
        disk,
        internal,
        external,
        offset,
    ) = zipfmt.CENTRAL.unpack_from(directory, pos)
    if sig != zipfmt.CENTRAL_SIG:
        raise CorruptArchive("The archive's central directory is damaged (bad entry signature).")
    pos += zipfmt.CENTRAL.size
    end = pos + name_len + extra_len + comment_len
    if end > len(directory):
        raise CorruptArchive("The archive's central directory is damaged (an entry overruns it).")
    raw_name = directory[pos : pos + name_len]
    try:
        extras = zipfmt.parse_extras(directory[pos + name_len : pos + name_len + extra_len])
    except ValueError:
        raise CorruptArchive("The archive's central directory is damaged (bad extra field).") from None
    try:
        name = raw_name.decode("utf-8") if flags & zipfmt.FLAG_UTF8 else raw_name.decode("cp437")
    except UnicodeDecodeError:
        raise UnsafePath("A member name is not valid UTF-8 text.") from None
    if zipfmt.EXTRA_ZIP64 in extras:
        data = extras[zipfmt.EXTRA_ZIP64]
        values = []
        try:
            at = 0
            for value in (uncompressed, compressed, offset):
                if value == zipfmt.MAX32:
                    values.append(struct.unpack_from("<Q", data, at)[0])
                    at += 8
                else:
                    values.append(value)
        except struct.error:
            raise CorruptArchive("The archive's central directory is damaged (bad zip64 field).") from None
        uncompressed, compressed, offset = values
    if disk != 0:
        raise CorruptArchive("The archive's central directory is damaged (or belongs to a split archive).")
    entry = zipfmt.CentralEntry(
        name=name,
        raw_name=raw_name,
        made_by=made_by,
        needed=needed,
        flags=flags,
        method=method,
        crc=crc,
        compressed=compressed,
        uncompressed=uncompressed,
        external_attr=external,
        offset=offset,
        extras=extras,
        dos_time=dos_time,
        dos_date=dos_date,
        internal_attr=internal,
        comment_len=comment_len,
    )
    aes = extras.get(zipfmt.EXTRA_AES)
    if aes is not None and len(aes) == 7:
        version, vendor, strength, real_method = struct.unpack("<H2sBH", aes)
        if vendor == zipfmt.AES_VENDOR:
            entry.aes_version, entry.aes_strength, entry.real_method = version, strength, real_method
    return entry, end


def check_encryption(entry: zipfmt.CentralEntry) -> None:
    name = entry.name
    if not entry.flags & zipfmt.FLAG_ENCRYPTED:
        raise UnencryptedMember(f"The member {name!r} is not encrypted; every file of a backup must be.")
    if entry.method != zipfmt.METHOD_AES or entry.flags & zipfmt.FLAG_STRONG or not entry.aes_version:
        raise UnencryptedMember(f"The member {name!r} is not encrypted with AES (WinZip AES), as backups are.")
    if entry.aes_version not in (1, 2) or entry.aes_strength not in STRENGTHS:
        raise UnsupportedFormat(f"The member {name!r} uses an unknown variant of AES encryption.")
    if entry.real_method not in (zipfmt.METHOD_STORED, zipfmt.METHOD_DEFLATED):
        raise UnsupportedFormat(f"The member {name!r} uses an unsupported compression method.")
    if entry.aes_version == 1:
        # AE-1 authenticates the plaintext through a CRC we do not check; backups are AE-2.
        raise UnsupportedFormat(f"The member {name!r} uses AE-1 encryption; backups use AE-2.")
    if entry.compressed < overhead(entry):
        raise CorruptArchive(f"The entry of {name!r} is damaged (impossible size).")


def check_strict(entry: zipfmt.CentralEntry) -> None:
    """Every directory field must be what the backupsvc writer writes: any other value is damage.

    (Integrity of the content comes from HMAC and SHA-256; this catches damage to the
    metadata around it, so that a flipped byte anywhere is reported.)
    """
    expected_flags = zipfmt.FLAG_ENCRYPTED | zipfmt.FLAG_DESCRIPTOR | zipfmt.FLAG_UTF8
    if (
        entry.made_by != zipfmt.VERSION_MADE_BY
        or entry.needed != zipfmt.VERSION_NEEDED
        or entry.flags != expected_flags
        or entry.crc != 0
        or entry.internal_attr != 0
        or entry.external_attr != zipfmt.FILE_MODE << 16
        or entry.comment_len != 0
        or set(entry.extras) - {zipfmt.EXTRA_ZIP64, zipfmt.EXTRA_AES}
    ):
        raise CorruptArchive(f"The directory entry of {entry.name!r} is damaged.")
