"""The packet monitor's events: what ``monitor --json`` prints and the Diagnostics screen shows.

The monitor (``steps.wire.monitor``) turns a capture into a stream of these small typed objects;
``monitor --json``, the human renderer and the Diagnostics screen all consume the same stream, so
the same capture gives the same codes everywhere. Four of them are DESIGN.md's "Monitor JSON
lines" (``to_json()`` gives that exact shape):

- ``PacketEvent`` (``{"type": "packet", ...}``), one per decoded DHCP, ARP or TFTP packet, as the
  subclasses ``DhcpPacketEvent``, ``ArpPacketEvent`` and ``TftpPacketEvent``. The key names are
  fixed by DESIGN.md; a value that is unknown or absent from the packet is None here and its key is
  left out of the JSON (never ``""``). ``i`` is the packet's position in the capture counted
  from 0 — Wireshark's frame number minus one — so frames that are not DHCP/ARP/TFTP leave gaps
  and ``evidence`` indexes are found in Wireshark (``frame.number == i+1``) and ``--write``'s file.
- ``StageEvent``: a Pi reached a boot stage (``STAGES``), with the time since its power-on.
- ``DiagnosisEvent``: a finding with a stable code (``steps.wire.diagnosis``), severity, the
  evidence (packet indexes), what it means here and how to fix it.
- ``SummaryEvent``: at the end, one ``ClientSnapshot`` per Pi plus capture counters.

and one for screens only (no JSON line): ``ClientEvent``, a fresh ``ClientSnapshot`` of one Pi
whenever something a clients table shows changed (stage, address, model, the current file's
progress — throttled to a few per second of capture time per Pi), so a screen never reads the
monitor's live state from another thread.

Events are plain slotted dataclasses; treat them as read-only once yielded. Packet events carry
the captured bytes (``frame``, from the link-layer header on, and its ``linktype``) for a detail or
hex pane; they are not in the JSON.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

Severity = Literal["error", "warning", "info"]
FileStatus = Literal["complete", "probe", "not-found", "denied", "timeout", "incomplete"]

#: A Pi's boot stages in the order a healthy boot reaches them (DESIGN.md, issue 14). A stage is
#: "reached" once, per boot: ``discover`` its bootloader's first DISCOVER; ``offer`` an address
#: offered by a DHCP server; ``proxy-offer`` an offer carrying "Raspberry Pi Boot" (option 43);
#: ``lease`` the address acknowledged (Pi 4/5) or put to use (the Pi 3 ROM sends no REQUEST);
#: ``firmware`` the first TFTP read request; ``config`` config.txt read; ``kernel`` and
#: ``initramfs`` the first read of such a file (real start*.elf reads the initramfs before the
#: kernel, so these two may come in either order); ``os-dhcp`` the booted Linux asking for an
#: address (a DHCP message without the PXE vendor class); ``app-up`` the app announced over mDNS
#: (and, live, answered ``/health``).
STAGES: tuple[str, ...] = (
    "discover",
    "offer",
    "proxy-offer",
    "lease",
    "firmware",
    "config",
    "kernel",
    "initramfs",
    "os-dhcp",
    "app-up",
)


def _put(obj: dict[str, Any], key: str, value: Any) -> None:
    if value is not None:
        obj[key] = value


# ----------------------------------------------------------------------------- packets


@dataclass(slots=True, kw_only=True)
class PacketEvent:
    """One decoded DHCP, ARP or TFTP packet (base of the three kinds)."""

    PROTO: ClassVar[str] = ""

    i: int
    """Position in the capture, from 0 (Wireshark's frame number − 1)."""
    t: float
    """Seconds since the capture's first frame."""
    ts_ns: int = 0
    """Absolute capture timestamp in nanoseconds since the epoch (not in the JSON)."""
    src_mac: str | None = None
    dst_mac: str | None = None
    """None when the link layer does not carry it (Linux cooked captures keep only the source;
    a broadcast is still known from the packet type)."""
    mac: str | None = None
    """The Pi this packet belongs to (lower-case), once the monitor knows; None for others."""
    frame: bytes = b""
    """The captured bytes from the link-layer header on (empty when the monitor was asked not to
    keep them); not in the JSON."""
    linktype: int = 1
    """The pcap LINKTYPE of ``frame`` (1 Ethernet, 113 Linux SLL, 276 SLL2, 101 raw IP)."""

    @property
    def proto(self) -> str:
        """``"dhcp"``, ``"arp"`` or ``"tftp"``."""
        return self.PROTO

    def _head(self) -> dict[str, Any]:
        obj: dict[str, Any] = {"type": "packet", "i": self.i, "t": self.t, "proto": self.PROTO}
        _put(obj, "src_mac", self.src_mac)
        _put(obj, "dst_mac", self.dst_mac)
        return obj

    def to_json(self) -> dict[str, Any]:
        """The DESIGN.md packet object (keys with unknown values left out)."""
        obj = self._head()
        _put(obj, "mac", self.mac)
        return obj

    def summary(self) -> str:
        """One line for a packet list, tcpdump-like (``DHCP DISCOVER xid 0x26f30339 …``)."""
        return self.PROTO.upper()

    def details(self) -> list[tuple[str, str]]:
        """(field, value) rows for a detail pane: every JSON key, in order, as text."""
        return [(k, _text(v)) for k, v in self.to_json().items() if k != "type"]


def _text(value: Any) -> str:
    if isinstance(value, dict):
        return " ".join(f"{k}={v}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


@dataclass(slots=True, kw_only=True)
class UdpPacketEvent(PacketEvent):
    """The IPv4/UDP part shared by DHCP and TFTP packets."""

    src_ip: str | None = None
    dst_ip: str | None = None
    src_port: int | None = None
    dst_port: int | None = None

    def _udp_head(self) -> dict[str, Any]:
        obj = self._head()
        _put(obj, "src_ip", self.src_ip)
        _put(obj, "dst_ip", self.dst_ip)
        _put(obj, "src_port", self.src_port)
        _put(obj, "dst_port", self.dst_port)
        _put(obj, "mac", self.mac)
        return obj


@dataclass(slots=True, kw_only=True)
class DhcpPacketEvent(UdpPacketEvent):
    """A BOOTP/DHCP message (UDP 67/68)."""

    PROTO: ClassVar[str] = "dhcp"

    msg_type: str | None = None
    """Option 53 by name: DISCOVER, OFFER, REQUEST, DECLINE, ACK, NAK, RELEASE, INFORM (None
    for plain BOOTP or an unknown number)."""
    op: int = 0
    """BOOTP op: 1 request (client → server), 2 reply; not in the JSON."""
    xid: str | None = None
    """``"0x26f30339"``."""
    chaddr: str | None = None
    ciaddr: str | None = None
    yiaddr: str | None = None
    siaddr: str | None = None
    giaddr: str | None = None
    """Relay agent address; not in the JSON (DESIGN.md does not list it)."""
    server_id: str | None = None
    vendor_class: str | None = None
    tftp_server: str | None = None
    bootfile: str | None = None
    client_arch: int | None = None
    client_uuid: str | None = None
    """Option 97, the whole value in hex (type byte first)."""
    pxe_menu: list[str] | None = None
    """The option-43 boot menu texts; ``[]`` when option 43 is there but has no menu."""
    pxe_raw: str | None = None
    """Option 43 in hex; not in the JSON (the detail pane shows it)."""
    parameter_list: tuple[int, ...] = ()
    """Option 55 (the Pi 3 ROM asks for 12 options, bootcode.bin for 14); not in the JSON."""

    def to_json(self) -> dict[str, Any]:
        """The DESIGN.md packet object (keys with unknown values left out)."""
        obj = self._udp_head()
        for key in (
            "msg_type",
            "xid",
            "chaddr",
            "ciaddr",
            "yiaddr",
            "siaddr",
            "server_id",
            "vendor_class",
            "tftp_server",
            "bootfile",
            "client_arch",
            "client_uuid",
        ):
            _put(obj, key, getattr(self, key))
        if self.pxe_menu is not None:
            obj["pxe_menu"] = list(self.pxe_menu)
        return obj

    def summary(self) -> str:
        """``DHCP OFFER xid 0x26f30339 10.0.0.5 → b8:27:eb:… menu "Raspberry Pi Boot"``."""
        kind = self.msg_type or ("BOOTREQUEST" if self.op == 1 else "BOOTREPLY")
        parts = [f"DHCP {kind} xid {self.xid}"]
        if self.op == 2 and self.yiaddr and self.yiaddr != "0.0.0.0":
            parts.append(f"offers {self.yiaddr}")
        if self.chaddr:
            parts.append(("for " if self.op == 2 else "from ") + self.chaddr)
        if self.vendor_class:
            parts.append(f"class {self.vendor_class!r}")
        if self.pxe_menu is not None:
            parts.append("menu " + (", ".join(repr(m) for m in self.pxe_menu) or "(none)"))
        if self.server_id:
            parts.append(f"server {self.server_id}")
        return " ".join(parts)

    def details(self) -> list[tuple[str, str]]:
        """The JSON keys, then what the JSON leaves out (giaddr, option 55, option 43 bytes)."""
        rows = PacketEvent.details(self)
        if self.giaddr and self.giaddr != "0.0.0.0":
            rows.append(("giaddr", self.giaddr))
        if self.parameter_list:
            rows.append(("parameter_list", ",".join(str(c) for c in self.parameter_list)))
        if self.pxe_raw is not None:
            rows.append(("option_43", self.pxe_raw))
        return rows


@dataclass(slots=True, kw_only=True)
class ArpPacketEvent(PacketEvent):
    """An ARP request or reply (IPv4 over Ethernet)."""

    PROTO: ClassVar[str] = "arp"

    op: str | None = None
    """``"request"`` or ``"reply"`` (None for another opcode)."""
    sender_mac: str | None = None
    sender_ip: str | None = None
    target_mac: str | None = None
    target_ip: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The DESIGN.md packet object (keys with unknown values left out)."""
        obj = self._head()
        _put(obj, "mac", self.mac)
        _put(obj, "op", self.op)
        _put(obj, "sender_mac", self.sender_mac)
        _put(obj, "sender_ip", self.sender_ip)
        _put(obj, "target_mac", self.target_mac)
        _put(obj, "target_ip", self.target_ip)
        return obj

    def summary(self) -> str:
        """``ARP who-has 10.0.0.1 tell 10.0.0.5`` / ``ARP 10.0.0.1 is-at 02:…``."""
        if self.op == "request":
            return f"ARP who-has {self.target_ip} tell {self.sender_ip}"
        if self.op == "reply":
            return f"ARP {self.sender_ip} is-at {self.sender_mac}"
        return f"ARP {self.sender_ip} → {self.target_ip}"


@dataclass(slots=True, kw_only=True)
class TftpPacketEvent(UdpPacketEvent):
    """A TFTP packet: the read/write request to port 69 or any packet of its transfer."""

    PROTO: ClassVar[str] = "tftp"

    opcode: str | None = None
    """RRQ, WRQ, DATA, ACK, ERROR or OACK."""
    file: str | None = None
    """The file as requested, on the request and on every packet of its transfer (as tshark's
    ``tftp.source_file`` shows it)."""
    mode: str | None = None
    options: dict[str, str] | None = None
    """RRQ/WRQ/OACK options (RFC 2347), name (lower-case) → value."""
    block: int | None = None
    length: int | None = None
    """DATA payload bytes."""
    error_code: int | None = None
    error_msg: str | None = None
    transfer: int | None = None
    """Shared by every packet of one transfer, across the server's ephemeral port."""

    def to_json(self) -> dict[str, Any]:
        """The DESIGN.md packet object (keys with unknown values left out)."""
        obj = self._udp_head()
        _put(obj, "opcode", self.opcode)
        _put(obj, "file", self.file)
        _put(obj, "mode", self.mode)
        if self.options is not None:
            obj["options"] = dict(self.options)
        _put(obj, "block", self.block)
        _put(obj, "length", self.length)
        _put(obj, "error_code", self.error_code)
        _put(obj, "error_msg", self.error_msg)
        _put(obj, "transfer", self.transfer)
        return obj

    def summary(self) -> str:
        """``TFTP RRQ start4.elf tsize=0 blksize=1468`` / ``TFTP DATA #3 1468 B`` …"""
        op = self.opcode or "?"
        if op in ("RRQ", "WRQ"):
            opts = " ".join(f"{k}={v}" for k, v in (self.options or {}).items())
            return f"TFTP {op} {self.file} {opts}".rstrip()
        if op == "DATA":
            return f"TFTP DATA #{self.block} {self.length} B"
        if op == "ACK":
            return f"TFTP ACK #{self.block}"
        if op == "OACK":
            return "TFTP OACK " + " ".join(f"{k}={v}" for k, v in (self.options or {}).items())
        return f"TFTP ERROR {self.error_code} {self.error_msg!r}"


class TftpBlockEvent(TftpPacketEvent):
    """A DATA or ACK of a known transfer: a ``TftpPacketEvent`` made cheaply.

    Nearly every packet of a boot is one of these, so the decoder does not fill sixteen fields
    for each: the addresses, ports, file and transfer id come from the transfer's direction
    (``flow``) when read. It reads, compares and serialises exactly like a ``TftpPacketEvent``.
    """

    __slots__ = ("_flow", "_macs", "_opcode")

    def __init__(
        self,
        i: int,
        t: float,
        ts_ns: int,
        frame: bytes,
        linktype: int,
        flow: Any,
        macs: tuple[str | None, str | None],
        opcode: str,
        block: int,
        length: int | None,
    ) -> None:
        self.i = i
        self.t = t
        self.ts_ns = ts_ns
        self.frame = frame
        self.linktype = linktype
        self._flow = flow
        self._macs = macs
        self._opcode = opcode
        self.block = block
        self.length = length

    src_mac = property(lambda self: self._macs[0])
    dst_mac = property(lambda self: self._macs[1])
    src_ip = property(lambda self: self._flow.src_ip)
    dst_ip = property(lambda self: self._flow.dst_ip)
    src_port = property(lambda self: self._flow.src_port)
    dst_port = property(lambda self: self._flow.dst_port)
    mac = property(lambda self: self._flow.xfer.mac)
    opcode = property(lambda self: self._opcode)
    file = property(lambda self: self._flow.xfer.file)
    transfer = property(lambda self: self._flow.xfer.id)
    mode = property(lambda self: None)
    options = property(lambda self: None)
    error_code = property(lambda self: None)
    error_msg = property(lambda self: None)

    def __repr__(self) -> str:
        return f"TftpBlockEvent(i={self.i}, {self.summary()}, transfer={self.transfer})"


# ----------------------------------------------------------------------------- per Pi


@dataclass(slots=True, kw_only=True)
class FileResult:
    """One TFTP transfer of a Pi, as it ended (or stands, while it runs)."""

    name: str
    status: FileStatus | Literal["running"]
    """``running`` only in snapshots taken while the transfer is under way."""
    bytes: int = 0
    duration: float = 0.0
    """Seconds from the read request to the last packet of the transfer."""
    tsize: int | None = None
    """The size the server announced (OACK tsize), when it did."""
    blksize: int = 512
    requests: int = 1
    """Read requests sent for it (1 + retransmissions)."""
    transfer: int = 0
    i: int = 0
    """Index of its first read request."""
    t: float = 0.0
    """When it was requested, seconds since the capture's first frame."""
    error_code: int | None = None
    error_msg: str | None = None

    def to_json(self) -> dict[str, Any]:
        """``{"name", "status", "bytes", ...}`` as in DESIGN.md's summary, plus details."""
        obj: dict[str, Any] = {
            "name": self.name,
            "status": self.status,
            "bytes": self.bytes,
            "duration": round(self.duration, 6),
            "transfer": self.transfer,
            "i": self.i,
        }
        _put(obj, "tsize", self.tsize)
        if self.requests != 1:
            obj["requests"] = self.requests
        _put(obj, "error_code", self.error_code)
        _put(obj, "error_msg", self.error_msg)
        return obj


@dataclass(slots=True, kw_only=True)
class ClientSnapshot:
    """What the monitor knows about one Pi at one moment (a row of the clients table)."""

    mac: str
    model: str | None = None
    """``pi3``, ``pi4``, ``pi5`` (or ``pi1-3`` when only "a Pi before the Pi 4" is known)."""
    model_source: str | None = None
    """How the model was inferred: ``guid``, ``xid``, ``files``, ``devicetree``, ``oui``."""
    bootloader: str | None = None
    """What spoke last: ``pi3-rom``, ``bootcode.bin``, ``pi4-eeprom``, ``pi5-eeprom``,
    ``start.elf``, ``linux``."""
    serial: str | None = None
    """8 lower-case hex digits."""
    serial_source: str | None = None
    """``guid`` (option 97), ``prefix`` (a ``<serial>/`` read request) or ``mdns``."""
    ip: str | None = None
    ip_from: str | None = None
    """The DHCP server that gave the address (its option 54, else the reply's source)."""
    tftp_server: str | None = None
    """The boot server the proxy offer named."""
    stage: str | None = None
    """The furthest stage (``STAGES``) reached in the current boot."""
    stages: dict[str, float] = field(default_factory=dict)
    """Stage → seconds since power-on (the Pi's first DISCOVER of this boot), as reached."""
    boots: int = 1
    """Boot attempts seen (a restart begins a new one)."""
    power_on_t: float = 0.0
    """When this boot began, seconds since the capture's first frame."""
    current: FileResult | None = None
    """The transfer under way, if any (for a progress bar: ``bytes`` of ``tsize``)."""
    files: list[FileResult] = field(default_factory=list)
    """Every transfer of every boot, in request order."""
    codes: list[str] = field(default_factory=list)
    """Diagnosis codes raised for this Pi, in order, once each."""

    def to_json(self) -> dict[str, Any]:
        """DESIGN.md's summary client: ``mac, ip, serial, model, stage, files`` (+ details)."""
        obj: dict[str, Any] = {
            "mac": self.mac,
            "ip": self.ip,
            "serial": self.serial,
            "model": self.model,
            "stage": self.stage,
            "files": [
                {"name": f.name, "status": f.status, "bytes": f.bytes, "duration": f.duration}
                for f in self.files
            ],
        }
        for key in (
            "model_source",
            "bootloader",
            "serial_source",
            "ip_from",
            "tftp_server",
        ):
            _put(obj, key, getattr(self, key))
        obj["stages"] = dict(self.stages)
        obj["boots"] = self.boots
        obj["codes"] = list(self.codes)
        return obj


# ----------------------------------------------------------------------------- happenings


@dataclass(slots=True, kw_only=True)
class StageEvent:
    """A Pi reached a boot stage."""

    mac: str
    stage: str
    """One of ``STAGES``."""
    t: float
    """Seconds since the capture's first frame."""
    since_power_on: float
    """Seconds since this boot's first DISCOVER (a Pi says nothing earlier; the Pi 4 waits ~3 s
    for the link and the Pi 3 ROM 5–10 s before it, so add that for wall-clock power-on)."""
    i: int | None = None
    """The packet that showed it."""
    boot: int = 1

    def to_json(self) -> dict[str, Any]:
        """``{"type": "stage", "mac", "stage", ...}``."""
        obj: dict[str, Any] = {
            "type": "stage",
            "mac": self.mac,
            "stage": self.stage,
            "t": self.t,
            "since_power_on": round(self.since_power_on, 6),
            "boot": self.boot,
        }
        _put(obj, "i", self.i)
        return obj


@dataclass(slots=True, kw_only=True)
class DiagnosisEvent:
    """A finding: a stable code with its severity, evidence, cause and fix."""

    code: str
    """A code of ``steps.wire.diagnosis.DIAGNOSES``."""
    severity: Severity
    mac: str | None
    """The Pi concerned; None for findings about the segment (``no-discover``)."""
    message: str
    """What was seen, with this capture's facts (addresses, file names, counts)."""
    fix: str
    evidence: list[int] = field(default_factory=list)
    """Packet indexes (``PacketEvent.i``) that show it, first ones first (at most 20)."""
    t: float = 0.0
    """When it was decided, seconds since the capture's first frame."""
    stage: str | None = None
    """The Pi's stage at that moment."""
    file: str | None = None
    """The file concerned, for TFTP findings."""

    def to_json(self) -> dict[str, Any]:
        """``{"type": "diagnosis", "code", "severity", "mac", "message", "fix", "evidence"}``."""
        obj: dict[str, Any] = {
            "type": "diagnosis",
            "code": self.code,
            "severity": self.severity,
        }
        _put(obj, "mac", self.mac)
        obj.update(message=self.message, fix=self.fix, evidence=list(self.evidence), t=self.t)
        _put(obj, "stage", self.stage)
        _put(obj, "file", self.file)
        return obj


@dataclass(slots=True, kw_only=True)
class ClientEvent:
    """A Pi's row changed (screens only; ``monitor --json`` prints no line for it)."""

    client: ClientSnapshot

    def to_json(self) -> dict[str, Any]:
        """``{"type": "client", ...}`` (for debugging; not a DESIGN.md line)."""
        return {"type": "client", **self.client.to_json()}


@dataclass(slots=True, kw_only=True)
class SummaryEvent:
    """The end of a run: every Pi, and what was read."""

    clients: list[ClientSnapshot]
    frames: int = 0
    """Frames read from the source."""
    packets: int = 0
    """Frames decoded as DHCP, ARP or TFTP (packet events)."""
    malformed: int = 0
    """Frames on DHCP/TFTP ports that did not decode (counted, never raised)."""
    dropped: int | None = None
    """Frames the kernel dropped before the live capture read them (None for files)."""
    duration: float = 0.0
    """Seconds from the first to the last frame."""
    codes: dict[str, int] = field(default_factory=dict)
    """Diagnosis code → how many times it was raised."""

    def to_json(self) -> dict[str, Any]:
        """``{"type": "summary", "clients": [...], ...}``."""
        obj: dict[str, Any] = {
            "type": "summary",
            "clients": [c.to_json() for c in self.clients],
            "frames": self.frames,
            "packets": self.packets,
            "malformed": self.malformed,
            "duration": round(self.duration, 6),
            "codes": dict(self.codes),
        }
        _put(obj, "dropped", self.dropped)
        return obj


MonitorEvent = (
    DhcpPacketEvent | ArpPacketEvent | TftpPacketEvent | StageEvent | DiagnosisEvent | ClientEvent
) | SummaryEvent
"""Everything ``steps.wire.monitor.watch`` yields (plus ``steps.events.LogLine`` notices)."""
