"""``make run`` offers the demo mirror when no piCore mirror answers (``--offer-demo``)."""

from __future__ import annotations

import io
import socket

import pytest

from steps.demo.server import MirrorServer
from steps.fetch.mirror import answering_mirror
from wizard import cli


def _closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"  # nothing listens there any more


def test_answering_mirror_skips_dead_ones(mirror_server: MirrorServer) -> None:
    dead = _closed_port_url()
    assert answering_mirror([dead], timeout=1) is None
    assert answering_mirror([dead, mirror_server.url], timeout=10) == mirror_server.url


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(("reply", "expected"), [("\n", True), ("y\n", True), ("n\n", False)])
def test_offline_asks_on_a_terminal(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], reply: str, expected: bool
) -> None:
    monkeypatch.setattr("sys.stdin", _Tty(reply))
    assert cli._ask_for_demo([_closed_port_url()]) is expected
    err = capsys.readouterr().err
    assert "No piCore mirror answered" in err and "does not boot a real Pi" in err


def test_offline_without_a_terminal_does_not_ask(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("y\n"))
    assert cli._ask_for_demo([_closed_port_url()]) is False
    assert "Not a terminal" in capsys.readouterr().err


def test_online_does_not_ask(mirror_server: MirrorServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", _Tty(""))  # input() would raise EOFError if it asked
    assert cli._ask_for_demo([mirror_server.url]) is False
