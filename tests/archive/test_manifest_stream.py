"""The manifest is parsed as it streams (its member list item by item), with the outcome of
``json.loads`` of the whole manifest: same fields, same items, same refusals."""

from __future__ import annotations

import json
from typing import Any

import pytest

from backups.archive.errors import UnsupportedFormat
from backups.archive.manifest import read_manifest

DOC: dict[str, Any] = {
    "format": "backupsvc/1",
    "n": 12345,
    "f": 1.5e10,
    "t": True,
    "x": None,
    "s": 'é \u2028 \\ " 😀',
    "o": {"a": [1, {"b": 2}], "members": "not the list"},
    "members": [{"path": f"files/{i}", "size": i, "sha256": "0" * 64} for i in range(5)],
    "z": -7,
}


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 64, 1 << 20])
@pytest.mark.parametrize("indent", [None, 2])
def test_any_chunking_gives_the_fields_and_every_item(chunk: int, indent: int | None) -> None:
    body = json.dumps(DOC, ensure_ascii=False, indent=indent).encode("utf-8")
    items: list[Any] = []
    fields, error = read_manifest((body[i : i + chunk] for i in range(0, len(body), chunk)), items.append)
    assert error is None
    assert items == DOC["members"]
    assert fields == {k: v for k, v in DOC.items() if k != "members"}


@pytest.mark.parametrize(
    "body",
    [b"", b"{", b'{"a":1,}', b'{"a":1} x', b'{"members":[1,]}', b'{"a" 1}', b"\xff{}", b'{"a":tru}', b'{"a":1.}'],
)
def test_what_json_loads_refuses_is_not_readable(body: bytes) -> None:
    with pytest.raises(ValueError):
        json.loads(body)
    with pytest.raises(UnsupportedFormat, match="its manifest is not readable"):
        read_manifest([body], lambda _item: None)


@pytest.mark.parametrize("body", [b"{}", b'{"members": {}}', b'{"members": [], "members": 3}'])
def test_without_a_member_list_the_error_is_kept_for_later(body: bytes) -> None:
    _fields, error = read_manifest([body], lambda _item: None)
    assert isinstance(error, UnsupportedFormat) and "no member list" in str(error)


def test_the_first_error_of_an_item_is_kept_and_parsing_goes_on() -> None:
    seen: list[Any] = []

    def add(item: Any) -> None:
        seen.append(item)
        if item == 2:
            raise UnsupportedFormat("bad item")

    fields, error = read_manifest([b'{"members": [1, 2, 3], "after": true}'], add)
    assert str(error) == "bad item" and seen == [1, 2] and fields == {"after": True}


@pytest.mark.parametrize("body", [b"[]", b"1", b'"manifest"'])
def test_json_other_than_an_object_is_not_readable_either(body: bytes) -> None:
    with pytest.raises(UnsupportedFormat, match="its manifest is not readable"):
        read_manifest([body], lambda _item: None)
