"""``firecore-wizard monitor`` chooses its front end: the screen on a terminal, JSON otherwise.

The screen tests run the real command in a pseudo-terminal (its size set, keys written to it)
and read what it draws; ``--pcap -`` gets the capture on a pipe and the keys from the terminal,
as ``tcpdump -U -w - | firecore-wizard monitor --pcap -`` does. The JSON path is checked never
to import Textual.
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

from tests.conftest import ROOT
from tests.wizard.diag_support import scene

WIZARD = str(Path(sys.executable).with_name("firecore-wizard"))
CSI = re.compile(rb"\x1b\[[0-9;?<>=$]*[A-Za-z~]")


def text_of(drawn: bytes) -> bytes:
    """What a terminal shows, roughly: the drawing without its control sequences."""
    return CSI.sub(b"", drawn)


MARKS = (b"tftp-file-not-found", b"Boot [1]", b"Packets [2]")
"""What the screen draws once the capture is read (the tabs come a frame after the rest)."""


def on_a_terminal(argv: list[str], *, stdin: bytes | None = None) -> tuple[int, bytes]:
    """Run ``argv`` with a pseudo-terminal (80×24) as its terminal; ``q`` once ``MARKS`` are
    drawn; (exit code, what it drew). ``stdin``: bytes on a pipe instead of the terminal."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))

    def controlling_terminal() -> None:  # runs in the child, after setsid
        fcntl.ioctl(1, termios.TIOCSCTTY, 0)

    proc = subprocess.Popen(
        argv,
        stdin=subprocess.PIPE if stdin is not None else slave,
        stdout=slave,
        stderr=slave,
        start_new_session=True,
        preexec_fn=controlling_terminal,
        env={**os.environ, "TERM": "xterm-256color", "COLUMNS": "80", "LINES": "24"},
    )
    os.close(slave)
    if stdin is not None:
        assert proc.stdin is not None
        proc.stdin.write(stdin)
        proc.stdin.close()
    drawn = b""
    deadline = time.monotonic() + 180
    try:
        while not all(mark in text_of(drawn) for mark in MARKS):
            assert time.monotonic() < deadline and proc.poll() is None, drawn[-2000:]
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                drawn += os.read(master, 65536)
        os.write(master, b"q")
        end = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < end:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    drawn += os.read(master, 65536)
                except OSError:
                    break
        return proc.wait(timeout=60), drawn
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)


def test_on_a_terminal_it_opens_the_screen(tmp_path: Path) -> None:
    code, drawn = on_a_terminal([WIZARD, "monitor", "--pcap", str(scene(tmp_path))])
    assert code == 1  # an error was diagnosed: the same exit code as the JSON lines
    shown = text_of(drawn)
    assert b"two-pis.pcap" in shown and b"Traceback" not in shown


def test_a_capture_on_stdin_with_keys_from_the_terminal(tmp_path: Path) -> None:
    data = scene(tmp_path).read_bytes()
    code, drawn = on_a_terminal([WIZARD, "monitor", "--pcap", "-"], stdin=data)
    assert code == 1
    shown = text_of(drawn)
    assert b"stdin" in shown and b"Traceback" not in shown


def test_json_lines_never_import_textual(tmp_path: Path) -> None:
    path = scene(tmp_path)
    code = (
        "import sys\n"
        "from wizard.cli import main\n"
        f"rc = main(['monitor', '--pcap', {str(path)!r}])\n"
        "assert not [m for m in sys.modules if m.split('.')[0] == 'textual'], 'textual'\n"
        "sys.exit(rc)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300
    )
    assert proc.returncode == 1, proc.stderr  # stdout is a pipe: JSON lines
    lines = [json.loads(x) for x in proc.stdout.splitlines()]
    assert [x["code"] for x in lines if x["type"] == "diagnosis"] == ["tftp-file-not-found"]


def test_a_terminal_as_the_capture_is_a_usage_error() -> None:
    master, slave = pty.openpty()
    try:
        proc = subprocess.run(
            [WIZARD, "monitor", "--pcap", "-"],
            stdin=slave,
            stdout=slave,
            stderr=subprocess.PIPE,
            timeout=120,
        )
    finally:
        os.close(slave)
        os.close(master)
    assert proc.returncode == 2
    assert b"stdin is this terminal" in proc.stderr and b"Traceback" not in proc.stderr
