"""Screen 7 — Deploy: releases in the TFTP root, per-device profiles, Deploy/Rollback, self-test."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import (
    Button,
    DataTable,
    Input,
    Label,
    Select,
    Static,
    TabbedContent,
    TabPane,
)

from steps.errors import FirecoreError
from wizard.messages import Loaded, LoadFailed, RunFinished, StepEvent
from wizard.screens.base import PaletteCommand, WizardScreen
from wizard.views import StageLine, TftpState
from wizard.widgets.step_runner import StepRunner

MODELS = [("Pi 3 boot ROM", "pi3"), ("Pi 4 bootloader", "pi4"), ("Pi 5 bootloader", "pi5")]
#: Where the virtual Pi boots: a private copy of this server (works on the server itself), or
#: the real LAN through the chosen interface (only from another machine: a NIC never hands its
#: own frames to the local dnsmasq).
WHERE = [("rehearsal here", "rehearse"), ("on the LAN", "lan")]


def stage_lines(data: Any) -> list[StageLine]:
    """Stage records from a self-test Result's data (``stages``: the selftest JSON shape)."""
    stages = data.get("stages", []) if isinstance(data, dict) else []
    out = []
    for raw in stages:
        if isinstance(raw, dict) and "stage" in raw:
            out.append(
                StageLine(
                    str(raw["stage"]),
                    bool(raw.get("ok")),
                    str(raw.get("message", "")),
                    str(raw.get("code") or ""),
                )
            )
    return out


class DeployScreen(WizardScreen):
    """Publish the boot tree, map serials to profiles, roll back, and self-test."""

    NAME = "deploy"
    BODY_SCROLLS = False
    HELP = """\
# Deploy

**Deploy** (F5) copies the boot tree into `<tftp_root>/releases/<id>/` and then switches the
`current` link to it in one atomic step: a Pi that is booting right now gets either the old or
the new release, never a mix. **Rollback** (F6) switches `current` back to the previous release
instantly. `deploy.keep` releases are kept.

**Devices**: a Pi asks for `<serial>/start.elf` first; a serial mapped to a **profile** gets its
own tree (its hostname, settings, kernel flags, config.txt lines); every other Pi gets the
default tree. Serials seen by the Status screen or the self-test can be picked from the list.
The serial is the last 8 hex digits of the Pi's serial number (printed on the board's boot
screen, in /proc/cpuinfo, or in the dnsmasq log as the PXE client's GUID).

**Self-test** (F7) is a virtual Pi: from the Network screen's interface it sends exactly what a
Pi 3 boot ROM or a Pi 4 bootloader sends, checks the proxy offer, fetches every file over TFTP
and compares it with the deployed manifest. One line per stage, with a diagnosis code and fix
when a stage fails. It needs root (raw sockets).
"""
    DEFAULT_CSS = """
    #stages-box { height: 1fr; min-height: 3; }
    #stages { width: 1fr; height: auto; }
    #verdict { height: auto; }
    #selftest-runner { height: 1fr; min-height: 5; }
    """
    BINDINGS = [
        Binding("f5", "deploy", "Deploy"),
        Binding("f6", "rollback", "Rollback"),
        Binding("f7", "selftest", "Self-test"),
    ]

    _selftest_fix = ""

    def compose_body(self) -> ComposeResult:
        with TabbedContent(id="tabs"):
            with TabPane("Releases", id="tab-releases"):
                with Horizontal(classes="actions"):
                    yield Button("Deploy", id="deploy", variant="primary", compact=True)
                    yield Button("Rollback", id="rollback", compact=True)
                    yield Static("", id="deploy-state", markup=False)
                releases: DataTable[str] = DataTable(id="releases", cursor_type="row")
                yield releases
                yield StepRunner(clock=self.wizard.clock, id="deploy-runner")
            with TabPane("Devices", id="tab-devices"), VerticalScroll():
                devices: DataTable[str] = DataTable(id="devices", cursor_type="row")
                yield devices
                yield Label("Map a serial to a profile", classes="section-title")
                # two short rows: one row of five controls is cut off at 80 columns
                with Horizontal(classes="actions"):
                    yield Select[str]([], prompt="seen serials", compact=True, id="seen")
                    yield Input(placeholder="serial (8 hex)", compact=True, id="serial")
                with Horizontal(classes="actions"):
                    yield Select[str]([], prompt="profile", compact=True, id="profile")
                    yield Button("Add", id="add-device", compact=True)
                    yield Button("Remove", id="remove-device", compact=True)
                yield Static("", id="device-error", markup=False)
                yield Label("New profile", classes="section-title")
                with Horizontal(classes="actions"):
                    yield Input(placeholder="profile name", compact=True, id="profile-name")
                    yield Input(
                        placeholder="hostname (optional)", compact=True, id="profile-hostname"
                    )
                    yield Button("Add profile", id="add-profile", compact=True)
                yield Static("", id="profile-error", markup=False)
            with TabPane("Self-test", id="tab-selftest"):
                with Horizontal(classes="actions"):
                    yield Select(MODELS, value="pi3", allow_blank=False, compact=True, id="model")
                    yield Select(
                        WHERE, value="rehearse", allow_blank=False, compact=True, id="where"
                    )
                    yield Input(placeholder="serial (optional)", compact=True, id="test-serial")
                    yield Button("Run self-test", id="selftest", variant="primary", compact=True)
                # the verdict first, always in view; the stages below it scroll (80×24)
                yield Static("", id="verdict", markup=False)
                with VerticalScroll(id="stages-box"):
                    yield Static("", id="stages", markup=False)
                yield StepRunner(clock=self.wizard.clock, id="selftest-runner")

    def on_mount(self) -> None:
        super().on_mount()
        self.query_one("#releases", DataTable).add_columns("", "release", "build", "")
        self.query_one("#devices", DataTable).add_columns("serial", "profile", "hostname")
        self._show_devices()
        self._show_stages()
        self.query_one("#deploy-state", Static).update(self.state.deploy_summary)
        self.action_refresh()

    # ------------------------------------------------------------------ releases
    def action_refresh(self) -> None:
        """Read the TFTP root again."""
        answers = self.state.answers
        self.query_one("#deploy-runner", StepRunner).load(
            "tftp", lambda cancel: self.services.tftp_state(answers)
        )

    @on(Loaded)
    def _loaded(self, message: Loaded) -> None:
        if message.key == "tftp":
            self._show_releases(message.value)
        elif message.key == "rollback":
            self.state.forget_facts()
            self.state.deploy_summary = f"✓ rolled back: current → {message.value}"
            self.query_one("#deploy-state", Static).update(self.state.deploy_summary)
            self.action_refresh()

    @on(LoadFailed)
    def _failed(self, message: LoadFailed) -> None:
        if message.key == "tftp":
            self.query_one("#releases", DataTable).border_subtitle = message.error.message
            return
        self.wizard.show_error(message.error)

    def _show_releases(self, tftp: TftpState) -> None:
        table = self.query_one("#releases", DataTable)
        table.clear()
        table.border_title = f"Releases in {tftp.root}"
        table.border_subtitle = tftp.note
        for rel in tftp.releases:
            table.add_row(
                "▶ live" if rel.current else "",
                rel.name,
                rel.build_id,
                "DEMO" if rel.demo else "",
                key=rel.name,
            )

    @on(Button.Pressed, "#deploy")
    def action_deploy(self) -> None:
        """Deploy the built tree (F5)."""
        self._start(
            "deploy", "#deploy-runner", lambda: self.services.steps(["deploy"], self.state.answers)
        )

    @on(Button.Pressed, "#rollback")
    def action_rollback(self) -> None:
        """Switch back to the previous release (F6), once the user confirms it."""
        from wizard.screens.confirm import ConfirmModal

        root = self.state.answers.network.tftp_root
        modal = ConfirmModal(
            "Roll back?",
            f"{root}/current will point at the release that was live before this one. Pis that "
            "boot from now on get the older release; running Pis keep theirs until they reboot.",
            "Roll back",
        )
        self.app.push_screen(modal, self._rollback_confirmed)

    def _rollback_confirmed(self, ok: bool | None) -> None:
        if not ok:
            return
        answers = self.state.answers
        self.query_one("#deploy-state", Static).update("rolling back…")
        self.query_one("#deploy-runner", StepRunner).load(
            "rollback", lambda cancel: self.services.rollback(answers)
        )

    def _start(self, run: str, runner_id: str, make: Any) -> None:
        runner = self.query_one(runner_id, StepRunner)
        if runner.running:
            return
        try:
            steps = make()
            steps = steps if isinstance(steps, list) else [steps]
        except FirecoreError as exc:
            self.wizard.show_error(exc)
            return
        runner.start(run, steps, self.state.answers, self.state.results)
        self.refresh_nav()

    @on(RunFinished)
    def _finished(self, message: RunFinished) -> None:
        self.state.forget_facts()
        if message.run == "deploy":
            results = self.query_one("#deploy-runner", StepRunner).results
            if message.ok:
                self.state.deploy_summary = f"✓ {results[0].summary}" if results else "✓ deployed"
            elif message.error is not None:
                self.state.deploy_summary = f"✕ {message.error.message}"
                self.wizard.show_error(message.error)
            else:
                self.state.deploy_summary = "cancelled — current still points at the old release"
            self.query_one("#deploy-state", Static).update(self.state.deploy_summary)
            self.action_refresh()
        elif message.run == "selftest":
            if message.error is not None and not self.state.selftest:
                self.wizard.show_error(message.error)
            self._selftest_fix = message.error.fix if message.error is not None else ""
            self._show_stages(message.ok)
        self.refresh_nav()

    # ------------------------------------------------------------------ self-test
    @on(Button.Pressed, "#selftest")
    def action_selftest(self) -> None:
        """Boot a virtual Pi against the deployed tree (F7)."""
        model = str(self.query_one("#model", Select).value)
        serial = self.query_one("#test-serial", Input).value.strip().lower()
        rehearse = self.query_one("#where", Select).value == "rehearse"
        self.state.selftest = []
        self._selftest_fix = ""
        self.query_one("#verdict", Static).update("booting a virtual Pi…")
        self.query_one("#stages", Static).update("")
        self.query_one(TabbedContent).active = "tab-selftest"
        self._start(
            "selftest",
            "#selftest-runner",
            lambda: self.services.selftest(self.state.answers, model, serial, rehearse=rehearse),
        )

    @on(StepEvent)
    def _stage_event(self, message: StepEvent) -> None:
        from steps.events import Result

        event = message.event
        if isinstance(event, Result) and event.step == "selftest":
            stages = stage_lines(event.data)
            if stages:
                self.state.selftest = stages
                self._show_stages()

    def _show_stages(self, ok: bool | None = None) -> None:
        verdict, out = Text(), Text()
        stages = self.state.selftest
        for stage in stages:
            mark, style = ("✓", "") if stage.ok else ("✕", "bold red")
            code = f" [{stage.code}]" if stage.code else ""
            out.append(f"{mark} {stage.stage}{code}: {stage.message}\n", style)
        failed = next((s for s in stages if not s.ok), None)
        if stages and failed is None:
            verdict.append(f"PASS: the virtual Pi booted ({len(stages)} stages)", "bold green")
        elif failed is not None:
            code = f" [{failed.code}]" if failed.code else ""
            verdict.append(f"FAIL at {failed.stage}{code}: {failed.message}", "bold red")
            if self._selftest_fix:
                verdict.append(f"\nFix: {self._selftest_fix}", "green")
        elif ok is False:
            verdict.append("The self-test did not run: see the log below", "yellow")
        self.query_one("#verdict", Static).update(verdict)
        self.query_one("#stages", Static).update(out)

    # ------------------------------------------------------------------ devices
    def _show_devices(self) -> None:
        deploy = self.state.answers.deploy
        table = self.query_one("#devices", DataTable)
        table.clear()
        for serial, profile in sorted(deploy.devices.items()):
            hostname = deploy.profiles[profile].hostname if profile in deploy.profiles else ""
            table.add_row(serial, profile, hostname or "(app.hostname)", key=serial)
        table.border_title = "Per-device profiles (deploy.devices)"
        table.border_subtitle = "" if deploy.devices else "none: one tree for every Pi"
        seen = {p.serial for p in self.state.pis if p.serial}
        seen -= set(deploy.devices)
        self.query_one("#seen", Select).set_options([(s, s) for s in sorted(seen)])
        self.query_one("#profile", Select).set_options([(p, p) for p in sorted(deploy.profiles)])

    @on(Select.Changed, "#seen")
    def _seen(self, event: Select.Changed) -> None:
        if isinstance(event.value, str):
            self.query_one("#serial", Input).value = event.value

    @on(Button.Pressed, "#add-device")
    def _add_device(self) -> None:
        serial = self.query_one("#serial", Input).value.strip()
        profile = self.query_one("#profile", Select).value
        devices = dict(self.state.answers.deploy.devices)
        devices[serial] = profile if isinstance(profile, str) else ""
        if self.set_answer(
            "deploy.devices", devices, self.query_one("#device-error", Static), blocking=False
        ):
            self.query_one("#serial", Input).value = ""
            self._show_devices()

    @on(Button.Pressed, "#remove-device")
    def _remove_device(self) -> None:
        table = self.query_one("#devices", DataTable)
        if table.row_count == 0:
            return
        serial = str(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)
        devices = {k: v for k, v in self.state.answers.deploy.devices.items() if k != serial}
        self.set_answer(
            "deploy.devices", devices, self.query_one("#device-error", Static), blocking=False
        )
        self._show_devices()

    @on(Button.Pressed, "#add-profile")
    def _add_profile(self) -> None:
        name = self.query_one("#profile-name", Input).value.strip()
        hostname = self.query_one("#profile-hostname", Input).value.strip()
        profiles = {
            k: v.model_dump(mode="python") for k, v in self.state.answers.deploy.profiles.items()
        }
        profiles[name] = {"hostname": hostname}
        if self.set_answer(
            "deploy.profiles", profiles, self.query_one("#profile-error", Static), blocking=False
        ):
            self.query_one("#profile-name", Input).value = ""
            self.query_one("#profile-hostname", Input).value = ""
            self._show_devices()

    def extra_problems(self) -> list[str]:
        running = [r for r in self.query(StepRunner) if r.running]
        return ["wait for the running deploy/self-test to finish"] if running else []

    def palette_commands(self) -> Iterable[PaletteCommand]:
        yield (
            "Deploy the boot tree",
            "Publish build.output and switch current (F5)",
            self.action_deploy,
        )
        yield (
            "Roll back",
            "Switch current back to the previous release (F6)",
            self.action_rollback,
        )
        yield ("Run the virtual-Pi self-test", "Boot an emulated Pi 3/4 (F7)", self.action_selftest)
        yield ("Refresh the release list", "Read the TFTP root again", self.action_refresh)
