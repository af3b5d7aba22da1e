"""The rehearsal: a self-test run on the server itself, against a private copy of the server.

Real dnsmasq (our generated config and a plain DHCP "router") in namespaces the rehearsal makes
itself, the virtual Pi in a third one, the deployed TFTP root on this host's filesystem.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from steps import deploy
from steps.answers import Answers
from steps.base import StepContext
from steps.errors import StepError, UsageError
from steps.events import Result
from steps.selftest import SelftestStep
from steps.wire.virtualpi import BootOptions
from tests.conftest import ROOT, needs_root
from tests.support import json_lines
from tests.support.boot_tree import make_build
from tests.support.lab import Lab

pytestmark = pytest.mark.netns

#: Shorter than a LAN's defaults, still far longer than any reply takes on a loaded machine.
FAST = BootOptions(dhcp_window=3.0, settle=0.5, arp_wait=1.0, tftp_timeout=1.0, file_timeout=120)


@pytest.fixture
def deployed(answers: Answers) -> Iterator[Answers]:
    needs_root()
    # dnsmasq drops to nobody: every directory above the TFTP root must be searchable, which
    # pytest's private tmp_path is not (that case is the access-denied test below)
    top = Path(tempfile.mkdtemp(prefix="fwt-rehearsal-", dir="/tmp"))
    top.chmod(0o755)
    answers.network.tftp_root = str(top / "tftp")
    answers.network.interface = "lo"  # never used by the rehearsal
    make_build(Path(answers.build.output))
    list(deploy.DeployStep().run(StepContext(answers=answers)))
    yield answers
    shutil.rmtree(top, ignore_errors=True)


def _our_namespaces() -> list[str]:
    out = subprocess.run(["ip", "netns"], capture_output=True, text=True).stdout
    return [
        line.split()[0]
        for line in out.splitlines()
        if line.startswith(f"fwr{os.getpid() % 100000}x")
    ]


@pytest.mark.parametrize("model", ["pi3", "pi4", "pi5"])
def test_rehearsal_boots_the_deployed_tree(deployed: Answers, model: str) -> None:
    step = SelftestStep(model=model, rehearse=True, options=FAST, stepping="d0")
    events = list(step.run(StepContext(answers=deployed)))
    result = next(e for e in events if isinstance(e, Result))
    stages = result.data["stages"]
    assert result.data["ok"], [s for s in stages if not s["ok"]]
    names = [s["stage"] for s in stages]
    assert names[:3] == ["dhcp-offer", "proxy-offer", "lease"]
    assert any(n.endswith("overlay.gz") for n in names)  # the last initramfs was fetched
    assert all(s["ok"] for s in stages)
    if model == "pi5":  # its bootloader reads config.txt first and its D0 device tree
        assert names[3:6] == ["arp", "tftp:5e1f7e57/config.txt", "tftp:config.txt"]
        assert "tftp:bcm2712d0-rpi-5-b.dtb" in names
    assert _our_namespaces() == []


def test_rehearsal_names_a_missing_file(deployed: Answers) -> None:
    current = Path(deployed.network.tftp_root) / "current"
    (current / "overlay.gz").unlink()
    step = SelftestStep(model="pi4", rehearse=True, options=FAST)
    with pytest.raises(StepError) as info:
        list(step.run(StepContext(answers=deployed)))
    assert "overlay.gz" in str(info.value)
    assert "tftp-file-not-found" in str(info.value) or "initramfs-missing" in str(info.value)
    assert _our_namespaces() == []


def test_rehearsal_reports_an_unreadable_tftp_root(deployed: Answers) -> None:
    top = Path(deployed.network.tftp_root).parent
    top.chmod(0o700)  # dnsmasq (user nobody) cannot reach the files any more
    step = SelftestStep(model="pi3", rehearse=True, options=FAST)
    with pytest.raises(StepError) as info:
        list(step.run(StepContext(answers=deployed)))
    assert "tftp-access-denied" in str(info.value)
    assert "bootcode.bin" in str(info.value)


def test_rehearsal_needs_a_deployed_tree(answers: Answers, tmp_path: Path) -> None:
    needs_root()
    answers.network.tftp_root = str(tmp_path / "nothing")
    with pytest.raises(UsageError, match="nothing is deployed"):
        list(SelftestStep(rehearse=True).run(StepContext(answers=answers)))


def test_selftest_rehearse_command_json(deployed: Answers, tmp_path: Path, lab: Lab) -> None:
    from steps.answers_toml import dump_answers

    path = tmp_path / "answers.toml"
    path.write_text(dump_answers(deployed))
    # run from inside an unrelated namespace: the rehearsal must not depend on the host's LAN
    host = lab.host("h", "10.98.0.1/24")
    done = host.run(
        [sys.executable, "-m", "wizard", "selftest", "--rehearse", "--model", "pi3",
         "--answers", str(path), "--json", "--dhcp-timeout", "3"],
        check=False, cwd=ROOT,
    )  # fmt: skip
    lines = json_lines(done.stdout)
    assert done.returncode == 0, done.stderr + done.stdout
    assert lines[-1]["type"] == "summary" and lines[-1]["ok"] is True
    assert {line["type"] for line in lines[:-1]} == {"stage"}
