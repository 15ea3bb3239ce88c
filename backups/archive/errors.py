"""Exceptions raised by the archive reader and writer.

Every error a user can meet is an ``ArchiveError`` whose message is a complete sentence that
can be shown as it is; callers branch on the subclass, never on the text.
"""

from __future__ import annotations


class ArchiveError(Exception):
    """Base class: the archive cannot be written or read as a backupsvc archive."""


class WrongPassword(ArchiveError):
    """The password does not open this archive."""


class CorruptArchive(ArchiveError):
    """The archive was damaged or altered (bad header, authentication code or checksum)."""


class TruncatedArchive(ArchiveError):
    """The archive ends early, typically an interrupted download or upload."""


class MissingMember(ArchiveError):
    """A file listed in the manifest is not in the archive."""


class UnexpectedMember(ArchiveError):
    """The archive holds a file that its manifest does not list."""


class UnsupportedFormat(ArchiveError):
    """Not a backupsvc archive, or one written by a newer version of the format."""


class SchemaTooNew(ArchiveError):
    """The backup was taken by a newer version of the application (newer migrations)."""


class UnsafePath(ArchiveError):
    """A member name could escape the extraction folder or is otherwise not allowed."""


class SymlinkMember(ArchiveError):
    """A member is a symbolic link, which backups never contain."""


class DuplicateMember(ArchiveError):
    """Two members share one name."""


class UnencryptedMember(ArchiveError):
    """A member is not encrypted with WinZip AES, which every member of a backup must be."""


class ArchiveTooLarge(ArchiveError):
    """The archive would expand beyond the configured limits (size, ratio or member count)."""


class ArchiveWriterError(ArchiveError):
    """The writer was used incorrectly or its output failed; the archive is unusable."""
