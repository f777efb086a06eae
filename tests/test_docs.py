"""The README fits a newcomer and every link in it (and in docs/) leads somewhere in the repository."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
PAGES = sorted((ROOT / "docs").glob("*.md"))
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.S | re.M)


def links(path: Path) -> list[str]:
    return LINK.findall(FENCE.sub("", path.read_text()))


def anchors(path: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    headings = re.findall(r"^#+ (.+)$", FENCE.sub("", path.read_text()), re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


def test_the_readme_is_under_200_lines():
    assert len(README.read_text().splitlines()) < 200


def test_every_readme_link_is_a_file_in_the_repository():
    found = links(README)
    assert found
    for target in found:
        assert "://" not in target, f"{target}: README links point at files of the repository"
        path, _, anchor = target.partition("#")
        assert (ROOT / path).is_file(), target
        if anchor:
            assert anchor in anchors(ROOT / path), target


def test_the_readme_links_a_page_for_each_subject():
    pages = {t.partition("#")[0] for t in links(README)}
    for page in ("configuration", "architecture", "api", "batches", "gateways", "notifications"):
        assert f"docs/{page}.md" in pages
    assert {"docs/operations.md", "docs/benchmarks.md", "docs/images/dashboard.png"} <= pages


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_links_between_docs_pages_resolve(page):
    for target in links(page):
        if "://" in target:
            continue
        path, _, anchor = target.partition("#")
        resolved = page if not path else (page.parent / path)
        assert resolved.is_file(), f"{page.name}: {target}"
        if anchor:
            assert anchor in anchors(resolved), f"{page.name}: {target}"
