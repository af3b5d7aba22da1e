"""Messages the step runner posts from its worker threads to the screens.

Workers never touch a widget: they only ``post_message`` one of these (thread-safe in Textual),
and the handlers update widgets on the main thread. ``StepEvent`` wraps the domain's events
unchanged; consecutive ``Progress`` events of the same phase coalesce (``can_replace``) so a
chatty download cannot flood the queue, while log lines and results are never dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from textual.message import Message

from steps.errors import FirecoreError
from steps.events import Event, Progress


@dataclass(eq=False)
class StepEvent(Message):
    """A domain event (Progress, LogLine, Planned, Result) from a running step."""

    event: Event

    def can_replace(self, message: Message) -> bool:
        """A newer Progress of the same step and phase supersedes this one."""
        if not isinstance(message, StepEvent):
            return False
        mine, other = self.event, message.event
        return (
            isinstance(mine, Progress)
            and isinstance(other, Progress)
            and (mine.step, mine.phase) == (other.step, other.phase)
        )


@dataclass(eq=False)
class StepStarted(Message):
    """A step of the current run started."""

    name: str
    title: str
    index: int
    count: int


@dataclass(eq=False)
class StepFinished(Message):
    """A step of the current run finished successfully."""

    name: str


@dataclass(eq=False)
class RunFinished(Message):
    """A run ended: all steps done (``error`` None, not cancelled), failed, or cancelled."""

    run: str
    """The run's label ("build", "network", "deploy", "selftest" …)."""
    ok: bool
    cancelled: bool = False
    step: str | None = None
    """The step that failed or was running when cancelled."""
    error: FirecoreError | None = None


@dataclass(eq=False)
class Loaded(Message):
    """A background lookup (listing, checks, scan) returned ``value``."""

    key: str
    value: Any = field(default=None)


@dataclass(eq=False)
class LoadFailed(Message):
    """A background lookup failed with a user-facing error."""

    key: str
    error: FirecoreError


@dataclass(eq=False)
class Streamed(Message):
    """Items a stream (``StepRunner.stream``) yielded since the last batch, in order."""

    stream: int
    """The id ``StepRunner.stream`` returned."""
    items: list[Any]


@dataclass(eq=False)
class StreamEnded(Message):
    """A stream's producer returned, failed (``error``) or was cancelled; no item follows."""

    key: str
    stream: int
    error: FirecoreError | None = None
    cancelled: bool = False
