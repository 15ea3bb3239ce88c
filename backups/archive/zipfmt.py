"""Zip container records (APPNOTE 6.3.x) as the archive uses them: AES members, data descriptors, zip64.

Only what backupsvc writes and reads is here. Field layouts follow APPNOTE.TXT section 4.3.
"""

from __future__ import annotations

import struct
import time
from dataclasses import dataclass

LOCAL_SIG = 0x04034B50
CENTRAL_SIG = 0x02014B50
DESCRIPTOR_SIG = 0x08074B50
EOCD_SIG = 0x06054B50
ZIP64_EOCD_SIG = 0x06064B50
ZIP64_LOCATOR_SIG = 0x07064B50

LOCAL = struct.Struct("<IHHHHHIIIHH")  # 30 bytes
CENTRAL = struct.Struct("<IHHHHHHIIIHHHHHII")  # 46 bytes
EOCD = struct.Struct("<IHHHHIIH")  # 22 bytes
ZIP64_EOCD = struct.Struct("<IQHHIIQQQQ")  # 56 bytes
ZIP64_LOCATOR = struct.Struct("<IIQI")  # 20 bytes
EXTRA_HEADER = struct.Struct("<HH")

METHOD_STORED = 0
METHOD_DEFLATED = 8
METHOD_AES = 99
FLAG_ENCRYPTED = 0x0001
FLAG_DESCRIPTOR = 0x0008
FLAG_UTF8 = 0x0800
FLAG_STRONG = 0x0040  # PKWARE strong encryption: never used by WinZip AES
EXTRA_ZIP64 = 0x0001
EXTRA_AES = 0x9901
AES_VENDOR = b"AE"

VERSION_NEEDED = 51  # 5.1: what WinZip writes for AES members (zip64 alone needs 4.5)
VERSION_MADE_BY = (3 << 8) | 63  # made by: Unix, spec 6.3, so external attributes carry a mode
FILE_MODE = 0o100644
MAX32 = 0xFFFFFFFF
MAX16 = 0xFFFF


def dos_datetime(when: float | None = None) -> tuple[int, int]:
    """(time, date) in MS-DOS format, local time as zip tools expect; clamped to the 1980 epoch."""
    t = time.localtime(when)
    year = max(1980, min(2107, t.tm_year))
    dos_time = (t.tm_hour << 11) | (t.tm_min << 5) | (t.tm_sec // 2)
    dos_date = ((year - 1980) << 9) | (t.tm_mon << 5) | t.tm_mday
    return dos_time, dos_date


def aes_extra(method: int, strength: int = 3, vendor_version: int = 2) -> bytes:
    """The 0x9901 extra field: AE-2 (CRC not stored), vendor "AE", strength, the real method."""
    return struct.pack("<HHH2sBH", EXTRA_AES, 7, vendor_version, AES_VENDOR, strength, method)


def local_header(name: bytes, method: int, dos_time: int, dos_date: int, zip64: bool) -> bytes:
    """Local file header of a streamed AES member; sizes follow in the data descriptor.

    With ``zip64`` the sizes are 0xFFFFFFFF plus a zip64 extra of zeros, which tells readers
    that the data descriptor carries 8-byte sizes (APPNOTE 4.3.9.2).
    """
    extra = aes_extra(method)
    size = 0
    if zip64:
        extra = struct.pack("<HHQQ", EXTRA_ZIP64, 16, 0, 0) + extra
        size = MAX32
    flags = FLAG_ENCRYPTED | FLAG_DESCRIPTOR | FLAG_UTF8
    head = LOCAL.pack(
        LOCAL_SIG, VERSION_NEEDED, flags, METHOD_AES, dos_time, dos_date, 0, size, size, len(name), len(extra)
    )
    return head + name + extra


def data_descriptor(compressed: int, uncompressed: int, zip64: bool) -> bytes:
    """Data descriptor with a zero CRC (AE-2 stores none)."""
    if zip64:
        return struct.pack("<IIQQ", DESCRIPTOR_SIG, 0, compressed, uncompressed)
    return struct.pack("<IIII", DESCRIPTOR_SIG, 0, compressed, uncompressed)


def central_header(
    name: bytes,
    method: int,
    dos_time: int,
    dos_date: int,
    compressed: int,
    uncompressed: int,
    offset: int,
    zip64_limit: int = MAX32,
) -> bytes:
    """Central directory entry; values at or above ``zip64_limit`` move into a zip64 extra."""
    z64 = b""
    fields = []
    if uncompressed >= zip64_limit:
        fields.append(uncompressed)
        uncompressed = MAX32
    if compressed >= zip64_limit:
        fields.append(compressed)
        compressed = MAX32
    if offset >= zip64_limit:
        fields.append(offset)
        offset = MAX32
    if fields:
        z64 = struct.pack(f"<HH{len(fields)}Q", EXTRA_ZIP64, 8 * len(fields), *fields)
    extra = z64 + aes_extra(method)
    flags = FLAG_ENCRYPTED | FLAG_DESCRIPTOR | FLAG_UTF8
    head = CENTRAL.pack(
        CENTRAL_SIG,
        VERSION_MADE_BY,
        VERSION_NEEDED,
        flags,
        METHOD_AES,
        dos_time,
        dos_date,
        0,
        compressed,
        uncompressed,
        len(name),
        len(extra),
        0,
        0,
        0,
        FILE_MODE << 16,
        offset,
    )
    return head + name + extra


def end_records(count: int, cd_offset: int, cd_size: int, zip64_limit: int = MAX32, count_limit: int = MAX16) -> bytes:
    """End of central directory, preceded by the zip64 record and locator when needed."""
    out = b""
    if count >= count_limit or cd_offset >= zip64_limit or cd_size >= zip64_limit:
        z64_offset = cd_offset + cd_size
        out += ZIP64_EOCD.pack(ZIP64_EOCD_SIG, 44, VERSION_MADE_BY, 45, 0, 0, count, count, cd_size, cd_offset)
        out += ZIP64_LOCATOR.pack(ZIP64_LOCATOR_SIG, 0, z64_offset, 1)
        count16 = MAX16
        cd_offset, cd_size = MAX32, MAX32
    else:
        count16 = count
    return out + EOCD.pack(EOCD_SIG, 0, 0, count16, count16, cd_size, cd_offset, 0)


def parse_extras(data: bytes) -> dict[int, bytes]:
    """Extra field blocks by header id; raises ValueError when they overrun or repeat."""
    found: dict[int, bytes] = {}
    pos = 0
    while pos + 4 <= len(data):
        header_id, size = EXTRA_HEADER.unpack_from(data, pos)
        pos += 4
        if pos + size > len(data) or header_id in found:
            raise ValueError("malformed extra field")
        found[header_id] = data[pos : pos + size]
        pos += size
    return found


@dataclass(slots=True)
class CentralEntry:
    """One central directory entry, as parsed (values from zip64 extras already applied).

    Slotted: a reader keeps one per member for the whole restore (no per-instance ``__dict__``).
    """

    name: str
    raw_name: bytes
    made_by: int
    needed: int
    flags: int
    method: int
    crc: int
    compressed: int
    uncompressed: int
    external_attr: int
    offset: int
    extras: dict[int, bytes]
    dos_time: int = 0
    dos_date: int = 0
    internal_attr: int = 0
    comment_len: int = 0
    local_zip64: bool = False
    aes_version: int = 0
    aes_strength: int = 0
    real_method: int = -1

    @property
    def unix_mode(self) -> int | None:
        """The Unix mode when the entry was made on Unix, else None."""
        if self.made_by >> 8 == 3:
            return self.external_attr >> 16
        return None
