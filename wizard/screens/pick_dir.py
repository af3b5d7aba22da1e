"""A directory picker (the App screen's "Browse…"): a tree, a path field, Choose/Cancel."""

from __future__ import annotations

from pathlib import Path

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, DirectoryTree, Input, Label

from steps.answers import resolve_path


class DirectoryPicker(ModalScreen[Path | None]):
    """Pick a directory with the keyboard or the mouse; dismisses with it or None."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]
    DEFAULT_CSS = """
    DirectoryPicker { align: center middle; }
    DirectoryPicker > #dialog {
        width: 90%; max-width: 100; height: 80%; border: thick $primary;
        background: $surface; padding: 0 1;
    }
    DirectoryPicker DirectoryTree { height: 1fr; }
    DirectoryPicker #buttons { height: auto; align-horizontal: right; }
    DirectoryPicker #buttons Button { margin-left: 1; }
    """

    def __init__(self, title: str, start: Path) -> None:
        super().__init__()
        self._title = title
        self._start = start if start.is_dir() else Path.cwd()

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(f"[b]{self._title}[/b]")
            yield DirectoryTree(self._start, id="tree")
            yield Input(str(self._start), compact=True, id="chosen")
            with Horizontal(id="buttons"):
                yield Button("Cancel", id="cancel")
                yield Button("Choose", id="choose", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#tree", DirectoryTree).focus()

    @on(DirectoryTree.DirectorySelected)
    def _selected(self, event: DirectoryTree.DirectorySelected) -> None:
        self.query_one("#chosen", Input).value = str(event.path)

    @on(Input.Submitted, "#chosen")
    @on(Button.Pressed, "#choose")
    def _choose(self) -> None:
        value = self.query_one("#chosen", Input).value.strip()
        self.dismiss(resolve_path(value) if value else None)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        """Close without choosing."""
        self.dismiss(None)
