"""Who holds which UDP port: read from /proc, as ``ss -ulpn`` does.

The network step asks two things on every run: does our dnsmasq hold udp/67 and udp/69, and does
anybody else. ``psutil.net_connections`` answers both by mapping every socket of every process
(and importing psutil costs more than the rest of a no-change rerun's network step). Here the
socket table of this network namespace (``/proc/net/udp``, ``/proc/net/udp6``) is read first, and
processes' descriptors are walked only for the sockets on the ports asked about — most runs
find none, or read one PID's descriptors.

Without root, other users' descriptors are unreadable: such a socket is reported with PID
``None`` (psutil does the same).
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")


@dataclass(frozen=True)
class UdpSocket:
    """One UDP socket of this network namespace."""

    address: str
    """The local address as ``ip`` prints it: "0.0.0.0", "10.0.0.1", "::", "fe80::1"."""
    port: int
    inode: int


def _ipv4(word: str) -> str:
    """``0100007F`` (the kernel's host-order hex of a network-order address) → 127.0.0.1."""
    return ".".join(str(b) for b in bytes.fromhex(word)[::-1])


def _ipv6(words: str) -> str:
    """Four such 32-bit words → the compressed IPv6 text ("::", "fe80::1")."""
    raw = b"".join(bytes.fromhex(words[i : i + 8])[::-1] for i in range(0, 32, 8))
    return str(ipaddress.IPv6Address(raw))


def parse_table(text: str, *, v6: bool) -> Iterator[UdpSocket]:
    """The sockets listed in a /proc/net/udp(6) table (malformed lines are skipped)."""
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 10:
            continue
        addr, _, port = fields[1].partition(":")
        try:
            address = _ipv6(addr) if v6 else _ipv4(addr)
            yield UdpSocket(address, int(port, 16), int(fields[9]))
        except ValueError:
            continue


def udp_sockets(
    ports: Iterable[int] | None = None, *, ipv6: bool = True, proc: Path = PROC
) -> list[UdpSocket]:
    """UDP sockets of this network namespace (IPv6 too unless ``ipv6`` is false), on ``ports``
    if given."""
    wanted = None if ports is None else set(ports)
    found: list[UdpSocket] = []
    for name, v6 in (("udp", False), ("udp6", True))[: 2 if ipv6 else 1]:
        try:
            text = (proc / "net" / name).read_text()
        except OSError:
            continue  # no IPv6 in this kernel, or no /proc
        found += [s for s in parse_table(text, v6=v6) if wanted is None or s.port in wanted]
    return found


def socket_inodes(pid: int, proc: Path = PROC) -> set[int]:
    """Inodes of the sockets ``pid`` has open (empty if it is gone or not ours to read)."""
    fd_dir = proc / str(pid) / "fd"
    inodes: set[int] = set()
    try:
        names = os.listdir(fd_dir)
    except OSError:
        return inodes
    for fd in names:
        try:
            target = os.readlink(fd_dir / fd)
        except OSError:
            continue
        if target.startswith("socket:[") and target.endswith("]") and target[8:-1].isdigit():
            inodes.add(int(target[8:-1]))
    return inodes


def owners(inodes: Iterable[int], proc: Path = PROC) -> dict[int, list[int]]:
    """Socket inode → the PIDs holding it (a forked server shares one socket among several)."""
    left = set(inodes)
    found: dict[int, list[int]] = {}
    if not left:
        return found
    try:
        pids = sorted(int(n) for n in os.listdir(proc) if n.isdigit())
    except OSError:
        return found
    for pid in pids:
        for inode in socket_inodes(pid, proc) & left:
            found.setdefault(inode, []).append(pid)
    return found


def udp_ports_of(pid: int | None, proc: Path = PROC) -> set[int]:
    """UDP ports (IPv4) that ``pid`` has bound in this network namespace (any PID if None)."""
    v4 = udp_sockets(ipv6=False, proc=proc)
    if pid is None:
        return {s.port for s in v4}
    mine = socket_inodes(pid, proc)
    return {s.port for s in v4 if s.inode in mine}
