"""What a reader keeps of an archive's members: about 100 bytes a member, whatever their number.

The central directory stays in the file: an entry is parsed again from there when it is needed
(``Directory.entry``). Kept per member, in arrays: where its directory entry starts, its size,
its place in a table of 64-bit name keys (BLAKE2b), and the SHA-256 its manifest lists (32
bytes). Names are found through the table and confirmed against the directory, so a collision
of keys costs a second look, never a wrong member.

``Names``, ``ListedMembers`` and ``MemberMap`` are the read-only views the reader hands out in
place of the lists and dicts it used to keep (``reader.names``, ``manifest["members"]``).
"""

from __future__ import annotations

import functools
from array import array
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, overload

from . import zipfmt
from .directory import (
    Limits,
    Source,
    check_encryption,
    check_entry,
    check_strict,
    find_end,
    iter_central,
    overhead,
    parse_central,
)
from .errors import ArchiveTooLarge, CorruptArchive, DuplicateMember, UnsafePath
from .manifest import MANIFEST_NAME

_RECENT = 64  # parsed entries kept
_BLOCK = 64 * 1024
_MASK64 = (1 << 64) - 1  # a directory entry is 46 bytes plus its name and extras: one read mostly


def name_key(name: str) -> int:
    """A member name's 64-bit key (never 0: 0 marks a free slot of ``KeyTable``).

    Python's string hash: keyed SipHash, random per process (so names cannot be chosen to
    collide), cached on the string; the keys never leave the process.
    """
    return hash(name) & _MASK64 or 1


class KeyTable:
    """An open-addressing multimap of 64-bit keys to member indices (at most three quarters
    full: 16 to 32 bytes a member). Equal keys may belong to different names; callers confirm
    the name."""

    def __init__(self, capacity: int) -> None:
        size = 8
        while size * 3 < capacity * 4 + 3:
            size <<= 1
        self._mask = size - 1
        self._keys = array("Q", bytes(8 * size))
        self._values = array("I", bytes(array("I").itemsize * size))

    def insert(self, key: int, value: int) -> None:
        keys, mask = self._keys, self._mask
        slot = key & mask
        while keys[slot]:
            slot = (slot + 1) & mask
        keys[slot] = key
        self._values[slot] = value

    def candidates(self, key: int) -> Iterator[int]:
        """The values stored under ``key`` (usually none or one)."""
        keys, mask = self._keys, self._mask
        slot = key & mask
        while found := keys[slot]:
            if found == key:
                yield self._values[slot]
            slot = (slot + 1) & mask


class Directory:
    """An archive's members by index (directory order), the central directory left in the file."""

    def __init__(self, src: Source, cd_offset: int, cd_size: int, count: int) -> None:
        self.src = src
        self.cd_offset = cd_offset
        self.cd_size = cd_size
        self.positions = array("Q")  # where each member's directory entry starts in the file
        self.sizes = array("Q")  # uncompressed sizes
        self.table = KeyTable(count)
        self.order: array[int] | None = None  # member indices by data offset, unless directory order is
        self.manifest = -1  # index of manifest.json
        self.total = 0  # sum of the uncompressed sizes
        self.ratio_error: Exception | None = None  # the first member over the ratio limit
        self.strict_error: Exception | None = None  # the first entry the writer would not have written
        # Filled from the manifest's member list (``list_member``):
        self.expected = bytearray()  # SHA-256 per member, 32 bytes each
        self.listed = bytearray()  # 1 where the manifest lists the member
        self.listing = array("I")  # member indices in the manifest's order
        self._recent = functools.lru_cache(maxsize=_RECENT)(self._parse_entry)
        # The last block of the directory read: neighbouring entries come without another read
        # (on S3, without another ranged GET).
        self._block: tuple[int, bytes] = (0, b"")

    def __len__(self) -> int:
        return len(self.positions)

    def add(self, position: int, entry: zipfmt.CentralEntry) -> None:
        index = len(self.positions)
        self.positions.append(position)
        self.sizes.append(entry.uncompressed)
        self.table.insert(name_key(entry.name), index)

    def entry(self, index: int) -> zipfmt.CentralEntry:
        """The member's directory entry, parsed again from the file (the last few are kept: a
        member is looked up, then opened)."""
        return self._recent(index)

    def _parse_entry(self, index: int) -> zipfmt.CentralEntry:
        position = self.positions[index]
        start, block = self._block
        at = position - start
        if at < 0 or at + zipfmt.CENTRAL.size > len(block):
            start, at = position, 0
            block = self.src.pread(position, min(_BLOCK, self.cd_offset + self.cd_size - position))
            self._block = (start, block)
        name_len, extra_len, comment_len = zipfmt.CENTRAL.unpack_from(block, at)[10:13]
        needed = zipfmt.CENTRAL.size + name_len + extra_len + comment_len
        if at + needed > len(block):
            return parse_central(self.src.pread(position, needed), 0)[0]
        return parse_central(block, at)[0]

    def name(self, index: int) -> str:
        return self.entry(index).name

    def find(self, name: str, *, confirm: bool = True) -> int | None:
        """The index of the member called exactly ``name``, or None.

        ``confirm=False`` trusts a key that only one member has without reading its name back
        (checking a manifest's long member list): a name whose key collides with another's
        then reads as that member, whose SHA-256 will not match; so it fails safe.
        """
        found = list(self.table.candidates(name_key(name)))
        if len(found) == 1 and not confirm:
            return found[0]
        for index in found:
            if self.name(index) == name:
                return index
        return None

    def in_offset_order(self) -> Sequence[int]:
        return self.order if self.order is not None else range(len(self))

    def iter_names(self) -> Iterator[str]:
        """Names in directory order, read from the directory in large chunks."""
        for _position, entry in iter_central(self.src, self.cd_offset, self.cd_size, len(self)):
            yield entry.name

    def start_listing(self) -> None:
        self.expected = bytearray(32 * len(self))
        self.listed = bytearray(len(self))

    def list_member(self, index: int, sha256: str) -> None:
        self.listed[index] = 1
        self.expected[32 * index : 32 * index + 32] = bytes.fromhex(sha256)
        self.listing.append(index)

    def expected_sha(self, index: int) -> str:
        return self.expected[32 * index : 32 * index + 32].hex()


class Names(Sequence[str]):
    """Member names in archive order, ``manifest.json`` included (``in`` is a table lookup)."""

    def __init__(self, directory: Directory) -> None:
        self._d = directory

    def __len__(self) -> int:
        return len(self._d)

    @overload
    def __getitem__(self, index: int) -> str: ...

    @overload
    def __getitem__(self, index: slice) -> list[str]: ...

    def __getitem__(self, index: int | slice) -> str | list[str]:
        if isinstance(index, slice):
            return [self._d.name(i) for i in range(len(self._d))[index]]
        return self._d.name(range(len(self._d))[index])

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self._d.find(name) is not None

    def __iter__(self) -> Iterator[str]:
        return self._d.iter_names()


class MemberMap(Mapping[str, tuple[int, str]]):
    """The manifest's member list as {path: (size, sha256)} (what ``parse_members`` returns)."""

    def __init__(self, directory: Directory) -> None:
        self._d = directory

    def __getitem__(self, path: str) -> tuple[int, str]:
        index = self._d.find(path) if isinstance(path, str) else None
        if index is None or not self._d.listed[index]:
            raise KeyError(path)
        return self._d.sizes[index], self._d.expected_sha(index)

    def __iter__(self) -> Iterator[str]:
        return (self._d.name(i) for i in self._d.listing)

    def __len__(self) -> int:
        return len(self._d.listing)


class ListedMembers(Sequence[dict[str, Any]]):
    """``manifest["members"]`` as the manifest lists them ({path, size, sha256}), made on demand."""

    def __init__(self, directory: Directory) -> None:
        self._d = directory
        self.by_path = MemberMap(directory)

    def __len__(self) -> int:
        return len(self._d.listing)

    @overload
    def __getitem__(self, index: int) -> dict[str, Any]: ...

    @overload
    def __getitem__(self, index: slice) -> list[dict[str, Any]]: ...

    def __getitem__(self, index: int | slice) -> dict[str, Any] | list[dict[str, Any]]:
        if isinstance(index, slice):
            return [self._item(i) for i in self._d.listing[index]]
        return self._item(self._d.listing[index])

    def __eq__(self, other: object) -> bool:
        if isinstance(other, list | tuple | ListedMembers):
            return len(self) == len(other) and list(self) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def _item(self, i: int) -> dict[str, Any]:
        return {"path": self._d.name(i), "size": self._d.sizes[i], "sha256": self._d.expected_sha(i)}


class Manifest(dict[str, Any]):
    """A validated manifest. Its "members" is a ``ListedMembers`` view of the reader's index;
    ``items()`` (what ``json.dumps`` and copies use) gives it as a list."""

    def items(self) -> Any:
        return [(k, list(v) if isinstance(v, ListedMembers) else v) for k, v in super().items()]


def read_directory(src: Source, limits: Limits) -> Directory:
    """Parse and check the central directory (names, duplicates, encryption, layout) in one pass.

    Raises at once what the directory itself gets wrong; the first member over the ratio limit
    and the first entry the writer would not have written are kept on the result
    (``ratio_error``, ``strict_error``) for the reader to raise in its own order.
    """
    count, cd_offset, cd_size, _end = find_end(src)
    if count > limits.max_members:
        raise ArchiveTooLarge(f"The backup has {count} files, more than the {limits.max_members} this server accepts.")
    directory = Directory(src, cd_offset, cd_size, count)
    folded = KeyTable(count)  # case-folded names: "A" and "a" are the same file on many disks
    folders: dict[str, int] = {}  # case-folded folder -> first member inside it
    file_folder: int | None = None  # the first member that is also a folder
    offsets = array("Q")
    ends = array("Q")
    for position, entry in iter_central(src, cd_offset, cd_size, count):
        check_entry(entry)
        name = entry.name
        key = name.casefold()
        folded_key = name_key(key)
        if any(directory.name(i).casefold() == key for i in folded.candidates(folded_key)):
            raise DuplicateMember(f"The archive contains the member {name!r} more than once.")
        check_encryption(entry)
        index = len(directory)
        directory.add(position, entry)
        folded.insert(folded_key, index)
        if key in folders and (file_folder is None or index < file_folder):
            file_folder = index
        parts = key.split("/")
        for i in range(1, len(parts)):
            folder = "/".join(parts[:i])
            if folder not in folders:
                folders[folder] = index
                for other in folded.candidates(name_key(folder)):
                    if directory.name(other).casefold() == folder and (file_folder is None or other < file_folder):
                        file_folder = other
        offsets.append(entry.offset)
        ends.append(entry.offset + zipfmt.LOCAL.size + len(entry.raw_name) + entry.compressed)
        directory.total += entry.uncompressed
        if name == MANIFEST_NAME:
            directory.manifest = index
        if directory.ratio_error is None:
            directory.ratio_error = _ratio_error(entry, limits)
        if directory.strict_error is None:
            try:
                check_strict(entry)
            except CorruptArchive as exc:
                directory.strict_error = exc
    if any(offsets[i] > offsets[i + 1] for i in range(len(offsets) - 1)):
        directory.order = array("I", sorted(range(len(offsets)), key=offsets.__getitem__))
    # Member data must lie before the directory without overlapping (overlap is a zip-bomb trick).
    previous_end = 0
    for index in directory.in_offset_order():
        if offsets[index] < previous_end:
            raise CorruptArchive(f"The data of {directory.name(index)!r} overlaps another member.")
        previous_end = ends[index]
        if previous_end > cd_offset:
            raise CorruptArchive(f"The data of {directory.name(index)!r} overlaps the archive's directory.")
    # A name cannot be both a file and a folder ("a" and "a/b"): extraction would fail midway.
    if file_folder is not None:
        raise UnsafePath(f"The member {directory.name(file_folder)!r} is both a file and a folder in this archive.")
    return directory


def _ratio_error(entry: zipfmt.CentralEntry, limits: Limits) -> ArchiveTooLarge | None:
    if entry.uncompressed < limits.ratio_min_size:
        return None
    stored = max(1, entry.compressed - overhead(entry))
    if entry.uncompressed / stored <= limits.max_ratio:
        return None
    return ArchiveTooLarge(
        f"The member {entry.name!r} expands {entry.uncompressed / stored:.0f} times, more than "
        f"the {limits.max_ratio:g} allowed; the file looks like a zip bomb."
    )
