"""The Diagnostics screen, fed by the real monitor in its thread worker.

Every test runs ``MonitorStep`` over a capture written with the project's frame builders
(``tests/wizard/diag_support.py``) — a file, or an endless stream on a pipe as
``tcpdump -w - | firecore-wizard monitor --pcap -`` gives it — and drives the screen with the
keyboard. The same capture through ``monitor --json`` must give the same codes (headless parity);
a flood of packets must leave the keys working and the packet list holding only its ring.
Captures made in network namespaces, and a live boot, are in
tests/integration/test_diagnostics_screen_live.py.
"""

from __future__ import annotations

import gc
import json
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, OptionList, Static, TabbedContent

from steps.monitor import MonitorStep
from steps.wire.monitor import MonitorOptions, watch
from steps.wire.monitor_events import PacketEvent, SummaryEvent
from steps.wire.pcap import read_file
from tests.wizard.conftest import wait_for
from tests.wizard.diag_support import PI3, PI4, Flood, scene
from wizard.app import make_app
from wizard.cli import main
from wizard.monitor_app import MonitorApp
from wizard.widgets import monitor_text
from wizard.widgets.diagnostics_view import DiagnosticsView
from wizard.widgets.packet_list import PacketList

FLOOD = 12_000
"""Packets a flood test lets arrive before it presses keys (more than twice the ring)."""


def view_of(app: Any) -> DiagnosticsView:
    return app.screen.query_one(DiagnosticsView)  # type: ignore[no-any-return]


async def finished(pilot: Pilot[Any]) -> DiagnosticsView:
    """Wait until the monitor read the whole capture and the view drew its last batch."""
    await wait_for(
        pilot, lambda: pilot.app.screen.query(DiagnosticsView) and view_of(pilot.app).ended, 120
    )
    await pilot.pause()
    return view_of(pilot.app)


def json_lines(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, list[dict[str, Any]]]:
    code = main(["monitor", "--json", "--pcap", str(path)])
    out = capsys.readouterr().out
    return code, [json.loads(line) for line in out.splitlines()]


async def test_the_screen_names_the_same_codes_as_monitor_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = scene(tmp_path)
    code, lines = json_lines(path, capsys)
    app = MonitorApp(MonitorStep(pcap=path))
    async with app.run_test(size=(120, 40)) as pilot:
        view = await finished(pilot)
        shown = [(d.code, d.severity, d.mac, d.evidence, d.message) for d in view.diagnoses]
        stages = [(s.mac, s.stage, s.since_power_on) for s in view.stages]
        packets, clients = view.packets, dict(view.clients)
        await pilot.press("q")
    assert shown == [
        (x["code"], x["severity"], x.get("mac"), x["evidence"], x["message"])
        for x in lines
        if x["type"] == "diagnosis"
    ]
    assert [c for c, *_ in shown] == ["tftp-file-not-found"]
    assert stages == [
        (x["mac"], x["stage"], x["since_power_on"]) for x in lines if x["type"] == "stage"
    ]
    assert packets == sum(1 for x in lines if x["type"] == "packet")
    (summary,) = [x for x in lines if x["type"] == "summary"]
    assert {c["mac"]: c["stage"] for c in summary["clients"]} == {
        mac: c.stage for mac, c in clients.items()
    }
    assert app.return_code == code == 1  # the same verdict


async def test_clients_timeline_diagnosis_and_its_evidence(tmp_path: Path) -> None:
    app = MonitorApp(MonitorStep(pcap=scene(tmp_path)))
    async with app.run_test(size=(120, 40)) as pilot:
        view = await finished(pilot)
        assert gc.get_freeze_count() == 0  # the stream ended: the collector has it all again
        table = app.screen.query_one("#clients", DataTable)
        assert [str(k.value) for k in table.rows] == [PI3.mac, PI4.mac]
        row = [str(c) for c in table.get_row(PI3.mac)]
        assert row[:4] == [PI3.mac, "Pi 3", PI3.serial, "app-up"] and row[5] == PI3.ip
        assert [str(c) for c in table.get_row(PI4.mac)][1:4] == ["Pi 4", PI4.serial, "config"]
        # the first Pi's timeline: the boot in one line, with the times the monitor measured
        pi3 = view.clients[PI3.mac]
        text = str(app.screen.query_one("#timeline", Static).render())
        assert monitor_text.headline(pi3) in text
        assert f"app up {monitor_text.seconds(pi3.stages['app-up'])}" in text
        assert 20 < pi3.stages["app-up"] < 30 and 1 < pi3.stages["firmware"] < 2
        # ↓ selects the Pi 4: its timeline, the missing file marked
        await pilot.press("down")
        await wait_for(pilot, lambda: view.selected == PI4.mac)
        text = str(app.screen.query_one("#timeline", Static).render())
        assert f"Timeline of {PI4.mac}" in str(app.screen.query_one("#timeline-box").border_title)
        assert "✕ start4.elf" in text and "○ kernel" in text
        # Enter on the diagnosis: the Packets tab, on its first evidence packet, decoded + hex
        (diag,) = view.diagnoses
        options = app.screen.query_one("#diagnoses", OptionList)
        options.focus()
        options.highlighted = 0
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.screen.query_one(TabbedContent).active == "packets")
        packets = app.screen.query_one(PacketList)
        assert packets.current is not None and packets.current.i == diag.evidence[0]
        detail = str(app.screen.query_one("#detail", Static).render())
        assert "TFTP RRQ start4.elf" in detail and "\n0000  " in detail


async def test_pause_filter_and_save_to_pcap(tmp_path: Path) -> None:
    app = MonitorApp(MonitorStep(pcap=scene(tmp_path)), save_dir=tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        view = await finished(pilot)
        packets = app.screen.query_one(PacketList)
        everything = len(packets.rows)
        assert everything == view.packets
        await pilot.press("2")
        assert app.screen.query_one(TabbedContent).active == "packets"
        await pilot.press("f")  # only the selected Pi (the first, the Pi 3)
        assert {p.mac for p in packets.rows} == {PI3.mac}
        assert 0 < len(packets.rows) < everything
        await pilot.press("f")
        assert len(packets.rows) == everything
        await pilot.press("p")
        assert view.paused and packets.paused
        assert "PAUSED" in str(app.screen.query_one("#diag-state", Static).render())
        await pilot.press("p")
        assert not view.paused
        # save what is shown (only the Pi 4's packets) and read it back
        await pilot.press("1", "down", "2", "f")
        assert {p.mac for p in packets.rows} == {PI4.mac}
        await pilot.press("w")
        await wait_for(pilot, lambda: app.screen.query("#path"))
        target = tmp_path / "pi4.pcap"
        app.screen.query_one("#path", Input).value = str(target)
        await pilot.press("enter")
        await wait_for(pilot, target.exists)
        shown = [p.to_json() for p in packets.rows]
    again = [e for e in watch(read_file(target), MonitorOptions()) if isinstance(e, PacketEvent)]
    assert len(again) == len(shown) > 10
    same = ("proto", "src_mac", "dst_mac", "src_port", "dst_port", "msg_type", "opcode", "file")
    assert [{k: p.get(k) for k in same} for p in shown] == [
        {k: e.to_json().get(k) for k in same} for e in again
    ]


async def test_a_flood_keeps_keys_working_and_only_the_ring_in_the_list() -> None:
    with Flood() as flood:
        step = MonitorStep(pcap="-", stdin=flood.stream)
        app = MonitorApp(step)
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_for(pilot, lambda: app.screen.query(PacketList))  # composed by the view
            view = view_of(app)
            packets = app.screen.query_one(PacketList)
            await wait_for(pilot, lambda: view.packets >= FLOOD, 300)
            # keys are handled while the packets keep coming
            await pilot.press("2")
            assert app.screen.query_one(TabbedContent).active == "packets"
            await pilot.press("p")
            assert view.paused
            frozen, newest = len(packets.rows), packets.rows[-1].i
            # counted once the screen is built and its tabs shown (a starved machine is still
            # composing them after the first packets): thousands of packets later it is the same
            widgets = len(list(app.screen.walk_children()))
            seen = view.packets
            await wait_for(pilot, lambda: view.packets > seen + 2000, 300)
            assert view.running and view.ended is None
            # while it streams, what the app held before is out of the collector's full sweeps
            assert gc.get_freeze_count() > 0
            assert (len(packets.rows), packets.rows[-1].i) == (frozen, newest)
            await pilot.press("p")
            assert not view.paused and packets.rows[-1].i > newest
            seen = view.packets
            await wait_for(pilot, lambda: view.packets > seen + 2000, 300)
            # the list holds its ring, never one widget or row per packet
            assert len(packets.packets) == len(packets.rows) == packets.packets.size
            assert packets.packets.total == view.packets > 2 * packets.packets.size
            assert len(list(app.screen.walk_children())) == widgets
            assert flood.rounds >= 1
            await pilot.press("q")
    assert gc.get_freeze_count() == 0  # given back when the view went away


async def test_a_capture_that_is_not_one_closes_with_its_message(tmp_path: Path) -> None:
    bad = tmp_path / "notes.txt"
    bad.write_text("not a capture at all\n" * 10)
    app = MonitorApp(MonitorStep(pcap=bad))
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.error is not None, 60)
    assert app.return_code == 2 and app.error is not None
    assert "not a pcap" in app.error.message or "capture" in app.error.message


async def test_the_wizard_opens_it_after_status_and_goes_on_to_summary(tmp_path: Path) -> None:
    from tests.wizard.fakes import FakeServices

    app = make_app(
        steps=[MonitorStep(pcap=scene(tmp_path))], services=FakeServices(), start="status"
    )
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.screen.query("#nav"))
        await pilot.press("ctrl+n")
        await wait_for(pilot, lambda: app.current == "diagnostics")
        view = await finished(pilot)
        assert [d.code for d in view.diagnoses] == ["tftp-file-not-found"]
        assert isinstance(view.summary, SummaryEvent)
        await pilot.press("ctrl+n")
        await wait_for(pilot, lambda: app.current == "summary")
