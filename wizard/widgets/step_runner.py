"""The bridge between the UI and the domain: the ONLY place that starts worker threads.

``StepRunner.start`` drives a list of steps in one thread worker with one ``StepContext`` — the
same shape the headless runner uses — whose cancel flag is the worker's ``cancelled_event``; the
thread only ever calls ``post_message``. ``StepRunner.load`` runs a plain lookup (a listing, the
preflight, a scan) the same way and posts ``Loaded``/``LoadFailed``.

Leaving a screen unmounts its runner, which cancels its workers: the step sees the flag at its
next check, raises ``Cancelled`` and removes its staging files. Runs are serialised by one lock,
so a run started right after a cancel waits (in its thread, never in the UI) until the previous
one has finished unwinding and can never interleave with it on disk.
"""

from __future__ import annotations

import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.reactive import reactive
from textual.timer import Timer
from textual.worker import Worker, get_current_worker

from steps.answers import Answers
from steps.base import Results, Step, StepContext
from steps.errors import Cancelled, FirecoreError
from steps.events import Event, Progress, Result
from wizard.messages import (
    Loaded,
    LoadFailed,
    RunFinished,
    StepEvent,
    StepFinished,
    StepStarted,
)
from wizard.widgets.log_view import LogView, line_for
from wizard.widgets.progress_panel import ProgressPanel

#: One run at a time across the whole app (see the module docstring).
RUN_LOCK = threading.Lock()

#: Shortest time between two batches of queued events drawn by the main thread (seconds).
DRAIN_GAP = 0.05
#: Most queued messages handled in one batch.
BATCH = 5000


def internal_error(exc: BaseException) -> FirecoreError:
    """A bug (not a user error) as a FirecoreError, with the traceback kept in ``details``."""
    return FirecoreError(
        f"unexpected {type(exc).__name__}: {exc}",
        title="Internal error",
        fix="this is a bug in firecore-wizard: please report it with the details below",
        details="".join(traceback.format_exception(exc)),
    )


class StepRunner(Vertical):
    """Runs steps and lookups in thread workers; shows progress and the log of a run."""

    DEFAULT_CSS = """
    StepRunner { height: 1fr; }
    StepRunner.-hidden { display: none; }
    """

    running: reactive[bool] = reactive(False)
    """A step run is in progress (lookups do not count)."""

    def __init__(
        self,
        *,
        clock: Callable[[], float],
        visible: bool = True,
        id: str | None = None,
    ) -> None:
        super().__init__(id=id, classes="" if visible else "-hidden")
        self._clock = clock
        self._visible = visible
        self._inbox: deque[Message] = deque()
        self._awake = threading.Event()
        self._last_drain = 0.0
        self._drain_timer: Timer | None = None
        self.results: list[Result] = []
        """Result events of the current/last run, in order."""

    def compose(self) -> ComposeResult:
        if self._visible:
            yield ProgressPanel(self._clock, id="progress")
            yield LogView(id="log")

    # ------------------------------------------------------------------ starting work
    def start(
        self,
        run: str,
        steps: Sequence[Step],
        answers: Answers,
        results: Results,
        *,
        cache_dir: Path | None = None,
    ) -> bool:
        """Run ``steps`` in order in a thread; False if a run is already going."""
        if self.running:
            return False
        self.running = True
        self.results = []
        if self._visible:
            self.query_one(ProgressPanel).reset()
            self.query_one(LogView).add([f"— {run}: {', '.join(s.title for s in steps)}"])
        self._run_steps(run, list(steps), answers, results, cache_dir)
        return True

    def cancel(self) -> bool:
        """Ask the running steps to stop (they stop at their next check)."""
        if not self.running:
            return False
        self.workers.cancel_group(self, "steps")
        if self._visible:
            self.query_one(LogView).add(["WARNING cancelling…"])
        return True

    def load(self, key: str, fn: Callable[[threading.Event], Any]) -> Worker[None]:
        """Run ``fn(cancel)`` in a thread; post ``Loaded(key, value)`` or ``LoadFailed``.

        A new load with the same key cancels the previous one.
        """
        return self.run_worker(
            partial(self._load, key, fn),
            thread=True,
            group=f"load:{key}",
            exclusive=True,
            exit_on_error=False,
            description=f"load {key}",
        )

    def on_unmount(self) -> None:
        # Textual cancels a node's workers on unmount too; being explicit documents the contract.
        self.workers.cancel_node(self)

    # ------------------------------------------------------------------ in the worker thread
    def _emit(self, message: Message) -> None:
        """Queue a message for the main thread; wake it only if it is not already awake.

        A chatty step (thousands of progress and log events a second) would otherwise put one
        message per event on the event loop and starve key presses. The main thread drains the
        inbox in batches at most ``DRAIN_GAP`` apart (see ``_drain``); input is handled between.
        """
        self._inbox.append(message)
        if not self._awake.is_set():
            self._awake.set()
            self.post_message(self._Wake())

    @work(thread=True, exclusive=True, exit_on_error=False, group="steps", description="steps")
    def _run_steps(
        self,
        run: str,
        steps: list[Step],
        answers: Answers,
        results: Results,
        cache_dir: Path | None,
    ) -> None:
        cancel = get_current_worker().cancelled_event
        ctx = StepContext(answers=answers, cancel=cancel, results=results, cache_dir=cache_dir)
        current: str | None = None
        emit = self._emit
        try:
            while not RUN_LOCK.acquire(timeout=0.05):
                ctx.check_cancel()
            try:
                for index, step in enumerate(steps):
                    ctx.check_cancel()
                    current = step.name
                    emit(StepStarted(step.name, step.title, index, len(steps)))
                    for event in step.run(ctx):
                        emit(StepEvent(event))
                    emit(StepFinished(step.name))
                    current = None
            finally:
                RUN_LOCK.release()
        except Cancelled:
            emit(RunFinished(run, ok=False, cancelled=True, step=current))
        except FirecoreError as exc:
            emit(RunFinished(run, ok=False, step=current, error=exc))
        except Exception as exc:
            emit(RunFinished(run, ok=False, step=current, error=internal_error(exc)))
        else:
            emit(RunFinished(run, ok=True))

    def _load(self, key: str, fn: Callable[[threading.Event], Any]) -> None:
        cancel = get_current_worker().cancelled_event
        try:
            value = fn(cancel)
        except Cancelled:
            return
        except FirecoreError as exc:
            self.post_message(LoadFailed(key, exc))
            return
        except Exception as exc:
            self.post_message(LoadFailed(key, internal_error(exc)))
            return
        if not cancel.is_set():
            self.post_message(Loaded(key, value))

    # ------------------------------------------------------------------ on the main thread
    @dataclass(eq=False)
    class _Wake(Message, bubble=False):
        """The worker queued messages in the inbox."""

    @on(_Wake)
    def _woken(self) -> None:
        wait = self._last_drain + DRAIN_GAP - time.perf_counter()
        if wait > 0:
            if self._drain_timer is None:
                self._drain_timer = self.set_timer(wait, self._drain)
            return
        self._drain()

    def _drain(self) -> None:
        """Handle what the worker queued, as one batch (at most ``DRAIN_GAP`` apart).

        Drawing once per batch instead of once per event keeps the main thread's work bounded
        however chatty a step is, so key presses are handled promptly during a build.
        """
        self._drain_timer = None
        self._last_drain = time.perf_counter()
        self._awake.clear()
        batch: list[Message] = []
        while self._inbox and len(batch) < BATCH:
            batch.append(self._inbox.popleft())
        self._handle_batch(batch)
        if self._inbox and not self._awake.is_set():
            self._awake.set()
            self.post_message(self._Wake())

    def _handle_batch(self, batch: list[Message]) -> None:
        # Only the last Progress of a phase in a batch is drawn (what can_replace does for
        # messages posted one by one); log lines are written together; the rest in order.
        last: dict[tuple[str, str], int] = {}
        for index, message in enumerate(batch):
            if isinstance(message, StepEvent) and isinstance(message.event, Progress):
                last[(message.event.step, message.event.phase)] = index
        lines: list[str] = []
        for index, message in enumerate(batch):
            if isinstance(message, StepEvent):
                event = message.event
                if isinstance(event, Progress):
                    if last[(event.step, event.phase)] == index and self._visible:
                        self.query_one(ProgressPanel).progress(event)
                    continue
                if isinstance(event, Result):
                    self.results.append(event)
                text = line_for(event)
                if text is not None:
                    lines.append(text)
                if isinstance(event, Result):
                    self._forward(message)
                continue
            self._flush(lines)
            self._handle(message)
            self._forward(message)
        self._flush(lines)

    def _flush(self, lines: list[str]) -> None:
        if lines and self._visible:
            self.query_one(LogView).add(lines)
        lines.clear()

    def _forward(self, message: Message) -> None:
        """Hand a lifecycle message or a Result to the screen (as if it had bubbled)."""
        if self.is_attached:
            self.screen.post_message(message)

    # Messages posted straight to the runner (tests, snapshots) take the normal path.
    @on(StepStarted)
    @on(StepFinished)
    @on(StepEvent)
    @on(RunFinished)
    def _direct(self, message: Message) -> None:
        self._handle(message)

    def _handle(self, message: Message) -> None:
        if isinstance(message, StepStarted):
            if self._visible:
                self.query_one(ProgressPanel).step_started(
                    message.name, message.title, message.index, message.count
                )
                self.query_one(LogView).add([f"* {message.title}"])
        elif isinstance(message, StepFinished):
            if self._visible:
                self.query_one(ProgressPanel).step_finished(message.name)
        elif isinstance(message, StepEvent):
            self._show_event(message.event)
        elif isinstance(message, RunFinished):
            self._run_finished(message)

    def _show_event(self, event: Event) -> None:
        if isinstance(event, Result):
            self.results.append(event)
        if not self._visible:
            return
        if isinstance(event, Progress):
            self.query_one(ProgressPanel).progress(event)
            return
        text = line_for(event)
        if text is not None:
            self.query_one(LogView).add([text])

    def _run_finished(self, message: RunFinished) -> None:
        self.running = False
        if not self._visible:
            return
        if message.ok:
            text = "done"
        elif message.cancelled:
            text = "cancelled — the previous output is unchanged"
        else:
            text = f"failed in {message.step}" if message.step else "failed"
        self.query_one(ProgressPanel).finished(message.ok, text)
        mark = "✓" if message.ok else "✕"
        log = self.query_one(LogView)
        lines = [f"{mark} {message.run} {text}"]
        if message.error is not None:
            lines.append(f"✕ {message.error.message}")
            if message.error.fix:
                lines.append(f"  fix: {message.error.fix}")
        log.add(lines)
        log.call_after_refresh(log.scroll_end, animate=False)
