"""Key latency benchmark: the wizard idle and during a busy build against a bare Textual app.

All in one process and one run, headless at 120×40, with the same measurement everywhere: the
key is posted the way the terminal driver posts it (``App.simulate_key``), and the clock stops
when its effect is visible and the next frame has been painted.

- **echo**: a character typed into a focused ``Input`` — a bare Textual app with one Input, and
  the wizard's App screen (the ``app.hostname`` field), idle;
- **binding**: ctrl+t reaches its action (a no-op counter in both apps, so the figure is the wait,
  not the work) — a bare app with one binding, the wizard idle on the Build screen, and the
  wizard while a step keeps its worker thread busy (pure Python, holding the GIL like the
  Python parts of a remaster) and floods the UI with progress and log events;
  its baseline is the bare app with a thread worker doing the same work and posting the same
  events (a Log line and a ProgressBar update each), so both pay the same GIL contention.

Target (issue 12): every wizard figure within 2× its bare-app baseline (median and 90th
percentile); the busy/idle ratio is printed too.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.widgets import Input, Log, ProgressBar
from textual.worker import WorkerCancelled, get_current_worker

from steps.answers import default_answers
from steps.base import Step
from tests.conftest import FakeStep
from tests.wizard.fakes import FakeServices
from tests.wizard.steps_fake import BusyStep
from wizard.app import make_app

PRESSES = 40
TARGET = 2.0
SIZE = (120, 40)


class BareInput(App[None]):
    """The baseline for echo: one focused Input."""

    def compose(self) -> ComposeResult:
        yield Input(id="field")


class BareBinding(App[None]):
    """The baseline for a binding: one action that does nothing."""

    BINDINGS = [Binding("ctrl+t", "noop", "No-op")]
    hits = 0

    def action_noop(self) -> None:
        self.hits += 1


class BareBusy(BareBinding):
    """The baseline for a busy build: the same binding, while a thread worker does BusyStep's
    pure-Python work and posts each of its events as a message (a Log line, a ProgressBar)."""

    class Tick(Message):
        def __init__(self, done: int, text: str) -> None:
            super().__init__()
            self.done, self.text = done, text

    sent = 0

    def compose(self) -> ComposeResult:
        yield ProgressBar(total=1_000_000_000)
        yield Log()

    @work(thread=True, exclusive=True)
    def churn(self) -> None:
        worker = get_current_worker()
        done = 0
        while not worker.is_cancelled:
            acc = 0
            for i in range(20_000):  # the same loop as BusyStep
                acc = (acc * 31 + i) % 1_000_003
            done += 65_536
            self.sent += 2
            self.post_message(self.Tick(done, f"packed block {done // 65_536} ({acc})"))
            self.post_message(self.Tick(done, ""))

    def on_bare_busy_tick(self, message: Tick) -> None:
        for log in self.query(Log) if message.text else ():
            log.write_line(message.text)
        for bar in self.query(ProgressBar) if not message.text else ():
            bar.progress = message.done


async def _painted(app: App[Any]) -> None:
    done = asyncio.get_running_loop().create_future()

    def mark() -> None:
        if not done.done():
            done.set_result(None)

    app.screen.call_after_refresh(mark)
    await done


async def _press(app: App[Any], key: str, effect: Callable[[], bool]) -> float:
    """Seconds from posting ``key`` to its effect being visible and the next frame painted."""
    start = time.perf_counter()
    app.simulate_key(key)
    while not effect():  # noqa: ASYNC110 (polling is the measurement: no event to wait on)
        await asyncio.sleep(0.0005)
    await _painted(app)
    return time.perf_counter() - start


async def _until(condition: Callable[[], object]) -> None:
    while not condition():  # noqa: ASYNC110 (conditions on widgets and threads, not events)
        await asyncio.sleep(0.01)


async def _echo(app: App[Any], field: Input) -> list[float]:
    out = []
    for i in range(PRESSES):
        char = "abcdefghij"[i % 10]
        before = field.value
        out.append(await _press(app, char, lambda b=before: field.value != b))  # type: ignore[misc]
        if len(field.value) > 20:
            field.value = ""
            await _painted(app)
    return out


async def bare_echo() -> list[float]:
    app = BareInput()
    async with app.run_test(size=SIZE):
        field = app.query_one(Input)
        field.focus()
        await _painted(app)
        return await _echo(app, field)


async def bare_binding() -> list[float]:
    app = BareBinding()
    async with app.run_test(size=SIZE):
        await _painted(app)
        out = []
        for _ in range(PRESSES):
            before = app.hits
            out.append(await _press(app, "ctrl+t", lambda b=before: app.hits > b))  # type: ignore[misc]
        return out


async def bare_binding_busy() -> list[float]:
    app = BareBusy()
    async with app.run_test(size=SIZE):
        await _painted(app)
        app.churn()
        await _until(lambda: app.sent > 200)
        out = []
        for _ in range(PRESSES):
            before = app.hits
            out.append(await _press(app, "ctrl+t", lambda b=before: app.hits > b))  # type: ignore[misc]
            sent = app.sent
            await _until(lambda s=sent: app.sent > s + 50)  # type: ignore[misc]
        app.workers.cancel_all()
        with contextlib.suppress(WorkerCancelled):
            await app.workers.wait_for_complete()
        return out


def _answers(tmp: Path) -> Any:
    a = default_answers()
    a.build.output = str(tmp / "out")
    a.build.cache = str(tmp / "cache")
    a.network.tftp_root = str(tmp / "tftp")
    a.network.dnsmasq_conf = str(tmp / "dnsmasq.d" / "firecore.conf")
    a.network.state_dir = str(tmp / "state")
    return a


async def wizard_echo(tmp: Path) -> list[float]:
    app = make_app(_answers(tmp), services=FakeServices(), start="app")
    async with app.run_test(size=SIZE):
        await _until(lambda: app.screen.query("#field-app-hostname #editor"))
        field = app.screen.query_one("#field-app-hostname #editor", Input)
        field.focus()
        field.value = ""
        await _painted(app)
        return await _echo(app, field)


async def wizard_binding(tmp: Path, *, busy: bool) -> list[float]:
    step = BusyStep()
    steps: list[Step] = [FakeStep("release"), FakeStep("extensions"), FakeStep("app"), step]
    app = make_app(_answers(tmp), services=FakeServices(), steps=steps, start="build")
    hits: list[int] = []

    def counted() -> None:  # a no-op like the bare app's: the theme switch itself is not latency
        hits.append(1)

    app.action_toggle_theme = counted  # type: ignore[method-assign]
    async with app.run_test(size=SIZE) as pilot:
        await _until(lambda: app.screen.query("#start"))
        if busy:
            await pilot.press("f5")
            await _until(lambda: step.events_sent > 200)
        await _painted(app)
        out = []
        for _ in range(PRESSES):
            before = len(hits)
            out.append(await _press(app, "ctrl+t", lambda b=before: len(hits) > b))  # type: ignore[misc]
            if busy:
                sent = step.events_sent
                await _until(lambda s=sent: step.events_sent > s + 50)  # type: ignore[misc]
        if busy:
            await pilot.press("escape")
            await _until(lambda: not step.started.is_set() or step.events_sent > 0)
        return out


def _p90(xs: list[float]) -> float:
    return sorted(xs)[int(0.9 * (len(xs) - 1))]


async def _all(tmp: Path) -> dict[str, list[float]]:
    return {
        "bare echo": await bare_echo(),
        "wizard echo, idle": await wizard_echo(tmp),
        "bare binding": await bare_binding(),
        "wizard binding, idle": await wizard_binding(tmp, busy=False),
        "bare binding, busy thread": await bare_binding_busy(),
        "wizard binding, busy build": await wizard_binding(tmp, busy=True),
    }


#: Each wizard figure and the bare-app figure it is held against.
BASELINE = {
    "wizard echo, idle": "bare echo",
    "wizard binding, idle": "bare binding",
    "wizard binding, busy build": "bare binding, busy thread",
}


def main() -> int:
    """Print the figures; 1 if a wizard figure is more than TARGET× its bare baseline."""
    with tempfile.TemporaryDirectory(prefix="fwb-keys-") as tmp:
        runs = asyncio.run(_all(Path(tmp)))
    print(f"key latency (key posted → effect visible → frame painted; {PRESSES} presses each)")
    ok = True
    for name, xs in runs.items():
        med, p90 = statistics.median(xs), _p90(xs)
        line = f"  {name:<28} median {med * 1000:6.1f} ms   p90 {_p90(xs) * 1000:6.1f} ms"
        if name in BASELINE:
            base = runs[BASELINE[name]]
            r_med, r_p90 = med / statistics.median(base), p90 / _p90(base)
            line += f"   {r_med:.2f}× / {r_p90:.2f}× bare (target ≤ {TARGET})"
            ok = ok and r_med <= TARGET and r_p90 <= TARGET
        print(line)
    busy, idle = (statistics.median(runs[f"wizard binding, {k}"]) for k in ("busy build", "idle"))
    print(f"  wizard busy build / idle: {busy / idle:.1f}× (median)")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
