"""The first frame of ``--demo``: the demo mirror is generated (first run only) with progress.

Generating the mirror takes seconds the first time (images, extensions, wheels are built with
the real tools); the wizard shows this screen at once and builds it in a thread, instead of a
blank terminal. It dismisses with the answers pointed at the demo mirror, or None on failure
(the error is shown and the wizard goes on with the answers it had).
"""

from __future__ import annotations

from textual import work
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import Label, ProgressBar, Static

from steps.answers import Answers
from steps.errors import FirecoreError


class DemoStartScreen(Screen[Answers | None]):
    """Generates and serves the demo mirror, showing what it is doing."""

    DEFAULT_CSS = """
    DemoStartScreen { align: center middle; }
    DemoStartScreen > #box { width: 70; height: auto; border: round $accent; padding: 1 2; }
    DemoStartScreen #what { color: $text-muted; }
    """

    def __init__(self, answers: Answers) -> None:
        super().__init__()
        self._answers = answers
        self.notes: list[str] = []
        """The DEMO notes start_demo gave (shown by the app once the wizard starts)."""

    def compose(self) -> ComposeResult:
        with Vertical(id="box"):
            yield Label("[b]Preparing the demo mirror[/b]")
            yield Static(
                "A small generated piCore release served on 127.0.0.1, so the whole flow works "
                "offline. The first start builds it (a few seconds); later starts reuse it.",
                markup=False,
            )
            yield ProgressBar(total=1, show_eta=False, id="bar")
            yield Label("", id="what", markup=False)

    def on_mount(self) -> None:
        self._prepare()

    def _progress(self, what: str, done: int, total: int) -> None:
        """Called from the worker thread: hand it to the main thread."""
        self.app.call_from_thread(self._show, what, done, total)

    def _show(self, what: str, done: int, total: int) -> None:
        self.query_one("#bar", ProgressBar).update(total=total, progress=done)
        self.query_one("#what", Label).update(what)

    @work(thread=True, exit_on_error=False)
    def _prepare(self) -> None:
        from wizard.commands.demo import start_demo

        try:
            answers = start_demo(self._answers, say=self.notes.append, on_progress=self._progress)
        except FirecoreError as exc:
            self.app.call_from_thread(self._failed, exc)
            return
        self.app.call_from_thread(self.dismiss, answers)

    def _failed(self, error: FirecoreError) -> None:
        from wizard.screens.error import ErrorModal

        self.app.push_screen(ErrorModal(error), lambda _: self.dismiss(None))
