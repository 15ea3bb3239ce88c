"""The offline catalog of a backup: ``index.html`` and ``index.csv``.

Both are rendered from an iterable of ``CatalogEntry`` as an iterator of byte chunks, so a
catalog of any length streams straight into ``ArchiveWriter.open_member``::

    with writer.open_member("index.html") as member:
        for chunk in render_html(entries, title="Backup of ACME"):
            member.write(chunk)

The HTML page is self-contained (inline CSS, no script, no external resource); every value is
escaped, and links are relative to the page, so they work after the archive is extracted.
"""

from __future__ import annotations

import csv
import html
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from urllib.parse import quote

from backupsvc.lib.sizes import human_size

CSV_HEADER = ("title", "ou", "status", "version", "size", "member")
_BATCH = 64 * 1024

_HEAD = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem; color: #222; }}
table {{ border-collapse: collapse; width: 100%; }}
th, td {{ border: 1px solid #ccc; padding: .35rem .6rem; text-align: left; vertical-align: top; }}
th {{ background: #f2f2f2; }}
td.num {{ text-align: right; font-variant-numeric: tabular-nums; }}
</style>
</head>
<body>
<h1>{title}</h1>
{intro}<table>
<thead><tr><th>Title</th><th>OU</th><th>Status</th><th>Version</th><th>Size</th><th>File</th></tr></thead>
<tbody>
"""
_TAIL = """</tbody>
</table>
<p>{count} item(s).</p>
</body>
</html>
"""


@dataclass(frozen=True)
class CatalogEntry:
    """One catalogued item: a document version's title, OU, status, version, size and member path."""

    title: str
    ou: str
    status: str
    version: str
    size: int | None
    member: str | None


def _csv_safe(value: str) -> str:
    # A cell starting with = + - @ (or tab/CR) is run as a formula by spreadsheet programs
    # (CSV injection); a leading apostrophe makes it plain text.
    if value and value[0] in "=+-@\t\r":
        return "'" + value
    return value


def render_csv(entries: Iterable[CatalogEntry]) -> Iterator[bytes]:
    """``index.csv`` as UTF-8 byte chunks (with a BOM so spreadsheet programs detect UTF-8)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    buffer.write("\ufeff")
    writer.writerow(CSV_HEADER)
    for entry in entries:
        writer.writerow(
            [
                _csv_safe(entry.title),
                _csv_safe(entry.ou),
                _csv_safe(entry.status),
                _csv_safe(entry.version),
                "" if entry.size is None else str(entry.size),
                entry.member or "",
            ]
        )
        if buffer.tell() >= _BATCH:
            yield buffer.getvalue().encode("utf-8")
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode("utf-8")


def render_html(entries: Iterable[CatalogEntry], *, title: str = "Backup catalog", intro: str = "") -> Iterator[bytes]:
    """``index.html`` as UTF-8 byte chunks: one escaped table row per entry, relative links."""
    esc = html.escape
    parts = [_HEAD.format(title=esc(title), intro=f"<p>{esc(intro)}</p>\n" if intro else "")]
    size = len(parts[0])
    count = 0
    for entry in entries:
        count += 1
        # Percent-encode each path segment, keep "/" so the link stays relative to index.html.
        link = f'<a href="{esc(quote(entry.member, safe="/"))}">{esc(entry.member)}</a>' if entry.member else ""
        row = (
            f"<tr><td>{esc(entry.title)}</td><td>{esc(entry.ou)}</td><td>{esc(entry.status)}</td>"
            f'<td>{esc(entry.version)}</td><td class="num">{esc(human_size(entry.size, empty=""))}</td>'
            f"<td>{link}</td></tr>\n"
        )
        parts.append(row)
        size += len(row)
        if size >= _BATCH:
            yield "".join(parts).encode("utf-8")
            parts, size = [], 0
    parts.append(_TAIL.format(count=count))
    yield "".join(parts).encode("utf-8")
