"""A netboot LAN for tests: a home router (plain DHCP), our proxy-DHCP + TFTP server, Pis.

Built on ``tests.support.lab``. The router is a dnsmasq that leases addresses (``no-ping``, so its
offer is not 3 s late); the proxy is started from a config written as netboot.md §7.1 recommends, or
by the real network step (the end-to-end tests). ``in_netns`` lets a test thread create sockets
inside a host's namespace, so codec-level tests call ``steps.wire.dhcp`` directly without a
subprocess.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.lab import Host, Lab, stop_process

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL("libc.so.6", use_errno=True)

SERVER_IP = "10.99.0.1"
#: Seconds dnsmasq may take to say it is ready: a hang-stopper (it takes milliseconds when idle).
READY_WITHIN = 120.0
ROUTER_IP = "10.99.0.254"


@dataclass(frozen=True)
class BootLan:
    """The LAN most netboot tests use: our server, the home router, one Pi."""

    lab: Lab
    srv: Host
    """Our server, 10.99.0.1/24: start a proxy (``start_proxy``) or the wizard in it."""
    rt: Host
    """The home router, 10.99.0.254/24, its plain DHCP server running (unless ``router=False``)."""
    pi: Host
    """A Pi with no address yet, as its boot ROM starts."""


def boot_lan(
    lab: Lab,
    tmp: Path,
    *,
    pi_mac: str | None = None,
    pi_cidr: str | None = None,
    router: bool = True,
) -> BootLan:
    """Add the usual hosts to ``lab``; the router's files go in ``tmp/router``."""
    srv = lab.host("srv", f"{SERVER_IP}/24")
    rt = lab.host("rt", f"{ROUTER_IP}/24")
    pi = lab.host("pi", pi_cidr, mac=pi_mac)
    if router:
        (tmp / "router").mkdir(exist_ok=True)
        start_router(rt, tmp / "router")
    return BootLan(lab, srv, rt, pi)


@contextlib.contextmanager
def in_netns(host: Host) -> Iterator[None]:
    """Run the block with this thread inside ``host``'s network namespace.

    Sockets created in the block live in that namespace for good; the thread goes back to its
    own namespace at the end, even after an exception.
    """
    own = os.open(f"/proc/self/task/{threading.get_native_id()}/ns/net", os.O_RDONLY)
    target = os.open(f"/run/netns/{host.ns}", os.O_RDONLY)
    try:
        if _libc.setns(target, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns failed")
        try:
            yield
        finally:
            if _libc.setns(own, CLONE_NEWNET) != 0:  # pragma: no cover
                raise OSError(ctypes.get_errno(), "setns back failed")
    finally:
        os.close(own)
        os.close(target)


def router_conf(
    tmp: Path,
    *,
    first: str = "10.99.0.100",
    last: str = "10.99.0.199",
    netmask: str = "255.255.255.0",
) -> Path:
    """A plain DHCP server's config (the home router of TESTING.md)."""
    conf = tmp / "router.conf"
    conf.write_text(
        "\n".join(
            [
                "port=0",
                "interface=eth0",
                "bind-interfaces",
                f"dhcp-range={first},{last},{netmask},1h",
                "no-ping",
                f"dhcp-leasefile={tmp / 'router.leases'}",
                "log-facility=-",
                "log-dhcp",
                "",
            ]
        )
    )
    return conf


def proxy_conf(
    tmp: Path,
    tftp_root: Path,
    *,
    address: str = SERVER_IP,
    reply_delay: bool = False,
    only_pis: bool = True,
    menu: str = "Raspberry Pi Boot",
    tftp: bool = True,
    name: str = "proxy",
) -> Path:
    """Proxy DHCP + TFTP as netboot.md §7.1 recommends (the network step renders the real one)."""
    lines = [
        "port=0",
        "interface=eth0",
        "bind-interfaces",
        f"dhcp-range={address},proxy",
    ]
    if only_pis:
        lines += [
            "dhcp-mac=set:rpi,b8:27:eb:*:*:*",
            "dhcp-mac=set:rpi,dc:a6:32:*:*:*",
            "dhcp-match=set:rpi,97,0:52:50:69:34",
            "dhcp-match=set:rpi,97,0:52:50:69:35",
            "dhcp-ignore=tag:!rpi",
            f'pxe-service=tag:rpi,0,"{menu}"',
        ]
    else:
        lines.append(f'pxe-service=0,"{menu}"')
    if reply_delay:
        lines.append("dhcp-reply-delay=tag:rpi,1")
    lines.append("log-dhcp")
    if tftp:
        lines += ["enable-tftp", f"tftp-root={tftp_root}"]
    lines += [f"dhcp-leasefile={tmp / (name + '.leases')}", "log-facility=-", ""]
    conf = tmp / f"{name}.conf"
    conf.write_text("\n".join(lines))
    return conf


def start_dnsmasq(host: Host, conf: Path, log: Path, *, ready: str) -> subprocess.Popen[Any]:
    """Start dnsmasq in the foreground (``--no-daemon``) in ``host``; wait for ``ready`` in its log.

    Raises:
        RuntimeError: it exited or did not log ``ready`` within ``READY_WITHIN`` seconds (its log
            is in the message).
    """
    fh = log.open("wb")
    proc = host.popen(
        ["dnsmasq", "--no-daemon", f"--conf-file={conf}", "--user=root"],
        stdout=fh,
        stderr=subprocess.STDOUT,
        env={**os.environ, "LANG": "C", "LC_ALL": "C"},
    )
    fh.close()
    deadline = time.monotonic() + READY_WITHIN
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace")
        if ready in text:
            return proc
        if proc.poll() is not None:
            break
        time.sleep(0.02)
    stop_process(proc)
    raise RuntimeError(f"dnsmasq in {host.name} did not start:\n{log.read_text(errors='replace')}")


def start_router(host: Host, tmp: Path, **kw: Any) -> subprocess.Popen[Any]:
    """The home router's DHCP server on ``host``."""
    return start_dnsmasq(host, router_conf(tmp, **kw), tmp / "router.log", ready="DHCP, IP range")


def start_proxy(host: Host, tmp: Path, tftp_root: Path, **kw: Any) -> subprocess.Popen[Any]:
    """A proxy DHCP (+ TFTP) server on ``host`` (config from netboot.md §7.1)."""
    conf = proxy_conf(tmp, tftp_root, **kw)
    name = kw.get("name", "proxy")
    ready = "TFTP root is" if kw.get("tftp", True) else "DHCP, proxy on subnet"
    return start_dnsmasq(host, conf, tmp / f"{name}.log", ready=ready)
