"""Screen 1 — Welcome: what the wizard will do, the host check, resume from a saved file."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widgets import Button, Input, Label, Static

from steps.answers import resolve_path
from wizard.messages import Loaded, LoadFailed
from wizard.screens.base import PaletteCommand, WizardScreen
from wizard.views import HostCheck
from wizard.widgets.step_runner import StepRunner

INTRO = """\
This wizard takes you from "a Raspberry Pi and a Linux box" to "the Pi booted my app" — \
over the network, no SD card. It will:

  1. pick a piCore release and the extensions (TCZ) your app needs,
  2. bundle your Python app (FastAPI + uvicorn) with wheels for the Pi,
  3. remaster piCore into a boot tree (rootless, nothing mounted),
  4. configure dnsmasq as proxy DHCP + TFTP next to your router (it never hands out addresses),
  5. deploy the tree atomically and test it with a virtual Pi before you plug one in.

Every answer ends up in one answers file you can save and replay with `--answers`."""


class WelcomeScreen(WizardScreen):
    """Intro, host check (tools, privileges) with fixes, and "resume from a file"."""

    NAME = "welcome"
    HELP = """\
# Welcome

The **host check** lists the programs and rights the later steps need. A missing tool does not
stop you here: the step that needs it will fail with the same fix. Privileges (root) are only
needed to install the dnsmasq config, start dnsmasq and run the self-test (raw sockets).

**Resume**: type the path of an answers file saved earlier (ctrl+s on any screen) and press
*Load*. Every screen is pre-filled; the screens whose section the file sets are marked done, the
others are asked for. `firecore-wizard --answers FILE --interactive` does the same at startup.
"""
    BINDINGS = [Binding("f5", "recheck", "Re-check host")]

    def compose_body(self) -> ComposeResult:
        yield Static(INTRO, classes="intro-text", markup=False)
        yield Label("Host check", classes="section-title")
        yield Static("checking the host…", id="host")
        yield Label("Resume from a saved answers file", classes="section-title")
        with Horizontal(classes="actions"):
            path = str(self.state.answers_path or "")
            yield Input(path, placeholder="path/to/answers.toml", compact=True, id="resume-path")
            yield Button("Load", id="resume", variant="default")
        yield StepRunner(clock=self.wizard.clock, visible=False, id="runner")

    def on_mount(self) -> None:
        super().on_mount()
        self.action_recheck()
        self.query_one("#next").focus()

    def action_recheck(self) -> None:
        """Run the host check again (F5)."""
        self.query_one(StepRunner).load("host", lambda cancel: self.services.host_checks())

    @on(Loaded)
    def _loaded(self, message: Loaded) -> None:
        if message.key != "host":
            return
        # Lines that wrap, not a table: at 80 columns a table cuts the fixes off at the right.
        checks: list[HostCheck] = message.value
        out = Text()
        for check in sorted(checks, key=lambda c: c.ok):
            if check.ok:
                out.append(f"✓ {check.item}: {check.detail}", "green")
                out.append(f" — {check.needed_for}\n", "dim")
            else:
                out.append(f"✕ {check.item}: {check.detail} — needed for {check.needed_for}\n")
                if check.fix:
                    out.append(f"  fix: {check.fix}\n", "bold")
        self.query_one("#host", Static).update(out)

    @on(LoadFailed)
    def _failed(self, message: LoadFailed) -> None:
        self.wizard.show_error(message.error)

    @on(Input.Submitted, "#resume-path")
    @on(Button.Pressed, "#resume")
    def action_resume(self) -> None:
        """Load the answers file named in the field."""
        text = self.query_one("#resume-path", Input).value.strip()
        if not text:
            self.notify("type the path of an answers file first", severity="warning")
            return
        path: Path = resolve_path(text)
        self.wizard.open_answers(path)

    def palette_commands(self) -> Iterable[PaletteCommand]:
        yield (
            "Re-check the host",
            "Look for the tools and privileges again (F5)",
            self.action_recheck,
        )
        yield (
            "Load the answers file typed on Welcome",
            "Resume a saved session",
            self.action_resume,
        )
