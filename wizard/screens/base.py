"""The frame every wizard screen shares: stepper, body, Back/Next with the reason, footer.

A screen dismisses with where to go ("next", "back", "goto:<name>"); the app's navigation loop
does the rest. Next stays disabled while ``problems()`` is not empty and the first problem is
shown beside it, so the user always knows what blocks them. Screens add their actions to the
command palette through ``palette_commands``.

Actions that read the answers (Next, Back, Go to, Build, Apply, Save …) run through
``after_typing``: keys already on their way to the focused editor are applied first and every
field's text is settled into the answers, so a fast "type, ctrl+n" never acts on the old value.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Button, Footer, Header, Label, Static

from wizard.flow import missing, spec
from wizard.messages import RunFinished
from wizard.state import WizardState
from wizard.widgets.answer_field import AnswerField
from wizard.widgets.stepper import Stepper

if TYPE_CHECKING:
    from wizard.app import FirecoreWizard
    from wizard.services import Services

#: (title, help, callback) for the command palette.
PaletteCommand = tuple[str, str, Callable[[], object]]


class WizardScreen(Screen[str]):
    """Base of the wizard's screens."""

    NAME: ClassVar[str] = ""
    HELP: ClassVar[str] = ""
    """Markdown shown by F1 for this screen."""
    BODY_SCROLLS: ClassVar[bool] = True
    NEXT_LABEL: ClassVar[str] = "Next ^n ▶"

    # Next/Back are buttons labelled with their keys: the footer keeps its room at 80 columns
    # for the screen's own keys.
    BINDINGS = [
        Binding("ctrl+n", "next", "Next", priority=True, show=False),
        Binding("ctrl+b", "back", "Back", priority=True, show=False),
        Binding("escape", "escape", "Back", show=False),
    ]
    #: No automatic focus: ``on_mount`` focuses the body's first widget without scrolling to it.
    AUTO_FOCUS = None

    def __init__(self, state: WizardState, services: Services) -> None:
        super().__init__(name=self.NAME, id=f"screen-{self.NAME}")
        self.state = state
        self.services = services
        self.key_errors: dict[str, str] = {}
        """Errors of answers set by widgets other than AnswerField (tables, lists, selects)."""
        self.sub_title = spec(self.NAME).title

    @property
    def wizard(self) -> FirecoreWizard:
        """The app, typed."""
        return self.app  # type: ignore[return-value]

    # ------------------------------------------------------------------ layout
    def compose(self) -> ComposeResult:
        yield Header(icon="◆")
        with Horizontal(id="frame"):
            yield Stepper(self.state, self.NAME, id="stepper")
            with Vertical(id="main"):
                body = VerticalScroll(id="body") if self.BODY_SCROLLS else Vertical(id="body")
                with body:
                    yield from self.compose_body()
                with Horizontal(id="nav"):
                    yield Button("◀ ^b Back", id="back", compact=True)
                    yield Label("", id="reason", markup=False)  # messages quote user values
                    yield Button(self.NEXT_LABEL, id="next", variant="primary", compact=True)
        yield Footer(compact=True)

    def compose_body(self) -> ComposeResult:
        """The screen's own widgets."""
        yield from ()

    def on_mount(self) -> None:
        self.query_one("#back", Button).disabled = self.NAME == "welcome"
        self.state.forget_facts()  # the world may have changed since the last screen
        self.refresh_nav()
        # Start in the screen's own widgets, not in the stepper on its left; without scrolling
        # to the first field, which would hide what sits above it (the App checks, the mirrors'
        # answer) at 80×24.
        first = next((w for w in self.query_one("#body").query("*") if w.focusable), None)
        if first is not None:
            self.set_focus(first, scroll_visible=False)

    @on(RunFinished)
    def _run_finished(self, message: RunFinished) -> None:
        # a build, an Apply or a deploy changes what is done: read the world again
        self.state.forget_facts()
        self.refresh_nav()

    # ------------------------------------------------------------------ settling
    def settle_fields(self) -> None:
        """Apply every field's current text to the answers now (no waiting for the debounce)."""
        for answer_field in self.query(AnswerField):
            answer_field.settle()

    def after_typing(self, callback: Callable[[], object]) -> None:
        """Run ``callback`` once the keys already sent to the focused widget are applied.

        A key binding such as ctrl+n runs as soon as the app reads it, while the characters
        typed just before it may still wait in the focused editor's queue. Queuing the callback
        behind them (``call_later`` on that widget), then settling every field, makes the action
        see exactly what was typed.
        """

        def run() -> None:
            if self.is_attached and self.app.screen is self:
                self.settle_fields()
                callback()

        focused = self.focused
        if focused is not None and focused.is_attached:
            focused.call_later(run)
        else:
            self.call_later(run)

    # ------------------------------------------------------------------ validity
    def problems(self) -> list[str]:
        """What keeps Next disabled, most important first (empty: the screen is valid)."""
        found = [f.error for f in self.query(AnswerField) if f.error]
        return found + list(self.key_errors.values()) + self.extra_problems()

    def extra_problems(self) -> list[str]:
        """Screen-specific reasons beyond invalid fields."""
        return []

    def refresh_nav(self) -> None:
        """Enable Next or show why not; refresh the stepper."""
        if not self.is_attached or not self.query("#next"):
            return  # not composed yet (``is_mounted`` is still False inside ``on_mount``)
        problems = self.problems()
        self.query_one("#next", Button).disabled = bool(problems)
        self.query_one("#reason", Label).update(f"Next: {problems[0]}" if problems else "")
        self.query_one("#reason", Label).tooltip = "\n".join(problems) or None
        self.query_one(Stepper).refresh_status()

    def set_answer(
        self, key: str, value: object, show: Static | None = None, *, blocking: bool = True
    ) -> bool:
        """Set one answers key from a non-field widget, with the same validation as a field.

        A rejected value is shown in ``show``; with ``blocking`` (a widget whose state IS the
        answer, like a board list) it also keeps Next disabled until corrected. Actions such as
        "add this device" pass ``blocking=False``: the answers were left as they were.
        """
        problem = self.state.try_set(key, value)
        message = ""
        if problem is not None:
            message = problem.message + (f" — {problem.fix}" if problem.fix else "")
        if problem is None or not blocking:
            self.key_errors.pop(key, None)
        else:
            self.key_errors[key] = message
        if show is not None:
            show.update(f"✕ {message}" if message else "")
            show.set_class(bool(message), "bad")
        self.refresh_nav()
        return problem is None

    @on(AnswerField.Validated)
    @on(AnswerField.Checked)
    def _field_validated(self, event: AnswerField.Validated | AnswerField.Checked) -> None:
        self.refresh_nav()

    # ------------------------------------------------------------------ navigation
    def before_next(self) -> str | None:
        """Last work before leaving with Next; return an error text to stay."""
        return None

    def action_next(self) -> None:
        """Go on if the screen is valid; otherwise say why not."""
        self.after_typing(self._next)

    def _next(self) -> None:
        problems = self.problems()
        if problems:
            self.notify(problems[0], title="Not ready yet", severity="warning")
            return
        error = self.before_next()
        if error:
            self.notify(error, title="Cannot continue", severity="error")
            return
        self.state.confirmed.add(self.NAME)
        self.dismiss("next")

    def action_back(self) -> None:
        """Previous screen (answers typed here are kept if valid)."""
        if self.NAME != "welcome":
            self.after_typing(lambda: self.dismiss("back"))

    def action_escape(self) -> None:
        """Escape: stop what this screen is running; with nothing running, go back."""
        from wizard.widgets.step_runner import StepRunner

        running = [r for r in self.query(StepRunner) if r.running]
        for runner in running:
            runner.cancel()
        if not running:
            self.action_back()

    def go_to(self, name: str) -> None:
        """Open another screen if it is not blocked."""
        self.after_typing(lambda: self._go_to(name))

    def _go_to(self, name: str) -> None:
        if name == self.NAME:
            return
        needs = missing(self.state, name)
        if needs:
            self.notify(
                f"{spec(name).title} needs {', '.join(needs)} first",
                title="Not yet",
                severity="warning",
            )
            return
        self.dismiss(f"goto:{name}")

    @on(Stepper.Chosen)
    def _stepper(self, event: Stepper.Chosen) -> None:
        self.go_to(event.name)

    @on(Button.Pressed, "#next")
    def _next_pressed(self) -> None:
        self.action_next()

    @on(Button.Pressed, "#back")
    def _back_pressed(self) -> None:
        self.action_back()

    # ------------------------------------------------------------------ palette
    def palette_commands(self) -> Iterable[PaletteCommand]:
        """This screen's actions for the command palette."""
        return ()
