"""Screen — Prepare: the one card that makes each Pi model netboot-ready (before Deploy).

Pick the model; the screen says what enables netboot on it and what the card does. For a Pi
4/400/CM4/5 the bootloader settings (the answers' ``[prepare]`` keys) are right here. **Make
card** runs the command's step (``firecore-wizard prepare --model``), **Write to SD card…**
opens the write dialog for the card image it made.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Label, Select, Static

from steps.bootloader.models import MODELS, why
from steps.errors import FirecoreError
from steps.events import Result
from wizard.messages import RunFinished, StepEvent
from wizard.screens.base import PaletteCommand, WizardScreen
from wizard.widgets.answer_field import AnswerField
from wizard.widgets.step_runner import StepRunner

CARD_MODES = [
    ("once: pieeprom.upd — flashes, then boots on", "once"),
    ("many: pieeprom.bin — flashes every Pi, then stops", "many"),
]


def card_text(data: Mapping[str, Any]) -> str:
    """What prepare made and what to do with it (the Result's data, as on stdout)."""
    lines: list[str] = []
    if data.get("image"):
        lines.append(f"Card image: {data['image']}")
    if data.get("directory"):
        lines.append(f"Card files: {data['directory']} (or copy these onto any FAT32 card)")
    lines += [f"{n}. {step}" for n, step in enumerate(data.get("instructions", []), 1)]
    if data.get("check"):
        lines.append(f"Check: {data['check']}")
    return "\n".join(lines)


class PrepareScreen(WizardScreen):
    """Per model: what enables netboot, and the card that does it."""

    NAME = "prepare"
    HELP = """\
# Prepare

A Pi boots from the network only once network boot is enabled on it — once per Pi, before its
first netboot. Pick the model:

* **Pi 3B**: an SD card that boots this build once with `program_usb_boot_mode=1`, which sets
  the OTP bit for good. The Status screen then shows *netboot on (OTP 17:3020000a)*.
* **Pi 3B+**: nothing to do, it netboots out of the box.
* **Pi 4 / 400 / CM4 / 5**: a bootloader recovery card (recovery.bin, pieeprom.upd,
  pieeprom.sig) whose configuration has your **BOOT_ORDER** (it must include network, 2) and
  optional TFTP settings. The firmware is downloaded from the rpi-eeprom repository (cached,
  sha256-checked; offline: point *Firmware from* at a local copy).
* **Pi 1 / 2 / Zero**: cannot netboot; they boot the same system from the build's SD image.

**Make card** (F5) writes the card image under `prepare.output`; **Write to SD card…** (F6)
writes it to a card safely (removable devices only, verified). Details: docs/prepare.md.
"""
    BINDINGS = [Binding("f5", "make", "Make card"), Binding("f6", "write", "Write card")]

    def compose_body(self) -> ComposeResult:
        options = [(f"{info.title} ({key})", key) for key, info in MODELS.items()]
        with Horizontal(classes="actions"):
            yield Select(
                options,
                value=self.state.prepare_model,
                allow_blank=False,
                compact=True,
                id="model",
            )
            yield Button("Make card", id="make", variant="primary", compact=True)
            yield Button("Write to SD card…", id="write", compact=True, disabled=True)
        yield Static("", id="why", markup=False)
        yield Static("", id="card", markup=False)
        yield AnswerField(self.state, "prepare.output", "Cards go to")
        with Vertical(id="eeprom-settings"):
            yield Label("Bootloader settings (Pi 4 / 400 / CM4 / 5)", classes="section-title")
            yield AnswerField(self.state, "prepare.boot_order", "Boot order")
            yield AnswerField(
                self.state, "prepare.tftp_ip", "TFTP server", placeholder="(from DHCP)"
            )
            yield AnswerField(
                self.state, "prepare.tftp_prefix", "TFTP prefix", placeholder="(serial number)"
            )
            yield AnswerField(self.state, "prepare.dhcp_timeout", "DHCP timeout (ms)", kind="int")
            yield Select(
                CARD_MODES,
                value=self.state.answers.prepare.card,
                allow_blank=False,
                compact=True,
                id="card-mode",
            )
            yield AnswerField(self.state, "prepare.eeprom_mirrors", "Firmware from", kind="list")
        yield StepRunner(clock=self.wizard.clock, id="runner")

    def on_mount(self) -> None:
        super().on_mount()
        self._show_model()

    @property
    def model(self) -> str:
        return self.state.prepare_model

    @on(Select.Changed, "#model")
    def _model_changed(self, event: Select.Changed) -> None:
        if isinstance(event.value, str):
            self.state.prepare_model = event.value
            self._show_model()

    @on(Select.Changed, "#card-mode")
    def _card_mode(self, event: Select.Changed) -> None:
        if isinstance(event.value, str):
            self.set_answer("prepare.card", event.value)

    def _show_model(self) -> None:
        info = MODELS[self.model]
        text = why(info) + (f"\nNote: {info.note}" if info.note else "")
        self.query_one("#why", Static).update(text)
        self.query_one("#eeprom-settings").display = info.action == "eeprom-card"
        self.query_one("#make", Button).disabled = info.action == "nothing"
        made = self.state.prepared.get(self.model)
        self.query_one("#card", Static).update(card_text(made) if made else "")
        self.query_one("#write", Button).disabled = not (made and made.get("image"))

    @on(Button.Pressed, "#make")
    def action_make(self) -> None:
        """Make the card for the chosen model (F5)."""
        runner = self.query_one(StepRunner)
        if runner.running or MODELS[self.model].action == "nothing":
            return
        errors = [f.error for f in self.query(AnswerField) if f.error]
        if errors and MODELS[self.model].action == "eeprom-card":
            self.notify(errors[0], title="Fix the settings first", severity="warning")
            return
        try:
            step = self.services.prepare_step(self.state.answers, self.model)
        except FirecoreError as exc:
            self.wizard.show_error(exc)
            return
        self.query_one("#card", Static).update("making the card…")
        runner.start("prepare", [step], self.state.answers, self.state.results)

    @on(StepEvent)
    def _event(self, message: StepEvent) -> None:
        event = message.event
        if isinstance(event, Result) and event.step == "prepare" and "action" in event.data:
            data = dict(event.data)
            self.state.prepared[str(data.get("model") or self.model)] = data
            self._show_model()

    @on(RunFinished)
    def _finished(self, message: RunFinished) -> None:
        if message.run == "prepare" and message.error is not None:
            self.query_one("#card", Static).update(f"✕ {message.error.message}")
            self.wizard.show_error(message.error)

    @on(Button.Pressed, "#write")
    def action_write(self) -> None:
        """Write the card image to an SD card (F6)."""
        from wizard.screens.write_card import WriteCardModal

        made = self.state.prepared.get(self.model) or {}
        if not made.get("image"):
            self.notify("make the card first (F5)", severity="warning")
            return
        self.app.push_screen(
            WriteCardModal(self.services, Path(str(made["image"])), self.wizard.clock)
        )

    def extra_problems(self) -> list[str]:
        runner = self.query(StepRunner)
        if runner and runner.first().running:
            return ["a card is being made (wait for it)"]
        return []

    def palette_commands(self) -> Iterable[PaletteCommand]:
        yield ("Make the card", "Prepare the card for the chosen model (F5)", self.action_make)
        yield ("Write the card", "Write the card image to an SD card (F6)", self.action_write)
