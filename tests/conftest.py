"""Shared fixtures: answers builders and fake steps for the front-end tests."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from steps.answers import Answers, default_answers
from steps.base import StepContext
from steps.errors import FirecoreError
from steps.events import Event, LogLine, Progress, Result
from tests.support.lab import needs_root

__all__ = ["ROOT", "needs_root"]

ROOT = Path(__file__).resolve().parent.parent

#: fake_mirror / mirror_server (the demo factory's piCore mirror), lab / lan (network namespaces).
pytest_plugins = ["tests.support.fixtures"]


@pytest.fixture
def answers(tmp_path: Path) -> Answers:
    """Default answers with outputs under tmp_path."""
    a = default_answers()
    a.build.output = str(tmp_path / "out")
    a.build.cache = str(tmp_path / "cache")
    return a


@dataclass
class FakeStep:
    """A step that yields scripted events, optionally fails or waits for cancel."""

    name: str
    title: str = ""
    events: list[Event] = field(default_factory=list)
    error: FirecoreError | None = None
    wait_for_cancel: bool = False
    ran: list[str] = field(default_factory=list)

    def run(self, ctx: StepContext) -> Iterator[Event]:
        self.ran.append(self.name)
        yield from self.events
        if self.wait_for_cancel:
            while True:
                ctx.check_cancel()
                ctx.cancel.wait(0.01)
        if self.error is not None:
            raise self.error
        yield Result(self.name, f"{self.name} done", {"ok": True})


def fake_events(step: str) -> list[Any]:
    return [
        LogLine(step, "starting"),
        Progress(step, "download", 50, 100),
        Progress(step, "download", 100, 100),
        LogLine(step, "sfdisk --json x.img", "cmd"),
    ]
