"""The manual stays navigable: every relative link in README.md and docs/ points at a file."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def _pages() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def test_every_relative_link_resolves() -> None:
    broken = [
        f"{page.relative_to(ROOT)} → {target}"
        for page in _pages()
        for target in LINK.findall(page.read_text(encoding="utf-8"))
        if "://" not in target and not (page.parent / target).exists()
    ]
    assert broken == []


def test_every_docs_page_is_reachable_from_the_readme() -> None:
    seen: set[Path] = set()
    todo = [ROOT / "README.md"]
    while todo:
        page = todo.pop()
        if page in seen or page.suffix != ".md" or not page.exists():
            continue
        seen.add(page)
        todo += [
            (page.parent / t).resolve() for t in LINK.findall(page.read_text()) if "://" not in t
        ]
    orphans = sorted(
        str(p.relative_to(ROOT)) for p in (ROOT / "docs").rglob("*.md") if p not in seen
    )
    assert orphans == []
