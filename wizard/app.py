"""The Textual wizard: composition, navigation and the one answers object.

``make_app`` is the only constructor (the CLI and the tests use it). The app holds a
``WizardState`` — the answers every screen fills — and drives the screens from one async worker
with ``push_screen_wait``: each screen dismisses with "next", "back" or "goto:<name>" and the loop
opens the next one. Screens, step workers and domain lookups live elsewhere (``wizard.screens``,
``wizard.widgets.step_runner``, ``wizard.services``); this module stays small.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Sequence
from functools import partial
from pathlib import Path

from textual import events, work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen

from steps.answers import Answers, default_answers
from steps.base import Step
from steps.errors import FirecoreError, UsageError
from wizard.flow import FLOW, first_open, neighbour, spec
from wizard.services import Services
from wizard.state import WizardState, default_answers_path, sections_in_file

DARK, LIGHT = "textual-dark", "textual-light"
#: How long quitting waits for a cancelled step to remove its staging files (seconds).
QUIT_GRACE = 5.0


class FirecoreWizard(App[int]):
    """Step-by-step netboot setup: release → extensions → app → build → network → deploy."""

    CSS_PATH = "app.tcss"
    TITLE = "firecore-wizard"
    BINDINGS = [
        # Focus moves as soon as the key is read, like every other key's destination: as a
        # plain binding Tab would first bubble up from the focused field, and characters typed
        # right after it would still go to the field it leaves (wizard/widgets/editors.py).
        Binding("tab", "focus_next", "Next field", show=False, priority=True),
        Binding("shift+tab", "focus_previous", "Previous field", show=False, priority=True),
        Binding("f1", "help", "Help"),
        Binding("ctrl+t", "toggle_theme", "Theme"),
        Binding("ctrl+s", "save_answers", "Save"),
        Binding("ctrl+o", "open_answers", "Open", show=False),
    ]

    def __init__(
        self,
        state: WizardState,
        services: Services,
        *,
        clock: Callable[[], float] = time.monotonic,
        start: str | None = None,
        theme: str = DARK,
    ) -> None:
        super().__init__()
        self.state = state
        self.services = services
        self.clock = clock
        self.current = ""
        self._start = start or (first_open(state) if state.answers_path else "welcome")
        self._theme_name = theme
        self._quitting = False

    def on_mount(self) -> None:
        self.theme = self._theme_name
        self._navigate(self._start)

    def on_resize(self, event: events.Resize) -> None:
        # 80×24 must stay usable: a narrower stepper, no per-field help (F1 has it).
        self.set_class(event.size.width < 100, "-narrow")
        self.set_class(event.size.height < 30, "-short")

    @work(exclusive=True, group="navigation")
    async def _navigate(self, name: str) -> None:
        """The wizard's loop: show a screen, wait for where it wants to go, repeat."""
        while True:
            self.current = name
            screen_cls = spec(name).load()
            outcome = await self.push_screen_wait(screen_cls(self.state, self.services))
            if outcome == "next":
                following = neighbour(name, 1)
                if following is None:
                    self.exit(0)
                    return
                name = following
            elif outcome == "back":
                name = neighbour(name, -1) or name
            elif outcome.startswith("goto:"):
                name = outcome.removeprefix("goto:")
            else:
                self.exit(0)
                return

    # ------------------------------------------------------------------ app-wide actions
    async def action_quit(self) -> None:
        """Quit; a running step is cancelled first and given a moment to clean up.

        The step removes its staging directory when it sees the cancel flag, so the previous
        output is left exactly as it was (a second ctrl+q does not wait).
        """
        from wizard.widgets.step_runner import RUN_LOCK

        if self._quitting:
            self.exit(0)
            return
        self._quitting = True
        self.workers.cancel_all()
        if await asyncio.to_thread(RUN_LOCK.acquire, timeout=QUIT_GRACE):
            RUN_LOCK.release()
        self.exit(0)

    def action_toggle_theme(self) -> None:
        """Switch between the light and the dark theme."""
        self.theme = LIGHT if self.theme == DARK else DARK

    def action_help(self) -> None:
        """F1: help for the current screen."""
        from wizard.screens.help import HelpScreen

        if isinstance(self.screen, HelpScreen):
            self.screen.dismiss()
            return
        self.push_screen(HelpScreen(self.screen))

    def action_save_answers(self) -> None:
        """Ask where to save, then write the answers (and the 0600 secrets file)."""
        from wizard.screens.path_modal import PathModal

        default = self.state.answers_path or default_answers_path()
        self.push_screen(PathModal("Save answers", "Save to", str(default), "Save"), self._save_to)

    def _save_to(self, path: Path | None) -> None:
        if path is None:
            return
        try:
            written = self.save_answers(path)
        except FirecoreError as exc:
            self.show_error(exc)
            return
        self.notify(f"Saved {written}", title="Answers saved")

    def save_answers(self, path: Path) -> Path:
        """Write the answers file (complete, commented) and the secrets file if a token is set."""
        from steps.answers_toml import dump_answers
        from steps.fsutil import atomic_write, disk_error

        if self.state.token and not self.state.answers.app.secrets_file:
            self.state.try_set("app.secrets_file", str(path.with_suffix(".secrets.toml")))
        try:
            self.state.write_secrets()
            atomic_write(path, dump_answers(self.state.answers))
        except OSError as exc:
            raise disk_error(path, exc) from None
        self.state.answers_path = path
        self.state.saved_to = path
        return path

    def action_open_answers(self) -> None:
        """Load an answers file (the same loader as --answers) and pre-fill every screen."""
        from wizard.screens.path_modal import PathModal

        default = self.state.answers_path or default_answers_path()
        self.push_screen(
            PathModal("Open answers file", "File", str(default), "Open"), self.open_answers
        )

    def open_answers(self, path: Path | None) -> None:
        """Load ``path``; on success go to the first screen that still needs the user."""
        if path is None:
            return
        try:
            self.state.load(path)
        except FirecoreError as exc:
            self.show_error(exc)
            return
        self.state.read_token()
        given = ", ".join(sorted(self.state.given)) or "no sections"
        self.notify(f"Loaded {path} ({given})", title="Answers loaded")
        target = first_open(self.state)
        from wizard.screens.base import WizardScreen

        if isinstance(self.screen, WizardScreen):
            self.screen.dismiss(f"goto:{target}")

    def show_error(self, error: FirecoreError) -> None:
        """A user-facing error as a modal: title, message, fix, details on demand."""
        from wizard.screens.error import ErrorModal

        self.push_screen(ErrorModal(error))

    # ------------------------------------------------------------------ command palette
    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        """Every action of the wizard, plus the current screen's own."""
        from wizard.screens.base import WizardScreen

        if isinstance(screen, WizardScreen):
            yield SystemCommand("Next", "Go to the next screen (ctrl+n)", screen.action_next)
            yield SystemCommand("Back", "Go to the previous screen (ctrl+b)", screen.action_back)
            for entry in FLOW:
                if entry.screen is not None and entry.name != screen.NAME:
                    yield SystemCommand(
                        f"Go to {entry.title}",
                        f"Open the {entry.title} screen",
                        partial(screen.go_to, entry.name),
                    )
            for title, help_text, callback in screen.palette_commands():
                yield SystemCommand(title, help_text, callback)
        yield SystemCommand("Help", "Help for this screen (F1)", self.action_help)
        yield SystemCommand(
            "Toggle light/dark theme", "Switch the colour theme (ctrl+t)", self.action_toggle_theme
        )
        yield SystemCommand(
            "Save answers…", "Write the answers file (ctrl+s)", self.action_save_answers
        )
        yield SystemCommand(
            "Open answers file…", "Load a saved answers file (ctrl+o)", self.action_open_answers
        )
        yield from super().get_system_commands(screen)


def make_app(
    answers: Answers | None = None,
    answers_path: Path | None = None,
    steps: Sequence[Step] | None = None,
    *,
    services: Services | None = None,
    clock: Callable[[], float] | None = None,
    start: str | None = None,
    theme: str = DARK,
) -> FirecoreWizard:
    """The wizard, pre-filled from ``answers`` (loaded from ``answers_path`` by the CLI).

    Args:
        answers: initial answers; None → every default.
        answers_path: the file they came from: its sections mark their screens done, Save
            proposes it, and its secrets file pre-fills the token.
        steps: run these steps (by name) instead of the plan's — for tests.
        services: domain lookups; None → the real ones.
        clock: monotonic clock for ETAs (tests freeze it).
        start: open this screen first instead of Welcome / the first unfinished one.
        theme: initial Textual theme.
    """
    if start is not None and start not in {s.name for s in FLOW if s.screen is not None}:
        raise UsageError(f"no wizard screen called {start!r}")
    state = WizardState(answers=answers or default_answers(), answers_path=answers_path)
    if answers_path is not None:
        state.given = sections_in_file(answers_path)
        state.read_token()
    services = services or Services()
    if steps is not None:
        services.fixed_steps = {step.name: step for step in steps}
    return FirecoreWizard(state, services, clock=clock or time.monotonic, start=start, theme=theme)
