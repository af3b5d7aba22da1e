"""Shell scripts on a remote host over ssh: the router, or any deploy.target.

The remote side may be an OpenWrt router: a busybox ``sh`` and busybox applets, no Python, no
rsync, no GNU coreutils. So everything we run there is a POSIX shell script generated here, using
only applets OpenWrt's busybox builds by default (``package/utils/busybox/Config-defaults.in``:
``tar`` with create, ``sha256sum`` with ``-c``, ``mktemp``, ``dd``, ``readlink``, ``ln``,
``mv``; not ``realpath``, ``stat`` or ``timeout``).

A script travels on ssh's stdin, not on its command line (dropbear caps a command at a few KB):
the command is a fixed bootstrap that reads one line with the script's length, copies exactly that
many bytes into a temporary file and runs it with ``sh``, whose stdin then carries whatever
follows — a tar stream for an upload. The copy is ``dd bs=1``: one byte per read, so it never
takes a byte of the payload (busybox ``head -c`` reads through stdio buffers and would). The
bootstrap is parsed by the user's login shell, so it stays POSIX.

Scripts report with exit codes and ``key value`` lines on stdout; their messages go to stderr.
Exit 255 is ssh's own failure (no route, refused, host key, authentication), turned here into a
``RemoteError`` with the fix. ssh runs with ``BatchMode`` (never a password prompt: keys only) and
with ``deploy.ssh_config`` as ``-F`` when set.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from steps import proc
from steps.answers import Answers, SshTarget, parse_target, resolve_path
from steps.errors import Cancelled, RemoteError

#: Runs the script that follows on stdin: "<length>\n<script><payload…>".
BOOTSTRAP = (
    'sh -c \'IFS= read -r n || exit 97; case $n in ""|*[!0-9]*) exit 97;; esac; '
    "d=$(mktemp -d /tmp/firecore.XXXXXX) || exit 98; "
    'dd bs=1 count="$n" of="$d/run.sh" 2>/dev/null || exit 98; '
    'sh "$d/run.sh" "$d"; s=$?; rm -rf "$d"; exit $s\''
)
SSH_FAILED = 255
_SAFE = re.compile(r"[A-Za-z0-9_./:=+@%-]+")


def quote(value: str) -> str:
    """``value`` as one word for a POSIX shell (single quotes; a ``'`` becomes ``'\\''``)."""
    if value and _SAFE.fullmatch(value):
        return value
    return "'" + value.replace("'", "'\\''") + "'"


@dataclass(frozen=True)
class RemoteResult:
    """A finished remote script."""

    code: int
    stdout: bytes
    stderr: str

    def fields(self) -> dict[str, str]:
        """The ``key value`` lines of stdout (the last value of a repeated key wins)."""
        out: dict[str, str] = {}
        for line in self.stdout.decode("utf-8", "replace").splitlines():
            key, _, value = line.partition(" ")
            if key:
                out[key] = value
        return out

    def last_error(self) -> str:
        """The last stderr line (the script's own message)."""
        lines = [line for line in self.stderr.strip().splitlines() if line.strip()]
        return lines[-1].strip() if lines else f"exit code {self.code}"


def ssh_failure(target: SshTarget, stderr: str) -> RemoteError:
    """ssh's own failure (exit 255) as an error that says what to fix."""
    dest = target.destination
    port = target.port or 22
    said = " ".join(stderr.strip().splitlines()[-2:]) or "ssh failed"
    if "Permission denied" in stderr or "Too many authentication failures" in stderr:
        fix = (
            f"let this machine log in with a key: `ssh-copy-id {dest}` (on OpenWrt: add the "
            "public key under System → Administration → SSH-Keys, i.e. "
            "/etc/dropbear/authorized_keys)"
        )
    elif "Host key verification failed" in stderr or "IDENTIFICATION HAS CHANGED" in stderr:
        fix = (
            f"connect once with `ssh {dest}` to check and accept its host key (or name a "
            "known_hosts file in deploy.ssh_config)"
        )
    elif "Could not resolve hostname" in stderr:
        fix = f"check the host name in deploy.target ({target.host}), or use its address"
    else:
        fix = f"check that {target.host} is up and its ssh server listens on port {port}"
    return RemoteError(f"ssh {dest}: {said}", fix=fix, details=stderr)


class RemoteProcess:
    """A running remote script whose stdin the caller streams into (an upload)."""

    def __init__(
        self, ssh: Ssh, popen: subprocess.Popen[bytes], *, stream_stdout: bool = False
    ) -> None:
        self.ssh = ssh
        self.popen = popen
        self._out: list[bytes] = []
        self._err: list[bytes] = []
        self.closed = False
        """The remote side stopped reading stdin (it failed or finished early)."""
        assert popen.stdout is not None and popen.stderr is not None
        self._readers = [
            threading.Thread(target=_drain, args=(popen.stderr, self._err), daemon=True)
        ]
        if not stream_stdout:  # else the caller reads stdout itself (a capture stream)
            self._readers.append(
                threading.Thread(target=_drain, args=(popen.stdout, self._out), daemon=True)
            )
        for t in self._readers:
            t.start()

    @property
    def stdin(self) -> _Writer:
        """Where the payload goes (writes raise ``RemoteError`` once the remote side is gone)."""
        assert self.popen.stdin is not None
        return _Writer(self)

    def finish(self, cancel: threading.Event | None = None) -> RemoteResult:
        """Close stdin, wait for the script, and return its result.

        Raises:
            RemoteError: ssh itself failed.
            Cancelled: ``cancel`` was set (the process is stopped first).
        """
        with contextlib.suppress(OSError):
            assert self.popen.stdin is not None
            self.popen.stdin.close()
        while True:
            try:
                self.popen.wait(timeout=0.1)
                break
            except subprocess.TimeoutExpired:
                if cancel is not None and cancel.is_set():
                    self.kill()
                    raise Cancelled() from None
        for t in self._readers:
            t.join(10)
        result = RemoteResult(
            self.popen.returncode,
            b"".join(self._out),
            b"".join(self._err).decode("utf-8", "replace"),
        )
        if result.code == SSH_FAILED:
            raise ssh_failure(self.ssh.target, result.stderr)
        return result

    def kill(self) -> None:
        """Stop ssh (its whole session): the remote script sees its stdin end and cleans up."""
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(5)
        for stream in (self.popen.stdin, self.popen.stdout, self.popen.stderr):
            with contextlib.suppress(OSError):
                if stream is not None:
                    stream.close()


class _Writer:
    """A binary sink for tarfile: forwards to ssh's stdin."""

    def __init__(self, remote: RemoteProcess) -> None:
        self.remote = remote

    def write(self, data: bytes) -> int:
        stdin = self.remote.popen.stdin
        assert stdin is not None
        if not self.remote.closed:
            try:
                stdin.write(data)
            except (BrokenPipeError, ValueError):
                # the remote script stopped reading; finish() gives its exit code and message
                self.remote.closed = True
        return len(data)

    def flush(self) -> None:
        with contextlib.suppress(BrokenPipeError, ValueError):
            stdin = self.remote.popen.stdin
            if stdin is not None:
                stdin.flush()


def _drain(stream: object, into: list[bytes]) -> None:
    read: Callable[[int], bytes] = stream.read  # type: ignore[attr-defined]
    while chunk := read(65536):
        into.append(chunk)


@dataclass(frozen=True)
class Ssh:
    """How to reach one remote host."""

    target: SshTarget
    config: Path | None = None
    connect_timeout: int = 10

    def argv(self) -> list[str]:
        """ssh's arguments up to (and including) the bootstrap command."""
        args: list[str] = []
        if self.config is not None:
            args += ["-F", str(self.config)]
        args += [
            "-o",
            "BatchMode=yes",
            "-o",
            f"ConnectTimeout={self.connect_timeout}",
            "-o",
            "ServerAliveInterval=15",
            "-o",
            "ServerAliveCountMax=4",
        ]
        if self.target.port is not None:
            args += ["-p", str(self.target.port)]
        return [*args, "--", self.target.destination, BOOTSTRAP]

    def start(self, script: str, *, stream_stdout: bool = False) -> RemoteProcess:
        """Start ``script`` remotely; its stdin stays open for a payload. With
        ``stream_stdout`` the caller reads its stdout (``finish`` then returns none of it).

        Raises:
            CommandError: ssh is not installed.
        """
        popen = proc.spawn("ssh", *self.argv())
        remote = RemoteProcess(self, popen, stream_stdout=stream_stdout)
        body = script.encode()
        remote.stdin.write(f"{len(body)}\n".encode() + body)
        return remote

    def run(
        self, script: str, *, stdin: bytes = b"", cancel: threading.Event | None = None
    ) -> RemoteResult:
        """Run ``script`` with ``stdin`` as its input and wait for it.

        Raises:
            RemoteError: ssh itself failed (unreachable, refused, host key, authentication).
            Cancelled: ``cancel`` was set.
        """
        remote = self.start(script)
        try:
            if stdin:
                remote.stdin.write(stdin)
            return remote.finish(cancel)
        except BaseException:
            remote.kill()
            raise


def ssh_for(answers: Answers) -> Ssh | None:
    """The ssh connection to deploy.target, or None when it is this host."""
    target = parse_target(answers.deploy.target)
    if target is None:
        return None
    config = resolve_path(answers.deploy.ssh_config) if answers.deploy.ssh_config else None
    return Ssh(target, config)
