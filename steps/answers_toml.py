"""Writing an answers file: complete, commented, deterministic.

The file the TUI saves holds every key (defaults included) with its documentation as a comment,
so a user can read and edit it, and ``load_answers`` gives back an equal model. The text depends
only on the answers, so saving twice gives identical bytes.
"""

from __future__ import annotations

import textwrap
from typing import Any

import tomlkit
from tomlkit.items import Table

from steps.answers import Answers, document_fields
from steps.model import BaseModel

HEADER = """\
firecore-wizard answers file.
Run it headless with `firecore-wizard --answers THIS_FILE`, or open it in the wizard with
`firecore-wizard --answers THIS_FILE --interactive`. Every key is documented below; relative paths
are relative to the directory you run the command from. Reference: docs/reference/answers.md."""


def _comment_lines(text: str) -> list[str]:
    words = " ".join(line.strip() for line in text.strip().splitlines())
    return textwrap.wrap(words, width=96) or [""]


def _fill(table: Table, model: BaseModel) -> list[tuple[str, BaseModel]]:
    """Add ``model``'s scalar and list fields to ``table``; return its sub-tables to add after."""
    later: list[tuple[str, BaseModel]] = []
    for name, field in type(model).model_fields.items():
        value: Any = getattr(model, name)
        if isinstance(value, BaseModel):
            later.append((name, value))
            continue
        if field.description:
            table.add(tomlkit.nl())
            for line in _comment_lines(field.description):
                table.add(tomlkit.comment(line))
        if isinstance(value, dict) and value and isinstance(next(iter(value.values())), BaseModel):
            # named sub-models (deploy.profiles): an empty inline table here, one table per name
            table.add(name, tomlkit.inline_table())
            for key in sorted(value):
                later.append((f"{name}.{key}", value[key]))
            continue
        if isinstance(value, dict):
            inline = tomlkit.inline_table()
            for key in sorted(value):
                inline[key] = value[key]
            table.add(name, inline)
        else:
            table.add(name, value)
    return later


def dump_answers(answers: Answers) -> str:
    """The complete, commented TOML text of ``answers``."""
    document_fields()
    doc = tomlkit.document()
    for line in HEADER.splitlines():
        doc.add(tomlkit.comment(line))
    doc.add(tomlkit.nl())
    doc.add("version", answers.version)
    pending: list[tuple[str, BaseModel]] = [
        (name, getattr(answers, name))
        for name in type(answers).model_fields
        if isinstance(getattr(answers, name), BaseModel)
    ]
    while pending:
        dotted, model = pending.pop(0)
        doc.add(tomlkit.nl())
        doc_text = (type(model).__doc__ or "").strip()
        table = tomlkit.table()
        if doc_text and "." not in dotted:
            table.comment(doc_text.splitlines()[0])
        children = _fill(table, model)
        _add_table(doc, dotted, table)
        pending[0:0] = [(f"{dotted}.{child}", sub) for child, sub in children]
    return tomlkit.dumps(doc).rstrip() + "\n"


def _add_table(doc: tomlkit.TOMLDocument, dotted: str, table: Table) -> None:
    parts = dotted.split(".")
    if len(parts) == 1:
        doc.add(parts[0], table)
        return
    # deploy.profiles.NAME: replace the empty inline placeholder with a super-table of tables
    parent: Any = doc[parts[0]]
    for part in parts[1:-1]:
        if not isinstance(parent.get(part), Table):
            parent[part] = tomlkit.table(is_super_table=True)
        parent = parent[part]
    parent.add(parts[-1], table)


def reference_markdown() -> str:
    """The answers-file reference as a Markdown table (generates docs/reference/answers.md)."""
    document_fields()
    rows = ["| Key | Default | Meaning |", "|---|---|---|"]
    rows.append("| `version` | (required) | Format version of the file; always `1`. |")

    def walk(prefix: str, model: type[BaseModel]) -> None:
        for name, field in model.model_fields.items():
            ann = field.annotation
            key = f"{prefix}{name}"
            if isinstance(ann, type) and issubclass(ann, BaseModel):
                walk(f"{key}.", ann)
                continue
            if key == "version":
                continue
            default = field.get_default(call_default_factory=True)
            shown = tomlkit.item(default).as_string() if not isinstance(default, dict) else "{}"
            text = " ".join((field.description or "").split()).replace("|", "\\|")
            rows.append(f"| `{key}` | `{shown}` | {text} |")
            if key == "deploy.profiles":
                from steps.answers import Profile

                walk("deploy.profiles.NAME.", Profile)

    walk("", Answers)
    return "\n".join(rows) + "\n"
