"""Welcome, Release, Extensions and App screens: lookups rendered, answers filled, validation."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from textual.widgets import Button, Checkbox, DataTable, Input, Label, Select, SelectionList, Static

from steps.answers import Answers
from steps.errors import AnswersError, DownloadError
from tests.wizard.conftest import focus, wait_for
from tests.wizard.fakes import FakeServices
from wizard.app import make_app
from wizard.screens.error import ErrorModal
from wizard.widgets.answer_field import AnswerField


def _reason(app: object) -> str:
    return str(app.screen.query_one("#reason", Label).render())  # type: ignore[attr-defined]


async def test_welcome_shows_the_host_check_with_fixes(
    wiz_answers: Answers, services: FakeServices
) -> None:
    app = make_app(wiz_answers, services=services)
    async with app.run_test(size=(100, 30)) as pilot:
        host = app.screen.query_one("#host", Static)
        await wait_for(pilot, lambda: "✓ mcopy" in str(host.render()))
        lines = str(host.render()).splitlines()
        # what is missing first, each with its fix
        assert lines[:2] == [
            "✕ dnsmasq: not installed — needed for network",
            "  fix: apt-get install dnsmasq-base",
        ]
        assert lines[2] == "✓ mcopy: /usr/bin/mcopy — build"
        assert not app.screen.query_one("#next", Button).disabled  # a missing tool is no blocker


async def test_welcome_resume_loads_a_file_and_reports_a_bad_one(
    wiz_answers: Answers, services: FakeServices, tmp_path: Path
) -> None:
    good = tmp_path / "saved.toml"
    good.write_text('version = 1\n[release]\nversion = "12.0"\narch = "armv7"\n')
    bad = tmp_path / "bad.toml"
    bad.write_text('version = 1\n[release]\nversoin = "12.0"\n')
    app = make_app(wiz_answers, services=services)
    async with app.run_test(size=(100, 30)) as pilot:
        field = app.screen.query_one("#resume-path", Input)
        field.value = str(bad)
        await focus(pilot, field)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ErrorModal))
        error = app.screen.error  # type: ignore[attr-defined]
        assert error.message == "release.versoin: unknown key"
        assert error.fix == "did you mean release.version?"
        await pilot.press("escape")
        await wait_for(
            pilot, lambda: app.current == "welcome" and not isinstance(app.screen, ErrorModal)
        )
        app.screen.query_one("#resume-path", Input).value = str(good)
        app.screen.query_one("#resume", Button).press()
        # release is set by the file → done; the first screen still to do is Extensions
        # (the screen composed, so the app is not closed in the middle of mounting it)
        await wait_for(pilot, lambda: app.current == "extensions" and app.screen.query("#back"))
        assert app.state.answers.release.version == "12.0"
        assert app.state.given == {"release"}


async def test_release_lists_mirror_releases_and_a_row_fills_version_and_arch(
    wiz_answers: Answers, services: FakeServices
) -> None:
    app = make_app(wiz_answers, services=services, start="release")
    async with app.run_test(size=(120, 40)) as pilot:
        table = app.screen.query_one("#releases", DataTable)
        await wait_for(pilot, lambda: table.row_count == 4)
        status = str(app.screen.query_one("#mirror-status", Static).render())
        assert "✓ http://mirror.test/ answered" in status
        assert [str(c) for c in table.get_row_at(2)] == [
            "15.0.0-beta2",
            "aarch64",
            "02 3 4 5",
            "98.0 MB",
            "2024-06-20",
        ]
        await focus(pilot, table)
        table.move_cursor(row=0)
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.state.answers.release.arch == "aarch64")
        assert app.state.answers.release.version == "16.0.0"
        editor = app.screen.query_one("#field-release-version #editor", Input)
        assert editor.value == "16.0.0"
        note = app.screen.query_one("#boards-note", Static)
        assert str(note.render()) == ""  # aarch64 serves pi3 and pi4
        table.move_cursor(row=3)  # 12.0 armv7: no Pi 5 kernel
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.state.answers.release.arch == "armv7")
        app.screen.query_one("#boards", SelectionList).select("pi5")
        await wait_for(pilot, lambda: str(note.render()) == "⚠ armv7 does not serve pi5")
        assert not app.screen.query_one("#next", Button).disabled  # a warning, not a rule


async def test_release_validation_uses_the_answers_rules(
    wiz_answers: Answers, services: FakeServices
) -> None:
    app = make_app(wiz_answers, services=services, start="release")
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.screen.query_one("#releases", DataTable).row_count)
        boards = app.screen.query_one("#boards", SelectionList)
        boards.deselect_all()
        await wait_for(pilot, lambda: app.screen.query_one("#next", Button).disabled)
        assert "release.boards" in _reason(app)
        boards.select("pi4")
        await wait_for(pilot, lambda: not app.screen.query_one("#next", Button).disabled)
        assert app.state.answers.release.boards == ["pi4"]
        mirrors = app.screen.query_one("#field-release-mirrors", AnswerField)
        mirrors.set_text("ftp://old.example/")
        await pilot.pause()
        assert "release.mirrors: 'ftp://old.example/' is not an http:// or https:// URL" in (
            _reason(app)
        )
        mirrors.set_text("http://a.example, http://b.example/")
        await wait_for(
            pilot,
            lambda: app.state.answers.release.mirrors == ["http://a.example/", "http://b.example/"],
        )
        # a version the mirrors do not list cannot be chosen while they answer
        app.screen.query_one("#field-release-version", AnswerField).set_text("15.1.0")
        await wait_for(
            pilot, lambda: _reason(app) == "Next: 15.1.0 armhf is not on the mirrors; choose a row"
        )


async def test_release_listing_failure_is_shown_not_raised(
    wiz_answers: Answers, services: FakeServices
) -> None:
    services.fail["releases"] = DownloadError("no mirror answered", fix="check the network")
    app = make_app(wiz_answers, services=services, start="release")
    async with app.run_test(size=(120, 40)) as pilot:
        status = app.screen.query_one("#mirror-status", Static)
        await wait_for(pilot, lambda: "no mirror answered" in str(status.render()))
        assert str(status.render()) == "✕ no mirror answered — check the network"


async def test_extensions_search_toggle_and_closure_why(
    wiz_answers: Answers, services: FakeServices
) -> None:
    app = make_app(wiz_answers, services=services, start="extensions")
    async with app.run_test(size=(120, 40)) as pilot:
        index = app.screen.query_one("#index", DataTable)
        closure = app.screen.query_one("#closure", DataTable)
        await wait_for(pilot, lambda: index.row_count == 7 and closure.row_count == 4)
        await pilot.press(*"url tool")
        await wait_for(pilot, lambda: index.row_count == 1)
        assert [str(c) for c in index.get_row_at(0)][1] == "curl.tcz"
        await focus(pilot, index)
        await pilot.press("enter")
        await wait_for(pilot, lambda: "curl.tcz" in app.state.answers.extensions.names)
        await wait_for(pilot, lambda: closure.row_count == 5)
        staged = {
            str(closure.get_row_at(i)[0]): str(closure.get_row_at(i)[2])
            for i in range(closure.row_count)
        }
        assert staged["openssl.tcz"] == "openssh.tcz → openssl.tcz"
        assert staged["curl.tcz"] == "requested"
        totals = str(app.screen.query_one("#totals", Static).render())
        assert "download 14.9 MB · RAM ≈ 44.9 MB of 1.1 GB (pi3): fits" in totals
        await pilot.press("enter")  # again: removes it
        await wait_for(pilot, lambda: "curl.tcz" not in app.state.answers.extensions.names)


async def test_an_unknown_extension_blocks_next_with_the_resolvers_message(
    wiz_answers: Answers, services: FakeServices
) -> None:
    services.fail["closure"] = AnswersError(
        "extensions.names",
        "'pyhton3.11.tcz' is not in 15.x/armhf/tcz/",
        fix="did you mean python3.11.tcz?",
    )
    app = make_app(wiz_answers, services=services, start="extensions")
    async with app.run_test(size=(120, 40)) as pilot:
        reason = (
            "Next: extensions.names: 'pyhton3.11.tcz' is not in 15.x/armhf/tcz/ — "
            "did you mean python3.11.tcz?"
        )
        await wait_for(pilot, lambda: _reason(app) == reason)
        assert app.screen.query_one("#next", Button).disabled


async def test_app_fields_checks_and_the_token_goes_to_a_0600_file(
    wiz_answers: Answers, services: FakeServices, tmp_path: Path
) -> None:
    app = make_app(wiz_answers, services=services, start="app")
    async with app.run_test(size=(120, 40)) as pilot:
        checks = app.screen.query_one("#checks", Static)
        await wait_for(pilot, lambda: "✓ wheels" in str(checks.render()))
        host = app.screen.query_one("#field-app-hostname", AnswerField)
        host.set_text("Kiosk_1")
        await wait_for(pilot, lambda: "app.hostname: 'Kiosk_1' is not a hostname" in _reason(app))
        host.set_text("kiosk-1")
        app.screen.query_one("#field-app-port", AnswerField).set_text("80")
        await wait_for(
            pilot, lambda: "app.port: Input should be greater than or equal to 1024" in _reason(app)
        )
        app.screen.query_one("#field-app-port", AnswerField).set_text("8080")
        keys = app.screen.query_one("#field-app-ssh-authorized-keys", AnswerField)
        keys.set_text(
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIP1MmLxuAyRA0X7Oeqjlg43oYao6r1xYdBvheitzVYVZ"
            " tc@laptop"
        )
        secrets = tmp_path / "firecore.secrets.toml"
        app.screen.query_one("#token", Input).value = "s3cret"
        app.screen.query_one("#field-app-secrets-file", AnswerField).set_text(str(secrets))
        await wait_for(pilot, lambda: not app.screen.query_one("#next", Button).disabled)
        await pilot.press("ctrl+n")
        await wait_for(pilot, lambda: app.current == "build")
    a = app.state.answers.app
    assert (a.hostname, a.port, a.secrets_file) == ("kiosk-1", 8080, str(secrets))
    assert a.ssh_authorized_keys == [
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIP1MmLxuAyRA0X7Oeqjlg43oYao6r1xYdBvheitzVYVZ tc@laptop"
    ]
    assert stat.S_IMODE(os.stat(secrets).st_mode) == 0o600
    assert 'token = "s3cret"' in secrets.read_text()


async def test_the_bytecode_checkbox_sets_app_precompile(
    wiz_answers: Answers, services: FakeServices
) -> None:
    app = make_app(wiz_answers, services=services, start="app")
    async with app.run_test(size=(80, 24)) as pilot:
        box = app.screen.query_one("#precompile", Checkbox)
        assert box.value is True
        box.focus()
        await pilot.press("space")
        await wait_for(pilot, lambda: app.state.answers.app.precompile is False)


async def test_a_failed_app_check_blocks_next(wiz_answers: Answers, services: FakeServices) -> None:
    from wizard.views import Check

    services.app_checks = lambda answers, cancel: [  # type: ignore[method-assign]
        Check(
            "wheels",
            False,
            "numpy has no wheel for cp311 manylinux2014_armv7l",
            "build one into app.wheelhouse or drop it",
        ),
    ]
    app = make_app(wiz_answers, services=services, start="app")
    async with app.run_test(size=(120, 40)) as pilot:
        # Next is also disabled while the checks run: wait for the verdict, not just the state
        reason = "Next: wheels: numpy has no wheel for cp311 manylinux2014_armv7l"
        await wait_for(pilot, lambda: _reason(app) == reason)
        assert app.screen.query_one("#next", Button).disabled
        checks = app.screen.query_one("#checks", Static)
        await wait_for(pilot, lambda: "— build one into app.wheelhouse" in str(checks.render()))


async def test_extension_mode_select_sets_the_answer(
    wiz_answers: Answers, services: FakeServices
) -> None:
    app = make_app(wiz_answers, services=services, start="extensions")
    async with app.run_test(size=(120, 40)) as pilot:
        app.screen.query_one("#mode", Select).value = "extracted"
        await wait_for(pilot, lambda: app.state.answers.extensions.mode == "extracted")


async def test_an_unreachable_index_is_reported_inline(
    wiz_answers: Answers, services: FakeServices
) -> None:
    services.fail["extension_index"] = DownloadError(
        "cannot fetch 15.x/armhf/tcz/sizelist.gz: no mirror answered", fix="check the network"
    )
    app = make_app(wiz_answers, services=services, start="extensions")
    async with app.run_test(size=(120, 40)) as pilot:
        note = app.screen.query_one("#index-note", Static)
        await wait_for(pilot, lambda: str(note.render()))
        assert str(note.render()) == (
            "✕ Download failed: cannot fetch 15.x/armhf/tcz/sizelist.gz: no mirror answered"
            " — check the network"
        )
        assert not isinstance(app.screen, ErrorModal)
