"""How the Diagnostics screen words the monitor's events: pure functions, Rich ``Text`` out.

Kept apart from the widgets so the wording is tested without an app and shared by every pane:
a Pi's row (with a text progress bar of its current file), its timeline with durations
("firmware 1.2 s, kernel 4.0 s, initramfs 9.8 s, app up 23 s"), a diagnosis with its fix and
evidence, and a packet's decoded fields with a hex dump of the captured bytes.
"""

from __future__ import annotations

from collections.abc import Collection

from rich.text import Text

from steps.units import human_size
from steps.wire.monitor_events import (
    STAGES,
    ClientSnapshot,
    DiagnosisEvent,
    FileResult,
    PacketEvent,
)
from steps.wire.pcap import LINKTYPES

#: The stages a person reads a boot by, and what to call them in one line.
HEADLINE: tuple[tuple[str, str], ...] = (
    ("firmware", "firmware"),
    ("kernel", "kernel"),
    ("initramfs", "initramfs"),
    ("os-dhcp", "Linux up"),
    ("app-up", "app up"),
)

_MODELS = {"pi3": "Pi 3", "pi4": "Pi 4", "pi5": "Pi 5", "pi1-3": "Pi 1–3"}
_SEVERITY = {
    "error": ("✕", "bold red"),
    "warning": ("▲", "bold yellow"),
    "info": ("ℹ", "dim"),
}
_FILE_MARK = {
    "complete": ("✓", "green"),
    "probe": ("·", "dim"),
    "not-found": ("✕", "red"),
    "denied": ("✕", "red"),
    "timeout": ("✕", "red"),
    "incomplete": ("✕", "red"),
    "running": ("▸", "bold"),
}


def seconds(value: float) -> str:
    """``1.2 s`` below ten seconds, ``23 s`` above (the issue's own wording)."""
    return f"{value:.1f} s" if value < 10 else f"{value:.0f} s"


def model_text(client: ClientSnapshot) -> str:
    """``Pi 4`` (or ``?`` while unknown)."""
    return _MODELS.get(client.model or "", client.model or "?")


def headline(client: ClientSnapshot) -> str:
    """The boot in one line: ``firmware 1.2 s, kernel 4.0 s, initramfs 9.8 s, app up 23 s``."""
    parts = [f"{name} {seconds(client.stages[s])}" for s, name in HEADLINE if s in client.stages]
    return ", ".join(parts)


def _short(name: str, width: int) -> str:
    return name if len(name) <= width else name[: width - 1] + "…"


def progress_cell(current: FileResult | None, width: int = 8, name_width: int = 8) -> Text:
    """A text bar of the file being read: ``██████░░  75% kernel7…`` ("" when idle)."""
    if current is None:
        return Text("")
    name = _short(current.name.rsplit("/", 1)[-1], name_width)
    if current.tsize:
        frac = max(0.0, min(1.0, current.bytes / current.tsize))
        full = int(frac * width)
        text = Text("█" * full, style="green")
        text.append("░" * (width - full), style="dim")
        text.append(f" {frac:4.0%} {name}")
        return text
    return Text(f"{human_size(current.bytes)} {name}")


def client_cells(client: ClientSnapshot) -> tuple[str | Text, ...]:
    """One row of the clients table: MAC, model, serial, stage, current file, IP."""
    stage = client.stage or "—"
    if client.boots > 1:
        stage += f" ↻{client.boots}"  # the boot attempt (a Pi that starts over)
    mark = Text(client.mac, style="bold red" if client.codes else "")
    return (
        mark,
        model_text(client),
        client.serial or "?",
        stage,
        progress_cell(client.current),
        client.ip or "—",
    )


def timeline(
    client: ClientSnapshot, flagged: Collection[str] = (), since: int | None = None
) -> Text:
    """The selected Pi: who it is, each stage's time since power-on, each file.

    A file that was not found is marked as a failure only when a diagnosis names it
    (``flagged``): the firmware asks for several files it may lack (netboot.md §4). ``since``:
    the first packet of the Pi's current boot (files requested before it are only counted).
    """
    out = Text()
    out.append(client.mac, style="bold")
    what = [model_text(client) + (f" ({client.model_source})" if client.model_source else "")]
    if client.serial:
        what.append(f"serial {client.serial}")
    if client.bootloader:
        what.append(f"now: {client.bootloader}")
    out.append("  " + " · ".join(what) + "\n")
    where = []
    if client.ip:
        known = client.ip_from not in (None, "", "?")  # "?": the monitor missed the offer
        where.append(f"address {client.ip}" + (f" from {client.ip_from}" if known else ""))
    if client.tftp_server:
        where.append(f"boot server {client.tftp_server}")
    if client.boots > 1:
        where.append(f"boot {client.boots}, started at {client.power_on_t:.1f} s")
    if where:
        out.append(" · ".join(where) + "\n")
    line = headline(client)
    if line:
        out.append(line + "\n", style="bold green" if "app-up" in client.stages else "bold")
    out.append("\n")
    previous = 0.0
    for stage, at in client.stages.items():  # in the order they were reached
        out.append(" ✓ ", style="green")
        out.append(f"{stage:<12}{at:8.2f} s")
        out.append(f"  +{at - previous:.2f}\n", style="dim")
        previous = at
    for stage in STAGES:
        if stage not in client.stages:
            out.append(f" ○ {stage}\n", style="dim")
    # this boot's files (a Pi that starts over keeps its earlier ones in the summary)
    files = [f for f in client.files if since is None or f.i >= since]
    if files:
        earlier = len(client.files) - len(files)
        out.append("\nFiles", style="bold")
        out.append(f" (and {earlier} of earlier boots)\n" if earlier else "\n", style="dim")
    for f in files:
        mark, style = _FILE_MARK.get(f.status, ("?", ""))
        if f.status in ("not-found", "probe") and f.name not in flagged:
            mark, style = "·", "dim"  # a probe or a file the firmware may lack (bootsig.bin)
        out.append(f" {mark} ", style=style)
        size = human_size(f.bytes)
        if f.status == "running" and f.tsize:
            size += f" of {human_size(f.tsize)}"
        out.append(f"{f.name}  {size}, {f.duration:.2f} s  ")
        out.append(f.status + "\n", style=style)
    out.rstrip()
    return out


def diagnosis(d: DiagnosisEvent) -> Text:
    """A finding: severity, code, the Pi, what was seen, the fix, the evidence."""
    mark, style = _SEVERITY[d.severity]
    out = Text()
    out.append(f"{mark} {d.code}", style=style)
    where = [d.mac or "the segment"]
    if d.stage:
        where.append(f"at {d.stage}")
    where.append(f"{d.t:.1f} s")
    out.append("  " + " · ".join(where) + "\n", style="dim")
    out.append(d.message + "\n")
    if d.severity != "info":
        out.append("fix: ", style="bold")
        out.append(d.fix + "\n")
    if d.evidence:
        shown = ", ".join(str(i) for i in d.evidence[:8])
        more = f" (+{len(d.evidence) - 8})" if len(d.evidence) > 8 else ""
        out.append(f"evidence: packets {shown}{more} — Enter shows the first", style="dim")
    out.rstrip()
    return out


def hexdump(data: bytes, limit: int = 2048) -> list[str]:
    """``0000  45 00 01 48 …  E..H…`` lines, 16 bytes each (the first ``limit`` bytes)."""
    lines = []
    for off in range(0, min(len(data), limit), 16):
        chunk = data[off : off + 16]
        hexes = " ".join(f"{b:02x}" for b in chunk)
        text = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
        lines.append(f"{off:04x}  {hexes:<47}  {text}")
    if len(data) > limit:
        lines.append(f"… {len(data) - limit} more bytes")
    return lines


def packet_detail(p: PacketEvent) -> Text:
    """Every decoded field of one packet, then its captured bytes in hex."""
    out = Text()
    out.append(f"#{p.i}  {p.summary()}\n", style="bold")
    rows = p.details()
    width = max((len(k) for k, _ in rows), default=0)
    for key, value in rows:
        out.append(f"{key:<{width}}  ", style="cyan")
        out.append(value + "\n")
    if p.frame:
        kind = LINKTYPES.get(p.linktype, f"link type {p.linktype}")
        out.append(f"\n{len(p.frame)} bytes captured ({kind})\n", style="bold")
        out.append("\n".join(hexdump(p.frame)), style="dim")
    out.rstrip()
    return out
