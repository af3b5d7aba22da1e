"""The one wrapper around external programs (sfdisk, mtools, mksquashfs, dnsmasq, ip …).

Built on ``sh``. A failure becomes a ``CommandError`` naming the program, its arguments and its
stderr; a missing program becomes one that says which Debian package provides it. ``run`` honours
a cancel flag by terminating the child and raising ``Cancelled``. ``stream`` yields the command and
its output as ``LogLine`` events, for steps that show tool output live.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from steps.errors import Cancelled, CommandError
from steps.events import LogLine

if TYPE_CHECKING:
    import subprocess

#: Debian package that provides each program we call, for the "not installed" message.
PACKAGES: dict[str, str] = {
    "sfdisk": "fdisk",
    "mcopy": "mtools",
    "mdir": "mtools",
    "mformat": "mtools",
    "mmd": "mtools",
    "mksquashfs": "squashfs-tools",
    "unsquashfs": "squashfs-tools",
    "mke2fs": "e2fsprogs",
    "debugfs": "e2fsprogs",
    "cpio": "cpio",
    "dnsmasq": "dnsmasq-base",
    "ip": "iproute2",
    "ethtool": "ethtool",
    "tcpdump": "tcpdump",
    "tshark": "tshark",
    "systemctl": "systemd",
    "nft": "nftables",
    "iptables": "iptables",
    "qemu-system-arm": "qemu-system-arm",
    "ssh": "openssh-client",
}

_POLL = 0.05


def _sh() -> Any:
    """The ``sh`` module, imported when the first program runs (~0.1 s a run with nothing to run
    would pay for at start-up)."""
    import sh

    return sh


@dataclass(frozen=True)
class Completed:
    """A finished command: its exit code and captured output."""

    args: tuple[str, ...]
    returncode: int
    stdout: bytes
    stderr: bytes

    @property
    def text(self) -> str:
        """stdout decoded as UTF-8 (replacing bad bytes)."""
        return self.stdout.decode("utf-8", "replace")


def _command(program: str) -> Any:
    sh = _sh()
    try:
        return sh.Command(program)
    except sh.CommandNotFound:
        package = PACKAGES.get(program, program)
        raise CommandError(
            program,
            [],
            None,
            f"{program}: not found on PATH",
            fix=f"install it: `apt-get install {package}` (or run `make setup`)",
        ) from None


def _env(env: Mapping[str, str] | None) -> dict[str, str]:
    merged = dict(os.environ)
    merged.setdefault("LANG", "C")
    merged["LC_ALL"] = "C"  # we parse some tools' output: keep it untranslated
    merged["MTOOLS_SKIP_CHECK"] = "1"
    if env:
        merged.update(env)
    return merged


def run(
    program: str,
    *args: str | os.PathLike[str],
    cancel: threading.Event | None = None,
    stdin: bytes | str | None = None,
    cwd: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    ok_codes: Sequence[int] = (0,),
    fix: str = "",
) -> Completed:
    """Run a program to completion and capture its output.

    Raises:
        CommandError: the program is missing or exited with a code not in ``ok_codes``.
        Cancelled: ``cancel`` was set while it ran (the child is terminated first).
    """
    argv = [os.fspath(a) for a in args]
    cmd = _command(program)
    sh = _sh()
    try:
        proc = cmd(
            *argv,
            _bg=True,
            _bg_exc=False,
            _return_cmd=True,
            _ok_code=list(range(-64, 256)),
            _in=stdin,
            _cwd=os.fspath(cwd) if cwd is not None else None,
            _env=_env(env),
            _tty_out=False,
            _decode_errors="replace",
        )
    except sh.ForkException as exc:  # pragma: no cover - fork failure is not a user error
        raise CommandError(program, argv, None, str(exc)) from None
    _wait(proc, cancel)
    out = bytes(proc.stdout)
    err = bytes(proc.stderr)
    code = int(proc.exit_code)
    if code not in ok_codes:
        raise CommandError(program, argv, code, err.decode("utf-8", "replace"), fix=fix)
    return Completed(tuple([program, *argv]), code, out, err)


def _wait(proc: Any, cancel: threading.Event | None) -> None:
    """Block until the child exits; a watcher thread terminates it if ``cancel`` is set.

    sh 2.4 loses captured output when ``wait(timeout=…)`` is used, so the main thread always
    waits without a timeout and cancellation comes from the side.
    """
    finished = threading.Event()
    killed = threading.Event()

    def watch() -> None:
        assert cancel is not None
        while not finished.wait(_POLL):
            if cancel.is_set():
                killed.set()
                _stop(proc)
                return

    if cancel is not None:
        threading.Thread(target=watch, daemon=True, name="proc-cancel").start()
    sh = _sh()
    try:
        proc.wait()
    except (sh.ErrorReturnCode, sh.SignalException):
        pass
    finally:
        finished.set()
    if killed.is_set():
        raise Cancelled()


def _stop(proc: Any) -> None:
    try:
        proc.terminate()
        for _ in range(60):
            if not proc.is_alive():
                return
            threading.Event().wait(_POLL)
        proc.kill()
    except (ProcessLookupError, OSError):
        pass


def stream(
    step: str,
    program: str,
    *args: str | os.PathLike[str],
    cancel: threading.Event | None = None,
    cwd: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    ok_codes: Sequence[int] = (0,),
    fix: str = "",
) -> Iterator[LogLine]:
    """Run a program, yielding the command line and then each output line as it arrives.

    Raises the same errors as ``run``; the last stderr lines are in the CommandError.
    """
    import queue  # here and in spawn: a no-change rerun runs no program, and imports neither

    argv = [os.fspath(a) for a in args]
    yield LogLine(step, " ".join([program, *argv]), "cmd")
    lines: queue.Queue[tuple[str, str]] = queue.Queue()
    stderr_tail: list[str] = []

    def on_out(line: str) -> None:
        lines.put(("stdout", line.rstrip("\n")))

    def on_err(line: str) -> None:
        stderr_tail.append(line)
        del stderr_tail[:-50]
        lines.put(("stderr", line.rstrip("\n")))

    cmd = _command(program)
    proc = cmd(
        *argv,
        _bg=True,
        _bg_exc=False,
        _return_cmd=True,
        _ok_code=list(range(-64, 256)),
        _out=on_out,
        _err=on_err,
        _cwd=os.fspath(cwd) if cwd is not None else None,
        _env=_env(env),
        _decode_errors="replace",
    )
    done = threading.Event()

    sh = _sh()

    def waiter() -> None:
        with contextlib.suppress(sh.ErrorReturnCode, sh.SignalException):
            proc.wait()
        done.set()

    threading.Thread(target=waiter, daemon=True).start()
    while not (done.is_set() and lines.empty()):
        try:
            kind, text = lines.get(timeout=_POLL)
            yield LogLine(step, text, "stderr" if kind == "stderr" else "stdout")
        except queue.Empty:
            if cancel is not None and cancel.is_set():
                _stop(proc)
                raise Cancelled() from None
    code = int(proc.exit_code)
    if code not in ok_codes:
        raise CommandError(program, argv, code, "".join(stderr_tail), fix=fix)


def spawn(
    program: str,
    *args: str | os.PathLike[str],
    env: Mapping[str, str] | None = None,
    fix: str = "",
) -> subprocess.Popen[bytes]:
    """Start a program with pipes on stdin, stdout and stderr, for callers that stream data
    through it (a tar stream into ssh, a capture out of it). The caller owns the process.

    Raises:
        CommandError: the program is not installed.
    """
    import subprocess

    argv = [os.fspath(a) for a in args]
    found = which(program) or locate(program)
    if found is None:
        package = PACKAGES.get(program, program)
        raise CommandError(
            program,
            argv,
            None,
            f"{program}: not found on PATH",
            fix=fix or f"install it: `apt-get install {package}` (or run `make setup`)",
        )
    return subprocess.Popen(
        [os.fspath(found), *argv],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=_env(env),
        start_new_session=True,
    )


def which(program: str) -> Path | None:
    """Where ``program`` is on PATH, or None (a lookup, not a process: it runs on every check)."""
    found = shutil.which(program)
    return Path(found) if found else None


def locate(program: str) -> str | None:
    """How to run ``program``: its name when it is on PATH, else its path in /usr/sbin or /sbin
    (root's tools, not on a normal user's PATH); None when it is not installed."""
    if which(program):
        return program
    for folder in ("/usr/sbin", "/sbin"):
        candidate = f"{folder}/{program}"
        if os.access(candidate, os.X_OK):
            return candidate
    return None
