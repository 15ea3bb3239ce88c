"""What the archive writer remembers about every member until ``close``, kept off the heap.

A backup of 150,000 files would otherwise hold 150,000 central directory entries, manifest
entries and names as Python objects (over 100 MB). Here the central directory and the manifest's
member list are spooled to temporary files and names are 8-byte hashes in a packed array:
about 1 MB of memory for the same backup.
"""

from __future__ import annotations

import bisect
import hashlib
import heapq
import json
import tempfile
from array import array
from collections.abc import Iterator


class Ledger:
    """The central directory (raw headers) and the manifest's member entries, on disk."""

    def __init__(self) -> None:
        self.central = tempfile.TemporaryFile()  # noqa: SIM115 - closed by close()
        self.listed = tempfile.TemporaryFile()  # noqa: SIM115 - one JSON object a line
        self.count = 0

    def record(self, central_header: bytes, listed: dict[str, object] | None) -> None:
        """Add a member's central directory header and, unless None, its manifest entry."""
        self.central.write(central_header)
        self.count += 1
        if listed is not None:
            self.listed.write(json.dumps(listed, ensure_ascii=False, separators=(",", ":")).encode() + b"\n")

    def manifest_members(self) -> Iterator[bytes]:
        """The manifest's member entries, comma-separated, read back from disk."""
        self.listed.seek(0)
        separator = b""
        for line in self.listed:
            yield separator + line.rstrip(b"\n")
            separator = b","

    def central_blocks(self, size: int) -> Iterator[bytes]:
        """The central directory, in blocks of ``size`` bytes."""
        self.central.seek(0)
        while block := self.central.read(size):
            yield block

    def close(self) -> None:
        self.central.close()
        self.listed.close()


class NameSet:
    """Case-folded member names seen so far, as 64-bit BLAKE2b hashes.

    Recent hashes sit in a set; every 4,096 they become one more sorted ``array('Q')`` run
    (8 bytes a name), and more than 8 runs are merged into one (``heapq.merge``: no list as long
    as the archive is ever built). A lookup bisects each run. The set stays small (about 0.3 MB;
    32,768 names took 2-3 MB, which showed as growth of the writer's peak with the tenant). A
    false duplicate needs a 64-bit collision: about one chance in 10^7 for a million members.
    """

    _SPILL = 1 << 12
    _MAX_RUNS = 8

    def __init__(self) -> None:
        self._recent: set[int] = set()
        self._runs: list[array[int]] = []

    def add(self, name: str) -> bool:
        """Remember ``name``; False when it was already there."""
        key = int.from_bytes(hashlib.blake2b(name.encode("utf-8"), digest_size=8).digest(), "little")
        if key in self._recent:
            return False
        for run in self._runs:
            i = bisect.bisect_left(run, key)
            if i < len(run) and run[i] == key:
                return False
        self._recent.add(key)
        if len(self._recent) >= self._SPILL:
            self._runs.append(array("Q", sorted(self._recent)))
            self._recent = set()
            if len(self._runs) > self._MAX_RUNS:
                self._runs = [array("Q", heapq.merge(*self._runs))]
        return True
