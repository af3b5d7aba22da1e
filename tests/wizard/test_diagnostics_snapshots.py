"""SVG snapshots of the Diagnostics screen at 80×24 and 120×40, fed by the real monitor.

The capture is written by ``tests/wizard/diag_support.py`` (fixed timestamps and addresses), the
monitor reads it to the end in the view's worker, then the keys put the screen in the state shown:
the failing Pi's timeline with the diagnoses (Boot tab), and the diagnosis's evidence packet with
its fields and bytes (Packets tab). Update after reviewing a change:
``pytest tests/wizard/test_diagnostics_snapshots.py --snapshot-update``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import OptionList

from steps.monitor import MonitorStep
from tests.wizard.conftest import wait_for
from tests.wizard.diag_support import PI4, scene
from tests.wizard.test_snapshots import SIZES, app_for, settled
from wizard.monitor_app import MonitorApp
from wizard.widgets.diagnostics_view import DiagnosticsView


@pytest.fixture
def capture(tmp_path: Path) -> Path:
    return scene(tmp_path)


async def read_through(pilot: Pilot[Any]) -> DiagnosticsView:
    await wait_for(
        pilot,
        lambda: (
            pilot.app.screen.query(DiagnosticsView)
            and pilot.app.screen.query_one(DiagnosticsView).ended
        ),
        120,
    )
    return pilot.app.screen.query_one(DiagnosticsView)


async def failing_pi(pilot: Pilot[Any]) -> None:
    view = await read_through(pilot)
    await pilot.press("down")
    await wait_for(pilot, lambda: view.selected == PI4.mac)
    await settled(pilot)


async def evidence(pilot: Pilot[Any]) -> None:
    view = await read_through(pilot)
    options = pilot.app.screen.query_one("#diagnoses", OptionList)
    options.focus()
    options.highlighted = 0
    await pilot.press("enter")
    await wait_for(pilot, lambda: view.query_one("#packet-list").has_focus)
    await settled(pilot)


@pytest.mark.parametrize("size", SIZES)
def test_diagnostics_failing_pi(snap_compare: Any, capture: Path, size: tuple[int, int]) -> None:
    app = app_for("diagnostics", steps=[MonitorStep(pcap=capture)])
    assert snap_compare(app, terminal_size=size, run_before=failing_pi)


@pytest.mark.parametrize("size", SIZES)
def test_diagnostics_evidence_packet(
    snap_compare: Any, capture: Path, size: tuple[int, int]
) -> None:
    app = app_for("diagnostics", steps=[MonitorStep(pcap=capture)])
    assert snap_compare(app, terminal_size=size, run_before=evidence)


async def first_pi(pilot: Pilot[Any]) -> None:
    await read_through(pilot)
    await settled(pilot)


def test_monitor_command_screen(snap_compare: Any, capture: Path) -> None:
    app = MonitorApp(MonitorStep(pcap=capture))
    assert snap_compare(app, terminal_size=(80, 24), run_before=first_pi)
