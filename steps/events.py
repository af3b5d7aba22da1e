"""Typed events that steps yield and front ends render.

A step never prints: every user-visible line is one of these small frozen dataclasses. The
headless runner turns them into stderr lines or JSON objects (``to_json``); the Textual app wraps
them in a message and renders them on the main thread. ``Progress`` events may be coalesced by a
front end; ``LogLine`` and ``Result`` never are.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, TypeVar

Stream = Literal["info", "cmd", "stdout", "stderr", "warning"]
Unit = Literal["bytes", "files", "items", "steps"]
E = TypeVar("E")
R = TypeVar("R")


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

#: How a person tells the streams apart, in the headless transcript and the TUI log alike:
#: ``> `` a command about to run, ``< `` its output, ``<! `` its stderr, ``WARNING `` a warning.
STREAM_PREFIX: dict[Stream, str] = {
    "info": "",
    "cmd": "> ",
    "stdout": "< ",
    "stderr": "<! ",
    "warning": "WARNING ",
}


def log_text(line: LogLine) -> str:
    """The line as a person reads it: its stream's prefix, then the text."""
    return STREAM_PREFIX[line.stream] + line.text


def plan_text(planned: Planned) -> str:
    """``action target  (detail)``: one planned change as a person reads it."""
    detail = f"  ({planned.detail})" if planned.detail else ""
    return f"{planned.action} {planned.target}{detail}"


_TYPE_NAMES: dict[type, str] = {
    Progress: "progress",
    LogLine: "log",
    Planned: "plan",
    Result: "result",
}


def to_json(event: Event) -> dict[str, Any]:
    """The event as one JSON object with a ``type`` key first (the ``--json`` line format)."""
    return {"type": _TYPE_NAMES[type(event)], **asdict(event)}


def drive(gen: Generator[E, Any, R], on_event: Callable[[E], object] | None = None) -> R:
    """Run a generator to its end and return its return value.

    The domain's library functions yield progress and *return* their result (``yield from``
    style, e.g. ``Downloader.meta_many``); a caller that shows no progress drives them with this.
    ``on_event`` sees every event on the way (``events.append`` collects them).
    """
    while True:
        try:
            event = next(gen)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        if on_event is not None:
            on_event(event)
