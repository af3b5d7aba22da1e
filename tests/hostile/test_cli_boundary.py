"""One error boundary for every command (issue 10, root cause 2).

A user error exits 2 naming the key or argument; anything unexpected is one line and exit 1
(its traceback only with --debug); under --json an ``error`` line is written and ``done`` is
always the last line.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from steps.base import StepContext
from steps.events import Event, LogLine
from wizard.cli import main


class _Boom:
    name = "boom"
    title = "Boom"

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc

    def run(self, ctx: StepContext) -> Iterator[Event]:
        yield LogLine("boom", "about to fail")
        raise self.exc


def _json_lines(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@pytest.mark.parametrize(
    "exc",
    [
        ValueError("bad value"),
        OSError(5, "Input/output error"),
        UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte"),
        IsADirectoryError(21, "Is a directory"),
        RecursionError("maximum recursion depth exceeded"),
    ],
)
def test_unexpected_error_in_a_sub_command_is_one_line_and_exit_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], exc: BaseException
) -> None:
    import wizard.commands.schema as schema

    def run(args: object) -> int:
        raise exc

    monkeypatch.setattr(schema, "run", run)
    assert main(["schema"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.startswith("ERROR Unexpected: ")
    assert "--debug" in err
    assert main(["schema", "--debug"]) == 1
    assert "Traceback" in capsys.readouterr().err


def test_unexpected_error_in_a_headless_step_ends_json_with_error_then_done(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    import wizard.headless_run as headless_run

    monkeypatch.setattr(
        headless_run, "build_plan", lambda answers: [_Boom(OSError(28, "No space left"))]
    )
    answers = tmp_path / "a.toml"
    answers.write_text(f'version = 1\n[build]\noutput = "{tmp_path / "out"}"\n')
    code = main(["--answers", str(answers), "--json"])
    out, err = capsys.readouterr()
    lines = _json_lines(out)
    assert code == 1
    assert lines[-1] == {"type": "done", "exit_code": 1}
    assert [x["type"] for x in lines].count("done") == 1
    assert any(x["type"] == "error" for x in lines)
    assert "Traceback" not in err


def test_answers_error_under_json_is_error_then_done(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    answers = tmp_path / "a.toml"
    answers.write_text("version = 1\n[deploy]\nkeep = true\n")
    assert main(["--answers", str(answers), "--json", "--dry-run"]) == 2
    lines = _json_lines(capsys.readouterr().out)
    assert [x["type"] for x in lines] == ["error", "done"]
    assert str(lines[0]["message"]).startswith("deploy.keep")


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["selftest", "--dhcp-timeout", "-1"], "--dhcp-timeout"),
        (["selftest", "--dhcp-timeout", "nan"], "--dhcp-timeout"),
        (["selftest", "--serial", "deadbeef\n"], "control character"),
        (["selftest", "--serial", "xyz"], "--serial"),
        (["status", "--wait", "inf"], "--wait"),
        (["demo-mirror", "--out", "x", "--port", "99999"], "--port"),
        (["deploy", "--to", "\x1b]0;owned\x07"], "control character"),
        (["--answers", "a\nb"], "control character"),
        (["dnsmasq", "nonsense"], "invalid choice"),
    ],
)
def test_bad_arguments_exit_2_naming_the_argument(
    capsys: pytest.CaptureFixture[str], argv: list[str], named: str
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert named in err
    assert "\x1b" not in err and "Traceback" not in err


def test_sub_command_json_output_ends_with_done(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    answers = tmp_path / "a.toml"
    answers.write_text(f'version = 1\n[network]\ntftp_root = "{tmp_path / "tftp"}"\n')
    assert main(["deploy", "--list", "--json", "--answers", str(answers)]) == 0
    lines = _json_lines(capsys.readouterr().out)
    assert lines[-1] == {"type": "done", "exit_code": 0}
