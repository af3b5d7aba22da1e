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
from typing import Any

from textual import events, work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import ModalScreen, Screen

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
        demo: bool = False,
    ) -> None:
        super().__init__()
        self._demo = demo
        self.state = state
        self.services = services
        self.clock = clock
        self.current = ""
        self._start = start or (first_open(state) if state.answers_path else "welcome")
        self._theme_name = theme
        self._quitting = False
        self.farewell = ""
        """A line printed on the terminal after the wizard exits (Finish: dnsmasq keeps running)."""

    def on_mount(self) -> None:
        self.theme = self._theme_name
        if self._demo:
            from wizard.screens.demo_start import DemoStartScreen

            preparing = DemoStartScreen(self.state.answers)
            self.push_screen(preparing, lambda answers: self._demo_ready(preparing, answers))
            return
        self._navigate(self._start)

    def _demo_ready(self, preparing: Any, answers: Answers | None) -> None:
        if answers is not None:
            self.state.use_demo(answers)
            for note in preparing.notes:
                warn = "WARNING" in note
                self.notify(
                    note.removeprefix("DEMO: ").strip(),
                    title="Demo",
                    severity="warning" if warn else "information",
                    timeout=12 if warn else 6,
                )
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
        """Quit; unsaved answers are confirmed first, a running step is stopped cleanly.

        The step removes its staging directory when it sees the cancel flag, so the previous
        output is left exactly as it was. The screen stays as it is meanwhile (only the step
        workers are cancelled, never the navigation), and a second ctrl+q does not wait.
        """
        if self._quitting:
            self.exit(0)
            return
        if self.state.unsaved() and not isinstance(self.screen, ModalScreen):
            from wizard.screens.confirm import ConfirmModal

            where = self.state.answers_path or default_answers_path()
            modal = ConfirmModal(
                "Quit without saving?",
                f"The answers changed since they were last saved ({where}). ctrl+s saves them; "
                "quitting now loses the changes.",
                "Quit without saving",
            )
            self.push_screen(modal, self._quit_confirmed)
            return
        await self._quit_now()

    async def _quit_confirmed(self, ok: bool | None) -> None:
        if ok:
            await self._quit_now()

    async def _quit_now(self) -> None:
        from wizard.widgets.step_runner import RUN_LOCK

        self._quitting = True
        steps = [w for w in self.workers if w.group == "steps" and not w.is_finished]
        if steps:
            self.notify(
                "Stopping the running step; the previous output stays as it was…",
                title="Quitting",
                timeout=QUIT_GRACE,
            )
            for worker in steps:
                worker.cancel()
            if await asyncio.to_thread(RUN_LOCK.acquire, timeout=QUIT_GRACE):
                RUN_LOCK.release()
        self.exit(0)

    def action_help_quit(self) -> None:
        """ctrl+c: stop the step running on this screen (as Cancel does); else say how to quit."""
        from wizard.widgets.step_runner import StepRunner

        running = [r for r in self.screen.query(StepRunner) if r.running]
        if not running:
            super().action_help_quit()
            return
        for runner in running:
            runner.cancel()
        self.notify(
            "Cancelling: the step stops at its next safe point (ctrl+q quits the wizard)",
            title="ctrl+c",
        )

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
        from wizard.screens.base import WizardScreen
        from wizard.screens.path_modal import PathModal

        def ask() -> None:
            default = self.state.answers_path or default_answers_path()
            modal = PathModal("Save answers", "Save to", str(default), "Save")
            self.push_screen(modal, self._save_to)

        if isinstance(self.screen, WizardScreen):
            self.screen.after_typing(ask)  # save what was typed, settled
        else:
            ask()

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
            # without the demo's per-run values (its mirror port, its wheelhouse)
            atomic_write(path, dump_answers(self.state.answers_for_file()))
        except OSError as exc:
            raise disk_error(path, exc) from None
        self.state.answers_path = path
        self.state.saved_to = path
        self.state.mark_saved()
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
    demo: bool = False,
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
        demo: generate and serve the demo mirror first (with its own first frame).
    """
    if start is not None and start not in {s.name for s in FLOW if s.screen is not None}:
        raise UsageError(f"no wizard screen called {start!r}")
    state = WizardState(answers=answers or default_answers(), answers_path=answers_path)
    if answers_path is not None:
        state.given = sections_in_file(answers_path)
        state.read_token()
    state.mark_saved()  # what the session starts from is not "unsaved changes"
    services = services or Services()
    if steps is not None:
        services.fixed_steps = {step.name: step for step in steps}
    return FirecoreWizard(
        state, services, clock=clock or time.monotonic, start=start, theme=theme, demo=demo
    )
