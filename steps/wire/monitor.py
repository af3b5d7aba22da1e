"""The packet-sequence monitor: capture records in, typed events out.

Two ways to drive it, the same engine underneath:

- ``watch(records, options)`` — a generator over a record source (``steps.wire.pcap``'s reader,
  ``steps.wire.capture.LiveCapture``, or any iterable of ``Record`` / ``None`` ticks) that yields
  every ``MonitorEvent`` as it happens and a ``SummaryEvent`` last. The CLI (``--json`` and the
  human lines) and the Diagnostics screen's worker iterate it; ``cancel`` stops it cleanly (the
  summary still comes). If the source raises a ``FirecoreError`` (a damaged capture), the events
  decided so far and the summary are yielded first, then the error is raised.
- ``Monitor`` — push-style: ``feed(record)``, ``tick(now_ns)``, ``finish()`` each return the
  events they produced, for a caller that owns its loop.

Per record: ``steps.wire.decode.Decoder`` makes the packet event (following TFTP transfers),
``steps.wire.timeline.Timeline`` updates the Pi it belongs to and decides stages and diagnoses.
Nothing per packet is kept (the decoder keeps one small entry per TFTP transfer, the timeline one
per Pi and per file), so memory stays flat however long the capture: a front end that lists
packets keeps its own ring buffer.

Timers run on capture time: replaying a file judges silences exactly as live. From a live
source (``live=True``), ``None`` ticks advance the clock by the wall time since the last frame.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

from steps.errors import FirecoreError
from steps.wire.decode import Decoder
from steps.wire.mdns import MdnsAnnouncement
from steps.wire.monitor_events import (
    ClientEvent,
    DiagnosisEvent,
    MonitorEvent,
    PacketEvent,
    StageEvent,
    SummaryEvent,
    TftpBlockEvent,
    TftpPacketEvent,
)
from steps.wire.pcap import Record
from steps.wire.timeline import Timeline, Timers

_NS = 1_000_000_000
#: Run the timers at most this often while replaying a file (capture time).
_TICK_NS = _NS // 2


class HealthChecks(Protocol):
    """Live ``/health`` checks of Pis that announced their app (run outside the monitor)."""

    def start(self, mac: str, announcement: MdnsAnnouncement, ip: str | None) -> None:
        """Begin checking one Pi (in the background)."""
        ...

    def done(self) -> list[tuple[str, bool, str]]:
        """Results since the last call: (mac, healthy, detail)."""
        ...


@dataclass
class MonitorOptions:
    """What to watch and how."""

    mac: str | None = None
    """Only this Pi: its packets, stages and diagnoses (the others are still decoded, unseen)."""
    duration: float | None = None
    """Stop after this many seconds (capture time; live: wall time)."""
    timers: Timers = field(default_factory=Timers)
    ouis: tuple[str, ...] = ()
    """Raspberry Pi MAC prefixes (assets/oui.txt): a hint for the model and for which clients
    are Pis."""
    keep_frames: bool = True
    """Attach the captured bytes to packet events (a detail/hex pane); off for speed."""
    health: HealthChecks | None = None
    """Live only: check ``/health`` of announced Pis before calling them ``app-up``."""


class Monitor:
    """The engine: records in capture order → events (see the module docstring)."""

    def __init__(self, options: MonitorOptions | None = None, *, live: bool = False) -> None:
        self.options = options or MonitorOptions()
        opts = self.options
        self.decoder = Decoder(keep_frames=opts.keep_frames)
        self.mac = opts.mac.lower() if opts.mac else None
        health = opts.health if live else None
        self.timeline = Timeline(
            opts.timers,
            opts.ouis,
            watch_mac=self.mac,
            live=live,
            health=health.start if health is not None else None,
        )
        self.health = health
        self.live = live
        self.frames = 0
        self.packets = 0
        self.first_ns: int | None = None
        self.last_ns = 0
        self._next_tick = -1
        self._out: list[MonitorEvent] = []
        self.dropped: int | None = None

    # ------------------------------------------------------------------ feeding
    def feed(self, record: Record) -> list[MonitorEvent]:
        """Decode one record (the next in capture order); the events it caused."""
        self._feed(record)
        out, self._out = self._out, []
        return out

    def _feed(self, record: Record) -> None:
        ts = record[0]
        i = self._count(ts)
        self._after(i, ts, record, self.decoder.decode(i, record))

    def _count(self, ts: int) -> int:
        """One more frame at ``ts``: its index; the clock moves (and the timers run) first."""
        i = self.frames
        self.frames = i + 1
        if ts >= self._next_tick:
            self._clock(ts)
        if ts > self.last_ns:
            self.last_ns = ts
        return i

    def _clock(self, ts: int) -> None:
        """The capture reached ``ts``: silences up to it are judged before its frame happens."""
        if self.first_ns is None:
            self.first_ns = ts
            if self.timeline.t0 is None:
                self.timeline.t0 = ts
        else:
            self.timeline.tick(ts)
        self._next_tick = ts + _TICK_NS

    def _after(self, i: int, ts: int, record: Record, pkt: PacketEvent | None) -> None:
        """Everything a decoded frame causes (``watch`` takes a shorter way for DATA/ACK)."""
        decoder = self.decoder
        timeline = self.timeline
        if pkt is not None:
            self.packets += 1
            started = decoder.started
            if type(pkt) is TftpBlockEvent:
                xfer = decoder.xfer
                if xfer is not None and xfer.owner is not None:
                    timeline.block(xfer, pkt)
            elif started is not None and type(pkt) is TftpPacketEvent:
                decoder.started = None
                timeline.packet(pkt)
                timeline.transfer_started(started, pkt)
            elif decoder.repeat is not None and type(pkt) is TftpPacketEvent:
                repeat, decoder.repeat = decoder.repeat, None
                timeline.packet(pkt)
                timeline.request_repeated(repeat, pkt)
            else:
                timeline.packet(pkt)
            if self.mac is None or pkt.mac == self.mac:
                self._out.append(pkt)  # type: ignore[arg-type]
            if decoder.finished:
                for xfer in decoder.finished:
                    timeline.transfer_ended(xfer)
                decoder.finished.clear()
        elif decoder.announcement is not None:
            ann, decoder.announcement = decoder.announcement, None
            src_mac, src_ip = decoder.announcement_src
            timeline.announcement(ann, i, ts, src_mac, src_ip)
        if timeline.out:
            self._take(timeline.out)

    def _take(self, events: list[StageEvent | DiagnosisEvent | ClientEvent]) -> None:
        mac = self.mac
        for event in events:
            if mac is None:
                self._out.append(event)
            elif isinstance(event, ClientEvent):
                if event.client.mac == mac:
                    self._out.append(event)
            elif event.mac is None or event.mac == mac:
                self._out.append(event)
        events.clear()

    def tick(self, now_ns: int) -> list[MonitorEvent]:
        """Time passed without a frame (live): run the timers up to ``now_ns``."""
        if self.health is not None:
            for mac, ok, detail in self.health.done():
                self.timeline.health_result(mac, ok, detail)
        if self.timeline.t0 is None:
            self.timeline.t0 = now_ns
        self.timeline.tick(now_ns)
        self._take(self.timeline.out)
        out, self._out = self._out, []
        return out

    def finish(self, end_ns: int | None = None) -> list[MonitorEvent]:
        """The source ended: judge what is open; the last event is the ``SummaryEvent``."""
        if self.health is not None:
            for mac, ok, detail in self.health.done():
                self.timeline.health_result(mac, ok, detail)
        self.timeline.finish(end_ns if end_ns is not None else self.last_ns or None)
        self._take(self.timeline.out)
        self._out.append(self.summary())
        out, self._out = self._out, []
        return out

    def summary(self) -> SummaryEvent:
        """Every Pi (or the ``mac`` one) as it stands, and the counters."""
        tl = self.timeline
        clients = [
            tl.snapshot(c, final=True)
            for c in tl.clients.values()
            if self.mac is None or c.mac == self.mac
        ]
        duration = (self.last_ns - self.first_ns) / _NS if self.first_ns is not None else 0.0
        return SummaryEvent(
            clients=clients,
            frames=self.frames,
            packets=self.packets,
            malformed=self.decoder.malformed,
            dropped=self.dropped,
            duration=duration,
            codes=dict(tl.code_counts),
        )


def watch(
    records: Iterable[Record | None],
    options: MonitorOptions | None = None,
    *,
    live: bool = False,
    cancel: threading.Event | None = None,
    on_record: Callable[[Record], None] | None = None,
    dropped: Callable[[], int] | None = None,
) -> Iterator[MonitorEvent]:
    """Monitor a record source, yielding events as they happen and the summary last.

    Args:
        records: capture records in order; ``None`` items are clock ticks (live sources).
        options: filters and timers.
        live: the source is live (a capture or a stream): ticks advance the clock by wall time
            and ``no-discover`` fires after ``timers.no_discover`` seconds without a Pi.
        cancel: stop when set (the summary is still yielded).
        on_record: called with every record before it is decoded (``--write``).
        dropped: live only: returns how many frames the kernel dropped, for the summary.

    Raises:
        FirecoreError: what the source raised (after the summary was yielded).
    """
    monitor = Monitor(options, live=live)
    opts = monitor.options
    limit_ns = int(opts.duration * _NS) if opts.duration is not None else None
    started = time.monotonic()
    last_arrival = started
    error: FirecoreError | None = None
    count = 0
    decoder = monitor.decoder
    decode = decoder.decode
    tally = monitor._count
    finished = decoder.finished
    timeline = monitor.timeline
    mac = monitor.mac
    snap_ns = int(opts.timers.snapshot * _NS)
    try:
        for record in records:
            if record is None:
                if cancel is not None and cancel.is_set():
                    break
                now = time.monotonic()
                if limit_ns is not None and live and now - started >= opts.duration:  # type: ignore[operator]
                    break
                if monitor.first_ns is not None:
                    yield from monitor.tick(monitor.last_ns + int((now - last_arrival) * _NS))
                elif live:
                    yield from monitor.tick(time.time_ns())
                continue
            if limit_ns is not None:
                first = monitor.first_ns if monitor.first_ns is not None else record[0]
                if record[0] - first > limit_ns:
                    break
                if live and time.monotonic() - started >= opts.duration:  # type: ignore[operator]
                    break
            if on_record is not None:
                on_record(record)
            # Monitor._feed with a short way for DATA/ACK (nearly every packet)
            ts = record[0]
            i = tally(ts)
            pkt = decode(i, record)
            if type(pkt) is TftpBlockEvent and not finished:
                monitor.packets += 1
                xfer = decoder.xfer
                owner = xfer.owner  # type: ignore[union-attr]
                if owner is not None:
                    owner.last_ns = ts
                    if ts - owner.snap_ns >= snap_ns or xfer.blocks == 2:  # type: ignore[union-attr]
                        timeline.block(xfer, pkt)  # type: ignore[arg-type]
                        if timeline.out:
                            monitor._take(timeline.out)
                if mac is None or xfer.mac == mac:  # type: ignore[union-attr]
                    yield pkt
                if monitor._out:
                    yield from monitor._out
                    monitor._out = []
            else:
                monitor._after(i, ts, record, pkt)
                if monitor._out:
                    yield from monitor._out
                    monitor._out = []
            count += 1
            if live:
                last_arrival = time.monotonic()
            # a file is read fast: look at the flag now and then; live, at every frame
            if (live or count & 1023 == 0) and cancel is not None and cancel.is_set():
                break
    except FirecoreError as exc:
        error = exc
    if dropped is not None:
        monitor.dropped = dropped()
    end = monitor.last_ns
    if live and monitor.first_ns is not None:
        end = monitor.last_ns + int((time.monotonic() - last_arrival) * _NS)
    yield from monitor.finish(end or None)
    if error is not None:
        raise error
