"""Screen 2 — Release: mirrors, the releases they list (or the offline catalog), boards."""

from __future__ import annotations

from collections.abc import Iterable

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Label, Select, SelectionList, Static
from textual.widgets.selection_list import Selection

from steps.answers import ARCHES, BOARDS
from steps.artifacts import ReleaseRef
from steps.boards import ARCH_BOARDS
from steps.units import human_size
from wizard.messages import Loaded, LoadFailed
from wizard.screens.base import PaletteCommand, WizardScreen
from wizard.views import ReleaseListing
from wizard.widgets.answer_field import AnswerField
from wizard.widgets.step_runner import StepRunner

BOARD_NAMES: dict[str, str] = {
    "pi0": "Pi Zero / Zero W",
    "pi02": "Pi Zero 2 W",
    "pi1": "Pi 1",
    "pi2": "Pi 2",
    "pi3": "Pi 3",
    "pi4": "Pi 4 / 400",
    "pi5": "Pi 5",
}


def release_key(ref: ReleaseRef) -> str:
    """Row key of a release in the table."""
    return f"{ref.version}|{ref.arch}|{ref.filename}"


class ReleaseScreen(WizardScreen):
    """Choose the piCore release (version × arch) and the boards to serve."""

    NAME = "release"
    HELP = """\
# Release

Pick the **piCore release** your Pis will boot. The table lists what the mirrors offer:
version, architecture directory, which boards it serves, size and date; **β** marks betas (from
`test_releases/`). Choose a row (Enter or click) to fill *version* and *arch*, or type them.

* **armhf** (15.x and later) is the 32-bit userland for every board; from 15.0 Pi 4/5 boot a
  64-bit kernel with it. **aarch64** is piCore64. armv6/armv7/armv7l are the 12.x–14.x names.
* **Mirrors** are tried in order; the first that answers serves each file. When none answers the
  built-in offline catalog is shown — you can still choose, but downloads will fail until a
  mirror is reachable.
* **Boards** decide which `config.txt` sections and kernel-module flavours are staged: pick
  every model you will netboot (Pi 3 and Pi 4 boot from the network without an SD card; others
  need bootcode.bin on an SD card).
"""
    BINDINGS = [Binding("f5", "refresh", "Refresh list")]

    def compose_body(self) -> ComposeResult:
        yield Static("", id="mirror-status", markup=False)
        table: DataTable[str] = DataTable(id="releases", cursor_type="row", zebra_stripes=True)
        yield table
        yield AnswerField(self.state, "release.version", "Version", placeholder="15.0.0")
        yield Label("Architecture  [dim]release.arch[/]", classes="field-label")
        yield Select(
            [(a, a) for a in ARCHES],
            value=self.state.answers.release.arch,
            allow_blank=False,
            compact=True,
            id="arch",
        )
        yield Static("", id="arch-error", markup=False)
        yield Label("Boards  [dim]release.boards[/]", classes="field-label")
        chosen = set(self.state.answers.release.boards)
        yield SelectionList[str](
            *[Selection(f"{BOARD_NAMES[b]} ({b})", b, b in chosen) for b in BOARDS],
            id="boards",
        )
        yield Static("", id="boards-note", markup=False)
        yield AnswerField(self.state, "release.mirrors", "Mirrors", kind="list")
        yield StepRunner(clock=self.wizard.clock, visible=False, id="runner")

    def on_mount(self) -> None:
        super().on_mount()
        table = self.query_one("#releases", DataTable)
        # No flavour or β column: the arch names the flavour and a beta's version says beta;
        # boards as "0 02 3 4" — so size and date fit at 80 columns.
        # Fixed widths: an auto-width header rendered before the rows arrive keeps its narrow
        # widths in DataTable's line cache (textual 8.2.8), so it would not line up with them.
        for label, width in (("version", 12), ("arch", 7), ("Pi boards", 14), ("size", 8)):
            table.add_column(label, width=width)
        table.add_column("date", width=10)
        self.query_one("#releases").border_title = "Releases"
        self._listing: ReleaseListing | None = None
        self._boards_note()
        self.action_refresh()

    # ------------------------------------------------------------------ listing
    def action_refresh(self) -> None:
        """Ask the mirrors again (F5)."""
        self.query_one("#mirror-status", Static).update("asking the mirrors…")
        answers = self.state.answers
        self.query_one(StepRunner).load(
            "releases", lambda cancel: self.services.releases(answers, cancel)
        )

    @on(Loaded)
    def _loaded(self, message: Loaded) -> None:
        if message.key != "releases":
            return
        listing: ReleaseListing = message.value
        self._listing = listing
        lines = [f"{'✓' if m.ok else '✕'} {m.url} {m.note}".rstrip() for m in listing.mirrors]
        if listing.offline:
            lines.append("No mirror answered: showing the offline catalog (downloads will fail).")
        if listing.note:
            lines.append(listing.note)
        status = self.query_one("#mirror-status", Static)
        status.update("\n".join(lines))
        status.set_class(listing.offline, "note")
        table = self.query_one("#releases", DataTable)
        table.clear()
        current = self.state.answers.release
        for ref in listing.releases:
            table.add_row(
                ref.version,
                ref.arch,
                " ".join(b.removeprefix("pi") for b in ARCH_BOARDS.get(ref.arch, ())),
                human_size(ref.size) if ref.size else "",
                ref.date[:10],
                key=release_key(ref),
            )
        for index, ref in enumerate(listing.releases):
            if (ref.version, ref.arch) == (current.version, current.arch):
                table.move_cursor(row=index)
                break
        self.refresh_nav()

    @on(LoadFailed)
    def _failed(self, message: LoadFailed) -> None:
        status = self.query_one("#mirror-status", Static)
        status.update(
            f"✕ {message.error.message}" + (f" — {message.error.fix}" if message.error.fix else "")
        )
        status.set_class(True, "bad")

    @on(DataTable.RowSelected, "#releases")
    def _row_chosen(self, event: DataTable.RowSelected) -> None:
        if self._listing is None or event.row_key.value is None:
            return
        ref = next(r for r in self._listing.releases if release_key(r) == event.row_key.value)
        self.query_one("#field-release-version", AnswerField).set_text(ref.version)
        self.query_one("#arch", Select).value = ref.arch

    # ------------------------------------------------------------------ arch / boards
    @on(Select.Changed, "#arch")
    def _arch(self, event: Select.Changed) -> None:
        if isinstance(event.value, str):
            self.set_answer("release.arch", event.value, self.query_one("#arch-error", Static))
            self._boards_note()

    @on(SelectionList.SelectedChanged, "#boards")
    def _boards(self, event: SelectionList.SelectedChanged[str]) -> None:
        chosen = list(event.selection_list.selected)
        self.set_answer("release.boards", chosen, self.query_one("#boards-note", Static))
        self._boards_note()

    def _boards_note(self) -> None:
        release = self.state.answers.release
        if "release.boards" in self.key_errors:
            return
        served = ARCH_BOARDS.get(release.arch, ())
        odd = [b for b in release.boards if b not in served]
        note = self.query_one("#boards-note", Static)
        note.update(f"⚠ {release.arch} does not serve {', '.join(odd)}" if odd else "")
        note.set_class(bool(odd), "note")

    def extra_problems(self) -> list[str]:
        listing = getattr(self, "_listing", None)
        release = self.state.answers.release
        if listing is None or listing.offline or not listing.releases:
            return []
        if any((r.version, r.arch) == (release.version, release.arch) for r in listing.releases):
            return []
        return [f"{release.version} {release.arch} is not on the mirrors; choose a row"]

    def palette_commands(self) -> Iterable[PaletteCommand]:
        yield ("Refresh the release list", "Ask the mirrors again (F5)", self.action_refresh)
