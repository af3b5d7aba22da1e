"""The Diagnostics monitor as a step: open a source, watch it, hand out typed events.

``MonitorStep`` is what ``firecore-wizard monitor`` and the Diagnostics screen run. It opens the
source — a live capture on an interface (``steps.wire.capture``), a pcap/pcapng file or a stream
on stdin (``steps.wire.pcap``) — optionally copies every record to ``--write``'s file, and drives
``steps.wire.monitor.watch`` with the Raspberry Pi OUI table (``assets/oui.txt``) and, live, a
``/health`` check of each Pi that announces its app (the ``status`` command's own check,
``steps.status.poll``).

``watch(cancel)`` yields the monitor's events (``steps.wire.monitor_events``) plus
``steps.events.LogLine`` notices (what is read, kernel drops, what ``--write`` left out); the
screen's worker posts them as they come. ``run(ctx)`` adapts the same stream to the plain step
events (a log line per stage and diagnosis, and a ``Result`` with the summary) for front ends
that only know those. Either way the last monitor event is the ``SummaryEvent``.
"""

from __future__ import annotations

import contextlib
import itertools
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import BinaryIO

from steps.answers import Answers
from steps.base import StepContext
from steps.errors import UsageError
from steps.events import Event, LogLine, Result
from steps.host.dnsmasq import load_ouis
from steps.host.remotecapture import RemoteCapture
from steps.host.sshrun import Ssh, ssh_for
from steps.status import Announcement, find_token, poll
from steps.wire.capture import LiveCapture
from steps.wire.mdns import MdnsAnnouncement
from steps.wire.monitor import MonitorOptions, watch
from steps.wire.monitor_events import (
    DiagnosisEvent,
    MonitorEvent,
    StageEvent,
    SummaryEvent,
)
from steps.wire.netframes import mac_bytes
from steps.wire.pcap import LINKTYPES, CaptureReader, CaptureWriter, Record
from steps.wire.timeline import Timers

NAME = "monitor"


class HttpHealthChecks:
    """``/health`` of announced Pis, checked in background threads (``status.poll``)."""

    def __init__(self, token: str = "", *, timeout: float = 2.0) -> None:
        self.token = token
        self.timeout = timeout
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="monitor-health")
        self._jobs: list[tuple[str, Future[tuple[bool, str]]]] = []
        self._cancel = threading.Event()

    def start(self, mac: str, announcement: MdnsAnnouncement, ip: str | None) -> None:
        """Check one Pi: its announced addresses (or the address it announced from)."""
        addrs = announcement.addresses or ((ip,) if ip else ())
        ann = Announcement(
            name=announcement.instance,
            server=announcement.host or "",
            addresses=tuple(addrs),
            port=announcement.port or int(announcement.properties.get("port", "80") or 80),
            properties=dict(announcement.properties),
        )

        def check() -> tuple[bool, str]:
            pi = poll(ann, self.token, None, self._cancel, timeout=self.timeout, attempts=3)
            return pi.healthy, pi.error or "ok"

        self._jobs.append((mac, self._pool.submit(check)))

    def done(self) -> list[tuple[str, bool, str]]:
        """Finished checks since the last call."""
        out: list[tuple[str, bool, str]] = []
        keep: list[tuple[str, Future[tuple[bool, str]]]] = []
        for mac, job in self._jobs:
            if job.done():
                try:
                    ok, detail = job.result()
                except Exception as exc:  # a check that crashed is a failed check
                    ok, detail = False, str(exc) or type(exc).__name__
                out.append((mac, ok, detail))
            else:
                keep.append((mac, job))
        self._jobs = keep
        return out

    def close(self) -> None:
        """Stop waiting for checks still running."""
        self._cancel.set()
        self._pool.shutdown(wait=False, cancel_futures=True)


class MonitorStep:
    """Watch an interface, a capture file or stdin, and diagnose the Pis that boot there.

    Args:
        interface: capture live on this interface (``any``: all of them).
        pcap: read this capture file, or ``-`` for a stream on stdin.
        write: also write every record read or captured to this pcap/pcapng file.
        mac: only this Pi.
        duration: stop after this many seconds (capture time for files).
        timers: silence thresholds (tests shorten them).
        health: live: check ``/health`` of Pis that announce their app.
        stdin: the stream for ``pcap="-"`` (default ``sys.stdin.buffer``).
        ssh: capture on ``interface`` of that remote host instead (``steps.host.remotecapture``:
            tcpdump there, its pcap stream decoded here as ``--pcap -`` would be).
        keep_frames: attach captured bytes to packet events (a detail pane needs them).

    Raises:
        UsageError: neither or both sources, a bad MAC or duration, ``write`` equal to ``pcap``.
    """

    name = NAME
    title = "Diagnostics"

    def __init__(
        self,
        *,
        interface: str | None = None,
        pcap: str | Path | None = None,
        write: Path | None = None,
        mac: str | None = None,
        duration: float | None = None,
        timers: Timers | None = None,
        health: bool = True,
        stdin: BinaryIO | None = None,
        keep_frames: bool = True,
        ssh: Ssh | None = None,
    ) -> None:
        if (interface is None) == (pcap is None):
            raise UsageError(
                "give exactly one source: --interface IFACE (live) or --pcap FILE|-",
                fix="e.g. `firecore-wizard monitor --interface eth0` or `--pcap boot.pcapng`",
            )
        if duration is not None and not duration > 0:
            raise UsageError(f"--duration {duration:g}: give a number of seconds above 0")
        if mac is not None:
            try:
                mac_bytes(mac)
            except ValueError as exc:
                raise UsageError(f"--mac: {exc}") from None
            mac = mac.lower().replace("-", ":")
        if (
            write is not None
            and pcap not in (None, "-")
            and Path(pcap).resolve() == write.resolve()
        ):
            raise UsageError("--write must not be the --pcap file itself")
        self.interface = interface
        self.pcap = str(pcap) if pcap is not None else None
        self.write = write
        self.mac = mac
        self.duration = duration
        self.timers = timers or Timers()
        self.health = health
        self.stdin = stdin
        self.keep_frames = keep_frames
        self.ssh = ssh
        self.summary: SummaryEvent | None = None
        """The last run's summary."""

    @classmethod
    def for_answers(cls, answers: Answers, pcap: Path | None = None) -> MonitorStep:
        """The monitor the answers call for: ``pcap`` if given; in router mode with a remote
        deploy.target, a capture on ``network.router_interface`` of that host over ssh; else
        live on ``network.interface``."""
        if pcap is not None:
            return cls(pcap=pcap)
        ssh = ssh_for(answers) if answers.network.mode == "router" else None
        if ssh is not None:
            return cls(interface=answers.network.router_interface, ssh=ssh)
        return cls(interface=answers.network.interface)

    @property
    def live(self) -> bool:
        """A live capture or a stream (not a file read straight through)."""
        return self.interface is not None or self.pcap == "-"

    def _remote(self, stack: contextlib.ExitStack) -> Iterator[Record | None]:
        """Records of the remote host's tcpdump (``ssh``), as a live stream."""
        assert self.ssh is not None and self.interface is not None
        capture = stack.enter_context(RemoteCapture(self.ssh, self.interface))
        return iter(CaptureReader(capture.stream, f"{self.ssh.target.host}:{self.interface}",
                                  poll=0.25))  # fmt: skip

    # ------------------------------------------------------------------ the stream
    def watch(self, cancel: threading.Event | None = None) -> Iterator[MonitorEvent | LogLine]:
        """Open the source and yield the monitor's events (the summary last).

        Raises:
            UsageError: the source cannot be opened (no root for a live capture, no such file
                or interface, not a capture: exit 2).
            StepError: a damaged capture (after its good part was reported), a write failure.
        """
        cancel = cancel or threading.Event()
        with contextlib.ExitStack() as stack:
            writer: CaptureWriter | None = None
            health: HttpHealthChecks | None = None
            dropped = None
            records: Iterator[Record | None]
            if self.interface is not None and self.ssh is not None:
                records = self._remote(stack)
                yield LogLine(
                    NAME,
                    f"capturing ARP and UDP (no DNS) on {self.ssh.target.host}'s "
                    f"{self.interface} with tcpdump, over ssh",
                )
            elif self.interface is not None:
                capture = stack.enter_context(LiveCapture(self.interface))
                records = iter(capture)
                yield LogLine(
                    NAME,
                    f"capturing ARP and UDP on {self.interface} "
                    f"({LINKTYPES.get(capture.linktype, capture.linktype)})",
                )

                def dropped() -> int:
                    return capture.stats()[1]

            else:
                reader, source = self._reader(stack)
                records, notice = _head(reader, source, cancel)
                if notice:
                    yield LogLine(NAME, notice)
            if self.interface is not None and self.health:
                health = HttpHealthChecks(find_token(""))
                stack.callback(health.close)
            options = MonitorOptions(
                mac=self.mac,
                duration=self.duration,
                timers=self.timers,
                ouis=load_ouis(),
                keep_frames=self.keep_frames,
                health=health,
            )
            if self.write is not None:
                writer = CaptureWriter(self.write)
            try:
                for event in watch(
                    records,
                    options,
                    live=self.live,
                    cancel=cancel,
                    on_record=_writer_hook(writer) if writer is not None else None,
                    dropped=dropped,
                ):
                    if isinstance(event, SummaryEvent):
                        self.summary = event
                        if event.dropped:
                            yield LogLine(
                                NAME,
                                f"the kernel dropped {event.dropped} frame(s) the capture could "
                                "not read in time",
                                "warning",
                            )
                        if writer is not None:
                            yield from self._close_writer(writer)
                            writer = None
                    yield event
            except BaseException:
                if writer is not None:
                    writer.close()  # keep what was captured before the failure
                raise

    def _reader(self, stack: contextlib.ExitStack) -> tuple[CaptureReader, str]:
        if self.pcap == "-":
            stream = self.stdin if self.stdin is not None else sys.stdin.buffer
            return CaptureReader(stream, "stdin", poll=0.25), "stdin"
        path = Path(self.pcap or "")
        try:
            fh = stack.enter_context(path.open("rb"))
        except FileNotFoundError:
            raise UsageError(f"capture file {path} does not exist", fix="check --pcap") from None
        except IsADirectoryError:
            raise UsageError(f"{path} is a directory, not a capture file") from None
        except PermissionError:
            raise UsageError(f"cannot read {path}: permission denied") from None
        return CaptureReader(fh, str(path)), str(path)

    def _close_writer(self, writer: CaptureWriter) -> Iterator[LogLine]:
        writer.close()
        yield LogLine(NAME, f"wrote {writer.written} frame(s) to {self.write}")
        if writer.skipped:
            yield LogLine(
                NAME,
                f"{writer.skipped} frame(s) of another link type were left out of "
                f"{self.write} (a pcap holds one link type; name it .pcapng to keep all)",
                "warning",
            )

    # ------------------------------------------------------------------ as a plain step
    def run(self, ctx: StepContext) -> Iterator[Event]:
        """The same run as plain step events: a log line per stage and diagnosis, a Result."""
        for event in self.watch(ctx.cancel):
            if isinstance(event, LogLine):
                yield event
            elif isinstance(event, StageEvent):
                yield LogLine(
                    NAME, f"{event.mac} {event.stage} ({event.since_power_on:.1f} s after power-on)"
                )
            elif isinstance(event, DiagnosisEvent):
                yield LogLine(
                    NAME,
                    f"[{event.code}] {event.message} — {event.fix}",
                    "info" if event.severity == "info" else "warning",
                )
            elif isinstance(event, SummaryEvent):
                errors = sum(n for code, n in event.codes.items() if _is_error(code))
                yield Result(
                    NAME,
                    f"{len(event.clients)} Pi(s), {event.packets} packets, {errors} error(s)",
                    event.to_json(),
                )


def _head(
    reader: CaptureReader, source: str, cancel: threading.Event
) -> tuple[Iterator[Record | None], str]:
    """Read up to the first record (a bad header raises here, before any event) and say what
    the capture is; the records, the first one included."""
    it = iter(reader)
    head: list[Record | None] = []
    for item in it:
        head.append(item)
        if item is not None or reader.format is not None or cancel.is_set():
            break
    notice = ""
    if reader.format is not None:
        kinds = sorted({LINKTYPES.get(lt, f"link type {lt}") for lt, _ in reader.interfaces})
        notice = f"reading {source}: {reader.format}, {', '.join(kinds) or 'no packets'}"
    return itertools.chain(head, it), notice


def _is_error(code: str) -> bool:
    from steps.wire.diagnosis import DIAGNOSES

    row = DIAGNOSES.get(code)
    return row is not None and row.severity == "error"


def _writer_hook(writer: CaptureWriter) -> Callable[[Record], None]:
    count = 0

    def hook(record: Record) -> None:
        nonlocal count
        writer.write(*record)
        count += 1
        if count % 256 == 0:
            writer.flush()

    return hook
