"""F1 help: what the current screen is for, what each choice means, and the keys."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Markdown

KEYS = """\
## Keys

| key | does |
|---|---|
| ctrl+n / ctrl+b | next / previous screen (Next is enabled when the screen is valid) |
| tab / shift+tab | move between fields; Enter presses a button |
| F1 | this help (Escape closes it) |
| F5 … F7 | the screen's actions (shown in the footer) |
| ctrl+p | command palette: every action and "Go to …" by name |
| ctrl+s / ctrl+o | save / open an answers file |
| ctrl+t | light / dark theme |
| ctrl+q | quit (a running build is cancelled; the previous output stays) |
"""


class HelpScreen(ModalScreen[None]):
    """Help for ``screen`` (its HELP text) plus the app-wide keys."""

    BINDINGS = [Binding("escape,f1", "close", "Close")]
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > #dialog {
        width: 90%; max-width: 110; height: 90%; border: thick $primary;
        background: $surface; padding: 0 1;
    }
    """

    def __init__(self, screen: Screen[object]) -> None:
        super().__init__()
        self._text = str(getattr(screen, "HELP", "") or "") + "\n\n" + KEYS

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="dialog"):
            yield Markdown(self._text, id="help-text")

    def action_close(self) -> None:
        """Close help."""
        self.dismiss()
