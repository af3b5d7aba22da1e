"""DHCP/BOOTP as a Raspberry Pi's boot code speaks it: codec, the Pi's packets, a raw client.

Three layers, each usable alone:

- the codec: ``DhcpPacket.decode``/``encode`` (ordered options, repeated options concatenated as
  RFC 3396 says) and ``parse_pxe`` for option 43's PXE sub-options (6 discovery control, 8 boot
  servers, 9 boot menu, 10 prompt);
- the Pi's packets, byte-exact where a capture exists (netboot.md §2): ``pi3_rom_discover`` (the
  BCM2837 mask ROM: xid 0x26f30339, GUID 0x44×16), ``pi4_discover``/``pi5_discover`` and
  ``pi4_request`` (the BCM2711/BCM2712 EEPROM bootloaders: random xid, GUID "RPi4"/"RPi5" +
  board revision + MAC + serial; the REQUEST carries option 60 on current firmware, §12),
  framed by ``client_frame`` as the ROM frames them (0.0.0.0 → broadcast, TTL 128, IP id 0, UDP
  checksum 0);
- a client over ``steps.wire.rawlink.RawLink``: ``collect`` every OFFER/ACK for one transaction, and
  ``probe_offers`` — one DISCOVER from an interface and every offer that answers it within a
  window — which the network preflight uses to find other DHCP servers and other proxies.
"""

from __future__ import annotations

import os
import struct
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace

from steps.errors import Cancelled
from steps.wire.netframes import (
    BROADCAST_MAC,
    UdpPacket,
    ip_bytes,
    ip_str,
    mac_bytes,
    mac_str,
    parse_frame,
    udp_frame,
)
from steps.wire.pimodels import PI_MODELS
from steps.wire.pimodels import Model as Model  # re-exported: dhcp.Model names the models
from steps.wire.rawlink import RawLink, random_local_mac

DISCOVER, OFFER, REQUEST, DECLINE, ACK, NAK, RELEASE, INFORM = range(1, 9)
MESSAGE_TYPES = {
    DISCOVER: "DISCOVER",
    OFFER: "OFFER",
    REQUEST: "REQUEST",
    DECLINE: "DECLINE",
    ACK: "ACK",
    NAK: "NAK",
    RELEASE: "RELEASE",
    INFORM: "INFORM",
}
MAGIC_COOKIE = b"\x63\x82\x53\x63"
PXE_VENDOR_CLASS = b"PXEClient:Arch:00000:UNDI:002001"
PI3_ROM_XID = 0x26F30339
RPI_BOOT = "Raspberry Pi Boot"
CLIENT_PORT = 68
SERVER_PORT = 67
#: Pi 3 ROM parameter request list (netboot.md §2.1): 43, 60, 67, 128-135, 66.
PI3_ROM_PRL = bytes([43, 60, 67, *range(128, 136), 66])
#: bootcode.bin's second round adds netmask and router (14 entries).
PI3_BOOTCODE_PRL = bytes([1, 3, 43, 60, 67, *range(128, 136), 66])
#: Pi 4 bootloader parameter request list (netboot.md §2.2).
PI4_PRL = bytes([1, 3, 43, 60, 66, 67, *range(128, 136)])
#: A Raspberry Pi 4 Model B 4 GB, revision 1.1 (new-style revision code).
PI4_BOARD_REV = 0x00C03111
#: A Raspberry Pi 5 8 GB (eeprom-bootloader.adoc, DHCP_OPTION97 example).
PI5_BOARD_REV = 0x00D04170

_FIXED = struct.Struct("!BBBBIHH4s4s4s4s16s64s128s")


class DhcpDecodeError(ValueError):
    """The bytes are not a BOOTP/DHCP message."""


# ----------------------------------------------------------------------------- option 43 (PXE)


@dataclass(frozen=True)
class BootMenuItem:
    """One entry of PXE sub-option 9: a boot server type and its description."""

    type: int
    description: str


@dataclass(frozen=True)
class PxeOptions:
    """Option 43 decoded as PXE vendor sub-options (PXE spec 2.1, table 2-1)."""

    raw: bytes
    suboptions: tuple[tuple[int, bytes], ...]
    well_formed: bool
    """Every sub-option fit in the option and the list ended with 0xff."""
    discovery_control: int | None = None
    menu: tuple[BootMenuItem, ...] = ()
    prompt: tuple[int, str] | None = None
    """Sub-option 10: (timeout, text)."""
    boot_servers: tuple[tuple[int, tuple[str, ...]], ...] = ()
    """Sub-option 8: (server type, addresses)."""

    @property
    def has_rpi_menu(self) -> bool:
        """A boot-menu entry's description contains "Raspberry Pi Boot" (what a Pi 4 looks for)."""
        return any(RPI_BOOT in item.description for item in self.menu)

    @property
    def has_rpi_string(self) -> bool:
        """True if "Raspberry Pi Boot" is anywhere in the option (what the Pi 3 ROM looks for)."""
        return RPI_BOOT.encode() in self.raw


def parse_pxe(raw: bytes) -> PxeOptions:
    """Decode option 43's sub-options, tolerating garbage (a raw string is "not well formed")."""
    subs: list[tuple[int, bytes]] = []
    i = 0
    ended = False
    ok = True
    while i < len(raw):
        code = raw[i]
        if code == 0:
            i += 1
            continue
        if code == 255:
            ended = True
            break
        if i + 1 >= len(raw) or i + 2 + raw[i + 1] > len(raw):
            ok = False
            break
        length = raw[i + 1]
        subs.append((code, raw[i + 2 : i + 2 + length]))
        i += 2 + length
    control: int | None = None
    menu: list[BootMenuItem] = []
    prompt: tuple[int, str] | None = None
    servers: list[tuple[int, tuple[str, ...]]] = []
    for code, value in subs:
        if code == 6 and len(value) == 1:
            control = value[0]
        elif code == 9:
            j = 0
            while j + 3 <= len(value):
                (kind,) = struct.unpack("!H", value[j : j + 2])
                n = value[j + 2]
                if j + 3 + n > len(value):
                    ok = False
                    break
                desc = value[j + 3 : j + 3 + n].decode("latin-1")
                menu.append(BootMenuItem(kind, desc))
                j += 3 + n
            if j != len(value):
                ok = False
        elif code == 10 and value:
            prompt = (value[0], value[1:].decode("latin-1"))
        elif code == 8:
            j = 0
            while j + 3 <= len(value):
                (kind,) = struct.unpack("!H", value[j : j + 2])
                count = value[j + 2]
                addrs = tuple(
                    ip_str(value[j + 3 + 4 * k : j + 7 + 4 * k])
                    for k in range(count)
                    if j + 7 + 4 * k <= len(value)
                )
                servers.append((kind, addrs))
                j += 3 + 4 * count
    return PxeOptions(
        raw=raw,
        suboptions=tuple(subs),
        well_formed=ok and ended,
        discovery_control=control,
        menu=tuple(menu),
        prompt=prompt,
        boot_servers=tuple(servers),
    )


def build_pxe(menu: Sequence[str] = (RPI_BOOT,), *, control: int = 3, prompt: str = "PXE") -> bytes:
    """Option 43 as dnsmasq builds it for ``pxe-service=0,"<menu>"`` (netboot.md §3.1)."""
    out = bytes([6, 1, control])
    out += bytes([10, 1 + len(prompt), 0]) + prompt.encode()
    items = b"".join(struct.pack("!HB", 0, len(d)) + d.encode() for d in menu)
    out += bytes([9, len(items)]) + items
    return out + b"\xff"


# ----------------------------------------------------------------------------------- packets


@dataclass(frozen=True)
class DhcpPacket:
    """One BOOTP/DHCP message with its options in wire order."""

    op: int
    xid: int
    chaddr: bytes
    """The 16-byte client hardware address field (MAC + 10 zero bytes for Ethernet)."""
    options: tuple[tuple[int, bytes], ...] = ()
    htype: int = 1
    hlen: int = 6
    hops: int = 0
    secs: int = 0
    flags: int = 0
    ciaddr: str = "0.0.0.0"
    yiaddr: str = "0.0.0.0"
    siaddr: str = "0.0.0.0"
    giaddr: str = "0.0.0.0"
    sname: bytes = b""
    file: bytes = b""
    cookie: bool = True
    """False: a plain BOOTP message without the DHCP magic cookie."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "chaddr", self.chaddr.ljust(16, b"\0")[:16])

    # -------------------------------------------------------------------- codec
    @classmethod
    def decode(cls, data: bytes) -> DhcpPacket:
        """Parse a BOOTP/DHCP payload (the UDP payload).

        Raises:
            DhcpDecodeError: too short, or a malformed option list.
        """
        if len(data) < _FIXED.size:
            raise DhcpDecodeError(f"{len(data)} bytes is too short for BOOTP (236 at least)")
        fields = _FIXED.unpack_from(data)
        op, htype, hlen, hops, xid, secs, flags = fields[:7]
        ciaddr, yiaddr, siaddr, giaddr, chaddr, sname, file = fields[7:]
        options: list[tuple[int, bytes]] = []
        rest = data[_FIXED.size :]
        cookie = rest[:4] == MAGIC_COOKIE
        if cookie:
            i = 4
            while i < len(rest):
                code = rest[i]
                if code == 0:
                    i += 1
                    continue
                if code == 255:
                    break
                if i + 1 >= len(rest) or i + 2 + rest[i + 1] > len(rest):
                    raise DhcpDecodeError(f"option {code} runs past the end of the packet")
                length = rest[i + 1]
                options.append((code, rest[i + 2 : i + 2 + length]))
                i += 2 + length
        return cls(
            op=op,
            xid=xid,
            chaddr=chaddr,
            options=tuple(options),
            htype=htype,
            hlen=hlen,
            hops=hops,
            secs=secs,
            flags=flags,
            ciaddr=ip_str(ciaddr),
            yiaddr=ip_str(yiaddr),
            siaddr=ip_str(siaddr),
            giaddr=ip_str(giaddr),
            sname=sname.rstrip(b"\0"),
            file=file.rstrip(b"\0"),
            cookie=cookie,
        )

    def encode(self, *, min_size: int = 0) -> bytes:
        """The payload bytes; ``min_size`` pads with zeros (e.g. 300 for old BOOTP relays)."""
        out = _FIXED.pack(
            self.op,
            self.htype,
            self.hlen,
            self.hops,
            self.xid,
            self.secs,
            self.flags,
            ip_bytes(self.ciaddr),
            ip_bytes(self.yiaddr),
            ip_bytes(self.siaddr),
            ip_bytes(self.giaddr),
            self.chaddr.ljust(16, b"\0")[:16],
            self.sname.ljust(64, b"\0")[:64],
            self.file.ljust(128, b"\0")[:128],
        )
        if self.cookie:
            out += MAGIC_COOKIE
            for code, value in self.options:
                for start in range(0, max(len(value), 1), 255):  # RFC 3396 split
                    chunk = value[start : start + 255]
                    out += bytes([code, len(chunk)]) + chunk
            out += b"\xff"
        return out.ljust(min_size, b"\0")

    # -------------------------------------------------------------------- options
    def get(self, code: int) -> bytes | None:
        """Option ``code``'s value (repeated instances concatenated), or None."""
        parts = [value for c, value in self.options if c == code]
        return b"".join(parts) if parts else None

    def has(self, code: int) -> bool:
        """Whether option ``code`` is present."""
        return any(c == code for c, _ in self.options)

    @property
    def mac(self) -> str:
        """The client MAC from chaddr."""
        return mac_str(self.chaddr[: self.hlen or 6])

    @property
    def message_type(self) -> int | None:
        """Option 53 (1 DISCOVER … 8 INFORM), None for plain BOOTP."""
        value = self.get(53)
        return value[0] if value else None

    @property
    def message_name(self) -> str:
        """Option 53 by name ("DISCOVER" …); "BOOTREQUEST"/"BOOTREPLY" without it."""
        kind = self.message_type
        if kind is None:
            return "BOOTREQUEST" if self.op == 1 else "BOOTREPLY"
        return MESSAGE_TYPES.get(kind, str(kind))

    def _ip_option(self, code: int) -> str | None:
        value = self.get(code)
        return ip_str(value) if value and len(value) >= 4 else None

    def _text_option(self, code: int) -> str | None:
        value = self.get(code)
        return value.rstrip(b"\0").decode("latin-1") if value is not None else None

    @property
    def server_id(self) -> str | None:
        """Option 54."""
        return self._ip_option(54)

    @property
    def requested_ip(self) -> str | None:
        """Option 50."""
        return self._ip_option(50)

    @property
    def netmask(self) -> str | None:
        """Option 1."""
        return self._ip_option(1)

    @property
    def router(self) -> str | None:
        """Option 3 (the first router)."""
        return self._ip_option(3)

    @property
    def lease_time(self) -> int | None:
        """Option 51, seconds."""
        value = self.get(51)
        return int.from_bytes(value[:4], "big") if value and len(value) >= 4 else None

    @property
    def vendor_class(self) -> str | None:
        """Option 60."""
        return self._text_option(60)

    @property
    def tftp_server_name(self) -> str | None:
        """Option 66 as text (a trailing NUL, as dnsmasq sends it, is dropped)."""
        return self._text_option(66)

    @property
    def bootfile(self) -> str | None:
        """Option 67."""
        return self._text_option(67)

    @property
    def client_id(self) -> bytes | None:
        """Option 61."""
        return self.get(61)

    @property
    def client_guid(self) -> bytes | None:
        """Option 97 (type byte + 16 bytes)."""
        return self.get(97)

    @property
    def client_arch(self) -> int | None:
        """Option 93 (0 = "x86 BIOS", which every Pi sends)."""
        value = self.get(93)
        return int.from_bytes(value[:2], "big") if value and len(value) >= 2 else None

    @property
    def client_ndi(self) -> tuple[int, ...] | None:
        """Option 94 (type, major, minor)."""
        value = self.get(94)
        return tuple(value) if value is not None else None

    @property
    def parameter_list(self) -> tuple[int, ...]:
        """Option 55."""
        return tuple(self.get(55) or b"")

    @property
    def pxe(self) -> PxeOptions | None:
        """Option 43 decoded, or None without it."""
        value = self.get(43)
        return parse_pxe(value) if value is not None else None

    def summary(self) -> dict[str, object]:
        """The fields a monitor or a self-test report shows, JSON-able."""
        pxe = self.pxe
        return {
            "message": self.message_name,
            "xid": f"0x{self.xid:08x}",
            "mac": self.mac,
            "yiaddr": self.yiaddr,
            "siaddr": self.siaddr,
            "server_id": self.server_id,
            "vendor_class": self.vendor_class,
            "tftp_server_name": self.tftp_server_name,
            "bootfile": self.bootfile,
            "guid": self.client_guid.hex() if self.client_guid is not None else None,
            "pxe_menu": [item.description for item in pxe.menu] if pxe else None,
        }


# ------------------------------------------------------------------------- the Pi's packets


def pi3_mac(serial: str) -> str:
    """The MAC of a Pi 3 with that serial: b8:27:eb + the serial's low 3 bytes (netboot.md §2.2)."""
    low = serial[-6:]
    return "b8:27:eb:" + ":".join(low[i : i + 2] for i in (0, 2, 4))


def pi4_mac(serial: str) -> str:
    """A stand-in MAC for a virtual Pi 4 (a real one's MAC has no link to its serial)."""
    low = serial[-6:]
    return "dc:a6:32:" + ":".join(low[i : i + 2] for i in (0, 2, 4))


def pi3_rom_discover(mac: str) -> DhcpPacket:
    """The DHCPDISCOVER of the Pi 3B mask ROM, byte for byte as in the official capture."""
    return DhcpPacket(
        op=1,
        xid=PI3_ROM_XID,
        chaddr=mac_bytes(mac),
        options=(
            (53, bytes([DISCOVER])),
            (55, PI3_ROM_PRL),
            (93, b"\x00\x00"),
            (94, b"\x01\x02\x01"),
            (97, b"\x00" + b"\x44" * 16),
            (60, PXE_VENDOR_CLASS),
        ),
    )


#: The option-97 FourCCs of the EEPROM bootloaders: Pi 4 (some firmware sends it reversed) and Pi 5.
GUID_MODELS = {b"RPi4": "pi4", b"4iPR": "pi4", b"RPi5": "pi5"}
#: The Pi 3 ROM's constant GUID (a ROM bug: 16 × 0x44), netboot.md §2.1.
PI3_ROM_GUID = b"\x00" + b"\x44" * 16


def pi4_guid(
    mac: str, serial: str, board_rev: int = PI4_BOARD_REV, fourcc: bytes = b"RPi4"
) -> bytes:
    """Option 97 of a Pi 4/5 bootloader.

    ``00`` + FourCC + board revision (4 bytes, little-endian) + the MAC's low 4 bytes (wire order)
    + the serial (4 bytes, little-endian). Source: raspberrypi/documentation
    eeprom-bootloader.adoc (DHCP_OPTION97) and real dnsmasq logs of Pi 4 boots, where serial
    ``5b154510`` with board revision ``0x00a03111`` logs as
    ``00:52:50:69:34:11:31:a0:00:<mac4>:10:45:15:5b`` (netboot.md §12).
    """
    return (
        b"\x00"
        + fourcc
        + struct.pack("<I", board_rev)
        + mac_bytes(mac)[2:]
        + struct.pack("<I", int(serial.rjust(8, "0")[-8:], 16))
    )


@dataclass(frozen=True)
class PiGuid:
    """What a Pi's option 97 says about it."""

    model: str
    """``pi3`` (the 3B ROM's constant GUID or bootcode.bin's serial × 4), ``pi4`` or ``pi5``."""
    serial: str | None
    """8 lower-case hex digits as ``/proc/cpuinfo`` prints them; None when the GUID has none."""
    board_rev: int | None = None
    mac_low: bytes | None = None


def parse_guid(guid: bytes | None) -> PiGuid | None:
    """Read option 97 as a Pi's boot code writes it; None for anything else.

    Three shapes (netboot.md §2.2, §12): the 3B ROM's ``00`` + ``44`` × 16 (no serial);
    bootcode.bin's ``00`` + the serial (little-endian) four times; the Pi 4/5 EEPROM's ``00`` +
    FourCC + board revision (LE) + MAC low 4 bytes + serial (LE).
    """
    if guid is None or len(guid) != 17 or guid[0] != 0:
        return None
    if guid == PI3_ROM_GUID:
        return PiGuid("pi3", None)
    model = GUID_MODELS.get(guid[1:5])
    if model is not None:
        (rev,) = struct.unpack("<I", guid[5:9])
        (serial,) = struct.unpack("<I", guid[13:17])
        return PiGuid(model, f"{serial:08x}", rev, guid[9:13])
    if guid[1:5] == guid[5:9] == guid[9:13] == guid[13:17] and any(guid[1:5]):
        (serial,) = struct.unpack("<I", guid[1:5])
        return PiGuid("pi3", f"{serial:08x}")
    return None


def pi4_discover(
    mac: str,
    serial: str,
    *,
    xid: int | None = None,
    board_rev: int = PI4_BOARD_REV,
    fourcc: bytes = b"RPi4",
) -> DhcpPacket:
    """The DHCPDISCOVER of the Pi 4 EEPROM bootloader (random xid, "RPi4" GUID)."""
    return DhcpPacket(
        op=1,
        xid=int.from_bytes(os.urandom(4), "big") if xid is None else xid,
        chaddr=mac_bytes(mac),
        options=(
            (53, bytes([DISCOVER])),
            (55, PI4_PRL),
            (93, b"\x00\x00"),
            (94, b"\x01\x02\x01"),
            (97, pi4_guid(mac, serial, board_rev, fourcc)),
            (60, PXE_VENDOR_CLASS),
        ),
    )


def pi5_discover(
    mac: str, serial: str, *, xid: int | None = None, board_rev: int = PI5_BOARD_REV
) -> DhcpPacket:
    """The DHCPDISCOVER of the Pi 5 bootloader: the Pi 4's, with the "RPi5" FourCC.

    rpi-eeprom firmware-2712 release notes 2023-10-30: "Update DHCP Option97 to be R,P,i,5 on
    Pi5"; the rest of the DISCOVER (options 55, 93, 94, 60) is the Pi 4's (netboot.md §2.2).
    """
    return pi4_discover(mac, serial, xid=xid, board_rev=board_rev, fourcc=b"RPi5")


def pi4_request(
    discover: DhcpPacket, offer: DhcpPacket, *, vendor_class: bool = True
) -> DhcpPacket:
    """The Pi 4/5 DHCPREQUEST for ``offer`` (selecting state).

    Current bootloaders send option 60 ``PXEClient:Arch:00000:UNDI:002001`` in the REQUEST too
    (real dnsmasq logs of Pi 4 boots, netboot.md §12); ``vendor_class=False`` gives the REQUEST
    of the 2020 firmware without it (rpi-eeprom #82).
    """
    server = offer.server_id
    opts: list[tuple[int, bytes]] = [
        (53, bytes([REQUEST])),
        (50, ip_bytes(offer.yiaddr)),
    ]
    if server:
        opts.append((54, ip_bytes(server)))
    keep = (55, 93, 94, 97, 60) if vendor_class else (55, 93, 94, 97)
    opts += [(c, v) for c, v in discover.options if c in keep]
    return replace(discover, options=tuple(opts))


def client_frame(packet: DhcpPacket, *, src_mac: str | None = None, ttl: int = 128) -> bytes:
    """A client message framed as the boot ROM sends it: 0.0.0.0:68 → broadcast:67.

    IP id 0, no DF, TTL 128 and UDP checksum 0 ("no checksum"), as in netboot.md §2.1.
    """
    return udp_frame(
        src_mac=src_mac or packet.mac,
        dst_mac=BROADCAST_MAC,
        src_ip="0.0.0.0",
        dst_ip="255.255.255.255",
        sport=CLIENT_PORT,
        dport=SERVER_PORT,
        payload=packet.encode(),
        ttl=ttl,
        ident=0,
        checksum=False,
    )


def server_frame(packet: DhcpPacket, *, src_mac: str, src_ip: str, dst_ip: str) -> bytes:
    """A server reply (for tests that play a DHCP server): src:67 → dst:68, checksum on."""
    dst_mac = BROADCAST_MAC if dst_ip == "255.255.255.255" else packet.mac
    return udp_frame(
        src_mac=src_mac,
        dst_mac=dst_mac,
        src_ip=src_ip,
        dst_ip=dst_ip,
        sport=SERVER_PORT,
        dport=CLIENT_PORT,
        payload=packet.encode(),
    )


# ------------------------------------------------------------------------------ the client


@dataclass(frozen=True)
class Offer:
    """A server's reply (OFFER, ACK or NAK) as received, with where it came from."""

    packet: DhcpPacket
    src_mac: str
    src_ip: str
    elapsed: float
    """Seconds from our request to this reply."""

    @property
    def server(self) -> str:
        """The replying server: option 54, else the IP source (what the Pi's ROM uses)."""
        return self.packet.server_id or self.src_ip

    @property
    def is_proxy(self) -> bool:
        """A proxy-DHCP offer: no address offered, PXE data instead."""
        p = self.packet
        return p.yiaddr == "0.0.0.0" and (
            p.has(43) or (p.vendor_class or "").startswith("PXEClient")
        )

    @property
    def offers_address(self) -> bool:
        """A real DHCP server's offer (an address in yiaddr)."""
        return self.packet.yiaddr != "0.0.0.0"

    @property
    def boots_pi(self) -> bool:
        """Carries "Raspberry Pi Boot" in option 43, so a Pi would take its TFTP server."""
        pxe = self.packet.pxe
        return pxe is not None and pxe.has_rpi_string

    def to_data(self) -> dict[str, object]:
        """JSON-able summary."""
        return {
            **self.packet.summary(),
            "src_mac": self.src_mac,
            "src_ip": self.src_ip,
            "server": self.server,
            "proxy": self.is_proxy,
            "elapsed": round(self.elapsed, 3),
        }


def reply_from_frame(frame: bytes, *, xid: int, mac: str) -> tuple[DhcpPacket, UdpPacket] | None:
    """The DHCP reply in ``frame`` if it answers transaction ``xid`` of client ``mac``."""
    pkt = parse_frame(frame)
    if not isinstance(pkt, UdpPacket) or pkt.dport != CLIENT_PORT or pkt.sport != SERVER_PORT:
        return None
    try:
        msg = DhcpPacket.decode(pkt.payload)
    except DhcpDecodeError:
        return None
    if msg.op != 2 or msg.xid != xid or msg.mac != mac.lower():
        return None
    return msg, pkt


def collect(
    link: RawLink,
    *,
    xid: int,
    mac: str,
    until: float,
    started: float,
    kinds: Iterable[int] = (OFFER,),
    done: Callable[[list[Offer]], bool] | None = None,
    cancel: threading.Event | None = None,
) -> list[Offer]:
    """Every reply of the given kinds for (xid, mac) until the monotonic deadline ``until``.

    Stops early when ``done(replies)`` says so. Raises Cancelled if ``cancel`` is set.
    """
    wanted = set(kinds)
    replies: list[Offer] = []
    while True:
        if cancel is not None and cancel.is_set():
            raise Cancelled()
        left = until - time.monotonic()
        if left <= 0:
            return replies
        frame = link.recv(min(left, 0.1))
        if frame is None:
            continue
        got = reply_from_frame(frame, xid=xid, mac=mac)
        if got is None:
            continue
        msg, udp_pkt = got
        if (msg.message_type or OFFER) not in wanted:
            continue
        replies.append(Offer(msg, udp_pkt.src_mac, udp_pkt.src_ip, time.monotonic() - started))
        if done is not None and done(replies):
            return replies


def discover_for(model: Model, mac: str, serial: str, *, xid: int | None = None) -> DhcpPacket:
    """The model's DISCOVER for this MAC and serial."""
    if model == "pi3":
        return pi3_rom_discover(mac)
    spec = PI_MODELS[model]
    assert spec.fourcc is not None and spec.board_rev is not None
    return pi4_discover(mac, serial, xid=xid, board_rev=spec.board_rev, fourcc=spec.fourcc)


@dataclass
class ProbeResult:
    """What one DISCOVER drew from the segment."""

    mac: str
    discover: DhcpPacket
    offers: list[Offer] = field(default_factory=list)

    @property
    def proxies(self) -> list[Offer]:
        """Offers carrying PXE data without an address."""
        return [o for o in self.offers if o.is_proxy]

    @property
    def dhcp_servers(self) -> list[Offer]:
        """Offers of an address."""
        return [o for o in self.offers if o.offers_address]


def probe_offers(
    iface: str,
    mac: str | None = None,
    *,
    model: Model = "pi4",
    timeout: float = 3.0,
    serial: str = "00000000",
    cancel: threading.Event | None = None,
) -> list[Offer]:
    """Send one Pi DISCOVER from ``iface`` and return every OFFER that answers within ``timeout``.

    ``mac`` None uses a random locally-administered MAC. With ``model="pi4"`` (the default) the
    DISCOVER carries the "RPi4" GUID, which proxies that serve only Pis match, so they answer a
    MAC that is in no OUI list. Needs root (raw socket): raises UsageError otherwise.
    """
    return probe(iface, mac, model=model, timeout=timeout, serial=serial, cancel=cancel).offers


def probe(
    iface: str,
    mac: str | None = None,
    *,
    model: Model = "pi4",
    timeout: float = 3.0,
    serial: str = "00000000",
    cancel: threading.Event | None = None,
    settle: float | None = None,
) -> ProbeResult:
    """``probe_offers`` with the DISCOVER sent and the MAC used (for evidence in a report).

    ``settle`` None listens for the whole ``timeout``. A number ends the probe that long after
    the first offer of an address: proxies do not ping before answering (they hand out no
    address), so they are not slower than a DHCP server, which may ping for seconds first.
    """
    mac = (mac or random_local_mac()).lower()
    packet = discover_for(model, mac, serial)
    with RawLink(iface, mac) as link:
        started = time.monotonic()
        deadline = started + timeout
        link.send(client_frame(packet, src_mac=mac))

        def listen(until: float, done: Callable[[list[Offer]], bool] | None) -> list[Offer]:
            return collect(
                link, xid=packet.xid, mac=mac, until=until, started=started, done=done,
                cancel=cancel,
            )  # fmt: skip

        if settle is None:
            offers = listen(deadline, None)
        else:
            offers = listen(deadline, lambda got: any(o.offers_address for o in got))
            if any(o.offers_address for o in offers):
                offers += listen(min(deadline, time.monotonic() + settle), None)
    return ProbeResult(mac, packet, offers)
