"""Padded id lists: few distinct SQL texts, and the rows found are exactly the asked-for ones."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from backupsvc.lib.sqlids import SMALLEST, padded, padded_to
from organizations.models import OrganisationalUnit
from tests.factories import OUFactory


@given(st.sets(st.integers(min_value=1, max_value=10**9), max_size=3000))
def test_padding_keeps_the_ids_and_adds_only_ids_no_row_has(ids: set[int]) -> None:
    out = padded(ids)
    assert ids <= out
    assert all(i < 0 for i in out - ids)
    assert len(out) >= SMALLEST and len(out) & (len(out) - 1) == 0  # a power of two


def test_lengths_up_to_ten_thousand_share_about_ten_statement_texts() -> None:
    assert len({len(padded(range(1, n + 1))) for n in range(0, 10_001)}) <= 11


def test_padded_to_is_exactly_the_length() -> None:
    assert len(padded_to({5, 9}, 900)) == 900
    assert padded_to(range(1, 1001), 900) == set(range(1, 1001))


@pytest.mark.django_db
def test_a_padded_lookup_finds_the_same_rows() -> None:
    first, second, _third = (OUFactory().pk for _ in range(3))
    found = OrganisationalUnit.objects.filter(pk__in=padded({first, second, 10**9})).values_list("pk", flat=True)
    assert set(found) == {first, second}
