"""The external-program wrapper: typed errors, cancellation, streaming."""

from __future__ import annotations

import threading
import time

import pytest

from steps import proc
from steps.errors import Cancelled, CommandError


def test_captures_output_reliably() -> None:
    for _ in range(20):  # sh loses output with timed waits; this guards the workaround
        result = proc.run("sh", "-c", "printf out; printf err >&2")
        assert (result.stdout, result.stderr) == (b"out", b"err")


def test_failure_names_program_args_and_stderr() -> None:
    with pytest.raises(CommandError) as info:
        proc.run("sh", "-c", "echo 'no partition table' >&2; exit 3", fix="check the image")
    err = info.value
    assert err.returncode == 3
    assert err.program == "sh"
    assert "no partition table" in str(err) and "check the image" in str(err)


def test_missing_program_names_the_debian_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(CommandError) as info:
        proc.run("mcopy", "-V")
    assert "apt-get install mtools" in info.value.fix


def test_cancel_terminates_the_child() -> None:
    cancel = threading.Event()
    threading.Timer(0.2, cancel.set).start()
    start = time.monotonic()
    with pytest.raises(Cancelled):
        proc.run("sleep", "600", cancel=cancel)
    assert time.monotonic() - start < 300  # terminated, not waited for (a hang-stopper only)


def test_stream_yields_command_then_lines() -> None:
    lines = list(proc.stream("s", "sh", "-c", "echo one; echo two"))
    assert lines[0].stream == "cmd"
    assert [x.text for x in lines[1:]] == ["one", "two"]
    with pytest.raises(CommandError):
        list(proc.stream("s", "sh", "-c", "exit 5"))
