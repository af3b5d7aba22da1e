"""Navigation: Back/Next, the stepper (done/current/blocked), help, theme, command palette."""

from __future__ import annotations

from textual.command import CommandList
from textual.widgets import Button, Input, Label, Markdown

from steps.answers import Answers
from tests.wizard.conftest import click, current, focus, wait_for
from tests.wizard.fakes import FakeServices
from wizard.app import DARK, LIGHT, make_app
from wizard.flow import status
from wizard.screens.base import WizardScreen
from wizard.screens.help import HelpScreen
from wizard.widgets.stepper import Stepper


def highlighted_command(app: object) -> str:
    """The prompt of the command palette's highlighted entry ("" while it is not shown)."""
    lists = app.screen.query(CommandList)  # type: ignore[attr-defined]
    if not lists or lists.first().highlighted is None:
        return ""
    option = lists.first().get_option_at_index(lists.first().highlighted)
    return str(option.prompt).split("\n")[0]


def _name(app: object) -> str:
    screen = app.screen  # type: ignore[attr-defined]
    return screen.NAME if isinstance(screen, WizardScreen) else type(screen).__name__


async def test_next_and_back_walk_the_flow_and_mark_done(
    wiz_answers: Answers, services: FakeServices
) -> None:
    app = make_app(wiz_answers, services=services)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: _name(app) == "welcome")
        assert app.screen.query_one("#back", Button).disabled
        await pilot.press("ctrl+n")
        await wait_for(pilot, lambda: _name(app) == "release")
        assert status(app.state, "welcome", "release") == "done"
        assert status(app.state, "extensions", "release") == "blocked"  # needs Release
        assert status(app.state, "network", "release") == "todo"
        assert status(app.state, "build", "release") == "blocked"
        assert status(app.state, "diagnostics", "release") == "todo"  # opens any time
        await pilot.press("ctrl+b")
        await wait_for(pilot, lambda: _name(app) == "welcome")
        await click(pilot, "#next")
        await wait_for(pilot, lambda: _name(app) == "release")


async def test_stepper_refuses_a_blocked_screen_and_opens_an_open_one(
    wiz_answers: Answers, services: FakeServices
) -> None:
    app = make_app(wiz_answers, services=services, start="release")
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: _name(app) == "release")
        stepper = app.screen.query_one(Stepper)
        build = stepper.get_option("build")
        diagnostics = stepper.get_option("diagnostics")
        assert build.disabled and not diagnostics.disabled
        current(app).go_to("build")  # what the palette's "Go to Build" does
        await wait_for(
            pilot,
            lambda: any(
                "Build needs Release, Extensions, App" in str(n.message) for n in app._notifications
            ),
        )
        assert _name(app) == "release"
        await focus(pilot, stepper)
        stepper.highlighted = stepper.get_option_index("network")
        await pilot.press("enter")
        await wait_for(pilot, lambda: _name(app) == "network")


async def test_an_invalid_field_disables_next_and_says_why(
    wiz_answers: Answers, services: FakeServices
) -> None:
    app = make_app(wiz_answers, services=services, start="release")
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: _name(app) == "release")
        editor = app.screen.query_one("#field-release-version #editor", Input)
        await focus(pilot, editor)
        editor.value = ""
        await pilot.press(*"15.x")
        await pilot.pause()
        reason = str(app.screen.query_one("#reason", Label).render())
        assert app.screen.query_one("#next", Button).disabled
        assert "release.version: '15.x' is not a piCore version like 15.0.0" in reason
        await pilot.press("ctrl+n")
        await wait_for(pilot, lambda: _name(app) == "release")
        assert app.state.answers.release.version == "15.0.0"  # the bad value was not applied
        await pilot.press("backspace", "0", ".", "0")
        await wait_for(pilot, lambda: not app.screen.query_one("#next", Button).disabled)
        assert app.state.answers.release.version == "15.0.0"


async def test_f1_help_theme_toggle_and_quit(wiz_answers: Answers, services: FakeServices) -> None:
    app = make_app(wiz_answers, services=services, start="release")
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: _name(app) == "release")
        await pilot.press("f1")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
        text = app.screen.query_one(Markdown).source
        assert "# Release" in text and "ctrl+p" in text
        await pilot.press("escape")
        await wait_for(pilot, lambda: _name(app) == "release")
        assert app.theme == DARK
        await pilot.press("ctrl+t")
        assert app.theme == LIGHT
        await pilot.press("ctrl+t")
        assert app.theme == DARK
        await pilot.press("ctrl+q")
    assert app.return_code == 0


async def test_every_action_is_in_the_command_palette(
    wiz_answers: Answers, services: FakeServices
) -> None:
    app = make_app(wiz_answers, services=services, start="build")
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: _name(app) == "build")
        titles = {c.title for c in app.get_system_commands(app.screen)}
        assert {
            "Next",
            "Back",
            "Help",
            "Toggle light/dark theme",
            "Save answers…",
            "Open answers file…",
            "Go to Welcome",
            "Go to Summary",
            "Build the boot tree",
            "Cancel the build",
            "Retry the build",
        } <= titles
        assert "Go to Diagnostics" in titles
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"Go to Status")
        await wait_for(pilot, lambda: highlighted_command(app) == "Go to Status")
        await pilot.press("enter")
        await wait_for(pilot, lambda: _name(app) == "status")
