"""The Diagnostics screen on real traffic: a capture made in a namespace lab, and a live boot.

``NetbootLan`` (tests/support/captures.py, on ``tests.support.lab``) is a home router with plain
DHCP, our proxy-DHCP + TFTP dnsmasq and a Pi namespace where the virtual Pi boots. First the
screen reads a capture tcpdump took there (a Pi 4 whose overlay.gz is missing) and must name the
same codes and stages as ``monitor --json`` on that file. Then the wizard's Diagnostics screen
captures live on the server's eth0 — in the server's namespace, as it runs on a boot server —
while a virtual Pi 3 boots, brings Linux up and starts the real app: each stage must appear on
the screen while the Pi is still booting, up to ``app-up`` (its ``/health`` answered).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import DataTable

from steps.events import LogLine
from steps.monitor import MonitorStep
from steps.wire.monitor_events import MonitorEvent
from tests.conftest import needs_root
from tests.support.captures import NetbootLan, monitor_json
from tests.support.lab import Host
from tests.support.netboot_lab import in_netns
from tests.wizard.conftest import wait_for
from tests.wizard.fakes import FakeServices
from wizard.app import make_app
from wizard.monitor_app import MonitorApp
from wizard.widgets.diagnostics_view import DiagnosticsView

pytestmark = pytest.mark.netns

PI3_MAC = "b8:27:eb:1f:7e:57"  # the virtual Pi 3 of serial 5e1f7e57


class MonitorIn(MonitorStep):
    """The real monitor, its capture socket (and its /health checks) in a lab host's namespace."""

    def __init__(self, host: Host, **kw: Any) -> None:
        super().__init__(**kw)
        self.host = host

    def watch(self, cancel: threading.Event | None = None) -> Iterator[MonitorEvent | LogLine]:
        with in_netns(self.host):
            yield from super().watch(cancel)


def view_of(app: Any) -> DiagnosticsView:
    return app.screen.query_one(DiagnosticsView)  # type: ignore[no-any-return]


async def test_a_capture_from_the_lab_shows_what_monitor_json_says(tmp_path: Path) -> None:
    needs_root()
    with NetbootLan(tmp_path) as lan:
        (lan.tree / "overlay.gz").unlink()
        with lan.capture("pi4-no-overlay") as pcap:
            assert not lan.boot("pi4").ok
    rc, lines = monitor_json(pcap)
    app = MonitorApp(MonitorStep(pcap=pcap))
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.screen.query(DiagnosticsView) and view_of(app).ended, 120)
        view = view_of(app)
        shown = [(d.code, d.severity, d.mac, d.evidence) for d in view.diagnoses]
        stages = [(s.mac, s.stage) for s in view.stages]
        rows = app.screen.query_one("#clients", DataTable).row_count
        await pilot.press("q")
    assert shown == [
        (x["code"], x["severity"], x.get("mac"), x["evidence"])
        for x in lines
        if x["type"] == "diagnosis"
    ]
    assert [c for c, s, *_ in shown if s == "error"] == ["initramfs-missing"]
    assert stages == [(x["mac"], x["stage"]) for x in lines if x["type"] == "stage"]
    (summary,) = [x for x in lines if x["type"] == "summary"]
    assert rows == len(summary["clients"]) == 1
    assert app.return_value == rc == 1


async def test_the_wizard_screen_watches_a_virtual_pi_boot_to_its_app(tmp_path: Path) -> None:
    needs_root()
    with NetbootLan(tmp_path, pi_mac=PI3_MAC) as lan:
        step = MonitorIn(lan.srv, interface="eth0")
        app = make_app(steps=[step], services=FakeServices(), start="diagnostics")
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_for(pilot, lambda: app.screen.query(DiagnosticsView), 60)
            view = view_of(app)
            await wait_for(pilot, lambda: view.notice.startswith("capturing"), 60)
            assert "power on your Pi now" in str(app.screen.query_one("#waiting").render())
            seen_during_boot: list[str] = []

            def boot() -> str:
                report = lan.boot("pi3")
                assert report.ok, report.stages[-1]
                # the screen already showed the boot before Linux asked for its address
                deadline = time.monotonic() + 120
                # (start.elf may read the initramfs before the kernel: wait for both)
                while not {"kernel", "initramfs"} <= {s.stage for s in view.stages}:
                    assert time.monotonic() < deadline, [s.stage for s in view.stages]
                    time.sleep(0.05)
                seen_during_boot.extend(s.stage for s in view.stages)
                lan.linux_up(report.ip or "", service=True)
                return report.ip or ""

            ip = await asyncio.to_thread(boot)
            await wait_for(pilot, lambda: view.clients[PI3_MAC].stage == "app-up", 180)
            # the timeline is redrawn a few times a second at most
            await wait_for(
                pilot, lambda: "✓ app-up" in str(app.screen.query_one("#timeline").render())
            )
            client = view.clients[PI3_MAC]
            table = app.screen.query_one("#clients", DataTable)
            stage_cell = str(table.get_cell(PI3_MAC, "stage"))
            diagnoses = [(d.code, d.severity) for d in view.diagnoses]
            timeline = str(app.screen.query_one("#timeline").render())
            order = [s.stage for s in view.stages if s.mac == PI3_MAC]
            view.stop()
    assert {"discover", "firmware", "config", "kernel", "initramfs"} <= set(seen_during_boot)
    assert "os-dhcp" not in seen_during_boot and "app-up" not in seen_during_boot
    assert order[-2:] == ["os-dhcp", "app-up"] and order[0] == "discover"
    assert (client.model, client.serial, client.ip) == ("pi3", "5e1f7e57", ip)
    assert stage_cell == "app-up"
    assert [d for d in diagnoses if d[1] != "info"] == []
    assert "app up" in timeline and "✓ app-up" in timeline
