"""A stored file (a document version's) streamed out of a backup, decrypted on the server.

Verification: the archive reader checks the member's MAC, size and SHA-256 (the manifest's)
when it reaches the member's end, and raises if any differs. What a user receives then:

- files up to ``VERIFY_FIRST_LIMIT`` are read and checked whole before the first byte is sent,
  so a damaged file is a clear error page, never a download that looks fine;
- larger files stream (memory flat: one 1 MiB chunk at a time) with their exact
  ``Content-Length``; a mismatch found at the end raises inside the stream, which is logged with
  the backup's id and makes the server cut the connection before the last chunk, so the browser
  reports a failed (incomplete) download instead of a complete file.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from backups.archive.errors import ArchiveError
from backups.archive.manifest import parse_members

logger = logging.getLogger(__name__)

VERIFY_FIRST_LIMIT = 8 * 1024 * 1024
CHUNK = 1024 * 1024


class FileUnavailable(Exception):
    """The file cannot be served; the message is a sentence for the user."""


@dataclass
class MemberFile:
    member: str
    name: str
    size: int
    sha256: str
    content_type: str


def member_file(
    manifest: dict[str, Any], row: dict[str, Any], field: str, *, name: str, content_type: str
) -> MemberFile:
    """The archive member a row's file field refers to, with its size and hash from the manifest."""
    ref = row.get(field)
    if not isinstance(ref, dict) or not ref.get("member"):
        raise FileUnavailable("This version has no file in the backup.")
    try:
        size, sha256 = parse_members(manifest)[ref["member"]]
    except (KeyError, ArchiveError):
        raise FileUnavailable("The backup's manifest does not list this file; the backup may be damaged.") from None
    return MemberFile(
        member=ref["member"],
        name=name or "file",
        size=size,
        sha256=sha256,
        content_type=content_type or "application/octet-stream",
    )


def read_verified(reader: Any, file: MemberFile) -> bytes:
    """A small file, read whole and verified before anything is sent."""
    try:
        with reader.open(file.member) as fh:
            return fh.read()  # type: ignore[no-any-return]
    except ArchiveError as exc:
        raise FileUnavailable(f"The file is damaged in the backup and was not sent: {exc}") from exc


def stream_verified(reader: Any, file: MemberFile, *, backup_id: int) -> Iterator[bytes]:
    """A large file's chunks; raises at the end (after logging) when its hash does not match.

    Closes ``reader`` when done, whatever happens (also when the client goes away)."""
    try:
        with reader.open(file.member) as fh:
            # One chunk is held back until the next read succeeds: the reader checks the hash
            # only when asked for more after the last byte, so the last chunk goes out only
            # once the whole file is verified, and a mismatch leaves the download short.
            held = b""
            while chunk := fh.read(CHUNK):
                if held:
                    yield held
                held = chunk
            if held:
                yield held
    except ArchiveError:
        logger.error("backup %s: member %s failed verification while streaming; connection cut", backup_id, file.member)
        raise
    finally:
        reader.close()
