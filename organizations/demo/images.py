"""Pillow-drawn images (logos, diagrams, photos) and size padding that keeps them valid.

Padding goes into places decoders skip by design: a PNG private ancillary chunk (``prVt``)
before ``IEND``, JPEG ``APP15`` segments after the JFIF header. The padding is random, so it
is incompressible like real photographs and scans.
"""

from __future__ import annotations

import io
import random
import struct
import zlib
from collections.abc import Iterator
from typing import BinaryIO

from PIL import Image, ImageDraw, ImageFont

PAD_CHUNK = 1024 * 1024  # random bytes are produced and written a MiB at a time
_JPEG_SEGMENT = 65533  # the largest payload of one JPEG marker segment


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow without FreeType
        return ImageFont.load_default()


def logo_png(name: str, colour: tuple[int, int, int]) -> bytes:
    """A square logo with the organization's initials on its colour."""
    img = Image.new("RGB", (256, 256), colour)
    draw = ImageDraw.Draw(img)
    draw.ellipse((16, 16, 240, 240), outline=(255, 255, 255), width=8)
    initials = "".join(word[0] for word in name.split() if word[0].isalpha())[:2].upper()
    draw.text((128, 128), initials, fill=(255, 255, 255), font=_font(96), anchor="mm")
    out = io.BytesIO()
    img.save(out, format="PNG", optimize=True)
    return out.getvalue()


def diagram_png(rng: random.Random, title: str) -> bytes:
    """A process map or chart: boxes, arrows and labels on white."""
    width, height = 480, 320
    img = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(img)
    draw.text((12, 10), title[:60], fill=(20, 20, 20), font=_font(16))
    boxes = rng.randint(3, 6)
    step = (width - 40) // boxes
    for i in range(boxes):
        x = 20 + i * step
        y = rng.randint(60, height - 90)
        colour = (rng.randint(60, 220), rng.randint(60, 220), rng.randint(60, 220))
        draw.rectangle((x, y, x + step - 24, y + 50), fill=colour, outline=(0, 0, 0), width=2)
        draw.text((x + 6, y + 18), f"Step {i + 1}", fill=(0, 0, 0), font=_font(12))
        if i:
            draw.line((x - 24, y + 25, x, y + 25), fill=(0, 0, 0), width=2)
    out = io.BytesIO()
    img.save(out, format="PNG")
    return out.getvalue()


def photo_jpeg(rng: random.Random, title: str) -> bytes:
    """A photo-like picture: gradient, shapes, sensor noise and a caption."""
    width, height = 400, 300
    top = (rng.randint(0, 255), rng.randint(0, 255), rng.randint(0, 255))
    bottom = (rng.randint(0, 255), rng.randint(0, 255), rng.randint(0, 255))
    img = Image.linear_gradient("L").resize((width, height))
    img = Image.composite(Image.new("RGB", img.size, bottom), Image.new("RGB", img.size, top), img)
    draw = ImageDraw.Draw(img)
    for _ in range(rng.randint(3, 8)):
        x, y = rng.randint(0, width - 40), rng.randint(0, height - 40)
        box = (x, y, x + rng.randint(20, 160), y + rng.randint(20, 120))
        fill = (rng.randint(0, 255), rng.randint(0, 255), rng.randint(0, 255))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)(box, fill=fill)
    noise = Image.frombytes("RGB", img.size, rng.randbytes(width * height * 3))
    img = Image.blend(img, noise, 0.12)
    ImageDraw.Draw(img).text((10, height - 24), title[:48], fill=(255, 255, 255), font=_font(14))
    out = io.BytesIO()
    img.save(out, format="JPEG", quality=85)
    return out.getvalue()


def random_chunks(rng: random.Random, nbytes: int, chunk: int = PAD_CHUNK) -> Iterator[bytes]:
    """Yield ``nbytes`` of deterministic random bytes in chunks of at most ``chunk``."""
    while nbytes > 0:
        n = min(chunk, nbytes)
        yield rng.randbytes(n)
        nbytes -= n


def write_png(out: BinaryIO, png: bytes, rng: random.Random, pad: int) -> None:
    """Write ``png`` with about ``pad`` random bytes in private chunks before ``IEND``."""
    iend = png[-12:]
    if iend[4:8] != b"IEND":
        raise ValueError("Not a PNG ending with IEND.")
    out.write(png[:-12])
    while pad > 12:
        data = rng.randbytes(min(PAD_CHUNK, pad - 12))
        crc = zlib.crc32(data, zlib.crc32(b"prVt"))
        out.write(struct.pack(">I", len(data)) + b"prVt" + data + struct.pack(">I", crc))
        pad -= len(data) + 12
    out.write(iend)


def write_jpeg(out: BinaryIO, jpeg: bytes, rng: random.Random, pad: int) -> None:
    """Write ``jpeg`` with about ``pad`` random bytes in APP15 segments after the JFIF header."""
    if jpeg[:2] != b"\xff\xd8":
        raise ValueError("Not a JPEG.")
    head = 2
    if jpeg[2:4] == b"\xff\xe0":  # keep APP0 (JFIF) first, as the standard requires
        head = 4 + int.from_bytes(jpeg[4:6], "big")
    out.write(jpeg[:head])
    while pad > 4:
        data = rng.randbytes(min(_JPEG_SEGMENT, pad - 4))
        out.write(b"\xff\xef" + struct.pack(">H", len(data) + 2) + data)
        pad -= len(data) + 4
    out.write(jpeg[head:])
