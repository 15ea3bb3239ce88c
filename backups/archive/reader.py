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
against the manifest (``members.py``). ``extract_all`` removes everything it wrote when any
check fails (``extract.py``). The reader remembers (a byte a member) which members passed
every check, read to their end through ``open``, ``verify`` or ``extract_all``:
``verify_rest`` checks only the others, so one pass over the archive can both use and verify
it. The directory-level checks (1-4) live in ``directory.py`` and ``index.py``.

Memory: a reader keeps about 100 bytes a member (``index.py``), whatever their number: the
central directory is read in chunks and stays in the file, and the manifest's member list is
parsed item by item as it streams (``manifest.read_manifest``).
"""

from __future__ import annotations

import io
import os
from array import array
from collections.abc import Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any, BinaryIO

from . import zipfmt
from .crypto import password_bytes
from .directory import Limits, Source
from .errors import (
    ArchiveTooLarge,
    CorruptArchive,
    DuplicateMember,
    MissingMember,
    UnexpectedMember,
    UnsupportedFormat,
    WrongPassword,
)
from .extract import extract_members, run_parallel
from .index import Directory, ListedMembers, Manifest, MemberMap, Names, read_directory
from .manifest import check_format, check_member, check_schema, read_manifest
from .members import CHUNK_SIZE, BadMac, BadVerifier, MemberRaw, plaintext, verifier_matches

__all__ = ["CHUNK_SIZE", "ArchiveReader", "Limits"]


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
        self._directory: Directory | None = None
        self._manifest: Manifest | None = None
        self._verified = bytearray()  # 1 where a member passed every check (read to its end)

    # ----------------------------------------------------------------- public API

    def check(self) -> dict[str, Any]:
        """Validate structure and manifest (not member contents) and return the manifest."""
        return self.manifest

    @property
    def manifest(self) -> dict[str, Any]:
        """The validated manifest (structure and manifest checks done, member contents not yet).

        Its ``"members"`` is a read-only sequence of ``{path, size, sha256}`` made on demand
        from the reader's index (a list when the manifest is serialised).
        """
        self._load()
        assert self._manifest is not None  # noqa: S101 - set by _load
        return self._manifest

    @property
    def names(self) -> Names:
        """Member names in archive order, ``manifest.json`` included (``name in names`` is a lookup)."""
        return Names(self._loaded())

    @property
    def members(self) -> MemberMap:
        """The manifest's member list as a mapping {path: (size, sha256)}, ``manifest.json`` not included."""
        return MemberMap(self._loaded())

    def verify(self) -> dict[str, Any]:
        """Check the whole archive, including every member's HMAC and SHA-256; return the manifest."""
        directory = self._loaded()
        self._verify_members(directory.in_offset_order())
        return self.manifest

    def verify_rest(self) -> dict[str, Any]:
        """Check every member not yet read to its end (by ``open``, ``verify`` or
        ``extract_all``): after it, the whole archive is verified, each member once."""
        directory = self._loaded()
        verified = self._verified
        self._verify_members(array("I", (i for i in directory.in_offset_order() if not verified[i])))
        return self.manifest

    def open(self, name: str) -> io.BufferedReader:
        """Stream one member's plaintext; its HMAC, size and SHA-256 are checked at EOF.

        Data is handed out before the end is verified: read to EOF (or call ``verify()``
        first) before trusting it; a member read to EOF counts as verified for
        ``verify_rest``. Unknown names raise ``KeyError``.
        """
        index = self._loaded().find(name)
        if index is None:
            raise KeyError(name)
        return io.BufferedReader(MemberRaw(self._stream(index)), buffer_size=CHUNK_SIZE)

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
        directory = self._loaded()

        def members() -> Iterator[tuple[int, str]]:
            return ((index, directory.name(index)) for index in directory.in_offset_order())

        extract_members(dest_dir, members, self._stream, self._threads(len(directory)))
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

    def _loaded(self) -> Directory:
        self._load()
        assert self._directory is not None  # noqa: S101 - set by _load
        return self._directory

    def _load(self) -> None:
        if self._manifest is not None:
            return
        limits = self.limits
        directory = read_directory(self._src, limits)
        if directory.total > limits.max_total_size:
            raise ArchiveTooLarge(
                f"The backup would expand to {directory.total:,} bytes, more than the "
                f"{limits.max_total_size:,} this server accepts."
            )
        if directory.ratio_error is not None:
            raise directory.ratio_error
        if directory.manifest < 0:
            raise UnsupportedFormat("This file is not a backupsvc backup: it has no manifest.")
        if directory.strict_error is not None:
            raise directory.strict_error
        manifest_entry = directory.entry(directory.manifest)
        if manifest_entry.uncompressed > limits.max_manifest_size:
            raise ArchiveTooLarge("The backup's manifest is larger than this server accepts.")
        self._check_manifest_opens(manifest_entry, directory)
        fields = self._read_listing(directory)
        fields["members"] = ListedMembers(directory)
        self._verified = bytearray(len(directory))
        self._verified[directory.manifest] = 1  # decrypted and authenticated just now
        self._directory = directory
        self._manifest = Manifest(fields)

    def _check_manifest_opens(self, entry: zipfmt.CentralEntry, directory: Directory) -> None:
        """Decrypt the manifest once, telling a wrong password apart from a damaged manifest."""
        verifier_ok = True
        try:
            for _chunk in plaintext(self._src, self._password, entry, directory.cd_offset, None):
                pass
            return
        except BadVerifier:
            verifier_ok = False
        except BadMac:
            pass
        # The manifest did not open. With the right password every other member's verifier
        # matches; with a wrong one each matches only by a 1 in 65,536 chance.
        others = [directory.entry(i) for i in range(min(len(directory), 5)) if i != directory.manifest][:4]
        if others:
            matches = sum(verifier_matches(self._src, self._password, e, directory.cd_offset) for e in others)
            if matches * 2 > len(others):
                raise CorruptArchive("The backup's manifest is damaged: it does not match its authentication code.")
            raise WrongPassword("The password is not correct for this backup.")
        if verifier_ok:
            raise CorruptArchive("The backup's manifest is damaged: it does not match its authentication code.")
        raise WrongPassword("The password is not correct for this backup.")

    def _read_listing(self, directory: Directory) -> dict[str, Any]:
        """Parse the (authentic) manifest as it streams, its member list going into ``directory``;
        check it against the directory and return the manifest's other fields."""
        directory.start_listing()
        missing: set[str] = set()
        first_missing: list[str] = []
        wrong_size: list[str] = []

        def add(item: Any) -> None:
            path, size, sha256 = check_member(item)
            index = directory.find(path, confirm=False)
            if index is None:
                if path in missing:
                    raise DuplicateMember(f"The backup's manifest lists the member {path!r} twice.")
                missing.add(path)
                if not first_missing:
                    first_missing.append(path)
            elif directory.listed[index]:
                raise DuplicateMember(f"The backup's manifest lists the member {path!r} twice.")
            else:
                directory.list_member(index, sha256)
                if directory.sizes[index] != size and not wrong_size:
                    wrong_size.append(path)

        chunks = plaintext(self._src, self._password, directory.entry(directory.manifest), directory.cd_offset, None)
        fields, members_error = read_manifest(chunks, add)
        check_format(fields)
        check_schema(fields.get("schema"), self._current_schema)
        if members_error is not None:
            raise members_error
        if missing:
            raise MissingMember(
                f"The backup is incomplete: {len(missing)} file(s) listed in its manifest are missing "
                f"(first: {first_missing[0]!r})."
            )
        unexpected = [i for i in range(len(directory)) if not directory.listed[i] and i != directory.manifest]
        if unexpected:
            raise UnexpectedMember(
                f"The backup contains {len(unexpected)} file(s) its manifest does not list "
                f"(first: {directory.name(unexpected[0])!r}); it may have been tampered with."
            )
        if wrong_size:
            raise CorruptArchive(f"The size of {wrong_size[0]!r} in the archive directory differs from the manifest.")
        return fields

    # ----------------------------------------------------------------- content

    def _threads(self, count: int) -> int:
        return max(1, min(self._workers, count))

    def _verify_members(self, indices: Sequence[int]) -> None:
        def verify(index: int) -> None:
            for _chunk in self._stream(index):
                pass

        run_parallel(indices, verify, self._threads(len(indices)))

    def _stream(self, index: int) -> Iterator[bytes]:
        """A member's plaintext, checked against the manifest's SHA-256 at its end (and then
        marked verified)."""
        directory = self._directory
        assert directory is not None  # noqa: S101 - loaded
        expected = None if index == directory.manifest else directory.expected_sha(index)
        yield from plaintext(self._src, self._password, directory.entry(index), directory.cd_offset, expected)
        self._verified[index] = 1
