"""mDNS/DNS-SD announcements on the wire: enough to see a Pi's app say "I am up".

The app on each Pi announces ``_firecore._tcp.local.`` from its own process (see
``assets/app/firecore_app/announce.py``): a multicast DNS response to 224.0.0.251:5353 with a PTR
record for the service type, the instance's SRV (host, port) and TXT (``serial``, ``model``,
``build``, ``port``, ``path``) records and the host's A records. The packet monitor reads these
responses from a capture to mark a Pi's ``app-up`` stage; ``parse_announcement`` returns None for
anything else (queries, other services, malformed messages — it never raises).

RFC 1035 §4.1 (message format, name compression), RFC 6762 (mDNS: TTL 0 is a goodbye), RFC 6763
(DNS-SD: PTR → instance, SRV, TXT ``key=value`` strings).
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass, field

MDNS_PORT = 5353
SERVICE_TYPE = "_firecore._tcp.local"
_A, _PTR, _TXT, _SRV = 1, 12, 16, 33


@dataclass(frozen=True)
class MdnsAnnouncement:
    """One announcement of the firecore service, as carried by one mDNS response."""

    instance: str
    """The service instance name, e.g. ``firecore-9ffefdef._firecore._tcp.local``."""
    goodbye: bool
    """TTL 0: the Pi is withdrawing the service (its app is shutting down)."""
    host: str | None = None
    port: int | None = None
    addresses: tuple[str, ...] = ()
    properties: dict[str, str] = field(default_factory=dict)


def _name(msg: bytes, pos: int) -> tuple[str, int]:
    """A (possibly compressed) domain name at ``pos``; returns it and the position after it.

    Raises:
        ValueError: malformed (runs past the end, or a pointer loop).
    """
    labels: list[str] = []
    end: int | None = None
    jumps = 0
    while True:
        if pos >= len(msg):
            raise ValueError("name runs past the message")
        length = msg[pos]
        if length & 0xC0 == 0xC0:
            if pos + 1 >= len(msg):
                raise ValueError("truncated pointer")
            if end is None:
                end = pos + 2
            jumps += 1
            if jumps > 32:
                raise ValueError("pointer loop")
            pos = ((length & 0x3F) << 8) | msg[pos + 1]
            continue
        if length & 0xC0:
            raise ValueError("bad label type")
        pos += 1
        if length == 0:
            break
        if pos + length > len(msg):
            raise ValueError("label runs past the message")
        labels.append(msg[pos : pos + length].decode("utf-8", "replace"))
        pos += length
    return ".".join(labels), end if end is not None else pos


def parse_announcement(payload: bytes) -> MdnsAnnouncement | None:
    """The firecore announcement in an mDNS response, or None (never raises)."""
    try:
        return _parse(payload)
    except (ValueError, struct.error, IndexError):
        return None


def _parse(msg: bytes) -> MdnsAnnouncement | None:
    if len(msg) < 12:
        return None
    _ident, flags, qd, an, ns, ar = struct.unpack_from("!HHHHHH", msg)
    if not flags & 0x8000:  # a query, not a response
        return None
    pos = 12
    for _ in range(qd):
        _q, pos = _name(msg, pos)
        pos += 4
    instance: str | None = None
    goodbye = False
    srv: dict[str, tuple[str, int]] = {}
    txt: dict[str, dict[str, str]] = {}
    a: dict[str, list[str]] = {}
    for _ in range(an + ns + ar):
        name, pos = _name(msg, pos)
        if pos + 10 > len(msg):
            return None
        rtype, _rclass, ttl, rdlen = struct.unpack_from("!HHIH", msg, pos)
        pos += 10
        rdata_end = pos + rdlen
        if rdata_end > len(msg):
            return None
        lname = name.lower()
        if rtype == _PTR and lname == SERVICE_TYPE:
            target, _ = _name(msg, pos)
            instance = target
            goodbye = ttl == 0
        elif rtype == _SRV and rdlen >= 7:
            _prio, _weight, port = struct.unpack_from("!HHH", msg, pos)
            target, _ = _name(msg, pos + 6)
            srv[lname] = (target, port)
        elif rtype == _TXT:
            props: dict[str, str] = {}
            j = pos
            while j < rdata_end:
                n = msg[j]
                item = msg[j + 1 : j + 1 + n].decode("utf-8", "replace")
                key, _, value = item.partition("=")
                if key:
                    props[key.lower()] = value
                j += 1 + n
            txt[lname] = props
        elif rtype == _A and rdlen == 4:
            a.setdefault(lname, []).append(socket.inet_ntoa(msg[pos : pos + 4]))
        pos = rdata_end
    if instance is None:
        # a response may carry only the SRV/TXT of an instance (a refresh): still an announcement
        matches = [n for n in (*srv, *txt) if n.endswith("." + SERVICE_TYPE)]
        if not matches:
            return None
        instance = matches[0]
    key = instance.lower()
    host, port = srv.get(key, (None, None))
    return MdnsAnnouncement(
        instance=instance,
        goodbye=goodbye,
        host=host,
        port=port,
        addresses=tuple(a.get((host or "").lower(), [])),
        properties=txt.get(key, {}),
    )
