"""The headless front end: runs the plan's steps and renders their events.

It consumes exactly the generators the Textual app consumes; it re-implements no step logic.
Ctrl-C sets the shared cancel flag (steps stop at their next check and clean up their staging
files); a second Ctrl-C interrupts at once. Errors become exit codes via ``exit_code_for``.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import FrameType

from steps.base import Step, StepContext
from steps.errors import Cancelled, FirecoreError
from steps.plan import start_early
from wizard.exit_codes import ExitCode, exit_code_for
from wizard.render import Renderer


@contextmanager
def sigint_cancels(cancel: threading.Event) -> Iterator[None]:
    """While active, the first SIGINT sets ``cancel``; the second raises KeyboardInterrupt."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        if cancel.is_set():
            raise KeyboardInterrupt
        cancel.set()

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def run_steps(steps: Sequence[Step], ctx: StepContext, renderer: Renderer) -> ExitCode:
    """Run ``steps`` in order with one context; stop at the first failure.

    Work a step can do before its turn (``start_early``: the network step's segment probe)
    begins first, and is stopped when the run ends, however it ends.
    """
    current: str | None = None
    code = ExitCode.OK
    try:
        with sigint_cancels(ctx.cancel):
            start_early(steps, ctx)
            for step in steps:
                current = step.name
                ctx.check_cancel()
                renderer.step_started(step.name, step.title)
                for event in step.run(ctx):
                    renderer.event(event)
                renderer.step_finished(step.name, True)
                current = None
    except FirecoreError as exc:
        if current:
            renderer.step_finished(current, False)
        renderer.error(exc, current)
        code = exit_code_for(exc)
    except KeyboardInterrupt:
        if current:
            renderer.step_finished(current, False)
        renderer.error(Cancelled(), current)
        code = ExitCode.INTERRUPTED
    finally:
        ctx.close()
        renderer.close()
    renderer.finished(int(code))
    return code
