"""A small modal asking the user to confirm an action (quit with unsaved answers, Rollback)."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Static


class ConfirmModal(ModalScreen[bool]):
    """Title, what will happen, and two buttons; dismisses True to go ahead, False (Escape) not."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]
    DEFAULT_CSS = """
    ConfirmModal { align: center middle; }
    ConfirmModal > #dialog {
        width: 80%; max-width: 76; height: auto; border: thick $warning;
        background: $surface; padding: 1 2;
    }
    ConfirmModal #buttons { height: auto; align-horizontal: right; margin-top: 1; }
    ConfirmModal #buttons Button { margin-left: 1; }
    """

    def __init__(self, title: str, text: str, ok: str, cancel: str = "Cancel") -> None:
        super().__init__()
        self._title, self._text, self._ok, self._cancel = title, text, ok, cancel

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(self._title, classes="section-title", markup=False)
            yield Static(self._text, markup=False)
            with Horizontal(id="buttons"):
                yield Button(self._cancel, id="cancel")
                yield Button(self._ok, id="ok", variant="warning")

    def on_mount(self) -> None:
        self.query_one("#cancel", Button).focus()

    @on(Button.Pressed, "#ok")
    def _ok_pressed(self) -> None:
        self.dismiss(True)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        """Do not go ahead."""
        self.dismiss(False)
