"""Deflate back end and the store-or-deflate decision.

Raw deflate (no zlib header) comes from ISA-L (``isal`` package) when it is installed and from
the standard ``zlib`` otherwise; both produce standard deflate that 7-Zip reads. Measured on
generated prose (1 MiB buffers, one core): zlib level 1 103 MB/s at 42.1 % of the input,
ISA-L level 1 312 MB/s at 40.8 %, level 2 342 MB/s at 39.7 %; 7-Zip ``-mx=1`` reaches 36.4 %.
Deflate is the writer's bottleneck, so ISA-L is the one to install. Both release the GIL.
ISA-L needs one workaround, ``clear_vector_state`` below: without it the writer's worker
threads ran PBKDF2, SHA-256 and AES about 3 times slower (1 GiB benchmark: 30 CPU-seconds
instead of 16).
"""

from __future__ import annotations

import threading
import zlib
from types import ModuleType
from typing import Protocol

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms

try:  # pragma: no cover - depends on the environment
    from isal import isal_zlib as _isal
except ImportError:  # pragma: no cover
    _isal = None

BACKEND: ModuleType = _isal if _isal is not None else zlib
BACKEND_NAME = "isal" if _isal is not None else "zlib"
#: What a damaged deflate stream raises (ISA-L has its own twin of ``zlib.error``).
DECOMPRESS_ERRORS: tuple[type[Exception], ...] = (zlib.error,) if _isal is None else (zlib.error, _isal.error)
#: ISA-L levels go 0..3 (0 expands random data, so never use it); zlib's 1 is its fastest.
#: Level 3: on the files of a seeded 1 GiB tenant (4,000 files, 221 MB) it wrote an archive
#: 8.6 % smaller than level 2 for the same CPU time (3.7 s against 3.8 s: per-member key
#: derivation, not deflate, dominates), which brings the archive within 5 % of 7-Zip ``-mx=1``.
DEFAULT_LEVEL = 3 if _isal is not None else 1
Z_SYNC_FLUSH = zlib.Z_SYNC_FLUSH

# Stored rather than deflated when the first bytes say the content is already compressed.
_MAGIC: tuple[bytes, ...] = (
    b"\xff\xd8\xff",  # JPEG
    b"\x89PNG\r\n\x1a\n",
    b"GIF87a",
    b"GIF89a",
    b"PK\x03\x04",  # zip and everything built on it: docx, xlsx, pptx, odt, epub, jar
    b"\x1f\x8b",  # gzip
    b"BZh",
    b"\xfd7zXZ\x00",
    b"7z\xbc\xaf\x27\x1c",
    b"\x28\xb5\x2f\xfd",  # zstd
    b"Rar!\x1a\x07",
    b"ID3",  # mp3
    b"OggS",
    b"fLaC",
)
_COMPRESSED_SUFFIXES = frozenset(
    [
        ".jpg",
        ".jpeg",
        ".png",
        ".gif",
        ".webp",
        ".heic",
        ".heif",
        ".avif",
        ".zip",
        ".gz",
        ".tgz",
        ".bz2",
        ".xz",
        ".7z",
        ".rar",
        ".zst",
        ".mp3",
        ".mp4",
        ".m4a",
        ".m4v",
        ".mov",
        ".avi",
        ".mkv",
        ".webm",
        ".ogg",
        ".flac",
        ".docx",
        ".xlsx",
        ".pptx",
        ".odt",
        ".ods",
        ".odp",
        ".epub",
        ".jar",
    ]
)
#: How much of the first chunk is trial-compressed when neither name nor magic decides.
SAMPLE_SIZE = 64 * 1024
#: Deflate is kept only if it saves at least this share of the sample.
MIN_SAVING = 0.03


class Compressor(Protocol):
    """The part of a zlib compress object the writer uses."""

    def compress(self, data: bytes, /) -> bytes: ...

    def flush(self, mode: int = ..., /) -> bytes: ...


_local = threading.local()
_CLEAN_INPUT = bytes(512)


def clear_vector_state() -> None:
    """Leave the calling thread's vector registers clean after ISA-L compressed something.

    ISA-L's deflate returns with the upper halves of the AVX registers dirty (no VZEROUPPER).
    Until the thread executes VZEROUPPER, every legacy-SSE instruction pays a transition
    penalty, and OpenSSL's SHA-NI code (PBKDF2, SHA-256, HMAC) and AES-NI run about 3 times
    slower: measured PBKDF2 0.65 ms before the first ISA-L call, 1.8-2.1 ms after it, for
    good. OpenSSL's wide ChaCha20 code ends with VZEROUPPER, so a tiny keystream request
    (about 1 microsecond, output discarded) restores full speed.
    """
    encryptor = getattr(_local, "encryptor", None)
    if encryptor is None or _local.calls > 1 << 20:  # fresh cipher long before its counter wraps
        encryptor = Cipher(algorithms.ChaCha20(bytes(32), bytes(16)), mode=None).encryptor()
        _local.encryptor, _local.calls = encryptor, 0
    _local.calls += 1
    encryptor.update(_CLEAN_INPUT)


class _CleanCompressor:
    """An ISA-L compress object that clears the vector state after each call (see above)."""

    __slots__ = ("_inner",)

    def __init__(self, inner: Compressor) -> None:
        self._inner = inner

    def compress(self, data: bytes, /) -> bytes:
        out = self._inner.compress(data)
        clear_vector_state()
        return out

    def flush(self, mode: int = zlib.Z_FINISH, /) -> bytes:
        out = self._inner.flush(mode)
        clear_vector_state()
        return out


def new_compressor(level: int | None = None) -> Compressor:
    """A raw-deflate compressor at ``level`` (back-end default when None)."""
    inner = BACKEND.compressobj(DEFAULT_LEVEL if level is None else level, zlib.DEFLATED, -15)
    return _CleanCompressor(inner) if _isal is not None else inner  # type: ignore[no-any-return]


def new_decompressor() -> zlib._Decompress:
    """A raw-deflate decompressor (supports ``max_length`` and ``unconsumed_tail``)."""
    return BACKEND.decompressobj(-15)  # type: ignore[no-any-return]


def looks_compressed(name: str, head: bytes) -> bool:
    """True when the member name or its first bytes identify an already-compressed format."""
    dot = name.rfind(".")
    if dot > name.rfind("/") and name[dot:].lower() in _COMPRESSED_SUFFIXES:
        return True
    if head.startswith(_MAGIC):
        return True
    # RIFF containers (WebP, AVI, WAV) and ISO media (MP4, MOV, HEIC: "ftyp" at offset 4).
    return (head[:4] == b"RIFF" and head[8:12] in (b"WEBP", b"AVI ")) or head[4:8] == b"ftyp"


def trial_compress(compressor: Compressor, sample: bytes) -> bytes | None:
    """Deflate ``sample`` as the start of the member; None if that saves too little to keep.

    The sync flush makes the output so far complete, so the real stream simply continues from
    it: the trial costs nothing for compressible content.
    """
    out = compressor.compress(sample) + compressor.flush(Z_SYNC_FLUSH)
    if len(out) > len(sample) * (1 - MIN_SAVING):
        return None
    return out
