"""Copies of an Ethernet capture on other link layers, for the decoder's tests.

Each function turns one Ethernet record (``steps.wire.pcap.Record``) into the record another
capture setup would have written for the same frame: an 802.1Q trunk port (``vlan``), Linux
cooked captures from ``tcpdump -i any`` (``sll`` for libpcap < 1.10, ``sll2`` after), a tunnel
(``raw_ip``). Headers follow the tcpdump.org link-type pages (LINKTYPE_LINUX_SLL, _SLL2,
LINKTYPE_RAW); the packet type comes from the destination MAC as the kernel sets it (broadcast,
multicast, or "to us").
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable

from steps.wire.pcap import (
    LINKTYPE_ETHERNET,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_LINUX_SLL2,
    LINKTYPE_RAW,
    Record,
)


def _pkttype(frame: bytes) -> int:
    if frame[0:6] == b"\xff" * 6:
        return 1  # PACKET_BROADCAST
    if frame[0] & 1:
        return 2  # PACKET_MULTICAST
    return 0  # PACKET_HOST


def vlan(record: Record, vid: int = 10, *, tags: int = 1) -> Record:
    """The frame with ``tags`` 802.1Q tags after the MACs (802.1ad outer tag when 2)."""
    ts, lt, frame, orig = record
    assert lt == LINKTYPE_ETHERNET
    inner = frame[12:]
    for n in range(tags):
        tpid = 0x88A8 if n == tags - 1 and tags > 1 else 0x8100
        inner = struct.pack("!HH", tpid, vid + n) + inner
    return ts, lt, frame[:12] + inner, orig + 4 * tags


def sll(record: Record) -> Record:
    """Linux cooked v1: packet type, ARPHRD_ETHER, the source MAC, the protocol."""
    ts, lt, frame, _orig = record
    assert lt == LINKTYPE_ETHERNET
    header = struct.pack("!HHH8sH", _pkttype(frame), 1, 6, frame[6:12] + b"\0\0", _proto(frame))
    body = _payload(frame)
    return ts, LINKTYPE_LINUX_SLL, header + body, len(header) + len(body)


def sll2(record: Record, ifindex: int = 2) -> Record:
    """Linux cooked v2: protocol, interface index, ARPHRD_ETHER, packet type, source MAC."""
    ts, lt, frame, _orig = record
    assert lt == LINKTYPE_ETHERNET
    header = struct.pack(
        "!HHIHBB8s", _proto(frame), 0, ifindex, 1, _pkttype(frame), 6, frame[6:12] + b"\0\0"
    )
    body = _payload(frame)
    return ts, LINKTYPE_LINUX_SLL2, header + body, len(header) + len(body)


def raw_ip(record: Record) -> Record | None:
    """Only the IP packet (no link layer at all); None for ARP."""
    ts, _lt, frame, _orig = record
    if _proto(frame) != 0x0800:
        return None
    body = _payload(frame)
    return ts, LINKTYPE_RAW, body, len(body)


def _proto(frame: bytes) -> int:
    (ethertype,) = struct.unpack("!H", frame[12:14])
    return int(ethertype)


def _payload(frame: bytes) -> bytes:
    return frame[14:]


def convert(records: Iterable[Record], how: Callable[[Record], Record | None]) -> list[Record]:
    """Every record converted (records ``how`` drops are left out)."""
    out = []
    for record in records:
        got = how(record)
        if got is not None:
            out.append(got)
    return out
