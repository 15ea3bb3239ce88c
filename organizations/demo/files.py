"""Real document files of mixed types, generated locally and streamed to a binary file.

Every writer takes a target size and produces a valid file of about that size: PDFs and DOCX
carry their prose plus a random "scan" (incompressible), images carry random padding in
chunks decoders skip, text/Markdown/CSV are pure prose. With the default mix of kinds about
60% of the bytes are incompressible and 40% compressible text. Nothing is held in memory
beyond one chunk (1 MiB), whatever the size.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import random
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO
from xml.sax.saxutils import escape

from organizations.demo import images
from organizations.demo.text import Corpus

_WRITE_BUFFER = 64 * 1024


@dataclass(frozen=True)
class FileKind:
    """A file type of the demo mix."""

    key: str
    extension: str
    content_type: str
    weight: int  # share of documents of this kind
    natural_size: tuple[int, int]  # size range in bytes when no scale is asked for


KINDS: dict[str, FileKind] = {
    k.key: k
    for k in (
        FileKind("pdf", "pdf", "application/pdf", 34, (6_000, 60_000)),
        FileKind(
            "docx",
            "docx",
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            14,
            (12_000, 50_000),
        ),
        FileKind("txt", "txt", "text/plain", 12, (1_500, 15_000)),
        FileKind("md", "md", "text/markdown", 6, (1_500, 12_000)),
        FileKind("csv", "csv", "text/csv", 10, (2_000, 40_000)),
        FileKind("png", "png", "image/png", 10, (0, 60_000)),
        FileKind("jpeg", "jpg", "image/jpeg", 14, (0, 90_000)),
    )
}


def pick_kind(rng: random.Random) -> FileKind:
    """A file kind drawn from the demo mix."""
    kinds = list(KINDS.values())
    return rng.choices(kinds, weights=[k.weight for k in kinds])[0]


class HashingWriter:
    """A write-only, unseekable stream that counts and hashes what passes to ``raw``.

    Being unseekable matters: ``zipfile`` then writes data descriptors instead of seeking
    back, so the hash of the written stream is the hash of the file.
    """

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self.size = 0
        self._sha = hashlib.sha256()

    def write(self, data: bytes) -> int:
        self.raw.write(data)
        self._sha.update(data)
        self.size += len(data)
        return len(data)

    def tell(self) -> int:
        return self.size

    def flush(self) -> None:
        self.raw.flush()

    @property
    def sha256(self) -> str:
        return self._sha.hexdigest()


@dataclass(frozen=True)
class DocumentInfo:
    """What a generated file says about itself."""

    reference: str
    title: str
    version: int
    owner: str
    created: dt.datetime


def _buffered(out: BinaryIO, pieces: Iterable[str]) -> None:
    """Encode and write text pieces in writes of about 64 KiB."""
    buf: list[str] = []
    size = 0
    for piece in pieces:
        buf.append(piece)
        size += len(piece)
        if size >= _WRITE_BUFFER:
            out.write("".join(buf).encode())
            buf, size = [], 0
    if buf:
        out.write("".join(buf).encode())


_SECTIONS = ("Purpose", "Scope", "Responsibilities", "Procedure", "Records", "Review")


def _section_title(n: int) -> str:
    return f"{n}. {_SECTIONS[(n - 1) % len(_SECTIONS)]}"


def write_text(out: BinaryIO, rng: random.Random, corpus: Corpus, info: DocumentInfo, size: int) -> None:
    """A plain-text work instruction."""

    def pieces() -> Iterable[str]:
        yield f"{info.title}\n{'=' * len(info.title)}\n\n"
        yield f"Reference: {info.reference}    Version: {info.version}    Owner: {info.owner}\n"
        yield f"Issued: {info.created:%d %B %Y}\n\n"
        for n, paragraph in enumerate(corpus.paragraphs_for(rng, size - 200), start=1):
            if n % 4 == 1:
                yield f"{_section_title(n // 4 + 1)}\n\n"
            yield paragraph + "\n\n"

    _buffered(out, pieces())


def write_markdown(out: BinaryIO, rng: random.Random, corpus: Corpus, info: DocumentInfo, size: int) -> None:
    """A Markdown guidance note with a metadata table and checklists."""

    def pieces() -> Iterable[str]:
        yield f"# {info.title}\n\n| Reference | Version | Owner | Issued |\n|---|---|---|---|\n"
        yield f"| {info.reference} | {info.version} | {info.owner} | {info.created:%Y-%m-%d} |\n\n"
        for n, paragraph in enumerate(corpus.paragraphs_for(rng, size - 250), start=1):
            if n % 4 == 1:
                yield f"## {_section_title(n // 4 + 1)}\n\n"
            if n % 3 == 0:
                yield "".join(f"- [ ] {s.strip()}.\n" for s in paragraph.split(".") if s.strip()) + "\n"
            else:
                yield paragraph + "\n\n"

    _buffered(out, pieces())


def write_csv(out: BinaryIO, rng: random.Random, corpus: Corpus, info: DocumentInfo, size: int) -> None:
    """A register exported as CSV."""
    header = "id,date,topic,owner,status,priority,amount\n"
    _buffered(out, _prepend(header, corpus.csv_lines(rng, max(size - len(header), 1))))


def _prepend(first: str, rest: Iterable[str]) -> Iterable[str]:
    yield first
    yield from rest


def _pdf_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def _pdf_info_string(text: str) -> str:
    """A text string for the document information dictionary (PDFDocEncoding or UTF-16)."""
    if text.isascii():
        return f"({_pdf_escape(text)})"
    return f"<FEFF{text.encode('utf-16-be').hex().upper()}>"


class _PdfWriter:
    """Writes numbered objects and remembers their offsets for the cross-reference table."""

    def __init__(self, out: BinaryIO) -> None:
        self.out = out
        self.pos = 0
        self.offsets: dict[int, int] = {}

    def raw(self, data: bytes) -> None:
        self.out.write(data)
        self.pos += len(data)

    def obj(self, num: int, body: str) -> None:
        self.offsets[num] = self.pos
        self.raw(f"{num} 0 obj\n{body}\nendobj\n".encode("cp1252"))

    def stream(self, num: int, entries: str, chunks: Iterable[bytes], length: int) -> None:
        self.offsets[num] = self.pos
        self.raw(f"{num} 0 obj\n<< {entries} /Length {length} >>\nstream\n".encode("cp1252"))
        for chunk in chunks:
            self.raw(chunk)
        self.raw(b"\nendstream\nendobj\n")

    def finish(self, size: int, root: int, info: int) -> None:
        xref = self.pos
        rows = ["xref", f"0 {size}", "0000000000 65535 f "]
        rows += [f"{self.offsets[n]:010d} 00000 n " for n in range(1, size)]
        self.raw(("\n".join(rows) + "\n").encode("cp1252"))
        self.raw(f"trailer\n<< /Size {size} /Root {root} 0 R /Info {info} 0 R >>\n".encode("cp1252"))
        self.raw(f"startxref\n{xref}\n%%EOF\n".encode("cp1252"))


_PDF_LINES_PER_PAGE = 62
# Content streams use WinAnsiEncoding (cp1252), which has £ and €.


def write_pdf(out: BinaryIO, rng: random.Random, corpus: Corpus, info: DocumentInfo, size: int) -> None:
    """A PDF 1.4: pages of Helvetica prose and, on page one, a random-noise "scan" image."""
    pdf = _PdfWriter(out)
    pdf.raw(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    image_bytes = int(size * 0.6)
    text_bytes = max(int((size - image_bytes - 1500) / 1.12), 800)  # operators add ~12% to the prose
    pdf.obj(1, "<< /Type /Catalog /Pages 2 0 R >>")
    pdf.obj(3, "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>")
    pdf.obj(4, "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold /Encoding /WinAnsiEncoding >>")
    created = f"D:{info.created:%Y%m%d%H%M%S}Z"
    pdf.obj(
        5,
        f"<< /Title {_pdf_info_string(info.title)} /Author {_pdf_info_string(info.owner)} "
        f"/Subject ({info.reference} v{info.version}) /Producer (backupsvc seed_demo) /CreationDate ({created}) >>",
    )
    width = 512
    height = image_bytes // (width * 3)
    image = 6 if height else 0
    if image:
        pdf.stream(
            image,
            f"/Type /XObject /Subtype /Image /Width {width} /Height {height} "
            "/ColorSpace /DeviceRGB /BitsPerComponent 8",
            images.random_chunks(rng, width * height * 3, chunk=width * 3 * 512),
            width * height * 3,
        )
    resources = "/Font << /F1 3 0 R /F2 4 0 R >>" + (f" /XObject << /Im1 {image} 0 R >>" if image else "")

    def lines() -> Iterator[str]:
        for index in corpus.paragraph_indexes(rng, text_bytes):
            yield from corpus.wrapped(index)
            yield ""

    pending = lines()
    kids: list[int] = []
    num = 7 if image else 6
    while True:
        limit = _PDF_LINES_PER_PAGE if kids else (44 if image else 58)  # page one has a title block
        page_lines = list(itertools.islice(pending, limit))
        if kids and not page_lines:
            break
        ops = ["BT"]
        if not kids:  # page one: title block and the scan
            ops.append(f"/F2 15 Tf 50 800 Td ({_pdf_escape(info.title)}) Tj")
            ops.append(f"/F1 9 Tf 0 -18 Td ({info.reference}  version {info.version}  {info.owner}) Tj")
            ops.append("0 -150 Td" if image else "0 -20 Td")
        else:
            ops.append("50 800 Td")
        ops.append("/F1 9 Tf 11 TL")
        ops.extend(f"({_pdf_escape(line)}) Tj T*" if line else "T*" for line in page_lines)
        ops.append("ET")
        if image and not kids:
            ops.append("q 160 0 0 120 385 640 cm /Im1 Do Q")
        content = "\n".join(ops).encode("cp1252")
        pdf.obj(
            num,
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << {resources} >> "
            f"/Contents {num + 1} 0 R >>",
        )
        pdf.stream(num + 1, "", (content,), len(content))
        kids.append(num)
        num += 2
    pdf.obj(2, f"<< /Type /Pages /Kids [{' '.join(f'{k} 0 R' for k in kids)}] /Count {len(kids)} >>")
    pdf.finish(num, root=1, info=5)


_DOCX_DATE = (2026, 1, 1, 0, 0, 0)
_DOCX_CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Default Extension="jpeg" ContentType="image/jpeg"/>'
    '<Override PartName="/word/document.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/>'
    '<Override PartName="/docProps/core.xml" ContentType="application/vnd.openxmlformats-package.core-properties+xml"/>'
    "</Types>"
)
_DOCX_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" '
    'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" '
    'Target="word/document.xml"/>'
    '<Relationship Id="rId2" '
    'Type="http://schemas.openxmlformats.org/package/2006/relationships/metadata/core-properties" '
    'Target="docProps/core.xml"/>'
    '<Relationship Id="rId3" '
    'Type="http://schemas.openxmlformats.org/package/2006/relationships/metadata/thumbnail" '
    'Target="docProps/thumbnail.jpeg"/>'
    "</Relationships>"
)
_W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"


def _zinfo(name: str, compress_type: int) -> zipfile.ZipInfo:
    # A fixed timestamp keeps the bytes (and so the SHA-256) the same on every run.
    zinfo = zipfile.ZipInfo(name, date_time=_DOCX_DATE)
    zinfo.compress_type = compress_type
    return zinfo


def write_docx(out: BinaryIO, rng: random.Random, corpus: Corpus, info: DocumentInfo, size: int) -> None:
    """A Word document: prose in ``word/document.xml`` and a photo thumbnail (the bulk)."""
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zf:  # type: ignore[arg-type]
        zf.writestr(_zinfo("[Content_Types].xml", zipfile.ZIP_DEFLATED), _DOCX_CONTENT_TYPES)
        zf.writestr(_zinfo("_rels/.rels", zipfile.ZIP_DEFLATED), _DOCX_RELS)
        core = (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            '<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties" '
            'xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:dcterms="http://purl.org/dc/terms/" '
            'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
            f"<dc:title>{escape(info.title)}</dc:title><dc:creator>{escape(info.owner)}</dc:creator>"
            f"<cp:revision>{info.version}</cp:revision>"
            f'<dcterms:created xsi:type="dcterms:W3CDTF">{info.created:%Y-%m-%dT%H:%M:%SZ}</dcterms:created>'
            "</cp:coreProperties>"
        )
        zf.writestr(_zinfo("docProps/core.xml", zipfile.ZIP_DEFLATED), core)
        with zf.open(_zinfo("word/document.xml", zipfile.ZIP_DEFLATED), "w", force_zip64=size > 1 << 30) as doc:

            def pieces() -> Iterable[str]:
                yield f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<w:document xmlns:w="{_W}"><w:body>'
                yield f'<w:p><w:pPr><w:pStyle w:val="Title"/></w:pPr><w:r><w:t>{escape(info.title)}</w:t></w:r></w:p>'
                yield f"<w:p><w:r><w:t>{info.reference} version {info.version}</w:t></w:r></w:p>"
                for n, paragraph in enumerate(corpus.paragraphs_for(rng, int(size * 0.3)), start=1):
                    if n % 4 == 1:
                        yield f"<w:p><w:r><w:rPr><w:b/></w:rPr><w:t>{_section_title(n // 4 + 1)}</w:t></w:r></w:p>"
                    yield f"<w:p><w:r><w:t>{escape(paragraph)}</w:t></w:r></w:p>"
                yield "<w:sectPr/></w:body></w:document>"

            _buffered(doc, pieces())  # type: ignore[arg-type]
        thumbnail = images.photo_jpeg(rng, info.title)
        pad = size - out.tell() - len(thumbnail) - 600  # 600: headers and central directory
        with zf.open(_zinfo("docProps/thumbnail.jpeg", zipfile.ZIP_STORED), "w", force_zip64=pad > 1 << 30) as thumb:
            images.write_jpeg(thumb, thumbnail, rng, max(pad, 0))  # type: ignore[arg-type]


def write_png(out: BinaryIO, rng: random.Random, corpus: Corpus, info: DocumentInfo, size: int) -> None:
    """A diagram, padded to ``size``."""
    png = images.diagram_png(rng, info.title)
    images.write_png(out, png, rng, size - len(png))


def write_jpeg(out: BinaryIO, rng: random.Random, corpus: Corpus, info: DocumentInfo, size: int) -> None:
    """A photo, padded to ``size``."""
    jpeg = images.photo_jpeg(rng, info.title)
    images.write_jpeg(out, jpeg, rng, size - len(jpeg))


_WRITERS = {
    "pdf": write_pdf,
    "docx": write_docx,
    "txt": write_text,
    "md": write_markdown,
    "csv": write_csv,
    "png": write_png,
    "jpeg": write_jpeg,
}


def write_document_file(
    out: BinaryIO, *, kind: FileKind, rng: random.Random, corpus: Corpus, info: DocumentInfo, size: int
) -> None:
    """Write a file of ``kind`` of about ``size`` bytes (images never get smaller than drawn)."""
    _WRITERS[kind.key](out, rng, corpus, info, size)
