"""Fixtures for the wizard's Pilot and snapshot tests.

Cursors never blink (snapshots are deterministic), lookups come from ``FakeServices`` (fixed
data, still delivered through the app's thread workers), and steps are ``FakeStep``s unless a
test runs the real ones. ``wait_for`` polls a condition between short pauses: no test sleeps a
fixed time to synchronise, and its bound only stops a hung test (minutes: a loaded 2-core machine
may take seconds for what takes milliseconds on an idle one).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from textual.app import App
from textual.errors import NoWidget
from textual.pilot import Pilot
from textual.widget import Widget
from textual.widgets import Input, TextArea

from steps.answers import Answers
from tests.wizard.fakes import FakeServices
from wizard.screens.base import WizardScreen


@pytest.fixture(autouse=True)
def _frozen_cursors(monkeypatch: pytest.MonkeyPatch) -> None:
    """No blinking cursors: a snapshot must not depend on when it was taken."""
    monkeypatch.setattr(Input, "_toggle_cursor", lambda self: None)
    monkeypatch.setattr(TextArea, "_toggle_cursor_blink_visible", lambda self: None)


@pytest.fixture(autouse=True)
def _settled_before_shutdown(monkeypatch: pytest.MonkeyPatch) -> None:
    """A test that ends right after a screen switch lets the new screen settle first.

    Leaving ``run_test`` shuts the app down at once; a screen still running its widgets' mount
    callbacks then fails inside Textual (``NoMatches`` from Header's title watcher or Select's
    option setup, whose children the shutdown already removed) — seen on a loaded machine in
    tests that end on ``wait_for(… app.current == …)``. The pause lets every message already
    queued be handled, as a user's next key press would.
    """
    run_test = App.run_test

    @asynccontextmanager
    async def settled(self: App[Any], *args: Any, **kwargs: Any) -> AsyncIterator[Pilot[Any]]:
        async with run_test(self, *args, **kwargs) as pilot:
            yield pilot
            await pilot.pause()

    monkeypatch.setattr(App, "run_test", settled)


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


#: How long ``wait_for`` lets a condition stay false before it calls the test hung.
HUNG_AFTER = 240.0


async def wait_for(
    pilot: Pilot[Any], condition: Callable[[], object], limit: float = HUNG_AFTER
) -> None:
    """Let the app run until ``condition()`` is true (fails the test after ``limit`` seconds)."""
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {condition}")
        await pilot.pause(0.02)


def _under_the_mouse(app: Any, selector: str) -> bool:
    """``selector`` is laid out and is what a click at its top-left corner would hit."""
    found = app.screen.query(selector)
    if not found:
        return False
    widget = found.first()
    region = widget.region
    if not region or region.offset not in app.screen.size.region:
        return False
    try:
        hit, _ = app.get_widget_at(*region.offset)
    except NoWidget:  # not in the compositor's map yet
        return False
    return bool(hit is widget)


async def click(pilot: Pilot[Any], selector: str) -> None:
    """Click ``selector`` once it is laid out where the click lands (a busy machine may still be
    laying out a panel that was just mounted; a click computed from a stale region misses)."""
    await wait_for(pilot, lambda: _under_the_mouse(pilot.app, selector))
    assert await pilot.click(selector), f"the click missed {selector}"


async def focus(pilot: Pilot[Any], widget: Widget) -> None:
    """Focus ``widget`` and wait until it has focus, so the next key press goes to it."""
    widget.focus()
    await wait_for(pilot, lambda: widget.has_focus)
