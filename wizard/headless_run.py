"""``firecore-wizard --answers FILE``: build the plan and run it headless."""

from __future__ import annotations

from steps.answers import Answers
from steps.base import StepContext
from steps.plan import build_plan
from wizard.headless import run_steps
from wizard.render import make_renderer


def run_headless(answers: Answers, *, json_lines: bool, dry_run: bool) -> int:
    """Run every step of the plan for ``answers``; returns the exit code."""
    steps = build_plan(answers)
    renderer = make_renderer(json_lines=json_lines)
    ctx = StepContext(answers=answers, dry_run=dry_run)
    return int(run_steps(steps, ctx, renderer))
