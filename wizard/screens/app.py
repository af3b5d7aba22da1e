"""Screen 4 — App: which app runs on the Pis, its packages, hostname, SSH keys, token."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.timer import Timer
from textual.widgets import Button, Checkbox, Input, Label, Static

from steps.answers import resolve_path
from steps.errors import FirecoreError
from wizard.messages import Loaded, LoadFailed
from wizard.screens.base import PaletteCommand, WizardScreen
from wizard.state import get_key
from wizard.views import Check
from wizard.widgets.answer_field import AnswerField
from wizard.widgets.step_runner import StepRunner

#: Keys whose change makes the app checks run again.
CHECKED_KEYS = ("app.path", "app.python_packages", "app.wheelhouse", "app.secrets_file")
#: Seconds after the last edit of one of those keys before the checks run again.
CHECK_DELAY = 0.6


class AppScreen(WizardScreen):
    """The app bundle: directory (or the bundled FastAPI app), packages, identity, access."""

    NAME = "app"
    HELP = """\
# App

**Directory**: empty runs the bundled FastAPI app (a status page, `/health`, `/info`). To run your
own, choose its directory (*Browse…*): it needs an entry point — a module exposing `app` for
uvicorn, or an executable `run` script — and may have a `requirements.txt`.

**Python packages** are installed for the Pi's platform as wheels (no compiler on the Pi). A
package without a wheel for the Pi fails the check below; build a wheel into the *wheelhouse*
directory, or drop the package. A wheelhouse also makes builds work offline.

**Hostname** is what the Pis call themselves (per-device profiles on Deploy can override it).
**SSH keys** (one per line) may log in as user `tc`. The **token** protects every endpoint but
`/health`; it is written only to the *secrets file* (mode 0600), never to the answers file, and
the Pis receive only its sha256.
"""
    BINDINGS = [Binding("f5", "check", "Check app"), Binding("f6", "browse", "Browse…")]
    # room for the three check lines from the start: fields do not jump down when they arrive
    DEFAULT_CSS = "AppScreen #checks { min-height: 3; }"

    def compose_body(self) -> ComposeResult:
        yield Static("", id="checks", markup=False)
        yield AnswerField(self.state, "app.path", "App directory", placeholder="(bundled app)")
        with Horizontal(classes="actions"):
            yield Button("Browse…", id="browse", compact=True)
            yield Button("Use the bundled app", id="bundled", compact=True)
        yield AnswerField(self.state, "app.python_packages", "Python packages", kind="list")
        yield AnswerField(self.state, "app.wheelhouse", "Wheelhouse", placeholder="(PyPI)")
        yield AnswerField(self.state, "app.hostname", "Hostname")
        yield AnswerField(self.state, "app.port", "Port", kind="int")
        yield AnswerField(self.state, "app.ssh_authorized_keys", "SSH public keys", kind="lines")
        yield Label("Token  [dim]stored in app.secrets_file[/]", classes="field-label")
        yield Input(
            self.state.token,
            password=True,
            placeholder="(no token: open endpoints)",
            compact=True,
            id="token",
        )
        yield AnswerField(self.state, "app.secrets_file", "Secrets file", placeholder="(none)")
        yield AnswerField(self.state, "app.env", "App settings (NAME=value per line)", kind="lines")
        yield Checkbox(
            "Ship bytecode (.pyc): faster start on every boot  app.precompile",
            self.state.answers.app.precompile,
            compact=True,
            id="precompile",
        )
        yield StepRunner(clock=self.wizard.clock, visible=False, id="runner")

    _debounce: Timer | None = None
    _checked_for: tuple[object, ...] = ()

    def _checked_values(self) -> tuple[object, ...]:
        return tuple(get_key(self.state.answers, key) for key in CHECKED_KEYS)

    def on_mount(self) -> None:
        super().on_mount()
        self._checks: list[Check] = []
        self.action_check()

    # ------------------------------------------------------------------ checks
    def action_check(self) -> None:
        """Run the app checks again (F5)."""
        answers = self.state.answers
        self._checked_for = self._checked_values()
        self.query_one("#checks", Static).update("checking the app…")
        self.query_one(StepRunner).load(
            "checks", lambda cancel: self.services.app_checks(answers, cancel)
        )

    @on(AnswerField.Validated)
    def _changed(self, event: AnswerField.Validated) -> None:
        # typing a path or a package list: check once the user pauses (the wheel check runs pip).
        # Every field reports its first value when it is mounted: that is no change to check.
        if (
            event.key in CHECKED_KEYS
            and not event.error
            and self._checked_values() != self._checked_for
        ):
            if self._debounce is not None:
                self._debounce.stop()
            self._debounce = self.set_timer(CHECK_DELAY, self.action_check)

    @on(Checkbox.Changed, "#precompile")
    def _precompile(self, event: Checkbox.Changed) -> None:
        self.set_answer("app.precompile", event.value)

    @on(Loaded)
    def _loaded(self, message: Loaded) -> None:
        if message.key != "checks":
            return
        self._checks = list(message.value)
        lines = []
        for check in self._checks:
            mark = "✓" if check.ok else "✕"
            fix = f" — {check.fix}" if check.fix and not check.ok else ""
            lines.append(f"{mark} {check.name}: {check.message}{fix}")
        widget = self.query_one("#checks", Static)
        widget.update("\n".join(lines))
        widget.set_class(any(not c.ok for c in self._checks), "bad")
        widget.set_class(all(c.ok for c in self._checks), "ok")
        self.refresh_nav()

    @on(LoadFailed)
    def _failed(self, message: LoadFailed) -> None:
        self._checks = []
        error = message.error
        widget = self.query_one("#checks", Static)
        widget.update(f"✕ {error.message}" + (f" — {error.fix}" if error.fix else ""))
        widget.set_class(True, "bad")
        self.refresh_nav()

    def extra_problems(self) -> list[str]:
        failed = [c for c in getattr(self, "_checks", []) if not c.ok]
        problems = [f"{c.name}: {c.message}" for c in failed]
        if self.state.token and not self.state.answers.app.secrets_file:
            problems.append("a token needs a secrets file path (app.secrets_file)")
        return problems

    # ------------------------------------------------------------------ path, token
    @on(Button.Pressed, "#browse")
    def action_browse(self) -> None:
        """Pick the app directory (F6)."""
        from wizard.screens.pick_dir import DirectoryPicker

        current = self.state.answers.app.path
        start = resolve_path(current) if current else Path.cwd()
        self.app.push_screen(DirectoryPicker("App directory", start), self._picked)

    def _picked(self, path: Path | None) -> None:
        if path is not None:
            self.query_one("#field-app-path", AnswerField).set_text(str(path))

    @on(Button.Pressed, "#bundled")
    def _bundled(self) -> None:
        self.query_one("#field-app-path", AnswerField).set_text("")

    @on(Input.Changed, "#token")
    def _token(self, event: Input.Changed) -> None:
        self.state.token = event.value.strip()
        if self.state.token and not self.state.answers.app.secrets_file:
            self.query_one("#field-app-secrets-file", AnswerField).set_text("firecore.secrets.toml")
        self.refresh_nav()

    def before_next(self) -> str | None:
        """Write the token to the 0600 secrets file now: the build reads it."""
        try:
            self.state.write_secrets()
        except (OSError, FirecoreError) as exc:
            return f"cannot write the secrets file: {exc}"
        return None

    def palette_commands(self) -> Iterable[PaletteCommand]:
        yield ("Check the app", "Entry point, wheels for the Pi (F5)", self.action_check)
        yield ("Browse for the app directory", "Pick a directory (F6)", self.action_browse)
