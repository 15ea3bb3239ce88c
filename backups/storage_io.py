"""Reading stored archives without copying them whole.

django-storages' ``S3File`` downloads the entire object into a spooled temporary file on the
first read; with the default ``AWS_S3_MAX_MEMORY_SIZE`` of 0 that file never rolls over to disk,
so verifying or restoring a 10 GiB backup would hold 10 GiB in the worker's memory (and with a
size limit, fill the temporary folder instead). The archive reader only needs positional reads,
so an S3 object is read here with ranged GETs and a bounded read-ahead buffer; local files are
opened as they are.
"""

from __future__ import annotations

import io
from typing import Any, BinaryIO

from django.core.files.storage import Storage

READ_AHEAD = 8 * 1024 * 1024


class RangedObjectReader(io.RawIOBase):
    """A seekable, read-only view of an S3 object through ranged GETs (memory: one read-ahead)."""

    def __init__(self, obj: Any, *, read_ahead: int = READ_AHEAD) -> None:
        super().__init__()
        self._obj = obj
        self._size = int(obj.content_length)
        self._pos = 0
        self._read_ahead = read_ahead
        self._buf = b""
        self._buf_start = 0

    @property
    def size(self) -> int:
        return self._size

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_SET:
            pos = offset
        elif whence == io.SEEK_CUR:
            pos = self._pos + offset
        elif whence == io.SEEK_END:
            pos = self._size + offset
        else:
            raise ValueError(f"Invalid whence {whence}.")
        if pos < 0:
            raise ValueError("Negative seek position.")
        self._pos = pos
        return pos

    def _fetch(self, start: int, length: int) -> bytes:
        end = min(self._size, start + length) - 1
        if end < start:
            return b""
        body = self._obj.get(Range=f"bytes={start}-{end}")["Body"]
        try:
            return body.read()  # type: ignore[no-any-return]
        finally:
            body.close()

    def read(self, size: int = -1) -> bytes:
        if self.closed:
            raise ValueError("I/O operation on a closed file.")
        if size is None or size < 0:
            size = self._size - self._pos
        size = min(size, max(0, self._size - self._pos))
        if size == 0:
            return b""
        offset = self._pos - self._buf_start
        if offset >= 0 and offset + size <= len(self._buf):
            data = self._buf[offset : offset + size]
        elif size >= self._read_ahead:
            data = self._fetch(self._pos, size)  # a large read goes straight through
        else:
            self._buf = self._fetch(self._pos, max(size, self._read_ahead))
            self._buf_start = self._pos
            data = self._buf[:size]
        self._pos += len(data)
        return data

    def readinto(self, b: Any) -> int:
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._buf = b""
        super().close()


def open_for_reading(storage: Storage, name: str) -> BinaryIO:
    """A seekable binary reader of a stored file that never copies it whole.

    Raises ``FileNotFoundError`` (or the storage's ``OSError``) like ``storage.open``.
    """
    fh = storage.open(name, "rb")
    obj = getattr(fh, "obj", None)
    if obj is None or not hasattr(obj, "content_length"):
        return fh  # type: ignore[return-value]
    try:
        return RangedObjectReader(obj)  # type: ignore[return-value]
    finally:
        fh.close()  # nothing was downloaded: S3File only loaded the object's metadata
