"""The archive benchmark's generated corpus: files shaped like a law firm's documents (about
60 % of the bytes incompressible, shaped like JPEG/PDF/PNG/DOCX files, the rest prose, CSV,
JSON and HTML from an invented Zipf-distributed vocabulary), reproducible from a seed and
reused when already on disk (``archive_bench.py``)."""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path

# File types of the incompressible share, with a plausible magic prefix each.
_BINARY_KINDS: list[tuple[str, bytes]] = [
    (".jpg", b"\xff\xd8\xff\xe0\x00\x10JFIF\x00"),
    (".pdf", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n"),
    (".png", b"\x89PNG\r\n\x1a\n"),
    (".docx", b"PK\x03\x04\x14\x00\x06\x00"),
]
_TEXT_KINDS = [".txt", ".csv", ".json", ".html"]


class _TextFactory:
    """Generates varied, realistic-looking text (Zipf-distributed invented vocabulary).

    The pools are built once; every file samples paragraphs/rows from them at random, so
    a deflate window sees only the redundancy natural language has, not repeated blocks.
    """

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        syllables = [
            "ka",
            "to",
            "ri",
            "men",
            "sa",
            "lo",
            "ver",
            "an",
            "tion",
            "de",
            "pro",
            "con",
            "ex",
            "ble",
            "ing",
            "ment",
            "ly",
            "ra",
            "ni",
            "cu",
            "po",
            "tra",
            "the",
            "al",
            "er",
            "in",
            "st",
            "or",
            "es",
            "ous",
            "ive",
            "ure",
            "ba",
            "mi",
            "fe",
            "go",
            "hu",
        ]
        vocab: set[str] = set()
        while len(vocab) < 8000:
            vocab.add("".join(rng.choice(syllables) for _ in range(rng.choice([1, 2, 2, 2, 3, 3, 4]))))
        common = [
            "the",
            "of",
            "and",
            "to",
            "a",
            "in",
            "is",
            "that",
            "for",
            "it",
            "as",
            "was",
            "with",
            "be",
            "by",
            "on",
            "not",
            "he",
            "this",
            "are",
            "or",
            "his",
            "from",
            "at",
            "which",
            "but",
            "have",
            "an",
            "they",
            "you",
            "were",
            "her",
            "she",
            "there",
            "one",
            "all",
            "we",
            "their",
        ]
        self.words = common + sorted(vocab)
        self.weights = [1 / (i + 1) ** 1.05 for i in range(len(self.words))]
        self.paragraphs = [self._paragraph() for _ in range(6000)]
        self.rows = [self._csv_row(i) for i in range(20000)]
        self.records = [self._json_record(i) for i in range(20000)]

    def _sentence(self) -> str:
        rng = self.rng
        n = rng.randint(6, 24)
        w = rng.choices(self.words, self.weights, k=n)
        if rng.random() < 0.2:
            w.insert(rng.randint(0, n - 1), str(rng.randint(1, 2025)))
        if rng.random() < 0.3:
            w.insert(rng.randint(1, n - 1), w.pop() + ",")
        s = " ".join(w)
        return s[0].upper() + s[1:] + rng.choice(".....?!")

    def _paragraph(self) -> str:
        return " ".join(self._sentence() for _ in range(self.rng.randint(2, 8)))

    def _name(self) -> str:
        return " ".join(self.rng.choice(self.words[50:3000]).capitalize() for _ in range(2))

    def _csv_row(self, i: int) -> str:
        rng = self.rng
        return (
            f"{100000 + i},{rng.randint(2015, 2025)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d},"
            f'"{self._name()}",{rng.choice(["open", "closed", "pending", "billed"])},'
            f"{rng.randint(0, 99999) / 100:.2f},{rng.choice(['EUR', 'USD', 'CHF'])},{rng.randint(1, 40)}\n"
        )

    def _json_record(self, i: int) -> str:
        rng = self.rng
        return json.dumps(
            {
                "id": rng.randint(1, 10**7),
                "title": self._sentence()[:60],
                "client": self._name(),
                "status": rng.choice(["active", "inactive", "superseded"]),
                "amount": round(rng.random() * 5000, 2),
                "created_at": f"2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:00:00Z",
                "notes": self.rng.choice(self.paragraphs)[:200],
            }
        )

    def make(self, kind: str, size: int) -> bytes:
        """Return about ``size`` bytes of text of the given kind."""
        rng = self.rng
        if kind == ".csv":
            pool, sep, head = self.rows, "", "id,date,name,status,amount,currency,qty\n"
        elif kind == ".json":
            pool, sep, head = self.records, "\n", ""
        elif kind == ".html":
            pool, sep, head = [f"<p>{p}</p>" for p in self.paragraphs[:2000]], "\n", "<html><body>\n"
        else:
            pool, sep, head = self.paragraphs, "\n\n", ""
        avg = sum(len(p) for p in pool[:200]) / 200 + len(sep)
        parts = rng.choices(pool, k=max(1, int(size / avg) + 1))
        return (head + sep.join(parts)).encode()[:size]


def build_corpus(root: Path, size_mb: int, files: int, seed: int = 7) -> tuple[int, int]:
    """Write the corpus under ``root``; return (file count, total bytes). Reused when present."""
    marker = root / ".corpus.json"
    if marker.exists():
        meta = json.loads(marker.read_text())
        if meta.get("size_mb") == size_mb and meta.get("files") == files and meta.get("seed") == seed:
            return meta["count"], meta["bytes"]
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    rng = random.Random(seed)
    total = size_mb * 1024 * 1024
    # Log-normal sizes (many small files, a few large ones), scaled to the requested total.
    raw = [rng.lognormvariate(0, 1.3) for _ in range(files)]
    scale = total / sum(raw)
    sizes = [max(64, int(r * scale)) for r in raw]
    # Mark files incompressible until ~60 % of the bytes are.
    order = list(range(files))
    rng.shuffle(order)
    binary: set[int] = set()
    acc = 0
    for i in order:
        if acc >= 0.6 * total:
            break
        binary.add(i)
        acc += sizes[i]
    text = _TextFactory(rng)
    written = 0
    for i, size in enumerate(sizes):
        sub = root / f"d{i % 50:02d}"
        sub.mkdir(exist_ok=True)
        if i in binary:
            ext, magic = _BINARY_KINDS[i % len(_BINARY_KINDS)]
            data = magic + os.urandom(max(0, size - len(magic)))
        else:
            ext = _TEXT_KINDS[i % len(_TEXT_KINDS)]
            data = text.make(ext, size)
        (sub / f"f{i:05d}{ext}").write_bytes(data)
        written += len(data)
    marker.write_text(json.dumps({"size_mb": size_mb, "files": files, "seed": seed, "count": files, "bytes": written}))
    return files, written


def corpus_files(root: Path) -> list[Path]:
    """The corpus files in a stable order."""
    return sorted(p for p in root.rglob("*") if p.is_file() and p.name != ".corpus.json")
