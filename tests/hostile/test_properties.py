"""Property tests (hypothesis): arbitrary strings into every answers key and every CLI argument.

Whatever comes in, the outcome is either a clean refusal (AnswersError/UsageError naming the
key or argument) or an accepted value holding no control character — never a traceback.
"""

from __future__ import annotations

import argparse
import typing
import unicodedata
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from steps.answers import Answers, Profile, parse_answers
from steps.errors import UsageError
from steps.model import BaseModel
from tests.hostile.conftest import nest
from wizard.cli import SUBCOMMANDS, _main_parser, _sub_parser, main

# text biased towards the characters that break things: newlines, escapes, quotes, '#', '..'
_TRICKY = st.sampled_from(["\n", "\r", "\x1b[2J", "\x00", "\t", '"', "'", "#", "..", "/", "=", ","])
TEXT = st.one_of(
    st.text(max_size=40),
    st.lists(st.one_of(st.text(max_size=8), _TRICKY), max_size=6).map("".join),
)
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def has_control(text: str) -> bool:
    """The test's own oracle: a C0/C1 control, DEL, or a format/separator character."""
    return any(unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") for c in text)


def _leaves(model: type[BaseModel], prefix: str = "") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for name, field in model.model_fields.items():
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            out += _leaves(ann, f"{prefix}{name}.")
        elif name == "profiles":
            out += [(f"{prefix}profiles.p.{k}", a) for k, a in _leaves(Profile)]
        else:
            out.append((f"{prefix}{name}", ann))
    return out


KEYS = [(k, a) for k, a in _leaves(Answers) if k != "version"]


def _value_for(ann: Any) -> st.SearchStrategy[Any]:
    origin = typing.get_origin(ann)
    if origin is list:
        return st.lists(TEXT, max_size=4)
    if origin is dict:
        return st.dictionaries(TEXT, TEXT, max_size=3)
    return TEXT  # a string into a bool, int, float or Literal key too


def _strings(obj: Any) -> list[str]:
    if isinstance(obj, str):
        return [obj]
    if isinstance(obj, dict):
        return [s for k, v in obj.items() for s in (*_strings(k), *_strings(v))]
    if isinstance(obj, list | tuple):
        return [s for v in obj for s in _strings(v)]
    return []


@pytest.mark.parametrize(("key", "ann"), KEYS, ids=[k for k, _ in KEYS])
@SETTINGS
@given(data=st.data())
def test_every_answers_key_refuses_cleanly_or_accepts_no_control_character(
    key: str, ann: Any, data: st.DataObject
) -> None:
    value = data.draw(_value_for(ann))
    try:
        answers = parse_answers(nest(key, value))
    except UsageError as exc:  # AnswersError is one; it names the key
        assert exc.message
        return
    bad = [s for s in _strings(answers.model_dump(mode="json")) if has_control(s)]
    assert not bad, (key, value, bad)


def _value_options(parser: argparse.ArgumentParser) -> list[tuple[str, argparse.Action]]:
    out = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                out += [(f"{name} {opt}", a) for opt, a in _value_options(sub)]
        elif action.option_strings and action.nargs != 0:
            out.append((action.option_strings[-1], action))
    return out


def _parsers() -> list[tuple[str, argparse.ArgumentParser]]:
    found = [("", _main_parser())]
    found += [(name, _sub_parser(name)[0]) for name in SUBCOMMANDS]
    return found


ARGS = [(command, option) for command, parser in _parsers() for option, _ in _value_options(parser)]


@pytest.mark.parametrize(("command", "option"), ARGS, ids=[f"{c} {o}".strip() for c, o in ARGS])
@SETTINGS
@given(value=TEXT)
def test_every_cli_argument_refuses_cleanly_or_accepts_no_control_character(
    command: str, option: str, value: str
) -> None:
    parser = dict(_parsers())[command]
    words = option.split()
    required = ["--out", "x"] if command == "demo-mirror" and words[-1] != "--out" else []
    try:
        ns = parser.parse_args([*words[:-1], words[-1], value, *required])
    except UsageError as exc:
        assert exc.message
        return
    for v in vars(ns).values():
        if isinstance(v, str | Path):
            assert not has_control(str(v)), (option, value)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)  # capsys is read (and so emptied) on every example
@given(value=TEXT)
def test_answers_path_from_anywhere_never_tracebacks(
    value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["--answers", value, "--dry-run", "--json"])
    out, err = capsys.readouterr()
    assert code == 2
    assert "Traceback" not in err
    assert out.splitlines()[-1] == '{"type": "done", "exit_code": 2}'


def test_the_property_tests_cover_every_key_and_argument() -> None:
    assert len(KEYS) >= 30 and {"app.env", "deploy.devices", "network.dnsmasq_extra"} <= {
        k for k, _ in KEYS
    }
    assert any(o == "--dhcp-timeout" for _, o in ARGS)
