"""Stored files read ahead for the archive writer: same order, same bytes, the same error at the
same file, nothing left open, and a bounded number of files in flight."""

from __future__ import annotations

import io
import os
import threading
from collections.abc import Callable
from typing import BinaryIO

import pytest

from backups.archive import ArchiveReader, ArchiveWriter
from backups.archive.member_pipeline import CHUNK_SIZE
from backups.archive.readahead import ReadAhead

PASSWORD = "a-password-for-the-test"


class _ReadOnly(io.BytesIO):
    readinto = property()  # type: ignore[assignment]  # getattr finds no readinto


class Store:
    """Named files in memory; records every stream it opened and how many are open at once."""

    def __init__(self, files: dict[str, bytes], broken: str | None = None) -> None:
        self.files = files
        self.broken = broken
        self.opened: list[io.BytesIO] = []
        self.lock = threading.Lock()

    def opener(self, name: str) -> Callable[[], BinaryIO]:
        def open_file() -> BinaryIO:
            if name == self.broken:
                raise OSError(5, "Input/output error")
            # Every third file without readinto, as some storages' file objects are.
            stream = (_ReadOnly if len(self.opened) % 3 == 0 else io.BytesIO)(self.files[name])
            with self.lock:
                self.opened.append(stream)
            return stream

        return open_file

    def still_open(self) -> int:
        return sum(not s.closed for s in self.opened)


def _archive(
    store: Store, names: list[str], hint: Callable[[int], int | None] = lambda size: size
) -> list[tuple[str, bytes]]:
    """The files in archive order, as written through the read-ahead and read back."""
    sink = io.BytesIO()
    with (
        ArchiveWriter(sink, PASSWORD) as writer,
        ReadAhead(names, lambda name: [(store.opener(name), hint(len(store.files[name])))]) as ahead,
    ):
        for name, (handle,) in ahead:
            fetched = handle.result()
            if fetched.rest is None:
                writer.add_bytes(f"files/{name}", fetched.head)
            else:
                with fetched.rest:
                    writer.add_stream(f"files/{name}", fetched.stream(), size=fetched.size)
    sink.seek(0)
    reader = ArchiveReader(sink, PASSWORD)
    return [(n.removeprefix("files/"), reader.open(n).read()) for n in reader.names if n.startswith("files/")]


@pytest.mark.parametrize(
    "hint",
    [lambda size: size, lambda size: None, lambda size: size // 2],
    ids=["size known", "size unknown", "size hint too small"],
)
def test_files_read_ahead_go_into_the_archive_whole_and_in_order(hint: Callable[[int], int | None]) -> None:
    files = {f"f{i:03}": os.urandom(i * 997 % 5000) for i in range(200)}
    files["large"] = os.urandom(3 * CHUNK_SIZE + 17)  # streamed on after its first chunk
    files["exactly-one-chunk"] = os.urandom(CHUNK_SIZE)
    files["one-chunk-and-a-byte"] = os.urandom(CHUNK_SIZE + 1)
    store = Store(files)
    names = list(files)
    assert _archive(store, names, hint) == list(files.items())
    assert store.still_open() == 0


def test_a_file_that_cannot_be_opened_raises_its_own_error_and_nothing_stays_open() -> None:
    files = {f"f{i:03}": os.urandom(CHUNK_SIZE + i) if i % 7 == 0 else b"x" * i for i in range(100)}
    store = Store(files, broken="f040")
    with pytest.raises(OSError, match="Input/output error") as excinfo:
        _archive(store, list(files))
    assert excinfo.value.errno == 5
    assert len(store.opened) >= 40, "every file before the broken one was added"
    assert store.still_open() == 0, "files read ahead past the failure are closed"


@pytest.mark.parametrize(
    ("size", "ahead"), [(10, 16), (2 * CHUNK_SIZE, 4)], ids=["small files: the count", "large files: the bytes"]
)
def test_no_more_than_depth_files_or_bytes_are_read_ahead_of_the_caller(size: int, ahead: int) -> None:
    files = {f"f{i:04}": b"x" * size for i in range(200)}
    store = Store(files)
    with ReadAhead(
        list(files),
        lambda name: [(store.opener(name), len(store.files[name]))],
        depth=16,
        bytes_ahead=4 * CHUNK_SIZE,
        batch=4,
    ) as ahead_files:
        for taken, (_, (handle,)) in enumerate(ahead_files, 1):
            fetched = handle.result()
            fetched.close()
            if taken == 10:
                break
    assert len(store.opened) <= 10 + ahead + 4
    assert store.still_open() == 0
