"""The self-test: boot a virtual Pi against the server and report every stage.

``run_selftest`` drives ``steps.virtualpi.VirtualPi`` and yields its stages; ``stage_json`` and
``summary_json`` give the DESIGN.md "Monitor JSON lines" shapes (``selftest --json``), and
``SelftestStep`` wraps the same run as a step for the TUI's Deploy screen (it is not part of the
headless plan: a self-test needs an interface on the Pis' LAN and root, and may run on another
machine).

The deployed manifest, when known, makes the test stricter: every file read completely must have
the sha256 the manifest lists for that path (``<serial>/…`` paths included), so a stale or
hand-edited TFTP root fails as ``manifest-mismatch``.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from steps.answers import Answers, resolve_path
from steps.base import StepContext
from steps.diagnosis import DIAGNOSES, fix_for
from steps.errors import StepError, UsageError
from steps.events import Event, LogLine, Progress, Result
from steps.rehearsal import Rehearsal
from steps.virtualpi import DEFAULT_SERIAL, BootOptions, BootReport, Stage, VirtualPi

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


def check_serial(serial: str) -> str:
    """A serial as the firmware writes its prefix: 8 lower-case hex digits.

    Raises:
        UsageError: anything else.
    """
    low = serial.lower()
    if len(low) != 8 or any(c not in "0123456789abcdef" for c in low):
        raise UsageError(
            f"{serial!r} is not a serial number (8 hex digits, e.g. 9ffefdef)",
            fix="use the low 8 hex digits of /proc/cpuinfo's Serial",
        )
    return low


def run_selftest(
    iface: str,
    *,
    model: str = "pi3",
    serial: str = DEFAULT_SERIAL,
    mac: str | None = None,
    manifest: Mapping[str, Any] | None = None,
    options: BootOptions | None = None,
    cancel: threading.Event | None = None,
    report: BootReport | None = None,
) -> Iterator[Stage]:
    """Boot one virtual Pi on ``iface`` and yield each stage as it finishes.

    Raises:
        UsageError: bad model/serial, no such interface, or not root.
    """
    if model not in ("pi3", "pi4"):
        raise UsageError(f"model {model!r} is not pi3 or pi4")
    opts = options or BootOptions()
    if manifest is not None:
        opts.manifest = manifest
    pi = VirtualPi(
        iface,
        model=model,  # type: ignore[arg-type]
        serial=check_serial(serial),
        mac=mac,
        options=opts,
        cancel=cancel,
    )
    if report is None:
        report = pi.new_report()
    report.mac, report.model, report.serial = pi.mac, pi.model, pi.serial
    yield from pi.boot(report)


def stage_json(stage: Stage, mac: str) -> dict[str, Any]:
    """One ``{"type": "stage", ...}`` line of ``selftest --json``."""
    obj: dict[str, Any] = {
        "type": "stage",
        "mac": mac,
        "stage": stage.stage,
        "ok": stage.ok,
        "code": stage.code,
        "message": stage.message,
    }
    if not stage.ok and stage.code:
        obj["severity"] = DIAGNOSES[stage.code].severity if stage.code in DIAGNOSES else "error"
        obj["fix"] = fix_for(stage.code)
    if stage.file is not None:
        obj.update(
            file=stage.file,
            status=stage.status,
            bytes=stage.bytes,
            sha256=stage.sha256,
            required=stage.required,
        )
        obj.update({k: v for k, v in stage.data.items() if k in ("tsize", "blksize", "options")})
    obj["elapsed"] = round(stage.elapsed, 3)
    return obj


def summary_json(reports: list[BootReport]) -> dict[str, Any]:
    """The final ``{"type": "summary", ...}`` line, in the monitor's summary shape."""
    return {
        "type": "summary",
        "ok": all(r.ok for r in reports),
        "clients": [r.client() for r in reports],
    }


def stage_line(stage: Stage) -> str:
    """One human line: ``PASS tftp:start.elf  60000 bytes …`` / ``FAIL … [code]``."""
    mark = "PASS" if stage.ok else "FAIL"
    code = f" [{stage.code}]" if stage.code and not stage.ok else ""
    return f"{mark} {stage.stage}: {stage.message}{code}"


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
    ) -> None:
        self.interface = interface
        self.model = model
        self.serial = serial or DEFAULT_SERIAL
        self.manifest = manifest
        self.options = options
        self.rehearse = rehearse
        """Boot against a private copy of this server (``steps.rehearsal``), not the LAN."""

    def run(self, ctx: StepContext) -> Iterator[Event]:
        """Boot the virtual Pi; one log line per stage; fail with the first failure's code."""
        iface = self.interface or ctx.answers.network.interface
        path = self.manifest or deployed_manifest(ctx.answers)
        manifest = load_manifest(path) if path is not None else None
        if manifest is not None:
            yield LogLine(NAME, f"comparing every file with {path}")
        report = BootReport("", self.model, self.serial)
        stages: list[Stage] = []
        with contextlib.ExitStack() as stack:
            if self.rehearse:
                rehearsal = stack.enter_context(Rehearsal(ctx.answers, cancel=ctx.cancel))
                yield from rehearsal.start()
                source = rehearsal.boot(
                    model=self.model,
                    serial=self.serial,
                    manifest=manifest,
                    report=report,
                    options=self.options,
                )
            else:
                source = run_selftest(
                    iface,
                    model=self.model,
                    serial=self.serial,
                    manifest=manifest,
                    options=self.options,
                    cancel=ctx.cancel,
                    report=report,
                )
            yield from self._stages(source, stages)
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

    @staticmethod
    def _stages(source: Iterator[Stage], into: list[Stage]) -> Iterator[Event]:
        for stage in source:
            into.append(stage)
            yield LogLine(NAME, stage_line(stage), "info" if stage.ok else "warning")
            yield Progress(NAME, "stages", len(into), None, "steps", stage.stage)
