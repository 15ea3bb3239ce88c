"""One way to print a size everywhere (pages, emails, the catalog inside archives, the CLI):
binary units with their IEC names (KiB, MiB, GiB), so the page and the command line agree."""

from __future__ import annotations

UNITS = ("KiB", "MiB", "GiB", "TiB")


def human_size(size: int | float | None, *, empty: str = "—") -> str:
    """``1536`` -> ``"1.5 KiB"``; ``None`` -> ``empty``; below 1 KiB the exact byte count."""
    if size is None:
        return empty
    value = float(size)
    if value < 1024:
        count = int(value)
        return f"{count} byte" if count == 1 else f"{count} bytes"
    for unit in UNITS:
        value /= 1024
        if value < 1024 or unit == UNITS[-1]:
            return f"{value:.1f} {unit}"
    raise AssertionError("unreachable")  # pragma: no cover
