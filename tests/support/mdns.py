"""mDNS packets for the emulated-board test: a legacy unicast query and what an answer holds.

Encoded and decoded with dpkt's DNS codec, not with python-zeroconf (the announcer's own
library), so the test reads the announcer's records with an independent decoder. dpkt refuses
record types it does not know, and an mDNS responder adds NSEC records (RFC 6762 §6.1): those
keep their raw rdata here.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field

import dpkt

SERVICE_TYPE = "_firecore._tcp.local"
_DECODED = {dpkt.dns.DNS_A, dpkt.dns.DNS_PTR, dpkt.dns.DNS_SRV, dpkt.dns.DNS_TXT}


class _RR(dpkt.dns.DNS.RR):  # type: ignore[misc]  # dpkt has no type hints
    def unpack_rdata(self, buf: bytes, off: int) -> None:
        if self.type in _DECODED:
            super().unpack_rdata(buf, off)


class _DNS(dpkt.dns.DNS):  # type: ignore[misc]
    RR = _RR


def ptr_query(query_id: int, service: str = SERVICE_TYPE) -> bytes:
    """A one-question PTR query; sent from a port other than 5353 it is a "legacy unicast"
    query, which the responder answers to the sender with the same id (RFC 6762 §6.7)."""
    msg = dpkt.dns.DNS(id=query_id, op=dpkt.dns.DNS_QUERY, rd=0)
    msg.qd = [dpkt.dns.DNS.Q(name=service, type=dpkt.dns.DNS_PTR, cls=dpkt.dns.DNS_IN)]
    return bytes(msg)


@dataclass
class Announced:
    """The records of one service instance found in a DNS message."""

    instance: str = ""
    server: str = ""
    port: int = 0
    addresses: list[str] = field(default_factory=list)
    properties: dict[str, str] = field(default_factory=dict)


def decode(payload: bytes, service: str = SERVICE_TYPE) -> tuple[int, Announced | None]:
    """The message id, and the instance of ``service`` it announces (None if it names none,
    or the payload is not a DNS response)."""
    try:
        msg = _DNS(payload)
    except (dpkt.UnpackError, dpkt.NeedData, IndexError, ValueError):
        return -1, None
    records = list(msg.an) + list(msg.ns) + list(msg.ar)
    found = Announced()
    for rr in records:
        if rr.type == dpkt.dns.DNS_PTR and rr.name == service:
            found.instance = rr.ptrname
    if not msg.qr or not found.instance:
        return msg.id, None
    for rr in records:
        if rr.type == dpkt.dns.DNS_SRV and rr.name == found.instance:
            found.server, found.port = rr.srvname, rr.port
        elif rr.type == dpkt.dns.DNS_TXT and rr.name == found.instance:
            found.properties = dict(_kv(t) for t in rr.text)
    for rr in records:
        if rr.type == dpkt.dns.DNS_A and rr.name == found.server:
            found.addresses.append(socket.inet_ntoa(rr.ip))
    return msg.id, found


def _kv(item: bytes | str) -> tuple[str, str]:
    text = item.decode(errors="replace") if isinstance(item, bytes) else item
    key, _, value = text.partition("=")
    return key, value
