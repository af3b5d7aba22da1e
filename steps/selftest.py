"""The self-test: boot a virtual Pi against the server and report every stage.

``run_selftest`` drives ``steps.wire.virtualpi.VirtualPi`` and yields its stages; ``stage_json`` and
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
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from steps.answers import Answers, resolve_path
from steps.base import StepContext
from steps.errors import StepError, UsageError
from steps.events import Event, LogLine, Progress, Result
from steps.host.rehearsal import Rehearsal
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
        """Boot against a private copy of this server (``steps.host.rehearsal``), not the LAN."""

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
