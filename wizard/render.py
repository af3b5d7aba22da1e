"""Headless renderers: human lines on stderr, JSON lines on stdout.

Like pypa/build's logger: ``* Title`` when a step starts, ``> cmd`` before a command, ``< line`` for
its output (``steps.events.log_text``: the TUI's log marks lines the same way), a percentage only
when the total is known. On a terminal, rich progress bars replace the percentage lines. stdout
carries only data: step results, the dry-run plan, a sub-command's answer (``answer``), or JSON
lines. Every command prints through one of these, so ``--json`` means the same everywhere.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterable, Mapping
from typing import Any, TextIO

from steps.errors import FirecoreError
from steps.events import Event, LogLine, Planned, Progress, Result, log_text, plan_text, to_json
from steps.textsafe import printable, printable_lines
from steps.units import human_size

_last_json: list[str | None] = [None]


def reset_json() -> None:
    """Forget the last JSON line (the CLI calls it when a command starts)."""
    _last_json[0] = None


def note_json(obj: Mapping[str, Any]) -> None:
    """Remember the type of the JSON line just written to stdout (``done`` must be last)."""
    _last_json[0] = str(obj.get("type"))


def last_json_type() -> str | None:
    """The ``type`` of the last JSON line written in this command, if any."""
    return _last_json[0]


def progress_text(event: Progress) -> str:
    """``done/total`` in the event's unit, e.g. ``12.0 MB/30.0 MB`` or ``3/7 files``."""
    if event.unit == "bytes":
        done = human_size(event.done)
        return done if event.total is None else f"{done}/{human_size(event.total)}"
    total = "" if event.total is None else f"/{event.total:g}"
    return f"{event.done:g}{total} {event.unit}"


def result_mark(event: Result) -> str:
    """✓ for a result that is a success, ✕ for a failure (``ok`` false: a self-test that did
    not boot), · for a look that found nothing (no Pi answered a status scan)."""
    data = event.data if isinstance(event.data, dict) else {}
    if data.get("ok") is False:
        return "✕"
    if data.get("pis") == []:
        return "·"
    return "✓"


class Renderer:
    """Base renderer: plain lines on ``err``, data on ``out``."""

    def __init__(self, out: TextIO, err: TextIO, *, json_lines: bool = False) -> None:
        self.out = out
        self.err = err
        self.json_lines = json_lines
        self._last_pct: dict[tuple[str, str], int] = {}
        self._last_time: dict[tuple[str, str], float] = {}

    def __enter__(self) -> Renderer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- data channel
    def emit_json(self, obj: Mapping[str, Any]) -> None:
        """One JSON object on stdout (only with ``--json``)."""
        if self.json_lines:
            self.out.write(json.dumps(obj, default=str) + "\n")
            self.out.flush()
            note_json(obj)

    def answer(self, obj: Mapping[str, Any], lines: Iterable[str] = ()) -> None:
        """A sub-command's answer on stdout: ``obj`` as one JSON line with ``--json``, else
        ``lines`` for a person."""
        if self.json_lines:
            self.emit_json(obj)
            return
        for text in lines:
            self.data(text)

    # ---- lifecycle
    def step_started(self, name: str, title: str) -> None:
        self.emit_json({"type": "step", "step": name, "title": title, "status": "started"})
        self.line(f"* {title}")

    def step_finished(self, name: str, ok: bool) -> None:
        self.emit_json({"type": "step", "step": name, "status": "ok" if ok else "failed"})

    def event(self, event: Event) -> None:
        self.emit_json(to_json(event))
        if isinstance(event, Progress):
            self.progress(event)
        elif isinstance(event, LogLine):
            self.line(f"  {log_text(event)}")
        elif isinstance(event, Planned):
            self.data(f"  {plan_text(event)}")
        elif isinstance(event, Result):
            self.data(f"  {result_mark(event)} {event.summary}" if event.summary else "")

    def progress(self, event: Progress) -> None:
        key = (event.step, event.phase)
        now = time.monotonic()
        if event.total:
            pct = int(100 * event.done / event.total)
            last = self._last_pct.get(key, -100)
            if pct < 100 and pct - last < 25:
                return
            if pct == 100 and last == 100:
                return
            self._last_pct[key] = pct
            self.line(f"  [{event.phase}] {pct}% {progress_text(event)} {event.message}".rstrip())
        elif now - self._last_time.get(key, 0.0) >= 2.0:
            self._last_time[key] = now
            self.line(f"  [{event.phase}] {progress_text(event)} {event.message}".rstrip())

    def error(self, error: FirecoreError, step: str | None) -> None:
        self.emit_json(
            {
                "type": "error",
                "step": step,
                "title": error.title,
                "message": error.message,
                "fix": error.fix,
                "exit_code": error.exit_code,
            }
        )
        where = f" in step {step}" if step else ""
        self.line(f"ERROR {error.title}{where}: {error.message}")
        if error.fix:
            self.line(f"  fix: {error.fix}")
        if error.details and not isinstance(error, KeyboardInterrupt):
            for detail in error.details.strip().splitlines()[-10:]:
                self.line(f"  | {detail}")

    def finished(self, exit_code: int) -> None:
        self.emit_json({"type": "done", "exit_code": exit_code})

    def close(self) -> None:
        """Release the terminal (rich live display)."""

    # ---- channels
    # Every line goes through printable(): text from the network (a mirror's names, an HTTP
    # body) must not reach the terminal with its escape sequences.
    def line(self, text: str) -> None:
        self.err.write(printable_lines(text) + "\n")
        self.err.flush()

    def data(self, text: str) -> None:
        if not self.json_lines and text:
            self.out.write(printable_lines(text) + "\n")
            self.out.flush()


class RichRenderer(Renderer):
    """Progress bars on a terminal; everything else as in ``Renderer``."""

    def __init__(self, out: TextIO, err: TextIO, *, json_lines: bool = False) -> None:
        super().__init__(out, err, json_lines=json_lines)
        from rich.console import Console
        from rich.progress import BarColumn, TextColumn, TimeRemainingColumn
        from rich.progress import Progress as Bars

        self.console = Console(file=err, highlight=False)
        self.bars = Bars(
            TextColumn("  {task.description}"),
            BarColumn(),
            TextColumn("{task.fields[amount]}"),  # bytes, files or steps, as the event says
            TimeRemainingColumn(),
            console=self.console,
            transient=True,
        )
        self.tasks: dict[tuple[str, str], Any] = {}

    def progress(self, event: Progress) -> None:
        key = (event.step, event.phase)
        if key not in self.tasks:
            if not self.bars.live.is_started:
                self.bars.start()  # at the first bar: a command that shows none draws nothing
            self.tasks[key] = self.bars.add_task(event.phase, total=event.total, amount="")
        task = self.tasks[key]
        desc = printable(f"{event.phase} {event.message}".strip(), 40)
        self.bars.update(
            task,
            completed=event.done,
            total=event.total,
            description=desc,
            amount=progress_text(event),
        )

    def step_finished(self, name: str, ok: bool) -> None:
        super().step_finished(name, ok)
        for key in [k for k in self.tasks if k[0] == name]:
            self.bars.remove_task(self.tasks.pop(key))

    def line(self, text: str) -> None:
        # soft_wrap: the terminal wraps long lines; rich would cut them with newlines of its own
        self.console.print(printable_lines(text), markup=False, highlight=False, soft_wrap=True)

    def data(self, text: str) -> None:
        # stdout on the same terminal: print above the live bars instead of through them
        if not self.json_lines and text and self.out.isatty():
            self.console.print(printable_lines(text), markup=False, highlight=False, soft_wrap=True)
        else:
            super().data(text)

    def close(self) -> None:
        self.bars.stop()


def make_renderer(
    *, json_lines: bool, out: TextIO | None = None, err: TextIO | None = None
) -> Renderer:
    """Rich bars when stderr is a terminal, plain lines otherwise."""
    out = out or sys.stdout
    err = err or sys.stderr
    if err.isatty():
        return RichRenderer(out, err, json_lines=json_lines)
    return Renderer(out, err, json_lines=json_lines)


# ----------------------------------------------------------------------------- the monitor


class MonitorRenderer:
    """``firecore-wizard monitor`` output: DESIGN.md's JSON lines, or human lines.

    JSON: one object per packet, stage, diagnosis and the summary, on ``out`` (``ClientEvent``
    snapshots are for screens and are not printed). Human: each DHCP/ARP packet, each TFTP
    request and error, and each file as it ends (not every DATA/ACK), the stages with their time
    since power-on, the diagnoses with their fix and evidence, then a summary per Pi; notices
    go to ``err``. Human lines pass through ``printable``: file names, menu texts and error
    messages come from the network.
    """

    def __init__(self, out: TextIO, err: TextIO, *, json_lines: bool) -> None:
        self.out = out
        self.err = err
        self.json_lines = json_lines
        self._files_seen: set[int] = set()
        self.errors = 0
        """Error-severity diagnoses printed so far."""

    def event(self, event: object) -> None:
        """Render one event of ``MonitorStep.watch``."""
        from steps.wire.monitor_events import (
            ClientEvent,
            DiagnosisEvent,
            PacketEvent,
            StageEvent,
            SummaryEvent,
        )

        if isinstance(event, DiagnosisEvent) and event.severity == "error":
            self.errors += 1
        if isinstance(event, LogLine):
            prefix = "WARNING " if event.stream == "warning" else ""
            self.err.write(printable_lines(f"{prefix}{event.text}") + "\n")
            self.err.flush()
            return
        if self.json_lines:
            if isinstance(event, PacketEvent | StageEvent | DiagnosisEvent | SummaryEvent):
                obj = event.to_json()
                self.out.write(json.dumps(obj) + "\n")
                self.out.flush()
                note_json(obj)
            return
        lines: list[str] = []
        if isinstance(event, PacketEvent):
            if event.proto == "tftp" and getattr(event, "opcode", "") in ("DATA", "ACK", "OACK"):
                return
            lines.append(f"{event.t:9.3f}  {event.mac or '-':17}  {event.summary()}")
        elif isinstance(event, StageEvent):
            lines.append(
                f"{event.t:9.3f}  {event.mac:17}  ▶ {event.stage} "
                f"({event.since_power_on:.2f} s after power-on"
                + (f", boot {event.boot}" if event.boot > 1 else "")
                + ")"
            )
        elif isinstance(event, DiagnosisEvent):
            where = event.mac or "segment"
            lines.append(
                f"{event.t:9.3f}  {where:17}  {event.severity.upper()} [{event.code}] "
                f"{event.message}"
            )
            if event.severity != "info":
                lines.append(f"{'':30}fix: {event.fix}")
            if event.evidence:
                shown = ", ".join(str(i) for i in event.evidence[:10])
                lines.append(f"{'':30}evidence: packets {shown}")
        elif isinstance(event, ClientEvent):
            for f in event.client.files:
                if f.status != "running" and f.transfer not in self._files_seen:
                    self._files_seen.add(f.transfer)
                    size = human_size(f.bytes) if f.bytes else "0 B"
                    lines.append(
                        f"{'':9}  {event.client.mac:17}  file {f.name}: {f.status}, "
                        f"{size} in {f.duration:.2f} s"
                    )
        elif isinstance(event, SummaryEvent):
            lines += self._summary(event)
        if lines:
            self.out.write(printable_lines("\n".join(lines)) + "\n")
            self.out.flush()

    def _summary(self, summary: Any) -> list[str]:
        lines = [
            "",
            f"{summary.frames} frames, {summary.packets} DHCP/ARP/TFTP packets in "
            f"{summary.duration:.1f} s; {len(summary.clients)} Pi(s)",
        ]
        for c in summary.clients:
            what = " ".join(
                x
                for x in (
                    c.model or "model ?",
                    f"serial {c.serial}" if c.serial else "",
                    f"ip {c.ip}" + (f" from {c.ip_from}" if c.ip_from else "") if c.ip else "",
                    f"boot server {c.tftp_server}" if c.tftp_server else "",
                )
                if x
            )
            lines.append(f"  {c.mac}  {what}")
            stages = ", ".join(f"{s} {t:.1f} s" for s, t in c.stages.items())
            boots = f" ({c.boots} boots)" if c.boots > 1 else ""
            lines.append(f"    stages{boots}: {stages or 'none'}")
            counts: dict[str, int] = {}
            for f in c.files:
                counts[f.status] = counts.get(f.status, 0) + 1
            if counts:
                lines.append(
                    "    files: " + ", ".join(f"{n} {status}" for status, n in counts.items())
                )
            if c.codes:
                lines.append("    diagnoses: " + ", ".join(c.codes))
        if summary.codes:
            lines.append("diagnoses: " + ", ".join(f"{k} ×{n}" for k, n in summary.codes.items()))
        elif summary.clients:
            lines.append("no diagnosis: every Pi in the capture booted as far as it went")
        return lines
