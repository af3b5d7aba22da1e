"""Build screen: worker events rendered, failure panel + Retry, Cancel, leaving cancels, ETA."""

from __future__ import annotations

from functools import partial

from textual.widgets import Button, Collapsible, Label, ProgressBar, Static

from steps.answers import Answers
from steps.errors import CommandError
from steps.events import LogLine, Progress
from tests.conftest import FakeStep
from tests.wizard.conftest import ManualClock, click, wait_for
from tests.wizard.fakes import FakeServices
from tests.wizard.steps_fake import BlockingStep, BusyStep, FakeRemaster
from wizard.app import make_app
from wizard.messages import StepEvent, StepStarted
from wizard.screens.error import ErrorPanel
from wizard.widgets.log_view import LogView
from wizard.widgets.progress_panel import PhaseRow, ProgressPanel, eta_text
from wizard.widgets.step_runner import StepRunner


def _reached(handled: list[int], count: int) -> bool:
    return len(handled) >= count


def _more_events(busy: BusyStep, count: int) -> bool:
    return busy.events_sent > count


def _first_three() -> list[FakeStep]:
    return [
        FakeStep("release", "Release"),
        FakeStep("extensions", "Extensions"),
        FakeStep("app", "App"),
    ]


def _log(app: object) -> str:
    log = app.screen.query_one(LogView)  # type: ignore[attr-defined]
    return "\n".join(log.lines)


async def test_build_runs_the_four_steps_and_renders_their_events(
    wiz_answers: Answers, services: FakeServices
) -> None:
    remaster = FakeRemaster()
    app = make_app(wiz_answers, services=services, steps=[*_first_three(), remaster], start="build")
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.screen.query("#start"))
        await wait_for(pilot, lambda: app.screen.query_one("#next", Button).disabled)
        assert "build the boot tree first" in str(app.screen.query_one("#reason", Label).render())
        await pilot.press("f5")
        await wait_for(pilot, lambda: not app.screen.query_one(StepRunner).running)
        log = _log(app)
        for line in (
            "* Release",
            "* Extensions",
            "* App",
            "* Remaster",
            "> mcopy -s -n -i piCore.img@@4194304 ::/ boot",
            "✓ boot tree",
            "✓ build done",
        ):
            assert line in log
        assert "✓ pack" in str(app.screen.query_one("#phases-done", Static).render())
        assert app.screen.query_one("#overall", ProgressBar).progress == 100
        state = app.screen.query_one("#build-state", Static)
        await wait_for(pilot, lambda: str(state.render()) != "building…")  # the screen's turn
        assert "✓ 2 files" in str(state.render()) and "build 3f2a9c1d" in str(state.render())
        await wait_for(pilot, lambda: not app.screen.query_one("#next", Button).disabled)
        await pilot.press("ctrl+n")
        await wait_for(pilot, lambda: app.current == "network")
    assert remaster.runs == 1


async def test_a_failure_shows_step_cause_fix_and_details_and_retry_runs_again(
    wiz_answers: Answers, services: FakeServices
) -> None:
    error = CommandError(
        "mcopy",
        ["-i", "piCore.img@@4194304", "::/"],
        1,
        "init: sector size mismatch\nCannot initialize '::'",
        fix="the image's FAT partition is damaged: download the release again",
    )
    remaster = FakeRemaster(error=error)
    app = make_app(wiz_answers, services=services, steps=[*_first_three(), remaster], start="build")
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.screen.query("#start"))
        await click(pilot, "#start")
        await wait_for(pilot, lambda: app.screen.query(ErrorPanel))
        panel = app.screen.query_one(ErrorPanel)

        def texts_now() -> list[str]:
            return [str(w.render()) for w in panel.query("Label, Static")]

        # the panel is mounted before its children are: wait for what it composes
        await wait_for(pilot, lambda: "✕ Command failed in step remaster" in texts_now())
        texts = texts_now()
        assert any("`mcopy -i piCore.img@@4194304 ::/` exited with 1" in t for t in texts)
        assert "Fix: the image's FAT partition is damaged: download the release again" in texts
        details = panel.query_one(Collapsible)
        assert details.collapsed
        await wait_for(pilot, lambda: details.query(".details-text"))
        assert "sector size mismatch" in str(details.query_one(".details-text", Static).render())
        await click(pilot, "ErrorPanel CollapsibleTitle")
        await wait_for(pilot, lambda: not details.collapsed)
        assert str(app.screen.query_one("#start", Button).label) == "Retry"
        assert "the build failed" in str(app.screen.query_one("#reason", Label).render())
        remaster.error = None
        await pilot.press("f5")
        await wait_for(pilot, lambda: remaster.runs == 2 and not app.screen.query(ErrorPanel))
        await wait_for(pilot, lambda: not app.screen.query_one("#next", Button).disabled)


async def test_cancel_sets_the_steps_cancel_flag_and_says_the_output_is_unchanged(
    wiz_answers: Answers, services: FakeServices
) -> None:
    blocking = BlockingStep("remaster", "Remaster", [LogLine("remaster", "extracting")])
    app = make_app(wiz_answers, services=services, steps=[*_first_three(), blocking], start="build")
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.screen.query("#start"))
        await pilot.press("f5")
        await wait_for(pilot, blocking.started.is_set)
        assert "a build is running" in str(app.screen.query_one("#reason", Label).render())
        assert not app.screen.query_one("#cancel", Button).disabled
        await pilot.press("escape")
        await wait_for(pilot, lambda: not app.screen.query_one(StepRunner).running)
        assert blocking.saw_cancel.is_set()
        # the runner stops first; the screen says so when it has handled the runner's message
        state = app.screen.query_one("#build-state", Static)
        await wait_for(pilot, lambda: str(state.render()) != "building…")
        assert str(state.render()) == "Cancelled — the previous output is unchanged."
        assert "✕ build cancelled — the previous output is unchanged" in _log(app)
        assert app.screen.query_one("#next", Button).disabled


async def test_leaving_the_screen_cancels_its_work(
    wiz_answers: Answers, services: FakeServices
) -> None:
    blocking = BlockingStep("remaster", "Remaster")
    app = make_app(wiz_answers, services=services, steps=[*_first_three(), blocking], start="build")
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.screen.query("#start"))
        await pilot.press("f5")
        await wait_for(pilot, blocking.started.is_set)
        await pilot.press("ctrl+b")
        await wait_for(pilot, lambda: app.current == "app")
        await wait_for(pilot, blocking.saw_cancel.is_set)


async def test_progress_panel_shows_bars_bytes_and_eta(
    wiz_answers: Answers, services: FakeServices
) -> None:
    clock = ManualClock()
    app = make_app(wiz_answers, services=services, clock=clock, start="build")
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.screen.query(StepRunner))
        runner = app.screen.query_one(StepRunner)
        runner.post_message(StepStarted("remaster", "Remaster", 3, 4))
        runner.post_message(StepEvent(Progress("remaster", "download", 10, 10, "files")))
        runner.post_message(StepEvent(Progress("remaster", "extract", 10e6, 60e6)))
        await pilot.pause()
        clock.now += 10
        runner.post_message(StepEvent(Progress("remaster", "extract", 30e6, 60e6)))
        await pilot.pause()
        row = app.screen.query_one(PhaseRow)
        assert str(row.query_one(".phase-name", Label).render()) == "remaster · extract"
        info = str(row.query_one(".phase-info", Label).render())
        assert info == "30.0 MB/60.0 MB ETA 0:15"  # 2 MB/s, 30 MB to go
        assert row.query_one(ProgressBar).percentage == 0.5
        assert "✓ download" in str(app.screen.query_one("#phases-done", Static).render())
        # 3 of 4 steps done + remaster's download and half of extract out of its 8 phases
        overall = app.screen.query_one(ProgressPanel).query_one("#overall", ProgressBar)
        assert overall.progress == round((3 + 1.5 / 8) / 4 * 100)
    assert eta_text(3725) == "ETA 1:02:05"
    assert eta_text(None) == ""


async def test_key_presses_are_handled_while_a_remaster_keeps_its_thread_busy(
    wiz_answers: Answers, services: FakeServices
) -> None:
    """Key presses reach their handler while a step holds the GIL and floods the UI with events.

    How fast they are handled is a benchmark figure (``bench/keys.py``, against a bare Textual app
    in the same run), not an assertion here: on a loaded machine any bound would be flaky.
    """
    busy = BusyStep()
    app = make_app(wiz_answers, services=services, steps=[*_first_three(), busy], start="build")
    handled: list[int] = []
    toggle = app.action_toggle_theme

    def counted_toggle() -> None:
        handled.append(busy.events_sent)
        toggle()

    app.action_toggle_theme = counted_toggle  # type: ignore[method-assign]
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.screen.query("#start"))
        await pilot.press("f5")
        await wait_for(pilot, busy.started.is_set)
        await wait_for(pilot, lambda: busy.events_sent > 200)
        for press in range(1, 4):
            sent_before = busy.events_sent
            app.simulate_key("ctrl+t")  # the same Key event the terminal driver posts
            await wait_for(pilot, partial(_reached, handled, press))
            assert app.screen.query_one(StepRunner).running  # handled while the step was busy
            await wait_for(pilot, partial(_more_events, busy, sent_before + 200))
        await pilot.press("escape")
        await wait_for(pilot, lambda: not app.screen.query_one(StepRunner).running)
    assert len(handled) == 3
    assert handled == sorted(handled) and handled[0] > 200  # each press landed mid-flood
