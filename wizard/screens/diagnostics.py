"""Screen — Diagnostics: power on your Pi now and watch it boot, packet by packet.

Opens a live capture on the interface the Network screen chose (``network.interface``; in router
mode, on the router's interface over ssh), the same ``MonitorStep`` as ``firecore-wizard
monitor``, and shows it in a ``DiagnosticsView``. Capturing needs root (or CAP_NET_RAW); without
it, or to look at a capture taken elsewhere, open a pcap/pcapng file instead (F8).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding

from steps.errors import FirecoreError
from wizard.screens.base import PaletteCommand, WizardScreen
from wizard.widgets.diagnostics_view import KEYS_HELP, DiagnosticsView, source_label


class DiagnosticsScreen(WizardScreen):
    """The packet monitor on the boot interface (or a capture file)."""

    NAME = "diagnostics"
    BODY_SCROLLS = False
    HELP = (
        """\
# Diagnostics

**Power on your Pi now.** This screen captures DHCP, ARP and TFTP on the boot interface
(`network.interface`) and follows every Pi that boots there: the **clients** table (MAC, model,
serial, stage — *↻2* is a second boot attempt —, the file being read, address), the selected
Pi's **timeline** (each stage with its time since power-on, each file with its result), the
**diagnoses** (a stable code, what was seen, the fix, the packets that show it) and the
**packets** themselves with every decoded field and the captured bytes.

A healthy boot reads *firmware 1.2 s, kernel 4.0 s, initramfs 9.8 s, app up 23 s* and raises no
diagnosis. `firecore-wizard monitor --json` gives the same codes for the same capture.

"""
        + KEYS_HELP
        + """\
| F8 | open a capture file instead of capturing live |
| F9 | capture live again |

The list keeps the newest 5,000 packets; for a whole session run
`firecore-wizard monitor --interface IFACE --write FILE.pcap`. Capturing needs root; a Pi that
never appears may not be set to netboot (`firecore-wizard prepare`), or the capture is on another
segment (switches do not flood unicast).
"""
    )
    BINDINGS = [
        Binding("f8", "open_capture", "Open capture"),
        Binding("f9", "live", "Live", show=False),
    ]

    def compose_body(self) -> ComposeResult:
        yield DiagnosticsView(id="diagnostics")

    def on_mount(self) -> None:
        super().on_mount()
        self.action_live()

    def action_live(self) -> None:
        """Capture on the boot interface (F9)."""
        self._watch(None)

    def action_open_capture(self) -> None:
        """Read a pcap/pcapng file instead of capturing (F8)."""
        from wizard.screens.path_modal import PathModal

        self.app.push_screen(
            PathModal("Open a capture", "pcap or pcapng file", "", "Open"), self._open
        )

    def _open(self, path: Path | None) -> None:
        if path is not None:
            self._watch(path)

    def _watch(self, pcap: Path | None) -> None:
        view = self.query_one(DiagnosticsView)
        try:
            step = self.services.monitor_step(self.state.answers, pcap)
        except FirecoreError as exc:
            self.wizard.show_error(exc)
            return
        view.watch_source(step, source_label(step))

    def palette_commands(self) -> Iterable[PaletteCommand]:
        view = self.query_one(DiagnosticsView)
        yield ("Pause / resume packets", "Freeze the packet list (F5)", view.action_pause)
        yield ("Only this Pi's packets", "Filter the packet list (F6)", view.action_filter)
        yield ("Save packets to pcap…", "Write the packets shown (F7)", view.action_save)
        yield ("Open a capture file…", "Read a pcap/pcapng file (F8)", self.action_open_capture)
        yield ("Capture live", "Watch the boot interface again (F9)", self.action_live)
