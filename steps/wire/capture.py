"""Live capture on an interface: an AF_PACKET socket with a kernel filter, no libpcap.

``LiveCapture(iface)`` yields the same records as ``steps.wire.pcap.CaptureReader``
(``(ts_ns, linktype, bytes, orig_len)``) for every ARP and UDP frame on the interface, in both
directions, with the kernel's receive timestamp (SO_TIMESTAMPNS), and ``None`` every ``poll``
seconds without traffic so the monitor's timers run. A classic BPF program attached to the socket
keeps everything else (TCP, IPv6 …) in the kernel. All UDP passes, because the server answers a
TFTP read request from a new ephemeral port (netboot.md §6, §9): the decoder follows each
transfer from its request, a port filter could not.

As libpcap does, the socket asks for PACKET_AUXDATA and puts back the 802.1Q tag that the kernel
(or the NIC) took off a frame, so a VLAN boot looks the same here, in tcpdump and in ``--write``'s
file. ``any`` captures every interface at once as Linux cooked frames (SLL2, like ``tcpdump -i
any``). Without root or CAP_NET_RAW the constructor raises one ``UsageError`` line.
"""

from __future__ import annotations

import contextlib
import errno
import select
import socket
import struct
import time
from collections.abc import Iterator

from steps.errors import UsageError
from steps.wire.pcap import LINKTYPE_ETHERNET, LINKTYPE_LINUX_SLL2, LINKTYPE_RAW, Record
from steps.wire.rawlink import (
    PACKET_ADD_MEMBERSHIP,
    PACKET_MR_PROMISC,
    SOL_PACKET,
    BpfProgram,
    attach_filter,
    packet_socket,
)

SNAPLEN = 262144
PACKET_AUXDATA = 8
PACKET_STATISTICS = 6
TP_STATUS_VLAN_VALID = 1 << 4
TP_STATUS_VLAN_TPID_VALID = 1 << 6
SO_TIMESTAMPNS = 35
SO_RCVBUFFORCE = 33
_SKF_AD_PROTOCOL = 0xFFFFF000  # SKF_AD_OFF + SKF_AD_PROTOCOL: skb->protocol
_SKF_NET_OFF = 0xFFF00000  # loads relative to the network header
_ETHER_HATYPES = (1, 772)  # ARPHRD_ETHER, ARPHRD_LOOPBACK (Ethernet-framed)


def capture_filter(snaplen: int = SNAPLEN) -> BpfProgram:
    """BPF: accept ARP, 802.1Q frames and IPv4/UDP; drop the rest.

    The protocol comes from skb metadata and the IP protocol byte from the network header, so
    the same program works on SOCK_RAW and SOCK_DGRAM sockets and on frames whose VLAN tag the
    kernel has already removed.
    """
    ld_w_abs, ld_b_abs, jeq_k, ret_k = 0x20, 0x30, 0x15, 0x06
    return [
        (ld_w_abs, 0, 0, _SKF_AD_PROTOCOL),  # 0: A = protocol
        (jeq_k, 4, 0, 0x0806),  # 1: ARP → accept
        (jeq_k, 3, 0, 0x8100),  # 2: still tagged → accept (the decoder looks inside)
        (jeq_k, 0, 3, 0x0800),  # 3: IPv4 → 4, else drop
        (ld_b_abs, 0, 0, _SKF_NET_OFF + 9),  # 4: A = IP protocol
        (jeq_k, 0, 1, 17),  # 5: UDP → accept, else drop
        (ret_k, 0, 0, snaplen),  # 6: accept
        (ret_k, 0, 0, 0),  # 7: drop
    ]


class LiveCapture:
    """Capture ARP and UDP on ``iface`` (or ``any``) until closed.

    Args:
        iface: an interface name, or ``any`` for all of them (Linux cooked SLL2 records).
        poll: yield ``None`` after this many seconds without a frame.
        promisc: put the interface in promiscuous mode (frames between other hosts too, e.g.
            on a mirror port); it ends when the socket closes.

    Raises:
        UsageError: not root / no CAP_NET_RAW, or no such interface.
    """

    def __init__(self, iface: str, *, poll: float = 0.25, promisc: bool = True) -> None:
        self.iface = iface
        self.poll = poll
        self.cooked = iface == "any"
        kind = socket.SOCK_DGRAM if self.cooked else socket.SOCK_RAW
        sock = packet_socket(kind, what=f"capturing on {iface}")
        self.sock = sock
        self.received = 0
        self.dropped = 0
        self._ifindex: dict[str, int] = {}
        try:
            attach_filter(sock, capture_filter())
            sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            sock.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 8 << 20)
            if self.cooked:
                self.linktype = LINKTYPE_LINUX_SLL2  # unbound: every interface
            else:
                sock.bind((iface, 0))
                hatype = _hatype(sock)
                self.linktype = LINKTYPE_ETHERNET if hatype in _ETHER_HATYPES else LINKTYPE_RAW
                if promisc:
                    index = socket.if_nametoindex(iface)
                    mreq = struct.pack("iHH8s", index, PACKET_MR_PROMISC, 0, b"")
                    sock.setsockopt(SOL_PACKET, PACKET_ADD_MEMBERSHIP, mreq)
        except OSError as exc:
            sock.close()
            if exc.errno in (errno.ENODEV, errno.ENXIO, errno.EINVAL) or isinstance(
                exc, socket.gaierror
            ):
                raise UsageError(
                    f"interface {iface!r} does not exist",
                    fix="pick one from `ip -br link` (the interface on the Pis' LAN), or `any`",
                ) from None
            raise
        sock.setblocking(False)

    def __iter__(self) -> Iterator[Record | None]:
        sock = self.sock
        anc = socket.CMSG_SPACE(16) + socket.CMSG_SPACE(20)
        while True:
            try:
                data, ancdata, _flags, addr = sock.recvmsg(SNAPLEN, anc)
            except BlockingIOError:
                ready, _, _ = select.select([sock], [], [], self.poll)
                if not ready:
                    yield None
                continue
            except OSError as exc:
                if exc.errno == errno.ENETDOWN:
                    raise UsageError(f"interface {self.iface} went down") from None
                if exc.errno == errno.EBADF:
                    return
                raise
            ts = 0
            vlan: tuple[int, int] | None = None
            orig = len(data)
            for level, kind, value in ancdata:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(value) >= 16:
                    sec, nsec = struct.unpack_from("qq", value)
                    ts = sec * 1_000_000_000 + nsec
                elif level == SOL_PACKET and kind == PACKET_AUXDATA and len(value) >= 18:
                    status, length, _snap, _mac, _net, tci, tpid = struct.unpack_from(
                        "IIIHHHH", value
                    )
                    orig = length
                    if status & TP_STATUS_VLAN_VALID:
                        tpid = tpid if status & TP_STATUS_VLAN_TPID_VALID else 0x8100
                        vlan = (tpid, tci)
            if not ts:
                ts = time.time_ns()
            self.received += 1
            if self.cooked:
                data = self._sll2(addr, data, vlan)
            elif vlan is not None and self.linktype == LINKTYPE_ETHERNET and len(data) >= 12:
                data = data[:12] + struct.pack("!HH", *vlan) + data[12:]
                orig += 4
            yield (ts, self.linktype, data, max(orig, len(data)))

    def _sll2(
        self, addr: tuple[str, int, int, int, bytes], data: bytes, vlan: tuple[int, int] | None
    ) -> bytes:
        """A Linux cooked v2 header (what ``tcpdump -i any`` writes) from the sockaddr_ll."""
        ifname, proto, pkttype, hatype, haddr = addr[:5]
        index = self._ifindex.get(ifname)
        if index is None:
            try:
                index = socket.if_nametoindex(ifname)
            except OSError:
                index = 0
            self._ifindex[ifname] = index
        if vlan is not None:
            data = struct.pack("!HH", vlan[1], proto) + data
            proto = vlan[0]
        header = struct.pack(
            "!HHIHBB8s", proto, 0, index, hatype, pkttype, len(haddr), haddr[:8].ljust(8, b"\0")
        )
        return header + data

    def stats(self) -> tuple[int, int]:
        """(frames received, frames the kernel dropped) so far."""
        with contextlib.suppress(OSError):
            raw = self.sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8)
            _packets, drops = struct.unpack("II", raw)
            self.dropped += drops  # the kernel resets the counters when read
        return self.received, self.dropped

    def close(self) -> None:
        """Stop capturing (promiscuous mode ends with the socket)."""
        with contextlib.suppress(OSError):
            self.sock.close()

    def __enter__(self) -> LiveCapture:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _hatype(sock: socket.socket) -> int:
    """The ARPHRD type of the interface a packet socket is bound to."""
    name = sock.getsockname()
    return int(name[3]) if len(name) > 3 else 1
