"""The wizard's session state: the one answers model plus what the session has learned.

Screens never keep their own copy of an answer. They propose a value for a key path
(``release.version``) and ``WizardState.try_set`` validates the WHOLE answers with
``parse_answers`` — the very function ``--answers FILE`` uses — so the TUI cannot accept what the
headless run would refuse, and the error text is the same. A valid value replaces ``answers``
(a new object: a worker that is still running keeps the answers it started with).

Besides the answers, the state records which answers sections came from a loaded file (those
form screens start out filled in), which screens the user confirmed, the shared ``Results`` of
every step run in this session, and what the later screens show (build, network, deploy,
self-test, Pis seen). Whether Build, Network and Deploy are done is never remembered: ``facts``
reads it from the world (``steps.done``) for the current answers, and reads it again whenever
the answers change or a step has run (``forget_facts``). The bearer token is held here and
only ever written to the 0600 secrets file, never into the answers.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from steps.answers import (
    Answers,
    answers_error,
    default_answers,
    document_fields,
    parse_answers,
    resolve_path,
)
from steps.base import Results
from steps.done import Done, what_is_done
from steps.errors import AnswersError, UsageError
from steps.model import BaseModel, ValidationError
from wizard.views import PiSeen, StageLine

#: The answers sections, in file order.
SECTIONS: tuple[str, ...] = (
    "release",
    "extensions",
    "app",
    "build",
    "network",
    "prepare",
    "deploy",
)


def get_key(answers: Answers, key: str) -> Any:
    """The value at a dotted key path, e.g. ``get_key(a, "release.version")``."""
    value: Any = answers
    for part in key.split("."):
        value = value[part] if isinstance(value, Mapping) else getattr(value, part)
    return value


def field_doc(key: str) -> str:
    """The attribute docstring of a key (shown as help next to its field)."""
    document_fields()
    section, _, name = key.partition(".")
    sub = Answers.model_fields[section].annotation
    fields = getattr(sub, "model_fields", {})
    info = fields.get(name)
    return " ".join((info.description or "").split()) if info is not None else ""


def check_value(key: str, value: Any) -> AnswersError | None:
    """The cheap check of one key on its own (its field's rules only; nothing is applied).

    Microseconds, so a field can run it on every keystroke; the rules that span keys and the
    whole-model parse run when the value settles (``WizardState.try_set``).
    """
    section, _, name = key.partition(".")
    model = Answers.model_fields[section].annotation
    if not (isinstance(model, type) and issubclass(model, BaseModel)) or "." in name:
        return None
    try:
        model.check_field(name, value)
    except ValidationError as exc:
        inner = answers_error(exc)
        message = inner.message.removeprefix(f"{inner.key}: ")
        return AnswersError(f"{section}.{inner.key}", message, fix=inner.fix)
    return None


def _with_value(data: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    parts = key.split(".")
    node = data
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
    return data


def sections_in_file(path: Path) -> set[str]:
    """Which answers sections a file sets (read raw: the model fills defaults for the rest)."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return set()
    return {name for name in SECTIONS if isinstance(data.get(name), dict)}


@dataclass
class WizardState:
    """Everything the screens share; owned by the app, mutated on the main thread only."""

    answers: Answers = field(default_factory=default_answers)
    answers_path: Path | None = None
    given: set[str] = field(default_factory=set)
    """Answers sections present in the loaded file: their screens start out done."""
    confirmed: set[str] = field(default_factory=set)
    """Screens the user left with Next in this session."""
    results: Results = field(default_factory=Results)
    """Outputs of every step run in this session (one store, as in the headless runner)."""
    token: str = ""
    """The app's bearer token as typed; written only to the 0600 secrets file."""
    build_summary: str = ""
    network_summary: str = ""
    deploy_summary: str = ""
    selftest: list[StageLine] = field(default_factory=list)
    pis: list[PiSeen] = field(default_factory=list)
    saved_to: Path | None = None
    prepare_model: str = "pi3b"
    """The model chosen on the Prepare screen."""
    prepared: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Model → what prepare made for it in this session (``PreparedCard.to_data()``)."""
    _facts: tuple[Answers, Done] | None = None
    _saved: Answers | None = None
    demo_values: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    """key → (the demo's per-run value, the user's own value): saved files keep the user's."""

    def try_set(self, key: str, value: Any) -> AnswersError | None:
        """Validate ``key = value`` with the answers-file rules; apply it if valid.

        Returns:
            None when applied, else the AnswersError ``--answers`` would report.
        """
        data = _with_value(self.answers.model_dump(mode="python"), key, value)
        try:
            self.answers = parse_answers(data)
        except AnswersError as exc:
            return exc
        return None

    def load(self, path: Path) -> None:
        """Replace the answers with a file's (same loader as ``--answers``).

        Raises:
            UsageError, AnswersError: the file is missing, not TOML, or invalid.
        """
        from steps.answers import load_answers

        self.answers = load_answers(path)
        self.answers_path = path
        self.given = sections_in_file(path)
        self.confirmed.clear()
        self.mark_saved()
        self.forget_facts()

    def secrets_path(self) -> Path | None:
        """Where the token is kept (``app.secrets_file``), if set."""
        name = self.answers.app.secrets_file
        return resolve_path(name) if name else None

    def read_token(self) -> None:
        """Pre-fill the token from an existing secrets file (silently: it is optional)."""
        path = self.secrets_path()
        if path is None or not path.is_file():
            return
        from steps.answers import load_secrets

        try:
            self.token = load_secrets(path).token
        except UsageError:
            self.token = ""

    def write_secrets(self) -> Path | None:
        """Write the token to the secrets file (mode 0600, atomically); None if no token."""
        path = self.secrets_path()
        if not self.token or path is None:
            return None
        import tomlkit

        from steps.fsutil import atomic_write

        doc = tomlkit.document()
        doc.add(tomlkit.comment("firecore-wizard secrets; keep this file mode 0600"))
        doc.add("token", self.token)
        atomic_write(path, tomlkit.dumps(doc), mode=0o600)
        return path

    def use_demo(self, answers: Answers) -> None:
        """Switch to answers pointed at the demo mirror, remembering what they replaced."""
        for key in ("release.mirrors", "app.wheelhouse"):
            mine, demo = get_key(self.answers, key), get_key(answers, key)
            if mine != demo:
                self.demo_values[key] = (demo, mine)
        self.answers = answers
        self.mark_saved()

    def answers_for_file(self) -> Answers:
        """The answers to write to a file: the demo's random port and wheelhouse left out.

        The demo mirror's URL changes every run and its wheelhouse is a cache path, so a saved
        file keeps the user's own mirrors and wheelhouse (unless they changed them since).
        """
        data = self.answers.model_dump(mode="python")
        for key, (demo, mine) in self.demo_values.items():
            if get_key(self.answers, key) == demo:
                data = _with_value(data, key, mine)
        return parse_answers(data) if self.demo_values else self.answers

    def mark_saved(self) -> None:
        """The current answers are what the file (or the session's start) holds."""
        self._saved = self.answers

    def unsaved(self) -> bool:
        """The answers differ from what was last saved, loaded or started from."""
        return self._saved is not None and self.answers != self._saved

    def facts(self) -> Done:
        """What is done in the world for the current answers (read once per answers object).

        A few small files are read (manifest, dnsmasq drop-in, the ``current`` link): cheap,
        and only after the answers changed (a settled value) or ``forget_facts``.
        """
        if self._facts is None or self._facts[0] is not self.answers:
            self._facts = (self.answers, what_is_done(self.answers))
        return self._facts[1]

    def forget_facts(self) -> None:
        """The world may have changed (a step ran, a file was opened): read it again."""
        self._facts = None

    def output_built(self) -> bool:
        """A boot tree with a manifest exists at ``build.output`` (from any answers)."""
        return (resolve_path(self.answers.build.output) / "manifest.json").is_file()


def default_answers_path() -> Path:
    """Where Save proposes to write when no answers file was opened."""
    return Path(os.getcwd()) / "firecore-answers.toml"
