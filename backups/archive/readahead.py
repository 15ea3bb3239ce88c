"""Reading the next few stored files ahead, on a small pool of threads, for the archive writer.

Why: a backup is mostly small files (24 KB on average in a corpus of 32,000 real ones). Opened
and read one after the other on the thread that also feeds the writer, each file's open, read
and close (a disk seek, or an HTTP request to an object store) waits in turn, and so do the
writer's worker threads, which then have nothing to compress. Here a few reader threads open
each file and read its first ``CHUNK_SIZE`` bytes while the caller is still adding the files
before it; the caller takes them back in the order it asked for them.

Bounded: at most ``depth`` files and ``BYTES_AHEAD`` bytes are in flight (opened or read, not yet
taken back), each file holding at most ``CHUNK_SIZE`` bytes, so memory stays flat whatever the
number or size of files. A file larger than one chunk comes back as its start plus the open
stream, read on by the caller (``add_stream``), as before. A failure to open or read a file is
raised, unchanged, when the caller takes that file back, so errors surface in the same order and
with the same exception as when every file was opened on the caller's thread.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, BinaryIO, Generic, TypeVar

from .member_pipeline import CHUNK_SIZE

T = TypeVar("T")

#: Reader threads: enough to overlap a few opens (or object-store round trips); they mostly wait.
READERS = 4
#: Files in flight: at most this many, and at most ``BYTES_AHEAD`` of their first chunks (counted
#: from each file's size hint, ``CHUNK_SIZE`` when unknown), are held ahead of the caller. A count
#: of 32 alone let a run of large files hold 8 MiB, which showed in the worker's peak RSS.
DEPTH = 32
BYTES_AHEAD = 2 << 20
#: Files a reader opens in one task.
BATCH = 8


@dataclass
class Fetched:
    """A stored file as read ahead: ``head`` is the whole file when ``rest`` is None, else its start
    (at most ``CHUNK_SIZE`` bytes), and ``rest`` the open stream after it (the taker closes it)."""

    head: bytes | memoryview
    rest: BinaryIO | None = None
    size: int | None = None

    def stream(self) -> BinaryIO:
        """The whole file as one readable stream (``head`` then ``rest``)."""
        return _Joined(self.head, self.rest)  # type: ignore[return-value]

    def close(self) -> None:
        """Close the open stream, if any."""
        if self.rest is not None:
            self.rest.close()


def fetch(open_file: Callable[[], BinaryIO], buffer: bytearray) -> Fetched:
    """Open a file and read its start into ``buffer``: the whole file when it is shorter than the
    buffer, else the buffer's worth and the stream left open."""
    src = open_file()
    try:
        view = memoryview(buffer)
        filled = 0
        readinto = getattr(src, "readinto", None)
        while filled < len(buffer):
            if readinto is not None:
                got = readinto(view[filled:])
            else:  # a storage's file object without readinto: read, then copy
                data = src.read(len(buffer) - filled)
                got = len(data)
                view[filled : filled + got] = data
            if not got:
                break
            filled += got
        if filled < len(buffer):
            src.close()
            return Fetched(view[:filled], None, filled)
        return Fetched(view, src, _size_or_none(src))
    except BaseException:
        src.close()
        raise


def _buffer(size: int | None) -> bytearray:
    """Allocated on the caller's thread, on purpose: bytes a reader thread allocated come from
    its own malloc arena, and with four readers the worker's RSS grew with the number of files
    (98 -> 111 MB over 32,000 files, against 95 -> 103 MB when read on the caller's thread).
    One byte over the expected size, so that the end of the file is seen in one read."""
    return bytearray(CHUNK_SIZE if size is None else min(size + 1, CHUNK_SIZE))


class FileHandle:
    """One file being read ahead: ``result()`` waits for it and returns the ``Fetched`` file, or
    raises what opening or reading it raised."""

    __slots__ = ("_batch", "_index")

    def __init__(self, batch: _Batch, index: int) -> None:
        self._batch = batch
        self._index = index

    def result(self) -> Fetched:
        """The file as read ahead (waiting for its reader if need be), or its error raised."""
        batch = self._batch
        assert batch.future is not None  # noqa: S101 - submitted before its item is handed out
        done = batch.future.result()
        batch.taken += 1
        got = done[min(self._index, len(done) - 1)]  # a batch stops at its first failure
        if isinstance(got, BaseException):
            raise got
        return got


class _Batch:
    """Consecutive files read by one reader task: fewer hand-offs between threads than one task
    per file (each hand-off is a wake-up and a turn of the GIL, 24 KB files are many)."""

    __slots__ = ("future", "openers", "taken")

    def __init__(self) -> None:
        self.openers: list[tuple[Callable[[], BinaryIO], bytearray]] = []
        self.future: Future[list[Fetched | BaseException]] | None = None
        self.taken = 0


def _read_batch(openers: list[tuple[Callable[[], BinaryIO], bytearray]]) -> list[Fetched | BaseException]:
    out: list[Fetched | BaseException] = []
    for opener, buffer in openers:
        try:
            out.append(fetch(opener, buffer))
        except Exception as exc:  # raised on the caller's thread when it takes this file
            out.append(exc)
            break
    return out


class ReadAhead(Generic[T]):
    """``items`` in order, each with its files being read ahead: iterating gives ``(item,
    handles)``, one ``FileHandle`` per ``(opener, size hint)`` that ``files(item)`` lists (None
    for None: a field without a file).

    Use as a context manager: leaving it (also on an error) cancels what was not started yet,
    waits for the readers and closes every stream read ahead and not taken.
    """

    def __init__(
        self,
        items: Iterable[T],
        files: Callable[[T], list[tuple[Callable[[], BinaryIO], int | None] | None]],
        *,
        readers: int = READERS,
        depth: int = DEPTH,
        bytes_ahead: int = BYTES_AHEAD,
        batch: int = BATCH,
    ) -> None:
        self._items = iter(items)
        self._files = files
        self._depth = depth
        self._bytes_ahead = bytes_ahead
        self._batch_size = batch
        self._pool = ThreadPoolExecutor(max_workers=readers, thread_name_prefix="archive-reader")
        self._ahead: deque[tuple[T, list[FileHandle | None], int]] = deque()
        self._batches: deque[_Batch] = deque()  # submitted, not every file taken yet
        self._open = _Batch()
        self._queued = 0  # files of the items in ``_ahead``
        self._queued_bytes = 0  # and their (expected) first chunks' bytes
        self._exhausted = False

    def _submit(self) -> None:
        batch, self._open = self._open, _Batch()
        batch.future = self._pool.submit(_read_batch, batch.openers)
        self._batches.append(batch)

    def _fill(self) -> None:
        while not self._exhausted and (
            (self._queued < self._depth and self._queued_bytes < self._bytes_ahead) or not self._ahead
        ):
            item = next(self._items, _END)
            if item is _END:
                self._exhausted = True
                break
            handles: list[FileHandle | None] = []
            weight = 0
            for file in self._files(item):
                if file is None:
                    handles.append(None)
                    continue
                opener, size = file
                weight += CHUNK_SIZE if size is None else min(size, CHUNK_SIZE)
                handles.append(FileHandle(self._open, len(self._open.openers)))
                self._open.openers.append((opener, _buffer(size)))
                self._queued += 1
                if len(self._open.openers) >= self._batch_size:
                    self._submit()
            self._ahead.append((item, handles, weight))
            self._queued_bytes += weight
        if self._open.openers and (self._exhausted or self._queued <= len(self._open.openers)):
            self._submit()  # the next item's files are in it: do not wait for a full batch

    def __iter__(self) -> Iterator[tuple[T, list[FileHandle | None]]]:
        while True:
            self._fill()
            if not self._ahead:
                return
            item, handles, weight = self._ahead.popleft()
            self._queued -= sum(h is not None for h in handles)
            self._queued_bytes -= weight
            while self._batches and self._batches[0].taken >= len(self._batches[0].openers):
                self._batches.popleft()
            yield item, handles

    def __enter__(self) -> ReadAhead[T]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop reading ahead and close every stream read ahead and not taken."""
        self._pool.shutdown(wait=True, cancel_futures=True)
        for batch in self._batches:
            future = batch.future
            if future is None or future.cancelled() or future.exception() is not None:
                continue
            for got in future.result()[batch.taken :]:
                if isinstance(got, Fetched):
                    got.close()
        self._batches.clear()
        self._ahead.clear()


class _End:
    pass


_END: Any = _End()


class _Joined:
    """``head`` then the rest of ``rest``: what ``add_stream`` reads."""

    def __init__(self, head: bytes | memoryview, rest: BinaryIO | None) -> None:
        self._head: bytes | memoryview | None = head
        self._rest = rest

    def read(self, size: int = -1) -> bytes | memoryview:
        """The head first (whole, whatever ``size``: it is at most one chunk), then the stream's."""
        if self._head is not None:
            head, self._head = self._head, None
            if head:
                return head
        if self._rest is None:
            return b""
        return self._rest.read(size)


def _size_or_none(stream: Any) -> int | None:
    try:
        return int(stream.size)
    except (AttributeError, TypeError, ValueError, OSError):
        return None
