"""The DHCP codec against netboot.md's byte dumps, and the raw client against real dnsmasq.

The namespace tests capture what went over the wire with tcpdump and compare our decoder with
tshark's, field by field, so the codec is checked against an independent implementation.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import dpkt
import pytest

from steps.wire import dhcp
from steps.wire.netframes import UdpPacket, parse_frame
from tests.conftest import needs_root
from tests.support.lab import Lab
from tests.support.netboot_lab import boot_lan, in_netns, start_proxy

PI3_MAC = "b8:27:eb:28:f6:6d"

# netboot.md §2.1, the options of the Pi 3B ROM DISCOVER
PI3_OPTIONS_HEX = (
    "350101"
    "370c2b3c438081828384858687 42"
    "5d020000"
    "5e03010201"
    "6111" + "00" + "44" * 16 + "3c20" + b"PXEClient:Arch:00000:UNDI:002001".hex() + "ff"
).replace(" ", "")

# netboot.md §3.1, the whole proxy OFFER's options
PROXY_OPTIONS_HEX = (
    "350102 3604 0a090801 3c09 505845436c69656e74 6111 00" + "44" * 16 + " 2b20 060103"
    " 0a0400505845 091400001152617370626572727920506920426f6f74 ff ff"
).replace(" ", "")

OPT43_DOC = bytes.fromhex(
    "060103 0a0400505845 091400001152617370626572727920506920426f6f74 ff".replace(" ", "")
)


def _bootp_header(op: int, xid: int, mac: str) -> bytes:
    chaddr = bytes.fromhex(mac.replace(":", "")) + b"\0" * 10
    return (
        bytes([op, 1, 6, 0])
        + xid.to_bytes(4, "big")
        + b"\0" * 4
        + b"\0" * 16
        + chaddr
        + b"\0" * 192
        + bytes.fromhex("63825363")
    )


def test_pi3_rom_discover_is_byte_exact() -> None:
    packet = dhcp.pi3_rom_discover(PI3_MAC)
    expected = _bootp_header(1, 0x26F30339, PI3_MAC) + bytes.fromhex(PI3_OPTIONS_HEX)
    assert packet.encode() == expected
    assert len(expected) == 320  # "BOOTP (320 bytes)"


def test_pi3_rom_frame_headers_match_the_capture() -> None:
    frame = dhcp.client_frame(dhcp.pi3_rom_discover(PI3_MAC))
    assert frame[:6] == b"\xff" * 6 and frame[6:12] == bytes.fromhex("b827eb28f66d")
    ip = frame[14:34]
    assert ip[0] == 0x45 and ip[1] == 0  # IPv4, tos 0
    assert int.from_bytes(ip[2:4], "big") == 348  # total length
    assert ip[4:6] == b"\0\0" and ip[6:8] == b"\0\0"  # id 0, no DF
    assert ip[8] == 128 and ip[9] == 17  # ttl 128, UDP
    assert ip[12:16] == b"\0\0\0\0" and ip[16:20] == b"\xff" * 4
    udp = frame[34:42]
    assert udp == bytes.fromhex("00440043") + (328).to_bytes(2, "big") + b"\0\0"
    parsed = parse_frame(frame)
    assert isinstance(parsed, UdpPacket) and parsed.udp_checksum == 0 and parsed.ttl == 128


def test_proxy_offer_from_the_doc_decodes() -> None:
    raw = _bootp_header(2, 0x26F30339, PI3_MAC) + bytes.fromhex(PROXY_OPTIONS_HEX)
    offer = dhcp.DhcpPacket.decode(raw)
    assert offer.message_type == dhcp.OFFER and offer.message_name == "OFFER"
    assert offer.server_id == "10.9.8.1"
    assert offer.vendor_class == "PXEClient"
    assert offer.client_guid == b"\x00" + b"\x44" * 16
    assert offer.yiaddr == "0.0.0.0" and offer.mac == PI3_MAC
    assert offer.get(66) is None and offer.tftp_server_name is None
    pxe = offer.pxe
    assert pxe is not None and pxe.well_formed
    assert pxe.discovery_control == 3
    assert pxe.prompt == (0, "PXE")
    assert pxe.menu == (dhcp.BootMenuItem(0, "Raspberry Pi Boot"),)
    assert pxe.has_rpi_menu and pxe.has_rpi_string
    assert [c for c, _ in offer.options] == [53, 54, 60, 97, 43]


def test_build_pxe_matches_dnsmasq() -> None:
    assert dhcp.build_pxe() == OPT43_DOC
    assert len(OPT43_DOC) == 32


@pytest.mark.parametrize(
    ("hexbytes", "menu", "well_formed", "rpi_menu", "rpi_string"),
    [
        # three trailing spaces (desc len 0x14)
        (
            "060103 0a0400505845 0917000014" + b"Raspberry Pi Boot   ".hex() + "ff",
            ["Raspberry Pi Boot   "],
            True,
            True,
            True,
        ),
        # a second menu entry (iPXE) and a boot-server list
        (
            "060103 0a04ff505845 08078000010a090801 091b000011"
            + b"Raspberry Pi Boot".hex()
            + "800004"
            + b"iPXE".hex()
            + "ff",
            ["Raspberry Pi Boot", "iPXE"],
            True,
            True,
            True,
        ),
        # a PXE client without the rpi tag: no menu at all
        ("060108 0a0400505845 ff", [], True, False, False),
        # the raw string without sub-option framing (worked on a Pi 3)
        (b"Raspberry Pi Boot   ".hex(), [], False, False, True),
    ],
)
def test_option43_variants(
    hexbytes: str, menu: list[str], well_formed: bool, rpi_menu: bool, rpi_string: bool
) -> None:
    pxe = dhcp.parse_pxe(bytes.fromhex(hexbytes.replace(" ", "")))
    assert [m.description for m in pxe.menu] == menu
    assert pxe.well_formed is well_formed
    assert pxe.has_rpi_menu is rpi_menu
    assert pxe.has_rpi_string is rpi_string


def test_boot_server_list_decodes() -> None:
    pxe = dhcp.parse_pxe(bytes.fromhex("08070001010a090807ff"))
    assert pxe.boot_servers == ((1, ("10.9.8.7",)),)


def test_pi4_packets_round_trip() -> None:
    disc = dhcp.pi4_discover("dc:a6:32:01:36:c2", "9ffefdef", xid=0xD383A6AC)
    back = dhcp.DhcpPacket.decode(disc.encode())
    assert back == disc
    guid = back.client_guid
    assert guid is not None and len(guid) == 17 and guid[1:5] == b"RPi4"
    assert guid[-4:] == bytes.fromhex("ef fd fe 9f") and guid[9:13] == bytes.fromhex("32 01 36 c2")
    assert back.parameter_list == (1, 3, 43, 60, 66, 67, *range(128, 136))
    assert back.vendor_class == dhcp.PXE_VENDOR_CLASS.decode()
    offer = dhcp.DhcpPacket(
        op=2,
        xid=disc.xid,
        chaddr=disc.chaddr,
        yiaddr="10.0.0.5",
        options=((53, b"\x02"), (54, bytes([10, 0, 0, 1]))),
    )
    req = dhcp.pi4_request(disc, offer)
    assert req.message_type == dhcp.REQUEST
    assert req.requested_ip == "10.0.0.5" and req.server_id == "10.0.0.1"
    # current bootloaders send option 60 in the REQUEST too (netboot.md §12)
    assert req.vendor_class == dhcp.PXE_VENDOR_CLASS.decode()
    assert not dhcp.pi4_request(disc, offer, vendor_class=False).has(60)  # 2020 firmware
    assert req.xid == disc.xid


def test_pi5_discover_is_the_pi4_one_with_the_rpi5_guid() -> None:
    mac = "2c:cf:67:01:36:c2"
    disc = dhcp.DhcpPacket.decode(dhcp.discover_for("pi5", mac, "9ffefdef").encode())
    guid = dhcp.parse_guid(disc.client_guid)
    assert guid is not None and guid.model == "pi5" and guid.serial == "9ffefdef"
    assert guid.board_rev == dhcp.PI5_BOARD_REV and guid.mac_low == bytes.fromhex("67 01 36 c2")
    assert disc.vendor_class == dhcp.PXE_VENDOR_CLASS.decode() and disc.xid != dhcp.PI3_ROM_XID
    assert disc.parameter_list == tuple(dhcp.PI4_PRL) and disc.client_arch == 0


def test_long_options_split_and_join() -> None:
    value = bytes(range(256)) * 2
    pkt = dhcp.DhcpPacket(op=1, xid=1, chaddr=b"\1" * 6, options=((77, value),))
    assert dhcp.DhcpPacket.decode(pkt.encode()).get(77) == value


def test_option66_with_trailing_nul() -> None:
    pkt = dhcp.DhcpPacket(op=2, xid=1, chaddr=b"\1" * 6, options=((66, b"10.9.8.7\x00"),))
    assert pkt.tftp_server_name == "10.9.8.7"


@pytest.mark.parametrize(
    "data",
    [b"\x01" * 100, _bootp_header(2, 1, PI3_MAC) + bytes.fromhex("3504 0102")],
)
def test_malformed_packets_raise(data: bytes) -> None:
    with pytest.raises(dhcp.DhcpDecodeError):
        dhcp.DhcpPacket.decode(data)


def test_pi3_mac_from_serial() -> None:
    assert dhcp.pi3_mac("b66c4c16") == "b8:27:eb:6c:4c:16"  # netboot.md §2.2


# --------------------------------------------------------------------------- on the wire

TSHARK_FIELDS = [
    "dhcp.id",
    "dhcp.option.dhcp",
    "dhcp.hw.mac_addr",
    "dhcp.ip.your",
    "dhcp.option.dhcp_server_id",
    "dhcp.option.vendor.pxeclient.boot_menu.desc",
    "dhcp.option.vendor.pxeclient.discovery_control",
    "dhcp.option.vendor_class_id",
    "udp.checksum",
    "ip.ttl",
]


def _tshark(pcap: Path) -> list[dict[str, str]]:
    args = ["tshark", "-r", str(pcap), "-Y", "dhcp", "-T", "fields", "-E", "separator=\t"]
    for name in TSHARK_FIELDS:
        args += ["-e", name]
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    return [dict(zip(TSHARK_FIELDS, line.split("\t"), strict=True)) for line in out.splitlines()]


def _ours(pcap: Path) -> list[dict[str, str]]:
    rows = []
    with pcap.open("rb") as fh:
        for _ts, frame in dpkt.pcap.Reader(fh):
            udp = parse_frame(bytes(frame))
            if not isinstance(udp, UdpPacket) or {udp.sport, udp.dport} != {67, 68}:
                continue
            pkt = dhcp.DhcpPacket.decode(udp.payload)
            pxe = pkt.pxe
            rows.append(
                {
                    "dhcp.id": f"0x{pkt.xid:08x}",
                    "dhcp.option.dhcp": str(pkt.message_type),
                    "dhcp.hw.mac_addr": pkt.mac,
                    "dhcp.ip.your": pkt.yiaddr,
                    "dhcp.option.dhcp_server_id": pkt.server_id or "",
                    "dhcp.option.vendor.pxeclient.boot_menu.desc": ",".join(
                        m.description for m in pxe.menu
                    )
                    if pxe
                    else "",
                    "dhcp.option.vendor.pxeclient.discovery_control": (
                        f"0x{pxe.discovery_control:02x}"
                        if pxe and pxe.discovery_control is not None
                        else ""
                    ),
                    "dhcp.option.vendor_class_id": pkt.vendor_class or "",
                    "udp.checksum": f"0x{udp.udp_checksum:04x}",
                    "ip.ttl": str(udp.ttl),
                }
            )
    return rows


@pytest.mark.netns
def test_probe_offers_against_dnsmasq_matches_tshark(lab: Lab, tmp_path: Path) -> None:
    root = tmp_path / "tftp"
    root.mkdir()
    pcap = tmp_path / "boot.pcap"
    lan = boot_lan(lab, tmp_path, pi_mac=PI3_MAC)
    pi = lan.pi
    start_proxy(lan.srv, tmp_path, root)
    # tcpdump exits by itself after the 6 expected frames: 2 × (DISCOVER + 2 OFFERs)
    dump = pi.popen(
        [
            "tcpdump",
            "-U",
            "--immediate-mode",
            "-n",
            "-i",
            "eth0",
            "-c",
            "6",
            "-w",
            str(pcap),
            "udp port 67 or udp port 68",
        ],
        stderr=subprocess.PIPE,
    )
    assert dump.stderr is not None
    assert b"listening on" in dump.stderr.readline()
    with in_netns(pi):
        pi3 = dhcp.probe(pi.iface, PI3_MAC, model="pi3", timeout=3.0)
        pi4 = dhcp.probe(pi.iface, model="pi4", serial="9ffefdef", timeout=3.0)
    assert dump.wait(timeout=10) == 0

    for result in (pi3, pi4):
        assert len(result.proxies) == 1 and len(result.dhcp_servers) == 1
        proxy = result.proxies[0]
        assert proxy.server == "10.99.0.1" and proxy.boots_pi
        assert proxy.packet.get(66) is None
        real = result.dhcp_servers[0]
        assert real.server == "10.99.0.254" and real.packet.yiaddr.startswith("10.99.0.")
    assert pi3.discover.xid == dhcp.PI3_ROM_XID
    assert pi4.mac[1] in "26ae"  # locally administered

    ours = _ours(pcap)
    theirs = _tshark(pcap)
    assert len(ours) == 6  # 2 × (DISCOVER + proxy OFFER + router OFFER)
    assert sorted(ours, key=json.dumps) == sorted(theirs, key=json.dumps)
    discovers = [r for r in ours if r["dhcp.option.dhcp"] == "1"]
    assert all(r["udp.checksum"] == "0x0000" and r["ip.ttl"] == "128" for r in discovers)
    assert any(r["dhcp.option.vendor.pxeclient.boot_menu.desc"] == dhcp.RPI_BOOT for r in ours)


@pytest.mark.netns
def test_probe_on_a_missing_interface_is_a_usage_error() -> None:
    needs_root()
    from steps.errors import UsageError

    with pytest.raises(UsageError, match="does not exist"):
        dhcp.probe_offers("nosuchif0", timeout=0.1)


def test_pi4_guid_is_little_endian_as_in_a_real_dnsmasq_log() -> None:
    # netboot.md §12: serial 5b154510, board rev 0x00a03111 logs as
    # 00:52:50:69:34:11:31:a0:00:<mac4>:10:45:15:5b
    guid = dhcp.pi4_guid("dc:a6:32:aa:bb:cc", "5b154510", board_rev=0x00A03111)
    assert guid.hex(":") == "00:52:50:69:34:11:31:a0:00:32:aa:bb:cc:10:45:15:5b"
    info = dhcp.parse_guid(guid)
    assert info == dhcp.PiGuid("pi4", "5b154510", 0x00A03111, bytes.fromhex("32aabbcc"))


def test_parse_guid_reads_every_pi_shape_and_nothing_else() -> None:
    assert dhcp.parse_guid(dhcp.PI3_ROM_GUID) == dhcp.PiGuid("pi3", None)
    # bootcode.bin: the serial little-endian four times (netboot.md §2.2, firmware#1605)
    bootcode = bytes.fromhex("00" + "164c6cb6" * 4)
    assert dhcp.parse_guid(bootcode) == dhcp.PiGuid("pi3", "b66c4c16")
    reversed_magic = b"\x00" + b"4iPR" + bytes(8) + bytes.fromhex("10451 55b".replace(" ", ""))
    assert dhcp.parse_guid(reversed_magic) == dhcp.PiGuid("pi4", "5b154510", 0, bytes(4))
    pi5 = dhcp.pi4_guid("2c:cf:67:00:00:01", "0a1b2c3d", fourcc=b"RPi5")
    assert dhcp.parse_guid(pi5) is not None and dhcp.parse_guid(pi5).model == "pi5"  # type: ignore[union-attr]
    for other in (None, b"", bytes(17), b"\x01" + bytes(16), bytes.fromhex("00" + "11" * 15)):
        assert dhcp.parse_guid(other) is None
