"""Captured frames → DHCP, ARP and TFTP packet events, following each TFTP transfer.

``Decoder.decode(i, record)`` reads one capture record (``steps.wire.pcap.Record``) whatever its
link layer — Ethernet with any number of 802.1Q/802.1ad tags, Linux cooked captures (SLL from
``tcpdump -i any`` on older libpcap, SLL2 on newer), raw IP — and returns the packet event DESIGN.md
fixes, or None for everything else. It never raises on bad bytes: a frame on a DHCP or TFTP port
that does not decode is counted in ``malformed`` and skipped. UDP checksums are not checked (a
capture taken on the sending host shows offloaded, "wrong" checksums; netboot.md §6).

The DHCP payload is decoded by ``steps.wire.dhcp.DhcpPacket.decode`` and TFTP requests, OACKs and
errors by ``steps.wire.tftp.decode`` — the codecs the virtual Pi uses. DATA and ACK, nearly every
packet of a boot, take a short path here: a transfer's two directions are looked up by the 12
bytes that name them (addresses and ports) and the strings for them are made once per transfer.

**TFTP transfers.** A read request from the Pi's port *c* to the server's port 69 opens a
transfer; the server answers from a new ephemeral port *e* (RFC 1350's transfer id), and every
later packet between (server, *e*) and (Pi, *c*) belongs to it, as ``transfer`` (a number from 1)
on each packet. A repeated request from the same port for the same file while the transfer has
not ended is the same transfer (``requests`` counts them), so a second server session started by
a retransmitted request joins it too. With ``tftp-single-port`` the server answers from 69; that
works the same way. ``TransferState`` keeps what the monitor's timeline needs: bytes, blocks,
negotiated options and how it ended (``status``): ``complete`` (the last, short DATA block was
sent), ``probe`` (the client stopped it with ERROR after at most one block: the firmware's
"Early terminate" existence check), ``not-found`` (server ERROR 1), ``denied`` (ERROR 2),
``timeout`` (the client gave up mid-file) or ``incomplete`` (any other ERROR). A transfer still
open has status None; the timeline decides when it stalled.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from steps.wire import dhcp, tftp
from steps.wire.mdns import MDNS_PORT, MdnsAnnouncement, parse_announcement
from steps.wire.monitor_events import (
    ArpPacketEvent,
    DhcpPacketEvent,
    PacketEvent,
    TftpBlockEvent,
    TftpPacketEvent,
)
from steps.wire.netframes import ETH_P_ARP, ETH_P_IP, IPPROTO_UDP
from steps.wire.pcap import (
    LINKTYPE_ETHERNET,
    LINKTYPE_IPV4,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_LINUX_SLL2,
    LINKTYPE_RAW,
    Record,
)

_VLAN_TYPES = (0x8100, 0x88A8, 0x9100)
_BROADCAST = "ff:ff:ff:ff:ff:ff"
_OPCODES = {1: "RRQ", 2: "WRQ", 3: "DATA", 4: "ACK", 5: "ERROR", 6: "OACK"}
_ARP_OPS = {1: "request", 2: "reply"}
_u16 = struct.Struct("!H").unpack_from
_u16x2 = struct.Struct("!HH").unpack_from
_u16x4 = struct.Struct("!HHHH").unpack_from
_ntoa = socket.inet_ntoa
#: A client's ERROR this soon after the first answer, with nothing repeated, is an existence
#: probe ("Early terminate" right after the OACK or DATA #1, netboot.md §4.3).
_PROBE_NS = 1_000_000_000
#: A request repeated this soon after the server refused it is the same request again.
_REPEAT_NS = 5_000_000_000
_REFUSED = ("not-found", "denied", "incomplete")


@dataclass(slots=True, eq=False)
class TransferState:
    """One TFTP transfer as seen on the wire (both directions, every server session)."""

    id: int
    file: str
    opcode: str
    """``RRQ`` or ``WRQ``."""
    client_ip: str
    client_port: int
    server_ip: str
    client_mac: str | None
    """The Ethernet source of the first request (None when the link layer has no MAC)."""
    first_i: int
    first_ns: int
    options: dict[str, str] = field(default_factory=dict)
    """What the client asked for."""
    accepted: dict[str, str] | None = None
    """The server's OACK, if any."""
    server_port: int | None = None
    blksize: int = 512
    tsize: int | None = None
    requests: int = 1
    request_is: list[int] = field(default_factory=list)
    """Indexes of its read requests (the first and the retransmissions; at most 20)."""
    bytes: int = 0
    blocks: int = 0
    """DATA blocks received in order."""
    next_block: int = 1
    last_ack: int | None = None
    duplicates: int = 0
    """DATA blocks seen again (retransmissions)."""
    missed: int = 0
    """DATA blocks the capture missed (a later block arrived first; counted as received)."""
    repeated_acks: int = 0
    """ACKs the client sent again (it waited for the next block)."""
    answer_ns: int | None = None
    """When the server first answered."""
    last_ns: int = 0
    """Timestamp of its latest packet."""
    last_i: int = 0
    status: str | None = None
    """None while open; then complete, probe, not-found, denied, timeout, incomplete."""
    error_code: int | None = None
    error_msg: str | None = None
    error_from_client: bool = False
    end_i: int | None = None
    """Index of the packet that ended it."""
    mac: str | None = None
    """The Pi it belongs to, set by the monitor's timeline when it claims the transfer."""
    owner: Any = None
    """The timeline's state for that Pi (``steps.wire.timeline.Client``)."""
    data: bytearray | None = None
    """The file's bytes, kept only when asked (``keep``): config.txt, to read its kernel and
    initramfs lines."""
    keep: int = 0
    """Keep at most this many bytes of the file (0: keep nothing)."""

    @property
    def answered(self) -> bool:
        """The server answered at least once (OACK, DATA or ERROR)."""
        return self.server_port is not None

    @property
    def duration(self) -> float:
        """Seconds from the first request to the latest packet."""
        return max(0.0, (self.last_ns - self.first_ns) / 1e9)


class _Flow:
    """One direction of one transfer, with its strings made once."""

    __slots__ = (
        "dst_ip",
        "dst_port",
        "from_server",
        "mac_raw",
        "macs",
        "sends_data",
        "src_ip",
        "src_port",
        "xfer",
    )

    def __init__(
        self,
        xfer: TransferState,
        from_server: bool,
        src_ip: str,
        dst_ip: str,
        src_port: int,
        dst_port: int,
    ) -> None:
        self.xfer = xfer
        self.from_server = from_server
        self.src_ip = src_ip
        self.dst_ip = dst_ip
        self.src_port = src_port
        self.dst_port = dst_port
        self.sends_data = from_server == (xfer.opcode == "RRQ")
        """DATA flows this way (server → client for a read)."""
        self.mac_raw = b""
        """The 12 MAC bytes of the last Ethernet frame this way, and (source, destination) as
        strings: most frames of a transfer reuse them."""
        self.macs: tuple[str | None, str | None] = (None, None)


class _Head(NamedTuple):
    """One frame's link layer, decoded: what the general path hands from function to function."""

    i: int
    ts: int
    t: float
    frame: bytes
    linktype: int
    src_mac: str | None
    dst_mac: str | None
    off: int
    """Where the network layer starts."""


#: Open transfers are forgotten after this many newer ones (a week-long live capture stays small).
MAX_FLOWS = 20000


class Decoder:
    """Decode records in capture order; keeps the TFTP transfer table.

    Args:
        keep_frames: attach each decoded frame's bytes to its event (for a detail pane).
    """

    def __init__(self, *, keep_frames: bool = True) -> None:
        self.keep_frames = keep_frames
        self.t0: int | None = None
        """Timestamp of the first record (``t`` counts from it)."""
        self.malformed = 0
        self.transfers = 0
        self._flows: dict[bytes, _Flow] = {}
        self._pending: dict[bytes, TransferState] = {}
        """(client ip, client port, server ip) → its latest transfer."""
        self._macs: dict[bytes, str] = {}
        self.finished: list[TransferState] = []
        """Transfers that ended during the last ``decode`` call (the caller empties it)."""
        self.started: TransferState | None = None
        """The transfer a request just opened (set by ``decode``; the caller resets it)."""
        self.announcement: MdnsAnnouncement | None = None
        """The firecore mDNS announcement in the last frame, if it carried one (the caller
        resets it), sent from ``announcement_src`` (MAC, IP)."""
        self.announcement_src: tuple[str | None, str] = (None, "")
        self.xfer: TransferState | None = None
        """The transfer of the last TFTP packet decoded."""
        self.repeat: TransferState | None = None
        """A transfer whose request just came again although the server had answered (set by
        ``decode``; the caller resets it)."""

    # ------------------------------------------------------------------ helpers
    def _mac(self, raw: bytes) -> str:
        s = self._macs.get(raw)
        if s is None:
            s = ":".join(f"{b:02x}" for b in raw)
            if len(self._macs) < 4096:
                self._macs[raw] = s
        return s

    def decode(self, i: int, record: Record) -> PacketEvent | None:
        """The packet event for record ``i``, or None (not DHCP/ARP/TFTP, or malformed)."""
        ts, linktype, frame, _orig = record
        t0 = self.t0
        if t0 is None:
            t0 = self.t0 = ts
        t = (ts - t0) / 1e9
        # the short path: DATA/ACK of a known transfer in untagged Ethernet + IPv4 (no options)
        if (
            linktype == 1
            and len(frame) >= 46
            and frame[12] == 8
            and frame[13] == 0
            and frame[14] == 0x45
            and frame[23] == 17
            and frame[42] == 0
            and (frame[43] == 3 or frame[43] == 4)
            and not (frame[20] & 0x3F or frame[21])
        ):
            flow = self._flows.get(frame[26:38])
            if flow is not None:
                raw = frame[:12]
                if raw != flow.mac_raw:
                    flow.mac_raw = raw
                    flow.macs = (self._mac(frame[6:12]), self._mac(frame[0:6]))
                ulen = frame[38] << 8 | frame[39]
                end = min(len(frame), 34 + ulen) if ulen >= 8 else len(frame)
                return self._block(i, ts, t, frame, 34, end, ulen, flow, flow.macs, 1)
        src_mac: str | None
        dst_mac: str | None
        # ---- link layer → (ethertype, offset)
        if linktype == LINKTYPE_ETHERNET:
            if len(frame) < 14:
                return None
            ethertype = _u16(frame, 12)[0]
            off = 14
            while ethertype in _VLAN_TYPES and len(frame) >= off + 4:
                ethertype = _u16(frame, off + 2)[0]
                off += 4
            src_raw = frame[6:12]
            dst_raw = frame[0:6]
            src_mac = self._mac(src_raw)
            dst_mac = self._mac(dst_raw)
        elif linktype in (LINKTYPE_LINUX_SLL, LINKTYPE_LINUX_SLL2):
            if linktype == LINKTYPE_LINUX_SLL:
                if len(frame) < 16:
                    return None
                pkttype, hatype, halen = _u16x2(frame, 0) + _u16(frame, 4)
                addr = frame[6 : 6 + min(halen, 8)]
                ethertype = _u16(frame, 14)[0]
                off = 16
            else:
                if len(frame) < 20:
                    return None
                ethertype = _u16(frame, 0)[0]
                hatype = _u16(frame, 8)[0]
                pkttype, halen = frame[10], frame[11]
                addr = frame[12 : 12 + min(halen, 8)]
                off = 20
            while ethertype in _VLAN_TYPES and len(frame) >= off + 4:
                ethertype = _u16(frame, off + 2)[0]
                off += 4
            src_mac = self._mac(addr) if halen == 6 and hatype in (1, 772) else None
            dst_mac = _BROADCAST if pkttype == 1 else None
        elif linktype in (LINKTYPE_RAW, LINKTYPE_IPV4):
            if not frame or frame[0] >> 4 != 4:
                return None
            ethertype, off, src_mac, dst_mac = ETH_P_IP, 0, None, None
        else:
            return None
        head = _Head(i, ts, t, frame, linktype, src_mac, dst_mac, off)
        if ethertype == ETH_P_IP:
            return self._ipv4(head)
        if ethertype == ETH_P_ARP:
            return self._arp(head)
        return None

    def _common(self, head: _Head) -> dict[str, Any]:
        """The packet-event fields every kind shares."""
        return {
            "i": head.i,
            "t": head.t,
            "ts_ns": head.ts,
            "src_mac": head.src_mac,
            "dst_mac": head.dst_mac,
            "frame": head.frame if self.keep_frames else b"",
            "linktype": head.linktype,
        }

    # ------------------------------------------------------------------ IPv4 / UDP
    def _ipv4(self, head: _Head) -> PacketEvent | None:
        frame, off = head.frame, head.off
        if len(frame) < off + 28:
            return None
        vihl = frame[off]
        ihl = (vihl & 0x0F) * 4
        if vihl >> 4 != 4 or ihl < 20 or frame[off + 9] != IPPROTO_UDP:
            return None
        if _u16(frame, off + 6)[0] & 0x3FFF:
            return None  # a fragment: netboot traffic never fragments
        u = off + ihl
        if len(frame) < u + 8:
            return None
        sport, dport, ulen, _csum = _u16x4(frame, u)
        end = min(len(frame), u + ulen) if ulen >= 8 else len(frame)
        key = (
            frame[off + 12 : off + 24]
            if ihl == 20
            else frame[off + 12 : off + 20] + frame[u : u + 4]
        )
        flow = self._flows.get(key)
        if flow is not None and not (dport == 69 and end - u >= 10 and frame[u + 9] in (1, 2)):
            return self._tftp_flow(head, u, end, ulen, flow)
        if dport == 67 or dport == 68 or sport == 67 or sport == 68:
            return self._dhcp(head, u, end)
        if dport == 69:
            return self._request(head, u, end, key)
        if dport == MDNS_PORT or sport == MDNS_PORT:
            self.announcement = parse_announcement(frame[u + 8 : end])
            if self.announcement is not None:
                self.announcement_src = (head.src_mac, _ntoa(key[0:4]))
            return None
        if self._pending:
            # a first answer from a server's new port: (client ip, client port, server ip)
            pkey = key[4:8] + key[10:12] + key[0:4]
            xfer = self._pending.get(pkey)
            if xfer is not None:
                flow = self._open_flows(xfer, key, sport, dport)
                return self._tftp_flow(head, u, end, ulen, flow)
        return None

    def _open_flows(self, xfer: TransferState, key: bytes, sport: int, dport: int) -> _Flow:
        """Register both directions of a server session (``key`` is server → client)."""
        if len(self._flows) > MAX_FLOWS:
            for old in list(self._flows)[: MAX_FLOWS // 2]:
                del self._flows[old]
        server, client = xfer.server_ip, xfer.client_ip
        down = _Flow(xfer, True, server, client, sport, dport)
        up = _Flow(xfer, False, client, server, dport, sport)
        self._flows[key] = down
        self._flows[key[4:8] + key[0:4] + key[10:12] + key[8:10]] = up
        return down

    def _dhcp(self, head: _Head, u: int, end: int) -> PacketEvent | None:
        frame, off = head.frame, head.off
        try:
            msg = dhcp.DhcpPacket.decode(frame[u + 8 : end])
        except dhcp.DhcpDecodeError:
            self.malformed += 1
            return None
        kind = msg.message_type
        hlen = min(msg.hlen, 16)
        chaddr = self._mac(msg.chaddr[:hlen]) if hlen else None
        pxe_raw = msg.get(43)
        menu: list[str] | None = None
        if pxe_raw is not None:
            menu = [item.description for item in dhcp.parse_pxe(pxe_raw).menu]
        guid = msg.client_guid
        sport, dport = _u16x2(frame, u)
        return DhcpPacketEvent(
            **self._common(head),
            src_ip=_ntoa(frame[off + 12 : off + 16]),
            dst_ip=_ntoa(frame[off + 16 : off + 20]),
            src_port=sport,
            dst_port=dport,
            msg_type=dhcp.MESSAGE_TYPES.get(kind) if kind is not None else None,
            op=msg.op,
            xid=f"0x{msg.xid:08x}",
            chaddr=chaddr,
            ciaddr=msg.ciaddr,
            yiaddr=msg.yiaddr,
            siaddr=msg.siaddr,
            giaddr=msg.giaddr,
            server_id=msg.server_id,
            vendor_class=msg.vendor_class,
            tftp_server=msg.tftp_server_name,
            bootfile=msg.bootfile,
            client_arch=msg.client_arch,
            client_uuid=guid.hex() if guid is not None else None,
            pxe_menu=menu,
            pxe_raw=pxe_raw.hex() if pxe_raw is not None else None,
            parameter_list=msg.parameter_list,
        )

    def _arp(self, head: _Head) -> PacketEvent | None:
        frame, off = head.frame, head.off
        if len(frame) < off + 28:
            return None
        _htype, ptype, hlen, plen, op = struct.unpack_from("!HHBBH", frame, off)
        if ptype != ETH_P_IP or hlen != 6 or plen != 4:
            return None
        return ArpPacketEvent(
            **self._common(head),
            op=_ARP_OPS.get(op),
            sender_mac=self._mac(frame[off + 8 : off + 14]),
            sender_ip=_ntoa(frame[off + 14 : off + 18]),
            target_mac=self._mac(frame[off + 18 : off + 24]),
            target_ip=_ntoa(frame[off + 24 : off + 28]),
        )

    # ------------------------------------------------------------------ TFTP
    def _request(self, head: _Head, u: int, end: int, key: bytes) -> PacketEvent | None:
        """A packet to port 69 outside any known transfer: a read or write request."""
        frame, i, ts = head.frame, head.i, head.ts
        pkt = tftp.decode(frame[u + 8 : end])
        if pkt is None or pkt.opcode not in (tftp.RRQ, tftp.WRQ):
            self.malformed += 1
            return None
        sport, dport = _u16x2(frame, u)
        client_ip = _ntoa(key[0:4])
        server_ip = _ntoa(key[4:8])
        pkey = key[0:4] + key[8:10] + key[4:8]
        op = _OPCODES[pkt.opcode]
        xfer = self._pending.get(pkey)
        if (
            xfer is not None
            and xfer.file == pkt.filename
            and xfer.opcode == op
            and (
                xfer.status is None or (xfer.status in _REFUSED and ts - xfer.last_ns < _REPEAT_NS)
            )
        ):
            # the same request again from the same port: a retransmission (the client did not
            # get, or did not take, the answer)
            xfer.requests += 1
            if xfer.answered:
                self.repeat = xfer
            if len(xfer.request_is) < 20:
                xfer.request_is.append(i)
        else:
            self.transfers += 1
            xfer = TransferState(
                id=self.transfers,
                file=pkt.filename,
                opcode=op,
                client_ip=client_ip,
                client_port=sport,
                server_ip=server_ip,
                client_mac=head.src_mac,
                first_i=i,
                first_ns=ts,
                options=dict(pkt.options),
                request_is=[i],
            )
            self._pending[pkey] = xfer
            self.started = xfer
            if len(self._pending) > MAX_FLOWS:
                for old in list(self._pending)[: MAX_FLOWS // 2]:
                    del self._pending[old]
        xfer.last_ns, xfer.last_i = ts, i
        return TftpPacketEvent(
            **self._common(head),
            src_ip=client_ip,
            dst_ip=server_ip,
            src_port=sport,
            dst_port=dport,
            mac=xfer.mac,
            opcode=op,
            file=pkt.filename,
            mode=pkt.mode,
            options=dict(pkt.options),
            transfer=xfer.id,
        )

    def _block(
        self,
        i: int,
        ts: int,
        t: float,
        frame: bytes,
        u: int,
        end: int,
        ulen: int,
        flow: _Flow,
        macs: tuple[str | None, str | None],
        linktype: int,
    ) -> TftpBlockEvent:
        """DATA or ACK of a known transfer: nearly every packet of a boot, so kept short."""
        number = frame[u + 10] << 8 | frame[u + 11]
        xfer = self.xfer = flow.xfer
        xfer.last_ns = ts
        xfer.last_i = i
        length: int | None = None
        if frame[u + 9] == 3:  # DATA
            opcode = "DATA"
            length = (ulen if ulen >= 12 else end - u) - 12
            if flow.sends_data:
                if xfer.server_port is None and flow.from_server:
                    xfer.server_port, xfer.answer_ns = flow.src_port, ts
                ahead = (number - xfer.next_block) & 0xFFFF
                if ahead < 0x8000 and xfer.status is None:
                    if ahead:
                        # TFTP is lock-step: block N comes only after the ACK of N-1, so the
                        # capture missed ``ahead`` blocks the Pi did receive (a busy capture
                        # drops frames); count them as full blocks
                        xfer.missed += ahead
                        xfer.bytes += ahead * xfer.blksize
                        xfer.blocks += ahead
                    xfer.bytes += length
                    xfer.blocks += 1
                    xfer.next_block = (number + 1) & 0xFFFF
                    if xfer.keep and xfer.data is not None and len(xfer.data) < xfer.keep:
                        xfer.data += frame[u + 12 : u + 12 + length]
                    if length < xfer.blksize:
                        xfer.status = "complete"
                        xfer.end_i = i
                        self.finished.append(xfer)
                else:
                    xfer.duplicates += 1
        else:
            opcode = "ACK"
            if not flow.sends_data:
                if number == xfer.last_ack:
                    xfer.repeated_acks += 1
                xfer.last_ack = number
        frame_out = frame if self.keep_frames else b""
        return TftpBlockEvent(i, t, ts, frame_out, linktype, flow, macs, opcode, number, length)

    def _tftp_flow(
        self, head: _Head, u: int, end: int, ulen: int, flow: _Flow
    ) -> PacketEvent | None:
        """A packet of a known transfer (DATA and ACK go to ``_block``)."""
        frame, i, ts = head.frame, head.i, head.ts
        if end - u < 10:
            self.malformed += 1
            return None
        if end - u >= 12 and frame[u + 8] == 0 and frame[u + 9] in (3, 4):
            macs = (head.src_mac, head.dst_mac)
            return self._block(i, ts, head.t, frame, u, end, ulen, flow, macs, head.linktype)
        xfer = self.xfer = flow.xfer
        xfer.last_ns, xfer.last_i = ts, i
        pkt = tftp.decode(frame[u + 8 : end])
        if pkt is None or pkt.opcode not in (tftp.ERROR, tftp.OACK):
            self.malformed += 1
            return None
        event = TftpPacketEvent(
            **self._common(head),
            src_ip=flow.src_ip,
            dst_ip=flow.dst_ip,
            src_port=flow.src_port,
            dst_port=flow.dst_port,
            mac=xfer.mac,
            opcode=_OPCODES[pkt.opcode],
            file=xfer.file,
            transfer=xfer.id,
        )
        if pkt.opcode == tftp.OACK:
            event.options = dict(pkt.options)
            if flow.from_server:
                if xfer.server_port is None:
                    xfer.server_port, xfer.answer_ns = flow.src_port, ts
                if xfer.accepted is None:
                    xfer.accepted = dict(pkt.options)
                    try:
                        xfer.blksize = int(pkt.options.get("blksize", "512"))
                    except ValueError:
                        xfer.blksize = 512
                    tsize = pkt.options.get("tsize")
                    xfer.tsize = int(tsize) if tsize and tsize.isdigit() else None
            return event
        event.error_code = pkt.code
        event.error_msg = pkt.message
        if xfer.status is not None:
            return event
        if flow.from_server:
            if xfer.server_port is None:
                xfer.server_port, xfer.answer_ns = flow.src_port, ts
            xfer.status = {1: "not-found", 2: "denied"}.get(pkt.code, "incomplete")
        else:
            if (
                pkt.code == 5
                and xfer.server_port is not None
                and xfer.server_port != (flow.dst_port)
            ):
                return event  # the client refusing a second server session: not the end
            xfer.error_from_client = True
            # a probe stops at once after the first answer; a client that waited (repeated its
            # ACK, saw blocks again, took a second or more) gave up instead
            quick = (ts - (xfer.answer_ns or ts)) < _PROBE_NS
            probe = xfer.blocks <= 1 and quick and not xfer.duplicates and not xfer.repeated_acks
            xfer.status = "probe" if probe else "timeout"
        xfer.error_code, xfer.error_msg, xfer.end_i = pkt.code, pkt.message, i
        self.finished.append(xfer)
        return event
