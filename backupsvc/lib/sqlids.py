"""Id lists of few distinct lengths for ``pk__in`` lookups in long-running workers.

Every length of an ``IN`` list is a new SQL text, and SQLite's driver keeps up to 128 prepared
statements per connection (about 0.2 MB each with a thousand parameters) until the connection
closes: a worker looking up batches of varying size grows with the number of batches. Padding
the list with ids no row has (primary keys start at 1; ``__in`` drops repeated values, so the
padding must be distinct) keeps the number of distinct texts small.
"""

from __future__ import annotations

from collections.abc import Iterable

#: The shortest padded list: small lookups share one statement.
SMALLEST = 16


def padded_to(ids: Iterable[int], length: int) -> set[int]:
    """``ids`` padded with negative ids to exactly ``length`` values (or more, if given more)."""
    padded = set(ids)
    padded.update(range(-1, len(padded) - length - 1, -1))
    return padded


def padded(ids: Iterable[int]) -> set[int]:
    """``ids`` padded to the next power of two (at least ``SMALLEST``): about ten texts up to 10,000 ids."""
    wanted = set(ids)
    length = SMALLEST
    while length < len(wanted):
        length *= 2
    return padded_to(wanted, length)
