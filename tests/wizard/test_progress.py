"""Progress during a run: the log follows new lines, the Overall bar never moves back, and the
phase rows go away when the run ends (success or cancel)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from textual.widgets import ProgressBar

from steps.answers import Answers
from steps.base import StepContext
from steps.errors import Cancelled
from steps.events import Event, LogLine, Progress
from tests.conftest import FakeStep
from tests.wizard.conftest import current, wait_for
from tests.wizard.fakes import FakeServices
from tests.wizard.steps_fake import BlockingStep
from wizard.app import make_app
from wizard.messages import StepEvent, StepFinished, StepStarted
from wizard.widgets.log_view import LogView
from wizard.widgets.progress_panel import PhaseRow
from wizard.widgets.step_runner import StepRunner


def _first_three() -> list[FakeStep]:
    return [FakeStep("release", "Release"), FakeStep("extensions"), FakeStep("app")]


@dataclass
class TrickleStep:
    """Log lines a few at a time while phase rows come and go (so the log is resized), then
    waits for Cancel: the log is checked while the build is still running."""

    name: str = "remaster"
    title: str = "Remaster"
    wrote_all: threading.Event = field(default_factory=threading.Event)

    def run(self, ctx: StepContext) -> Iterator[Event]:
        for i in range(120):
            if i % 30 == 0:
                yield Progress(self.name, f"phase{i}", 1, 4)  # a row appears: the log shrinks
            if i % 30 == 15:
                yield Progress(self.name, f"phase{i - 15}", 4, 4)  # it goes: the log grows
            yield LogLine(self.name, f"line {i}", "stdout")
            ctx.cancel.wait(0.005)  # pacing, so the lines arrive over many frames
        self.wrote_all.set()
        ctx.cancel.wait(120)
        raise Cancelled()


async def test_the_log_follows_new_lines_during_a_build(wiz_answers: Answers) -> None:
    trickle = TrickleStep()
    app = make_app(
        wiz_answers, services=FakeServices(), steps=[*_first_three(), trickle], start="build"
    )
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: current(app).query("#start"))
        await pilot.press("f5")
        await wait_for(pilot, trickle.wrote_all.is_set, limit=120)
        log = current(app).query_one(LogView)
        await wait_for(pilot, lambda: log.lines and log.lines[-1] == "< line 119")
        await pilot.pause()
        # still running, and the newest line is in view
        assert current(app).query_one(StepRunner).running
        assert log.scroll_y >= log.max_scroll_y > 0
        # the user scrolls up to read: new lines no longer pull the view down …
        log.scroll_to(y=0, animate=False, immediate=True)
        log.add(["one more"])
        await pilot.pause()
        assert log.scroll_y == 0
        # … until they scroll back to the end
        log.scroll_end(animate=False, immediate=True)
        await pilot.pause()
        log.add(["and another"])
        await wait_for(pilot, lambda: log.scroll_y >= log.max_scroll_y)
        await pilot.press("escape")


async def test_the_overall_bar_never_moves_back(wiz_answers: Answers) -> None:
    # a step whose phases are not known in advance: each new phase lowers its share so far
    events: list[Any] = []
    for phase in ["download", "verify", "extract", "index", "deps"]:
        events += [Progress("release", phase, 0, 10), Progress("release", phase, 10, 10)]
    app = make_app(wiz_answers, services=FakeServices(), start="build")
    seen: list[float] = []
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: current(app).query("#start"))
        runner = current(app).query_one(StepRunner)
        bar = current(app).query_one("#overall", ProgressBar)
        runner.post_message(StepStarted("release", "Release", 0, 4))
        for event in events:  # one event per frame, as a slow trickle draws them
            runner.post_message(StepEvent(event))
            await pilot.pause()
            seen.append(bar.progress)
        runner.post_message(StepFinished("release"))
        await wait_for(pilot, lambda: bar.progress == 25)
    assert seen == sorted(seen), seen


async def test_phase_rows_go_when_the_run_is_cancelled_or_done(wiz_answers: Answers) -> None:
    events = [Progress("remaster", "pack", 3, 10), Progress("remaster", "write", 1, 10)]
    blocking = BlockingStep("remaster", "Remaster", list(events))
    app = make_app(
        wiz_answers, services=FakeServices(), steps=[*_first_three(), blocking], start="build"
    )
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: current(app).query("#start"))
        await pilot.press("f5")
        await wait_for(pilot, lambda: len(current(app).query(PhaseRow)) == 2)
        await pilot.press("escape")
        await wait_for(pilot, lambda: not current(app).query_one("#runner").running)  # type: ignore[attr-defined]
        await wait_for(pilot, lambda: not current(app).query(PhaseRow))
        info = str(current(app).query_one("#overall-info").render())
        assert info == "cancelled — the previous output is unchanged"
