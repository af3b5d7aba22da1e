"""Diagnostics screen under a flood: what drawing the packets costs against the bare monitor.

The same pcap stream on a pipe (``--pcap -``: good boots of six Pi 4s, repeated 12 times,
~51,000 packets) is read by the bare monitor (``MonitorStep.watch``, counting packet events)
and through the ``monitor`` screen (``MonitorApp`` headless, 120×40, every packet into the
ring, the clients and diagnoses drawn), three times each, alternating; the rounds with the
median cost per packet are compared. Both are measured in CPU seconds
(``time.thread_time`` of every thread that works: the monitor's, and for the screen the main
thread too), because on a shared machine the wall clock mostly measures the other tenants; one
interpreter runs the two threads one at a time, so the CPU seconds per packet bound what the
screen can take. Then, while an endless stream floods the screen, the time from a key press
(``p``, pause) to its effect, against the same key on the idle screen.

Targets: the screen costs ≤ 4× the bare monitor's CPU per packet (so with the monitor at
~100,000 packets per CPU-second it takes ≥ 25,000 a second), and a key press takes effect in
≤ 100 ms (median) under the flood. Not a timed test: the figures go into
docs/development/benchmarks.md.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from textual import events

from steps.events import LogLine
from steps.monitor import MonitorStep
from steps.wire.monitor_events import MonitorEvent, PacketEvent
from steps.wire.pcap import Record
from tests.wizard.diag_support import Flood, flood_records, pcap_bytes
from wizard.monitor_app import MonitorApp
from wizard.widgets.diagnostics_view import DiagnosticsView

ROUNDS = 12
PRESSES = 15
#: Rounds of each CPU measurement (bare, screen, bare, …); the medians are compared.
ROUNDS_CPU = 3


class TimedStep(MonitorStep):
    """The real monitor, recording the CPU seconds of the thread that runs it."""

    cpu = 0.0

    def watch(self, cancel: threading.Event | None = None) -> Iterator[MonitorEvent | LogLine]:
        start = time.thread_time()
        try:
            yield from super().watch(cancel)
        finally:
            self.cpu = time.thread_time() - start


async def _until(condition: Callable[[], object], step: float = 0.005) -> None:
    """Let the app run until ``condition()`` holds (polled every ``step`` seconds)."""
    for _ in itertools.count():
        if condition():
            return
        await asyncio.sleep(step)


def _view(app: MonitorApp) -> DiagnosticsView | None:
    views = app.screen.query(DiagnosticsView)
    return views.first() if views else None


def _stream(records: list[Record], rounds: int) -> Any:
    """A pipe carrying ``rounds`` copies of the boots (later each time), then its end."""
    read_fd, write_fd = os.pipe()
    span = records[-1][0] - records[0][0] + 1_000_000_000

    def write() -> None:
        with os.fdopen(write_fd, "wb") as out:
            out.write(pcap_bytes(records, header=True))
            for n in range(1, rounds):
                shifted = ((ts + n * span, lt, fr, orig) for ts, lt, fr, orig in records)
                out.write(pcap_bytes(shifted, header=False))

    threading.Thread(target=write, daemon=True).start()
    return os.fdopen(read_fd, "rb", buffering=0)


def bare(records: list[Record]) -> tuple[int, float, float]:
    """Packets, CPU seconds and wall seconds of the monitor alone."""
    stream = _stream(records, ROUNDS)
    step = TimedStep(pcap="-", stdin=stream)
    wall = time.perf_counter()
    count = sum(1 for e in step.watch() if isinstance(e, PacketEvent))
    wall = time.perf_counter() - wall
    stream.close()
    return count, step.cpu, wall


async def screen(records: list[Record]) -> tuple[int, float, float]:
    """Packets, CPU seconds (monitor + main thread) and wall seconds through the screen."""
    stream = _stream(records, ROUNDS)
    step = TimedStep(pcap="-", stdin=stream)
    app = MonitorApp(step)
    async with app.run_test(size=(120, 40)) as pilot:
        await _until(lambda: _view(app), 0.001)
        view = _view(app)
        assert view is not None
        cpu, wall = time.thread_time(), time.perf_counter()
        await _until(lambda: view.ended, 0.05)
        cpu, wall = time.thread_time() - cpu, time.perf_counter() - wall
        count = view.packets
        await pilot.press("q")
    stream.close()
    return count, cpu + step.cpu, wall


async def _presses(app: MonitorApp, view: DiagnosticsView) -> list[float]:
    out = []
    for _ in range(PRESSES):
        before = view.paused
        start = time.perf_counter()
        app.post_message(events.Key("p", "p"))
        await _until(lambda b=before: view.paused != b, 0.0005)  # type: ignore[misc]
        out.append(time.perf_counter() - start)
        await asyncio.sleep(0.02)
    return out


async def key_latency(flood: bool) -> tuple[list[float], int]:
    """Seconds from a key press to its effect, with or without a flood; packets meanwhile."""
    source = Flood(flood_records()) if flood else None
    stream = source.stream if source is not None else _stream(flood_records(), 1)
    if source is not None:
        source.__enter__()
    try:
        app = MonitorApp(MonitorStep(pcap="-", stdin=stream))
        async with app.run_test(size=(120, 40)) as pilot:
            await _until(lambda: _view(app))
            view = _view(app)
            assert view is not None
            await _until(lambda: view.packets >= 10_000 if flood else view.ended)
            first = view.packets
            times = await _presses(app, view)
            seen = view.packets - first
            await pilot.press("q")
    finally:
        if source is not None:
            source.__exit__(None, None, None)
    return times, seen


def _ms(values: list[float]) -> str:
    ordered = sorted(values)
    p90 = ordered[int(0.9 * (len(ordered) - 1))]
    return (
        f"median {statistics.median(values) * 1000:.1f} ms, p90 {p90 * 1000:.1f} ms, "
        f"max {ordered[-1] * 1000:.1f} ms"
    )


def _median_round(rounds: list[tuple[int, float, float]]) -> tuple[int, float, float]:
    """The round with the median CPU seconds per packet."""
    return sorted(rounds, key=lambda r: r[1] / r[0])[len(rounds) // 2]


def main() -> int:
    """Run the benchmark and print its report; 1 if a target is missed."""
    records = flood_records()
    bares, screens = [], []
    for _ in range(ROUNDS_CPU):  # alternated: a busy moment of the machine hits both
        bares.append(bare(records))
        screens.append(asyncio.run(screen(records)))
    bare_n, bare_cpu, bare_wall = _median_round(bares)
    screen_n, screen_cpu, screen_wall = _median_round(screens)
    idle, _ = asyncio.run(key_latency(False))
    busy, seen = asyncio.run(key_latency(True))
    per_bare, per_screen = bare_cpu / bare_n, screen_cpu / screen_n
    ratio = per_screen / per_bare
    print(
        f"diagnostics screen (same stream, same run; CPU seconds of the working threads, "
        f"the median of {ROUNDS_CPU} rounds)"
    )
    print(
        f"  bare monitor        {bare_n:>7} packets  {bare_cpu:6.2f} CPU-s  "
        f"{1 / per_bare:>9,.0f} packets/CPU-s  ({bare_n / bare_wall:,.0f}/s wall)"
    )
    print(
        f"  through the screen  {screen_n:>7} packets  {screen_cpu:6.2f} CPU-s  "
        f"{1 / per_screen:>9,.0f} packets/CPU-s  ({screen_n / screen_wall:,.0f}/s wall)"
    )
    print(f"  CPU per packet, screen / bare: {ratio:.2f}×  (target ≤ 4×)")
    print(f"  key → effect, idle:  {_ms(idle)}")
    print(f"  key → effect, flood: {_ms(busy)}  (target: median ≤ 100 ms; {seen:,} packets)")
    every_packet = all(s[0] == b[0] for s, b in zip(screens, bares, strict=True))
    ok = every_packet and ratio <= 4 and statistics.median(busy) <= 0.1
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
