"""WinZip AES (AE-2) primitives and password generation.

WinZip AES, as 7-Zip and WinZip implement it (https://www.winzip.com/en/support/aes-encryption/):

* key material = PBKDF2-HMAC-SHA1(password, salt, 1000 iterations), 2 * key length + 2 bytes:
  encryption key, authentication key, 2-byte password verifier;
* data is encrypted with AES in CTR mode whose 16-byte counter is *little-endian* and starts
  at 1 (OpenSSL's CTR mode counts big-endian, so it cannot be used directly);
* HMAC-SHA1 (authentication key) over the ciphertext, truncated to 10 bytes, follows the data.

Key derivation is the per-member cost (4 blocks x 1000 iterations x 2 SHA-1 compressions). The
optional C extension ``_winzip_kdf`` (``native/winzip-kdf``, built by ``make install`` when gcc
and libssl-dev are there) precomputes the HMAC states like 7-Zip and runs the 4 blocks as
interleaved SHA-NI lanes: 0.12 ms of CPU a member against 0.48 ms through ``cryptography``
(OpenSSL's ``PKCS5_PBKDF2_HMAC``), which stays the fallback; both release the GIL and give the
same bytes (tests/archive/test_kdf.py).

Other speeds (measured on the 2-core build machine, 1 MiB buffers): little-endian CTR through pycryptodome's C code
(GIL released) about 600 MB/s, against about 330 MB/s for the pure ``cryptography`` fallback
below (AES-ECB over counter blocks, XOR through Python integers, which holds the GIL).
HMAC-SHA1 and SHA-256 come from ``hashlib`` (OpenSSL, SHA-NI, GIL released).
"""

from __future__ import annotations

import hmac
import secrets
from typing import Any, Protocol

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

try:  # pragma: no cover - depends on the environment
    from _winzip_kdf import pbkdf2_sha1 as _fast_pbkdf2_sha1
except ImportError:  # pragma: no cover
    _fast_pbkdf2_sha1 = None

PBKDF2_ITERATIONS = 1000
#: AES strength code (extra field 0x9901) -> (key length, salt length).
STRENGTHS: dict[int, tuple[int, int]] = {1: (16, 8), 2: (24, 12), 3: (32, 16)}
WRITE_STRENGTH = 3  # AES-256
PWV_LEN = 2
MAC_LEN = 10


class KeyStream(Protocol):
    """A stateful AES-CTR (little-endian counter) transform: encrypting and decrypting are one operation."""

    def update(self, data: bytes) -> bytes:
        """Return ``data`` XOR the next ``len(data)`` keystream bytes."""
        ...


#: Which PBKDF2 ``derive_keys`` uses (benchmarks print it).
KDF_BACKEND = "winzip_kdf" if _fast_pbkdf2_sha1 is not None else "cryptography"


def pbkdf2_sha1(password: bytes, salt: bytes, length: int, *, portable: bool = False) -> bytes:
    """PBKDF2-HMAC-SHA1 with WinZip's 1000 iterations (``portable`` forces ``cryptography``)."""
    if _fast_pbkdf2_sha1 is not None and not portable:
        return _fast_pbkdf2_sha1(password, salt, PBKDF2_ITERATIONS, length)  # type: ignore[no-any-return]
    return PBKDF2HMAC(hashes.SHA1(), length, salt, PBKDF2_ITERATIONS).derive(password)  # noqa: S303 - mandated by WinZip AES


def derive_keys(password: bytes, salt: bytes, strength: int = WRITE_STRENGTH) -> tuple[bytes, bytes, bytes]:
    """Return (encryption key, authentication key, password verifier) for one member."""
    key_len, salt_len = STRENGTHS[strength]
    if len(salt) != salt_len:
        raise ValueError("salt length does not match the AES strength")
    material = pbkdf2_sha1(password, salt, 2 * key_len + PWV_LEN)
    return material[:key_len], material[key_len : 2 * key_len], material[2 * key_len :]


def new_mac(auth_key: bytes) -> hmac.HMAC:
    """HMAC-SHA1 over the ciphertext; the archive stores its first ``MAC_LEN`` bytes."""
    return hmac.new(auth_key, digestmod="sha1")


# The 65,536 possible low 16-bit halves of a counter, little-endian, for building counter blocks.
_LOWS = [i.to_bytes(2, "little") for i in range(1 << 16)]


def counter_blocks(first: int, count: int) -> bytes:
    """WinZip counter blocks ``first``, ``first + 1``, ... as 16-byte little-endian values."""
    out = bytearray()
    value, end = first, first + count
    while value < end:
        high, low = value >> 16, value & 0xFFFF
        take = min((1 << 16) - low, end - value)
        tail = high.to_bytes(14, "little")
        # join() builds low|tail|low|tail... in C: far faster than a loop of to_bytes().
        out += tail.join(_LOWS[low : low + take]) + tail
        value += take
    return bytes(out)


class _EcbKeyStream:
    """Portable fallback: keystream from OpenSSL AES-ECB over counter blocks, XOR in Python."""

    def __init__(self, key: bytes) -> None:
        self._ecb = Cipher(algorithms.AES(key), modes.ECB()).encryptor()  # noqa: S305 - CTR built by hand
        self._next = 1
        self._left = b""

    def update(self, data: bytes) -> bytes:
        n = len(data)
        if not n:
            return b""
        keystream = self._left[:n]
        self._left = self._left[n:]
        need = n - len(keystream)
        if need > 0:
            blocks = (need + 15) // 16
            fresh = self._ecb.update(counter_blocks(self._next, blocks))
            self._next += blocks
            keystream += fresh[:need]
            self._left = fresh[need:]
        mixed = int.from_bytes(data, "little") ^ int.from_bytes(keystream, "little")
        return mixed.to_bytes(n, "little")


def _pycryptodome_factory() -> type | None:
    """pycryptodome(x) implements the little-endian counter in C and releases the GIL."""
    for package in ("Cryptodome", "Crypto"):
        try:
            aes = __import__(f"{package}.Cipher.AES", fromlist=["AES"])
            counter = __import__(f"{package}.Util.Counter", fromlist=["Counter"])
        except ImportError:
            continue

        class _FastKeyStream:
            def __init__(self, key: bytes, aes: Any = aes, counter: Any = counter) -> None:
                ctr = counter.new(128, initial_value=1, little_endian=True)
                self.update = aes.new(key, aes.MODE_CTR, counter=ctr).encrypt

        return _FastKeyStream
    return None


_FAST = _pycryptodome_factory()


def new_keystream(key: bytes, *, portable: bool = False) -> KeyStream:
    """A fresh WinZip AES-CTR transform for one member (``portable`` forces the fallback)."""
    if _FAST is not None and not portable:
        return _FAST(key)  # type: ignore[no-any-return]
    return _EcbKeyStream(key)


# 31 symbols without look-alikes (no i, l, o, 0, 1): read aloud or retyped without doubt.
PASSWORD_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # noqa: S105 - an alphabet, not a password


def generate_password(groups: int = 7, group_len: int = 4) -> str:
    """A random password like ``"k3v9-qz2m-..."``: 7 groups of 4 from 31 symbols = 138 bits of entropy."""
    if groups * group_len * 4.95 < 128:  # log2(31) ~ 4.954 bits per symbol
        raise ValueError("a generated password must carry at least 128 bits of entropy")
    return "-".join("".join(secrets.choice(PASSWORD_ALPHABET) for _ in range(group_len)) for _ in range(groups))


def password_bytes(password: str | bytes) -> bytes:
    """Passwords are UTF-8 encoded, as 7-Zip does for WinZip AES."""
    if isinstance(password, bytes):
        return password
    if not password:
        raise ValueError("An archive password must not be empty.")
    return password.encode("utf-8")
