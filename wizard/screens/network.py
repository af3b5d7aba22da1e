"""Screen 6 — Network: interface, preflight conflicts, the dnsmasq config as a diff, Apply."""

from __future__ import annotations

from collections.abc import Iterable

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.timer import Timer
from textual.widgets import (
    Button,
    Checkbox,
    DataTable,
    Label,
    Select,
    Static,
    TabbedContent,
    TabPane,
)

from steps.answers import resolve_path
from steps.errors import FirecoreError
from wizard.messages import Loaded, LoadFailed, RunFinished
from wizard.screens.base import PaletteCommand, WizardScreen
from wizard.screens.confirm import ConfirmModal
from wizard.views import DnsmasqPreview, Finding, InterfaceRow
from wizard.widgets.answer_field import AnswerField
from wizard.widgets.step_runner import StepRunner

NETWORK_MODES = [
    ("proxy — our dnsmasq beside the LAN's DHCP server", "proxy"),
    ("router — the LAN's DHCP server (OpenWrt …) gives the boot options", "router"),
]
ROUTER_KINDS = [
    ("OpenWrt — a uci batch for /etc/config/dhcp", "openwrt"),
    ("dnsmasq — a drop-in for a plain dnsmasq DHCP server", "dnsmasq"),
]
SERVICE_MODES = [
    ("systemd — restart the system's dnsmasq.service", "systemd"),
    ("process — run our own dnsmasq in the background", "process"),
    ("none — write the config file only", "none"),
]
_GLYPH = {
    "error": ("✕", "bold red"),
    "warning": ("⚠", "yellow"),
    "info": ("·", ""),
    "ok": ("✓", "green"),
}


def diff_text(preview: DnsmasqPreview) -> Text:
    """The config as a coloured unified diff against the installed file (or the whole file)."""
    import difflib

    out = Text()
    if preview.installed is None:
        out.append(
            f"nothing installed at {preview.path} yet — the whole file is new:\n\n", "italic"
        )
        for line in preview.new.splitlines():
            out.append(f"+ {line}\n", "green")
        return out
    lines = list(
        difflib.unified_diff(
            preview.installed.splitlines(),
            preview.new.splitlines(),
            fromfile=f"{preview.path} (installed)",
            tofile=f"{preview.path} (new)",
            lineterm="",
        )
    )
    if not lines:
        out.append(f"{preview.path} is up to date: Apply changes nothing in it.\n\n", "italic")
        for line in preview.new.splitlines():
            out.append(f"  {line}\n", "dim")
        return out
    for line in lines:
        style = (
            "bold"
            if line.startswith(("---", "+++"))
            else "cyan"
            if line.startswith("@@")
            else "green"
            if line.startswith("+")
            else "red"
            if line.startswith("-")
            else "dim"
        )
        out.append(line + "\n", style)
    return out


#: What the Checks tab says in router mode (the router is the DHCP server; nothing to probe here).
ROUTER_CHECKS = (
    "router mode: the checks look for a second DHCP or proxy server beside our own dnsmasq; "
    "here the router is the DHCP server, so there is nothing to check on this host. Apply "
    "checks the router's dnsmasq comes back."
)


class NetworkScreen(WizardScreen):
    """Where the Pis boot from and how dnsmasq serves them."""

    NAME = "network"
    BODY_SCROLLS = False
    HELP = """\
# Network

The Pis boot from the network with **proxy DHCP**: your router keeps handing out addresses, and
dnsmasq on this machine only adds "boot from here" (PXE, option 43) and serves the files over
TFTP. It never leases an address, so it cannot break your LAN.

* **Interface**: pick the wired interface on the Pis' LAN (★ = recommended). Wireless works for
  nothing here: the Pis netboot over Ethernet.
* **Checks** (F6): other DHCP or proxy-DHCP servers on the segment, programs holding udp/67 or
  udp/69, firewall rules dropping them, dnsmasq's version — each with its fix. They run only
  when you ask (F6, or Apply): as root they send one DHCP DISCOVER on the interface and listen
  for `network.probe_seconds`. Opening this screen sends nothing.
* **Config**: the exact file Apply installs, as a diff against what is installed now.
* **Service mode**: *systemd* restarts the system dnsmasq; *process* starts our own dnsmasq that
  keeps running after the wizard exits (`firecore-wizard dnsmasq status|stop`); *none* writes the
  file only.
* **Apply** (F5) runs the network step: check, back up the old file, install, (re)start, verify.

**Router mode** (the Router tab): when your router is the LAN's DHCP server and you have no spare
Linux box there, the router itself gives the Pis their boot options and serves TFTP from its USB
stick. Set `deploy.target` to `ssh://root@ROUTER/mnt/sda1/firecore`: the Config tab then shows
the change to the router's `/etc/config/dhcp` (or a plain dnsmasq's drop-in) as a diff, read over
ssh, and Apply — after you confirm — backs the file up, applies it, restarts dnsmasq there and
checks it came back. Keys only (no password prompts): `ssh-copy-id root@ROUTER` first.
See docs/router.md.
"""
    BINDINGS = [
        Binding("f5", "apply", "Apply"),
        Binding("f6", "checks", "Checks"),
        Binding("f7", "refresh", "Refresh"),
    ]

    _findings: list[Finding] | None = None

    def compose_body(self) -> ComposeResult:
        net = self.state.answers.network
        with TabbedContent(id="tabs"):
            with TabPane("Interface", id="tab-interface"), VerticalScroll():
                table: DataTable[str] = DataTable(id="interfaces", cursor_type="row")
                yield table
                yield AnswerField(self.state, "network.interface", "Interface")
                yield Label("Service mode  [dim]network.dnsmasq_service[/]", classes="field-label")
                yield Select(
                    SERVICE_MODES,
                    value=net.dnsmasq_service,
                    allow_blank=False,
                    compact=True,
                    id="service",
                )
                yield AnswerField(self.state, "network.tftp_root", "TFTP root")
                yield AnswerField(self.state, "network.dnsmasq_conf", "dnsmasq config file")
                yield AnswerField(self.state, "network.state_dir", "State directory")
                # compact, short labels: three bordered checkboxes cost nine rows and were cut
                # at 80 columns
                yield Checkbox(
                    "Only Raspberry Pis  network.only_pis",
                    net.only_pis,
                    compact=True,
                    id="only-pis",
                )
                yield Checkbox(
                    "Pi 3B: offer 1 s late  network.pi3_reply_delay",
                    net.pi3_reply_delay,
                    compact=True,
                    id="reply-delay",
                )
                yield Checkbox(
                    "Stop on a conflict  network.preflight_strict",
                    net.preflight_strict,
                    compact=True,
                    id="strict",
                )
                yield AnswerField(
                    self.state, "network.dnsmasq_extra", "Extra dnsmasq lines", kind="lines"
                )
            with TabPane("Router", id="tab-router"), VerticalScroll():
                yield Label("Mode  [dim]network.mode[/]", classes="field-label")
                yield Select(
                    NETWORK_MODES, value=net.mode, allow_blank=False, compact=True, id="mode"
                )
                yield Label("DHCP server  [dim]network.router_kind[/]", classes="field-label")
                yield Select(
                    ROUTER_KINDS,
                    value=net.router_kind,
                    allow_blank=False,
                    compact=True,
                    id="router-kind",
                )
                yield AnswerField(self.state, "deploy.target", "Router (ssh://user@host/path)")
                yield AnswerField(self.state, "network.router_address", "Router address")
                yield AnswerField(self.state, "deploy.ssh_config", "ssh config file")
            with TabPane("Checks", id="tab-checks"), VerticalScroll():
                yield Static("", id="findings", markup=False)
            with TabPane("Config", id="tab-config"), VerticalScroll():
                yield Static("", id="preview", markup=False)
            with TabPane("Apply", id="tab-apply"):
                with Horizontal(classes="actions"):
                    yield Button("Apply", id="apply", variant="primary", compact=True)
                    yield Static("", id="apply-state", markup=False)
                yield StepRunner(clock=self.wizard.clock, id="runner")

    def on_mount(self) -> None:
        super().on_mount()
        self._debounce: Timer | None = None
        self._shown_for: dict[str, object] = {}
        self.query_one("#interfaces", DataTable).add_columns(
            "", "interface", "address", "kind", "link", "notes"
        )
        self.query_one("#apply-state", Static).update(
            self.state.network_summary or self.state.facts().network.why
        )
        self.query_one("#findings", Static).update(self._checks_note())
        self._refresh_view()

    def _checks_note(self) -> str:
        probe = self.state.answers.network
        if probe.mode == "router":
            return ROUTER_CHECKS
        return (
            "The checks have not run: press F6 to run them (Apply runs them too).\n"
            "They look for other DHCP and proxy-DHCP servers, programs holding udp/67 or "
            f"udp/69 and firewall rules. As root they send one DHCP DISCOVER on "
            f"{probe.interface} and listen for {probe.probe_seconds:g} s "
            "(network.probe_seconds); opening this screen sends nothing."
        )

    # ------------------------------------------------------------------ lookups
    def action_refresh(self) -> None:
        """Read the interfaces and the config preview again (F7); the checks run on F6."""
        self._refresh_view()

    def _refresh_view(self) -> None:
        answers = self.state.answers
        self._shown_for = answers.network.model_dump()
        runner = self.query_one(StepRunner)
        runner.load("interfaces", lambda cancel: self.services.interfaces(answers))
        if answers.network.mode == "router":
            self.query_one("#preview", Static).update("reading the router's config over ssh…")
            runner.load("preview", lambda cancel: self.services.router_preview(answers))
        else:
            runner.load("preview", lambda cancel: self.services.dnsmasq_preview(answers))

    def action_checks(self) -> None:
        """Run the preflight checks and show them (F6)."""
        self.query_one(TabbedContent).active = "tab-checks"
        self._run_checks()

    def _run_checks(self) -> None:
        answers = self.state.answers
        if answers.network.mode == "router":
            self.query_one("#findings", Static).update(ROUTER_CHECKS)
            return
        self.query_one("#findings", Static).update("checking…")
        self.query_one(StepRunner).load(
            "preflight", lambda cancel: self.services.preflight(answers, cancel)
        )

    def _changed_later(self) -> None:
        # the preview follows every change; the checks (which may probe the LAN for seconds)
        # run on F6, on F7 and after Apply. Fields, the select and the checkboxes all report
        # their first value when they are mounted: only a real change re-reads the view (a
        # late second read would rebuild the interface table under the user's cursor).
        if self.state.answers.network.model_dump() == self._shown_for:
            return
        if self._debounce is not None:
            self._debounce.stop()
        self._debounce = self.set_timer(0.4, self._refresh_view)

    @on(AnswerField.Validated)
    def _field(self, event: AnswerField.Validated) -> None:
        if not event.error:
            self._changed_later()

    @on(Loaded)
    def _loaded(self, message: Loaded) -> None:
        if message.key == "interfaces":
            self._show_interfaces(message.value)
        elif message.key == "preview":
            self.query_one("#preview", Static).update(diff_text(message.value))
        elif message.key == "preflight":
            self._findings = list(message.value)
            self._show_findings()

    @on(LoadFailed)
    def _failed(self, message: LoadFailed) -> None:
        error = message.error
        text = f"✕ {error.title}: {error.message}" + (f"\nFix: {error.fix}" if error.fix else "")
        target = {"preview": "#preview", "preflight": "#findings"}.get(message.key)
        if target is None:
            self.wizard.show_error(error)
            return
        self.query_one(target, Static).update(text)

    def _show_interfaces(self, rows: list[InterfaceRow]) -> None:
        table = self.query_one("#interfaces", DataTable)
        table.clear()
        chosen = self.state.answers.network.interface
        for index, row in enumerate(rows):
            link = "up" if row.carrier else "no link" if row.carrier is False else "?"
            table.add_row(
                "★" if row.recommended else "",
                row.name,
                " ".join(row.addresses) or "no IPv4",
                row.kind,
                link,
                "; ".join(row.warnings),
                key=row.name,
            )
            if row.name == chosen:
                table.move_cursor(row=index)

    def _show_findings(self) -> None:
        findings = self._findings or []
        out = Text()
        if not findings:
            out.append("✓ no conflicts found\n", "green")
        for f in findings:
            glyph, style = _GLYPH.get(f.severity, ("·", ""))
            out.append(f"{glyph} {f.message}\n", style)
            if f.fix and f.severity != "info":
                out.append(f"  fix: {f.fix}\n", "italic")
        self.query_one("#findings", Static).update(out)
        errors = sum(1 for f in findings if f.severity == "error")
        warnings = sum(1 for f in findings if f.severity == "warning")
        pane = self.query_one(TabbedContent).get_tab("tab-checks")
        pane.label = f"Checks ({errors}✕ {warnings}⚠)" if errors or warnings else "Checks ✓"

    # ------------------------------------------------------------------ widgets → answers
    @on(DataTable.RowSelected, "#interfaces")
    def _pick(self, event: DataTable.RowSelected) -> None:
        if event.row_key.value:
            self.query_one("#field-network-interface", AnswerField).set_text(event.row_key.value)

    @on(Select.Changed, "#service")
    def _service(self, event: Select.Changed) -> None:
        if isinstance(event.value, str):
            self.set_answer("network.dnsmasq_service", event.value)
            self._changed_later()

    @on(Select.Changed, "#mode")
    def _mode(self, event: Select.Changed) -> None:
        if isinstance(event.value, str) and event.value != self.state.answers.network.mode:
            self.set_answer("network.mode", event.value)
            self._findings = None
            self.query_one("#findings", Static).update(self._checks_note())
            self.action_refresh()

    @on(Select.Changed, "#router-kind")
    def _router_kind(self, event: Select.Changed) -> None:
        if isinstance(event.value, str) and event.value != self.state.answers.network.router_kind:
            self.set_answer("network.router_kind", event.value)
            self._changed_later()

    @on(Checkbox.Changed, "#only-pis")
    def _only_pis(self, event: Checkbox.Changed) -> None:
        self.set_answer("network.only_pis", event.value)
        self._changed_later()

    @on(Checkbox.Changed, "#strict")
    def _strict(self, event: Checkbox.Changed) -> None:
        self.set_answer("network.preflight_strict", event.value)

    @on(Checkbox.Changed, "#reply-delay")
    def _delay(self, event: Checkbox.Changed) -> None:
        self.set_answer("network.pi3_reply_delay", event.value)
        self._changed_later()

    # ------------------------------------------------------------------ apply
    @on(Button.Pressed, "#apply")
    def action_apply(self) -> None:
        """Run the network step (F5)."""
        runner = self.query_one(StepRunner)
        if runner.running:
            return
        if self.problems():
            self.notify(self.problems()[0], title="Fix this first", severity="warning")
            return
        if self.state.answers.network.mode == "router":
            self.app.push_screen(
                ConfirmModal(
                    "Change the router?",
                    "Router mode changes the DHCP server as the Config tab shows: its current "
                    "config is saved on it (and here) first, then dnsmasq there is restarted "
                    "and checked; if it does not come back, the saved config is put back.",
                    "Apply",
                ),
                self._confirmed,
            )
            return
        self._run_network()

    def _confirmed(self, yes: bool | None) -> None:
        if yes:
            self._run_network()

    def _run_network(self) -> None:
        runner = self.query_one(StepRunner)
        self.query_one(TabbedContent).active = "tab-apply"
        try:
            steps = self.services.steps(["network"], self.state.answers)
        except FirecoreError as exc:
            self.wizard.show_error(exc)
            return
        self.query_one("#apply", Button).disabled = True
        self.query_one("#apply-state", Static).update("applying…")
        runner.start("network", steps, self.state.answers, self.state.results)

    @on(RunFinished)
    def _applied(self, message: RunFinished) -> None:
        if message.run != "network":
            return
        self.state.forget_facts()
        self.query_one("#apply", Button).disabled = False
        state = self.query_one("#apply-state", Static)
        results = self.query_one(StepRunner).results
        if message.ok:
            summary = results[0].summary if results else "applied"
            self.state.network_summary = f"✓ {summary}"
            state.update(self.state.network_summary)
            self.action_refresh()
        elif message.cancelled:
            state.update("cancelled — nothing was changed after the last completed phase")
        elif message.error is not None:
            state.update(f"✕ {message.error.message}")
            self.wizard.show_error(message.error)

    def extra_problems(self) -> list[str]:
        runner = self.query(StepRunner)
        if runner and runner.first().running:
            return ["the network step is running"]
        return []

    def palette_commands(self) -> Iterable[PaletteCommand]:
        conf = resolve_path(self.state.answers.network.dnsmasq_conf)
        yield (
            "Apply the network configuration",
            f"Install {conf} and start dnsmasq (F5)",
            self.action_apply,
        )
        yield (
            "Run the preflight checks",
            "Look for conflicts; as root sends one DHCP DISCOVER (F6)",
            self.action_checks,
        )
        yield (
            "Refresh interfaces and preview",
            "Read the interfaces again (F7); sends nothing on the network",
            self.action_refresh,
        )
