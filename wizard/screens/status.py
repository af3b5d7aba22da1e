"""Screen 8 — Status: the Pis that announce themselves (mDNS), their health and build ids."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widgets import Button, DataTable, Input, Label, Static

from steps.errors import FirecoreError
from steps.textsafe import printable
from wizard.messages import RunFinished, StepEvent
from wizard.screens.base import PaletteCommand, WizardScreen
from wizard.views import PiSeen
from wizard.widgets.step_runner import StepRunner


def uptime_text(seconds: Any) -> str:
    """Seconds as ``1d 2:03:04`` / ``2:03:04``; "" when unknown."""
    if not isinstance(seconds, int | float):
        return str(seconds or "")
    total = int(seconds)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    clock = f"{hours}:{minutes:02}:{secs:02}"
    return f"{days}d {clock}" if days else clock


def pi_from_data(data: Mapping[str, Any]) -> PiSeen:
    """One Pi from the status step's JSON shape (``status --json``)."""
    return PiSeen(
        serial=str(data.get("serial") or ""),
        hostname=str(data.get("hostname") or data.get("name") or ""),
        address=str(data.get("ip") or ""),
        build_id=str(data.get("build_id") or ""),
        healthy=bool(data.get("healthy")),
        current=data.get("current") if isinstance(data.get("current"), bool) else None,
        uptime=uptime_text(data.get("uptime")),
        model=str(data.get("model") or ""),
        netboot=str(data.get("netboot_text") or "?"),
    )


class StatusScreen(WizardScreen):
    """Which Pis are up, healthy, and running the deployed build."""

    NAME = "status"
    BODY_SCROLLS = False
    HELP = """\
# Status

**Scan** (F5) listens for the Pis' mDNS announcements (`_firecore._tcp`) for the given number of
seconds, then asks each Pi's app for `/health` and `/info`. The table shows each Pi's serial,
hostname, model, address, uptime, health, its **build id** against the one deployed in the
TFTP root (✓ current, ✕ an older build: reboot that Pi to pick up the new one), and whether
**netboot** is enabled as the Pi itself reports it: OTP row 17 on a Pi 3B (`17:3020000a` = on),
BOOT_ORDER on a Pi 4/5, the boot mode it used (see docs/prepare.md).

Nothing found? The Pi may still be booting (about a minute), may be on another segment (mDNS does
not cross routers), or its app failed: run the self-test on the Deploy screen, and check the
dnsmasq log (`firecore-wizard dnsmasq status`). Serials found here can be mapped to per-device
profiles on the Deploy screen.
"""
    BINDINGS = [Binding("f5", "scan", "Scan")]

    def compose_body(self) -> ComposeResult:
        with Horizontal(classes="actions"):
            yield Button("Scan", id="scan", variant="primary", compact=True)
            yield Label(" listen for ")
            yield Input("3", compact=True, id="wait", restrict=r"[0-9.]*", max_length=4)
            yield Label(" s ")
            yield Static("", id="scan-state", markup=False)
        table: DataTable[str] = DataTable(id="pis", cursor_type="row", zebra_stripes=True)
        yield table
        yield StepRunner(clock=self.wizard.clock, id="runner")

    def on_mount(self) -> None:
        super().on_mount()
        table = self.query_one("#pis", DataTable)
        table.add_columns(
            "serial", "hostname", "model", "address", "uptime", "health", "build", "netboot"
        )
        self._show()

    @on(Button.Pressed, "#scan")
    def action_scan(self) -> None:
        """Look for Pis (F5)."""
        runner = self.query_one(StepRunner)
        if runner.running:
            return
        try:
            wait = float(self.query_one("#wait", Input).value or "3")
        except ValueError:
            wait = 3.0
        try:
            step = self.services.status_step(self.state.answers, wait)
        except FirecoreError as exc:
            self.wizard.show_error(exc)
            return
        self.query_one("#scan-state", Static).update(f"listening for {wait:g} s…")
        runner.start("status", [step], self.state.answers, self.state.results)

    @on(StepEvent)
    def _event(self, message: StepEvent) -> None:
        from steps.events import Result

        event = message.event
        if isinstance(event, Result) and event.step == "status" and "pis" in event.data:
            pis = event.data["pis"]
            self.state.pis = [pi_from_data(p) for p in pis if isinstance(p, Mapping)]
            self.query_one("#scan-state", Static).update(event.summary)
            self._show()

    @on(RunFinished)
    def _finished(self, message: RunFinished) -> None:
        if message.run == "status" and message.error is not None:
            self.query_one("#scan-state", Static).update(f"✕ {message.error.message}")
            self.wizard.show_error(message.error)

    def _show(self) -> None:
        table = self.query_one("#pis", DataTable)
        table.clear()
        for pi in self.state.pis:
            build = pi.build_id or "?"
            if pi.current is True:
                build += " ✓ deployed"
            elif pi.current is False:
                build += " ✕ old build"
            # Text, not str: a DataTable reads a str cell as markup, and these come from the LAN
            table.add_row(
                *(
                    Text(printable(cell, 80))
                    for cell in (
                        pi.serial or "?",
                        pi.hostname,
                        pi.model,
                        pi.address,
                        pi.uptime,
                        "healthy" if pi.healthy else "UNHEALTHY",
                        build,
                        pi.netboot or "?",
                    )
                )
            )
        table.border_title = f"Pis found: {len(self.state.pis)}"

    def palette_commands(self) -> Iterable[PaletteCommand]:
        yield (
            "Scan for Pis",
            "Listen for mDNS announcements and poll /health (F5)",
            self.action_scan,
        )
