"""``firecore-wizard schema``: the answers file's JSON Schema."""

from __future__ import annotations

import argparse
import json
import sys

from steps.answers import Answers

HELP = "print the JSON Schema of the answers file"


def configure(parser: argparse.ArgumentParser) -> None:
    """No options."""


def run(args: argparse.Namespace) -> int:
    """Print the schema (pydantic's, with every field's documentation)."""
    sys.stdout.write(json.dumps(Answers.model_json_schema(), indent=2) + "\n")
    return 0
