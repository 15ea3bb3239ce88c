"""Streaming writer of "backupsvc/1" archives.

Pipeline (why: deflate, PBKDF2 and AES dominate, and zlib/ISA-L, OpenSSL and pycryptodome all
release the GIL, so members processed on separate threads really run in parallel):

* the caller's thread validates names, reads caller-owned streams into bounded queues and
  hands each member to a pool of worker threads as a job;
* a worker derives the member's keys, hashes, compresses and encrypts it chunk by chunk and
  puts finished pieces (local header, ciphertext, MAC, data descriptor) on the job's own small
  queue;
* one output thread drains the jobs strictly in submission order into the sink, so the sink
  only ever sees sequential writes and may be non-seekable (an S3 multipart upload).

Memory is bounded by ``max_in_flight`` jobs times a few chunk-sized queue slots, whatever
the size of the archive or of a member; what grows with the number of members lives on disk
(``ledger.py``).
"""

from __future__ import annotations

import hashlib
import json
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, BinaryIO, Protocol

from . import zipfmt
from .compress import SAMPLE_SIZE, looks_compressed, new_compressor, trial_compress
from .crypto import MAC_LEN, STRENGTHS, WRITE_STRENGTH, derive_keys, new_keystream, new_mac, password_bytes
from .errors import ArchiveWriterError, DuplicateMember
from .ledger import Ledger, NameSet
from .manifest import FORMAT, MANIFEST_NAME
from .names import check_name

CHUNK_SIZE = 1 << 20
#: Sizes at or above this go to zip64 fields (tests lower it to exercise the zip64 path).
ZIP64_LIMIT = zipfmt.MAX32
ZIP64_COUNT_LIMIT = zipfmt.MAX16
# A member whose size is known and below this gets a plain local header; deflate can expand
# data slightly, so keep a margin below 4 GiB.
_SMALL_MEMBER = 0xF000_0000
_QUEUE_DEPTH = 2
_POLL = 0.2


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


class _Aborted(Exception):
    """Internal: another thread failed, stop quietly."""


_EOF = None


@dataclass(eq=False)
class _Job:
    name: str
    compress: bool | None
    size_hint: int | None
    data: bytes | memoryview | None = None
    path: str | None = None
    feed: queue.Queue[bytes | None] | None = None
    out: queue.Queue[Any] = field(default_factory=lambda: queue.Queue(_QUEUE_DEPTH))


@dataclass
class _Result:
    method: int
    compressed: int
    uncompressed: int
    sha256: str
    zip64_local: bool
    dos_time: int
    dos_date: int


class ArchiveWriter:
    """Write an encrypted backupsvc archive into ``fileobj`` (writable, possibly non-seekable).

    Add members with ``add_bytes``, ``add_path``, ``add_stream`` or ``open_member``, then call
    ``close(manifest=...)``, which writes ``manifest.json`` and the central directory. Names
    are checked with the safe-name rules (``UnsafePath``) and must be unique
    (``DuplicateMember``). ``compress=None`` picks store or deflate from the content.
    ``progress(bytes_done)`` is called from the caller's thread, at most every
    ``progress_interval`` seconds and once at the end, with the plaintext bytes written so far.
    Used as a context manager, an exception inside the block aborts the writer (the output
    is then incomplete and must be discarded).
    """

    def __init__(
        self,
        fileobj: BinaryIO | WritableBinary,
        password: str | bytes,
        *,
        workers: int | None = None,
        level: int | None = None,
        progress: Callable[[int], None] | None = None,
        progress_interval: float = 0.5,
        max_in_flight: int | None = None,
        keep_members: bool = False,
    ) -> None:
        self._sink = fileobj
        self._password = password_bytes(password)
        self._level = level
        self._progress = progress
        self._progress_interval = progress_interval
        self._last_progress = 0.0
        self._dos_time, self._dos_date = zipfmt.dos_datetime()
        n_workers = workers or min(4, os.cpu_count() or 2)
        self._max_in_flight = max_in_flight or n_workers + 3
        self._slots = threading.BoundedSemaphore(self._max_in_flight)
        self._work: queue.Queue[_Job | None] = queue.Queue()
        self._order: queue.Queue[_Job | None] = queue.Queue()
        self._abort = threading.Event()
        self._error: BaseException | None = None
        self._names = NameSet()
        self._open_member: MemberWriter | None = None
        self._closed = False
        # Written only by the output thread until it is joined.
        self._offset = 0
        self._archive_hash = hashlib.sha256()
        self._keep_members = keep_members
        self._members: list[MemberInfo] = []
        self._ledger = Ledger()
        self._plain_done = 0
        self._threads = [
            threading.Thread(target=self._worker_loop, name=f"archive-worker-{i}", daemon=True)
            for i in range(n_workers)
        ]
        self._threads.append(threading.Thread(target=self._output_loop, name="archive-output", daemon=True))
        for thread in self._threads:
            thread.start()

    # ----------------------------------------------------------------- public API

    def add_bytes(self, name: str, data: bytes, *, compress: bool | None = None) -> None:
        """Add a small member from memory."""
        self._begin(name)
        self._submit(_Job(name, compress, len(data), data=data))

    def add_path(self, name: str, path: str | os.PathLike[str], *, compress: bool | None = None) -> None:
        """Add a file from disk; a worker thread opens and reads it, so this returns at once."""
        size = os.stat(path).st_size  # fails here, in the caller, if the file is missing
        self._begin(name)
        self._submit(_Job(name, compress, size, path=os.fspath(path)))

    def add_stream(self, name: str, stream: BinaryIO, *, compress: bool | None = None, size: int | None = None) -> None:
        """Add a member read from ``stream`` until EOF; returns once the stream has been read.

        ``size`` (when known) lets the writer skip the zip64 local header; without it the
        member is written as possibly larger than 4 GiB.
        """
        self._begin(name)
        first = _read_full(stream, CHUNK_SIZE)
        if len(first) < CHUNK_SIZE:
            # Whole member in one chunk: no streaming needed (most files of a backup).
            self._submit(_Job(name, compress, len(first), data=first))
            return
        job = _Job(name, compress, size, feed=queue.Queue(_QUEUE_DEPTH))
        self._submit(job)
        feed = job.feed
        assert feed is not None  # noqa: S101 - set just above
        try:
            chunk = first
            while chunk:
                self._put(feed, chunk)
                chunk = _read_full(stream, CHUNK_SIZE)
            self._put(feed, _EOF)
        except BaseException as exc:
            # Half a member is in the pipeline and cannot be taken back: the archive is lost.
            self._fail(exc)
            self.abort()
            raise

    def open_member(self, name: str, *, compress: bool | None = True) -> MemberWriter:
        """A writable member (``write``/``close``, context manager) for content produced on the fly.

        Deflated by default (JSONL data). No other member may be added until it is closed.
        """
        self._begin(name)
        job = _Job(name, compress, None, feed=queue.Queue(_QUEUE_DEPTH))
        self._submit(job)
        member = MemberWriter(self, job)
        self._open_member = member
        return member

    def close(self, manifest: Mapping[str, Any] | None = None) -> ArchiveSummary:
        """Write ``manifest.json`` (caller fields + format + members) and the central directory.

        Returns the summary: bytes written, SHA-256 of the whole archive, members, manifest.
        """
        if self._closed:
            raise ArchiveWriterError("The archive writer is already closed.")
        if self._open_member is not None:
            raise ArchiveWriterError(f"The member {self._open_member.name!r} is still open.")
        doc: dict[str, Any] = {"format": FORMAT}
        for key, value in (manifest or {}).items():
            if key in ("format", "members"):
                raise ValueError(f"The manifest key {key!r} is reserved for the archive writer.")
            doc[key] = value
        self._drain()
        # The manifest is streamed too: its member list is as long as the archive is wide.
        job = _Job(MANIFEST_NAME, True, None, feed=queue.Queue(_QUEUE_DEPTH))
        self._submit(job)
        member = MemberWriter(self, job)
        head = json.dumps(doc, ensure_ascii=False, separators=(",", ":"))
        member.write((head[:-1] + ',"members":[').encode("utf-8"))
        for chunk in self._ledger.manifest_members():
            member.write(chunk)
        member.write(b"]}")
        member.close()
        self._stop_threads()
        self._raise_if_failed()
        cd_offset = self._offset
        for block in self._ledger.central_blocks(CHUNK_SIZE):
            self._emit(block)
        self._emit(
            zipfmt.end_records(self._ledger.count, cd_offset, self._offset - cd_offset, ZIP64_LIMIT, ZIP64_COUNT_LIMIT)
        )
        flush = getattr(self._sink, "flush", None)
        if flush is not None:
            flush()
        self._closed = True
        self._ledger.close()
        self._report(force=True)
        if self._keep_members:
            doc["members"] = [{"path": m.path, "size": m.size, "sha256": m.sha256} for m in self._members]
        return ArchiveSummary(self._offset, self._archive_hash.hexdigest(), list(self._members), doc)

    def abort(self) -> None:
        """Stop all threads without finishing the archive (its output must be discarded)."""
        if self._closed:
            return
        self._closed = True
        self._abort.set()
        for _ in self._threads[:-1]:  # wake idle workers and the output thread
            self._work.put(None)
        self._order.put(None)
        for thread in self._threads:
            thread.join()
        self._ledger.close()

    def __enter__(self) -> ArchiveWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is not None:
            self.abort()
        elif not self._closed:
            self.close()

    @property
    def bytes_done(self) -> int:
        """Plaintext bytes of members fully or partly written to the sink so far."""
        return self._plain_done

    # ----------------------------------------------------------------- caller side

    def _begin(self, name: str) -> None:
        if self._closed:
            raise ArchiveWriterError("The archive writer is closed.")
        if self._open_member is not None:
            raise ArchiveWriterError(f"Close the member {self._open_member.name!r} before adding another.")
        self._raise_if_failed()
        check_name(name)
        if name == MANIFEST_NAME:
            raise DuplicateMember("manifest.json is written by the archive writer itself.")
        # Case-only differences collide on case-insensitive file systems at extraction.
        if not self._names.add(name.casefold()):
            raise DuplicateMember(f"The archive already has a member named {name!r}.")
        self._report()

    def _submit(self, job: _Job) -> None:
        while not self._slots.acquire(timeout=_POLL):
            self._raise_if_failed()
            self._report()
        self._order.put(job)
        self._work.put(job)

    def _put(self, q: queue.Queue[Any], item: Any) -> None:
        """Blocking put from the caller's thread that still notices failures and reports progress
        (also when the source is slow rather than the pipeline: a heartbeat per interval)."""
        while True:
            self._raise_if_failed()
            try:
                q.put(item, timeout=_POLL)
            except queue.Full:
                self._report()
            else:
                self._report()
                return

    def _drain(self) -> None:
        """Wait until every submitted job is written (all slots free again)."""
        taken = 0
        try:
            while taken < self._max_in_flight:
                if self._slots.acquire(timeout=_POLL):
                    taken += 1
                else:
                    self._raise_if_failed()
                    self._report()
        finally:
            for _ in range(taken):
                self._slots.release()
        self._raise_if_failed()

    def _stop_threads(self) -> None:
        for _ in self._threads[:-1]:
            self._work.put(None)
        self._order.put(None)
        for thread in self._threads:
            while thread.is_alive():
                thread.join(_POLL)
                self._report()

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            self.abort()
            raise ArchiveWriterError(f"Writing the archive failed: {self._error}") from self._error

    def _report(self, force: bool = False) -> None:
        if self._progress is None:
            return
        now = time.monotonic()
        if force or now - self._last_progress >= self._progress_interval:
            self._last_progress = now
            self._progress(self._plain_done)

    def _fail(self, exc: BaseException) -> None:
        if self._error is None:
            self._error = exc
        self._abort.set()

    # ----------------------------------------------------------------- worker threads

    def _worker_loop(self) -> None:
        while True:
            job = self._work.get()
            if job is None:
                return
            try:
                self._encode(job)
            except _Aborted:
                return
            except BaseException as exc:  # handed to the caller's thread
                self._fail(exc)
                return

    def _chunks(self, job: _Job) -> Iterator[bytes | memoryview]:
        if job.data is not None:
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
                    item = job.feed.get(timeout=_POLL)
                except queue.Empty:
                    if self._abort.is_set():
                        raise _Aborted from None
                    continue
                if item is _EOF:
                    return
                yield item

    def _out(self, job: _Job, item: Any) -> None:
        while True:
            try:
                job.out.put(item, timeout=_POLL)
                return
            except queue.Full:
                if self._abort.is_set():
                    raise _Aborted from None

    def _encode(self, job: _Job) -> None:
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
        zip64_local = job.size_hint is None or job.size_hint >= min(_SMALL_MEMBER, ZIP64_LIMIT)
        name = job.name.encode("utf-8")
        salt = os.urandom(STRENGTHS[WRITE_STRENGTH][1])
        enc_key, auth_key, verifier = derive_keys(self._password, salt)
        keystream = new_keystream(enc_key)
        mac = new_mac(auth_key)
        digest = hashlib.sha256()
        if head_out:
            digest.update(sample)
        pending: list[bytes] = [
            zipfmt.local_header(name, method, self._dos_time, self._dos_date, zip64_local),
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
        if not zip64_local and (size >= ZIP64_LIMIT or stored >= ZIP64_LIMIT):
            raise ArchiveWriterError(f"The member {job.name!r} grew beyond its announced size while being written.")
        pending.append(mac.digest()[:MAC_LEN])
        pending.append(zipfmt.data_descriptor(stored, size, zip64_local))
        self._out(job, (b"".join(pending), plain_pending))
        self._out(job, _Result(method, stored, size, digest.hexdigest(), zip64_local, self._dos_time, self._dos_date))

    # ----------------------------------------------------------------- output thread

    def _emit(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = self._sink.write(view)
            if written is None:  # a non-blocking raw stream that could not take anything yet
                time.sleep(0.01)
                continue
            view = view[written:]
        self._archive_hash.update(data)
        self._offset += len(data)

    def _output_loop(self) -> None:
        try:
            while True:
                job = self._order.get()
                if job is None:
                    return
                offset = self._offset
                while True:
                    try:
                        item = job.out.get(timeout=_POLL)
                    except queue.Empty:
                        if self._abort.is_set():
                            return
                        continue
                    if isinstance(item, _Result):
                        break
                    data, plain = item
                    self._emit(data)
                    self._plain_done += plain
                header = zipfmt.central_header(
                    job.name.encode("utf-8"),
                    item.method,
                    item.dos_time,
                    item.dos_date,
                    item.compressed,
                    item.uncompressed,
                    offset,
                    ZIP64_LIMIT,
                )
                if job.name == MANIFEST_NAME:  # the manifest does not list itself
                    self._ledger.record(header, None)
                else:
                    self._ledger.record(header, {"path": job.name, "size": item.uncompressed, "sha256": item.sha256})
                    if self._keep_members:
                        self._members.append(
                            MemberInfo(job.name, item.uncompressed, item.sha256, item.compressed, item.method)
                        )
                self._slots.release()
        except BaseException as exc:  # handed to the caller's thread
            self._fail(exc)


class MemberWriter:
    """A member being written chunk by chunk (see ``ArchiveWriter.open_member``)."""

    def __init__(self, writer: ArchiveWriter, job: _Job) -> None:
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
        if len(self._buffer) >= CHUNK_SIZE:
            self._writer._put(self._job.feed, bytes(self._buffer))  # type: ignore[arg-type]
            self._buffer = bytearray()
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
        self._writer._put(self._job.feed, _EOF)  # type: ignore[arg-type]
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


def _read_full(stream: BinaryIO, size: int) -> bytes:
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
