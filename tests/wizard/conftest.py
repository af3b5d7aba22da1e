"""Fixtures for the wizard's Pilot and snapshot tests.

Cursors never blink (snapshots are deterministic), lookups come from ``FakeServices`` (fixed
data, still delivered through the app's thread workers), and steps are ``FakeStep``s unless a
test runs the real ones. ``wait_for`` polls a condition between short pauses: no test sleeps a
fixed time to synchronise.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Input, TextArea

from steps.answers import Answers
from tests.wizard.fakes import FakeServices
from wizard.screens.base import WizardScreen


@pytest.fixture(autouse=True)
def _frozen_cursors(monkeypatch: pytest.MonkeyPatch) -> None:
    """No blinking cursors: a snapshot must not depend on when it was taken."""
    monkeypatch.setattr(Input, "_toggle_cursor", lambda self: None)
    monkeypatch.setattr(TextArea, "_toggle_cursor_blink_visible", lambda self: None)


@pytest.fixture
def services() -> FakeServices:
    """Fixed lookups (releases, index, interfaces …)."""
    return FakeServices()


@pytest.fixture
def wiz_answers(answers: Answers, tmp_path: Path) -> Answers:
    """Default answers with every path the wizard may write under tmp_path."""
    answers.network.tftp_root = str(tmp_path / "tftp")
    answers.network.dnsmasq_conf = str(tmp_path / "dnsmasq.d" / "firecore.conf")
    answers.network.state_dir = str(tmp_path / "state")
    return answers


@dataclass
class ManualClock:
    """A clock the test moves by hand (ETAs in snapshots)."""

    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


def current(app: Any) -> WizardScreen:
    """The app's current wizard screen (typed)."""
    screen = app.screen
    assert isinstance(screen, WizardScreen), screen
    return screen


async def wait_for(pilot: Pilot[Any], condition: Callable[[], object], limit: float = 10.0) -> None:
    """Let the app run until ``condition()`` is true (fails the test after ``limit`` seconds)."""
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {condition}")
        await pilot.pause(0.02)
