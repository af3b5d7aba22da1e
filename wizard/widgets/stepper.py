"""The stepper sidebar: every screen of the flow with its status, clickable.

An ``OptionList`` so it works with the keyboard (arrows + Enter) and the mouse alike. Blocked
screens and the place kept for the later Diagnostics screen are disabled options; choosing an
open one posts ``Stepper.Chosen`` and the screen turns it into navigation.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual import on
from textual.message import Message
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from wizard.flow import FLOW, Status, missing, status
from wizard.state import WizardState

_GLYPH: dict[Status, tuple[str, str]] = {
    "done": ("✓", "green"),
    "current": ("▶", "bold"),
    "todo": ("○", ""),
    "blocked": ("✕", "dim"),
    "later": ("◌", "dim italic"),
}


class Stepper(OptionList):
    """Sidebar listing the wizard's screens: done, current, to do, blocked."""

    @dataclass(eq=False)
    class Chosen(Message):
        """The user picked an open screen."""

        name: str

    def __init__(self, state: WizardState, current: str, *, id: str | None = None) -> None:
        self._wizard_state = state
        self._screen_name = current
        self._shown: tuple[Status, ...] = ()
        super().__init__(*self._build_options(), id=id)

    def _statuses(self) -> tuple[Status, ...]:
        return tuple(status(self._wizard_state, e.name, self._screen_name) for e in FLOW)

    def _build_options(self) -> list[Option]:
        options: list[Option] = []
        self._shown = self._statuses()
        for entry, kind in zip(FLOW, self._shown, strict=True):
            glyph, style = _GLYPH[kind]
            label = Text(f"{glyph} {entry.title}", style=style)
            options.append(Option(label, id=entry.name, disabled=kind in ("blocked", "later")))
        return options

    def on_mount(self) -> None:
        self.refresh_status(force=True)

    def refresh_status(self, *, force: bool = False) -> None:
        """Re-read every screen's status from the state (redrawn only when one changed)."""
        if not force and self._statuses() == self._shown:
            return
        highlighted = self._screen_name
        self.clear_options()
        self.add_options(self._build_options())
        index = next(i for i, e in enumerate(FLOW) if e.name == highlighted)
        self.highlighted = index
        blocked = [
            f"{e.title}: needs {', '.join(missing(self._wizard_state, e.name))}"
            for e in FLOW
            if status(self._wizard_state, e.name, self._screen_name) == "blocked"
        ]
        self.tooltip = "\n".join(blocked) or None

    @on(OptionList.OptionSelected)
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        name = event.option.id
        if name is not None and name != self._screen_name:
            self.post_message(self.Chosen(name))
