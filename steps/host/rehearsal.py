"""A dress rehearsal of this server: the self-test run from the server host itself.

A virtual Pi cannot test the live dnsmasq from the machine dnsmasq runs on: a NIC never hands
its own outgoing frames back to the local stack, so the DISCOVER leaves and nobody here hears it.
The rehearsal instead builds a private LAN out of network namespaces — a "server" namespace that
runs dnsmasq with the config the network step generates (same generator, same options; only the
interface and state files differ), a "router" namespace with a plain DHCP server, and a "pi"
namespace for the virtual Pi — and serves the REAL deployed TFTP root (``<tftp_root>/current``).
In router mode the "router" namespace plays the LAN's DHCP server with the router-mode options
(the same renderer as the real router's config, as a dnsmasq drop-in) and serves TFTP itself,
and no proxy runs; a release deployed to a remote deploy.target is fetched from there first.
So it proves the deployed tree and the generated config boot a Pi, before any hardware is
plugged in; whether the LAN itself lets Pis reach this host is what ``selftest --interface`` from
another machine checks.

Needs root (namespaces, raw sockets). Everything it creates has a name unique to this process and
is removed afterwards, processes included (stopped by PID).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import itertools
import os
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Generator, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from steps import proc
from steps.answers import Answers, resolve_path
from steps.errors import Cancelled, CommandError, NetworkError, UsageError
from steps.events import Event, LogLine
from steps.host.dnsmasq import dnsmasq_program, render_dnsmasq_conf
from steps.host.netif import Address, Interface
from steps.relay import relay
from steps.wire.virtualpi import BootOptions, BootReport, Stage

_CLONE_NEWNET = 0x40000000
_counter = itertools.count()

#: The private LAN's subnet. It exists only inside our namespaces, so it cannot clash.
SUBNET = "10.213.77"
SERVER_IP = f"{SUBNET}.1"
ROUTER_IP = f"{SUBNET}.254"
READY = "TFTP root is"


def _setns(path: str) -> None:
    """Move the calling thread into the network namespace at ``path``."""
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    fd = os.open(path, os.O_RDONLY)
    try:
        if libc.setns(fd, _CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err), path)
    finally:
        os.close(fd)


@dataclass
class _Daemon:
    name: str
    pidfile: Path
    log: Path


class Rehearsal:
    """The private LAN: create with ``start()``, always ``close()`` (it is a context manager)."""

    def __init__(self, answers: Answers, *, cancel: threading.Event | None = None) -> None:
        self.answers = answers
        self.cancel = cancel or threading.Event()
        self.prefix = f"fwr{os.getpid() % 100000}x{next(_counter)}"
        self.tmp = Path(tempfile.mkdtemp(prefix="firecore-rehearsal-"))
        self.namespaces: list[str] = []
        self.daemons: list[_Daemon] = []

    def ns(self, role: str) -> str:
        """Name of one of our namespaces (srv, rt, pi)."""
        return f"{self.prefix}-{role}"

    def __enter__(self) -> Rehearsal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _ip(self, *args: str) -> None:
        proc.run("ip", *args, cancel=self.cancel)

    def _in(self, role: str, *argv: str) -> proc.Completed:
        return proc.run("ip", "netns", "exec", self.ns(role), *argv, cancel=self.cancel)

    def start(self) -> Iterator[Event]:
        """Create the namespaces, the router's DHCP server and our proxy; yield what happens."""
        if os.geteuid() != 0:
            raise UsageError(
                "the rehearsal needs root (it creates network namespaces and raw sockets)",
                fix="run it with sudo, or run `selftest --interface IFACE` from another machine",
            )
        router = self.answers.network.mode == "router"
        root = yield from self._served_tree()
        if not root.is_dir():
            raise UsageError(
                f"nothing is deployed: {root} does not exist",
                fix="run the deploy step first (firecore-wizard --answers FILE, or Deploy)",
            )
        for role in ("srv", "rt", "pi"):
            self._ip("netns", "add", self.ns(role))
            self.namespaces.append(self.ns(role))
            self._ip("-n", self.ns(role), "link", "set", "lo", "up")
        srv = self.ns("srv")
        self._ip("-n", srv, "link", "add", "br0", "type", "bridge", "stp_state", "0")
        self._ip("-n", srv, "link", "set", "br0", "type", "bridge", "forward_delay", "0")
        for role in ("rt", "pi"):
            port = f"v{role}"
            self._ip("-n", srv, "link", "add", port, "type", "veth", "peer", "name", "eth0",
                     "netns", self.ns(role))  # fmt: skip
            self._ip("-n", srv, "link", "set", port, "master", "br0", "up")
            self._ip("-n", self.ns(role), "link", "set", "eth0", "up")
        self._ip("-n", srv, "addr", "add", f"{SERVER_IP}/24", "dev", "br0")
        self._ip("-n", srv, "link", "set", "br0", "up")
        self._ip("-n", self.ns("rt"), "addr", "add", f"{ROUTER_IP}/24", "dev", "eth0")
        # offloaded checksums would look corrupt to the virtual Pi's raw socket
        for role, dev in (("srv", "br0"), ("rt", "eth0"), ("pi", "eth0")):
            with contextlib.suppress(CommandError):
                self._in(role, "ethtool", "-K", dev, "tx", "off")
        yield LogLine("selftest", f"private LAN {SUBNET}.0/24 in namespaces {self.prefix}-*")
        if router:
            yield from self._start_router(root)
        else:
            yield from self._start_router(None)
            yield from self._start_proxy(root)

    def _served_tree(self) -> Generator[Event, None, Path]:
        """The deployed tree to serve: ``current`` here, or (router mode with a remote
        deploy.target) a copy of the live release fetched from that host over ssh."""
        from steps.host.remotedeploy import RemoteDeploy
        from steps.host.routerconf import router_base
        from steps.host.sshrun import ssh_for

        if self.answers.network.mode != "router":
            return resolve_path(self.answers.network.tftp_root) / "current"
        ssh = ssh_for(self.answers)
        if ssh is None:
            return Path(router_base(self.answers)) / "current"
        copy = self.tmp / "tftp" / "current"
        copy.mkdir(parents=True)
        for folder in (self.tmp, copy.parent, copy):
            folder.chmod(0o755)  # dnsmasq drops to nobody: it must reach the copy
        yield LogLine("selftest", f"fetching the live release from {ssh.target} over ssh")
        RemoteDeploy(ssh).fetch_live(copy, cancel=self.cancel)
        return copy

    def _start_router(self, served: Path | None) -> Iterator[Event]:
        """The private LAN's DHCP server; in router mode it also gives the boot options and
        serves TFTP, from the drop-in router mode generates (same renderer, same options)."""
        d = _Daemon("router", self.tmp / "router.pid", self.tmp / "router.log")
        conf = self.tmp / "router.conf"
        text = (
            "port=0\ninterface=eth0\nbind-interfaces\n"
            f"dhcp-range={SUBNET}.100,{SUBNET}.150,255.255.255.0,1h\n"
            f"no-ping\ndhcp-leasefile={self.tmp / 'router.leases'}\n"
            f"pid-file={d.pidfile}\nlog-facility={d.log}\n"
        )
        ready = "DHCP, IP range"
        if served is not None:
            from steps.host.routerconf import render_router_dnsmasq

            rehearsed = self.answers.model_copy(deep=True)
            rehearsed.network.router_kind = "dnsmasq"
            rehearsed.network.router_address = ROUTER_IP
            rehearsed.deploy.target = ""
            rehearsed.network.tftp_root = str(served.parent)
            dropin = self.tmp / "router-mode.conf"
            dropin.write_text(render_router_dnsmasq(rehearsed))
            text += f"conf-file={dropin}\n"
            ready = READY
            yield LogLine("selftest", f"the router's boot options (router mode) serving {served}")
        conf.write_text(text)
        yield from self._daemon(d, "rt", conf, ready)

    def _start_proxy(self, root: Path) -> Iterator[Event]:
        rehearsed = self.answers.model_copy(deep=True)
        rehearsed.network.interface = "br0"
        rehearsed.network.dnsmasq_service = "process"  # our own pid, lease and log files
        rehearsed.network.state_dir = str(self.tmp / "state")
        (self.tmp / "state").mkdir()
        iface = Interface(
            "br0", "bridge", addresses=(Address(SERVER_IP, 24),), up=True, carrier=True
        )
        text = render_dnsmasq_conf(rehearsed, iface)
        conf = self.tmp / "firecore.conf"
        conf.write_text(text)
        yield LogLine("selftest", f"our proxy config (as generated, on br0) serving {root}")
        d = _Daemon("proxy", self.tmp / "state" / "dnsmasq.pid", self.tmp / "state/dnsmasq.log")
        yield from self._daemon(d, "srv", conf, READY)

    def _daemon(self, d: _Daemon, role: str, conf: Path, ready: str) -> Iterator[Event]:
        program = dnsmasq_program()
        try:
            self._in(role, program, "-C", str(conf), f"--pid-file={d.pidfile}")
        except CommandError as exc:
            raise NetworkError(
                f"the rehearsal's {d.name} dnsmasq did not start: {exc.stderr.strip()}",
                details=exc.stderr,
            ) from None
        self.daemons.append(d)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            log = d.log.read_text(errors="replace") if d.log.exists() else ""
            if ready in log:
                yield LogLine("selftest", f"{d.name} dnsmasq ready")
                return
            if self.cancel.wait(0.05):
                raise Cancelled()
        raise NetworkError(
            f"the rehearsal's {d.name} dnsmasq did not become ready",
            details=d.log.read_text(errors="replace") if d.log.exists() else "",
        )

    def boot(
        self,
        *,
        model: str,
        serial: str,
        manifest: Mapping[str, Any] | None,
        report: BootReport,
        options: BootOptions | None = None,
        prefix: str = "serial",
        stepping: str = "c1",
    ) -> Iterator[Stage]:
        """Run the virtual Pi inside the pi namespace; yield its stages as they finish."""
        from steps.wire.virtualpi import run_selftest

        path = f"/run/netns/{self.ns('pi')}"

        def boot_in_pi_namespace(emit: Callable[[Stage], None]) -> None:
            _setns(path)  # only this helper thread moves; its sockets live in the pi namespace
            for stage in run_selftest(
                "eth0",
                model=model,
                serial=serial,
                manifest=manifest,
                options=options,
                cancel=self.cancel,
                report=report,
                prefix=prefix,
                stepping=stepping,
            ):
                emit(stage)

        yield from relay(boot_in_pi_namespace, "virtual-pi")

    def close(self) -> None:
        """Stop our daemons (by PID), then remove our namespaces and files."""
        for d in self.daemons:
            with contextlib.suppress(OSError, ValueError):
                os.kill(int(d.pidfile.read_text().strip()), signal.SIGTERM)
        for ns in reversed(self.namespaces):
            try:
                pids = proc.run("ip", "netns", "pids", ns).text.split()
            except CommandError:
                pids = []
            for left in pids:  # only processes inside our own namespaces
                with contextlib.suppress(OSError, ValueError):
                    os.kill(int(left), signal.SIGKILL)
            with contextlib.suppress(CommandError):
                proc.run("ip", "netns", "del", ns)
        self.namespaces.clear()
        self.daemons.clear()
        shutil.rmtree(self.tmp, ignore_errors=True)
