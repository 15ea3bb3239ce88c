"""The manifest of a "backupsvc/1" archive: format and schema checks, member list parsing."""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from .errors import ArchiveError, DuplicateMember, SchemaTooNew, UnsupportedFormat

FORMAT_PREFIX = "backupsvc/"
FORMAT_VERSION = 1
FORMAT = f"{FORMAT_PREFIX}{FORMAT_VERSION}"
MANIFEST_NAME = "manifest.json"
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_MIGRATION = re.compile(r"^(\d+)")


def check_format(manifest: Mapping[str, Any]) -> None:
    """Raise ``UnsupportedFormat`` unless the manifest declares a format this reader knows."""
    fmt = manifest.get("format")
    if not isinstance(fmt, str) or not fmt.startswith(FORMAT_PREFIX):
        raise UnsupportedFormat("This file is not a backupsvc backup (its manifest names no backupsvc format).")
    version = fmt[len(FORMAT_PREFIX) :]
    if not version.isdigit():
        raise UnsupportedFormat(f"This backup uses an unknown archive format ({fmt!r}).")
    if int(version) > FORMAT_VERSION:
        raise UnsupportedFormat(
            f"This backup was written in format {fmt!r} by a newer version of the application; "
            f"this version reads {FORMAT!r}. Upgrade the application to restore it."
        )
    if int(version) < 1:
        raise UnsupportedFormat(f"This backup uses an unknown archive format ({fmt!r}).")


def migration_number(name: str) -> int:
    """The leading number of a migration name (``"0003_foo"`` -> 3)."""
    match = _MIGRATION.match(name)
    if match is None:
        raise UnsupportedFormat(f"The backup's schema names a migration without a number ({name!r}).")
    return int(match.group(1))


def check_schema(backup_schema: Any, current_schema: Mapping[str, str] | None) -> None:
    """Raise ``SchemaTooNew`` when the backup's migrations are ahead of ``current_schema``.

    Both map an app label to its latest applied migration name. An app the current code does
    not know also means the backup is from a newer version. Nothing is checked without a
    current schema or when the manifest records none.
    """
    if current_schema is None or backup_schema is None:
        return
    if not isinstance(backup_schema, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in backup_schema.items()
    ):
        raise UnsupportedFormat("The backup's manifest records its schema in an unknown shape.")
    for app, migration in sorted(backup_schema.items()):
        if app not in current_schema:
            raise SchemaTooNew(
                f"This backup was made by a newer version of the application (it contains data of "
                f"the component {app!r}, which this version does not have). Upgrade before restoring it."
            )
        if migration_number(migration) > migration_number(current_schema[app]):
            raise SchemaTooNew(
                f"This backup was made by a newer version of the application ({app} is at migration "
                f"{migration}, this version at {current_schema[app]}). Upgrade before restoring it."
            )


def parse_members(manifest: Mapping[str, Any]) -> Mapping[str, tuple[int, str]]:
    """The manifest's member list as {path: (size, sha256)}; rejects malformed or repeated entries.

    A reader's manifest carries its member list as a view of the reader's compact index
    (``by_path``), which is returned as it is (already checked).
    """
    members = manifest.get("members")
    by_path = getattr(members, "by_path", None)
    if by_path is not None:
        return by_path  # type: ignore[no-any-return]
    if not isinstance(members, list):
        raise UnsupportedFormat("The backup's manifest has no member list.")
    out: dict[str, tuple[int, str]] = {}
    for item in members:
        path, size, sha256 = check_member(item)
        if path in out:
            raise DuplicateMember(f"The backup's manifest lists the member {path!r} twice.")
        out[path] = (size, sha256)
    return out


def check_member(item: Any) -> tuple[str, int, str]:
    """(path, size, sha256) of one item of a manifest's member list, checked."""
    if (
        not isinstance(item, dict)
        or not isinstance(item.get("path"), str)
        or not isinstance(item.get("size"), int)
        or isinstance(item.get("size"), bool)
        or item["size"] < 0
        or not isinstance(item.get("sha256"), str)
        or not _SHA256.match(item["sha256"])
    ):
        raise UnsupportedFormat("The backup's manifest lists a member in an unknown shape.")
    if item["path"] == MANIFEST_NAME:
        raise DuplicateMember(f"The backup's manifest lists the member {item['path']!r} twice.")
    return item["path"], item["size"], item["sha256"]


_UNREADABLE = "This file is not a backupsvc backup: its manifest is not readable."
_WHITESPACE = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()
_DELIMITERS = " \t\n\r,:]}"  # what may follow a complete value


def read_manifest(
    chunks: Iterable[bytes], add_member: Callable[[Any], None]
) -> tuple[dict[str, Any], Exception | None]:
    """Parse a manifest's JSON from its plaintext chunks without holding its member list.

    Each item of ``members`` goes to ``add_member`` (which may raise an ``ArchiveError``) and is
    then dropped; the other fields are returned, with the first error about the member list
    (``None`` if it is fine). JSON that does not parse, or is not an object, raises
    ``UnsupportedFormat`` at once, as ``json.loads`` of the whole manifest would.
    """
    text = _Text(chunks)
    fields: dict[str, Any] = {}
    error: Exception | None = None
    listed = False
    for _ in text.elements("{", "}"):
        key = text.value()
        if not isinstance(key, str):
            raise UnsupportedFormat(_UNREADABLE)
        text.expect(":")
        if key != "members" or text.peek() != "[":
            listed = listed and key != "members"  # json.loads keeps a repeated key's last value
            fields[key] = text.value()
            continue
        if listed:
            raise UnsupportedFormat(_UNREADABLE)
        listed = True
        fields.pop(key, None)
        for _ in text.elements("[", "]"):
            item = text.value()
            if error is None:
                try:
                    add_member(item)
                except ArchiveError as exc:
                    error = exc
    text.end()
    if not listed and error is None:
        error = UnsupportedFormat("The backup's manifest has no member list.")
    return fields, error


class _Text:
    """JSON text decoded from UTF-8 chunks, parsed value by value with ``raw_decode``."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)
        self._decoder = codecs.getincrementaldecoder("utf-8")()
        self._buf = ""
        self._pos = 0
        self._eof = False

    def _fill(self) -> bool:
        if self._eof:
            return False
        chunk = next(self._chunks, None)
        try:
            more = self._decoder.decode(chunk or b"", final=chunk is None)
        except UnicodeDecodeError:
            raise UnsupportedFormat(_UNREADABLE) from None
        self._eof = chunk is None
        self._buf = self._buf[self._pos :] + more
        self._pos = 0
        return True

    def peek(self) -> str:
        while True:
            self._pos = _WHITESPACE.match(self._buf, self._pos).end()  # type: ignore[union-attr]
            if self._pos < len(self._buf) or not self._fill():
                return self._buf[self._pos : self._pos + 1]

    def expect(self, char: str) -> None:
        if self.peek() != char:
            raise UnsupportedFormat(_UNREADABLE)
        self._pos += 1

    def elements(self, opening: str, closing: str) -> Iterator[None]:
        """Once per element of the object or array that starts here (the caller reads it)."""
        self.expect(opening)
        if self.peek() == closing:
            self._pos += 1
            return
        while True:
            yield
            found = self.peek()
            if not found or found not in "," + closing:
                raise UnsupportedFormat(_UNREADABLE)
            self._pos += 1
            if found == closing:
                return

    def value(self) -> Any:
        self.peek()
        while True:
            try:
                value, end = _DECODER.raw_decode(self._buf, self._pos)
            except ValueError:
                if self._fill():  # perhaps cut short by the chunk's end
                    continue
                raise UnsupportedFormat(_UNREADABLE) from None
            if (end == len(self._buf) or self._buf[end] not in _DELIMITERS) and self._fill():
                continue  # a number may go on in the next chunk ("1." of "1.5")
            self._pos = end
            return value

    def end(self) -> None:
        if self.peek():
            raise UnsupportedFormat(_UNREADABLE)
