"""Running dnsmasq with our config: our own background process, or the system's service.

``process`` mode starts ``dnsmasq -C <conf> --pid-file=<state>/dnsmasq.pid`` with ``LANG=C``.
dnsmasq daemonises itself (fork, new session) and its first process exits only once the daemon
is up or has failed, with the reason on stderr — so the daemon keeps serving after the wizard
exits, and a startup failure still reaches us. We then wait (bounded) until its log says
``TFTP root is …``. A pid is treated as ours only when /proc/<pid>/cmdline is dnsmasq started
with our pid file or our config: we never signal a process we did not start.

``systemd`` mode restarts ``dnsmasq.service`` and checks it is still active a moment later,
quoting ``journalctl -u dnsmasq`` on failure.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from steps import proc
from steps.answers import Answers, resolve_path
from steps.errors import Cancelled, CommandError, NetworkError
from steps.events import Event, LogLine
from steps.host.dnsmasq import dnsmasq_program, state_files
from steps.host.udpsockets import udp_ports_of

READY_MARK = "TFTP root is"
SYSTEMD_UNIT = "dnsmasq"


def read_pid(pidfile: Path) -> int | None:
    """The pid in ``pidfile``, or None when missing or garbled."""
    try:
        text = pidfile.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def cmdline(pid: int) -> list[str]:
    """argv of a running process ([] when it is gone or unreadable)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [a.decode("utf-8", "replace") for a in raw.split(b"\0") if a]


def is_ours(pid: int, answers: Answers) -> bool:
    """True when ``pid`` is a dnsmasq started with our pid file or our config file."""
    argv = cmdline(pid)
    if not argv or Path(argv[0]).name != "dnsmasq":
        return False
    conf = str(resolve_path(answers.network.dnsmasq_conf))
    pidfile = str(state_files(answers).pid)
    for i, arg in enumerate(argv):
        if arg in (f"--pid-file={pidfile}", f"--conf-file={conf}", f"-C{conf}"):
            return True
        flag = arg in ("-C", "--conf-file", "-x", "--pid-file")
        if flag and i + 1 < len(argv) and argv[i + 1] in (conf, pidfile):
            return True
    return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie still answers kill(0); it is not serving
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat.rpartition(")")[2].split()[0] == "Z":
            return False
    return True


@dataclass(frozen=True)
class ProcessState:
    """Our dnsmasq as the pid file and /proc describe it."""

    pidfile: Path
    pid: int | None
    alive: bool
    ours: bool


def process_state(answers: Answers) -> ProcessState:
    """Is our background dnsmasq running?"""
    pidfile = state_files(answers).pid
    pid = read_pid(pidfile)
    alive = pid is not None and _alive(pid)
    ours = alive and pid is not None and is_ours(pid, answers)
    return ProcessState(pidfile, pid, alive, ours)


def stop_process(answers: Answers, *, timeout: float = 5.0) -> int | None:
    """Stop our background dnsmasq (SIGTERM, then SIGKILL); returns its pid, None if none ran.

    Raises:
        NetworkError: the pid file names a live process that is not our dnsmasq (left alone).
    """
    state = process_state(answers)
    if state.pid is None or not state.alive:
        return None
    if not state.ours:
        argv = " ".join(cmdline(state.pid)) or "?"
        raise NetworkError(
            f"{state.pidfile} names PID {state.pid} ({argv}), which is not our dnsmasq; "
            "not signalling it",
            fix=f"check that process; remove {state.pidfile} if it is stale",
        )
    pid = state.pid
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    if _alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        while _alive(pid) and time.monotonic() < deadline + 2:
            time.sleep(0.02)
    return pid


def log_tail(path: Path, lines: int = 20) -> list[str]:
    """The last ``lines`` lines of a log file ([] when it does not exist)."""
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 64 * 1024))
            text = fh.read().decode("utf-8", "replace")
    except OSError:
        return []
    return text.splitlines()[-lines:]


def _log_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _read_from(path: Path, offset: int) -> str:
    try:
        with path.open("rb") as fh:
            if fh.seek(0, os.SEEK_END) < offset:
                offset = 0  # the log was replaced
            fh.seek(offset)
            return fh.read().decode("utf-8", "replace")
    except OSError:
        return ""


def start_process(
    step: str,
    answers: Answers,
    *,
    cancel: threading.Event | None = None,
    timeout: float = 10.0,
) -> Generator[Event, None, int]:
    """Start our dnsmasq in the background with the installed config; returns its pid.

    A previous instance of ours is stopped first. Waits until the log shows ``TFTP root is``.

    Raises:
        NetworkError: dnsmasq refused to start (its own message + its log tail) or did not
            become ready in time.
    """
    files = state_files(answers)
    conf = resolve_path(answers.network.dnsmasq_conf)
    old = stop_process(answers)
    if old is not None:
        yield LogLine(step, f"stopped our previous dnsmasq (PID {old})")
    try:
        files.pid.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise NetworkError(
            f"cannot create network.state_dir {files.pid.parent}: {exc.strerror}",
            fix="choose a writable network.state_dir",
        ) from None
    offset = _log_size(files.log)
    program = dnsmasq_program()
    args = ["-C", str(conf), f"--pid-file={files.pid}"]
    yield LogLine(step, " ".join(["LANG=C", program, *args]), "cmd")
    try:
        proc.run(program, *args, cancel=cancel, env={"LANG": "C", "LC_ALL": "C"})
    except CommandError as exc:
        if exc.returncode is None:
            raise
        said = exc.stderr.strip().splitlines()
        tail = log_tail(files.log, 10)
        raise NetworkError(
            f"dnsmasq did not start: {said[-1] if said else f'exit code {exc.returncode}'}",
            fix=_start_fix(said[-1] if said else ""),
            details="\n".join([*said, *tail]),
        ) from None
    deadline = time.monotonic() + timeout
    while True:
        text = _read_from(files.log, offset)
        pid = read_pid(files.pid)
        if READY_MARK in text and pid is not None:
            for line in text.splitlines():
                yield LogLine(step, line, "stdout")
            return pid
        if pid is not None and not _alive(pid):
            raise NetworkError(
                f"dnsmasq (PID {pid}) exited right after starting",
                fix=f"see its log {files.log}",
                details="\n".join(log_tail(files.log)),
            )
        if time.monotonic() > deadline:
            raise NetworkError(
                f"dnsmasq did not log {READY_MARK!r} within {timeout:g} s",
                fix=f"see its log {files.log}",
                details="\n".join(log_tail(files.log)),
            )
        if cancel is not None and cancel.wait(0.05):
            raise Cancelled()
        elif cancel is None:
            time.sleep(0.05)


def _start_fix(message: str) -> str:
    if "Address already in use" in message or "Address in use" in message:
        return (
            "another program holds the DHCP (67) or TFTP (69) port: find it with "
            "`ss -uanp | grep -E ':(67|69) '` and stop it, or let it bind only its own interface"
        )
    if "Permission denied" in message:
        return "run as root (dnsmasq needs to bind ports 67 and 69)"
    if "unknown interface" in message or "No such device" in message:
        return "set network.interface to an existing interface (`ip -br link`)"
    return "see dnsmasq's message above"


# ------------------------------------------------------------------ systemd


def journal_tail(lines: int = 30) -> str:
    """The last journal lines of dnsmasq.service ("" when journalctl is unavailable)."""
    try:
        done = proc.run(
            "journalctl",
            "-u",
            SYSTEMD_UNIT,
            "-n",
            str(lines),
            "--no-pager",
            ok_codes=range(256),
        )
    except CommandError:
        return ""
    return done.text.strip()


def systemd_main_pid() -> int | None:
    """MainPID of dnsmasq.service, None when it is not running or systemctl is missing."""
    try:
        done = proc.run(
            "systemctl", "show", "-p", "MainPID", "--value", SYSTEMD_UNIT, ok_codes=range(256)
        )
    except CommandError:
        return None
    text = done.text.strip()
    return int(text) if text.isdigit() and int(text) > 0 else None


def restart_systemd(
    step: str,
    *,
    cancel: threading.Event | None = None,
    settle: float = 1.5,
) -> Generator[Event, None, int | None]:
    """Restart dnsmasq.service and check it is still active ``settle`` seconds later.

    Raises:
        NetworkError: the restart failed or the unit did not stay active (journal attached).
    """
    yield LogLine(step, f"systemctl restart {SYSTEMD_UNIT}", "cmd")
    try:
        proc.run("systemctl", "restart", SYSTEMD_UNIT, cancel=cancel)
    except CommandError as exc:
        if exc.returncode is None:
            raise
        raise NetworkError(
            f"`systemctl restart {SYSTEMD_UNIT}` failed: {exc.stderr.strip() or exc.returncode}",
            fix="read the journal below; `apt-get install dnsmasq` provides the service, or "
            'use network.dnsmasq_service = "process"',
            details=journal_tail(),
        ) from None
    if cancel is not None:
        if cancel.wait(settle):
            raise Cancelled()
    else:
        time.sleep(settle)
    state = proc.run("systemctl", "is-active", SYSTEMD_UNIT, ok_codes=range(256)).text.strip()
    if state != "active":
        raise NetworkError(
            f"{SYSTEMD_UNIT}.service is {state or 'not active'} {settle:g} s after the restart",
            fix=f"read `journalctl -u {SYSTEMD_UNIT}` (below) and fix the cause",
            details=journal_tail(),
        )
    pid = systemd_main_pid()
    yield LogLine(step, f"{SYSTEMD_UNIT}.service is active (PID {pid})")
    return pid


# ------------------------------------------------------------------ what is listening


def restart(
    step: str, answers: Answers, *, cancel: threading.Event | None = None
) -> Generator[Event, None, int | None]:
    """(Re)start dnsmasq as ``network.dnsmasq_service`` says; the generator returns its PID.

    ``systemd``: restart the system unit; ``process``: (re)start our own background dnsmasq.
    Callers handle ``none`` (nothing to start) themselves.
    """
    if answers.network.dnsmasq_service == "systemd":
        return (yield from restart_systemd(step, cancel=cancel))
    return (yield from start_process(step, answers, cancel=cancel))


# ------------------------------------------------------------------ status


@dataclass(frozen=True)
class ServiceStatus:
    """Everything ``firecore-wizard dnsmasq status`` reports."""

    mode: str
    conf: Path
    conf_exists: bool
    generated: bool
    """The installed file carries our header."""
    pid: int | None
    alive: bool
    ours: bool
    ports: tuple[int, ...]
    interface: str
    recorded: tuple[str, ...]
    """Addresses the installed config was generated for."""
    live: tuple[str, ...]
    """The interface's addresses now."""
    log: tuple[str, ...]

    @property
    def drifted(self) -> bool:
        """The interface's addresses changed since the config was generated."""
        return self.generated and set(self.recorded) != set(self.live)

    @property
    def serving(self) -> bool:
        """dnsmasq runs and listens on udp/67 and udp/69."""
        return self.alive and {67, 69} <= set(self.ports)

    @property
    def ok(self) -> bool:
        """Serving (or mode none with a config) and no address drift."""
        up = self.serving or (self.mode == "none" and self.conf_exists)
        return up and self.conf_exists and not self.drifted

    def to_data(self) -> dict[str, Any]:
        """JSON-able form."""
        return {
            "mode": self.mode,
            "conf": str(self.conf),
            "conf_exists": self.conf_exists,
            "generated": self.generated,
            "pid": self.pid,
            "alive": self.alive,
            "ours": self.ours,
            "ports": list(self.ports),
            "serving": self.serving,
            "interface": self.interface,
            "recorded": list(self.recorded),
            "live": list(self.live),
            "drift": self.drifted,
            "ok": self.ok,
            "log": list(self.log),
        }


def service_status(answers: Answers, *, log_lines: int = 15) -> ServiceStatus:
    """Read the installed config, the running dnsmasq and the live interface addresses."""
    from steps.host.dnsmasq import parse_header, read_installed
    from steps.host.netif import read_snapshot

    mode = answers.network.dnsmasq_service
    conf = resolve_path(answers.network.dnsmasq_conf)
    text = read_installed(answers)
    header = parse_header(text) if text is not None else None
    iface_name = header.interface if header and header.interface else answers.network.interface
    iface = read_snapshot().get(iface_name)
    live = tuple(str(a) for a in iface.addresses) if iface is not None else ()
    if mode == "systemd":
        pid = systemd_main_pid()
        alive = pid is not None and _alive(pid)
        ours = alive
        log = tuple(journal_tail(log_lines).splitlines())
    else:
        state = process_state(answers)
        pid, alive, ours = state.pid, state.alive and state.ours, state.ours
        log = tuple(log_tail(state_files(answers).log, log_lines))
    ports = tuple(sorted(udp_ports_of(pid) & {67, 69})) if alive and pid else ()
    return ServiceStatus(
        mode=mode,
        conf=conf,
        conf_exists=text is not None,
        generated=header is not None,
        pid=pid,
        alive=alive,
        ours=ours,
        ports=ports,
        interface=iface_name,
        recorded=header.addresses if header else (),
        live=live,
        log=log,
    )
