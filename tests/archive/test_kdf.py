"""The fast PBKDF2-HMAC-SHA1 (``_winzip_kdf``, native/winzip-kdf) gives the bytes ``cryptography`` gives."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

from backups.archive import ArchiveReader, ArchiveWriter
from backups.archive import crypto as crypto_module

from .test_roundtrip import PASSWORD, SEVEN_ZIP, NonSeekableSink, needs_7z, text

kdf = pytest.importorskip("_winzip_kdf", reason="the optional C extension is not built (native/winzip-kdf)")

PASSWORDS = [b"x", PASSWORD.encode(), "pässwörd ✓".encode(), b"p" * 64, b"q" * 65, b"r" * 200]


def reference(password: bytes, salt: bytes, iterations: int, length: int) -> bytes:
    return PBKDF2HMAC(hashes.SHA1(), length, salt, iterations).derive(password)  # noqa: S303 - WinZip AES


def test_rfc6070_vectors() -> None:
    assert kdf.pbkdf2_sha1(b"password", b"salt", 1, 20).hex() == "0c60c80f961f0e71f3a9b524af6012062fe037a6"
    assert kdf.pbkdf2_sha1(b"password", b"salt", 2, 20).hex() == "ea6c014dc72d6f8ccd1ed92ace1d41f0d8de8957"
    assert kdf.pbkdf2_sha1(b"password", b"salt", 4096, 20).hex() == "4b007901b765489abead49d926f721d065a429c1"
    assert (
        kdf.pbkdf2_sha1(b"passwordPASSWORDpassword", b"saltSALTsaltSALTsaltSALTsaltSALTsalt", 4096, 25).hex()
        == "3d2eec4fe41c849b80c8d83662c0e44a8b291a964cf2f07038"
    )


@pytest.mark.parametrize("password", PASSWORDS)
def test_matches_cryptography_for_winzip_lengths_and_other_shapes(password: bytes) -> None:
    for salt_len in (8, 12, 16, 0, 61):
        salt = os.urandom(salt_len)
        for iterations, length in ((1000, 66), (1000, 50), (1000, 34), (1, 20), (2, 40), (3, 66), (1000, 81), (7, 200)):
            assert kdf.pbkdf2_sha1(password, salt, iterations, length) == reference(password, salt, iterations, length)


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError):
        kdf.pbkdf2_sha1(b"pw", b"salt", 0, 20)
    with pytest.raises(ValueError):
        kdf.pbkdf2_sha1(b"pw", b"salt", 1000, 0)
    with pytest.raises(TypeError):
        kdf.pbkdf2_sha1("pw", b"salt", 1000, 20)


def test_the_portable_path_of_the_extension_matches_too() -> None:
    """Without SHA-NI (forced here) the extension uses OpenSSL's SHA1_Transform: same bytes."""
    code = (
        "import os, _winzip_kdf as k;"
        "from cryptography.hazmat.primitives import hashes;"
        "from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC;"
        "assert k.SHANI == 0;"
        "s = os.urandom(16);"
        "assert k.pbkdf2_sha1(b'pw', s, 1000, 66) == PBKDF2HMAC(hashes.SHA1(), 66, s, 1000).derive(b'pw');"
        "print('ok')"
    )
    env = {**os.environ, "WINZIP_KDF_NO_SHANI": "1"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


def test_derive_keys_uses_the_extension_and_the_fallback_agrees() -> None:
    assert crypto_module.KDF_BACKEND == "winzip_kdf"
    salt = os.urandom(16)
    fast = crypto_module.pbkdf2_sha1(PASSWORD.encode(), salt, 66)
    assert fast == crypto_module.pbkdf2_sha1(PASSWORD.encode(), salt, 66, portable=True)


@needs_7z
def test_archives_of_either_kdf_open_in_the_other_and_in_7zip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    members = {"files/a": text(10_000), "files/b": os.urandom(3000), "files/empty": b""}
    blobs = {}
    for label, fast in (("fast", kdf.pbkdf2_sha1), ("portable", None)):
        monkeypatch.setattr(crypto_module, "_fast_pbkdf2_sha1", fast)
        sink = NonSeekableSink()
        with ArchiveWriter(sink, PASSWORD) as w:
            for name, data in members.items():
                w.add_bytes(name, data)
            w.close()
        blobs[label] = bytes(sink.data)
    for reader_fast in (kdf.pbkdf2_sha1, None):
        monkeypatch.setattr(crypto_module, "_fast_pbkdf2_sha1", reader_fast)
        for blob in blobs.values():
            reader = ArchiveReader(io.BytesIO(blob), PASSWORD)
            reader.verify()
            for name, data in members.items():
                with reader.open(name) as f:
                    assert f.read() == data
    assert SEVEN_ZIP is not None
    for label, blob in blobs.items():
        path = tmp_path / f"{label}.zip"
        path.write_bytes(blob)
        tested = subprocess.run([SEVEN_ZIP, "t", f"-p{PASSWORD}", str(path)], capture_output=True, text=True)
        assert tested.returncode == 0, tested.stdout + tested.stderr
