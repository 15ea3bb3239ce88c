"""Reader of "backupsvc/1" archives: validate everything, then stream, verify or extract.

Order of checks (cheap and password-free first, so a hostile file costs little):

1. end records and central directory (``UnsupportedFormat``, ``TruncatedArchive``,
   ``CorruptArchive``), member count (``ArchiveTooLarge``);
2. every entry: safe name (``UnsafePath``), regular file (``SymlinkMember``), unique name
   (``DuplicateMember``), WinZip AES (``UnencryptedMember``); data ranges must not overlap;
3. declared sizes and ratios (``ArchiveTooLarge``);
4. a manifest exists (else ``UnsupportedFormat``) and every header field is exactly what
   the writer writes (``CorruptArchive``: a flipped byte anywhere is caught);
5. the manifest: password (``WrongPassword``), authenticity (``CorruptArchive``), format
   (``UnsupportedFormat``), schema (``SchemaTooNew``), member list against the directory
   (``MissingMember``, ``UnexpectedMember``, ``CorruptArchive`` for differing sizes).

Only then is any member content returned. Content is checked while it streams: HMAC of the
ciphertext, plaintext size (never beyond the declared size: ``ArchiveTooLarge``) and SHA-256
against the manifest. ``extract_all`` removes everything it wrote when any check fails.
The directory-level checks (1-4) live in ``directory.py``.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import io
import json
import os
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, BinaryIO

from . import zipfmt
from .compress import DECOMPRESS_ERRORS, new_decompressor
from .crypto import MAC_LEN, PWV_LEN, STRENGTHS, derive_keys, new_keystream, new_mac, password_bytes
from .directory import Source, check_strict, overhead, read_directory
from .errors import (
    ArchiveError,
    ArchiveTooLarge,
    CorruptArchive,
    MissingMember,
    TruncatedArchive,
    UnexpectedMember,
    UnsafePath,
    UnsupportedFormat,
    WrongPassword,
)
from .manifest import MANIFEST_NAME, check_format, check_schema, parse_members

CHUNK_SIZE = 1 << 20
_MAX_COMMENT = 0xFFFF


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


class _BadVerifier(Exception):
    """Internal: the 2-byte password verifier of a member did not match."""


class _BadMac(CorruptArchive):
    """A member's ciphertext does not match its HMAC (damaged, or the manifest under a wrong password)."""


class ArchiveReader:
    """Open a backupsvc archive (path or seekable binary file object) with its password.

    ``manifest`` (property), ``verify()``, ``open(name)`` and ``extract_all(dest)`` each
    validate the archive's structure and manifest first (once) and raise an ``ArchiveError``
    subclass whose message is a sentence for the user.
    """

    def __init__(
        self,
        source: str | os.PathLike[str] | BinaryIO,
        password: str | bytes,
        *,
        limits: Limits | None = None,
        current_schema: Mapping[str, str] | None = None,
        workers: int | None = None,
    ) -> None:
        if isinstance(source, str | os.PathLike):
            self._file: BinaryIO = open(source, "rb")  # noqa: SIM115 - closed by close()
            self._owns_file = True
        else:
            self._file = source
            self._owns_file = False
        self._src = Source(self._file)
        self._password = password_bytes(password)
        self.limits = limits or Limits()
        self._current_schema = current_schema
        self._workers = workers or min(4, os.cpu_count() or 2)
        self._entries: dict[str, zipfmt.CentralEntry] | None = None
        self._manifest: dict[str, Any] | None = None
        self._expected: dict[str, tuple[int, str]] = {}
        self._cd_offset = 0

    # ----------------------------------------------------------------- public API

    def check(self) -> dict[str, Any]:
        """Validate structure and manifest (not member contents) and return the manifest."""
        return self.manifest

    @property
    def manifest(self) -> dict[str, Any]:
        """The validated manifest (structure and manifest checks done, member contents not yet)."""
        self._load()
        assert self._manifest is not None  # noqa: S101 - set by _load
        return self._manifest

    @property
    def names(self) -> list[str]:
        """Member names in archive order, ``manifest.json`` included."""
        self._load()
        assert self._entries is not None  # noqa: S101
        return list(self._entries)

    def verify(self) -> dict[str, Any]:
        """Check the whole archive, including every member's HMAC and SHA-256; return the manifest."""
        self._load()
        self._run_parallel(self._ordered_entries(), self._verify_entry)
        return self.manifest

    def open(self, name: str) -> io.BufferedReader:
        """Stream one member's plaintext; its HMAC, size and SHA-256 are checked at EOF.

        Data is handed out before the end is verified: read to EOF (or call ``verify()``
        first) before trusting it. Unknown names raise ``KeyError``.
        """
        self._load()
        assert self._entries is not None  # noqa: S101
        entry = self._entries[name]
        return io.BufferedReader(_MemberRaw(self._plaintext(entry)), buffer_size=CHUNK_SIZE)

    def read_bytes(self, name: str) -> bytes:
        """A whole (small) member, verified."""
        with self.open(name) as f:
            return f.read()

    def extract_all(self, dest_dir: str | os.PathLike[str]) -> dict[str, Any]:
        """Extract every member (``manifest.json`` included) under ``dest_dir``; return the manifest.

        Members are checked while they are written; on any failure everything written so far
        (files and the folders this call created) is removed before the error is raised.
        Existing files are never overwritten (``FileExistsError``), and nothing is written
        through a symbolic link.
        """
        self._load()
        os.makedirs(dest_dir, exist_ok=True)
        root = os.path.realpath(dest_dir)
        targets: dict[str, str] = {}
        safe_parents: set[str] = set()
        for name in self._ordered_entries():
            target = os.path.join(root, *name.split("/"))
            parent = os.path.dirname(target)
            if parent not in safe_parents:
                # Belt and braces after check_name: an existing symlinked folder inside the
                # destination must not lead outside it.
                real = os.path.realpath(parent)
                if real != root and not real.startswith(root + os.sep):
                    raise UnsafePath(f"The member {name!r} would be written outside the destination folder.")
                safe_parents.add(parent)
            if os.path.lexists(target):
                raise FileExistsError(f"{target} already exists; extract into an empty folder.")
            targets[name] = target
        lock = threading.Lock()
        created_dirs: list[str] = []
        known_dirs = {root}
        done: list[str] = []

        def extract(name: str) -> None:
            target = targets[name]
            with lock:
                missing = []
                parent = os.path.dirname(target)
                while parent not in known_dirs and not os.path.isdir(parent):
                    missing.append(parent)
                    parent = os.path.dirname(parent)
                for folder in reversed(missing):
                    os.mkdir(folder)
                    created_dirs.append(folder)
                known_dirs.add(os.path.dirname(target))
            # "x": O_CREAT | O_EXCL, so neither an existing file nor a symlink is followed.
            with open(target, "xb") as out:
                try:
                    for chunk in self._plaintext(self._entries[name]):  # type: ignore[index]
                        out.write(chunk)
                except BaseException:
                    out.close()
                    os.unlink(target)
                    raise
            with lock:
                done.append(target)

        try:
            self._run_parallel(list(targets), extract)
        except BaseException:
            for path in done:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
            for folder in reversed(created_dirs):
                with contextlib.suppress(OSError):  # not empty: something else was put there
                    os.rmdir(folder)
            raise
        return self.manifest

    def close(self) -> None:
        """Close the file if the reader opened it."""
        if self._owns_file:
            self._file.close()

    def __enter__(self) -> ArchiveReader:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # ----------------------------------------------------------------- structure

    def _load(self) -> None:
        if self._manifest is not None:
            return
        entries, self._cd_offset = read_directory(self._src, self.limits.max_members)
        self._check_limits(entries)
        manifest_entry = entries.get(MANIFEST_NAME)
        if manifest_entry is None:
            raise UnsupportedFormat("This file is not a backupsvc backup: it has no manifest.")
        for entry in entries.values():
            check_strict(entry)
        if manifest_entry.uncompressed > self.limits.max_manifest_size:
            raise ArchiveTooLarge("The backup's manifest is larger than this server accepts.")
        body = self._read_manifest(manifest_entry, entries)
        try:
            manifest = json.loads(body)
        except ValueError:
            raise UnsupportedFormat("This file is not a backupsvc backup: its manifest is not readable.") from None
        if not isinstance(manifest, dict):
            raise UnsupportedFormat("This file is not a backupsvc backup: its manifest is not readable.")
        check_format(manifest)
        check_schema(manifest.get("schema"), self._current_schema)
        expected = parse_members(manifest)
        present = [name for name in entries if name != MANIFEST_NAME]
        missing = [name for name in expected if name not in entries]
        if missing:
            raise MissingMember(
                f"The backup is incomplete: {len(missing)} file(s) listed in its manifest are missing "
                f"(first: {missing[0]!r})."
            )
        unexpected = [name for name in present if name not in expected]
        if unexpected:
            raise UnexpectedMember(
                f"The backup contains {len(unexpected)} file(s) its manifest does not list "
                f"(first: {unexpected[0]!r}); it may have been tampered with."
            )
        for name, (size, _sha) in expected.items():
            if entries[name].uncompressed != size:
                raise CorruptArchive(f"The size of {name!r} in the archive directory differs from the manifest.")
        self._entries = entries
        self._expected = expected
        self._manifest = manifest

    def _check_limits(self, entries: Mapping[str, zipfmt.CentralEntry]) -> None:
        limits = self.limits
        total = sum(e.uncompressed for e in entries.values())
        if total > limits.max_total_size:
            raise ArchiveTooLarge(
                f"The backup would expand to {total:,} bytes, more than the {limits.max_total_size:,} "
                "this server accepts."
            )
        for entry in entries.values():
            if entry.uncompressed < limits.ratio_min_size:
                continue
            stored = max(1, entry.compressed - overhead(entry))
            if entry.uncompressed / stored > limits.max_ratio:
                raise ArchiveTooLarge(
                    f"The member {entry.name!r} expands {entry.uncompressed / stored:.0f} times, more than "
                    f"the {limits.max_ratio:g} allowed; the file looks like a zip bomb."
                )

    def _read_manifest(self, entry: zipfmt.CentralEntry, entries: Mapping[str, zipfmt.CentralEntry]) -> bytes:
        """Decrypt the manifest, telling a wrong password apart from a damaged manifest."""
        verifier_ok = True
        try:
            return b"".join(self._plaintext(entry, expected=None))
        except _BadVerifier:
            verifier_ok = False
        except _BadMac:
            pass
        # The manifest did not open. With the right password every other member's verifier
        # matches; with a wrong one each matches only by a 1 in 65,536 chance.
        others = [e for name, e in entries.items() if name != MANIFEST_NAME][:4]
        if others:
            matches = sum(self._verifier_matches(e) for e in others)
            if matches * 2 > len(others):
                raise CorruptArchive("The backup's manifest is damaged: it does not match its authentication code.")
            raise WrongPassword("The password is not correct for this backup.")
        if verifier_ok:
            raise CorruptArchive("The backup's manifest is damaged: it does not match its authentication code.")
        raise WrongPassword("The password is not correct for this backup.")

    def _verifier_matches(self, entry: zipfmt.CentralEntry) -> bool:
        try:
            start = self._data_start(entry)
            salt_len = STRENGTHS[entry.aes_strength][1]
            head = self._src.pread(start, salt_len + PWV_LEN)
            _enc, _auth, verifier = derive_keys(self._password, head[:salt_len], entry.aes_strength)
            return hmac.compare_digest(verifier, head[salt_len:])
        except ArchiveError:
            return False

    # ----------------------------------------------------------------- content

    def _ordered_entries(self) -> list[str]:
        assert self._entries is not None  # noqa: S101
        return [e.name for e in sorted(self._entries.values(), key=lambda e: e.offset)]

    def _verify_entry(self, name: str) -> None:
        assert self._entries is not None  # noqa: S101
        for _chunk in self._plaintext(self._entries[name]):
            pass

    def _run_parallel(self, names: list[str], action: Any) -> None:
        """Run ``action(name)`` over ``names`` on worker threads; stop and re-raise the first error.

        PBKDF2, AES, inflate and hashing all release the GIL, so members really run in parallel.
        """
        if self._workers <= 1 or len(names) <= 1:
            for name in names:
                action(name)
            return
        lock = threading.Lock()
        items = iter(names)
        errors: list[BaseException] = []

        def run() -> None:
            while True:
                with lock:
                    if errors:
                        return
                    name = next(items, None)
                if name is None:
                    return
                try:
                    action(name)
                except BaseException as exc:  # re-raised in the calling thread
                    with lock:
                        errors.append(exc)
                    return

        threads = [threading.Thread(target=run, daemon=True) for _ in range(min(self._workers, len(names)))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            raise errors[0]

    def _data_start(self, entry: zipfmt.CentralEntry) -> int:
        """Check the local header against the directory entry; return where the member's data starts."""
        header = self._src.pread(entry.offset, zipfmt.LOCAL.size)
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
        rest = self._src.pread(entry.offset + zipfmt.LOCAL.size, name_len + extra_len)
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
        if start + entry.compressed > self._cd_offset:
            raise CorruptArchive(f"The data of {entry.name!r} overlaps the archive's directory.")
        return start

    def _plaintext(self, entry: zipfmt.CentralEntry, expected: str | bool | None = True) -> Iterator[bytes]:
        """Yield a member's plaintext, raising at the end unless MAC, size and SHA-256 all match.

        ``expected`` True means "the manifest's SHA-256"; None (the manifest itself) means
        authenticity comes from the HMAC alone.
        """
        if expected is True:
            expected = self._expected[entry.name][1] if entry.name != MANIFEST_NAME else None
        src = self._src
        start = self._data_start(entry)
        salt_len = STRENGTHS[entry.aes_strength][1]
        head = src.pread(start, salt_len + PWV_LEN)
        enc_key, auth_key, verifier = derive_keys(self._password, head[:salt_len], entry.aes_strength)
        if not hmac.compare_digest(verifier, head[salt_len:]):
            if entry.name == MANIFEST_NAME:
                raise _BadVerifier
            raise CorruptArchive(f"The member {entry.name!r} is damaged (its password check does not match).")
        keystream = new_keystream(enc_key)
        mac = new_mac(auth_key)
        digest = hashlib.sha256()
        inflater = new_decompressor() if entry.real_method == zipfmt.METHOD_DEFLATED else None
        position = start + salt_len + PWV_LEN
        remaining = entry.compressed - salt_len - PWV_LEN - MAC_LEN
        produced = 0
        limit = entry.uncompressed

        def overflow() -> ArchiveTooLarge:
            return ArchiveTooLarge(f"The member {entry.name!r} expands beyond its declared size.")

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
                    produced += len(plain)
                    if produced > limit:
                        raise overflow()
                    digest.update(plain)
                    yield plain
                    continue
                while plain:
                    # max_length bounds memory whatever the ratio; the size check stops bombs.
                    out = inflater.decompress(plain, CHUNK_SIZE)
                    plain = inflater.unconsumed_tail
                    if out:
                        produced += len(out)
                        if produced > limit:
                            raise overflow()
                        digest.update(out)
                        yield out
                    if inflater.eof:
                        if plain or inflater.unused_data or remaining:
                            raise CorruptArchive(f"The member {entry.name!r} is damaged (data after its end).")
                        break
            if inflater is not None:
                out = inflater.flush()
                if out:
                    produced += len(out)
                    if produced > limit:
                        raise overflow()
                    digest.update(out)
                    yield out
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
                raise _BadMac(
                    f"The member {entry.name!r} is damaged: it does not match its authentication code."
                ) from None
            if isinstance(exc, ArchiveTooLarge):
                raise
            raise CorruptArchive(f"The member {entry.name!r} is damaged (its compressed data is invalid).") from None
        descriptor = zipfmt.data_descriptor(entry.compressed, entry.uncompressed, entry.local_zip64)
        trailer = src.pread(position, MAC_LEN + len(descriptor))
        if len(trailer) != MAC_LEN + len(descriptor):
            raise TruncatedArchive(f"The archive is incomplete: the data of {entry.name!r} is cut short.")
        stored_mac = trailer[:MAC_LEN]
        if not hmac.compare_digest(mac.digest()[:MAC_LEN], stored_mac):
            raise _BadMac(f"The member {entry.name!r} is damaged: it does not match its authentication code.")
        if trailer[MAC_LEN:] != descriptor:
            raise CorruptArchive(f"The data descriptor of {entry.name!r} is damaged.")
        if inflater is not None and not inflater.eof:
            raise CorruptArchive(f"The member {entry.name!r} is damaged (its compressed data ends early).")
        if produced != limit:
            raise CorruptArchive(f"The member {entry.name!r} is damaged (its size differs from the directory).")
        if expected is not None and digest.hexdigest() != expected:
            raise CorruptArchive(f"The member {entry.name!r} is damaged: its SHA-256 differs from the manifest.")


class _MemberRaw(io.RawIOBase):
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
