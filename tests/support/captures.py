"""Golden captures, made by the tests themselves: real dnsmasq, the virtual Pi, real tcpdump.

``NetbootLan`` builds the LAN of ``tests.support.netboot_lab`` (a home router with plain DHCP,
our proxy-DHCP + TFTP server, a Pi namespace) and ``tcpdump`` records what
crosses the Pi's switch port — what a mirror port would show, so a capture has every packet
once. ``boot`` runs a virtual Pi (``steps.wire.virtualpi``) in the Pi namespace; a scenario
breaks one thing (no proxy, a missing file, a firewall rule …) and the test asserts the codes
the monitor names for the capture.

Each capture ends ``QUIET`` seconds after the Pi's last packet, as a capture a person stops by
hand does: the monitor then sees that the Pi went quiet.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from steps.wire.virtualpi import BootOptions, BootReport, Stage, VirtualPi
from tests.conftest import ROOT
from tests.support.boot_tree import make_build
from tests.support.lab import Host, Lab, stop_process
from tests.support.netboot_lab import boot_lan, in_netns, start_proxy
from tests.support.pifiles import pi_files

QUIET = 1.6
"""Seconds a capture goes on after the Pi's last packet."""


def boot_options(**kw: Any) -> BootOptions:
    """Timeouts close to a real Pi's, short enough for tests (two DISCOVERs, two RRQs …)."""
    opts: dict[str, Any] = dict(
        dhcp_attempts=2,
        dhcp_window=2.2,
        settle=0.3,
        tftp_timeout=0.7,
        tftp_retries=2,
        arp_wait=0.5,
    )
    opts.update(kw)
    return BootOptions(**opts)


@contextlib.contextmanager
def tcpdump(
    ns: str, iface: str, out: Path, *, extra: Sequence[str] = ()
) -> Iterator[subprocess.Popen[Any]]:
    """tcpdump in namespace ``ns`` on ``iface`` writing ``out``; running once it listens.

    Stopped with SIGTERM once its file stops growing (with --immediate-mode it keeps every
    packet it printed).
    """
    err = out.with_suffix(out.suffix + ".log")
    with err.open("wb") as log:
        proc = subprocess.Popen(
            [
                "ip",
                "netns",
                "exec",
                ns,
                "tcpdump",
                "-U",
                "--immediate-mode",
                "-n",
                "-s",
                "0",
                "-B",
                "16384",
                "-i",
                iface,
                *extra,
                "-w",
                str(out),
            ],
            stdout=subprocess.DEVNULL,
            stderr=log,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 240
        while b"listening on" not in err.read_bytes():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"tcpdump did not start: {err.read_text(errors='replace')}")
            time.sleep(0.02)
        yield proc
        _caught_up(out)
    finally:
        stop_process(proc)


def _caught_up(out: Path) -> None:
    """Until tcpdump's file stops growing (a few polls apart, a minute at most).

    Frames a starved tcpdump has not read from the kernel yet when it is stopped are lost, and
    not counted as dropped either: let it write what is queued first.
    """
    last, still, deadline = -1, 0, time.monotonic() + 60
    while still < 3 and time.monotonic() < deadline:
        size = out.stat().st_size if out.exists() else 0
        still = still + 1 if size == last else 0
        last = size
        time.sleep(0.2)


@dataclass
class NetbootLan:
    """A router, our server and a Pi on one switch (see the module docstring)."""

    tmp: Path
    router: bool = True
    proxy: bool = True
    proxy_kw: dict[str, Any] = field(default_factory=dict)
    pi_mac: str | None = None
    """The Pi namespace's interface MAC (the virtual Pi's own, when Linux runs there next)."""
    lab: Lab = field(init=False)
    srv: Host = field(init=False)
    pi: Host = field(init=False)
    rt: Host = field(init=False)
    tree: Path = field(init=False)

    def __enter__(self) -> NetbootLan:
        self.tree = self.tmp / "tftp"
        if not self.tree.exists():
            make_build(self.tree)
        self.lab = Lab().__enter__()
        try:
            self._build()
        except BaseException:
            self.lab.close()
            raise
        return self

    def _build(self) -> None:
        lan = boot_lan(self.lab, self.tmp, pi_mac=self.pi_mac, router=self.router)
        self.srv, self.rt, self.pi = lan.srv, lan.rt, lan.pi
        if self.proxy:
            start_proxy(self.srv, self.tmp, self.tree, **self.proxy_kw)

    def __exit__(self, *exc: object) -> None:
        self.lab.close()

    def boot(
        self,
        model: str = "pi3",
        *,
        serial: str = "5e1f7e57",
        options: BootOptions | None = None,
        stop_after: str | None = None,
    ) -> BootReport:
        """Boot a virtual Pi in the Pi namespace; ``stop_after`` a stage name ends it there
        (the Pi "resets": its next boot starts from DISCOVER)."""
        vp = VirtualPi(
            "eth0",
            model=model,  # type: ignore[arg-type]
            serial=serial,
            options=options or boot_options(),
        )
        report = vp.new_report()
        with in_netns(self.pi):
            stages: Iterator[Stage] = vp.boot(report)
            for stage in stages:
                if stop_after is not None and stage.stage == stop_after:
                    break
        return report

    @contextlib.contextmanager
    def capture(
        self, name: str, *, quiet: float = QUIET, at: str = "pi", extra: Sequence[str] = ()
    ) -> Iterator[Path]:
        """tcpdump on the switch port of ``at`` ("pi" or "srv") for the block (+ ``quiet`` s);
        yields the file."""
        out = self.tmp / f"{name}.pcap"
        port = (self.pi if at == "pi" else self.srv).port
        with tcpdump(self.lab.switch, port, out, extra=extra):
            yield out
            time.sleep(quiet)

    def linux_up(self, ip: str, *, service: bool = False, port: int = 8000) -> None:
        """What the booted Pi does next: Linux's DHCP (busybox udhcpc, its own vendor class),
        the address, then the app's real mDNS announcer (``assets/app``) with the Pi's serial —
        and, with ``service``, the app's HTTP service (``/health``) too."""
        pi = self.pi
        pi.run(["busybox", "udhcpc", "-i", "eth0", "-n", "-q", "-t", "3", "-s", "/bin/true"])
        pi.run(["ip", "addr", "add", f"{ip}/24", "dev", "eth0"])
        env = {
            **os.environ,
            **pi_files(self.tmp / "pi"),
            "PYTHONPATH": str(ROOT / "assets" / "app"),
            "FIRECORE_MDNS_NAME": "firecore-5e1f7e57",
            "FIRECORE_PORT": str(port),
        }
        cpuinfo = Path(env["FIRECORE_PROC"]) / "cpuinfo"
        cpuinfo.write_text(cpuinfo.read_text().replace("abcdef12", "5e1f7e57"))
        if service:
            Path(env["FIRECORE_LOG_DIR"]).mkdir(parents=True, exist_ok=True)

            def listening() -> bool:
                with in_netns(pi), socket.socket() as sock:
                    return sock.connect_ex((ip, port)) == 0

            self._started(pi, [sys.executable, "-m", "firecore_app"], env, "service", listening)
        log = self.tmp / "announce.log"
        self._started(
            pi,
            [sys.executable, "-m", "firecore_app.announce"],
            env,
            "announce",
            lambda: b"announced" in log.read_bytes(),
        )

    def _started(
        self,
        host: Host,
        argv: list[str],
        env: dict[str, str],
        name: str,
        ready: Callable[[], bool],
    ) -> None:
        log = self.tmp / f"{name}.log"
        with log.open("wb") as out:
            proc = host.popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 240
        while not ready():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not start: {log.read_text(errors='replace')}")
            time.sleep(0.05)

    def add_proxy(self, address: str) -> Host:
        """A second proxy-DHCP + TFTP server (another dnsmasq, as a forgotten piserver is)."""
        other = self.lab.host("srv2", f"{address}/24")
        start_proxy(other, self.tmp, self.tree, address=address, name="proxy2")
        return other

    def firewall(self, where: Host | str, rules: str) -> None:
        """Load an nftables ruleset into a host's namespace, or the switch's (gone with it)."""
        ns = where.ns if isinstance(where, Host) else where
        subprocess.run(
            ["ip", "netns", "exec", ns, "nft", "-f", "-"],
            input=rules,
            text=True,
            check=True,
        )


def monitor_json(pcap: Path, *args: str, stdin: bytes | None = None) -> tuple[int, list[dict]]:
    """Run ``firecore-wizard monitor --json`` on a capture; (exit code, JSON objects)."""
    import json
    import sys

    wizard = str(Path(sys.executable).with_name("firecore-wizard"))
    argv = [wizard, "monitor", "--json", "--pcap", "-" if stdin is not None else str(pcap), *args]
    proc = subprocess.run(
        argv, input=stdin, capture_output=True, timeout=300, env={**os.environ, "LANG": "C"}
    )
    lines = [json.loads(line) for line in proc.stdout.decode().splitlines() if line.strip()]
    return proc.returncode, lines
