"""Build the optional ``_winzip_kdf`` extension (PBKDF2-HMAC-SHA1 for WinZip AES, see winzip_kdf.c).

It needs a C compiler, Python's headers and OpenSSL's (Debian: gcc, libssl-dev). Without them
the build is skipped (``optional=True``) and ``backups.archive.crypto`` derives keys through
``cryptography`` instead: same bytes, about twice the CPU.
"""

from setuptools import Extension, setup

setup(
    name="backupsvc-winzip-kdf",
    version="1.0.0",
    description="Fast PBKDF2-HMAC-SHA1 for WinZip AES key derivation (optional C extension of backupsvc)",
    ext_modules=[
        Extension(
            "_winzip_kdf",
            sources=["winzip_kdf.c"],
            libraries=["crypto"],
            extra_compile_args=["-O3"],
            optional=True,
        )
    ],
)
