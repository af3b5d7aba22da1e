"""One answers key as a form field, validated inline with the answers-file rules.

The field converts its text to the key's value (a string, a list, a number, lines) and hands it
to ``WizardState.try_set``, which validates the whole answers with ``parse_answers`` — the same
code ``--answers FILE`` runs. The AnswersError message (naming the key) and its fix appear right
under the field, and ``AnswerField.Validated`` tells the screen to re-check its Next button. No
validation rule lives here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from textual import on
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Input, Label, Static, TextArea

from wizard.state import WizardState, field_doc, get_key

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
    class Validated(Message):
        """The field was edited; ``error`` is "" when the value was accepted."""

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

    def compose(self) -> ComposeResult:
        yield Label(f"{self._label}  [dim]{self.key}[/]", classes="field-label")
        if self._help:
            yield Static(self._help, classes="field-help", markup=False)
        text = to_text(get_key(self.state.answers, self.key), self.kind)
        if self.kind == "lines":
            yield TextArea(text, id="editor", soft_wrap=False, show_line_numbers=False)
        else:
            yield Input(
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

    def set_text(self, text: str) -> None:
        """Replace the text (e.g. a row picked in a table); validates like typing does."""
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
        self.validate_now()

    def validate_now(self) -> str:
        """Validate the text, apply it if valid, show the error; returns the error ("" if ok)."""
        value = from_text(self.text, self.kind, mapping=self._mapping)
        lines = [line for line in self.text.splitlines() if line.strip()]
        if self.kind == "lines" and self._mapping and any("=" not in line for line in lines):
            message = f"{self.key}: each line must be NAME=value"
            fix = ""
        else:
            problem = self.state.try_set(self.key, value)
            message = problem.message if problem else ""
            fix = problem.fix if problem else ""
        self.error = message
        self.set_class(bool(message), "-invalid")
        self.query_one(".field-error", Static).update(
            f"✕ {message}" + (f" — {fix}" if fix else "") if message else ""
        )
        self.post_message(self.Validated(self, self.key, message))
        return message
