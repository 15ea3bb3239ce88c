"""Upgrading archives of older formats before they are restored.

The reader refuses archives newer than the running code (``UnsupportedFormat``,
``SchemaTooNew``); older ones are accepted and brought up to date here, one format version
at a time, before the importer sees them. Format 1 is the first and current version, so the
registry is empty today. When format 2 arrives, register how a version-1 archive becomes a
version-2 one::

    @register(1)
    class To2(Upgrader):
        def manifest(self, manifest):          # e.g. a renamed key
            manifest["organization"]["licence"] = manifest["organization"].pop("license_identifier")
            return manifest

        def row(self, dataset, model, row):    # e.g. a field split in two
            if model == "client":
                row["first_name"], _, row["last_name"] = row.pop("name").partition(" ")
            return row

Rows in member ``data/<dataset>/<model>.jsonl`` go through ``row`` one by one, so memory
stays flat. Changes of
the database schema within one format (a new nullable column, say) need no upgrader: the
importer reads the fields it knows and the model's defaults fill the rest.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

from backups.archive.manifest import FORMAT_PREFIX, FORMAT_VERSION


class Upgrader:
    """Turns an archive of format ``from_version`` into one of ``from_version + 1``."""

    from_version: int = 0

    def manifest(self, manifest: dict[str, Any]) -> dict[str, Any]:
        return manifest

    def row(self, dataset: str, model: str, row: dict[str, Any]) -> dict[str, Any]:
        return row


UPGRADERS: dict[int, Upgrader] = {}


def register(from_version: int) -> Any:
    def decorator(cls: type[Upgrader]) -> type[Upgrader]:
        instance = cls()
        instance.from_version = from_version
        UPGRADERS[from_version] = instance
        return cls

    return decorator


def format_version(manifest: dict[str, Any]) -> int:
    fmt = str(manifest.get("format", ""))
    return (
        int(fmt[len(FORMAT_PREFIX) :]) if fmt.startswith(FORMAT_PREFIX) and fmt[len(FORMAT_PREFIX) :].isdigit() else 0
    )


def chain(manifest: dict[str, Any], current: int | None = None) -> list[Upgrader]:
    """The upgraders that bring an archive of this manifest's format to ``current``."""
    current = FORMAT_VERSION if current is None else current
    version = format_version(manifest)
    steps = []
    while version < current:
        step = UPGRADERS.get(version)
        if step is None:
            raise LookupError(f"No upgrade from backup format {version} to {version + 1} is registered.")
        steps.append(step)
        version += 1
    return steps


class UpgradedReader:
    """The reader API the importer uses (``manifest``, ``names``, ``open``) over an older archive."""

    def __init__(self, reader: Any, steps: list[Upgrader]) -> None:
        self._reader = reader
        self._steps = steps
        manifest = json.loads(json.dumps(reader.manifest))
        for step in steps:
            manifest = step.manifest(manifest)
        manifest["format"] = f"{FORMAT_PREFIX}{FORMAT_VERSION}"
        self.manifest = manifest
        self.names = list(reader.names)

    def open(self, name: str) -> Any:
        if not name.startswith("data/") or not name.endswith(".jsonl"):
            return self._reader.open(name)
        _, dataset, leaf = name.split("/", 2)
        model = leaf[: -len(".jsonl")]
        return io.BufferedReader(_RowStream(self._rows(name, dataset, model)))

    def _rows(self, older: str, dataset: str, model: str) -> Iterator[bytes]:
        with self._reader.open(older) as fh:
            for line in io.TextIOWrapper(fh, encoding="utf-8"):
                if not line.strip():
                    continue
                row = json.loads(line)
                for step in self._steps:
                    row = step.row(dataset, model, row)
                yield json.dumps(row, ensure_ascii=False).encode("utf-8") + b"\n"


class _RowStream(io.RawIOBase):
    def __init__(self, lines: Iterator[bytes]) -> None:
        self._lines = lines
        self._buffer = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._buffer:
            try:
                self._buffer = next(self._lines)
            except StopIteration:
                return 0
        n = min(len(buffer), len(self._buffer))
        buffer[:n] = self._buffer[:n]
        self._buffer = self._buffer[n:]
        return n


def upgraded(reader: Any, current: int | None = None) -> Any:
    """The reader itself when its archive is current, else a view of it upgraded to ``current``."""
    steps = chain(reader.manifest, current)
    return UpgradedReader(reader, steps) if steps else reader
