"""``firecore-wizard schema``: the answers file's JSON Schema."""

from __future__ import annotations

import argparse
import json

from steps.answers import answers_json_schema
from wizard.render import make_renderer

HELP = "print the JSON Schema of the answers file"


def configure(parser: argparse.ArgumentParser) -> None:
    """No options."""


def run(args: argparse.Namespace) -> int:
    """Print the schema, with every field's documentation."""
    with make_renderer(json_lines=False) as out:
        out.data(json.dumps(answers_json_schema(), indent=2))
    return 0
