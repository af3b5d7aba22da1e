"""At 80×24 every screen's result is on screen or one scroll away, and nothing is cut.

"Visible" is checked on the laid-out widgets: a verdict's region lies inside the screen without
scrolling; a long list lies inside a scrollable container that can bring its last line into view.
"""

from __future__ import annotations

from typing import Any

from textual.containers import ScrollableContainer
from textual.widget import Widget
from textual.widgets import Static

from steps.answers import Answers
from steps.errors import CommandError
from steps.events import Result
from tests.conftest import FakeStep
from tests.wizard.conftest import current, wait_for
from tests.wizard.fakes import STAGES_OK, FakeServices
from tests.wizard.steps_fake import FakeRemaster
from wizard.app import make_app

SIZE = (80, 24)


def on_screen(app: Any, widget: Widget) -> bool:
    """The widget is laid out and wholly inside the terminal (nothing hidden or clipped)."""
    region = widget.region
    return region.area > 0 and app.screen.region.contains_region(region)


def _text(app: Any, selector: str) -> str:
    return str(current(app).query_one(selector, Static).render())


def many_stages(failed_at: int) -> list[dict[str, Any]]:
    """A self-test with more stages than fit at 80×24; one fails near the end."""
    stages = [dict(s, ok=True, code=None) for s in STAGES_OK[:5]]
    stages += [
        {"stage": f"file-{i}", "ok": True, "message": f"kernel{i}.img 6 MB, sha256 matches"}
        for i in range(10)
    ]
    stages.insert(failed_at, dict(STAGES_OK[5]))
    return stages


async def test_the_selftest_verdict_is_visible_at_80x24(wiz_answers: Answers) -> None:
    stages = many_stages(failed_at=14)
    selftest = FakeStep("selftest", "Self-test", [Result("selftest", "failed", {"stages": stages})])
    app = make_app(wiz_answers, services=FakeServices(), steps=[selftest], start="deploy")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: current(app).query("#selftest"))
        await pilot.press("f7")
        verdict = current(app).query_one("#verdict", Static)
        await wait_for(pilot, lambda: "FAIL" in _text(app, "#verdict"))
        await wait_for(pilot, lambda: on_screen(app, verdict))
        assert _text(app, "#verdict").startswith("FAIL at overlay.gz [tftp-file-not-found]")
        # every stage can be scrolled to
        box = current(app).query_one("#stages-box", ScrollableContainer)
        assert on_screen(app, box)
        box.scroll_end(animate=False, immediate=True)
        await pilot.pause()
        assert box.scroll_y == box.max_scroll_y
        assert len(_text(app, "#stages").splitlines()) == len(stages)


async def test_a_passed_selftest_says_pass_first(wiz_answers: Answers) -> None:
    stages = [dict(s, ok=True, code=None) for s in many_stages(failed_at=3)]
    selftest = FakeStep("selftest", "Self-test", [Result("selftest", "ok", {"stages": stages})])
    app = make_app(wiz_answers, services=FakeServices(), steps=[selftest], start="deploy")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: current(app).query("#selftest"))
        await pilot.press("f7")
        await wait_for(pilot, lambda: "PASS" in _text(app, "#verdict"))
        await wait_for(pilot, lambda: on_screen(app, current(app).query_one("#verdict")))
        assert _text(app, "#verdict") == f"PASS: the virtual Pi booted ({len(stages)} stages)"


async def test_a_build_failure_and_its_fix_are_visible_at_80x24(wiz_answers: Answers) -> None:
    error = CommandError(
        "mcopy",
        ["-i", "piCore.img@@4194304", "::/"],
        1,
        "init: sector size mismatch",
        fix="the image's FAT partition is damaged: download the release again",
    )
    steps = [FakeStep("release"), FakeStep("extensions"), FakeStep("app")]
    app = make_app(
        wiz_answers,
        services=FakeServices(),
        steps=[*steps, FakeRemaster(error=error)],
        start="build",
    )
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: current(app).query("#start"))
        await pilot.press("f5")
        await wait_for(pilot, lambda: current(app).query(".error-fix"))
        fix = current(app).query_one(".error-fix")
        await wait_for(pilot, lambda: on_screen(app, fix))
        assert on_screen(app, current(app).query_one("#build-state"))


async def test_the_next_reason_is_shown_whole_at_80x24(wiz_answers: Answers) -> None:
    app = make_app(wiz_answers, services=FakeServices(), start="build")
    async with app.run_test(size=SIZE) as pilot:
        reason = current(app).query_one("#reason", Static)
        await wait_for(pilot, lambda: "build the boot tree first" in _text(app, "#reason"))
        await wait_for(pilot, lambda: on_screen(app, reason))
        assert reason.size.height >= 1
        # the whole text fits in the label (wrapped, not cut with an ellipsis)
        assert "…" not in "".join(s.text for s in reason.render_lines(reason.region.reset_offset))


async def test_welcome_host_check_fixes_are_not_cut(wiz_answers: Answers) -> None:
    app = make_app(wiz_answers, services=FakeServices())
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: "apt-get install dnsmasq-base" in _text(app, "#host"))
        host = current(app).query_one("#host", Static)
        host.scroll_visible(animate=False, immediate=True)  # below the intro: one scroll away
        await wait_for(pilot, lambda: on_screen(app, host))

        def lines() -> list[str]:
            return [s.text.rstrip() for s in host.render_lines(host.region.reset_offset)]

        # the fix has a line of its own, whole (not cut at the right edge)
        await wait_for(pilot, lambda: "  fix: apt-get install dnsmasq-base" in lines())
