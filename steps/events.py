"""Typed events that steps yield and front ends render.

A step never prints: every user-visible line is one of these small frozen dataclasses. The
headless runner turns them into stderr lines or JSON objects (``to_json``); the Textual app wraps
them in a message and renders them on the main thread. ``Progress`` events may be coalesced by a
front end; ``LogLine`` and ``Result`` never are.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Stream = Literal["info", "cmd", "stdout", "stderr", "warning"]
Unit = Literal["bytes", "files", "items", "steps"]


@dataclass(frozen=True)
class Progress:
    """Work done so far in one phase of a step.

    ``total`` None means indeterminate. ``phase`` is a stable id ("download", "pack" …) so a UI
    can keep one bar per phase.
    """

    step: str
    phase: str
    done: float
    total: float | None = None
    unit: Unit = "bytes"
    message: str = ""


@dataclass(frozen=True)
class LogLine:
    """One line for the log: a message, a command about to run, or its output."""

    step: str
    text: str
    stream: Stream = "info"


@dataclass(frozen=True)
class Planned:
    """Something the step would do (dry run) or is about to do: write a file, start a service."""

    step: str
    action: str
    target: str
    detail: str = ""


@dataclass(frozen=True)
class Result:
    """The step's outcome: a one-line summary plus JSON-able data for ``--json``."""

    step: str
    summary: str
    data: Mapping[str, Any] = field(default_factory=dict)


Event = Progress | LogLine | Planned | Result

_TYPE_NAMES: dict[type, str] = {
    Progress: "progress",
    LogLine: "log",
    Planned: "plan",
    Result: "result",
}


def to_json(event: Event) -> dict[str, Any]:
    """The event as one JSON object with a ``type`` key first (the ``--json`` line format)."""
    return {"type": _TYPE_NAMES[type(event)], **asdict(event)}
