"""Which archive members a reader decrypts: a spy on ``backups.archive.reader.plaintext``."""

from __future__ import annotations

from typing import Any

import pytest

from backups.archive import reader as reader_module


def spy_on_decryption(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the members any reader decrypts from now on, in order (one per opening)."""
    names: list[str] = []
    real = reader_module.plaintext

    def plaintext(src: Any, password: bytes, entry: Any, cd_offset: int, expected: Any) -> Any:
        names.append(entry.name)
        return real(src, password, entry, cd_offset, expected)

    monkeypatch.setattr(reader_module, "plaintext", plaintext)
    return names
