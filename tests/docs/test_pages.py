"""The documentation's Markdown reads the same on a Git host and in the built site.

Links, anchors and the navigation are checked by `mkdocs build --strict` in CI (`.ci/run`); what
it cannot see is Markdown that GitHub and Python-Markdown read differently.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from tests.docs.samples import ROOT

DOCS = ROOT / "docs"
PAGES = sorted(DOCS.rglob("*.md"))
_ITEM = re.compile(r"^\s*(?:[-*+]|\d+\.) ")


def prose_lines(page: Path) -> list[tuple[int, str]]:
    """The page's lines outside fenced code blocks, numbered from 1."""
    lines, fenced = [], False
    for number, line in enumerate(page.read_text().splitlines(), start=1):
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced:
            lines.append((number, line))
    return lines


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(DOCS)))
def test_lists_and_tables_start_after_a_blank_line(page: Path) -> None:
    """Python-Markdown (the site) reads a list or a table right under a paragraph as more of
    the paragraph; GitHub starts the list. A blank line before it means a list in both."""
    problems = []
    previous = ""
    for number, line in prose_lines(page):
        starts = (_ITEM.match(line) and not _ITEM.match(previous)) or (
            line.startswith("|") and not previous.startswith("|")
        )
        if starts and previous.strip() and not previous.startswith((" ", "#")):
            problems.append(f"{page.name}:{number}: {line[:60]}")
        previous = line
    assert [] == problems


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(DOCS)))
def test_no_line_starts_a_quote_by_accident(page: Path) -> None:
    """A wrapped line starting with `>` (a comparison in a query) becomes a block quote."""
    assert [] == [f"{page.name}:{n}" for n, line in prose_lines(page) if line.startswith(">")]


def test_every_page_is_in_the_navigation() -> None:
    """mkdocs.yml's nav lists every page (the strict build fails otherwise; this says it early)."""

    def pages(node: object) -> list[str]:
        if isinstance(node, str):
            return [node] if node.endswith(".md") else []
        if isinstance(node, list):
            return [page for item in node for page in pages(item)]
        if isinstance(node, dict):
            return [page for item in node.values() for page in pages(item)]
        return []

    nav = yaml.safe_load((ROOT / "mkdocs.yml").read_text())["nav"]

    assert sorted(str(p.relative_to(DOCS)) for p in PAGES) == sorted(pages(nav))


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(DOCS)))
def test_no_escaped_pipe(page: Path) -> None:
    """GitHub needs `\\|` for a pipe in a table cell, even in code, and the site shows the
    backslash: write alternatives outside tables (a list), or without pipes."""
    assert [] == [f"{page.name}:{n}" for n, line in prose_lines(page) if "\\|" in line]
