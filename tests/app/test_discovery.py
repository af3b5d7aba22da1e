"""Discovery end to end: the bundled app announces itself, `status` finds it over mDNS.

One namespace is the Pi: the app tree and boot script exactly as the App step bundles them for
the overlay, started by boot.sh (the host's Python stands in for the Pi's python3.11, a fake
/proc gives it a serial). Another namespace on the same bridge runs
`firecore-wizard status --json`. Killing the app leaves the announcer running: the Pi is then
listed as unhealthy; stopping boot.sh unregisters it: the Pi is gone.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from steps.answers import Answers
from steps.app import AppStep
from steps.artifacts import AppBundle, Extension, ExtensionSet
from steps.base import StepContext
from tests.app.test_boot_script import BOOT_SH, read, wait_for, world  # noqa: F401 (fixture)
from tests.conftest import ROOT
from tests.support import json_lines
from tests.support.lab import Host, Lab, stop_process
from tests.support.pifiles import pi_files, write_overlay_files
from tests.support.wheelhouse import service_wheels

BUILD = "e2e0b1d0"


def materialize(bundle: AppBundle, root: Path) -> Path:
    """Write the bundle's files under ``root`` as the overlay would put them under ``/``.

    site-packages is left empty: its wheels are stand-ins; the host's venv provides the real
    fastapi/uvicorn/zeroconf to the host Python that plays the Pi's python3.11.
    """
    write_overlay_files(root, bundle.files, skip="opt/firecore/site-packages/")
    return root / "opt" / "firecore"


def status(adm: Host, *args: str) -> tuple[int, list[dict[str, Any]]]:
    proc = adm.run(
        [sys.executable, "-m", "wizard", "status", "--json", *args], check=False, cwd=ROOT
    )
    lines = json_lines(proc.stdout)
    assert lines and lines[-1]["type"] == "summary", proc.stdout + proc.stderr
    return proc.returncode, lines


@pytest.mark.netns
def test_status_finds_the_app_by_mdns_then_unhealthy_then_gone(
    lab: Lab,
    world: Path,  # noqa: F811
    answers: Answers,
    tmp_path: Path,
) -> None:
    wheelhouse = tmp_path / "wheelhouse"
    service_wheels(wheelhouse)
    answers.app.wheelhouse = str(wheelhouse)
    answers.app.hostname = "pi-lab"
    ctx = StepContext(answers)
    ctx.results.put(
        ExtensionSet(("python3.11.tcz",), (Extension("python3.11.tcz", (), ("python3.11.tcz",)),))
    )
    list(AppStep().run(ctx))
    bundle = ctx.results.need(AppBundle)
    fdir = materialize(bundle, world)
    assert os.access(fdir / "boot.sh", os.X_OK)
    (fdir / "build.json").write_text(json.dumps({"build_id": BUILD}))
    bindir = world / "bin"
    bindir.mkdir()
    (bindir / "python3.11").write_text(f'#!/bin/sh\nexec {sys.executable} "$@"\n')
    (bindir / "python3.11").chmod(0o755)
    fake = pi_files(world / "pi")
    manifest = world / "manifest.json"
    manifest.write_text(json.dumps({"build_id": BUILD}))
    old_manifest = world / "old.json"
    old_manifest.write_text(json.dumps({"build_id": "newer000"}))
    env = {
        "PATH": f"{bindir}:{os.environ['PATH']}",
        "FIRECORE_DIR": str(fdir),
        "FIRECORE_LOG_DIR": str(world / "log"),
        "FIRECORE_RUN_DIR": str(world / "run"),
        "FIRECORE_USER": "root",
        "FIRECORE_PROC": fake["FIRECORE_PROC"],
        "FIRECORE_BACKOFF_MS": "600000",  # a killed app stays down for the test
        "FIRECORE_ANNOUNCE_REFRESH": "1",
    }
    pi = lab.host("pi", "10.99.0.2/24")
    adm = lab.host("adm", "10.99.0.1/24")
    boot = pi.popen(
        ["unshare", "--uts", "sh", str(BOOT_SH)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        # healthy: found over mDNS, /health answers, build matches the deployed manifest
        deadline = time.monotonic() + 240  # a hang-stopper: found as soon as it answers
        while True:
            code, lines = status(adm, "--wait", "2", "--manifest", str(manifest))
            pis = [x for x in lines if x["type"] == "pi"]
            if code == 0 or time.monotonic() > deadline:
                break
        assert code == 0, (lines, read(world / "log" / "boot.log"))
        assert len(pis) == 1
        pi_status = pis[0]
        assert pi_status["serial"] == "abcdef12" and pi_status["hostname"] == "pi-lab"
        assert pi_status["ip"] == "10.99.0.2" and pi_status["port"] == 8000
        assert pi_status["name"] == "pi-lab-abcdef12"
        assert pi_status["health"] == "ok" and pi_status["build_id"] == BUILD
        assert pi_status["current"] is True and pi_status["uptime"] == 3723.45
        assert pi_status["model"] == "Raspberry Pi 3 Model B Rev 1.2"
        assert lines[-1] == {
            "type": "summary",
            "found": 1,
            "healthy": 1,
            "unhealthy": 0,
            "old_build": 0,
            "deployed_build": BUILD,
            "manifest": str(manifest),
            "waited": 2.0,
            "ok": True,
        }

        # a newer deployment: flagged as an old build; healthy still exits 0
        code, lines = status(adm, "--wait", "2", "--manifest", str(old_manifest))
        assert code == 0 and lines[0]["current"] is False and lines[-1]["old_build"] == 1
        code, _ = status(adm, "--wait", "2", "--manifest", str(old_manifest), "--require-current")
        assert code == 1

        # the app dies (boot.sh backs off): still announced, now unhealthy
        app_pid = int(read(world / "run" / "app.pid"))
        os.kill(app_pid, signal.SIGKILL)
        wait_for(lambda: "app exited" in read(world / "log" / "boot.log"), what="the death")
        code, lines = status(adm, "--wait", "2", "--manifest", str(manifest))
        assert code == 1
        assert lines[0]["health"] == "unhealthy" and lines[0]["error"] == "connection refused"
        assert lines[0]["build_id"] == BUILD  # from the TXT record
        assert lines[-1]["unhealthy"] == 1 and lines[-1]["ok"] is False

        # the Pi shuts down: the announcer says goodbye, the Pi is gone
        boot.send_signal(signal.SIGTERM)
        assert boot.wait(timeout=240) == 0
        code, lines = status(adm, "--wait", "2", "--manifest", str(manifest))
        assert code == 1 and lines == [
            {
                "type": "summary",
                "found": 0,
                "healthy": 0,
                "unhealthy": 0,
                "old_build": 0,
                "deployed_build": BUILD,
                "manifest": str(manifest),
                "waited": 2.0,
                "ok": False,
            }
        ]
    finally:
        stop_process(boot)
