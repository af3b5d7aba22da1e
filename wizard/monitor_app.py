"""``firecore-wizard monitor`` on a terminal: the Diagnostics screen on its own, without the wizard.

The same ``DiagnosticsView`` as the wizard's Diagnostics screen, over the ``MonitorStep`` the
command built from its arguments (``--interface``, ``--pcap``, ``--write``, ``--mac``,
``--duration``). The app's return value is the command's exit code, the same verdict as the
JSON lines: 1 when an error-severity diagnosis was raised, else 0. A source that cannot be
opened (no root for a live capture, a file that is not a capture) before any packet arrived
closes the app and is raised again by ``run_monitor_app``, so the CLI prints it like any other
user error.
"""

from __future__ import annotations

import time
from pathlib import Path

from textual import on
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Header

from steps.errors import FirecoreError
from steps.monitor import MonitorStep
from wizard.messages import StreamEnded
from wizard.screens.help import HelpScreen
from wizard.widgets.diagnostics_view import KEYS_HELP, DiagnosticsView, source_label


class MonitorScreen(Screen[None]):
    """Header, the Diagnostics view, the footer."""

    HELP = (
        """\
# firecore-wizard monitor

The clients table follows every Pi that boots on the wire; the timeline shows the selected Pi's
stages with their time since power-on and each file it read; the diagnoses name what went wrong
with the fix and the packets that show it; the Packets tab lists the newest packets with every
decoded field and the captured bytes.

"""
        + KEYS_HELP
        + """\
| q | quit (exit code 1 if an error was diagnosed) |
"""
    )

    def __init__(self, step: MonitorStep, save_dir: Path | None = None) -> None:
        super().__init__()
        self._step = step
        self._save_dir = save_dir

    def compose(self) -> ComposeResult:
        yield Header(icon="◆")
        yield DiagnosticsView(
            self._step, label=source_label(self._step), save_dir=self._save_dir, id="diagnostics"
        )
        yield Footer()


class MonitorApp(App[int]):
    """The Diagnostics screen as a program of its own (see the module docstring)."""

    CSS_PATH = "app.tcss"
    TITLE = "firecore-wizard monitor"
    BINDINGS = [
        Binding("q", "quit", "Quit"),
        Binding("f1", "help", "Help"),
    ]

    def __init__(self, step: MonitorStep, *, save_dir: Path | None = None) -> None:
        super().__init__()
        self.step = step
        self.save_dir = save_dir
        self.error: FirecoreError | None = None
        """A source that could not be opened (the app closed at once)."""
        self.clock = time.monotonic

    def on_mount(self) -> None:
        self.push_screen(MonitorScreen(self.step, self.save_dir))

    @property
    def view(self) -> DiagnosticsView:
        """The screen's view."""
        return self.screen.query_one(DiagnosticsView)

    @on(StreamEnded)
    def _ended(self, message: StreamEnded) -> None:
        view = self.view
        if message.error is not None and not view.packets:
            self.error = message.error
            self.exit(2, return_code=2)

    def action_help(self) -> None:
        """F1: keys and panes."""
        if isinstance(self.screen, HelpScreen):
            self.screen.dismiss()
            return
        self.push_screen(HelpScreen(self.screen))

    async def action_quit(self) -> None:
        """Stop the monitor and exit with its verdict."""
        view = self.view if isinstance(self.screen, MonitorScreen) else None
        errors = view.errors if view is not None else 0
        code = 1 if errors else 0
        self.exit(code, return_code=code)


def run_monitor_app(step: MonitorStep) -> int:
    """Run the screen until the user quits; the exit code (see the module docstring).

    Raises:
        FirecoreError: the source could not be opened.
    """
    app = MonitorApp(step)
    code = app.run()
    if app.error is not None:
        raise app.error
    return int(code or 0)
