"""One member's content: local header checks, decryption, inflation and verification as it streams.

Content is checked while it streams: HMAC of the ciphertext, plaintext size (never beyond the
declared size: ``ArchiveTooLarge``) and SHA-256 against the manifest.
"""

from __future__ import annotations

import hashlib
import hmac
import io
from collections.abc import Iterator
from typing import Any

from . import zipfmt
from .compress import DECOMPRESS_ERRORS, new_decompressor
from .crypto import MAC_LEN, PWV_LEN, STRENGTHS, derive_keys, new_keystream, new_mac
from .directory import Source
from .errors import ArchiveError, ArchiveTooLarge, CorruptArchive, TruncatedArchive
from .manifest import MANIFEST_NAME

CHUNK_SIZE = 1 << 20


class BadVerifier(Exception):
    """Internal: the 2-byte password verifier of a member did not match."""


class BadMac(CorruptArchive):
    """A member's ciphertext does not match its HMAC (damaged, or the manifest under a wrong password)."""


def verifier_matches(src: Source, password: bytes, entry: zipfmt.CentralEntry, cd_offset: int) -> bool:
    """Whether the password's 2-byte verifier matches the member's (a wrong password: 1 in 65,536)."""
    try:
        start = data_start(src, entry, cd_offset)
        salt_len = STRENGTHS[entry.aes_strength][1]
        head = src.pread(start, salt_len + PWV_LEN)
        _enc, _auth, verifier = derive_keys(password, head[:salt_len], entry.aes_strength)
        return hmac.compare_digest(verifier, head[salt_len:])
    except ArchiveError:
        return False


def data_start(src: Source, entry: zipfmt.CentralEntry, cd_offset: int) -> int:
    """Check the local header against the directory entry; return where the member's data starts."""
    header = src.pread(entry.offset, zipfmt.LOCAL.size)
    if len(header) != zipfmt.LOCAL.size:
        raise TruncatedArchive("The archive is incomplete: a member header is cut short.")
    (sig, needed, flags, method, dos_time, dos_date, crc, csize, usize, name_len, extra_len) = zipfmt.LOCAL.unpack(
        header
    )
    damaged = CorruptArchive(f"The header of {entry.name!r} is damaged.")
    if (sig, needed, flags, method, dos_time, dos_date, crc) != (
        zipfmt.LOCAL_SIG,
        entry.needed,
        entry.flags,
        entry.method,
        entry.dos_time,
        entry.dos_date,
        0,
    ):
        raise damaged
    rest = src.pread(entry.offset + zipfmt.LOCAL.size, name_len + extra_len)
    if rest[:name_len] != entry.raw_name:
        raise CorruptArchive(f"The header of {entry.name!r} is damaged (its name differs from the directory).")
    try:
        extras = zipfmt.parse_extras(rest[name_len:])
    except ValueError:
        raise damaged from None
    zip64 = extras.pop(zipfmt.EXTRA_ZIP64, None)
    if extras != {zipfmt.EXTRA_AES: entry.extras[zipfmt.EXTRA_AES]}:
        raise damaged
    if zip64 is None:
        if (csize, usize) != (0, 0):
            raise damaged
    elif (csize, usize) != (zipfmt.MAX32, zipfmt.MAX32) or zip64 != bytes(16):
        raise damaged
    entry.local_zip64 = zip64 is not None
    start = entry.offset + zipfmt.LOCAL.size + name_len + extra_len
    if start + entry.compressed > cd_offset:
        raise CorruptArchive(f"The data of {entry.name!r} overlaps the archive's directory.")
    return start


def plaintext(
    src: Source, password: bytes, entry: zipfmt.CentralEntry, cd_offset: int, expected: str | None
) -> Iterator[bytes]:
    """Yield a member's plaintext, raising at the end unless MAC, size and SHA-256 all match.

    ``expected`` is the manifest's SHA-256 of the member; None (the manifest itself) means
    authenticity comes from the HMAC alone.
    """
    start = data_start(src, entry, cd_offset)
    salt_len = STRENGTHS[entry.aes_strength][1]
    head = src.pread(start, salt_len + PWV_LEN)
    enc_key, auth_key, verifier = derive_keys(password, head[:salt_len], entry.aes_strength)
    if not hmac.compare_digest(verifier, head[salt_len:]):
        if entry.name == MANIFEST_NAME:
            raise BadVerifier
        raise CorruptArchive(f"The member {entry.name!r} is damaged (its password check does not match).")
    keystream = new_keystream(enc_key)
    mac = new_mac(auth_key)
    digest = hashlib.sha256()
    inflater = new_decompressor() if entry.real_method == zipfmt.METHOD_DEFLATED else None
    position = start + salt_len + PWV_LEN
    remaining = entry.compressed - salt_len - PWV_LEN - MAC_LEN
    produced = 0
    limit = entry.uncompressed

    def produce(out: bytes) -> bytes:
        """Count and hash plaintext on its way out, never beyond the declared size."""
        nonlocal produced
        produced += len(out)
        if produced > limit:
            raise ArchiveTooLarge(f"The member {entry.name!r} expands beyond its declared size.")
        digest.update(out)
        return out

    try:
        while remaining:
            cipher = src.pread(position, min(CHUNK_SIZE, remaining))
            if not cipher:
                raise TruncatedArchive(f"The archive is incomplete: the data of {entry.name!r} is cut short.")
            position += len(cipher)
            remaining -= len(cipher)
            mac.update(cipher)
            plain = keystream.update(cipher)
            if inflater is None:
                yield produce(plain)
                continue
            while plain:
                # max_length bounds memory whatever the ratio; the size check stops bombs.
                out = inflater.decompress(plain, CHUNK_SIZE)
                plain = inflater.unconsumed_tail
                if out:
                    yield produce(out)
                if inflater.eof:
                    if plain or inflater.unused_data or remaining:
                        raise CorruptArchive(f"The member {entry.name!r} is damaged (data after its end).")
                    break
        if inflater is not None:
            out = inflater.flush()
            if out:
                yield produce(out)
    except (ArchiveTooLarge, *DECOMPRESS_ERRORS) as exc:
        # Decrypted garbage inflates to errors or to endless output. If the ciphertext does
        # not match its MAC, the real story is damage: say so rather than "too large".
        while remaining:
            cipher = src.pread(position, min(CHUNK_SIZE, remaining))
            if not cipher:
                break
            mac.update(cipher)
            position += len(cipher)
            remaining -= len(cipher)
        if remaining or not hmac.compare_digest(mac.digest()[:MAC_LEN], src.pread(position, MAC_LEN)):
            raise BadMac(f"The member {entry.name!r} is damaged: it does not match its authentication code.") from None
        if isinstance(exc, ArchiveTooLarge):
            raise
        raise CorruptArchive(f"The member {entry.name!r} is damaged (its compressed data is invalid).") from None
    descriptor = zipfmt.data_descriptor(entry.compressed, entry.uncompressed, entry.local_zip64)
    trailer = src.pread(position, MAC_LEN + len(descriptor))
    if len(trailer) != MAC_LEN + len(descriptor):
        raise TruncatedArchive(f"The archive is incomplete: the data of {entry.name!r} is cut short.")
    stored_mac = trailer[:MAC_LEN]
    if not hmac.compare_digest(mac.digest()[:MAC_LEN], stored_mac):
        raise BadMac(f"The member {entry.name!r} is damaged: it does not match its authentication code.")
    if trailer[MAC_LEN:] != descriptor:
        raise CorruptArchive(f"The data descriptor of {entry.name!r} is damaged.")
    if inflater is not None and not inflater.eof:
        raise CorruptArchive(f"The member {entry.name!r} is damaged (its compressed data ends early).")
    if produced != limit:
        raise CorruptArchive(f"The member {entry.name!r} is damaged (its size differs from the directory).")
    if expected is not None and digest.hexdigest() != expected:
        raise CorruptArchive(f"The member {entry.name!r} is damaged: its SHA-256 differs from the manifest.")


class MemberRaw(io.RawIOBase):
    """Raw stream over a plaintext generator (wrapped in a BufferedReader by ``open``)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._pending = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._pending = memoryview(chunk)
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n

    def close(self) -> None:
        close = getattr(self._chunks, "close", None)
        if close is not None:
            close()
        super().close()
