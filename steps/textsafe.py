"""Text that crosses a trust boundary: control characters, credentials in URLs.

Two directions, one module:

- **in**: every value a user or the network hands us is checked with ``has_control`` before it
  is accepted (answers, CLI arguments, names from a mirror); a value that carries a control
  character could end a line in a generated file or a shell-sourced env file.
- **out**: every string that came from the network (mDNS TXT records, HTTP bodies, names a mirror
  lists) goes through ``printable`` before it reaches a terminal or a TUI widget, so an escape
  sequence cannot retitle the terminal, move the cursor or hide text; and a mirror URL goes
  through ``redact_url`` before it is logged, cached under a name or written to a manifest
  (which deploy publishes over TFTP to the whole LAN).
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import urlsplit, urlunsplit

#: Categories refused in input and escaped in output: Cc (C0, DEL, C1 — ESC and CSI among them),
#: Cf format characters (bidi overrides that reorder what a terminal shows), line/paragraph
#: separators, surrogates and unassigned code points.
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs", "Cn"})
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@]*@")


def _unsafe(ch: str) -> bool:
    return unicodedata.category(ch) in _UNSAFE_CATEGORIES


def has_control(text: str) -> bool:
    """True when ``text`` holds a control or invisible formatting character (incl. ``\\n``)."""
    return any(_unsafe(ch) for ch in text)


def printable(text: object, limit: int = 0) -> str:
    """``text`` safe for a terminal: each control/format character shown as an escape.

    ``limit`` > 0 also cuts the result to that many characters (with ``…``), for fields that a
    hostile peer could make arbitrarily long.
    """
    s = text if isinstance(text, str) else str(text)
    if has_control(s):
        s = "".join(ch.encode("unicode_escape").decode("ascii") if _unsafe(ch) else ch for ch in s)
    if limit and len(s) > limit:
        s = s[: max(0, limit - 1)] + "…"
    return s


def printable_lines(text: str) -> str:
    """``printable`` for text that may span lines: each line made safe, the newlines kept."""
    return "\n".join(printable(line) for line in text.split("\n"))


def redact_url(url: str) -> str:
    """``url`` without its user name and password (``http://u:p@host/x`` → ``http://host/x``)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return redact_text(url)
    if "@" not in parts.netloc:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


def redact_text(text: str) -> str:
    """Every ``scheme://user:pass@`` in free text (an exception message, a log line) stripped."""
    return _USERINFO.sub(r"\1", text)
