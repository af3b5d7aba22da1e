"""The Diagnostics screen's body: the packet monitor's events, drawn as they arrive.

Shared by the wizard's Diagnostics screen and ``firecore-wizard monitor`` on a terminal. The
monitor (``steps.monitor.MonitorStep.watch``) runs in a thread worker started by the
``StepRunner`` (``stream``): the thread only queues events, and this view takes them in batches
(``Streamed``, at most every ``DRAIN_GAP``), so however many packets a second arrive the main
thread draws once per batch and key presses are handled in between. Per batch: packets go to the
ring of the packet list (``PacketList``: never one widget per packet), only the last snapshot
of each Pi reaches the clients table, diagnoses are appended to their list.

Layout: a state line (source, counts, the verdict so far), then two tabs — *Boot* (the clients
table, the diagnoses with their fixes, the selected Pi's timeline) and *Packets* (the list and
the highlighted packet's fields and bytes). Below 100 columns the diagnoses and the timeline
stack instead of standing side by side.
"""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Container, Vertical, VerticalScroll
from textual.timer import Timer
from textual.widgets import DataTable, OptionList, Static, TabbedContent, TabPane
from textual.widgets.option_list import Option

from steps.events import LogLine
from steps.monitor import MonitorStep
from steps.wire.monitor_events import (
    ClientEvent,
    ClientSnapshot,
    DiagnosisEvent,
    MonitorEvent,
    PacketEvent,
    StageEvent,
    SummaryEvent,
)
from wizard.messages import Loaded, LoadFailed, Streamed, StreamEnded
from wizard.widgets import monitor_text
from wizard.widgets.packet_list import RING_SIZE, PacketList
from wizard.widgets.step_runner import StepRunner

#: The view's keys, for the help of the screens that show it (they add their own rows).
KEYS_HELP = """\
| key | does |
|---|---|
| 1 / 2 | the Boot tab / the Packets tab |
| ↑ ↓ | choose a Pi (Boot) or a packet (Packets); End follows the newest again |
| Enter on a diagnosis | its Pi, and its first evidence packet |
| F5 or p | pause / resume the packet list (the monitor keeps diagnosing) |
| F6 or f | only the selected Pi's packets / all |
| F7 or w | save the packets shown to a pcap file (Wireshark opens it) |
"""

#: Shortest time between two batches of the monitor's events drawn (seconds): the runner hands
#: them over every 50 ms; drawing every 100 ms halves the screen's redraws under a flood and
#: leaves the main thread (and the monitor's thread, which shares the interpreter) more time.
FRAME_GAP = 0.1

#: Shortest time between two redraws of the clients table and the timeline (seconds): Pis'
#: snapshots can come faster than anyone reads them (a file replays at full speed), and each
#: redraw of these panes costs more than a batch of packets.
PANES_GAP = 0.2

#: Column keys of the clients table, in order, with their headings and widths: fixed, so rows
#: never jitter as stages and bars change; what a narrow screen cuts (the address) matters least
#: while a Pi boots.
COLUMNS = (
    ("mac", "Pi (MAC)", 17),
    ("model", "model", 6),
    ("serial", "serial", 8),
    ("stage", "stage", 13),
    ("file", "current file", 22),
    ("ip", "IP", 15),
)


def source_label(step: MonitorStep) -> str:
    """What the state line calls a monitor's source: ``live on eth0``, ``live on
    router:br-lan`` (over ssh), ``stdin``, ``boot.pcap``."""
    if step.interface is not None and step.ssh is not None:
        return f"live on {step.ssh.target.host}:{step.interface}"
    if step.interface is not None:
        return f"live on {step.interface}"
    return "stdin" if step.pcap == "-" else Path(step.pcap or "").name


class MonitorSource(Protocol):
    """What the view watches: ``MonitorStep`` (or anything yielding its events)."""

    def watch(self, cancel: threading.Event | None = None) -> Iterator[MonitorEvent | LogLine]:
        """The monitor's events, the ``SummaryEvent`` last."""
        ...


def _hold_heap(hold: bool) -> None:
    """While a stream runs, keep the cyclic garbage collector off everything that was there
    before it (``gc.freeze``), and give it back after (``gc.unfreeze``).

    A flood brings tens of thousands of packet events a minute; their allocations trigger
    collections, and every full one would walk the whole app again (its DOM, styles, modules):
    15 % of the screen's CPU per packet in ``bench/diagnostics_screen.py``. Garbage is collected
    before freezing, so none is kept; what dies while frozen is freed by reference counting,
    or by the collector once unfrozen.
    """
    if hold:
        gc.collect()
        gc.freeze()
    else:
        gc.unfreeze()


class DiagnosticsView(Vertical):
    """Clients, timeline, diagnoses and packets of one monitor run (see the module docstring)."""

    DEFAULT_CSS = """
    DiagnosticsView { height: 1fr; }
    DiagnosticsView #diag-state {
        height: 1; padding: 0 1; background: $panel; text-wrap: nowrap; text-overflow: ellipsis;
    }
    DiagnosticsView #diag-state.-bad { color: $text-error; }
    DiagnosticsView #diag-tabs { height: 1fr; }
    DiagnosticsView #diag-tabs > ContentSwitcher { height: 1fr; }
    DiagnosticsView TabPane { height: 1fr; padding: 0; }
    DiagnosticsView #waiting { height: auto; padding: 0 1; color: $text-warning; }
    DiagnosticsView #clients { height: auto; max-height: 7; }
    DiagnosticsView #boot-panes { layout: horizontal; height: 1fr; }
    DiagnosticsView.-stacked #boot-panes { layout: vertical; }
    DiagnosticsView.-stacked #diagnoses { height: auto; max-height: 60%; min-height: 4; }
    DiagnosticsView.-stacked #timeline-box { min-height: 4; }
    /* narrow: the columns past the stage are cut (the timeline shows the file being read) */
    DiagnosticsView.-stacked #clients { scrollbar-size-horizontal: 0; }
    DiagnosticsView #diagnoses, DiagnosticsView #timeline-box {
        width: 1fr; height: 1fr; border: round $foreground 30%;
    }
    DiagnosticsView #diagnoses:focus, DiagnosticsView #timeline-box:focus {
        border: round $accent;
    }
    DiagnosticsView #timeline { padding: 0 1; }
    DiagnosticsView #detail-box {
        height: 45%; min-height: 5; border: round $foreground 30%;
    }
    DiagnosticsView #detail { padding: 0 1; }
    """

    BINDINGS = [
        Binding("f5,p", "pause", "Pause"),
        Binding("f6,f", "filter", "This Pi only"),
        Binding("f7,w", "save", "Save pcap"),
        Binding("1", "tab('boot')", "Boot", show=False),
        Binding("2", "tab('packets')", "Packets", show=False),
    ]

    def __init__(
        self,
        source: MonitorSource | None = None,
        *,
        label: str = "",
        ring: int = RING_SIZE,
        save_dir: Path | None = None,
        id: str | None = None,
    ) -> None:
        super().__init__(id=id)
        self._source = source
        self.label = label
        """What is watched ("live on eth0", "boot.pcap")."""
        self._ring = ring
        self._save_dir = save_dir or Path.cwd()
        self._sid = 0
        self.clients: dict[str, ClientSnapshot] = {}
        """The newest snapshot of each Pi, in order of appearance."""
        self.diagnoses: list[DiagnosisEvent] = []
        self.stages: list[StageEvent] = []
        self.summary: SummaryEvent | None = None
        self.packets = 0
        """Packet events received (the list keeps only the newest ``ring``)."""
        self.selected: str | None = None
        """The Pi whose timeline is shown."""
        self._cells: dict[str, tuple[object, ...]] = {}
        self._boot_start: dict[str, tuple[int, int]] = {}
        """Pi → (its latest boot, the index of that boot's first packet)."""
        self._panes_due: Timer | None = None
        self._shown: dict[str, tuple[str, bool]] = {}
        self._timeline_shape = (0, 0)
        self._pending: list[Any] = []
        """Events streamed but not drawn yet (taken at most every ``FRAME_GAP``)."""
        self._consume_due: Timer | None = None
        self._consumed_at = 0.0
        self._dirty: dict[str, ClientSnapshot] = {}
        """Snapshots not drawn yet (the panes are redrawn at most every ``PANES_GAP``)."""
        self.running = False
        self.ended: StreamEnded | None = None
        self.notice = ""
        self.paused = False
        self.filtered = False

    # ------------------------------------------------------------------ layout
    def compose(self) -> ComposeResult:
        yield Static("", id="diag-state", markup=False)
        with TabbedContent(id="diag-tabs", initial="boot"):
            with TabPane("Boot [1]", id="boot"):
                yield Static("", id="waiting", markup=False)
                table: DataTable[Any] = DataTable(id="clients", cursor_type="row")
                yield table
                with Container(id="boot-panes"):
                    yield OptionList(id="diagnoses")
                    with VerticalScroll(id="timeline-box"):
                        yield Static("", id="timeline", markup=False)
            with TabPane("Packets [2]", id="packets"):
                yield PacketList(size=self._ring, id="packet-list")
                with VerticalScroll(id="detail-box"):
                    yield Static("", id="detail", markup=False)
        yield StepRunner(clock=lambda: 0.0, visible=False, id="monitor-runner")

    def on_mount(self) -> None:
        table = self.query_one("#clients", DataTable)
        for key, heading, width in COLUMNS:
            table.add_column(heading, key=key, width=width)
        self.query_one("#diagnoses", OptionList).border_title = "Diagnoses"
        self.query_one("#timeline-box").border_title = "Timeline"
        self.query_one("#detail-box").border_title = "Packet"
        self._show_diagnoses_empty()
        table.focus()
        if self._source is not None:
            self.watch_source(self._source, self.label)
        else:
            self._state()

    def on_unmount(self) -> None:
        _hold_heap(False)

    def on_resize(self) -> None:
        self.set_class(self.size.width < 100, "-stacked")

    # ------------------------------------------------------------------ running
    def watch_source(self, source: MonitorSource, label: str) -> None:
        """Start watching ``source`` (a previous run is cancelled and its results cleared)."""
        self._source = source
        self.label = label
        self.clients.clear()
        self.diagnoses.clear()
        self.stages.clear()
        self.summary = None
        self.packets = 0
        self.selected = None
        self.ended = None
        self.notice = ""
        self.query_one("#clients", DataTable).clear()
        self._cells.clear()
        self._boot_start.clear()
        self._dirty.clear()
        self.query_one("#diagnoses", OptionList).clear_options()
        self._show_diagnoses_empty()
        self.query_one("#timeline", Static).update("")
        self.query_one(PacketList).clear()
        self._pending = []
        self.running = True
        _hold_heap(True)
        self._sid = self.query_one(StepRunner).stream("monitor", source.watch)
        self._state()

    def stop(self) -> None:
        """Stop watching (the worker sees its cancel flag at the monitor's next check)."""
        runner = self.query_one(StepRunner)
        runner.workers.cancel_group(runner, "stream:monitor")

    @property
    def errors(self) -> int:
        """Error-severity diagnoses so far (the command's exit code is 1 when any)."""
        return sum(1 for d in self.diagnoses if d.severity == "error")

    @on(Streamed)
    def _streamed(self, message: Streamed) -> None:
        message.stop()
        if message.stream != self._sid:
            return  # a run that was replaced
        self._pending.extend(message.items)
        if self._consume_due is None:
            wait = self._consumed_at + FRAME_GAP - time.perf_counter()
            if wait > 0:
                self._consume_due = self.set_timer(wait, self._consume)
            else:
                self._consume()

    def _consume(self) -> None:
        """Take what arrived since the last time, as one batch: one redraw however many."""
        if self._consume_due is not None:
            self._consume_due.stop()
            self._consume_due = None
        self._consumed_at = time.perf_counter()
        items, self._pending = self._pending, []
        packets: list[PacketEvent] = []
        changed: dict[str, ClientSnapshot] = {}
        found: list[DiagnosisEvent] = []
        for event in items:
            if isinstance(event, PacketEvent):
                packets.append(event)
            elif isinstance(event, ClientEvent):
                changed[event.client.mac] = event.client
            elif isinstance(event, StageEvent):
                self.stages.append(event)
                boot = self._boot_start.get(event.mac)
                if event.i is not None and (boot is None or event.boot > boot[0]):
                    self._boot_start[event.mac] = (event.boot, event.i)
            elif isinstance(event, DiagnosisEvent):
                found.append(event)
            elif isinstance(event, SummaryEvent):
                self.summary = event
                for client in event.clients:
                    changed[client.mac] = client
            elif isinstance(event, LogLine):
                self.notice = event.text
                if event.stream == "warning":
                    self.notify(event.text, severity="warning")
        self.packets += len(packets)
        self.query_one(PacketList).add(packets)
        if changed:
            self.clients.update(changed)
            self._dirty.update(changed)
            if self.selected is None:
                self.selected = next(iter(self.clients))
            # a new Pi shows at once; changes of known ones a few times a second at most
            self._draw_panes(soon=all(mac in self._cells for mac in changed))
        if found:
            self._add_diagnoses(found)
        self._state()

    @on(StreamEnded)
    def _ended(self, message: StreamEnded) -> None:
        # not stopped: the standalone app closes on a source that could not be opened
        if message.stream != self._sid:
            return
        self._consume()  # what came before the end
        self.running = False
        _hold_heap(False)
        self.ended = message
        self._draw_panes()  # the final snapshots, now
        if message.error is not None:
            self.notify(
                message.error.message + (f"\n{message.error.fix}" if message.error.fix else ""),
                title=message.error.title,
                severity="error",
                timeout=15,
            )
        self._state()

    # ------------------------------------------------------------------ drawing
    def _state(self) -> None:
        """The one line always on screen: source, counts and the verdict so far."""
        errors = self.errors
        warnings = sum(1 for d in self.diagnoses if d.severity == "warning")
        if self.running:
            head = "● " + self.label
        elif self.ended is not None and self.ended.error is not None:
            head = f"✕ {self.label}: {self.ended.error.message}"
        elif self.ended is not None:
            head = "■ " + self.label + (" (stopped)" if self.ended.cancelled else " (finished)")
        else:
            head = "○ not watching"
        verdict: list[str] = []
        if errors:
            first = next(d.code for d in self.diagnoses if d.severity == "error")
            verdict.append(f"✕ {errors} error{'s' if errors > 1 else ''}: {first}")
        elif self.clients and not self.running and self.ended is not None:
            verdict.append("✓ no error")
        if warnings:
            verdict.append(f"▲ {warnings} warning{'s' if warnings > 1 else ''}")
        # the verdict first: it must stay readable however narrow the terminal
        if self.paused:
            verdict.append("PAUSED")
        parts = [*verdict, head, f"{len(self.clients)} Pi(s)", f"{self.packets:,} packets"]
        bad = bool(errors) or (self.ended is not None and self.ended.error is not None)
        # touch widgets only when what they show changed: a style change costs a CSS pass
        self._put("#diag-state", " · ".join(parts), bad=bad)
        if self.clients:
            text = ""
        elif self.running:
            text = (
                f"Watching {self.label}: power on your Pi now. A Pi 4 or 5 asks for an address "
                "about 3 s after power-on, a Pi 3's boot ROM after 5–10 s."
            )
        elif self.ended is not None and self.ended.error is not None:
            error = self.ended.error
            text = error.message + (f"\nfix: {error.fix}" if error.fix else "")
        else:
            text = "No Pi in this capture." if self.ended else "Not watching."
        self._put("#waiting", text)

    def _put(self, selector: str, text: str, *, bad: bool = False) -> None:
        """Show ``text`` in a one-line Static (hidden when empty) if it is not shown already."""
        if self._shown.get(selector) == (text, bad):
            return
        self._shown[selector] = (text, bad)
        widget = self.query_one(selector, Static)
        widget.display = bool(text)
        widget.set_class(bad, "-bad")
        widget.update(text, layout=selector != "#diag-state")  # the state line is one line

    def _draw_panes(self, *, soon: bool = False) -> None:
        """Draw the snapshots not drawn yet (``soon``: within ``PANES_GAP``, not now)."""
        if soon:
            if self._panes_due is None:
                self._panes_due = self.set_timer(PANES_GAP, self._draw_panes)
            return
        if self._panes_due is not None:
            self._panes_due.stop()
            self._panes_due = None
        dirty, self._dirty = self._dirty, {}
        table = self.query_one("#clients", DataTable)
        for mac, client in dirty.items():
            cells = monitor_text.client_cells(client)
            shown = self._cells.get(mac)
            if shown is None:
                table.add_row(*cells, key=mac)
            else:
                for (key, _, _), old, new in zip(COLUMNS, shown, cells, strict=True):
                    if str(old) != str(new):
                        table.update_cell(mac, key, new)
            self._cells[mac] = cells
        if self.selected in dirty:
            self._show_timeline()

    def _show_timeline(self) -> None:
        client = self.clients.get(self.selected or "")
        box = self.query_one("#timeline-box")
        if client is None:
            self.query_one("#timeline", Static).update("")
            box.border_title = "Timeline"
            return
        box.border_title = f"Timeline of {client.mac}"
        flagged = {d.file for d in self.diagnoses if d.mac == client.mac and d.file}
        boot = self._boot_start.get(client.mac)
        since = boot[1] if boot is not None and boot[0] == client.boots else None
        text = monitor_text.timeline(client, flagged, since)
        lines = text.plain.splitlines()
        shape = (len(lines), max((len(line) for line in lines), default=0))
        # a layout pass only when the text's size changed (bytes of a running file do not)
        self.query_one("#timeline", Static).update(text, layout=shape != self._timeline_shape)
        self._timeline_shape = shape

    def _add_diagnoses(self, found: list[DiagnosisEvent]) -> None:
        options = self.query_one("#diagnoses", OptionList)
        if not self.diagnoses:
            options.clear_options()
        start = len(self.diagnoses)
        self.diagnoses.extend(found)
        options.add_options(
            Option(monitor_text.diagnosis(d), id=f"d{start + n}") for n, d in enumerate(found)
        )
        options.border_title = f"Diagnoses ({len(self.diagnoses)})"
        selected = self.clients.get(self.selected or "")
        if selected is not None and any(d.mac == selected.mac for d in found):
            self._dirty[selected.mac] = selected  # its timeline marks the file named
            self._draw_panes(soon=True)

    def _show_diagnoses_empty(self) -> None:
        empty = Text("No diagnosis yet: a healthy boot raises none.", style="dim")
        self.query_one("#diagnoses", OptionList).add_option(Option(empty, disabled=True))

    # ------------------------------------------------------------------ interaction
    @on(DataTable.RowHighlighted, "#clients")
    def _pi_highlighted(self, event: DataTable.RowHighlighted) -> None:
        mac = event.row_key.value
        if mac is not None and mac != self.selected:
            self.selected = mac
            self._show_timeline()
            if self.filtered:
                self._apply_filter()

    @on(PacketList.Highlighted)
    def _packet_highlighted(self, event: PacketList.Highlighted) -> None:
        event.stop()
        detail = self.query_one("#detail", Static)
        detail.update(monitor_text.packet_detail(event.packet) if event.packet else "")

    @on(OptionList.OptionSelected, "#diagnoses")
    def _diagnosis_chosen(self, event: OptionList.OptionSelected) -> None:
        """Enter on a diagnosis: its Pi's timeline, and its first evidence packet."""
        option_id = event.option.id or ""
        if not option_id.startswith("d"):
            return
        d = self.diagnoses[int(option_id[1:])]
        if d.mac in self.clients:
            table = self.query_one("#clients", DataTable)
            table.move_cursor(row=table.get_row_index(d.mac))
        if not d.evidence:
            return
        packets = self.query_one(PacketList)
        if self.paused:
            self.action_pause()
        if not packets.select_index(d.evidence[0]) and self.filtered:
            self.action_filter()
            packets.select_index(d.evidence[0])
        if packets.current is None or packets.current.i != d.evidence[0]:
            self.notify(
                f"packet {d.evidence[0]} is no longer in the list (it keeps the newest "
                f"{packets.packets.size:,}); in Wireshark: frame.number == {d.evidence[0] + 1}",
                severity="warning",
            )
            return
        self.action_tab("packets")
        packets.focus()

    def action_tab(self, tab: str) -> None:
        """1 / 2: the Boot or the Packets tab."""
        self.query_one("#diag-tabs", TabbedContent).active = tab
        target = "#clients" if tab == "boot" else "#packet-list"
        self.query_one(target).focus()

    def action_pause(self) -> None:
        """Freeze the packet list (the monitor keeps watching and diagnosing) / resume."""
        self.paused = not self.paused
        self.query_one(PacketList).set_paused(self.paused)
        self._state()

    def action_filter(self) -> None:
        """Show only the selected Pi's packets / all packets."""
        if not self.filtered and self.selected is None:
            self.notify("No Pi yet: the filter shows one Pi's packets", severity="warning")
            return
        self.filtered = not self.filtered
        self._apply_filter()

    def _apply_filter(self) -> None:
        packets = self.query_one(PacketList)
        if not self.filtered:
            packets.set_filter(None)
            return
        mac = self.selected
        packets.set_filter(lambda p: p.mac == mac)

    def action_save(self) -> None:
        """Write the packets the list shows to a pcap file (asks where)."""
        from wizard.screens.path_modal import PathModal

        rows = self.query_one(PacketList).rows
        if not len(rows):
            self.notify("No packets to save yet", severity="warning")
            return
        default = self._save_dir / "firecore-monitor.pcap"
        title = f"Save the {len(rows):,} packets shown (pcap, or .pcapng)"
        self.app.push_screen(PathModal(title, "File", str(default), "Save"), self.save_to)

    def save_to(self, path: Path | None) -> None:
        """Write the rows shown to ``path`` in a worker (``Loaded("save", count)``)."""
        if path is None:
            return
        from steps.wire.pcap import write_records

        records = [
            (p.ts_ns, p.linktype, p.frame, len(p.frame))
            for p in self.query_one(PacketList).rows
            if p.frame
        ]
        self.query_one(StepRunner).load("save", lambda cancel: (path, write_records(path, records)))

    @on(Loaded)
    def _saved(self, message: Loaded) -> None:
        if message.key == "save":
            message.stop()
            path, count = message.value
            self.notify(f"Wrote {count:,} packets to {path}", title="Saved")

    @on(LoadFailed)
    def _save_failed(self, message: LoadFailed) -> None:
        if message.key == "save":
            message.stop()
            self.notify(message.error.message, title=message.error.title, severity="error")
