"""A first-time user's whole session with Pilot, against the fixture mirror, with the real steps.

Welcome → Release (the mirror's listing; pick 15.0.0 armhf) → Extensions (search, add myapp.tcz,
whose w1-KERNEL dependency expands per board) → App (a local wheelhouse: offline) → Build (the
real release, extensions, app and remaster steps) → Network (`dnsmasq_service = "none"`, nothing
applied: no root needed) → Prepare (the Pi 3B card from this build) → Deploy (the real deploy
step into a temporary TFTP root) → Status → Diagnostics (watching lo; without root it says why
not) → Summary (Save answers) → Finish.

Then the saved file is run the way ``firecore-wizard --answers FILE`` runs it (the headless
runner, same plan classes) for the build steps, and the two boot trees are compared byte for
byte; the saved file also reproduces itself exactly through load + dump.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import stat
from pathlib import Path

from textual.widgets import Button, DataTable, Input, Select, Static

from steps.answers import default_answers, load_answers
from steps.answers_toml import dump_answers
from steps.base import StepContext
from steps.demo.server import MirrorServer
from steps.plan import build_plan
from tests.support.wheelhouse import service_wheels
from tests.wizard.conftest import current, focus, wait_for
from wizard.app import make_app
from wizard.exit_codes import ExitCode
from wizard.headless import run_steps
from wizard.render import Renderer
from wizard.screens.build import BUILD_STEPS
from wizard.widgets.answer_field import AnswerField
from wizard.widgets.step_runner import StepRunner


def tree(root: Path) -> dict[str, tuple[int, str]]:
    """Every file and directory below ``root``: relative path → (mode, sha256 of the bytes)."""
    out: dict[str, tuple[int, str]] = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        st = path.lstat()
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else ""
        out[rel] = (stat.S_IMODE(st.st_mode) | stat.S_IFMT(st.st_mode), digest)
    return out


def built(runner: StepRunner) -> bool:
    """The runner finished a build whose remaster step reported its result."""
    return not runner.running and any(r.step == "remaster" for r in runner.results)


def _field(app: object, key: str) -> AnswerField:
    field_id = "#field-" + key.replace(".", "-").replace("_", "-")
    return app.screen.query_one(field_id, AnswerField)  # type: ignore[attr-defined, no-any-return]


async def test_first_time_user_walkthrough_and_headless_replay(
    mirror_server: MirrorServer, tmp_path: Path
) -> None:
    service_wheels(tmp_path / "wheelhouse")
    out = tmp_path / "boot"
    saved = tmp_path / "my-pis.toml"
    start = default_answers()
    # The Network screen runs the real preflight as soon as it opens: point it at loopback with
    # the segment probe off, so this test never sends a DHCP probe onto the host's real LAN.
    start.network.interface = "lo"
    start.network.probe_seconds = 0
    app = make_app(start)
    async with app.run_test(size=(120, 40)) as pilot:
        # 1. Welcome
        await wait_for(pilot, lambda: app.current == "welcome" and app.screen.query("#next"))
        await wait_for(pilot, lambda: not current(app).problems())  # what Next checks
        await pilot.press("ctrl+n")

        # 2. Release: point at the mirror, refresh, choose 15.0.0 armhf from the listing
        await wait_for(pilot, lambda: app.current == "release" and app.screen.query("#releases"))
        _field(app, "release.mirrors").set_text(mirror_server.url)
        await pilot.press("f5")
        table = app.screen.query_one("#releases", DataTable)
        status = app.screen.query_one("#mirror-status", Static)
        await wait_for(pilot, lambda: f"✓ {mirror_server.url} answered" in str(status.render()))
        rows = [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]
        index = next(i for i, r in enumerate(rows) if r[:2] == ["15.0.0", "armhf"])
        await focus(pilot, table)
        table.move_cursor(row=index)
        await pilot.press("enter")
        await pilot.pause()
        assert (app.state.answers.release.version, app.state.answers.release.arch) == (
            "15.0.0",
            "armhf",
        )
        await wait_for(pilot, lambda: not current(app).problems())  # what Next checks
        await pilot.press("ctrl+n")

        # 3. Extensions: search and add myapp.tcz; the closure shows why w1 is included
        await wait_for(pilot, lambda: app.current == "extensions" and app.screen.query("#index"))
        index_table = app.screen.query_one("#index", DataTable)
        await wait_for(pilot, lambda: index_table.row_count > 10)
        await focus(pilot, app.screen.query_one("#search", Input))
        await pilot.press(*"myapp")
        await wait_for(pilot, lambda: index_table.row_count == 1)
        await focus(pilot, index_table)
        await pilot.press("enter")
        closure = app.screen.query_one("#closure", DataTable)
        await wait_for(
            pilot,
            lambda: any(
                str(closure.get_row_at(i)[0]).startswith("w1-") for i in range(closure.row_count)
            ),
        )
        why = {
            str(closure.get_row_at(i)[0]): str(closure.get_row_at(i)[2])
            for i in range(closure.row_count)
        }
        assert why["w1-6.6.47-piCore-v7.tcz"] == "myapp.tcz → w1-6.6.47-piCore-v7.tcz"
        assert app.state.answers.extensions.names == ["openssh.tcz", "python3.11.tcz", "myapp.tcz"]
        await wait_for(pilot, lambda: not current(app).problems())  # what Next checks
        await pilot.press("ctrl+n")

        # 4. App: offline wheelhouse, no extra packages, our hostname; checks run for real
        await wait_for(pilot, lambda: app.current == "app" and app.screen.query("#checks"))
        _field(app, "app.python_packages").set_text("")
        _field(app, "app.wheelhouse").set_text(str(tmp_path / "wheelhouse"))
        _field(app, "app.hostname").set_text("walkthrough")
        checks = app.screen.query_one("#checks", Static)
        await wait_for(pilot, lambda: "✓ wheels" in str(checks.render()))
        await wait_for(pilot, lambda: not current(app).problems())  # what Next checks
        await pilot.press("ctrl+n")

        # 5. Build with the real steps
        await wait_for(pilot, lambda: app.current == "build" and app.screen.query("#start"))
        _field(app, "build.output").set_text(str(out))
        _field(app, "build.cache").set_text(str(tmp_path / "cache"))
        await pilot.press("f5")
        runner = app.screen.query_one(StepRunner)
        await wait_for(pilot, lambda: built(runner))
        state_label = app.screen.query_one("#build-state", Static)
        # the runner stops before the screen has handled its Finished message: wait for that
        await wait_for(pilot, lambda: str(state_label.render()) != "building…")
        state = str(state_label.render())
        assert state.startswith("✓ DEMO "), state
        await wait_for(pilot, lambda: not current(app).problems())  # what Next checks
        await pilot.press("ctrl+n")

        # 6. Network: nothing applied (no root); the service mode and paths are answers
        await wait_for(pilot, lambda: app.current == "network" and app.screen.query("#service"))
        app.screen.query_one("#service", Select).value = "none"
        _field(app, "network.tftp_root").set_text(str(tmp_path / "tftp"))
        _field(app, "network.dnsmasq_conf").set_text(str(tmp_path / "dnsmasq.d" / "firecore.conf"))
        _field(app, "network.state_dir").set_text(str(tmp_path / "state"))
        await pilot.pause()
        await wait_for(pilot, lambda: not current(app).problems())  # what Next checks
        await pilot.press("ctrl+n")

        # 7. Prepare: the Pi 3B card from this build (the real prepare step)
        await wait_for(pilot, lambda: app.current == "prepare" and app.screen.query("#make"))
        _field(app, "prepare.output").set_text(str(tmp_path / "cards"))
        assert str(app.screen.query_one("#model", Select).value) == "pi3b"
        await pilot.press("f5")
        await wait_for(pilot, lambda: "pi3b" in app.state.prepared)
        card = Path(app.state.prepared["pi3b"]["image"])
        assert card.parent == tmp_path / "cards" and card.name.startswith("firecore-pi3b-otp-")
        assert "Write the card" in str(app.screen.query_one("#card", Static).render())
        assert not app.screen.query_one("#write", Button).disabled
        await wait_for(pilot, lambda: not current(app).problems())  # what Next checks
        await pilot.press("ctrl+n")

        # 8. Deploy the build into the temporary TFTP root with the real deploy step
        await wait_for(pilot, lambda: app.current == "deploy" and app.screen.query("#deploy"))
        await pilot.press("f5")
        deployed = app.screen.query_one("#deploy-state", Static)
        await wait_for(pilot, lambda: str(deployed.render()).startswith(("✓", "✕")))
        assert str(deployed.render()).startswith("✓"), str(deployed.render())
        releases = app.screen.query_one("#releases", DataTable)
        await wait_for(pilot, lambda: releases.row_count == 1)
        assert str(releases.get_row_at(0)[0]) == "▶ live"
        await wait_for(pilot, lambda: not current(app).problems())  # what Next checks
        await pilot.press("ctrl+n")

        # 9. Status (nothing on this LAN) → 10. Diagnostics (watching lo: no Pi) → 11. Summary
        await wait_for(pilot, lambda: app.current == "status" and app.screen.query("#scan"))
        await wait_for(pilot, lambda: not current(app).problems())  # what Next checks
        await pilot.press("ctrl+n")
        await wait_for(pilot, lambda: app.current == "diagnostics" and app.screen.query("#waiting"))
        await pilot.press("ctrl+n")
        await wait_for(pilot, lambda: app.current == "summary" and app.screen.query("#save-path"))
        report = str(app.screen.query_one("#report", Static).render())
        assert f"{out}: build " in report and "DEMO" in report
        # the network answers were filled after the build: they do not shape the tree
        assert "⚠" not in report
        app.screen.query_one("#save-path", Input).value = str(saved)
        await pilot.press("f5")
        await wait_for(pilot, saved.exists)
        await wait_for(pilot, lambda: not current(app).problems())  # what Next checks
        await pilot.press("ctrl+n")
    assert app.return_code == 0

    # the saved file is complete and reproduces itself byte for byte
    text = saved.read_text()
    answers = load_answers(saved)
    assert dump_answers(answers) == text
    assert answers.network.dnsmasq_service == "none"
    assert (tmp_path / "tftp" / "current" / "manifest.json").is_file()

    # run headless (the --answers runner) for the build steps; the trees must be identical
    interactive = tree(out)
    assert "manifest.json" in interactive and "overlay.gz" in interactive
    shutil.move(out, tmp_path / "boot.interactive")
    err = io.StringIO()
    code = run_steps(
        build_plan(answers, only=list(BUILD_STEPS)),
        StepContext(answers=answers),
        Renderer(io.StringIO(), err),
    )
    assert code == ExitCode.OK, err.getvalue()
    assert tree(out) == interactive
    assert os.listdir(out) == os.listdir(tmp_path / "boot.interactive")
