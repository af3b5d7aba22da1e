"""NetworkStep in-process (inside a lab namespace) and the systemd service driver."""

from __future__ import annotations

import io
import os
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from steps.answers import Answers, default_answers
from steps.artifacts import NetworkResult
from steps.base import StepContext
from steps.errors import Cancelled, NetworkError
from steps.events import Event, LogLine, Planned, Progress, Result, drive
from steps.host.dnsmasq_service import restart_systemd
from steps.network import TESTED_AT_INSTALL, EarlyChecks, NetworkStep
from tests.support.lab import Lab
from tests.support.netboot_lab import in_netns, start_router
from wizard.headless import run_steps
from wizard.render import Renderer


def net_answers(tmp: Path, **network: object) -> Answers:
    a = default_answers()
    a.network.tftp_root = str(tmp / "tftp")
    a.network.dnsmasq_conf = str(tmp / "etc" / "firecore.conf")
    a.network.state_dir = str(tmp / "state")
    a.network.backup_dir = str(tmp / "backups")
    a.network.dnsmasq_service = "none"
    a.network.probe_seconds = 0
    for key, value in network.items():
        setattr(a.network, key, value)
    return a


@pytest.mark.netns
def test_step_plans_then_installs_and_hands_on_a_network_result(lab: Lab, tmp_path: Path) -> None:
    a = net_answers(tmp_path)
    conf = tmp_path / "etc" / "firecore.conf"
    srv = lab.host("srv", "10.99.0.1/24")
    with in_netns(srv):
        dry = StepContext(answers=a, dry_run=True)
        planned = list(NetworkStep().run(dry))
        assert not conf.exists() and not (tmp_path / "tftp").exists()
        assert [(e.action, e.target) for e in planned if isinstance(e, Planned)] == [
            ("create", str(tmp_path / "tftp")),
            ("write", str(conf)),
        ]
        assert dry.results.get(NetworkResult) is None

        ctx = StepContext(answers=a)
        events = list(NetworkStep().run(ctx))
    result = ctx.results.get(NetworkResult)
    assert result is not None
    assert result.interface == "eth0" and result.addresses == ("10.99.0.1/24",)
    assert result.conf == conf and result.changed and result.backup is None
    assert result.service == "none" and result.pid is None
    assert "dhcp-range=tag:eth0,10.99.0.1,proxy" in conf.read_text()
    assert stat.S_IMODE((tmp_path / "tftp").stat().st_mode) == 0o755
    final = events[-1]
    assert isinstance(final, Result) and final.data["conf"] == str(conf)
    codes = {f["code"] for f in final.data["findings"]}
    assert {"probe-skipped", "dnsmasq-ok", "tftp-root-empty"} <= codes
    phases = [e.message for e in events if isinstance(e, Progress)]
    assert phases == [
        "interface",
        "preflight",
        "diff",
        "dnsmasq --test",
        "install",
        "service",
        "verify",
        "done",
    ]
    diff = [e.text for e in events if isinstance(e, LogLine) and e.stream == "stdout"]
    assert "+port=0" in diff


@pytest.mark.netns
def test_cancel_before_install_leaves_nothing_behind(lab: Lab, tmp_path: Path) -> None:
    a = net_answers(tmp_path)
    srv = lab.host("srv", "10.99.0.1/24")
    with in_netns(srv):
        ctx = StepContext(answers=a)
        seen: list[Event] = []
        with pytest.raises(Cancelled):
            for event in NetworkStep().run(ctx):
                seen.append(event)
                if isinstance(event, Progress) and event.message == "dnsmasq --test":
                    ctx.cancel.set()
    assert not (tmp_path / "etc").exists() and not (tmp_path / "tftp").exists()
    assert not any(isinstance(e, Planned) for e in seen)


@pytest.mark.netns
def test_missing_interface_names_the_key_and_the_choices(lab: Lab, tmp_path: Path) -> None:
    a = net_answers(tmp_path, interface="eth7")
    srv = lab.host("srv", "10.99.0.1/24")
    with in_netns(srv), pytest.raises(NetworkError) as err:
        list(NetworkStep().run(StepContext(answers=a)))
    assert err.value.message.startswith("network.interface: 'eth7' does not exist")
    assert "eth0" in err.value.message and err.value.fix == "set network.interface = 'eth0'"


# ---------------------------------------------------------------- systemd (no systemd here)


def shim(tmp: Path, *, state: str) -> Path:
    """Stand-ins for systemctl/journalctl: this container has no systemd to restart a unit."""
    bin_dir = tmp / "bin"
    bin_dir.mkdir()
    calls = tmp / "calls.log"
    (bin_dir / "systemctl").write_text(
        "#!/bin/sh\n"
        f'echo "systemctl $*" >> {calls}\n'
        'case "$1" in\n'
        f"  is-active) echo {state}; [ {state} = active ] ;;\n"
        "  show) echo 4321 ;;\n"
        "  *) exit 0 ;;\n"
        "esac\n"
    )
    (bin_dir / "journalctl").write_text(
        "#!/bin/sh\n"
        f'echo "journalctl $*" >> {calls}\n'
        "echo 'dnsmasq[99]: failed to create listening socket for port 67: Address in use'\n"
    )
    for f in bin_dir.iterdir():
        os.chmod(f, 0o755)
    return bin_dir


def test_systemd_restart_checks_the_unit_stays_active(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = shim(tmp_path, state="active")
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    events: list[Event] = []
    pid = drive(restart_systemd("network", settle=0.05), events.append)
    assert pid == 4321
    calls = (tmp_path / "calls.log").read_text().splitlines()
    assert calls == [
        "systemctl restart dnsmasq",
        "systemctl is-active dnsmasq",
        "systemctl show -p MainPID --value dnsmasq",
    ]
    assert any(isinstance(e, LogLine) and "is active (PID 4321)" in e.text for e in events)


def test_systemd_unit_that_dies_reports_the_journal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = shim(tmp_path, state="failed")
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    with pytest.raises(NetworkError) as err:
        drive(restart_systemd("network", settle=0.05))
    assert "dnsmasq.service is failed 0.05 s after the restart" in err.value.message
    assert "Address in use" in err.value.details
    assert "journalctl -u dnsmasq -n 30 --no-pager" in (tmp_path / "calls.log").read_text()


class _Recorder(Renderer):
    """Keeps every event it is given (and writes nothing)."""

    def __init__(self) -> None:
        super().__init__(io.StringIO(), io.StringIO())
        self.events: list[Event] = []

    def event(self, event: Event) -> None:
        self.events.append(event)


@dataclass
class _BuildSteps:
    """Stands for release … remaster: records what the network step began before them."""

    name: str = "remaster"
    title: str = "Remaster"
    seen: list[object] = field(default_factory=list)

    def run(self, ctx: StepContext) -> Iterator[Event]:
        early = ctx.results.get(EarlyChecks)
        self.seen.append(early)
        yield LogLine(self.name, "building")


@pytest.mark.netns
def test_preflight_starts_with_the_run_and_a_rerun_that_changes_nothing_probes_nothing(
    lab: Lab, tmp_path: Path
) -> None:
    # the probe may listen 60 s, but stops PROXY_SETTLE after the router's offer
    a = net_answers(tmp_path, probe_seconds=60)
    build = _BuildSteps()
    (tmp_path / "rt").mkdir()
    srv = lab.host("srv", "10.99.0.1/24")
    rt = lab.host("rt", "10.99.0.254/24")
    start_router(rt, tmp_path / "rt")
    with in_netns(srv):
        started = time.monotonic()
        first = _Recorder()
        assert run_steps([build, NetworkStep()], StepContext(answers=a), first) == 0
        took = time.monotonic() - started
        again = _Recorder()
        assert run_steps([build, NetworkStep()], StepContext(answers=a), again) == 0
    # the first run began preflight and dnsmasq --test before the build step ran
    early = build.seen[0]
    assert isinstance(early, EarlyChecks) and early.interface == "eth0"
    codes = {f["code"] for f in _findings(first.events)}
    assert {"dhcp-server", "firewall-ok", "dnsmasq-ok"} <= codes
    # stopped after the router's offer: a probe that ran to its end alone takes the 60 s, so
    # this bound is the behaviour itself, not a speed (however slow the machine)
    assert took < 60
    texts = [e.text for e in first.events if isinstance(e, LogLine)]
    assert "dnsmasq --test -C <generated config>" in texts
    # the rerun installs nothing, so it begins nothing early (no thread), sends no DISCOVER and
    # runs no program
    assert build.seen[1] is None
    codes = {f["code"] for f in _findings(again.events)}
    assert "probe-skipped" in codes and not codes & {"dhcp-server", "firewall-ok", "dnsmasq-ok"}
    texts = [e.text for e in again.events if isinstance(e, LogLine)]
    assert f"dnsmasq --test: {TESTED_AT_INSTALL}" in texts
    assert "dnsmasq --test -C <generated config>" not in texts


def _findings(events: list[Event]) -> list[dict[str, object]]:
    results = [e for e in events if isinstance(e, Result) and e.step == "network"]
    assert len(results) == 1
    return list(results[0].data["findings"])
