"""The headless runner: events rendered, JSON lines, exit codes, Ctrl-C."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading

from steps.base import StepContext
from steps.errors import CommandError, StepError
from steps.events import Planned
from tests.conftest import ROOT, FakeStep, fake_events
from wizard.exit_codes import ExitCode
from wizard.headless import run_steps
from wizard.render import Renderer


def _run(steps, answers, *, json_lines=False, dry_run=False):
    out, err = io.StringIO(), io.StringIO()
    ctx = StepContext(answers=answers, dry_run=dry_run)
    code = run_steps(steps, ctx, Renderer(out, err, json_lines=json_lines))
    return code, out.getvalue(), err.getvalue()


def test_plain_rendering_puts_progress_on_stderr_and_results_on_stdout(answers) -> None:
    steps = [
        FakeStep("release", "Release", fake_events("release")),
        FakeStep("extensions", "Extensions"),
    ]
    code, out, err = _run(steps, answers)
    assert code == ExitCode.OK
    assert err.splitlines()[0] == "* Release"
    assert "  > sfdisk --json x.img" in err
    assert "  [download] 50% 50 B/100 B" in err
    assert "* Extensions" in err
    assert out.splitlines() == ["  ✓ release done", "  ✓ extensions done"]


def test_json_lines_are_one_object_per_line(answers) -> None:
    steps = [
        FakeStep(
            "release", "Release", [*fake_events("release"), Planned("release", "download", "x.zip")]
        )
    ]
    _code, out, _ = _run(steps, answers, json_lines=True)
    objs = [json.loads(line) for line in out.splitlines()]
    assert [o["type"] for o in objs] == [
        "step",
        "log",
        "progress",
        "progress",
        "log",
        "plan",
        "result",
        "step",
        "done",
    ]
    assert objs[2] == {
        "type": "progress",
        "step": "release",
        "phase": "download",
        "done": 50,
        "total": 100,
        "unit": "bytes",
        "message": "",
    }
    assert objs[-1] == {"type": "done", "exit_code": 0}


def test_step_failure_exits_1_naming_step_and_cause(answers) -> None:
    failing = FakeStep(
        "remaster",
        "Remaster",
        error=CommandError(
            "sfdisk", ["--json", "x.img"], 1, "sfdisk: bad table\n", fix="use a piCore image"
        ),
    )
    after = FakeStep("network", "Network")
    code, out, err = _run([failing, after], answers, json_lines=True)
    assert code == ExitCode.STEP_FAILED
    assert after.ran == []
    expected = "ERROR Command failed in step remaster: `sfdisk --json x.img` exited with 1"
    assert f"{expected}: sfdisk: bad table" in err
    assert "  fix: use a piCore image" in err
    error = next(json.loads(x) for x in out.splitlines() if '"error"' in x)
    assert error["step"] == "remaster" and error["exit_code"] == 1


def test_cancel_flag_stops_with_130(answers) -> None:
    step = FakeStep("remaster", "Remaster", wait_for_cancel=True)
    ctx = StepContext(answers=answers)
    threading.Timer(0.2, ctx.cancel.set).start()
    out, err = io.StringIO(), io.StringIO()
    assert run_steps([step], ctx, Renderer(out, err)) == ExitCode.INTERRUPTED
    assert "ERROR Interrupted in step remaster" in err.getvalue()


def test_usage_error_from_a_step_exits_2(answers) -> None:
    from steps.errors import AnswersError

    code, _, err = _run(
        [
            FakeStep(
                "extensions",
                error=AnswersError(
                    "extensions.names",
                    "unknown extension 'pyhton3.11.tcz'",
                    fix="did you mean python3.11.tcz?",
                ),
            )
        ],
        answers,
    )
    assert code == ExitCode.USAGE
    assert "extensions.names" in err


def test_sigint_in_a_real_process_exits_130_without_traceback(tmp_path) -> None:
    script = textwrap.dedent(
        """
        import sys, io
        from steps.answers import default_answers
        from steps.base import StepContext
        from tests.conftest import FakeStep
        from wizard.headless import run_steps
        from wizard.render import Renderer

        class Ready(Renderer):
            def step_started(self, name, title):  # inside run_steps: Ctrl-C is handled now
                super().step_started(name, title)
                print("ready", flush=True)

        code = run_steps([FakeStep("remaster", "Remaster", wait_for_cancel=True)],
                         StepContext(answers=default_answers()), Ready(sys.stdout, sys.stderr))
        sys.exit(int(code))
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    while (line := proc.stdout.readline()) and line.strip() != "ready":
        pass
    assert line.strip() == "ready"
    os.kill(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 130
    assert "Traceback" not in err
    assert "ERROR Interrupted" in err


def test_step_error_is_exit_1(answers) -> None:
    code, _, _ = _run([FakeStep("x", error=StepError("boom"))], answers)
    assert code == 1
