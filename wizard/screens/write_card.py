"""The write dialog: a card image onto an SD card, with the checks of ``write-image``.

It offers the machine's removable disks, names the chosen device (model, size, how it is
attached) with every reason not to write to it — the same refusals as the command, from
``steps.host.blockdev`` — and writes only after the user pressed "Erase and write" for that
named device. Force appears only for what it may override (not removable, larger than a card).
The write runs the command's step: progress, read-back verification, sync.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Label, Select, Static

from steps.answers import default_answers
from steps.base import Results
from steps.units import human_size
from wizard.messages import Loaded, LoadFailed, RunFinished
from wizard.views import CardTarget
from wizard.widgets.step_runner import StepRunner

if TYPE_CHECKING:
    from wizard.services import Services


class WriteCardModal(ModalScreen[bool]):
    """Choose a device, see what it is, write the image, verify; dismisses with success."""

    BINDINGS = [Binding("escape", "close", "Close")]
    DEFAULT_CSS = """
    WriteCardModal { align: center middle; }
    WriteCardModal > #dialog {
        width: 90%; max-width: 100; height: 90%; border: thick $warning;
        background: $surface; padding: 0 1;
    }
    WriteCardModal .row { height: auto; margin-top: 1; }
    WriteCardModal .row > Input, WriteCardModal .row > Select { width: 1fr; }
    WriteCardModal .row > Button { margin-left: 1; }
    WriteCardModal #target { height: auto; margin-top: 1; }
    WriteCardModal #force { display: none; }
    WriteCardModal #force.-shown { display: block; }
    WriteCardModal StepRunner { height: 1fr; }
    """

    def __init__(self, services: Services, image: Path, clock: Callable[[], float]) -> None:
        super().__init__(id="write-card")
        self.services = services
        self.image = image
        self._clock = clock
        self.target: CardTarget | None = None
        self.written = False

    def compose(self) -> ComposeResult:
        try:
            size = human_size(self.image.stat().st_size)
        except OSError:
            size = "missing"
        with Vertical(id="dialog"):
            yield Label("[b]Write a card[/b]")
            yield Static(f"Image: {self.image} ({size})", markup=False)
            with Horizontal(classes="row"):
                yield Select[str]([], prompt="removable disks", compact=True, id="devices")
                yield Input(placeholder="/dev/sdX", compact=True, id="device")
                yield Button("Check", id="check", compact=True)
            yield Static("Choose the card's device, then Check.", id="target", markup=False)
            yield Checkbox("Force (not removable / larger than a card)", id="force")
            with Horizontal(classes="row"):
                yield Button("Erase and write", id="write", variant="error", disabled=True)
                yield Button("Close", id="close")
            yield StepRunner(clock=self._clock, id="write-runner")

    def on_mount(self) -> None:
        self.query_one(StepRunner).load("devices", lambda cancel: self.services.card_devices())
        self.query_one("#device", Input).focus()

    @on(Select.Changed, "#devices")
    def _picked(self, event: Select.Changed) -> None:
        if isinstance(event.value, str):
            self.query_one("#device", Input).value = event.value
            self.action_check()

    @on(Input.Submitted, "#device")
    @on(Button.Pressed, "#check")
    def action_check(self) -> None:
        """Inspect the device typed (or picked)."""
        device = self.query_one("#device", Input).value.strip()
        self.target = None
        self._update()
        if not device:
            return
        image = str(self.image)
        self.query_one(StepRunner).load(
            "target", lambda cancel: self.services.card_target(image, device)
        )

    @on(Loaded)
    def _loaded(self, message: Loaded) -> None:
        if message.key == "devices":
            rows = [(t.description, t.path) for t in message.value]
            self.query_one("#devices", Select).set_options(rows)
        elif message.key == "target":
            self.target = message.value
            self._update()

    @on(LoadFailed)
    def _failed(self, message: LoadFailed) -> None:
        self.query_one("#target", Static).update(f"✕ {message.error.message}")

    @on(Checkbox.Changed, "#force")
    def _force(self) -> None:
        self._update()

    def _update(self) -> None:
        box = self.query_one("#target", Static)
        force = self.query_one("#force", Checkbox)
        write = self.query_one("#write", Button)
        target = self.target
        if target is None:
            box.update("Choose the card's device, then Check.")
            force.set_class(False, "-shown")
            write.disabled = True
            return
        lines = [target.description]
        lines += [f"✕ {p.reason} — {p.fix}" for p in target.problems]
        forceable = [p for p in target.problems if p.forceable]
        force.set_class(bool(forceable) and not target.blocked, "-shown")
        allowed = not target.blocked and (not forceable or force.value)
        if allowed:
            lines.append("Everything on it will be erased.")
        box.update("\n".join(lines))
        write.disabled = not allowed or self.query_one(StepRunner).running
        write.label = f"Erase {target.path} and write"

    @on(Button.Pressed, "#write")
    def _write(self) -> None:
        target = self.target
        runner = self.query_one(StepRunner)
        if target is None or runner.running:
            return
        force = self.query_one("#force", Checkbox).value
        step = self.services.write_image_step(str(self.image), target.path, force=force)
        self.query_one("#write", Button).disabled = True
        runner.start("write", [step], default_answers(), Results())

    @on(RunFinished)
    def _done(self, message: RunFinished) -> None:
        if message.run != "write":
            return
        box = self.query_one("#target", Static)
        if message.ok:
            self.written = True
            results = self.query_one(StepRunner).results
            box.update(f"✓ {results[-1].summary}" if results else "✓ written and verified")
        elif message.error is not None:
            fix = f" — {message.error.fix}" if message.error.fix else ""
            box.update(f"✕ {message.error.message}{fix}")
        self.query_one("#write", Button).disabled = message.ok  # a retry after a failure

    @on(Button.Pressed, "#close")
    def action_close(self) -> None:
        """Close (a running write is cancelled: the card then holds an incomplete image)."""
        self.query_one(StepRunner).cancel()
        self.dismiss(self.written)
