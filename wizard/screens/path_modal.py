"""A small modal asking for a file path (open or save an answers file)."""

from __future__ import annotations

from pathlib import Path

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label

from steps.answers import resolve_path


class PathModal(ModalScreen[Path | None]):
    """Asks for a path; dismisses with it (absolute) or None."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]
    DEFAULT_CSS = """
    PathModal { align: center middle; }
    PathModal > #dialog {
        width: 80%; max-width: 90; height: auto; border: thick $primary;
        background: $surface; padding: 1 2;
    }
    PathModal #buttons { height: auto; align-horizontal: right; margin-top: 1; }
    PathModal #buttons Button { margin-left: 1; }
    """

    def __init__(self, title: str, label: str, value: str, ok: str) -> None:
        super().__init__()
        self._title, self._label, self._value, self._ok = title, label, value, ok

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(f"[b]{self._title}[/b]")
            yield Label(self._label)
            yield Input(self._value, compact=True, id="path")
            with Horizontal(id="buttons"):
                yield Button("Cancel", id="cancel")
                yield Button(self._ok, id="ok", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#path", Input).focus()

    @on(Input.Submitted, "#path")
    @on(Button.Pressed, "#ok")
    def _ok_pressed(self) -> None:
        value = self.query_one("#path", Input).value.strip()
        if not value:
            self.notify("enter a file path", severity="warning")
            return
        self.dismiss(resolve_path(value))

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        """Close without a path."""
        self.dismiss(None)
