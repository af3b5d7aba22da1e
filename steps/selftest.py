"""The self-test: boot a virtual Pi against the server and report every stage.

``boot_stages`` boots ``steps.wire.virtualpi.VirtualPi`` on the LAN or in a rehearsal and yields
its stages; ``steps.wire.jsonlines`` gives the DESIGN.md "Monitor JSON lines" shapes (``selftest
--json``), and ``SelftestStep`` wraps the same boot as a step for the TUI's Deploy screen (it is
not part of the headless plan: a self-test needs an interface on the Pis' LAN and root, and may
run on another machine).

The deployed manifest, when known, makes the test stricter: every file read completely must have
the sha256 the manifest lists for that path (``<serial>/…`` paths included), so a stale or
hand-edited TFTP root fails as ``manifest-mismatch``.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from steps.answers import Answers, resolve_path
from steps.base import StepContext
from steps.errors import FirecoreError, StepError, UsageError
from steps.events import Event, LogLine, Progress, Result
from steps.host.rehearsal import Rehearsal
from steps.host.remotedeploy import RemoteDeploy
from steps.host.sshrun import ssh_for
from steps.wire.diagnosis import fix_for
from steps.wire.jsonlines import stage_json, stage_line, summary_json
from steps.wire.virtualpi import (
    DEFAULT_SERIAL,
    BootOptions,
    BootReport,
    Stage,
    run_selftest,
)

NAME = "selftest"


def load_manifest(path: Path) -> dict[str, Any]:
    """Read a deployed manifest.json.

    Raises:
        UsageError: missing, unreadable or without a ``files`` table.
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"manifest {path} does not exist", fix="check --manifest") from None
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read manifest {path}: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("files"), dict):
        raise UsageError(
            f"{path} is not a firecore manifest (no `files` table)",
            fix="use <tftp_root>/current/manifest.json or build.output/manifest.json",
        )
    return data


def deployed_manifest(answers: Answers) -> Path | None:
    """``<network.tftp_root>/current/manifest.json`` if this host has one."""
    path = resolve_path(answers.network.tftp_root) / "current" / "manifest.json"
    return path if path.is_file() else None


def find_manifest(answers: Answers, given: Path | None = None) -> tuple[str, dict[str, Any]] | None:
    """The manifest to compare every file with: ``given``, else the deployed one — on this host,
    or on deploy.target's host when that is remote (read over ssh; unreachable: None).

    Returns where it is and its contents, or None when there is none to compare with.

    Raises:
        UsageError: ``given`` (or the deployed one) is missing or not a manifest.
    """
    if given is not None:
        return str(given), load_manifest(given)
    ssh = ssh_for(answers)
    if ssh is not None:
        try:
            manifest = RemoteDeploy(ssh).live_manifest()
        except FirecoreError:
            return None
        where = f"{ssh.target}/current/manifest.json"
        return (where, manifest) if manifest is not None else None
    path = deployed_manifest(answers)
    return (str(path), load_manifest(path)) if path is not None else None


def boot_stages(
    answers: Answers,
    report: BootReport,
    *,
    interface: str | None = None,
    mac: str | None = None,
    manifest: Mapping[str, Any] | None = None,
    options: BootOptions | None = None,
    rehearse: bool = False,
    cancel: threading.Event | None = None,
    prefix: str = "serial",
    stepping: str = "c1",
) -> Iterator[Event | Stage]:
    """Boot a virtual Pi (``report``'s model and serial) and yield each stage as it finishes.

    It boots on the Pis' LAN from ``interface`` (default ``network.interface``), or, with
    ``rehearse``, against a private copy of this server in network namespaces
    (``steps.host.rehearsal``), whose set-up events come first. ``report`` fills in as it goes.
    ``prefix`` is a Pi 4/5's TFTP_PREFIX ("serial" or "mac"), ``stepping`` a Pi 5's BCM2712
    stepping ("d0" boards load bcm2712d0-rpi-5-b.dtb). The self-test step and the ``selftest``
    command both boot through here.
    """
    if not rehearse:
        yield from run_selftest(
            interface or answers.network.interface,
            model=report.model,
            serial=report.serial,
            mac=mac,
            manifest=manifest,
            options=options,
            cancel=cancel,
            report=report,
            prefix=prefix,
            stepping=stepping,
        )
        return
    with Rehearsal(answers, cancel=cancel) as rehearsal:
        yield from rehearsal.start()
        yield from rehearsal.boot(
            model=report.model,
            serial=report.serial,
            manifest=manifest,
            report=report,
            options=options,
            prefix=prefix,
            stepping=stepping,
        )


class SelftestStep:
    """The virtual-Pi self-test as a step (TUI Deploy screen); not in the headless plan."""

    name = NAME
    title = "Self-test (virtual Pi)"

    def __init__(
        self,
        *,
        interface: str | None = None,
        model: str = "pi3",
        serial: str | None = None,
        manifest: Path | None = None,
        options: BootOptions | None = None,
        rehearse: bool = False,
        prefix: str = "serial",
        stepping: str = "c1",
    ) -> None:
        self.interface = interface
        self.model = model
        self.serial = serial or DEFAULT_SERIAL
        self.manifest = manifest
        self.options = options
        self.rehearse = rehearse
        """Boot against a private copy of this server (``steps.host.rehearsal``), not the LAN."""
        self.prefix = prefix
        """The Pi 4/5's TFTP_PREFIX: "serial" (0, the default) or "mac" (2)."""
        self.stepping = stepping
        """A virtual Pi 5's BCM2712 stepping ("d0" loads bcm2712d0-rpi-5-b.dtb)."""

    def run(self, ctx: StepContext) -> Iterator[Event]:
        """Boot the virtual Pi; one log line per stage; fail with the first failure's code."""
        found = find_manifest(ctx.answers, self.manifest)
        if found is not None:
            yield LogLine(NAME, f"comparing every file with {found[0]}")
        report = BootReport("", self.model, self.serial)
        stages: list[Stage] = []
        for item in boot_stages(
            ctx.answers,
            report,
            interface=self.interface,
            manifest=found[1] if found else None,
            options=self.options,
            rehearse=self.rehearse,
            cancel=ctx.cancel,
            prefix=self.prefix,
            stepping=self.stepping,
        ):
            if not isinstance(item, Stage):
                yield item  # the rehearsal's set-up
                continue
            stages.append(item)
            yield LogLine(NAME, stage_line(item), "info" if item.ok else "warning")
            yield Progress(NAME, "stages", len(stages), None, "steps", item.stage)
        first_fail = next((s for s in stages if not s.ok), None)
        data = {
            "ok": report.ok,
            "stages": [stage_json(s, report.mac) for s in stages],
            "summary": summary_json([report]),
        }
        if report.ok:
            yield Result(
                NAME,
                f"virtual {self.model} {report.mac} booted: {len(stages)} stages passed "
                f"(TFTP server {report.server}, address {report.ip})",
                data,
            )
            return
        failed = first_fail or (stages[-1] if stages else None)
        what = f"{failed.stage}: {failed.message}" if failed else "no stage ran"
        code = failed.code if failed else None
        # the stages go out first (a front end shows them), then the step fails
        yield Result(NAME, f"virtual {self.model} {report.mac} did NOT boot", data)
        raise StepError(
            f"the virtual {self.model} did not boot — {what}" + (f" [{code}]" if code else ""),
            fix=fix_for(code),
            title="Self-test failed",
        )
