"""The monitor's decoder: DESIGN.md's packet objects, TFTP transfers across ports, any link layer.

Frames come from the project's own builders (``tests.support.synthetic``); the same decoder is
checked field by field against tshark on real captures in tests/integration/test_monitor_captures.
"""

from __future__ import annotations

import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from steps.wire import dhcp, tftp
from steps.wire.decode import Decoder
from steps.wire.monitor_events import ArpPacketEvent, DhcpPacketEvent, TftpPacketEvent
from steps.wire.netframes import udp_frame
from steps.wire.pcap import (
    LINKTYPE_ETHERNET,
    LINKTYPE_IPV4,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_LINUX_SLL2,
    LINKTYPE_RAW,
    Record,
)
from tests.support import linkcopies
from tests.support.synthetic import SERVER_IP, SERVER_MAC, Pi, Wire, to_server


def decode_all(records: list[Record]) -> list[dict]:
    d = Decoder()
    out = []
    for i, r in enumerate(records):
        pkt = d.decode(i, r)
        d.finished.clear()
        if pkt is not None:
            out.append(pkt.to_json())
    return out


def test_the_pi3_rom_discover_as_design_names_its_keys() -> None:
    pi = Pi.pi3()
    wire = Wire()
    wire.client(pi, pi.discover())
    (obj,) = decode_all(wire.records)
    assert obj == {
        "type": "packet",
        "i": 0,
        "t": 0.0,
        "proto": "dhcp",
        "src_mac": pi.mac,
        "dst_mac": "ff:ff:ff:ff:ff:ff",
        "src_ip": "0.0.0.0",
        "dst_ip": "255.255.255.255",
        "src_port": 68,
        "dst_port": 67,
        "msg_type": "DISCOVER",
        "xid": "0x26f30339",
        "chaddr": pi.mac,
        "ciaddr": "0.0.0.0",
        "yiaddr": "0.0.0.0",
        "siaddr": "0.0.0.0",
        "vendor_class": "PXEClient:Arch:00000:UNDI:002001",
        "client_arch": 0,
        "client_uuid": "00" + "44" * 16,
    }


def test_a_proxy_offer_with_every_option_the_monitor_reads() -> None:
    pi = Pi.pi4()
    wire = Wire()
    wire.proxy_offer(
        pi, menu=("Install Windows", dhcp.RPI_BOOT), extra=[(66, b"10.0.0.9\0"), (67, b"boot.img")]
    )
    (obj,) = decode_all(wire.records)
    assert obj["msg_type"] == "OFFER" and obj["server_id"] == SERVER_IP
    assert obj["pxe_menu"] == ["Install Windows", "Raspberry Pi Boot"]
    assert obj["tftp_server"] == "10.0.0.9" and obj["bootfile"] == "boot.img"
    assert obj["vendor_class"] == "PXEClient" and "client_arch" not in obj
    assert obj["client_uuid"].startswith("0052506934")


def test_arp_request_and_reply() -> None:
    pi = Pi.pi3()
    wire = Wire()
    wire.arp(pi)
    req, rep = decode_all(wire.records)
    assert req["proto"] == "arp" and req["op"] == "request"
    assert (req["sender_ip"], req["target_ip"], req["target_mac"]) == (
        pi.ip,
        SERVER_IP,
        "00:00:00:00:00:00",
    )
    assert rep["op"] == "reply" and rep["sender_mac"] == SERVER_MAC and rep["target_mac"] == pi.mac


def test_a_transfer_is_followed_onto_the_server_ephemeral_port() -> None:
    pi = Pi.pi4()
    wire = Wire()
    opts = {"tsize": "0", "blksize": "1468"}
    wire.transfer(pi, "start4.elf", 3000, options=opts, probe=True)
    wire.transfer(pi, "start4.elf", 3000, options=opts)
    d = Decoder()
    pkts = [d.decode(i, r) for i, r in enumerate(wire.records)]
    assert all(isinstance(p, TftpPacketEvent) for p in pkts)
    got = [(p.opcode, p.transfer, p.block, p.length) for p in pkts]  # type: ignore[union-attr]
    assert got == [
        ("RRQ", 1, None, None),
        ("OACK", 1, None, None),
        ("ERROR", 1, None, None),
        ("RRQ", 2, None, None),
        ("OACK", 2, None, None),
        ("ACK", 2, 0, None),
        ("DATA", 2, 1, 1468),
        ("ACK", 2, 1, None),
        ("DATA", 2, 2, 1468),
        ("ACK", 2, 2, None),
        ("DATA", 2, 3, 64),
        ("ACK", 2, 3, None),
    ]
    probe = pkts[2]
    assert probe.error_msg == "Early terminate" and probe.error_code == 0  # type: ignore[union-attr]
    assert pkts[0].options == opts and pkts[0].mode == "octet"  # type: ignore[union-attr]
    assert pkts[4].options == {"tsize": "3000", "blksize": "1468"}  # type: ignore[union-attr]
    assert pkts[6].src_port != 69 and pkts[6].dst_port == pkts[3].src_port  # type: ignore[union-attr]
    assert d.transfers == 2


def test_transfer_outcomes() -> None:
    pi = Pi.pi3()
    wire = Wire()
    wire.transfer(pi, "bootcode.bin", 1100, client_port=49152)  # 512 + 512 + 76
    wire.transfer(pi, "bootsig.bin", None, client_port=49152)
    wire.transfer(
        pi,
        "secret",
        10,
        error=(2, "cannot access /srv/secret: Permission denied"),
        client_port=49152,
    )
    wire.transfer(
        pi, "config.txt", 700, options={"tsize": "0"}, client_port=49152, single_port=True
    )
    d = Decoder()
    ended = []
    for i, r in enumerate(wire.records):
        d.decode(i, r)
        ended += [(x.file, x.status, x.bytes, x.blocks, x.tsize) for x in d.finished]
        d.finished.clear()
    assert ended == [
        ("bootcode.bin", "complete", 1100, 3, None),
        ("bootsig.bin", "not-found", 0, 0, None),
        ("secret", "denied", 0, 0, None),
        ("config.txt", "complete", 700, 2, 700),
    ]


def test_a_repeated_request_is_the_same_transfer_and_lost_blocks_are_counted() -> None:
    pi = Pi.pi3()
    wire = Wire()
    request = to_server(pi, 49152, 69, tftp.rrq("bootcode.bin"))
    wire.add(request)
    wire.transfer(pi, "bootcode.bin", 2000, client_port=49152)
    del wire.records[4:6]  # the capture missed DATA #2 and its ACK
    d = Decoder()
    for i, r in enumerate(wire.records):
        d.decode(i, r)
    (x,) = d.finished
    assert (x.requests, x.status, x.bytes, x.missed, x.request_is) == (
        2,
        "complete",
        2000,
        1,
        [0, 1],
    )


def link_variants(records: list[Record]) -> dict[str, list[Record]]:
    return {
        "vlan": [linkcopies.vlan(r) for r in records],
        "qinq": [linkcopies.vlan(r, tags=2) for r in records],
        "sll": [linkcopies.sll(r) for r in records],
        "sll2": [linkcopies.sll2(r) for r in records],
        "raw": linkcopies.convert(records, linkcopies.raw_ip),
    }


def test_every_link_layer_decodes_to_the_same_packets() -> None:
    pi = Pi.pi4()
    wire = Wire()
    wire.dhcp_round(pi)
    wire.arp(pi)
    wire.transfer(pi, "config.txt", 3000, options={"tsize": "0", "blksize": "1468"})
    ether = decode_all(wire.records)
    for name, records in link_variants(wire.records).items():
        got = decode_all(records)
        want = ether
        if name == "raw":
            want = [p for p in ether if p["proto"] != "arp"]
        for a, b in zip(got, want, strict=True):
            b = dict(b)
            if name == "raw":
                b.pop("src_mac"), b.pop("dst_mac")
            elif name.startswith("sll") and b["dst_mac"] != "ff:ff:ff:ff:ff:ff":
                b.pop("dst_mac")  # a cooked capture keeps only the source address
            a["i"], b["i"], a["t"], b["t"] = 0, 0, 0, 0
            assert a == b, name
    assert {LINKTYPE_ETHERNET, LINKTYPE_LINUX_SLL, LINKTYPE_LINUX_SLL2, LINKTYPE_RAW} >= {
        r[1] for v in link_variants(wire.records).values() for r in v
    } | {LINKTYPE_ETHERNET}


def test_a_bad_udp_checksum_is_decoded_anyway() -> None:
    pi = Pi.pi3()
    wire = Wire()
    wire.client(pi, pi.discover())
    ts, lt, frame, orig = wire.records[0]
    broken = frame[:40] + b"\xde\xad" + frame[42:]  # UDP checksum at 34 + 6
    (obj,) = decode_all([(ts, lt, broken, orig)])
    assert obj["msg_type"] == "DISCOVER"


def test_malformed_payloads_on_netboot_ports_are_counted_not_raised() -> None:
    pi = Pi.pi3()
    d = Decoder()
    frames = [
        to_server(pi, 68, 67, b"\x01" * 20),
        to_server(pi, 40000, 69, b"\x00\x09junk"),
    ]
    assert [d.decode(i, (0, 1, f, len(f))) for i, f in enumerate(frames)] == [None, None]
    assert d.malformed == 2


def test_ipv4_with_options_and_fragments() -> None:
    pi = Pi.pi3()
    frame = dhcp.client_frame(pi.discover())
    ihl6 = (
        frame[:14]
        + bytes([0x46])
        + frame[15:16]
        + struct.pack("!H", len(frame) - 14 + 4)
        + (frame[18:34] + b"\x01\x01\x01\x00" + frame[34:])
    )
    fragment = frame[:20] + b"\x20\x00" + frame[22:]  # more-fragments set
    d = Decoder()
    assert isinstance(d.decode(0, (0, 1, ihl6, len(ihl6))), DhcpPacketEvent)
    assert d.decode(1, (0, 1, fragment, len(fragment))) is None


def test_linktype_228_raw_ipv4_and_an_unknown_linktype() -> None:
    pi = Pi.pi3()
    frame = dhcp.client_frame(pi.discover())
    d = Decoder()
    assert isinstance(d.decode(0, (0, LINKTYPE_IPV4, frame[14:], 0)), DhcpPacketEvent)
    assert d.decode(1, (0, 147, frame, 0)) is None
    arp = Wire()
    arp.arp(pi)
    assert isinstance(d.decode(2, arp.records[0]), ArpPacketEvent)


# ----------------------------------------------------------------------------- fuzzing

_LINKS = st.sampled_from(
    [LINKTYPE_ETHERNET, LINKTYPE_LINUX_SLL, LINKTYPE_LINUX_SLL2, LINKTYPE_RAW, LINKTYPE_IPV4]
)


@settings(max_examples=1500, deadline=None)
@given(_LINKS, st.binary(max_size=400))
def test_any_bytes_on_any_link_layer_never_raise(linktype: int, data: bytes) -> None:
    d = Decoder()
    d.decode(0, (0, linktype, data, len(data)))


@settings(max_examples=1500, deadline=None)
@given(
    st.sampled_from([(68, 67), (67, 68), (40000, 69), (5353, 5353)]),
    st.binary(max_size=600),
)
def test_any_payload_on_a_netboot_port_never_raises(ports: tuple[int, int], payload: bytes) -> None:
    frame = udp_frame(
        src_mac="02:00:00:00:00:02",
        dst_mac=SERVER_MAC,
        src_ip="10.0.0.2",
        dst_ip=SERVER_IP,
        sport=ports[0],
        dport=ports[1],
        payload=payload,
    )
    d = Decoder()
    d.decode(0, (0, 1, frame, len(frame)))
    if d.announcement is not None:
        d.announcement.properties.items()


@settings(max_examples=800, deadline=None)
@given(st.lists(st.binary(min_size=4, max_size=80), min_size=1, max_size=8))
def test_any_transfer_traffic_never_raises(payloads: list[bytes]) -> None:
    """A request opens a transfer; then anything from either side of it."""
    pi = Pi.pi4()
    wire = Wire()
    wire.add(to_server(pi, 40000, 69, tftp.rrq("x", {"blksize": "1468"})))
    for n, payload in enumerate(payloads):
        down = n % 2 == 0
        wire.add(
            udp_frame(
                src_mac=SERVER_MAC if down else pi.mac,
                dst_mac=pi.mac if down else SERVER_MAC,
                src_ip=SERVER_IP if down else pi.ip,
                dst_ip=pi.ip if down else SERVER_IP,
                sport=33000 if down else 40000,
                dport=40000 if down else 33000,
                payload=payload,
            )
        )
    decode_all(wire.records)


#: DESIGN.md "Monitor JSON lines": the fixed packet keys (scripts parse them).
DESIGN_KEYS = {
    "common": {"type", "i", "t", "proto", "src_mac", "dst_mac", "mac"},
    "udp": {"src_ip", "dst_ip", "src_port", "dst_port"},
    "dhcp": {
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
        "pxe_menu",
    },
    "arp": {"op", "sender_mac", "sender_ip", "target_mac", "target_ip"},
    "tftp": {
        "opcode",
        "file",
        "mode",
        "options",
        "block",
        "length",
        "error_code",
        "error_msg",
        "transfer",
    },
}


def test_packet_objects_use_only_the_keys_design_fixes_and_never_empty_strings() -> None:
    wire = Wire()
    pi = Pi.pi4()
    wire.good_boot(pi)
    wire.proxy_offer(pi, extra=[(66, b"10.0.0.9"), (67, b"x")])
    seen: dict[str, set[str]] = {}
    for obj in decode_all(wire.records):
        proto = obj["proto"]
        allowed = DESIGN_KEYS["common"] | DESIGN_KEYS[proto]
        if proto != "arp":
            allowed |= DESIGN_KEYS["udp"]
        assert set(obj) <= allowed, set(obj) - allowed
        assert "" not in obj.values() and None not in obj.values()
        seen.setdefault(proto, set()).update(obj)
    assert seen["dhcp"] >= DESIGN_KEYS["dhcp"]
    assert seen["tftp"] >= DESIGN_KEYS["tftp"]
    assert seen["arp"] >= DESIGN_KEYS["arp"]
