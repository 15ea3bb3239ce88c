"""Member-name rules shared by the writer (refuses to write) and the reader (refuses to read).

Names are zip paths: ``/``-separated, relative, UTF-8. Zip member names are never encrypted,
so callers must not put tenant data in them (``files/<opaque id>``).
"""

from __future__ import annotations

import re

from .errors import UnsafePath

MAX_NAME_BYTES = 1024
_DRIVE = re.compile(r"^[A-Za-z]:")
# Control characters and the characters Windows refuses or interprets (":" would also open
# alternate data streams): a name that is safe everywhere is a name we can restore everywhere.
_FORBIDDEN = re.compile(r'[\x00-\x1f\x7f\\:*?"<>|]')


def check_name(name: str) -> None:
    """Raise ``UnsafePath`` unless ``name`` is a safe relative member path."""
    if not isinstance(name, str) or not name:
        raise UnsafePath("An archive member has an empty name.")
    shown = name.encode("unicode_escape").decode("ascii")[:200]
    if len(name.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
        raise UnsafePath(f"The member name {shown!r} is too long.")
    if "\\" in name:
        raise UnsafePath(f"The member name {shown!r} contains a backslash.")
    if name.startswith("/"):
        raise UnsafePath(f"The member name {shown!r} is an absolute path.")
    if _DRIVE.match(name):
        raise UnsafePath(f"The member name {shown!r} starts with a drive letter.")
    if _FORBIDDEN.search(name):
        raise UnsafePath(f"The member name {shown!r} contains a character that is not allowed.")
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise UnsafePath(f"The member name {shown!r} is not valid text.") from None
    for part in name.split("/"):
        if not part:
            raise UnsafePath(f"The member name {shown!r} has an empty path component.")
        if part.strip(".") == "":
            # "..", "." and also "..." (Windows trims trailing dots, so "..." would mean "..").
            raise UnsafePath(f"The member name {shown!r} contains a '.' or '..' component.")
        if part != part.rstrip(". "):
            raise UnsafePath(f"The member name {shown!r} has a component ending in a dot or a space.")
