"""Text editors that apply every key in the order it was typed, however fast it comes.

Textual hands a key to the focused widget's queue. Printable keys are handled right there, but
the editing keys an ``Input`` or ``TextArea`` binds (Backspace, End, Home, ctrl+u, arrows …)
first bubble up through every ancestor's queue to the app, which then runs the binding. Keys
typed while one of them is on its way are inserted before it runs: with a burst (a paste-like
``tmux send-keys``, a fast typist, a busy ancestor) ``End`` or ``Backspace`` land after the
characters that followed them and the value on screen is not what was typed. These editors run
their own bindings in their own queue, in arrival order; keys they do not bind bubble as usual.
(Focus moves — Tab — are the app's priority bindings for the same reason: ``wizard.app``.)
"""

from __future__ import annotations

from textual import events
from textual.widgets import Input, TextArea


async def _run_own_binding(widget: Input | TextArea, event: events.Key) -> bool:
    """Run the widget's own binding for ``event`` now; True when one handled it."""
    for binding in widget._bindings.key_to_bindings.get(event.key, ()):
        if binding.priority:
            continue  # the app already had its chance at priority bindings
        if await widget.app.run_action(binding.action, widget):
            event.stop()
            event.prevent_default()
            return True
    return False


class OrderedInput(Input):
    """An ``Input`` whose editing keys are applied in the order they were typed."""

    async def _on_key(self, event: events.Key) -> None:
        # Printable keys: Input's own handler (next in the MRO) inserts them, as always.
        if not event.is_printable:
            await _run_own_binding(self, event)


class OrderedTextArea(TextArea):
    """A ``TextArea`` whose editing keys are applied in the order they were typed."""

    async def _on_key(self, event: events.Key) -> None:
        # Printable keys and Enter: TextArea's own handler inserts them, as always.
        if not (event.is_printable or event.key == "enter" or self.read_only):
            await _run_own_binding(self, event)
