"""The issue's smaller points: quitting, Rollback, Escape, ctrl+c, marks, demo values, focus."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from steps.answers import Answers
from steps.answers_toml import dump_answers
from steps.events import Result
from tests.conftest import FakeStep
from tests.wizard.conftest import current, wait_for
from tests.wizard.fakes import FakeServices
from tests.wizard.steps_fake import BlockingStep
from wizard.app import make_app
from wizard.render import result_mark
from wizard.screens.confirm import ConfirmModal
from wizard.state import WizardState
from wizard.widgets.step_runner import StepRunner


def test_result_marks_say_failure_and_nothing_found() -> None:
    assert result_mark(Result("selftest", "did NOT boot", {"ok": False})) == "✕"
    assert result_mark(Result("status", "no Pi announced itself", {"pis": []})) == "·"
    assert result_mark(Result("deploy", "current → x", {"release": "x"})) == "✓"


def test_a_saved_file_keeps_the_users_mirrors_not_the_demo_port(wiz_answers: Answers) -> None:
    state = WizardState(answers=wiz_answers)
    demo = wiz_answers.model_copy(deep=True)
    demo.release.mirrors = ["http://127.0.0.1:41234/"]
    demo.app.wheelhouse = "/root/.cache/firecore-wizard/demo/wheelhouse"
    state.use_demo(demo)
    saved = state.answers_for_file()
    assert saved.release.mirrors == wiz_answers.release.mirrors
    assert saved.app.wheelhouse == ""
    assert state.try_set("app.wheelhouse", "/srv/wheels") is None  # the user's own choice stays
    assert state.answers_for_file().app.wheelhouse == "/srv/wheels"


async def test_quitting_with_unsaved_answers_asks_first(wiz_answers: Answers) -> None:
    app = make_app(wiz_answers, services=FakeServices(), start="app")
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: current(app).is_mounted)
        assert app.state.try_set("app.hostname", "kiosk") is None
        await pilot.press("ctrl+q")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal))
        await pilot.press("escape")  # stay
        await wait_for(pilot, lambda: not isinstance(app.screen, ConfirmModal))
        assert app.is_running


def test_answers_are_unsaved_only_after_a_change(wiz_answers: Answers, tmp_path: Path) -> None:
    path = tmp_path / "a.toml"
    path.write_text(dump_answers(wiz_answers))
    state = WizardState(answers=wiz_answers)
    state.load(path)
    assert not state.unsaved()
    assert state.try_set("app.hostname", "kiosk") is None
    assert state.unsaved()
    state.mark_saved()
    assert not state.unsaved()


async def test_rollback_asks_before_switching(wiz_answers: Answers) -> None:
    services = FakeServices()
    app = make_app(wiz_answers, services=services, start="deploy")
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: current(app).query("#rollback"))
        await pilot.press("f6")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal))
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, ConfirmModal))
        assert services.rolled_back == []
        await pilot.press("f6")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal))
        await pilot.click("#ok")
        await wait_for(pilot, lambda: services.rolled_back == [wiz_answers.network.tftp_root])


async def test_escape_goes_back_on_a_form_screen(wiz_answers: Answers) -> None:
    app = make_app(wiz_answers, services=FakeServices(), start="app")
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: current(app).is_mounted and app.current == "app")
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.current == "extensions")


async def test_ctrl_c_during_a_build_cancels_it(wiz_answers: Answers) -> None:
    blocking = BlockingStep("remaster", "Remaster")
    steps: list[Any] = [FakeStep("release"), FakeStep("extensions"), FakeStep("app"), blocking]
    app = make_app(wiz_answers, services=FakeServices(), steps=steps, start="build")
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: current(app).query("#start"))
        await pilot.press("f5")
        await wait_for(pilot, blocking.started.is_set)
        await pilot.press("ctrl+c")
        await wait_for(pilot, blocking.saw_cancel.is_set)
        await wait_for(pilot, lambda: not current(app).query_one(StepRunner).running)
        assert app.is_running  # ctrl+c stops the build, not the wizard


async def test_a_form_screen_starts_focused_in_its_own_widgets(wiz_answers: Answers) -> None:
    app = make_app(wiz_answers, services=FakeServices(), start="release")
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.focused is not None)
        assert app.focused is not None and app.focused.id != "stepper"
