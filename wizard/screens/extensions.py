"""Screen 3 — Extensions: search the TCZ index, pick, see the closure and why, size vs RAM."""

from __future__ import annotations

from collections.abc import Iterable

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widgets import DataTable, Input, Label, Select, Static

from steps.boards import ram_fit, smallest_ram
from steps.errors import AnswersError
from steps.textsafe import printable
from steps.units import human_size
from wizard.messages import Loaded, LoadFailed
from wizard.screens.base import PaletteCommand, WizardScreen
from wizard.views import Closure, ExtensionInfo
from wizard.widgets.answer_field import AnswerField
from wizard.widgets.step_runner import StepRunner

MAX_RESULTS = 200


def matches(info: ExtensionInfo, query: str) -> bool:
    """Every word of the query appears in the name or the description."""
    text = f"{info.name} {info.description}".lower()
    return all(word in text for word in query.lower().split())


class ExtensionsScreen(WizardScreen):
    """Pick TinyCore extensions; the dependency closure and its size update live."""

    NAME = "extensions"
    HELP = """\
# Extensions

TinyCore software comes as **extensions** (`.tcz`, squashfs images). Type in the search box to
filter the release's index by name and description; press Enter (or click) on a row to add or
remove it. You can also type names into *Selected*.

The **closure** table lists everything that will be staged: your picks plus what their `.dep`
files pull in, with the chain that explains **why** each is included. Kernel-module extensions
(`KERNEL` in a .dep) are expanded for every board you chose on the Release screen.

**RAM**: the whole system runs from RAM, so the line under the table compares the estimated
footprint with the smallest selected board. **Mode** *builtin* ships the .tcz files for piCore's
loader (loop-mounted at boot); *extracted* unpacks them into the overlay (no loop mounts, more
RAM). The app needs a `python3.x.tcz`.
"""
    BINDINGS = [Binding("f5", "refresh", "Reload index")]

    def compose_body(self) -> ComposeResult:
        yield Input(
            placeholder="search extensions (name or description)…", compact=True, id="search"
        )
        note = Static("", id="index-note", markup=False)
        note.display = False
        yield note
        table: DataTable[str] = DataTable(id="index", cursor_type="row", zebra_stripes=True)
        yield table
        yield AnswerField(self.state, "extensions.names", "Selected", kind="list")
        closure: DataTable[str] = DataTable(id="closure", cursor_type="row")
        yield closure
        yield Static("", id="totals", markup=False)
        with Horizontal(classes="actions"):
            yield Label("Mode  [dim]extensions.mode[/]  ")
            yield Select(
                [("builtin (load .tcz at boot)", "builtin"), ("extracted (unpacked)", "extracted")],
                value=self.state.answers.extensions.mode,
                allow_blank=False,
                id="mode",
            )
        yield StepRunner(clock=self.wizard.clock, visible=False, id="runner")

    def on_mount(self) -> None:
        super().on_mount()
        self._index: list[ExtensionInfo] = []
        self._closure_error: str = ""
        self._closure: Closure | None = None
        # Fixed column widths: the table is refilled on every keystroke of the search, and
        # content-sized columns would jump about (and DataTable re-measures them lazily).
        self._name_width = 0
        self._index_columns(26)
        self.query_one("#index").border_title = "TCZ index"
        closure = self.query_one("#closure", DataTable)
        for label, width in (("staged", 36), ("size", 8), ("why included", 60)):
            closure.add_column(label, width=width)
        self.query_one("#closure").border_title = "Closure"
        self.action_refresh()
        self._request_closure()
        self.query_one("#search", Input).focus()

    def _index_columns(self, name_width: int) -> None:
        """(Re)create the index columns with room for the longest extension name."""
        if name_width == self._name_width:
            return
        self._name_width = name_width
        index = self.query_one("#index", DataTable)
        index.clear(columns=True)
        for label, width in ((" ", 1), ("extension", name_width), ("size", 8)):
            index.add_column(label, width=width)
        index.add_column("description", width=60)

    # ------------------------------------------------------------------ index + search
    def action_refresh(self) -> None:
        """Load the TCZ index of the chosen release (F5)."""
        answers = self.state.answers
        self.query_one("#index").border_subtitle = "loading…"
        self.query_one(StepRunner).load(
            "index", lambda cancel: self.services.extension_index(answers, cancel)
        )

    @on(Input.Changed, "#search")
    def _search(self) -> None:
        self._fill_index()

    def _fill_index(self) -> None:
        table = self.query_one("#index", DataTable)
        query = self.query_one("#search", Input).value
        chosen = set(self.state.answers.extensions.names)
        found = [i for i in self._index if matches(i, query)]
        table.clear()
        for info in found[:MAX_RESULTS]:
            table.add_row(
                "✓" if info.name in chosen else "",
                info.name,
                human_size(info.size) if info.size else "",
                Text(printable(info.description, 200)),  # the mirror's text: never markup
                key=info.name,
            )
        more = f", first {MAX_RESULTS} shown" if len(found) > MAX_RESULTS else ""
        table.border_subtitle = f"{len(found)} of {len(self._index)}{more}"

    @on(DataTable.RowSelected, "#index")
    def _toggle(self, event: DataTable.RowSelected) -> None:
        name = event.row_key.value
        if name is None:
            return
        names = list(self.state.answers.extensions.names)
        if name in names:
            names.remove(name)
        else:
            names.append(name)
        self.query_one("#field-extensions-names", AnswerField).set_text(", ".join(names))

    # ------------------------------------------------------------------ closure
    @on(AnswerField.Validated, "#field-extensions-names")
    def _names_changed(self, event: AnswerField.Validated) -> None:
        # the field reports its first value when it is mounted: no change, nothing to resolve
        if not event.error and list(self.state.answers.extensions.names) != self._resolved_for:
            self._fill_index()
            self._request_closure()

    _resolved_for: list[str] | None = None

    def _request_closure(self) -> None:
        answers = self.state.answers
        self._resolved_for = list(answers.extensions.names)
        self.query_one("#closure").border_subtitle = "resolving…"
        self.query_one(StepRunner).load(
            "closure", lambda cancel: self.services.closure(answers, cancel)
        )

    @on(Loaded)
    def _loaded(self, message: Loaded) -> None:
        if message.key == "index":
            self._index = list(message.value)
            longest = max((len(i.name) for i in self._index), default=12)
            self._index_columns(min(max(longest, 12), 48))
            self.query_one("#index-note", Static).display = False
            self._fill_index()
        elif message.key == "closure":
            self._closure_error = ""
            self._closure = message.value
            self._show_closure()
        self.refresh_nav()

    @on(LoadFailed)
    def _failed(self, message: LoadFailed) -> None:
        error = message.error
        text = error.message + (f" — {error.fix}" if error.fix else "")
        if message.key == "closure":
            # An unknown name is the user's to fix (blocks Next); anything else is shown only.
            self._closure_error = text if isinstance(error, AnswersError) else ""
            self.query_one("#closure", DataTable).clear()
            self.query_one("#closure").border_subtitle = ""
            totals = self.query_one("#totals", Static)
            totals.update(f"✕ {text}")
            totals.set_class(True, "bad")
        else:
            self.query_one("#index").border_subtitle = "unavailable"
            note = self.query_one("#index-note", Static)
            note.update(f"✕ {error.title}: {text}")
            note.set_class(True, "bad")
            note.display = True
        self.refresh_nav()

    def _show_closure(self) -> None:
        closure = self._closure
        if closure is None:
            return
        table = self.query_one("#closure", DataTable)
        table.clear()
        for pkg in closure.packages:
            why = "requested" if len(pkg.why) <= 1 else " → ".join(pkg.why)
            table.add_row(pkg.name, human_size(pkg.size) if pkg.size else "?", why)
        table.border_subtitle = f"{len(closure.packages)} packages"
        boards = self.state.answers.release.boards
        smallest, ram = smallest_ram(boards)
        fits = ram_fit(closure.ram_bytes, ram)
        totals = self.query_one("#totals", Static)
        totals.update(
            f"download {human_size(closure.download_bytes)} · RAM ≈ "
            f"{human_size(closure.ram_bytes)} of {human_size(ram)} ({smallest}): {fits}"
            + (f"\n{closure.note}" if closure.note else "")
        )
        totals.set_class(fits == "too big", "bad")
        totals.set_class(fits == "tight", "note")

    @on(Select.Changed, "#mode")
    def _mode(self, event: Select.Changed) -> None:
        if isinstance(event.value, str):
            self.set_answer("extensions.mode", event.value)

    def extra_problems(self) -> list[str]:
        return [self._closure_error] if getattr(self, "_closure_error", "") else []

    def palette_commands(self) -> Iterable[PaletteCommand]:
        yield ("Reload the extension index", "Fetch the TCZ index again (F5)", self.action_refresh)
        yield ("Search extensions", "Focus the search box", self.query_one("#search").focus)
