"""The packet list: the newest packets in a fixed-size ring, drawn one visible line at a time.

A capture can bring 10,000 packets a second for hours, so the list never holds one widget (or
one DataTable row) per packet: ``Ring`` keeps the last ``size`` packet events, and
``PacketList`` is a Line API widget (``ScrollView.render_line``) that renders only the rows on
screen, straight from the ring. Adding a batch is O(batch): the ring overwrites its oldest slots
and the list moves its cursor and scroll position by the rows that fell out.

Filter (one Pi) and pause work on a second ring, the rows shown: filtering rebuilds it from the
packet ring; pausing stops feeding it (the packet ring goes on filling, so resuming shows the
newest packets and never a gap in the middle of the screen).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding
from textual.geometry import Region, Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from steps.wire.monitor_events import PacketEvent

T = TypeVar("T")

#: Packets the list keeps (the newest); older ones are in ``--write``'s file, not on screen.
RING_SIZE = 5000


class Ring(Generic[T]):
    """The newest ``size`` items, indexed from the oldest kept: O(1) append and lookup."""

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError("a ring holds at least one item")
        self.size = size
        self._items: list[T] = []
        self._start = 0
        self.total = 0
        """Items ever appended (those that fell out included)."""

    def append(self, item: T) -> None:
        """Add the newest item (dropping the oldest when full)."""
        self.total += 1
        if len(self._items) < self.size:
            self._items.append(item)
            return
        self._items[self._start] = item
        self._start = (self._start + 1) % self.size

    def extend(self, items: Iterable[T]) -> None:
        """Add items in order, as that many ``append`` would, by slices (a flood brings batches
        of thousands; this is the screen's per-packet cost)."""
        batch = list(items)
        self.total += len(batch)
        size, kept = self.size, self._items
        if len(batch) >= size:  # only the newest ``size`` stay
            self._items, self._start = batch[len(batch) - size :], 0
            return
        room = size - len(kept)
        if room:  # not full yet: ``_start`` is 0 until it is
            kept.extend(batch[:room])
            batch = batch[room:]
        if batch:  # overwrite the oldest, from ``_start`` on, wrapping once at most
            start, n = self._start, len(batch)
            head = min(n, size - start)
            kept[start : start + head] = batch[:head]
            kept[: n - head] = batch[head:]
            self._start = (start + n) % size

    def clear(self) -> None:
        """Forget every item (``total`` too)."""
        self._items = []
        self._start = 0
        self.total = 0

    def __len__(self) -> int:
        return len(self._items)

    def __getitem__(self, index: int) -> T:
        n = len(self._items)
        if not -n <= index < n:
            raise IndexError(index)
        return self._items[(self._start + index) % n]

    def __iter__(self) -> Iterator[T]:
        items, start = self._items, self._start
        yield from items[start:]
        yield from items[:start]


_PROTO_STYLE = {"dhcp": "cyan", "arp": "magenta", "tftp": ""}


def _row_text(packet: PacketEvent, wide: bool) -> list[tuple[str, str]]:
    """(text, style) cells of one row: index, time, the Pi, what it is."""
    mac = packet.mac or "-"
    if not wide and packet.mac:
        mac = "…" + packet.mac[-8:]
    summary = packet.summary()
    style = _PROTO_STYLE.get(packet.PROTO, "")
    if summary.startswith("TFTP ERROR") and not summary.startswith("TFTP ERROR 0"):
        style = "bold red"
    elif summary.startswith("TFTP DATA") or summary.startswith("TFTP ACK"):
        style = "dim"
    return [
        (f"{packet.i:>7} ", "dim"),
        (f"{packet.t:>9.3f} ", ""),
        (f"{mac:<{17 if wide else 9}} ", "green" if packet.mac else "dim"),
        (summary, style),
    ]


class PacketList(ScrollView, can_focus=True):
    """The newest packets, one line each; the cursor's packet goes to the detail pane."""

    DEFAULT_CSS = """
    PacketList {
        height: 1fr;
        overflow-x: hidden;
        border: round $foreground 30%;
        scrollbar-background: $surface;
    }
    PacketList:focus { border: round $accent; }
    PacketList > .packet-list--cursor { background: $block-cursor-background; }
    """
    COMPONENT_CLASSES = {"packet-list--cursor"}
    BINDINGS = [
        Binding("up", "move(-1)", "Up", show=False),
        Binding("down", "move(1)", "Down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("home", "first", "First", show=False),
        Binding("end", "last", "Newest", show=False),
    ]

    cursor: reactive[int] = reactive(-1, always_update=True)
    """Row of the highlighted packet (-1: none)."""

    @dataclass(eq=False)
    class Highlighted(Message):
        """The cursor moved to ``packet`` (None: the list is empty)."""

        packet: PacketEvent | None

    def __init__(self, *, size: int = RING_SIZE, id: str | None = None) -> None:
        super().__init__(id=id)
        self.packets: Ring[PacketEvent] = Ring(size)
        """Every packet received, the newest ``size``."""
        self.rows: Ring[PacketEvent] = Ring(size)
        """The rows shown: ``packets`` through the filter, frozen while paused."""
        self.only: Callable[[PacketEvent], bool] | None = None
        self.paused = False
        self.follow = True
        """The cursor stays on the newest row as packets arrive (End turns it back on)."""
        self._title()

    # ------------------------------------------------------------------ feeding
    def add(self, batch: list[PacketEvent]) -> None:
        """Append a batch of packets (one refresh, whatever its length)."""
        if not batch:
            return
        self.packets.extend(batch)
        if not self.paused:
            self._show(p for p in batch if self.only is None or self.only(p))
        self._title()

    def set_filter(self, only: Callable[[PacketEvent], bool] | None) -> None:
        """Show only the packets ``only`` accepts (None: all), from the ring."""
        self.only = only
        self._rebuild()

    def set_paused(self, paused: bool) -> None:
        """Freeze the rows (packets keep arriving in the ring); resuming shows the newest."""
        self.paused = paused
        if not paused:
            self._rebuild()
        self._title()

    def clear(self) -> None:
        """Forget every packet."""
        self.packets.clear()
        self._rebuild()

    def _rebuild(self) -> None:
        self.rows = Ring(self.packets.size)
        self.follow = True
        self._show(p for p in self.packets if self.only is None or self.only(p))
        self._title()

    def _show(self, shown: Iterable[PacketEvent]) -> None:
        rows = self.rows
        before = len(rows)
        total = rows.total
        rows.extend(shown)
        added = rows.total - total
        if not added and before:
            return
        dropped = before + added - len(rows)
        self.virtual_size = Size(self.scrollable_content_region.width, len(rows))
        if self.follow or self.cursor < 0:
            self.cursor = len(rows) - 1
        elif dropped:
            # the rows fell out at the top: keep the same packet under the cursor and in view
            self.cursor = max(0, self.cursor - dropped)
            self.scroll_to(y=max(0, self.scroll_y - dropped), animate=False, immediate=True)
        self.call_after_refresh(self._reveal)
        self.refresh()

    def _reveal(self) -> None:
        """Scroll so the cursor's row is on screen (the newest while following)."""
        if self.follow:
            self.scroll_to(y=self.max_scroll_y, animate=False, immediate=True)
        elif self.cursor >= 0:
            self.scroll_to_region(
                Region(0, self.cursor, 1, 1), animate=False, immediate=True, force=True
            )

    def _title(self) -> None:
        shown = f"{len(self.rows):,}"
        if self.only is not None:
            shown += " (one Pi)"
        state = " — PAUSED" if self.paused else ""
        title = f"Packets {shown} of {self.packets.total:,}{state}"
        if title != self.border_title:
            self.border_title = title
        subtitle = f"keeps the newest {self.packets.size:,}"
        if subtitle != self.border_subtitle:
            self.border_subtitle = subtitle

    # ------------------------------------------------------------------ cursor
    @property
    def current(self) -> PacketEvent | None:
        """The packet under the cursor."""
        if 0 <= self.cursor < len(self.rows):
            return self.rows[self.cursor]
        return None

    def watch_cursor(self, old: int, new: int) -> None:
        self.post_message(self.Highlighted(self.current))
        self.refresh()

    def select_index(self, i: int) -> bool:
        """Put the cursor on packet ``i`` (capture index) if the rows hold it."""
        for row in range(len(self.rows) - 1, -1, -1):
            if self.rows[row].i == i:
                self._go(row)
                return True
        return False

    def _go(self, row: int) -> None:
        n = len(self.rows)
        if not n:
            return
        row = max(0, min(n - 1, row))
        self.follow = row == n - 1
        self.cursor = row
        self._reveal()

    def action_move(self, delta: int) -> None:
        """Up / Down."""
        self._go(self.cursor + delta)

    def action_page(self, direction: int) -> None:
        """Page Up / Page Down."""
        self._go(self.cursor + direction * max(1, self.scrollable_content_region.height - 1))

    def action_first(self) -> None:
        """Home: the oldest packet kept."""
        self._go(0)

    def action_last(self) -> None:
        """End: the newest packet, and follow new ones again."""
        self._go(len(self.rows) - 1)

    def on_click(self, event: events.Click) -> None:
        row = int(self.scroll_y) + event.y
        if 0 <= row < len(self.rows):
            self._go(row)

    def on_resize(self, event: events.Resize) -> None:
        # also when its tab is shown: a hidden list has no height to scroll in
        self.virtual_size = Size(self.scrollable_content_region.width, len(self.rows))
        self.call_after_refresh(self._reveal)

    # ------------------------------------------------------------------ drawing
    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        row = int(self.scroll_y) + y
        base = self.rich_style
        if not 0 <= row < len(self.rows):
            return Strip.blank(width, base)
        cursor = row == self.cursor
        line = base + self.get_component_rich_style("packet-list--cursor") if cursor else base
        wide = width >= 90
        segments = [
            Segment(text, line + Style.parse(style) if style else line)
            for text, style in _row_text(self.rows[row], wide)
        ]
        return Strip(segments).crop_extend(0, width, line)
