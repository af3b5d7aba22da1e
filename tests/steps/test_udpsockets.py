"""UDP port holders from /proc: the table parser, and the real reader against psutil's answer."""

from __future__ import annotations

import json
import sys

import pytest

from steps.host.udpsockets import UdpSocket, parse_table
from tests.conftest import ROOT
from tests.support.lab import Lab

HEADER = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  inode"


def row(sl: int, local: str, remote: str, st: str, inode: int) -> str:
    """One line of /proc/net/udp(6), as the kernel prints it (the fields after inode trimmed)."""
    return f"{sl:5}: {local} {remote} {st} 00000000:00000000 00:00000000 00000000  0  0 {inode} 2"


UDP = "\n".join(
    [
        HEADER,
        row(101, "00000000:0045", "00000000:0000", "07", 41234),
        row(102, "0100007F:0043", "00000000:0000", "07", 41235),
        row(103, "0163000A:A1B2", "0200000A:0045", "01", 99),
        "  104: garbage",
        row(105, "ZZZZZZZZ:0045", "00000000:0000", "07", 7),
    ]
)
ANY6 = "0" * 32
UDP6 = "\n".join(
    [
        HEADER,
        row(7, f"{ANY6}:0045", f"{ANY6}:0000", "07", 51),
        row(8, "000080FE00000000FF4E5B02AA1B2C3D:0043", f"{ANY6}:0000", "07", 52),
    ]
)


def test_the_kernels_tables_are_read_address_port_and_inode() -> None:
    assert list(parse_table(UDP, v6=False)) == [
        UdpSocket("0.0.0.0", 69, 41234),
        UdpSocket("127.0.0.1", 67, 41235),
        UdpSocket("10.0.99.1", 0xA1B2, 99),
    ]
    assert list(parse_table(UDP6, v6=True)) == [
        UdpSocket("::", 69, 51),
        UdpSocket("fe80::25b:4eff:3d2c:1baa", 67, 52),
    ]


# Binds what a conflicting TFTP server and a DHCP server would, then waits to be stopped. The
# forked child shares the udp/69 sockets: both PIDs hold them.
HOLDER = """
import os, socket, sys, time
socks = []
for fam, addr in ((socket.AF_INET, ("0.0.0.0", 69)), (socket.AF_INET, ("127.0.0.1", 67)),
                  (socket.AF_INET6, ("::", 69)), (socket.AF_INET, ("0.0.0.0", 5353))):
    s = socket.socket(fam, socket.SOCK_DGRAM)
    if fam == socket.AF_INET6:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    s.bind(addr)
    socks.append(s)
if os.fork() == 0:
    time.sleep(120)
    os._exit(0)
print("ready", flush=True)
time.sleep(120)
"""

QUERY = """
import json, sys, psutil
from steps.host.preflight import port_users
from steps.host.udpsockets import udp_ports_of
pid = int(sys.argv[1])
ours = [[u.port, u.address, u.pid, u.name] for u in port_users()]
theirs = sorted(
    [c.laddr.port, c.laddr.ip, c.pid, psutil.Process(c.pid).name() if c.pid else "?"]
    for c in psutil.net_connections(kind="udp") if c.laddr.port in (67, 69)
)
family = {pid, *(p.pid for p in psutil.Process(pid).children())}
v4 = sorted({c.laddr.port for c in psutil.net_connections(kind="udp4") if c.pid in family})
print(json.dumps({"ours": ours, "theirs": theirs, "of": sorted(udp_ports_of(pid)),
                  "psutil_of": v4, "all": sorted(udp_ports_of(None))}))
"""


@pytest.mark.netns
def test_port_holders_match_psutil_in_a_namespace(lab: Lab) -> None:
    import subprocess

    srv = lab.host("srv", "10.99.0.1/24")
    holder = srv.popen([sys.executable, "-c", HOLDER], stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
    # The PID inside the namespace is the python started by `ip netns exec` (it execs).
    pid = holder.pid
    out = srv.run([sys.executable, "-c", QUERY, str(pid)], cwd=ROOT).stdout
    data = json.loads(out)
    # psutil names one holder of a shared socket; this reader names each.
    assert {(p, a) for p, a, _, _ in data["ours"]} == {(p, a) for p, a, _, _ in data["theirs"]}
    assert all(entry in data["ours"] for entry in data["theirs"])
    held = {(port, addr) for port, addr, _, _ in data["ours"]}
    assert held == {(69, "0.0.0.0"), (67, "127.0.0.1"), (69, "::")}
    pids = {p for port, addr, p, _ in data["ours"] if (port, addr) == (69, "0.0.0.0")}
    assert len(pids) == 2 and pid in pids  # the parent and its forked child
    # psutil gives a shared socket to one of its holders (here the child): both hold them all.
    assert data["of"] == data["psutil_of"] == [67, 69, 5353]
    assert {67, 69, 5353} <= set(data["all"])
