"""Live progress of a run: an overall bar, one bar per active phase, bytes and ETA.

Phases that finished collapse into one "done" line so the panel stays short at 80×24 while a
remaster walks through download, verify, extract, extensions, app, wheels, pack and write. The
overall bar counts finished steps plus the running step's share of its phases, and never moves
back: a step whose phases are not known in advance adds a phase now and then, which lowers its
share of the phases seen so far, so the bar holds its place until the estimate passes it again.
When the run ends the phase rows go; the ✓ line and the overall bar say how it ended. ETA comes
from the rate since a phase's first event, measured with the app's clock (tests freeze it).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Label, ProgressBar, Static

from steps.events import Progress
from wizard.render import progress_text

#: Phases a step is known to go through, so the overall bar does not jump back when a new one
#: appears. Steps not listed count the phases they have shown so far.
KNOWN_PHASES: Mapping[str, Sequence[str]] = {
    "remaster": ("download", "verify", "extract", "extensions", "app", "wheels", "pack", "write"),
}


def eta_text(seconds: float | None) -> str:
    """``ETA 1:05``, or "" when unknown."""
    if seconds is None or seconds < 0 or seconds > 99 * 3600:
        return ""
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"ETA {hours}:{minutes:02}:{secs:02}" if hours else f"ETA {minutes}:{secs:02}"


@dataclass
class _Phase:
    started: float
    first_done: float
    done: float = 0.0
    total: float | None = None

    @property
    def fraction(self) -> float:
        if not self.total:
            return 0.0
        return max(0.0, min(1.0, self.done / self.total))

    def eta(self, now: float) -> float | None:
        elapsed = now - self.started
        moved = self.done - self.first_done
        if not self.total or elapsed <= 0 or moved <= 0:
            return None
        return (self.total - self.done) / (moved / elapsed)


class PhaseRow(Horizontal):
    """One phase: name, bar, amount and ETA."""

    DEFAULT_CSS = """
    PhaseRow { height: 1; }
    PhaseRow > .phase-name { width: 22; }
    PhaseRow > ProgressBar { width: auto; }
    PhaseRow > ProgressBar > Bar { width: 16; }
    PhaseRow > .phase-info { width: 1fr; padding-left: 1; text-wrap: nowrap; }
    """

    def __init__(self, label: str) -> None:
        super().__init__()
        self._label = label
        self._state: tuple[_Phase, Progress, float] | None = None

    def compose(self) -> ComposeResult:
        yield Label(self._label, classes="phase-name")
        yield ProgressBar(show_eta=False)
        yield Label("", classes="phase-info")

    def on_mount(self) -> None:
        self._apply()

    def show(self, phase: _Phase, event: Progress, now: float) -> None:
        """Show the phase's latest event (kept until mounted if the row is new)."""
        self._state = (phase, event, now)
        if self.is_mounted and self.children:
            self._apply()

    def _apply(self) -> None:
        if self._state is None:
            return
        phase, event, now = self._state
        bars = self.query(ProgressBar)
        if not bars:
            return  # the row is being removed (the run ended) or not composed yet
        bar = bars.first()
        bar.update(total=event.total if event.total else None, progress=event.done)
        info = " ".join(x for x in (progress_text(event), eta_text(phase.eta(now))) if x)
        self.query_one(".phase-info", Label).update(info)


class ProgressPanel(Vertical):
    """Overall + per-phase progress of the run a ``StepRunner`` drives."""

    DEFAULT_CSS = """
    ProgressPanel { height: auto; max-height: 12; }
    ProgressPanel > #overall-row { height: 1; }
    ProgressPanel > #overall-row > #overall-label { width: 22; text-style: bold; }
    ProgressPanel > #overall-row > ProgressBar > Bar { width: 16; }
    ProgressPanel > #overall-row > #overall-info { width: 1fr; padding-left: 1; text-wrap: nowrap; }
    ProgressPanel > #phases-done { height: auto; color: $text-muted; }
    ProgressPanel > #phases { height: auto; }
    """

    def __init__(self, clock: Callable[[], float], *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._clock = clock
        self._phases: dict[tuple[str, str], _Phase] = {}
        self._rows: dict[tuple[str, str], PhaseRow] = {}
        self._done: list[str] = []
        self._index = 0
        self._count = 1
        self._step = ""
        self._title = ""
        self._shown = 0
        """Overall percentage shown so far in this run (the bar never goes below it)."""

    def compose(self) -> ComposeResult:
        with Horizontal(id="overall-row"):
            yield Label("Overall", id="overall-label")
            yield ProgressBar(total=100, show_eta=False, id="overall")
            yield Label("", id="overall-info")
        yield Static("", id="phases-done")
        yield Vertical(id="phases")

    def reset(self) -> None:
        """Forget the previous run."""
        self._phases.clear()
        self._rows.clear()
        self._done.clear()
        self._index, self._count, self._step, self._title = 0, 1, "", ""
        self._shown = 0
        self.query_one("#phases", Vertical).remove_children()
        self.query_one("#phases-done", Static).update("")
        self.query_one("#overall", ProgressBar).update(total=100, progress=0)
        self.query_one("#overall-info", Label).update("")

    def step_started(self, name: str, title: str, index: int, count: int) -> None:
        """A new step began: its phases replace the previous step's."""
        self._index, self._count, self._step, self._title = index, max(count, 1), name, title
        self.query_one("#phases", Vertical).remove_children()
        self._rows.clear()
        self._done.clear()
        self.query_one("#phases-done", Static).update("")
        self._update_overall()

    def step_finished(self, name: str) -> None:
        """The running step is complete."""
        if name == self._step:
            self._index += 1
            self._update_overall()

    def finished(self, ok: bool, text: str) -> None:
        """The run ended: fill the bar on success, drop the phase rows, say how it ended."""
        self.query_one("#phases", Vertical).remove_children()
        self._rows.clear()
        if ok:
            self._shown = 100
            self.query_one("#overall", ProgressBar).update(total=100, progress=100)
        self.query_one("#overall-info", Label).update(text)

    def progress(self, event: Progress) -> None:
        """Show one Progress event."""
        key = (event.step, event.phase)
        now = self._clock()
        phase = self._phases.get(key)
        if phase is None:
            phase = self._phases[key] = _Phase(started=now, first_done=event.done)
        phase.done, phase.total = event.done, event.total
        complete = bool(event.total) and event.done >= (event.total or 0)
        row = self._rows.get(key)
        if complete:
            if row is not None:
                row.remove()
                del self._rows[key]
            if event.phase not in self._done:
                self._done.append(event.phase)
                self.query_one("#phases-done", Static).update("✓ " + " ✓ ".join(self._done))
        else:
            if row is None:
                row = self._rows[key] = PhaseRow(f"{event.step} · {event.phase}")
                self.query_one("#phases", Vertical).mount(row)
            row.show(phase, event, now)
        self._update_overall()

    def _step_fraction(self) -> float:
        known = KNOWN_PHASES.get(self._step)
        mine = {p: ph for (s, p), ph in self._phases.items() if s == self._step}
        names = list(known) if known else list(mine)
        if not names:
            return 0.0
        return sum(mine[n].fraction if n in mine else 0.0 for n in names) / len(names)

    def _update_overall(self) -> None:
        fraction = min(1.0, (self._index + self._step_fraction()) / self._count)
        self._shown = max(self._shown, round(fraction * 100))
        self.query_one("#overall", ProgressBar).update(total=100, progress=self._shown)
        step_no = min(self._index + 1, self._count)
        label = f"step {step_no}/{self._count} {self._title}".rstrip()
        self.query_one("#overall-info", Label).update(label)
