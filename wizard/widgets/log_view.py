"""The scrolling log of a run: commands, their output, messages and warnings.

A Textual ``Log`` (plain strings, styled only when a line is drawn) rather than a ``RichLog``:
a chatty tool can print thousands of lines a second, and rendering each one as it arrives would
starve key presses. Lines carry the headless renderer's prefixes (``steps.events.log_text``)
and the highlighter colours them by prefix. The log keeps the last few thousand.

It follows new lines while the user has not scrolled up. ``Log`` itself follows only when the
view already sits at the end, and a build resizes the log (progress rows come and go), which
leaves it one line short of the end and it stopped following for good; here scrolling up is
what stops it, and scrolling back to the end resumes it.
"""

from __future__ import annotations

from collections.abc import Iterable

from rich.highlighter import Highlighter
from rich.text import Text
from textual import events
from textual.widgets import Log

from steps.events import Event, LogLine, Planned, Result, log_text, plan_text
from steps.textsafe import printable
from wizard.render import result_mark

_STYLES: tuple[tuple[str, str], ...] = (
    ("> ", "bold"),
    ("<! ", "yellow"),
    ("< ", "dim"),
    ("WARNING ", "bold yellow"),
    ("✓ ", "bold green"),
    ("* ", "bold"),
    ("✕ ", "bold red"),
    ("· ", "dim"),
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
        return f"{result_mark(event)} {event.summary}" if event.summary else None
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

    following = True
    """New lines scroll into view (False once the user scrolls up, True again at the end)."""

    def add(self, lines: Iterable[str]) -> None:
        """Append lines (one call per batch of events); show the newest while following.

        Network text is shown, never obeyed (``printable``).
        """
        self.write_lines([printable(line) for line in lines], scroll_end=False)
        if self.following:
            self.scroll_end(animate=False, immediate=True, x_axis=False)

    def on_resize(self, event: events.Resize) -> None:
        """A log that follows keeps its newest line in view when it gets shorter (an error
        panel opening above it), instead of whatever line the old height ended on."""
        if self.following:
            self.call_after_refresh(self.scroll_end, animate=False, immediate=True, x_axis=False)

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        if new_value >= self.max_scroll_y:
            self.following = True  # at the end (also when a taller log clamped the offset)
        elif new_value < old_value:
            self.following = False  # the user scrolled up to read
