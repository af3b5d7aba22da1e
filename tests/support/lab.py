"""A small virtual LAN for tests: one network namespace per host on a shared bridge.

Names are unique to this process (other work shares the machine), every process a test starts
through a host is stopped by PID, and the namespaces are deleted on exit, even after a failure.

    with Lab() as lab:
        srv = lab.host("srv", "10.99.0.1/24")
        pi = lab.host("pi", None, mac="b8:27:eb:12:34:56")
        proc = srv.popen(["dnsmasq", "--no-daemon", ...])
        out = pi.run(["ip", "addr"]).stdout

Inside every host the interface is called ``eth0`` (like a real Pi or server), hosts reach each
other through the bridge in the "switch" namespace. Tests take the ``lab`` fixture
(``tests.support.fixtures``); ``tests.support.netboot_lab.boot_lan`` adds the usual netboot
hosts to it.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

_counter = itertools.count()


def needs_root() -> None:
    """Fail (not skip) in CI when a root-only test cannot run; skip only on a developer box."""
    if os.geteuid() != 0:
        if os.environ.get("CI"):
            pytest.fail("this test needs root; CI runs as root")
        pytest.skip("needs root (network namespaces)")


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


@dataclass
class Host:
    """One namespace with an ``eth0`` on the lab bridge."""

    lab: Lab
    name: str
    ns: str
    iface: str = "eth0"
    port: str = ""
    """Its port on the lab switch (a veth in ``lab.switch``): capture there like a mirror port."""
    procs: list[subprocess.Popen[Any]] = field(default_factory=list)

    def cmd(self, argv: Sequence[str]) -> list[str]:
        """argv prefixed to run inside this host's namespace."""
        return ["ip", "netns", "exec", self.ns, *argv]

    def run(
        self, argv: Sequence[str], check: bool = True, **kw: Any
    ) -> subprocess.CompletedProcess[str]:
        """Run to completion inside the namespace (text mode, output captured)."""
        kw.setdefault("capture_output", True)
        kw.setdefault("timeout", 120)
        return subprocess.run(self.cmd(argv), check=check, text=True, **kw)

    def popen(self, argv: Sequence[str], **kw: Any) -> subprocess.Popen[Any]:
        """Start a background process inside the namespace; stopped by PID when the lab closes."""
        proc = subprocess.Popen(self.cmd(argv), start_new_session=True, **kw)
        self.procs.append(proc)
        return proc

    def add_address(self, cidr: str) -> None:
        _ip("-n", self.ns, "addr", "add", cidr, "dev", self.iface)

    @property
    def mac(self) -> str:
        out = subprocess.run(
            ["ip", "-n", self.ns, "-br", "link", "show", self.iface],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.split()
        return out[2]


class Lab:
    """A bridge namespace plus hosts; a context manager that always cleans up."""

    def __init__(self) -> None:
        self.prefix = f"fwt{os.getpid() % 100000}x{next(_counter)}"
        self.switch = f"{self.prefix}-sw"
        self.hosts: dict[str, Host] = {}
        self._namespaces: list[str] = []

    def __enter__(self) -> Lab:
        self._add_ns(self.switch)
        _ip(
            "-n",
            self.switch,
            "link",
            "add",
            "br0",
            "type",
            "bridge",
            "stp_state",
            "0",
            "forward_delay",
            "0",
        )
        _ip("-n", self.switch, "link", "set", "br0", "up")
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _add_ns(self, ns: str) -> None:
        _ip("netns", "add", ns)
        self._namespaces.append(ns)
        _ip("-n", ns, "link", "set", "lo", "up")

    def host(self, name: str, cidr: str | None = None, *, mac: str | None = None) -> Host:
        """Add a host namespace with ``eth0`` on the bridge (and an address if given)."""
        ns = f"{self.prefix}-{name}"
        self._add_ns(ns)
        port = f"p{len(self.hosts)}{self.prefix[-6:]}"[:15]
        _ip(
            "-n",
            self.switch,
            "link",
            "add",
            port,
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            ns,
        )
        _ip("-n", self.switch, "link", "set", port, "master", "br0", "up")
        if mac:
            _ip("-n", ns, "link", "set", "eth0", "address", mac)
        _ip("-n", ns, "link", "set", "eth0", "up")
        # offloaded checksums would make captured UDP look corrupt and confuse raw-socket peers
        subprocess.run(
            ["ip", "netns", "exec", ns, "ethtool", "-K", "eth0", "tx", "off"], capture_output=True
        )
        host = Host(self, name, ns, port=port)
        if cidr:
            host.add_address(cidr)
        self.hosts[name] = host
        return host

    def close(self) -> None:
        """Stop every process we started (by PID), then delete our namespaces."""
        for host in self.hosts.values():
            for proc in host.procs:
                stop_process(proc)
        for ns in reversed(self._namespaces):
            pids = subprocess.run(
                ["ip", "netns", "pids", ns], capture_output=True, text=True
            ).stdout.split()
            for pid in pids:  # only processes inside our own namespaces
                with contextlib.suppress(ProcessLookupError, ValueError):
                    os.kill(int(pid), signal.SIGKILL)
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        self._namespaces.clear()


def stop_process(proc: subprocess.Popen[Any], timeout: float = 5.0) -> None:
    """Terminate a process we started (its whole session), then kill it if it lingers."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)
