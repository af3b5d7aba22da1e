"""The step interface shared by every front end.

A step is a plain object with a stable ``name`` (also its answers section and test id), a
``title`` for humans, and ``run(ctx)``: a generator that does the work and yields events. It
checks ``ctx.cancel`` between units of work (``ctx.check_cancel()`` raises ``Cancelled``) and
raises a ``FirecoreError`` on failure; it never prints. With ``ctx.dry_run`` it may read (browse a
mirror, resolve dependencies) but yields ``Planned`` events instead of writing anything outside
the download cache.

Steps hand results to later steps through ``ctx.results``, a store keyed by type: the release
step puts a ``ReleaseArtifact``, the remaster step gets it with ``ctx.results.need(...)``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

from steps.answers import Answers
from steps.errors import Cancelled, StepError
from steps.events import Event

T = TypeVar("T")


class Results:
    """Outputs of earlier steps, one object per type."""

    def __init__(self) -> None:
        self._items: dict[type[Any], Any] = {}

    def put(self, item: object) -> None:
        """Store ``item``, replacing an earlier one of the same type."""
        self._items[type(item)] = item

    def get(self, kind: type[T]) -> T | None:
        """The stored item of that type, or None."""
        item = self._items.get(kind)
        return item if isinstance(item, kind) else None

    def take(self, kind: type[T]) -> T | None:
        """Remove and return the stored item of that type (something meant to be used once)."""
        item = self.get(kind)
        self._items.pop(kind, None)
        return item

    def need(self, kind: type[T], by: str = "") -> T:
        """The stored item of that type; a StepError if no earlier step produced it."""
        item = self.get(kind)
        if item is None:
            who = f"{by} needs" if by else "needs"
            raise StepError(
                f"{who} {kind.__name__}, which no earlier step produced",
                fix="run the whole plan (or the earlier steps) first",
            )
        return item

    def clear(self) -> None:
        """Forget everything (a new run)."""
        self._items.clear()


@dataclass
class StepContext:
    """What a running step may use: the answers, the cancel flag, earlier results."""

    answers: Answers
    cancel: threading.Event = field(default_factory=threading.Event)
    results: Results = field(default_factory=Results)
    dry_run: bool = False
    cache_dir: Path | None = None
    """Overrides ``build.cache`` (tests); None: answers or the user cache directory."""
    stoppers: list[Callable[[], None]] = field(default_factory=list)
    """How to stop work a step started early (``steps.plan.start_early``); ``close`` calls them."""

    def check_cancel(self) -> None:
        """Raise Cancelled if the user asked to stop."""
        if self.cancel.is_set():
            raise Cancelled()

    def close(self) -> None:
        """The run is over: stop whatever early work is still going (a failed run's probe)."""
        while self.stoppers:
            self.stoppers.pop()()


class Step(Protocol):
    """One unit of the plan; both front ends drive it the same way."""

    name: str
    title: str

    def run(self, ctx: StepContext) -> Iterator[Event]:
        """Do the work, yielding events; raise FirecoreError on failure."""
        ...
