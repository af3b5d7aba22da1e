"""One answers key as a form field: typing stays instant, the answers follow when it settles.

Nothing slow sits between a key and the text on screen (see ``wizard.widgets.editors`` for why
the editors themselves apply keys in order). On every keystroke the field runs only the cheap
check of its own key (``check_value``: microseconds) and shows its message. When the value
settles — ``SETTLE`` seconds after the last keystroke, on blur, on Enter, or when the screen asks
(Next, Save, Build …) — the field hands the value to ``WizardState.try_set``, which validates the
WHOLE answers with ``parse_answers``, the code ``--answers FILE`` runs, and applies it; then
``AnswerField.Validated`` tells the screen (Next button, previews, checks). No validation rule
lives here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from textual import events, on
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.timer import Timer
from textual.widgets import Input, Label, Static, TextArea

from steps.errors import AnswersError
from wizard.state import WizardState, check_value, field_doc, get_key
from wizard.widgets.editors import OrderedInput, OrderedTextArea

#: Seconds after the last keystroke before a field's value is applied to the answers.
SETTLE = 0.25

Kind = Literal["text", "list", "int", "lines"]


def to_text(value: Any, kind: Kind) -> str:
    """The value as the field shows it."""
    if kind == "list":
        return ", ".join(str(v) for v in value)
    if kind == "lines":
        if isinstance(value, dict):
            return "\n".join(f"{k}={v}" for k, v in value.items())
        return "\n".join(str(v) for v in value)
    return str(value)


def from_text(text: str, kind: Kind, *, mapping: bool = False) -> Any:
    """The text as a value for the key (lists split on commas and blanks)."""
    if kind == "list":
        return [part for part in re.split(r"[,\s]+", text.strip()) if part]
    if kind == "int":
        try:
            return int(text.strip())
        except ValueError:
            return text.strip()  # the model's own message says what is wrong with it
    if kind == "lines":
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        if mapping:
            return dict(line.partition("=")[::2] for line in lines)
        return lines
    return text.strip()


class AnswerField(Vertical):
    """Label, help, an Input (or TextArea for ``lines``) and the inline error of one key."""

    DEFAULT_CSS = """
    AnswerField { height: auto; margin-bottom: 1; }
    AnswerField > .field-label { text-style: bold; }
    AnswerField > .field-help { color: $text-muted; }
    AnswerField > .field-error { color: $error; display: none; }
    AnswerField.-invalid > .field-error { display: block; }
    AnswerField.-invalid > Input { background: $error 20%; }
    AnswerField > TextArea { height: 5; }
    """

    @dataclass(eq=False)
    class Checked(Message):
        """The message under the field changed while typing (the Next reason follows it)."""

        field: AnswerField
        error: str

    @dataclass(eq=False)
    class Validated(Message):
        """The field's value settled; ``error`` is "" when the answers took it."""

        field: AnswerField
        key: str
        error: str

        @property
        def control(self) -> AnswerField:
            """The field (so ``@on(AnswerField.Validated, "#id")`` works)."""
            return self.field

    def __init__(
        self,
        state: WizardState,
        key: str,
        label: str,
        *,
        kind: Kind = "text",
        placeholder: str = "",
        password: bool = False,
        doc: str | None = None,
        id: str | None = None,
    ) -> None:
        super().__init__(id=id or f"field-{key.replace('.', '-').replace('_', '-')}")
        self.state = state
        self.key = key
        self.kind = kind
        self._label = label
        self._placeholder = placeholder
        self._password = password
        self._help = field_doc(key) if doc is None else doc
        self._mapping = isinstance(get_key(state.answers, key), dict)
        self.error = ""
        """The message shown under the field ("" when its text is valid)."""
        self._settled_text: str | None = None
        self._timer: Timer | None = None

    def compose(self) -> ComposeResult:
        yield Label(f"{self._label}  [dim]{self.key}[/]", classes="field-label")
        if self._help:
            yield Static(self._help, classes="field-help", markup=False)
        text = to_text(get_key(self.state.answers, self.key), self.kind)
        if self.kind == "lines":
            yield OrderedTextArea(text, id="editor", soft_wrap=False, show_line_numbers=False)
        else:
            yield OrderedInput(
                text,
                placeholder=self._placeholder,
                password=self._password,
                compact=True,
                id="editor",
            )
        yield Static("", classes="field-error", markup=False)

    @property
    def text(self) -> str:
        """The field's current text."""
        editor = self.query_one("#editor")
        return editor.text if isinstance(editor, TextArea) else editor.value  # type: ignore[attr-defined]

    def on_mount(self) -> None:
        self._settled_text = self.text

    @property
    def dirty(self) -> bool:
        """The text changed since it was last applied to the answers."""
        return self.is_mounted and self.text != self._settled_text

    def set_text(self, text: str) -> None:
        """Replace the text (e.g. a row picked in a table) and apply it at once."""
        editor = self.query_one("#editor")
        if isinstance(editor, TextArea):
            editor.text = text
        elif isinstance(editor, Input):
            editor.value = text
        self.validate_now()

    @on(Input.Changed, "#editor")
    @on(TextArea.Changed, "#editor")
    def _edited(self, event: Message) -> None:
        event.stop()
        if self.text == self._settled_text:
            self._stop_timer()
            self._show(self._check())
            return
        self._show(self._check())
        if self._timer is None:
            self._timer = self.set_timer(SETTLE, self._settle_later)
        else:
            self._timer.reset()

    @on(Input.Submitted, "#editor")
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.settle()

    def on_descendant_blur(self, event: events.DescendantBlur) -> None:
        self.settle()

    def _settle_later(self) -> None:
        self._timer = None
        self.settle()

    def _stop_timer(self) -> None:
        if self._timer is not None:
            self._timer.stop()
            self._timer = None

    def settle(self) -> str:
        """Apply the text to the answers now if it changed; returns the error ("" if ok)."""
        if not self.dirty:
            self._stop_timer()
            return self.error
        return self.validate_now()

    def validate_now(self) -> str:
        """Validate the text as part of the whole answers, apply it if valid, show the error."""
        self._stop_timer()
        text = self.text
        problem = self._check()
        if problem is None:
            problem = self.state.try_set(self.key, self._value(text))
        self._settled_text = text
        self._show(problem)
        self.post_message(self.Validated(self, self.key, self.error))
        return self.error

    def _value(self, text: str) -> Any:
        return from_text(text, self.kind, mapping=self._mapping)

    def _check(self) -> AnswersError | None:
        """This key's own rules only (cheap enough for every keystroke)."""
        text = self.text
        if self.kind == "lines" and self._mapping:
            lines = [line for line in text.splitlines() if line.strip()]
            if any("=" not in line for line in lines):
                return AnswersError(self.key, "each line must be NAME=value")
        return check_value(self.key, self._value(text))

    def _show(self, problem: AnswersError | None) -> None:
        message = problem.message if problem else ""
        shown = message + (f" — {problem.fix}" if problem and problem.fix else "")
        if message == self.error and self.has_class("-invalid") == bool(message):
            return
        self.error = message
        self.set_class(bool(message), "-invalid")
        self.query_one(".field-error", Static).update(f"✕ {shown}" if message else "")
        self.post_message(self.Checked(self, message))
