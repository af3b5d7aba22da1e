"""The plan: the ordered steps both front ends run for a set of answers.

Each entry names the step and where its class lives; classes are imported only when the plan is
built, so importing this module stays cheap.
"""

from __future__ import annotations

import importlib

from steps.answers import Answers, check_answers
from steps.base import Step

#: (step name, "module:Class"), in the order they run.
PLAN: list[tuple[str, str]] = [
    ("release", "steps.release:ReleaseStep"),
    ("extensions", "steps.extensions:ExtensionsStep"),
    ("app", "steps.app:AppStep"),
    ("remaster", "steps.remaster:RemasterStep"),
    ("network", "steps.network:NetworkStep"),
    ("deploy", "steps.deploy:DeployStep"),
]


def build_plan(answers: Answers, *, only: list[str] | None = None) -> list[Step]:
    """Instantiate the plan's steps (all, or the named ones in plan order)."""
    check_answers(answers)
    steps: list[Step] = []
    for name, target in PLAN:
        if only is not None and name not in only:
            continue
        module, _, cls = target.partition(":")
        steps.append(getattr(importlib.import_module(module), cls)())
    return steps


def step_names() -> list[str]:
    """Names of the plan's steps, in order."""
    return [name for name, _ in PLAN]
