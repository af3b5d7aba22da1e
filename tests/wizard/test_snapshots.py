"""SVG snapshots of every screen in its meaningful states, at 80×24 and 120×40.

Deterministic by construction: fixed answers (no tmp paths on screen), fake lookups, events
posted from the test with a hand-moved clock (so bars and ETAs are exact), no blinking cursor.
Update after reviewing a change: ``pytest tests/wizard/test_snapshots.py --snapshot-update``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, Select, Static, TabbedContent

from steps.answers import Answers, default_answers
from steps.errors import CommandError
from steps.events import LogLine, Progress, Result
from tests.conftest import FakeStep
from tests.wizard.conftest import ManualClock, wait_for
from tests.wizard.fakes import PI4_CARD, PIS_DATA, STAGES_OK, FakeServices
from wizard.app import LIGHT, FirecoreWizard, make_app
from wizard.messages import RunFinished, StepEvent, StepStarted
from wizard.views import Finding
from wizard.widgets.answer_field import AnswerField
from wizard.widgets.log_view import LogView
from wizard.widgets.step_runner import StepRunner

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((120, 40), id="120x40")]
SAVED = Path("/home/pi/firecore-answers.toml")


def fixed_answers() -> Answers:
    """Answers whose every path is fixed (snapshots must not show tmp directories)."""
    a = default_answers()
    a.build.output = "/nonexistent/firecore/build/boot"
    a.build.cache = "/nonexistent/firecore/cache"
    return a


def app_for(start: str, services: FakeServices | None = None, **kw: Any) -> FirecoreWizard:
    return make_app(
        fixed_answers(),
        answers_path=SAVED,
        services=services or FakeServices(),
        clock=ManualClock(),
        start=start,
        **kw,
    )


async def shown(pilot: Pilot[Any]) -> None:
    """Wait until the navigation loop has put up the first screen and it is composed."""
    await wait_for(pilot, lambda: pilot.app.screen.query("#nav"))


async def settled(pilot: Pilot[Any], *, runners: bool = True) -> None:
    """Let every worker finish and every batched event and refresh land (a loaded CI machine
    otherwise catches the screen between a table fill and the footer/nav update)."""
    if runners:  # a mid-build snapshot keeps its runner running on purpose
        await wait_for(
            pilot, lambda: not any(r.running for r in pilot.app.screen.query(StepRunner))
        )
    # DataTable measures new rows on its next Idle; until then its header keeps the old column
    # widths, and a busy CI machine can take the screenshot in between
    await wait_for(
        pilot,
        lambda: not any(t._require_update_dimensions for t in pilot.app.screen.query(DataTable)),
    )
    # Textual 8.2.8's DataTable keys its cell cache without the column width and does not bump
    # it when the widths change on Idle: a frame drawn between add_row and that Idle (a loaded
    # machine draws one) keeps the old widths in the header. Draw the settled table afresh.
    for table in pilot.app.screen.query(DataTable):
        table._clear_caches()
        table.refresh()
    await pilot.pause(0.1)
    await pilot.pause()

    # a following log on screen scrolls to its newest line after a resize (an error panel
    # opening above it)
    def at_end(log: LogView) -> bool:
        return not log.following or not log.region.height or log.scroll_y == log.max_scroll_y

    await wait_for(pilot, lambda: all(at_end(log) for log in pilot.app.screen.query(LogView)))
    await pilot.pause()


def loaded(selector: str, count: int = 1) -> Callable[[Pilot[Any]], Any]:
    """run_before: wait until a table has its rows (the lookups ran in their workers)."""

    async def run(pilot: Pilot[Any]) -> None:
        await shown(pilot)
        table = pilot.app.screen.query_one(selector, DataTable)
        await wait_for(pilot, lambda: table.row_count >= count)
        await settled(pilot)

    return run


@pytest.mark.parametrize("size", SIZES)
def test_welcome(snap_compare: Any, size: tuple[int, int]) -> None:
    async def run(pilot: Pilot[Any]) -> None:
        await shown(pilot)
        host = pilot.app.screen.query_one("#host", Static)
        await wait_for(pilot, lambda: "✓ mcopy" in str(host.render()))
        await settled(pilot)

    assert snap_compare(app_for("welcome"), terminal_size=size, run_before=run)


@pytest.mark.parametrize("size", SIZES)
def test_release_filled(snap_compare: Any, size: tuple[int, int]) -> None:
    assert snap_compare(app_for("release"), terminal_size=size, run_before=loaded("#releases", 4))


@pytest.mark.parametrize("size", SIZES)
def test_release_invalid_version_blocks_next(snap_compare: Any, size: tuple[int, int]) -> None:
    async def run(pilot: Pilot[Any]) -> None:
        await loaded("#releases", 4)(pilot)
        pilot.app.screen.query_one("#field-release-version", AnswerField).set_text("15.x")
        pilot.app.screen.query_one("#field-release-version #editor", Input).focus()
        await settled(pilot)

    assert snap_compare(app_for("release"), terminal_size=size, run_before=run)


@pytest.mark.parametrize("size", SIZES)
def test_extensions_with_closure(snap_compare: Any, size: tuple[int, int]) -> None:
    async def run(pilot: Pilot[Any]) -> None:
        await loaded("#index", 7)(pilot)
        closure = pilot.app.screen.query_one("#closure", DataTable)
        await wait_for(pilot, lambda: closure.border_subtitle == "4 packages")
        await settled(pilot)

    assert snap_compare(app_for("extensions"), terminal_size=size, run_before=run)


@pytest.mark.parametrize("size", SIZES)
def test_app_checked(snap_compare: Any, size: tuple[int, int]) -> None:
    async def run(pilot: Pilot[Any]) -> None:
        await shown(pilot)
        checks = pilot.app.screen.query_one("#checks", Static)
        await wait_for(pilot, lambda: "wheels" in str(checks.render()))
        await settled(pilot)

    assert snap_compare(app_for("app"), terminal_size=size, run_before=run)


@pytest.mark.parametrize("size", SIZES)
def test_build_empty(snap_compare: Any, size: tuple[int, int]) -> None:
    assert snap_compare(app_for("build"), terminal_size=size, run_before=shown)


async def _mid_build(pilot: Pilot[Any]) -> None:
    """Release, extensions and app done; remaster half-way through extract, with an ETA."""
    await shown(pilot)
    app = pilot.app
    assert isinstance(app, FirecoreWizard)
    clock = app.clock
    assert isinstance(clock, ManualClock)
    runner = app.screen.query_one(StepRunner)
    runner.running = True
    app.screen._set_running(True)  # type: ignore[attr-defined]
    post = runner.post_message
    for index, (name, title) in enumerate(
        [("release", "Release"), ("extensions", "Extensions"), ("app", "App")]
    ):
        post(StepStarted(name, title, index, 4))
        post(StepEvent(Result(name, f"{name} ok")))
    post(StepStarted("remaster", "Remaster", 3, 4))
    post(
        StepEvent(LogLine("remaster", "mcopy -s -n -i piCore-15.0.0.img@@4194304 ::/ boot", "cmd"))
    )
    post(StepEvent(Progress("remaster", "download", 96e6, 96e6)))
    post(StepEvent(Progress("remaster", "verify", 96e6, 96e6)))
    post(StepEvent(Progress("remaster", "extract", 10e6, 60e6)))
    await settled(pilot, runners=False)
    clock.now += 10
    post(StepEvent(LogLine("remaster", "rootfs-piCore-15.0.gz 3.1 MB", "stdout")))
    post(StepEvent(Progress("remaster", "extract", 30e6, 60e6)))
    await settled(pilot, runners=False)
    app.screen._set_running(True)  # type: ignore[attr-defined]
    await settled(pilot, runners=False)


@pytest.mark.parametrize("size", SIZES)
def test_build_mid_progress(snap_compare: Any, size: tuple[int, int]) -> None:
    assert snap_compare(app_for("build"), terminal_size=size, run_before=_mid_build)


def test_build_mid_progress_light_theme(snap_compare: Any) -> None:
    app = app_for("build", theme=LIGHT)
    assert snap_compare(app, terminal_size=(120, 40), run_before=_mid_build)


@pytest.mark.parametrize("size", SIZES)
def test_build_failed(snap_compare: Any, size: tuple[int, int]) -> None:
    error = CommandError(
        "mcopy",
        ["-i", "piCore-15.0.0.img@@4194304", "::/"],
        1,
        "init: sector size mismatch\nCannot initialize '::'",
        fix="the image's FAT partition is damaged: download the release again",
    )

    async def run(pilot: Pilot[Any]) -> None:
        await shown(pilot)
        runner = pilot.app.screen.query_one(StepRunner)
        runner.running = True
        runner.post_message(StepStarted("remaster", "Remaster", 3, 4))
        runner.post_message(
            StepEvent(LogLine("remaster", "mcopy -i piCore-15.0.0.img@@4194304 ::/", "cmd"))
        )
        runner.post_message(RunFinished("build", ok=False, step="remaster", error=error))
        # the panel is in the DOM before what it composes: wait for its details too
        await wait_for(pilot, lambda: pilot.app.screen.query("ErrorPanel .details-text"))
        await settled(pilot)

    assert snap_compare(app_for("build"), terminal_size=size, run_before=run)


def _conflicts() -> FakeServices:
    return FakeServices(
        findings=[
            Finding(
                "error",
                "udp/67 is held by dhcpd (pid 812)",
                "stop it: systemctl stop isc-dhcp-server",
            ),
            Finding(
                "warning",
                "a second proxy DHCP server answers from 192.168.1.7",
                "switch it off or keep one",
            ),
            Finding("info", "/srv/firecore/tftp/current does not exist yet", "deploy creates it"),
        ],
        installed_conf="# generated by firecore-wizard\nport=0\ninterface=eth1\nbind-dynamic\n",
    )


@pytest.mark.parametrize("size", SIZES)
def test_network_interfaces(snap_compare: Any, size: tuple[int, int]) -> None:
    app = app_for("network", _conflicts())
    assert snap_compare(app, terminal_size=size, run_before=loaded("#interfaces", 3))


@pytest.mark.parametrize("size", SIZES)
def test_network_with_conflicts(snap_compare: Any, size: tuple[int, int]) -> None:
    async def run(pilot: Pilot[Any]) -> None:
        await shown(pilot)
        findings = pilot.app.screen.query_one("#findings", Static)
        await pilot.press("f6")  # the checks run when asked, never on opening the screen
        await wait_for(pilot, lambda: "held by" in str(findings.render()))
        pilot.app.screen.query_one(TabbedContent).active = "tab-checks"
        await settled(pilot)

    assert snap_compare(app_for("network", _conflicts()), terminal_size=size, run_before=run)


@pytest.mark.parametrize("size", SIZES)
def test_network_config_diff(snap_compare: Any, size: tuple[int, int]) -> None:
    async def run(pilot: Pilot[Any]) -> None:
        await shown(pilot)
        preview = pilot.app.screen.query_one("#preview", Static)
        await wait_for(pilot, lambda: "@@" in str(preview.render()))
        pilot.app.screen.query_one(TabbedContent).active = "tab-config"
        await settled(pilot)

    assert snap_compare(app_for("network", _conflicts()), terminal_size=size, run_before=run)


@pytest.mark.parametrize("size", SIZES)
def test_deploy_with_selftest_result(snap_compare: Any, size: tuple[int, int]) -> None:
    selftest = FakeStep(
        "selftest", "Self-test", [Result("selftest", "5 of 6 stages passed", {"stages": STAGES_OK})]
    )

    async def run(pilot: Pilot[Any]) -> None:
        await loaded("#releases", 2)(pilot)
        await pilot.press("f7")
        verdict = pilot.app.screen.query_one("#verdict", Static)
        await wait_for(pilot, lambda: "FAIL" in str(verdict.render()))
        await wait_for(
            pilot, lambda: not pilot.app.screen.query_one("#selftest-runner", StepRunner).running
        )
        await settled(pilot)

    app = app_for("deploy", steps=[selftest])
    assert snap_compare(app, terminal_size=size, run_before=run)


@pytest.mark.parametrize("size", SIZES)
def test_status_with_pis_found(snap_compare: Any, size: tuple[int, int]) -> None:
    scan = FakeStep(
        "status", "Status", [Result("status", "3 Pis found, 2 healthy", {"pis": PIS_DATA})]
    )

    async def run(pilot: Pilot[Any]) -> None:
        await shown(pilot)
        await pilot.press("f5")
        await wait_for(pilot, lambda: pilot.app.screen.query_one("#pis", DataTable).row_count == 3)
        await wait_for(pilot, lambda: not pilot.app.screen.query_one(StepRunner).running)
        await settled(pilot)

    assert snap_compare(app_for("status", steps=[scan]), terminal_size=size, run_before=run)


@pytest.mark.parametrize("size", SIZES)
def test_prepare_pi4_card_made(snap_compare: Any, size: tuple[int, int]) -> None:
    card = FakeStep("prepare", "Prepare", [Result("prepare", "Pi 4: EEPROM card", PI4_CARD)])

    async def run(pilot: Pilot[Any]) -> None:
        await shown(pilot)
        pilot.app.screen.query_one("#model", Select).value = "pi4"
        await pilot.press("f5")
        await wait_for(pilot, lambda: "pi4" in pilot.app.state.prepared)  # type: ignore[attr-defined]
        await settled(pilot)

    assert snap_compare(app_for("prepare", steps=[card]), terminal_size=size, run_before=run)


@pytest.mark.parametrize("size", SIZES)
def test_summary(snap_compare: Any, size: tuple[int, int]) -> None:
    from wizard.screens.status import pi_from_data

    app = app_for("summary")
    app.state.pis = [pi_from_data(p) for p in PIS_DATA]
    app.state.network_summary = "✓ dnsmasq (process, pid 4242) serves eth0 192.168.1.10/24"
    assert snap_compare(app, terminal_size=size, run_before=shown)


def test_help_modal(snap_compare: Any) -> None:
    async def run(pilot: Pilot[Any]) -> None:
        await shown(pilot)
        await pilot.press("f1")
        await wait_for(pilot, lambda: pilot.app.screen.query("#help-text"))
        await settled(pilot)

    assert snap_compare(app_for("build"), terminal_size=(120, 40), run_before=run)
