"""Screen 9 — Summary: what was built and where, dnsmasq, the Pis seen; save the answers."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widgets import Button, Input, Label, Static

from steps.answers import resolve_path
from steps.artifacts import BuildResult, DeployResult
from steps.errors import FirecoreError
from steps.units import human_size
from wizard.screens.base import PaletteCommand, WizardScreen
from wizard.state import default_answers_path


class SummaryScreen(WizardScreen):
    """The outcome of the session and the answers file that reproduces it."""

    NAME = "summary"
    NEXT_LABEL = "Finish ^n ✓"
    HELP = """\
# Summary

What this session produced: the boot tree (path, build id, size), where dnsmasq's config is and
how it runs, what is deployed, and the Pis seen on the Status screen.

**Write SD image…** (F6) writes the build's SD-card image (`build.sd_image`, or the one
Prepare made for a Pi that cannot netboot) to a card, with the checks of `write-image`.

**Save answers** (F5, or ctrl+s anywhere) writes one complete, commented TOML file holding every
answer — defaults included. `firecore-wizard --answers FILE` runs the same steps headless and
produces the same boot tree byte for byte; `--answers FILE --interactive` reopens this wizard
pre-filled. The token is never in that file: it lives in the `app.secrets_file` (mode 0600).
"""
    BINDINGS = [Binding("f5", "save", "Save answers"), Binding("f6", "write_sd", "Write SD image")]

    def compose_body(self) -> ComposeResult:
        yield Static("", id="report", markup=False)
        with Horizontal(classes="actions"):
            yield Button("Write SD image…", id="write-sd", compact=True)
            yield Static("", id="sd-state", markup=False)
        yield Label("Save answers", classes="section-title")
        with Horizontal(classes="actions"):
            default = self.state.answers_path or default_answers_path()
            yield Input(str(default), compact=True, id="save-path")
            yield Button("Save", id="save", variant="primary", compact=True)
        yield Static("", id="save-state", markup=False)

    def on_mount(self) -> None:
        super().on_mount()
        self.query_one("#report", Static).update(self.report())
        image = self.sd_image()
        self.query_one("#write-sd", Button).disabled = image is None
        self.query_one("#sd-state", Static).update(
            str(image)
            if image
            else "no SD image: set build.sd_image and Build, or Prepare a Pi 1/2/Zero"
        )
        if self.state.saved_to is not None:
            self.query_one("#save-state", Static).update(f"✓ saved to {self.state.saved_to}")

    def report(self) -> Text:
        """The session's outcome, one section per part of the job."""
        a = self.state.answers
        out = Text()

        def head(text: str) -> None:
            out.append(f"{text}\n", "bold")

        head("Built")
        build = self.state.results.get(BuildResult)
        if build is not None:
            demo = "  DEMO (will not boot real hardware)" if build.demo else ""
            out.append(
                f"  {build.output}: build {build.build_id}, {build.files} files, "
                f"{human_size(build.bytes)}{demo}\n"
            )
        elif self.state.output_built():
            out.append(f"  a boot tree exists in {resolve_path(a.build.output)} (built earlier)\n")
        else:
            out.append("  nothing built in this session\n", "yellow")
        stale = self.stale_build()
        if stale:
            out.append(f"  ⚠ {stale}\n", "yellow")
        out.append(
            f"  piCore {a.release.version} {a.release.arch} for "
            f"{', '.join(a.release.boards)}; {len(a.extensions.names)} extensions; app "
            f"{a.app.path or 'bundled'} as {a.app.hostname}:{a.app.port}\n"
        )
        sd = self.sd_image()
        if sd is not None:
            out.append(f"  SD image: {sd}\n")
        if self.state.prepared:
            head("Cards")
            for model, data in sorted(self.state.prepared.items()):
                out.append(f"  {model}: {data.get('image') or data.get('action')}\n")
        head("dnsmasq")
        out.append(
            f"  {a.network.dnsmasq_conf} on {a.network.interface}, service mode "
            f"{a.network.dnsmasq_service}\n"
        )
        out.append(f"  {self.state.network_summary or self.state.facts().network.why}\n")
        if a.network.dnsmasq_service != "none":
            out.append(f"  {self.dnsmasq_keeps_running()}\n", "italic")
        head("Deployed")
        deployed = self.state.results.get(DeployResult)
        if deployed is not None:
            out.append(f"  {deployed.where}/current → {deployed.release}\n")
        else:
            out.append(f"  {self.state.deploy_summary or 'not deployed in this session'}\n")
        if self.state.selftest:
            ok = all(s.ok for s in self.state.selftest)
            out.append(
                f"  self-test: {'PASS' if ok else 'FAIL'} ({len(self.state.selftest)} stages)\n"
            )
        head("Pis seen")
        if not self.state.pis:
            out.append("  none (scan on the Status screen)\n")
        for pi in self.state.pis:
            health = "healthy" if pi.healthy else "UNHEALTHY"
            out.append(
                f"  {pi.serial or '?'} {pi.hostname} {pi.address} build {pi.build_id} {health}\n"
            )
        return out

    def sd_image(self) -> Path | None:
        """The build's SD-card image, if one was written (this session or recorded earlier)."""
        import json

        build = self.state.results.get(BuildResult)
        if build is not None and build.sd_image is not None and build.sd_image.is_file():
            return build.sd_image
        tree = resolve_path(self.state.answers.build.output)
        try:
            name = json.loads((tree / "manifest.json").read_text())["sd_image"]["file"]
        except (OSError, ValueError, KeyError, TypeError):
            return None
        image = tree.parent / str(name)
        return image if image.is_file() else None

    @on(Button.Pressed, "#write-sd")
    def action_write_sd(self) -> None:
        """Write the SD image to a card (F6)."""
        from wizard.screens.write_card import WriteCardModal

        image = self.sd_image()
        if image is None:
            self.notify("no SD image yet: set build.sd_image and Build", severity="warning")
            return
        self.app.push_screen(WriteCardModal(self.services, image, self.wizard.clock))

    def dnsmasq_keeps_running(self) -> str:
        """What happens to dnsmasq when the wizard ends (it keeps serving the Pis)."""
        service = self.state.answers.network.dnsmasq_service
        how = (
            "`firecore-wizard dnsmasq stop` stops it"
            if service == "process"
            else "`systemctl stop dnsmasq` stops it"
        )
        return (
            "dnsmasq keeps running after Finish, so the Pis keep booting: "
            f"`firecore-wizard dnsmasq status` shows it, {how}"
        )

    def before_next(self) -> str | None:
        """Finish: say on the terminal what keeps running after the wizard has gone."""
        if self.state.answers.network.dnsmasq_service != "none":
            self.wizard.farewell = self.dnsmasq_keeps_running()
        return None

    def stale_build(self) -> str:
        """Why the built tree no longer matches the answers ("" when it does or none exists)."""
        if not self.state.output_built():
            return ""
        build = self.state.facts().build
        return "" if build.done else build.why

    @on(Input.Submitted, "#save-path")
    @on(Button.Pressed, "#save")
    def action_save(self) -> None:
        """Write the answers file (F5)."""
        text = self.query_one("#save-path", Input).value.strip()
        if not text:
            self.notify("type where to save the answers", severity="warning")
            return
        path: Path = resolve_path(text)
        state = self.query_one("#save-state", Static)
        try:
            written = self.wizard.save_answers(path)
        except FirecoreError as exc:
            state.update(f"✕ {exc.message}")
            self.wizard.show_error(exc)
            return
        secrets = self.state.secrets_path()
        extra = f"; token in {secrets} (0600)" if self.state.token and secrets else ""
        state.update(
            f"✓ saved to {written}{extra}\nRun it headless: firecore-wizard --answers {written}"
        )
        self.refresh_nav()

    def palette_commands(self) -> Iterable[PaletteCommand]:
        yield (
            "Save answers here",
            "Write the answers file typed on Summary (F5)",
            self.action_save,
        )
