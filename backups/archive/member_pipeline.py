"""The member pipeline of the archive writer: jobs, the worker threads' encoding, streamed members,
and the small types the writer hands back (``MemberInfo``, ``ArchiveSummary``).

A member travels as a ``Job``: the caller's thread creates it (whole data, a path to read, or a
``feed`` queue of chunks), a worker thread ``MemberEncoder.encode``s it (keys, SHA-256, deflate,
AES-CTR, HMAC, zip framing) and puts finished pieces on the job's own small ``out`` queue, and
the writer's output thread drains the jobs in submission order (``writer.py``).

Pieces on ``out`` are ``(bytes, plaintext bytes)`` tuples, the last one ``(bytes, plaintext
bytes, Result)``: a member that fits in one chunk (most files of a backup) is a single hand-off.
"""

from __future__ import annotations

import hashlib
import os
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol

from . import zipfmt
from .compress import SAMPLE_SIZE, looks_compressed, new_compressor, trial_compress
from .crypto import MAC_LEN, STRENGTHS, WRITE_STRENGTH, derive_keys, new_keystream, new_mac
from .errors import ArchiveWriterError

if TYPE_CHECKING:  # pragma: no cover
    from .writer import ArchiveWriter

#: Pieces handed between threads. 256 KiB rather than 1 MiB: the pipeline's queues then hold at
#: most a few MB, which small tenants never fill and large ones always did (the writer's peak RSS
#: grew 10 MB from 18,000 to 145,000 members, 3 MB now); no slower on large members.
CHUNK_SIZE = 1 << 18
# A member whose size is known and below this gets a plain local header; deflate can expand
# data slightly, so keep a margin below 4 GiB.
SMALL_MEMBER = 0xF000_0000
QUEUE_DEPTH = 2
POLL = 0.2
EOF = None
_SALT_LEN = STRENGTHS[WRITE_STRENGTH][1]


class Aborted(Exception):
    """Internal: another thread failed, stop quietly."""


@dataclass(eq=False)
class Job:
    """One member on its way through the pipeline."""

    name: str
    compress: bool | None
    size_hint: int | None
    data: bytes | memoryview | None = None
    path: str | None = None
    feed: queue.Queue[bytes | None] | None = None
    out: queue.Queue[Any] | queue.SimpleQueue[Any] = field(default_factory=lambda: queue.Queue(QUEUE_DEPTH))


def whole_out(size: int) -> queue.Queue[Any] | queue.SimpleQueue[Any]:
    """The ``out`` queue of a job whose data is all in memory: a member of at most one chunk
    (most files of a backup) becomes one or two pieces, which need no bound, and a C queue costs
    the three threads that touch it far less than ``queue.Queue``'s Python locks."""
    return queue.SimpleQueue() if size <= CHUNK_SIZE else queue.Queue(QUEUE_DEPTH)


@dataclass
class Result:
    """A member as written, for its central directory entry and the manifest."""

    method: int
    compressed: int
    uncompressed: int
    sha256: str
    zip64_local: bool
    dos_time: int
    dos_date: int


class WritableBinary(Protocol):
    """What the writer needs from its sink: ``write`` (``flush`` is used when present)."""

    def write(self, data: bytes, /) -> int | None: ...


@dataclass(frozen=True)
class MemberInfo:
    """A member as written: name, plaintext size and SHA-256, stored size, method (0 stored, 8 deflated)."""

    path: str
    size: int
    sha256: str
    compressed_size: int
    method: int


@dataclass(frozen=True)
class ArchiveSummary:
    """What ``ArchiveWriter.close`` returns (``members`` is filled only with ``keep_members=True``)."""

    bytes_written: int
    sha256: str
    members: list[MemberInfo]
    manifest: dict[str, Any] = field(repr=False)


class MemberEncoder:
    """What a worker thread does to a job: hash, compress, encrypt and frame it.

    ``zip64_limit`` comes from the writer (tests lower it there to exercise the zip64 path).
    """

    def __init__(
        self, password: bytes, level: int | None, dos: tuple[int, int], zip64_limit: int, abort: threading.Event
    ) -> None:
        self._password = password
        self._level = level
        self._dos_time, self._dos_date = dos
        self._zip64_limit = zip64_limit
        self._abort = abort

    def _chunks(self, job: Job) -> Iterator[bytes | memoryview]:
        if job.data is not None:
            if len(job.data) <= SAMPLE_SIZE:  # most members: no view, no slicing
                yield job.data
                return
            view = memoryview(job.data)
            for start in range(0, len(view), CHUNK_SIZE):
                yield view[start : start + CHUNK_SIZE]
        elif job.path is not None:
            with open(job.path, "rb", buffering=0) as source:
                while chunk := source.read(CHUNK_SIZE):
                    yield chunk
        else:
            assert job.feed is not None  # noqa: S101
            while True:
                try:
                    item = job.feed.get(timeout=POLL)
                except queue.Empty:
                    if self._abort.is_set():
                        raise Aborted from None
                    continue
                if item is EOF:
                    return
                yield item

    def _out(self, job: Job, item: Any) -> None:
        while True:
            try:
                job.out.put(item, timeout=POLL)
                return
            except queue.Full:
                if self._abort.is_set():
                    raise Aborted from None

    def encode(self, job: Job) -> None:
        """Hash, compress, encrypt and frame one member; pieces go to the job's queue."""
        chunks = self._chunks(job)
        first = next(chunks, b"")
        compressor = None
        head_out = b""
        sample = b""
        if job.compress is True or (
            job.compress is None and len(first) and not looks_compressed(job.name, bytes(first[:64]))
        ):
            compressor = new_compressor(self._level)
            if job.compress is None:
                # Decide on a sample; the trial output is the real start of the stream when kept.
                sample = bytes(first[:SAMPLE_SIZE])
                trial = trial_compress(compressor, sample)
                if trial is None:
                    compressor = None
                else:
                    head_out = trial
                    first = first[len(sample) :]
        method = zipfmt.METHOD_DEFLATED if compressor is not None else zipfmt.METHOD_STORED
        limit = self._zip64_limit
        zip64_local = job.size_hint is None or job.size_hint >= min(SMALL_MEMBER, limit)
        salt = os.urandom(_SALT_LEN)
        enc_key, auth_key, verifier = derive_keys(self._password, salt)
        keystream = new_keystream(enc_key)
        mac = new_mac(auth_key)
        digest = hashlib.sha256()
        if head_out:
            digest.update(sample)
        pending: list[bytes] = [
            zipfmt.local_header(job.name.encode("utf-8"), method, self._dos_time, self._dos_date, zip64_local),
            salt,
            verifier,
        ]
        pending_len = 0
        plain_pending = len(sample) if head_out else 0
        size = plain_pending
        stored = len(salt) + len(verifier) + MAC_LEN

        def emit(data: bytes | memoryview) -> None:
            nonlocal pending_len, stored
            if not data:
                return
            cipher = keystream.update(data)
            mac.update(cipher)
            pending.append(cipher)
            pending_len += len(cipher)
            stored += len(cipher)

        emit(head_out)
        for chunk in _prepend(first, chunks):
            if not chunk:
                continue
            digest.update(chunk)
            size += len(chunk)
            plain_pending += len(chunk)
            emit(compressor.compress(chunk) if compressor is not None else chunk)
            if pending_len >= CHUNK_SIZE:
                self._out(job, (b"".join(pending), plain_pending))
                pending, pending_len, plain_pending = [], 0, 0
        if compressor is not None:
            emit(compressor.flush())
        if not zip64_local and (size >= limit or stored >= limit):
            raise ArchiveWriterError(f"The member {job.name!r} grew beyond its announced size while being written.")
        pending.append(mac.digest()[:MAC_LEN])
        pending.append(zipfmt.data_descriptor(stored, size, zip64_local))
        result = Result(method, stored, size, digest.hexdigest(), zip64_local, self._dos_time, self._dos_date)
        self._out(job, (b"".join(pending), plain_pending, result))


class MemberWriter:
    """A member being written chunk by chunk (see ``ArchiveWriter.open_member``)."""

    def __init__(self, writer: ArchiveWriter, job: Job) -> None:
        self._writer = writer
        self._job = job
        self._buffer = bytearray()
        self.name = job.name
        self.closed = False

    def write(self, data: bytes) -> int:
        """Append ``data``; it is handed to a worker in chunks of ``CHUNK_SIZE`` bytes."""
        if self.closed:
            raise ArchiveWriterError(f"The member {self.name!r} is already closed.")
        self._buffer += data
        while len(self._buffer) >= CHUNK_SIZE:  # large writes (copyfileobj) too go in CHUNK_SIZE pieces
            piece = bytes(self._buffer[:CHUNK_SIZE])
            del self._buffer[:CHUNK_SIZE]
            self._writer._put(self._job.feed, piece)  # type: ignore[arg-type]
        return len(data)

    def writable(self) -> bool:
        """Always True (with ``readable``/``seekable`` this lets ``io.TextIOWrapper`` wrap the member)."""
        return True

    def readable(self) -> bool:
        """Always False: a member being written cannot be read back."""
        return False

    def seekable(self) -> bool:
        """Always False: members are streamed."""
        return False

    def flush(self) -> None:
        """Nothing to do: data is handed over by ``write`` and ``close``."""

    def close(self) -> None:
        """Finish the member; the writer accepts other members again."""
        if self.closed:
            return
        self.closed = True
        if self._buffer:
            self._writer._put(self._job.feed, bytes(self._buffer))  # type: ignore[arg-type]
            self._buffer = bytearray()
        self._writer._put(self._job.feed, EOF)  # type: ignore[arg-type]
        self._writer._open_member = None

    def __enter__(self) -> MemberWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.closed = True
            self._writer._open_member = None
            self._writer.abort()


def read_full(stream: Any, size: int) -> bytes:
    """Read up to ``size`` bytes, looping over short reads (pipes, sockets)."""
    parts = []
    left = size
    while left:
        chunk = stream.read(left)
        if not chunk:
            break
        parts.append(chunk)
        left -= len(chunk)
    return b"".join(parts) if len(parts) != 1 else parts[0]


def _prepend(first: bytes | memoryview, rest: Iterator[bytes | memoryview]) -> Iterator[bytes | memoryview]:
    yield first
    yield from rest
