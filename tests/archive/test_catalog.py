"""The offline catalog (index.html, index.csv) renders safely and streams."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

from backups.archive import ArchiveReader, ArchiveWriter, CatalogEntry, render_csv, render_html
from backupsvc.lib.sizes import human_size

ENTRIES = [
    CatalogEntry('Quality <manual> & "policy"', "Finance", "active", "3", 123_456, "files/ab12"),
    CatalogEntry('=HYPERLINK("http://evil")', "Legal", "superseded", "1", None, None),
    CatalogEntry("Zürich contract", "OU ü", "inactive", "2", 5, "files/weird name#1"),
]


def test_html_escapes_values_and_links_members_relatively() -> None:
    page = b"".join(render_html(ENTRIES, title="Backup of <ACME>")).decode()
    assert "<title>Backup of &lt;ACME&gt;</title>" in page
    assert "Quality &lt;manual&gt; &amp; &quot;policy&quot;" in page
    assert "<manual>" not in page
    assert '<a href="files/ab12">files/ab12</a>' in page
    assert 'href="files/weird%20name%231"' in page
    assert "120.6 KiB" in page
    assert "<script" not in page and "http" not in page.split("</style>")[0]
    assert "3 item(s)." in page


def test_csv_has_header_neutralises_formulas_and_round_trips() -> None:
    data = b"".join(render_csv(ENTRIES)).decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(data)))
    assert rows[0] == ["title", "ou", "status", "version", "size", "member"]
    assert rows[1] == ['Quality <manual> & "policy"', "Finance", "active", "3", "123456", "files/ab12"]
    assert rows[2][0] == '\'=HYPERLINK("http://evil")' and rows[2][4] == "" and rows[2][5] == ""
    assert rows[3][1] == "OU ü"


def test_rendering_streams_in_chunks_from_a_generator() -> None:
    def many() -> Iterator[CatalogEntry]:
        for i in range(20_000):
            yield CatalogEntry(f"Document {i}", "OU", "active", "1", i, f"files/{i:06x}")

    html_chunks = list(render_html(many()))
    csv_chunks = list(render_csv(many()))
    assert len(html_chunks) > 5 and len(csv_chunks) > 5
    assert max(len(c) for c in html_chunks) < 200_000


def test_catalog_goes_into_an_archive_as_streamed_members() -> None:
    sink = io.BytesIO()
    with ArchiveWriter(sink, "pw") as w:
        with w.open_member("index.html") as m:
            for chunk in render_html(ENTRIES):
                m.write(chunk)
        with w.open_member("index.csv") as m:
            for chunk in render_csv(ENTRIES):
                m.write(chunk)
        w.close()
    reader = ArchiveReader(io.BytesIO(sink.getvalue()), "pw")
    reader.verify()
    assert b"Z\xc3\xbcrich contract" in reader.read_bytes("index.html")


def test_human_size() -> None:
    """One unit system everywhere (pages, emails, the catalog, the CLI): binary, IEC names."""
    assert human_size(0) == "0 bytes"
    assert human_size(1) == "1 byte"
    assert human_size(1536) == "1.5 KiB"
    assert human_size(5 * 1024**3) == "5.0 GiB"
    assert human_size(None) == "—"
    assert human_size(None, empty="") == ""
