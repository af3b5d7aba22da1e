"""Screen 5 — Build: run release → extensions → app → remaster with live progress.

The same steps and the same ``StepContext`` as ``firecore-wizard --answers FILE``; only the
rendering differs. Cancel sets the run's cancel flag: the running step stops at its next check and
removes its staging directory, so the previous boot tree stays exactly as it was. A failure shows
the step, the cause and the fix (details expandable) with Retry.
"""

from __future__ import annotations

from collections.abc import Iterable

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Collapsible, Static

from steps.artifacts import BuildResult
from steps.errors import FirecoreError
from steps.units import human_size
from wizard.messages import RunFinished
from wizard.screens.base import PaletteCommand, WizardScreen
from wizard.screens.error import ErrorPanel
from wizard.widgets.answer_field import AnswerField
from wizard.widgets.step_runner import StepRunner

BUILD_STEPS = ("release", "extensions", "app", "remaster")


class BuildScreen(WizardScreen):
    """Build the boot tree; Cancel keeps the previous output; Retry after a failure."""

    NAME = "build"
    BODY_SCROLLS = False
    HELP = """\
# Build

**Build** (F5) runs the same four steps as the headless command: download and verify the
release, resolve and download the extensions, bundle the app with its Pi wheels, and remaster
everything into a boot tree at `build.output` with a `manifest.json`.

* The **Overall** bar counts steps; below it one bar per running phase with bytes and an ETA;
  finished phases collapse into the ✓ line. The log shows every command and its output.
* **Cancel** (Escape) stops at the next safe point. Nothing half-written is left: the previous
  boot tree stays exactly as it was.
* On a failure the panel names the **step**, the **cause** and the **fix**; *Details* holds the
  command's stderr. Fix the cause (often on an earlier screen) and press **Retry**.
* Same answers → byte-identical tree: a rebuild with nothing changed rewrites nothing.
"""
    BINDINGS = [
        Binding("f5", "build", "Build"),
        Binding("escape", "cancel_build", "Cancel"),
    ]

    def compose_body(self) -> ComposeResult:
        with Collapsible(title="Build settings", collapsed=True, id="settings"):
            yield AnswerField(self.state, "build.output", "Output directory")
            yield AnswerField(
                self.state, "build.cache", "Cache directory", placeholder="(user cache)"
            )
            yield AnswerField(self.state, "build.cmdline_extra", "Extra kernel flags", kind="list")
        with Horizontal(classes="actions", id="build-actions"):
            yield Button("Build", id="start", variant="primary", compact=True)
            yield Button("Cancel", id="cancel", variant="warning", compact=True, disabled=True)
            yield Static("", id="build-state", markup=False)
        yield Vertical(id="failure")
        yield StepRunner(clock=self.wizard.clock, id="runner")

    def on_mount(self) -> None:
        super().on_mount()
        self._failed = False
        if self.problems_in_settings():
            self.query_one("#settings", Collapsible).collapsed = False
        self._show_state()
        self.query_one("#start", Button).focus()

    def problems_in_settings(self) -> bool:
        """A settings field is invalid (then the settings open)."""
        return any(f.error for f in self.query(AnswerField))

    # ------------------------------------------------------------------ running
    @on(Button.Pressed, "#start")
    def action_build(self) -> None:
        """Start (or retry) the build (F5)."""
        runner = self.query_one(StepRunner)
        if runner.running:
            return
        field_errors = [f.error for f in self.query(AnswerField) if f.error]
        if field_errors:
            self.notify(field_errors[0], title="Fix the settings first", severity="warning")
            return
        try:
            steps = self.services.steps(BUILD_STEPS, self.state.answers)
        except FirecoreError as exc:
            self._show_failure(exc, None)
            return
        self.query_one("#failure", Vertical).remove_children()
        self._failed = False
        self.state.results.clear()
        runner.start("build", steps, self.state.answers, self.state.results)
        self._set_running(True)

    @on(Button.Pressed, "#cancel")
    def action_cancel_build(self) -> None:
        """Stop the running build (Escape; with no build running Escape goes back)."""
        if not self.query_one(StepRunner).cancel():
            self.action_back()

    def _set_running(self, running: bool) -> None:
        self.query_one("#start", Button).disabled = running
        self.query_one("#cancel", Button).disabled = not running
        self._show_state()
        self.refresh_nav()

    @on(RunFinished)
    def _finished(self, message: RunFinished) -> None:
        if message.run != "build":
            return
        self.state.forget_facts()
        if message.ok:
            summaries = [r.summary for r in self.query_one(StepRunner).results if r.summary]
            self.state.build_summary = summaries[-1] if summaries else "built"
        elif message.error is not None:
            self._show_failure(message.error, message.step)
        self._set_running(False)
        if message.cancelled:
            self.query_one("#build-state", Static).update(
                "Cancelled — the previous output is unchanged."
            )

    def _show_failure(self, error: FirecoreError, step: str | None) -> None:
        self._failed = True
        box = self.query_one("#failure", Vertical)
        box.remove_children()
        where = f"step {step}" if step else ""
        box.mount(ErrorPanel(error, where=where, id="failure-panel"))
        self.query_one("#start", Button).label = "Retry"
        self._show_state()
        self.refresh_nav()

    def _show_state(self) -> None:
        state = self.query_one("#build-state", Static)
        built = self.state.results.get(BuildResult)
        runner = self.query_one(StepRunner)
        if runner.running:
            text = "building…"
        elif self._failed:
            text = "failed — see below; fix it and Retry (F5)"
        elif built is not None and self.state.facts().build.done:
            demo = " DEMO" if built.demo else ""
            changed = "" if built.changed else " (unchanged)"
            text = (
                f"✓{demo} {built.files} files, {human_size(built.bytes)} in {built.output}"
                f" · build {built.build_id}{changed}"
            )
        elif self.state.facts().build.done:
            text = f"✓ {self.state.facts().build.why}"
        elif self.state.output_built():
            text = f"{self.state.facts().build.why} (F5)"
        else:
            text = "not built yet — press Build (F5)"
        state.update(text)
        state.set_class(text.startswith("✓"), "ok")

    def extra_problems(self) -> list[str]:
        runner = self.query(StepRunner)
        if runner and runner.first().running:
            return ["a build is running (wait, or Cancel with Escape)"]
        if getattr(self, "_failed", False):
            return ["the build failed: fix the cause and Retry (F5)"]
        build = self.state.facts().build
        if not build.done:
            built = self.state.output_built()
            return [f"{build.why} (F5)" if built else "build the boot tree first (F5)"]
        return []

    def palette_commands(self) -> Iterable[PaletteCommand]:
        yield (
            "Build the boot tree",
            "Run release, extensions, app, remaster (F5)",
            self.action_build,
        )
        yield ("Retry the build", "Run the build again after fixing the cause", self.action_build)
        yield ("Cancel the build", "Stop at the next safe point (Escape)", self.action_cancel_build)
