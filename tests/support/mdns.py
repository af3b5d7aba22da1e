"""mDNS packets for the emulated-board test: a legacy unicast query and what an answer holds.

Encoding and decoding are python-zeroconf's (the library the announcer itself uses), so the test
reads the records the way a resolver does rather than by byte offsets.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from zeroconf import DNSAddress, DNSIncoming, DNSOutgoing, DNSPointer, DNSQuestion, DNSService
from zeroconf import DNSText, const

SERVICE_TYPE = "_firecore._tcp.local."


def ptr_query(query_id: int, service: str = SERVICE_TYPE) -> bytes:
    """A one-question PTR query; sent from a port other than 5353 it is a "legacy unicast"
    query, which the responder answers to the sender with the same id."""
    out = DNSOutgoing(const._FLAGS_QR_QUERY, multicast=False, id_=query_id)
    out.add_question(DNSQuestion(service, const._TYPE_PTR, const._CLASS_IN))
    return out.packets()[0]


@dataclass
class Announced:
    """The records of one service instance found in a DNS message."""

    instance: str = ""
    server: str = ""
    port: int = 0
    addresses: list[str] = field(default_factory=list)
    properties: dict[str, str] = field(default_factory=dict)


def decode(payload: bytes, service: str = SERVICE_TYPE) -> tuple[DNSIncoming, Announced | None]:
    """The message, and the instance of ``service`` it announces (None if it names none)."""
    msg = DNSIncoming(payload)
    found = Announced()
    for rec in msg.answers():
        if isinstance(rec, DNSPointer) and rec.name == service:
            found.instance = rec.alias
    if not found.instance:
        return msg, None
    for rec in msg.answers():
        if isinstance(rec, DNSService) and rec.name == found.instance:
            found.server, found.port = rec.server, rec.port
        elif isinstance(rec, DNSText) and rec.name == found.instance:
            found.properties = _txt(rec.text)
    for rec in msg.answers():
        if isinstance(rec, DNSAddress) and rec.name == found.server and len(rec.address) == 4:
            found.addresses.append(".".join(str(b) for b in rec.address))
    return msg, found


def _txt(raw: bytes) -> dict[str, str]:
    out: dict[str, str] = {}
    i = 0
    while i < len(raw):
        n = raw[i]
        key, _, value = raw[i + 1 : i + 1 + n].decode(errors="replace").partition("=")
        out[key] = value
        i += 1 + n
    return out
