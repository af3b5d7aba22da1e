"""A made-up LAN written frame by frame with the project's own builders (no namespaces).

For the rules the namespace lab cannot stage cheaply (a menu in the wrong order, a request sent
to aa:aa:aa:aa:aa:aa, a block-number wrap, a Pi that ignores offers, Linux's DHCP and the app's
mDNS announcement …) and for the benchmark's large captures. Every frame comes from
``steps.wire.netframes``/``dhcp``/``tftp`` — the builders the virtual Pi puts on real wires —
and dnsmasq's answers are written as netboot.md §3-§6 record them.

    wire = Wire()
    pi = Pi.pi4()
    wire.good_boot(pi)
    records = wire.records
"""

from __future__ import annotations

import itertools
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from steps.wire import dhcp, tftp
from steps.wire.netframes import (
    ARP_REPLY,
    ARP_REQUEST,
    ZERO_MAC,
    arp_frame,
    ip_bytes,
    udp_frame,
)
from steps.wire.pcap import LINKTYPE_ETHERNET, Record
from tests.support.boot_tree import CONFIG_TXT

T0 = 1_760_000_000_000_000_000
SERVER_IP, SERVER_MAC = "10.99.0.1", "02:00:00:00:00:01"
ROUTER_IP, ROUTER_MAC = "10.99.0.254", "02:00:00:00:00:fe"
PI3_FILES = [
    ("bootcode.bin", 52_000),
    ("bootsig.bin", None),
    ("{serial}/start.elf", None),
    ("config.txt", 332),
    ("start.elf", 60_000),
    ("fixup.dat", 7_000),
    ("cmdline.txt", 78),
    ("bcm2710-rpi-3-b.dtb", 30_000),
    ("kernel6647v7.img", 90_000),
    ("rootfs-piCore-15.0.gz", 120_000),
    ("modules-6.6.47-piCore-v7.gz", 40_000),
    ("overlay.gz", 80_000),
]
PI4_FILES = [
    ("{serial}/start4.elf", None),
    ("{serial}/start.elf", None),
    ("config.txt", 332),
    ("start4.elf", 70_000),
    ("fixup4.dat", 5_400),
    ("cmdline.txt", 78),
    ("bcm2711-rpi-4-b.dtb", 50_000),
    ("kernel6647v8.img", 110_000),
    ("rootfs-piCore-15.0.gz", 120_000),
    ("modules-6.6.47-piCore-v8.gz", 45_000),
    ("overlay.gz", 80_000),
]
PI5_FILES = [
    ("{serial}/config.txt", None),
    ("config.txt", None),
    ("pieeprom.sig", None),
    ("rootfs-piCore64-16.0.gz", 120_000),
    ("modules-6.12.25-piCore-v8-16k.gz", 45_000),
    ("overlay.gz", 80_000),
    ("bcm2712-rpi-5-b.dtb", 60_000),
    ("overlays/overlay_map.dtb", None),
    ("cmdline.txt", 78),
    ("kernel61225v816k.img", 130_000),
]
"""The Pi 5 bootloader's reads (netboot.md §4.4, §12): no start*.elf; config.txt first (its
per-device copy probed), the self-update probe, then what start.elf (built in) reads."""
PI5_CONFIG = (
    "[PI5]\ninitramfs rootfs-piCore64-16.0.gz,modules-6.12.25-piCore-v8-16k.gz,overlay.gz "
    "followkernel\nkernel kernel61225v816k.img\n[ALL]\ncmdline cmdline.txt\n"
)
PROBED = {"start4.elf", "fixup4.dat", "kernel6647v8.img", "kernel61225v816k.img"}
"""Files the Pi 4 firmware probes (ERROR 0 "Early terminate") before reading them."""


@dataclass
class Pi:
    """One Pi on the made-up LAN."""

    model: str
    mac: str
    serial: str
    ip: str
    xid: int
    ports: Iterable[int] = field(default_factory=lambda: itertools.count(49152))

    @classmethod
    def pi3(cls, n: int = 0) -> Pi:
        serial = f"{0x5E1F0000 + n:08x}"
        return cls(
            "pi3",
            dhcp.pi3_mac(serial),
            serial,
            f"10.99.{1 + n // 200}.{n % 200 + 20}",
            dhcp.PI3_ROM_XID,
        )

    @classmethod
    def pi4(cls, n: int = 0) -> Pi:
        serial = f"{0x7A4E0000 + n:08x}"
        return cls(
            "pi4",
            dhcp.pi4_mac(serial),
            serial,
            f"10.98.{1 + n // 200}.{n % 200 + 20}",
            0x10203040 + n,
            itertools.count(40084),
        )

    @classmethod
    def pi5(cls, n: int = 0) -> Pi:
        serial = f"{0x5A5E0000 + n:08x}"
        mac = "2c:cf:67:" + ":".join(serial[i : i + 2] for i in (2, 4, 6))
        return cls(
            "pi5",
            mac,
            serial,
            f"10.97.{1 + n // 200}.{n % 200 + 20}",
            0x50505050 + n,
            itertools.count(41000),
        )

    def discover(self) -> dhcp.DhcpPacket:
        if self.model == "pi5":  # the Pi 4's DISCOVER with an "RPi5" GUID
            pi4 = dhcp.pi4_discover(self.mac, self.serial, xid=self.xid)
            guid = dhcp.pi4_guid(self.mac, self.serial, 0x00D04170, b"RPi5")
            return replace(pi4, options=tuple((c, guid if c == 97 else v) for c, v in pi4.options))
        return dhcp.discover_for(self.model, self.mac, self.serial, xid=self.xid)  # type: ignore[arg-type]


class Wire:
    """Records in capture order; every builder appends and advances the clock a little."""

    def __init__(self, t0: int = T0, gap: float = 0.0002) -> None:
        self.records: list[Record] = []
        self.now = t0
        self.gap = int(gap * 1e9)
        self.eph = itertools.count(33000)

    def wait(self, seconds: float) -> None:
        self.now += int(seconds * 1e9)

    def add(self, frame: bytes) -> int:
        self.now += self.gap
        self.records.append((self.now, LINKTYPE_ETHERNET, frame, max(len(frame), 60)))
        return len(self.records) - 1

    # ---------------------------------------------------------------- DHCP
    def client(self, pi: Pi, packet: dhcp.DhcpPacket) -> int:
        return self.add(dhcp.client_frame(packet, src_mac=pi.mac))

    def reply(
        self,
        pi: Pi,
        kind: int,
        *,
        server_ip: str,
        server_mac: str,
        yiaddr: str = "0.0.0.0",
        options: list[tuple[int, bytes]] | None = None,
        xid: int | None = None,
    ) -> int:
        opts = [(53, bytes([kind])), (54, ip_bytes(server_ip)), *(options or [])]
        packet = dhcp.DhcpPacket(
            op=2,
            xid=pi.xid if xid is None else xid,
            chaddr=bytes.fromhex(pi.mac.replace(":", "")),
            yiaddr=yiaddr,
            flags=0x8000,
            options=tuple(opts),
        )
        return self.add(
            dhcp.server_frame(packet, src_mac=server_mac, src_ip=server_ip, dst_ip=BROADCAST_IP)
        )

    def offer(self, pi: Pi, *, server_ip: str = ROUTER_IP, server_mac: str = ROUTER_MAC) -> int:
        return self.reply(
            pi,
            dhcp.OFFER,
            server_ip=server_ip,
            server_mac=server_mac,
            yiaddr=pi.ip,
            options=[
                (1, ip_bytes("255.255.255.0")),
                (3, ip_bytes(ROUTER_IP)),
                (51, b"\0\0\x0e\x10"),
            ],
        )

    def proxy_offer(
        self,
        pi: Pi,
        *,
        server_ip: str = SERVER_IP,
        server_mac: str = SERVER_MAC,
        menu: tuple[str, ...] = (dhcp.RPI_BOOT,),
        extra: list[tuple[int, bytes]] | None = None,
    ) -> int:
        return self.reply(
            pi,
            dhcp.OFFER,
            server_ip=server_ip,
            server_mac=server_mac,
            options=[
                (60, b"PXEClient"),
                (97, pi.discover().client_guid or b""),
                (43, dhcp.build_pxe(menu)),
                *(extra or []),
            ],
        )

    def dhcp_round(self, pi: Pi) -> None:
        """DISCOVER, both offers; a Pi 4 then REQUESTs and gets its ACK."""
        disc = pi.discover()
        self.client(pi, disc)
        self.proxy_offer(pi)
        self.offer(pi)
        if pi.model != "pi3":
            self.wait(0.1)
            offer = dhcp.DhcpPacket(
                op=2,
                xid=pi.xid,
                chaddr=disc.chaddr,
                yiaddr=pi.ip,
                options=((53, b"\x02"), (54, ip_bytes(ROUTER_IP))),
            )
            self.client(pi, dhcp.pi4_request(disc, offer))
            self.reply(pi, dhcp.ACK, server_ip=ROUTER_IP, server_mac=ROUTER_MAC, yiaddr=pi.ip)

    def arp(self, pi: Pi, target: str = SERVER_IP, *, answer: bool = True) -> int:
        i = self.add(
            arp_frame(
                op=ARP_REQUEST, src_mac=pi.mac, src_ip=pi.ip, target_mac=ZERO_MAC, target_ip=target
            )
        )
        if answer:
            self.add(
                arp_frame(
                    op=ARP_REPLY,
                    src_mac=SERVER_MAC,
                    src_ip=target,
                    target_mac=pi.mac,
                    target_ip=pi.ip,
                )
            )
        return i

    # ---------------------------------------------------------------- TFTP
    def _udp(self, src: tuple[str, str, int], dst: tuple[str, str, int], payload: bytes) -> int:
        return self.add(
            udp_frame(
                src_mac=src[0],
                src_ip=src[1],
                sport=src[2],
                dst_mac=dst[0],
                dst_ip=dst[1],
                dport=dst[2],
                payload=payload,
            )
        )

    def transfer(
        self,
        pi: Pi,
        name: str,
        size: int | None,
        *,
        options: dict[str, str] | None = None,
        probe: bool = False,
        error: tuple[int, str] | None = None,
        stop_after: int | None = None,
        server_mac: str = SERVER_MAC,
        dst_mac: str | None = None,
        single_port: bool = False,
        client_port: int | None = None,
        content: bytes | None = None,
    ) -> int:
        """One read request and its transfer; returns the index of the request.

        ``size`` None answers ERROR 1 (``error`` another error); ``probe`` stops with ERROR 0
        "Early terminate" after the first answer; ``stop_after`` N blocks goes silent.
        """
        port = client_port if client_port is not None else next(iter(pi.ports))
        me = (pi.mac, pi.ip, port)
        srv_port = 69 if single_port else next(self.eph)
        srv = (server_mac, SERVER_IP, srv_port)
        first = self._udp(me, (dst_mac or server_mac, SERVER_IP, 69), tftp.rrq(name, options))
        if content is not None:
            size = len(content)
        if size is None or error is not None:
            code, msg = error or (1, f"file /srv/tftp/{name} not found for {pi.ip}")
            self._udp(srv, me, tftp.error(code, msg))
            return first
        blksize = int((options or {}).get("blksize", "512"))
        if options:
            accepted = {k: (str(size) if k == "tsize" else v) for k, v in options.items()}
            self._udp(
                srv,
                me,
                struct.pack("!H", tftp.OACK)
                + b"".join(k.encode() + b"\0" + v.encode() + b"\0" for k, v in accepted.items()),
            )
            if probe:
                self._udp(me, srv, tftp.error(0, tftp.EARLY_TERMINATE))
                return first
            self._udp(me, srv, tftp.ack(0))
        block, sent = 1, 0
        while True:
            chunk = min(blksize, size - sent)
            body = content[sent : sent + chunk] if content is not None else b"\xa5" * chunk
            self._udp(srv, me, struct.pack("!HH", tftp.DATA, block & 0xFFFF) + body)
            if probe:
                self._udp(me, srv, tftp.error(0, tftp.EARLY_TERMINATE))
                return first
            sent += chunk
            if stop_after is not None and block >= stop_after:
                return first
            self._udp(me, srv, tftp.ack(block & 0xFFFF))
            if chunk < blksize:
                return first
            block += 1

    # ---------------------------------------------------------------- whole boots
    def good_boot(self, pi: Pi, *, files: list[tuple[str, int | None]] | None = None) -> None:
        """The sequence of a healthy boot (netboot.md §4.1 / §4.3) up to the last initramfs."""
        self.dhcp_round(pi)
        self.arp(pi)
        default = {"pi3": PI3_FILES, "pi4": PI4_FILES, "pi5": PI5_FILES}[pi.model]
        config = PI5_CONFIG if pi.model == "pi5" else CONFIG_TXT
        for raw_name, size in files or default:
            name = raw_name.format(serial=pi.serial)
            content = config.encode() if name == "config.txt" else None
            if pi.model == "pi3":
                opts = None if name in ("bootcode.bin", "bootsig.bin") else {"tsize": "0"}
                self.transfer(pi, name, size, options=opts, client_port=49152, content=content)
            else:
                opts = {"tsize": "0", "blksize": "1468"}
                if name in PROBED:
                    self.transfer(pi, name, size, options=opts, probe=True)
                self.transfer(pi, name, size, options=opts, content=content)

    def linux_dhcp(self, pi: Pi, xid: int = 0x0BADCAFE) -> int:
        """The booted Linux's DHCP DISCOVER (udhcpc: its own vendor class, no PXE)."""
        packet = dhcp.DhcpPacket(
            op=1,
            xid=xid,
            chaddr=bytes.fromhex(pi.mac.replace(":", "")),
            options=((53, b"\x01"), (60, b"udhcp 1.35.0")),
        )
        i = self.client(pi, packet)
        self.reply(
            pi, dhcp.OFFER, server_ip=ROUTER_IP, server_mac=ROUTER_MAC, yiaddr=pi.ip, xid=xid
        )
        return i

    def announce(self, pi: Pi, *, port: int = 8000, goodbye: bool = False) -> int:
        """The app's mDNS announcement (PTR, SRV, TXT, A) from the Pi."""
        name = f"firecore-{pi.serial}"
        ttl = 0 if goodbye else 120
        records = [
            _rr("_firecore._tcp.local", 12, ttl, _name(f"{name}._firecore._tcp.local")),
            _rr(
                f"{name}._firecore._tcp.local",
                33,
                ttl,
                struct.pack("!HHH", 0, 0, port) + _name(f"{name}.local"),
            ),
            _rr(
                f"{name}._firecore._tcp.local",
                16,
                ttl,
                _txt(
                    {
                        "serial": pi.serial,
                        "model": "Raspberry Pi 4 Model B Rev 1.4",
                        "port": str(port),
                    }
                ),
            ),
            _rr(f"{name}.local", 1, ttl, ip_bytes(pi.ip)),
        ]
        msg = struct.pack("!HHHHHH", 0, 0x8400, 0, len(records), 0, 0) + b"".join(records)
        return self.add(
            udp_frame(
                src_mac=pi.mac,
                dst_mac="01:00:5e:00:00:fb",
                src_ip=pi.ip,
                dst_ip="224.0.0.251",
                sport=5353,
                dport=5353,
                payload=msg,
            )
        )


BROADCAST_IP = "255.255.255.255"


def to_server(pi: Pi, sport: int, dport: int, payload: bytes) -> bytes:
    """A UDP frame from ``pi`` to our server."""
    return udp_frame(
        src_mac=pi.mac,
        dst_mac=SERVER_MAC,
        src_ip=pi.ip,
        dst_ip=SERVER_IP,
        sport=sport,
        dport=dport,
        payload=payload,
    )


def _name(text: str) -> bytes:
    return b"".join(bytes([len(p)]) + p.encode() for p in text.split(".")) + b"\0"


def _txt(props: dict[str, str]) -> bytes:
    return b"".join(bytes([len(f"{k}={v}")]) + f"{k}={v}".encode() for k, v in props.items())


def _rr(name: str, rtype: int, ttl: int, rdata: bytes) -> bytes:
    return _name(name) + struct.pack("!HHIH", rtype, 0x8001, ttl, len(rdata)) + rdata
