"""The DESIGN.md "Monitor JSON lines" shapes that the self-test (and the monitor) print.

One ``{"type": "stage", ...}`` object per finished stage, one ``{"type": "summary", ...}`` at the
end; ``stage_line`` is the same stage as one human line.
"""

from __future__ import annotations

from typing import Any

from steps.wire.diagnosis import DIAGNOSES, fix_for
from steps.wire.virtualpi import BootReport, Stage


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
