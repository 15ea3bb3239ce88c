"""Streaming writer of "backupsvc/1" archives.

Pipeline (why: deflate, PBKDF2 and AES dominate, and zlib/ISA-L, OpenSSL and pycryptodome all
release the GIL, so members processed on separate threads really run in parallel):

* the caller's thread validates names, reads caller-owned streams into bounded queues and
  hands each member to a pool of worker threads as a job;
* a worker derives the member's keys, hashes, compresses and encrypts it chunk by chunk and
  puts finished pieces (local header, ciphertext, MAC, data descriptor) on the job's own small
  queue (``member_pipeline.py``: jobs, the encoding, streamed members);
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
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, BinaryIO

from . import zipfmt
from .crypto import password_bytes
from .errors import ArchiveWriterError, DuplicateMember
from .ledger import Ledger, NameSet
from .manifest import FORMAT, MANIFEST_NAME
from .member_pipeline import (
    CHUNK_SIZE,
    EOF,
    POLL,
    QUEUE_DEPTH,
    Aborted,
    ArchiveSummary,
    Job,
    MemberEncoder,
    MemberInfo,
    MemberWriter,
    Result,
    WritableBinary,
    read_full,
    whole_out,
)
from .names import check_name

__all__ = ["CHUNK_SIZE", "ArchiveSummary", "ArchiveWriter", "MemberInfo", "MemberWriter"]

#: Sizes at or above this go to zip64 fields (tests lower it to exercise the zip64 path).
ZIP64_LIMIT = zipfmt.MAX32
ZIP64_COUNT_LIMIT = zipfmt.MAX16


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
        # Unbounded (``_slots`` bounds them) and in C: a put or get per member on every thread
        # costs far less than ``queue.Queue``'s Python locks and conditions.
        self._work: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._order: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
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
        self._submit(Job(name, compress, len(data), data=data, out=whole_out(len(data))))

    def add_path(self, name: str, path: str | os.PathLike[str], *, compress: bool | None = None) -> None:
        """Add a file from disk; a worker thread opens and reads it, so this returns at once."""
        size = os.stat(path).st_size  # fails here, in the caller, if the file is missing
        self._begin(name)
        self._submit(Job(name, compress, size, path=os.fspath(path)))

    def add_stream(self, name: str, stream: BinaryIO, *, compress: bool | None = None, size: int | None = None) -> None:
        """Add a member read from ``stream`` until EOF; returns once the stream has been read.

        ``size`` (when known) lets the writer skip the zip64 local header; without it the
        member is written as possibly larger than 4 GiB.
        """
        self._begin(name)
        first = read_full(stream, CHUNK_SIZE)
        if len(first) < CHUNK_SIZE:
            # Whole member in one chunk: no streaming needed (most files of a backup).
            self._submit(Job(name, compress, len(first), data=first, out=whole_out(len(first))))
            return
        job = Job(name, compress, size, feed=queue.Queue(QUEUE_DEPTH))
        self._submit(job)
        feed = job.feed
        assert feed is not None  # noqa: S101 - set just above
        try:
            chunk = first
            while chunk:
                self._put(feed, chunk)
                chunk = read_full(stream, CHUNK_SIZE)
            self._put(feed, EOF)
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
        job = Job(name, compress, None, feed=queue.Queue(QUEUE_DEPTH))
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
        job = Job(MANIFEST_NAME, True, None, feed=queue.Queue(QUEUE_DEPTH))
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

    def _submit(self, job: Job) -> None:
        while not self._slots.acquire(timeout=POLL):
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
                q.put(item, timeout=POLL)
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
                if self._slots.acquire(timeout=POLL):
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
                thread.join(POLL)
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
        encoder = MemberEncoder(self._password, self._level, (self._dos_time, self._dos_date), ZIP64_LIMIT, self._abort)
        while True:
            job = self._work.get()
            if job is None:
                return
            try:
                encoder.encode(job)
            except Aborted:
                return
            except BaseException as exc:  # handed to the caller's thread
                self._fail(exc)
                return

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
                        item = job.out.get(timeout=POLL)
                    except queue.Empty:
                        if self._abort.is_set():
                            return
                        continue
                    self._emit(item[0])
                    self._plain_done += item[1]
                    if len(item) == 3:  # the member's last piece carries its Result
                        break
                result: Result = item[2]
                header = zipfmt.central_header(
                    job.name.encode("utf-8"),
                    result.method,
                    result.dos_time,
                    result.dos_date,
                    result.compressed,
                    result.uncompressed,
                    offset,
                    ZIP64_LIMIT,
                )
                if job.name == MANIFEST_NAME:  # the manifest does not list itself
                    self._ledger.record(header, None)
                else:
                    self._ledger.record(
                        header, {"path": job.name, "size": result.uncompressed, "sha256": result.sha256}
                    )
                    if self._keep_members:
                        self._members.append(
                            MemberInfo(job.name, result.uncompressed, result.sha256, result.compressed, result.method)
                        )
                self._slots.release()
        except BaseException as exc:  # handed to the caller's thread
            self._fail(exc)
