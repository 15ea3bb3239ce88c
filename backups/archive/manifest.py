"""The manifest of a "backupsvc/1" archive: format and schema checks, member list parsing."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from .errors import DuplicateMember, SchemaTooNew, UnsupportedFormat

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


def parse_members(manifest: Mapping[str, Any]) -> dict[str, tuple[int, str]]:
    """The manifest's member list as {path: (size, sha256)}; rejects malformed or repeated entries."""
    members = manifest.get("members")
    if not isinstance(members, list):
        raise UnsupportedFormat("The backup's manifest has no member list.")
    out: dict[str, tuple[int, str]] = {}
    for item in members:
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
        if item["path"] in out or item["path"] == MANIFEST_NAME:
            raise DuplicateMember(f"The backup's manifest lists the member {item['path']!r} twice.")
        out[item["path"]] = (item["size"], item["sha256"])
    return out
