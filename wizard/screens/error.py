"""The error modal: a FirecoreError's title, message and fix; details on demand.

Every user-facing failure that is not shown inline ends here, so the user never sees a traceback:
the details (a command's stderr, a diff, an internal traceback) sit in a collapsed section.
"""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Collapsible, Label, Static

from steps.errors import FirecoreError


class ErrorPanel(Vertical):
    """Title, message, fix and collapsible details of one error (modal and failure panels)."""

    DEFAULT_CSS = """
    ErrorPanel { height: auto; }
    ErrorPanel > .error-title { text-style: bold; color: $error; }
    ErrorPanel > .error-fix { color: $success; margin-top: 1; }
    ErrorPanel > Collapsible { margin-top: 1; }
    ErrorPanel .error-details { height: auto; max-height: 12; }
    """

    def __init__(self, error: FirecoreError, *, where: str = "", id: str | None = None) -> None:
        super().__init__(id=id)
        self.error = error
        self._where = where

    def compose(self) -> ComposeResult:
        where = f" in {self._where}" if self._where else ""
        yield Label(f"✕ {self.error.title}{where}", classes="error-title", markup=False)
        yield Static(self.error.message, classes="error-message", markup=False)
        if self.error.fix:
            yield Static(f"Fix: {self.error.fix}", classes="error-fix", markup=False)
        if self.error.details:
            with (
                Collapsible(title="Details", collapsed=True),
                VerticalScroll(classes="error-details"),
            ):
                yield Static(self.error.details.rstrip(), markup=False, classes="details-text")


class ErrorModal(ModalScreen[None]):
    """A modal showing one error; Enter or Escape closes it."""

    BINDINGS = [Binding("escape", "close", "Close")]
    DEFAULT_CSS = """
    ErrorModal { align: center middle; }
    ErrorModal > #dialog {
        width: 90%; max-width: 100; height: auto; max-height: 90%;
        border: thick $error; background: $surface; padding: 1 2;
    }
    ErrorModal #buttons { height: auto; align-horizontal: right; margin-top: 1; }
    """

    def __init__(self, error: FirecoreError) -> None:
        super().__init__()
        self.error = error

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield ErrorPanel(self.error)
            with Horizontal(id="buttons"):
                yield Button("Close", id="close", variant="error")

    def on_mount(self) -> None:
        self.query_one("#close", Button).focus()

    @on(Button.Pressed, "#close")
    def action_close(self) -> None:
        """Close the modal."""
        self.dismiss()
