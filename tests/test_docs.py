"""The README and docs/ work as written in a clone: every relative link resolves to a file of
the repository, every `make X` they name is a Makefile target, and `make help` lists every
target, each declared .PHONY."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# Pages other branches write (the link to them is right; they arrive with the merge). Remove a
# name here once its page is in the repository: from then on a broken link to it fails.
WRITTEN_ELSEWHERE: set[str] = set()

LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)|<(https?://[^>]+)>")
MAKE = re.compile(r"`make ([a-z][a-z0-9-]*)")


def _links(page: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)  # code blocks are not links
    return [m.group(1) or m.group(2) for m in LINK.finditer(text)]


def _targets() -> set[str]:
    targets: set[str] = set()
    for line in (ROOT / "Makefile").read_text().splitlines():
        match = re.match(r"^([a-z][a-z0-9 -]*):(?!=)", line)
        if match:
            targets.update(match.group(1).split())
    return targets


def test_the_docs_folder_has_its_pages() -> None:
    names = {p.name for p in DOCS}
    assert {"README.md", "architecture.md", "datasets.md", "archive-format.md", "restore-flows.md"} <= names


@pytest.mark.parametrize("page", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves_to_a_file_of_the_repository(page: Path) -> None:
    broken = []
    for link in _links(page):
        if re.match(r"^[a-z]+:", link):
            # Only the app's own address may be absolute; nothing outside the repository.
            assert link.startswith("http://127.0.0.1:8000"), f"{page.name} links outside the repository: {link}"
            continue
        path = unquote(link.split("#", 1)[0])
        if not path:
            continue
        target = (page.parent / path).resolve()
        relative = target.relative_to(ROOT).as_posix() if target.is_relative_to(ROOT) else str(target)
        if relative in WRITTEN_ELSEWHERE and not target.exists():
            continue
        if not target.is_relative_to(ROOT) or not target.exists():
            broken.append(link)
    assert broken == [], f"{page.name}: links that do not resolve in the repository: {broken}"
    # A path written as code counts too: nothing outside the clone (../shared/… was).
    assert re.findall(r"`(\.\./[^`]*)`", page.read_text()) == []


@pytest.mark.parametrize("page", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_make_target_named_exists(page: Path) -> None:
    named = set(MAKE.findall(page.read_text()))
    assert named - _targets() == set(), f"{page.name} names make targets the Makefile lacks"


def test_make_help_lists_every_target_and_phony_is_exact() -> None:
    makefile = (ROOT / "Makefile").read_text()
    phony = set(re.search(r"^\.PHONY:(.*)$", makefile, re.M).group(1).split())  # type: ignore[union-attr]
    assert phony == _targets()
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    shown = subprocess.run(["make", "-s", "help"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    listed = set(re.findall(r"^make ([a-z][a-z0-9-]*)", shown, re.M))
    assert _targets() - {"help"} <= listed <= _targets()
