"""Parsing web-server directory listings (Apache autoindex, nginx, lighttpd, Python http.server).

piCore mirrors publish no machine-readable index of releases, only the web server's generated
directory pages, so release browsing reads those. The parser does not depend on one server's
markup: it takes every link that points at a direct child of the listed directory and looks for a
date and a size in the rest of that link's row (a ``<tr>`` in table layouts, a line in ``<pre>``
layouts). Sorting links (``?C=N;O=D``), the parent link and links elsewhere are ignored.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from urllib.parse import unquote, urljoin, urlsplit

from steps.textsafe import has_control

_LINK = re.compile(r"""<a\s[^>]*?href\s*=\s*(["'])(?P<href>[^"']*)\1[^>]*>""", re.I | re.S)
_TAG = re.compile(r"<[^>]*>", re.S)
_MONTHS = {
    m: i
    for i, m in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1
    )
}
# 2024-09-16 10:21[:00] (Apache 2.4), 16-Sep-2024 10:21 (nginx, old Apache), 2024-Sep-16 10:21:00
# (lighttpd).
_DATES = (
    re.compile(r"(?P<y>\d{4})-(?P<m>\d{2})-(?P<d>\d{2})[ T](?P<H>\d{2}):(?P<M>\d{2})(?::\d{2})?"),
    re.compile(r"(?P<d>\d{1,2})-(?P<m>[A-Za-z]{3})-(?P<y>\d{4})[ T](?P<H>\d{2}):(?P<M>\d{2})"),
    re.compile(r"(?P<y>\d{4})-(?P<m>[A-Za-z]{3})-(?P<d>\d{1,2})[ T](?P<H>\d{2}):(?P<M>\d{2})"),
)
_SIZE = re.compile(r"(?P<n>\d{1,15}(?:\.\d{1,6})?)(?P<u>[KMGT]?)(?:i?B)?", re.I)
_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}


@dataclass(frozen=True)
class Entry:
    """One child of a listed directory."""

    name: str
    """File or directory name, URL-decoded, without a trailing slash."""
    is_dir: bool
    size: int | None = None
    """Size in bytes; approximate when the server prints "96M"; None when not shown."""
    date: str = ""
    """Last modification as ISO 8601 ("2024-09-16T10:21"), "" when not shown."""


def parse_size(text: str) -> int | None:
    """``"96M"`` → 100663296, ``"1.2K"`` → 1228, ``"345"`` → 345, ``"-"`` → None."""
    m = _SIZE.fullmatch(text.strip())
    if not m:
        return None
    return int(float(m["n"]) * _UNITS[m["u"].upper()])


def _parse_date(text: str) -> tuple[str, int] | None:
    """ISO date and the end offset of the first date found in ``text``."""
    for pattern in _DATES:
        m = pattern.search(text)
        if not m:
            continue
        month = m["m"]
        num = int(month) if month.isdigit() else _MONTHS.get(month.lower(), 0)
        if not 1 <= num <= 12:
            continue
        iso = f"{int(m['y']):04d}-{num:02d}-{int(m['d']):02d}T{m['H']}:{m['M']}"
        return iso, m.end()
    return None


def _row_text(fragment: str) -> str:
    """The visible text of what follows a link up to the end of its row."""
    end = fragment.lower().find("</tr>")
    if end < 0:
        end = fragment.find("\n")
    if end >= 0:
        fragment = fragment[:end]
    return html.unescape(_TAG.sub(" ", fragment)).replace("\xa0", " ")


def _child_name(dir_url: str, href: str) -> tuple[str, bool] | None:
    """(name, is_dir) when ``href`` points at a direct child of ``dir_url``."""
    href = html.unescape(href).strip()
    if not href or href.startswith(("?", "#", "mailto:", "javascript:")):
        return None
    base = urlsplit(dir_url)
    target = urlsplit(urljoin(dir_url, href))
    if (target.scheme, target.netloc) != (base.scheme, base.netloc) or target.query:
        return None
    dir_path = base.path if base.path.endswith("/") else base.path + "/"
    if not target.path.startswith(dir_path):
        return None
    rest = target.path[len(dir_path) :]
    is_dir = rest.endswith("/")
    rest = rest.rstrip("/")
    if not rest or "/" in rest or rest in (".", ".."):
        return None
    name = unquote(rest)  # checked again decoded: "..%2F..%2Fx" must not become ../../x
    if "/" in name or name in (".", "..") or has_control(name) or len(name) > 255:
        return None
    return name, is_dir


def parse_listing(page: str, dir_url: str) -> list[Entry]:
    """The entries of a directory listing page, in page order, without duplicates.

    Args:
        page: the HTML the server returned for the directory.
        dir_url: the directory's URL (ending in "/"), to resolve relative and absolute links.
    """
    links = list(_LINK.finditer(page))
    entries: dict[str, Entry] = {}
    for i, link in enumerate(links):
        child = _child_name(dir_url, link["href"])
        if child is None:
            continue
        name, is_dir = child
        if name in entries:
            continue
        close = page.lower().find("</a>", link.end())
        start = close + 4 if close >= 0 else link.end()
        stop = links[i + 1].start() if i + 1 < len(links) else len(page)
        text = _row_text(page[start:stop]) if start < stop else ""
        date, size = "", None
        found = _parse_date(text)
        if found is not None:
            date, end = found
            text = text[end:]
        for token in text.split():
            if token == "-":
                break
            size = parse_size(token)
            if size is not None:
                break
        entries[name] = Entry(name, is_dir, None if is_dir else size, date)
    return list(entries.values())
