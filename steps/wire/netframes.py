"""Ethernet, IPv4, UDP and ARP frames, built and parsed byte by byte.

The virtual Pi talks to the LAN through a raw AF_PACKET socket, so it must build the frames a Pi's
boot ROM builds (UDP from 0.0.0.0 with checksum 0, TTL 128, IP id 0) and read whatever comes
back. Only what netboot needs is here: IPv4 without options on the way out, IPv4 with or without
options on the way in, UDP, and ARP for IPv4 over Ethernet.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

ETH_P_IP = 0x0800
ETH_P_ARP = 0x0806
BROADCAST_MAC = "ff:ff:ff:ff:ff:ff"
ZERO_MAC = "00:00:00:00:00:00"
IPPROTO_UDP = 17
ARP_REQUEST = 1
ARP_REPLY = 2


def mac_bytes(mac: str) -> bytes:
    """``"b8:27:eb:28:f6:6d"`` (or with dashes) → 6 bytes.

    Raises:
        ValueError: not a MAC address.
    """
    parts = mac.replace("-", ":").split(":")
    if len(parts) != 6 or not all(len(p) == 2 for p in parts):
        raise ValueError(f"{mac!r} is not a MAC address like b8:27:eb:28:f6:6d")
    return bytes(int(p, 16) for p in parts)


def mac_str(raw: bytes) -> str:
    """6 bytes → lower-case colon form."""
    return ":".join(f"{b:02x}" for b in raw[:6])


def ip_bytes(ip: str) -> bytes:
    """Dotted quad → 4 bytes."""
    return ipaddress.IPv4Address(ip).packed


def ip_str(raw: bytes) -> str:
    """4 bytes → dotted quad."""
    return str(ipaddress.IPv4Address(raw[:4]))


def inet_checksum(data: bytes) -> int:
    """The 16-bit one's-complement sum of RFC 1071."""
    if len(data) % 2:
        data += b"\0"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def ethernet(dst: str, src: str, ethertype: int, payload: bytes) -> bytes:
    """An Ethernet II frame (no FCS; the NIC adds it, and pads short frames)."""
    return mac_bytes(dst) + mac_bytes(src) + struct.pack("!H", ethertype) + payload


def ipv4(
    src: str,
    dst: str,
    payload: bytes,
    *,
    proto: int = IPPROTO_UDP,
    ttl: int = 64,
    ident: int = 0,
    dont_fragment: bool = False,
    tos: int = 0,
) -> bytes:
    """An IPv4 packet without options, header checksum filled in."""
    flags = 0x4000 if dont_fragment else 0
    header = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        tos,
        20 + len(payload),
        ident,
        flags,
        ttl,
        proto,
        0,
        ip_bytes(src),
        ip_bytes(dst),
    )
    csum = inet_checksum(header)
    return header[:10] + struct.pack("!H", csum) + header[12:] + payload


def udp(src: str, dst: str, sport: int, dport: int, payload: bytes, *, checksum: bool) -> bytes:
    """A UDP datagram; ``checksum=False`` sends 0 ("no checksum"), as the Pi 3 boot ROM does."""
    length = 8 + len(payload)
    csum = 0
    if checksum:
        pseudo = ip_bytes(src) + ip_bytes(dst) + struct.pack("!BBH", 0, IPPROTO_UDP, length)
        csum = inet_checksum(pseudo + struct.pack("!HHHH", sport, dport, length, 0) + payload)
        csum = csum or 0xFFFF  # 0 means "none" in UDP, so a computed 0 is sent as all ones
    return struct.pack("!HHHH", sport, dport, length, csum) + payload


def udp_frame(
    *,
    src_mac: str,
    dst_mac: str,
    src_ip: str,
    dst_ip: str,
    sport: int,
    dport: int,
    payload: bytes,
    ttl: int = 64,
    ident: int = 0,
    checksum: bool = True,
) -> bytes:
    """Ethernet + IPv4 + UDP around ``payload``."""
    datagram = udp(src_ip, dst_ip, sport, dport, payload, checksum=checksum)
    return ethernet(
        dst_mac, src_mac, ETH_P_IP, ipv4(src_ip, dst_ip, datagram, ttl=ttl, ident=ident)
    )


def arp_frame(
    *,
    op: int,
    src_mac: str,
    src_ip: str,
    target_mac: str,
    target_ip: str,
    dst_mac: str | None = None,
) -> bytes:
    """An ARP request (to broadcast) or reply (to ``target_mac``) for IPv4 over Ethernet."""
    body = struct.pack(
        "!HHBBH6s4s6s4s",
        1,
        ETH_P_IP,
        6,
        4,
        op,
        mac_bytes(src_mac),
        ip_bytes(src_ip),
        mac_bytes(target_mac),
        ip_bytes(target_ip),
    )
    if dst_mac is None:
        dst_mac = BROADCAST_MAC if op == ARP_REQUEST else target_mac
    return ethernet(dst_mac, src_mac, ETH_P_ARP, body)


@dataclass(frozen=True)
class UdpPacket:
    """A decoded Ethernet/IPv4/UDP frame."""

    src_mac: str
    dst_mac: str
    src_ip: str
    dst_ip: str
    sport: int
    dport: int
    payload: bytes
    udp_checksum: int
    ttl: int


@dataclass(frozen=True)
class ArpPacket:
    """A decoded ARP frame (IPv4 over Ethernet)."""

    op: int
    sender_mac: str
    sender_ip: str
    target_mac: str
    target_ip: str
    eth_src: str
    eth_dst: str


def parse_frame(frame: bytes) -> UdpPacket | ArpPacket | None:
    """Decode an Ethernet frame into UDP or ARP; None for anything else or a truncated frame.

    A single 802.1Q tag is skipped, so captures from a trunk port decode too.
    """
    if len(frame) < 14:
        return None
    dst, src = mac_str(frame[0:6]), mac_str(frame[6:12])
    (ethertype,) = struct.unpack("!H", frame[12:14])
    offset = 14
    if ethertype == 0x8100 and len(frame) >= 18:
        (ethertype,) = struct.unpack("!H", frame[16:18])
        offset = 18
    body = frame[offset:]
    if ethertype == ETH_P_ARP:
        if len(body) < 28:
            return None
        _htype, ptype, hlen, plen, op = struct.unpack("!HHBBH", body[:8])
        if ptype != ETH_P_IP or hlen != 6 or plen != 4:
            return None
        return ArpPacket(
            op,
            mac_str(body[8:14]),
            ip_str(body[14:18]),
            mac_str(body[18:24]),
            ip_str(body[24:28]),
            src,
            dst,
        )
    if ethertype != ETH_P_IP or len(body) < 20:
        return None
    ihl = (body[0] & 0x0F) * 4
    if body[0] >> 4 != 4 or ihl < 20 or len(body) < ihl + 8:
        return None
    (total,) = struct.unpack("!H", body[2:4])
    frag = struct.unpack("!H", body[6:8])[0] & 0x3FFF
    if body[9] != IPPROTO_UDP or frag:
        return None  # not UDP, or a fragment (netboot traffic never fragments)
    ip_end = min(total, len(body)) if total >= ihl + 8 else len(body)
    seg = body[ihl:ip_end]
    sport, dport, length, csum = struct.unpack("!HHHH", seg[:8])
    payload = seg[8:length] if 8 <= length <= len(seg) else seg[8:]
    return UdpPacket(
        src, dst, ip_str(body[12:16]), ip_str(body[16:20]), sport, dport, payload, csum, body[8]
    )
