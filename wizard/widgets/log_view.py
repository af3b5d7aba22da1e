"""The scrolling log of a run: commands, their output, messages and warnings.

A Textual ``Log`` (plain strings, styled only when a line is drawn) rather than a ``RichLog``:
a chatty tool can print thousands of lines a second, and rendering each one as it arrives would
starve key presses. Lines carry the headless renderer's prefixes (``steps.events.log_text``)
and the highlighter colours them by prefix. The log keeps the last few thousand.
"""

from __future__ import annotations

from collections.abc import Iterable

from rich.highlighter import Highlighter
from rich.text import Text
from textual.widgets import Log

from steps.events import Event, LogLine, Planned, Result, log_text, plan_text
from steps.textsafe import printable

_STYLES: tuple[tuple[str, str], ...] = (
    ("> ", "bold"),
    ("<! ", "yellow"),
    ("< ", "dim"),
    ("WARNING ", "bold yellow"),
    ("✓ ", "bold green"),
    ("* ", "bold"),
    ("✕ ", "bold red"),
    ("plan: ", "italic"),
)


class PrefixHighlighter(Highlighter):
    """Colours a log line by its prefix (only the lines on screen are ever highlighted)."""

    def highlight(self, text: Text) -> None:
        """Style ``text`` in place."""
        for prefix, style in _STYLES:
            if text.plain.startswith(prefix):
                text.stylize(style)
                return


def line_for(event: Event) -> str | None:
    """The log line for an event (None for progress, which the progress panel shows)."""
    if isinstance(event, LogLine):
        return log_text(event)
    if isinstance(event, Planned):
        return f"plan: {plan_text(event)}"
    if isinstance(event, Result):
        return f"✓ {event.summary}" if event.summary else None
    return None


class LogView(Log):
    """Log of the current run."""

    DEFAULT_CSS = """
    LogView {
        height: 1fr; min-height: 3; border: round $foreground 30%;
        scrollbar-background: $surface; scrollbar-corner-color: $surface;
    }
    """

    def __init__(self, *, id: str | None = None, max_lines: int = 5000) -> None:
        super().__init__(id=id, max_lines=max_lines, highlight=True, auto_scroll=True)
        self.highlighter = PrefixHighlighter()
        self.border_title = "Log"

    def add(self, lines: Iterable[str]) -> None:
        """Append lines (one call per batch of events); network text is shown, never obeyed."""
        self.write_lines([printable(line) for line in lines])
