"""The plan: the ordered steps both front ends run for a set of answers.

Each entry names the step, its title and where its class lives. ``build_plan`` hands out steps
whose module is imported only when the step starts (or starts its early work): a run pays for
the download client, the image tools or the network stack only when it reaches the step that
uses them, and importing this module stays cheap.

``start_early`` lets the steps begin work that does not depend on earlier steps before the first
step runs — the network step's segment probe listens for seconds while the build goes on.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from steps.answers import Answers, check_answers
from steps.base import Step, StepContext
from steps.events import Event


@dataclass(frozen=True)
class PlanEntry:
    """One step of the plan, described without importing it."""

    name: str
    title: str
    target: str
    """"module:Class"."""
    early: bool = False
    """The class has ``start_early(ctx)``: work to begin when the run begins."""


#: The steps, in the order they run.
PLAN: list[PlanEntry] = [
    PlanEntry("release", "Release", "steps.release:ReleaseStep"),
    PlanEntry("extensions", "Extensions", "steps.extensions:ExtensionsStep"),
    PlanEntry("app", "App", "steps.app:AppStep"),
    PlanEntry("remaster", "Remaster", "steps.remaster:RemasterStep"),
    PlanEntry("network", "Network", "steps.network:NetworkStep", early=True),
    PlanEntry("deploy", "Deploy", "steps.deploy:DeployStep"),
]


class DeferredStep:
    """A plan step whose class is imported and built when it is first used."""

    def __init__(self, entry: PlanEntry) -> None:
        self.entry = entry
        self.name = entry.name
        self.title = entry.title
        self._step: Step | None = None

    def load(self) -> Step:
        """The real step (imported on the first call)."""
        if self._step is None:
            module, _, cls = self.entry.target.partition(":")
            self._step = getattr(importlib.import_module(module), cls)()
        return self._step

    def run(self, ctx: StepContext) -> Iterator[Event]:
        """The real step's run."""
        return self.load().run(ctx)

    def start_early(self, ctx: StepContext) -> None:
        """The real step's early work, if it has any (nothing is imported otherwise)."""
        if self.entry.early:
            self.load().start_early(ctx)  # type: ignore[attr-defined]


def build_plan(answers: Answers, *, only: list[str] | None = None) -> list[Step]:
    """The plan's steps (all, or the named ones in plan order); nothing is imported yet."""
    check_answers(answers)
    return [DeferredStep(e) for e in PLAN if only is None or e.name in only]


def start_early(steps: Sequence[Step], ctx: StepContext) -> None:
    """Begin each step's early work (the steps that have none are left alone, unimported)."""
    for step in steps:
        begin = getattr(step, "start_early", None)
        if begin is not None:
            begin(ctx)


def step_names() -> list[str]:
    """Names of the plan's steps, in order."""
    return [e.name for e in PLAN]
