"""Backup archives, format "backupsvc/1": one zip, every member WinZip AES-256 (AE-2).

Plain Python (no Django): it knows zip, AES, manifests and hashes, and reads and writes file
objects as streams.

Layout of an archive::

    manifest.json                 written last by the writer: the caller's fields plus
                                  "format": "backupsvc/1" and "members": [{path, size, sha256}]
    data/<dataset>/<model>.jsonl  names chosen by the caller, checked by the safe-name rules
    files/<opaque id>             (member names are not encrypted: no tenant data in them)
    index.html, index.csv         offline catalog, see ``backups.archive.catalog``

Writing (``fileobj`` may be non-seekable; memory stays bounded)::

    from backups.archive import ArchiveWriter, generate_password

    password = generate_password()                # "k3v9-qz2m-...", 138 bits
    with ArchiveWriter(fileobj, password, progress=heartbeat) as w:
        w.add_path("files/3f2a9c", "/srv/media/doc.pdf")           # compress=None: auto
        w.add_stream("files/77aa01", storage_file, size=storage_file.size)
        with w.open_member("data/docs/document.jsonl") as m:        # deflated stream
            m.write(b'{"id": 1}\\n')
        w.add_bytes("index.csv", csv_bytes)
        summary = w.close(manifest={"app_version": "1.0", "schema": {"docs": "0003_x"}})
    summary.bytes_written, summary.sha256, summary.members

Many small stored files: ``readahead.ReadAhead`` opens and reads the next few (at most 32 files
and 2 MiB) on reader threads while the caller adds the ones before, in order, each file's error
raised unchanged when the caller takes it (``backups.export`` feeds documents this way).

Reading (``source`` is a path or a seekable binary file object)::

    from backups.archive import ArchiveReader, Limits, ArchiveError

    reader = ArchiveReader(path, password, limits=Limits(max_total_size=10 * 2**30),
                           current_schema={"docs": "0004_y"})
    manifest = reader.check()           # structure + manifest checked, contents not yet
    manifest = reader.verify()          # + every member's HMAC and SHA-256
    with reader.open("data/docs/document.jsonl") as f:   # verified when read to EOF
        for line in f: ...
    reader.verify_rest()                # the members not yet read to EOF: all verified once
    reader.extract_all(dest_dir)        # verified; nothing left behind on failure

Dependencies: ``cryptography`` (PBKDF2, AES); ``pycryptodomex`` (or ``pycryptodome``) for a
fast little-endian AES-CTR, with a slower pure-``cryptography`` fallback; ``isal`` for fast
deflate, with ``zlib`` as the fallback (about 3x slower writer on text). Sizes: the writer
keeps a few MiB per member in flight (``max_in_flight`` members, pieces of 256 KiB); the
reader needs a seekable source (save an upload to a temporary file first).

Every failure a user can meet is an ``ArchiveError`` subclass with a sentence as message:
``WrongPassword``, ``CorruptArchive``, ``TruncatedArchive``, ``MissingMember``,
``UnexpectedMember``, ``UnsupportedFormat``, ``SchemaTooNew``, ``UnsafePath``,
``SymlinkMember``, ``DuplicateMember``, ``UnencryptedMember``, ``ArchiveTooLarge``, and
``ArchiveWriterError`` for a writer used wrongly or whose sink failed.
"""

from .catalog import CatalogEntry, render_csv, render_html
from .crypto import generate_password
from .errors import (
    ArchiveError,
    ArchiveTooLarge,
    ArchiveWriterError,
    CorruptArchive,
    DuplicateMember,
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
from .manifest import FORMAT
from .reader import ArchiveReader, Limits
from .writer import ArchiveSummary, ArchiveWriter, MemberInfo, MemberWriter

__all__ = [
    "FORMAT",
    "ArchiveError",
    "ArchiveReader",
    "ArchiveSummary",
    "ArchiveTooLarge",
    "ArchiveWriter",
    "ArchiveWriterError",
    "CatalogEntry",
    "CorruptArchive",
    "DuplicateMember",
    "Limits",
    "MemberInfo",
    "MemberWriter",
    "MissingMember",
    "SchemaTooNew",
    "SymlinkMember",
    "TruncatedArchive",
    "UnencryptedMember",
    "UnexpectedMember",
    "UnsafePath",
    "UnsupportedFormat",
    "WrongPassword",
    "generate_password",
    "render_csv",
    "render_html",
]
