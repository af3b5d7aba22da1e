"""wizard.adapters against real parts: the demo mirror over HTTP, real wheels and pip, this host.

The screens' tests use fixed records (``tests/wizard/fakes``); these check that the adapters
turn what the domain returns into those records, through the same functions the steps call.
"""

from __future__ import annotations

import threading
from pathlib import Path

from steps.answers import Answers
from steps.demo.factory import Mirror
from steps.demo.server import MirrorServer
from steps.picore.tcz import repo_path
from tests.support.wheelhouse import PI_ARMV7_311, make_wheel
from wizard import adapters

DEAD = "http://127.0.0.1:9/"  # the discard port: nothing listens, the connection is refused


def on_mirror(answers: Answers, *mirrors: str) -> Answers:
    answers.release.mirrors = list(mirrors)
    answers.release.version, answers.release.arch = "15.0.0", "armhf"
    return answers


def test_the_listing_says_which_mirror_answered(
    answers: Answers, mirror_server: MirrorServer, fake_mirror: Mirror
) -> None:
    listing = adapters.mirror_listing(
        on_mirror(answers, DEAD, mirror_server.url), threading.Event()
    )
    assert not listing.offline
    assert {r.path for r in listing.releases} >= {r.path for r in fake_mirror.releases}
    dead, good = listing.mirrors
    assert not dead.ok and dead.url == DEAD and dead.note
    assert good.ok and good.note.startswith("answered:")


def test_no_mirror_means_the_offline_catalog(answers: Answers) -> None:
    listing = adapters.mirror_listing(on_mirror(answers, DEAD), threading.Event())
    assert listing.offline and listing.releases
    assert [(m.url, m.ok) for m in listing.mirrors] == [(DEAD, False)]


def test_index_and_closure_as_the_extensions_step_resolves_them(
    answers: Answers, mirror_server: MirrorServer, fake_mirror: Mirror
) -> None:
    on_mirror(answers, mirror_server.url)
    packages = fake_mirror.repos[repo_path("15.0.0", "armhf").rstrip("/")].packages
    name = next(n for n, p in sorted(packages.items()) if p.dep_text)
    index = adapters.tcz_index(answers, threading.Event())
    assert name in {e.name for e in index}
    answers.extensions.names = [name]
    closure = adapters.tcz_closure(answers, threading.Event())
    names = [p.name for p in closure.packages]
    assert name in names and len(names) > 1  # its .dep pulled in more
    assert closure.download_bytes > 0 and closure.ram_bytes > 0


def test_a_run_app_needs_no_web_service_wheels(answers: Answers, tmp_path: Path) -> None:
    app = tmp_path / "app"
    app.mkdir()
    (app / "run").write_text('#!/bin/sh\nexec python3 -m http.server "$FIRECORE_PORT"\n')
    (app / "run").chmod(0o755)
    house = tmp_path / "wheelhouse"
    make_wheel(house, "zeroconf", "0.132.0", PI_ARMV7_311, requires=["ifaddr"])
    make_wheel(house, "ifaddr", "0.2.0")
    answers.release.version, answers.release.arch = "15.0.0", "armhf"
    answers.app.path = str(app)
    answers.app.python_packages = []
    answers.app.wheelhouse = str(house)
    checks = adapters.app_checks(answers, threading.Event())
    assert [(c.name, c.ok) for c in checks] == [
        ("entry point", True),
        ("python", True),
        ("wheels", True),
    ], checks
    assert checks[0].message == "executable run script"


def test_a_missing_app_directory_is_a_failed_check_with_the_fix(
    answers: Answers, tmp_path: Path
) -> None:
    answers.app.path = str(tmp_path / "nowhere")
    (check,) = adapters.app_checks(answers, threading.Event())
    assert not check.ok and "does not exist" in check.message and check.fix


def test_preflight_names_a_missing_interface_as_a_finding(answers: Answers) -> None:
    answers.network.interface = "nosuchif0"
    findings = adapters.preflight(answers, threading.Event())
    missing = [f for f in findings if f.code == "interface-missing"]
    assert missing and missing[0].severity == "error" and "nosuchif0" in missing[0].message


def test_an_empty_tftp_root(answers: Answers, tmp_path: Path) -> None:
    answers.network.tftp_root = str(tmp_path / "tftp")
    state = adapters.tftp_state(answers)
    assert state.releases == () and state.note == "nothing deployed yet"
