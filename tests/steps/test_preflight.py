"""Preflight judgements over real inputs: sockets, offers, dnsmasq --version, service files."""

from __future__ import annotations

from pathlib import Path

from steps.answers import default_answers
from steps.host.dnsmasq import render_dnsmasq_conf
from steps.host.netif import Address, Interface, Snapshot
from steps.host.preflight import (
    PortUse,
    check_interface,
    conf_dirs,
    is_read_by_service,
    port_findings,
    segment_findings,
    systemd_findings,
    version_findings,
)
from steps.wire.dhcp import DhcpPacket, Offer, build_pxe
from steps.wire.netframes import ip_bytes, mac_bytes

PROBE = "02:12:34:56:78:9a"


def offer(src_ip: str, src_mac: str, *, yiaddr: str = "0.0.0.0", menu: str | None = None) -> Offer:
    opts: list[tuple[int, bytes]] = [(53, b"\x02"), (54, ip_bytes(src_ip))]
    if menu is not None:
        opts += [(60, b"PXEClient"), (43, build_pxe([menu]))]
    pkt = DhcpPacket(op=2, xid=1, chaddr=mac_bytes(PROBE), options=tuple(opts), yiaddr=yiaddr)
    return Offer(pkt, src_mac, src_ip, 0.01)


def test_second_proxy_is_an_error_with_evidence_and_our_own_offers_are_ignored() -> None:
    offers = [
        offer("10.99.0.254", "02:00:00:00:00:fe", yiaddr="10.99.0.120"),
        offer("10.99.0.2", "02:00:00:00:00:02", menu="Raspberry Pi Boot"),
        offer("10.99.0.1", "02:00:00:00:00:01", menu="Raspberry Pi Boot"),  # us
    ]
    found = segment_findings(offers, {"10.99.0.1"}, PROBE)
    codes = [f.code for f in found]
    assert codes == ["dhcp-server", "second-proxy"]
    proxy = found[1]
    assert proxy.severity == "error"
    assert "10.99.0.2" in proxy.message and "Raspberry Pi boot menu" in proxy.message
    assert proxy.evidence == (
        f"option 43 in an offer from 10.99.0.2 (from 02:00:00:00:00:02) to probe {PROBE}",
    )
    assert "one Pi boot server per segment" in proxy.fix
    assert found[0].evidence == ("10.99.0.254 offered 10.99.0.120 (from 02:00:00:00:00:fe)",)


def test_no_dhcp_server_is_a_warning() -> None:
    found = segment_findings([], {"10.99.0.1"}, PROBE)
    assert [(f.code, f.severity) for f in found] == [("no-dhcp-server", "warning")]
    generic = segment_findings([offer("10.99.0.3", "02:00:00:00:00:03", menu="iPXE")], set(), PROBE)
    assert "sends PXE options" in generic[1].message


def test_port_holders_are_named_with_pid_and_ours_are_not_conflicts() -> None:
    users = [
        PortUse(67, "0.0.0.0", 4242, "dnsmasq"),
        PortUse(69, "0.0.0.0", 777, "in.tftpd"),
        PortUse(69, "::", 777, "in.tftpd"),
        PortUse(67, "0.0.0.0", 100, "dnsmasq"),
        PortUse(69, "10.0.0.1", None, "?"),
    ]
    found = port_findings(users, own_pids={100})
    assert [(f.severity, f.message) for f in found] == [
        ("warning", "another dnsmasq (PID 4242) holds udp/67 (DHCP) on 0.0.0.0"),
        ("error", "a process (run as root to see it) holds udp/69 (TFTP) on 10.0.0.1"),
        ("error", "in.tftpd (PID 777) holds udp/69 (TFTP) on 0.0.0.0, ::"),
    ]
    assert found[2].evidence == (
        "udp 0.0.0.0:69 held by in.tftpd (PID 777)",
        "udp :::69 held by in.tftpd (PID 777)",
    )


def test_dnsmasq_version_against_the_options_used() -> None:
    a = default_answers()
    conf = render_dnsmasq_conf(
        a, Interface("eth0", "wired", addresses=(Address("10.0.0.1", 24),), up=True)
    )
    real = (
        "Dnsmasq version 2.90  Copyright (c) 2000-2024 Simon Kelley\n"
        "Compile time options: IPv6 GNU-getopt DHCP TFTP\n"
    )
    assert [f.code for f in version_findings(real, conf)] == ["dnsmasq-ok"]
    old = "Dnsmasq version 2.76  Copyright\nCompile time options: IPv6 DHCP TFTP\n"
    too_old = version_findings(old, conf)
    assert [(f.code, f.severity) for f in too_old] == [("dnsmasq-too-old", "error")]
    assert "2.77" in too_old[0].message and "pi3_reply_delay" in too_old[0].fix
    a.network.pi3_reply_delay = False
    conf2 = render_dnsmasq_conf(
        a, Interface("eth0", "wired", addresses=(Address("10.0.0.1", 24),), up=True)
    )
    assert [f.code for f in version_findings(old, conf2)] == ["dnsmasq-ok"]
    stripped = "Dnsmasq version 2.90\nCompile time options: IPv6 no-DHCP no-TFTP\n"
    assert {f.code for f in version_findings(stripped, conf)} == {
        "dnsmasq-no-dhcp",
        "dnsmasq-no-tftp",
    }


def test_interface_findings() -> None:
    a = default_answers()
    a.network.interface = "eth9"
    snap = Snapshot((Interface("eth0", "wired", up=True, addresses=(Address("10.0.0.1", 24),)),))
    missing = check_interface(a, snap)
    assert [(f.code, f.severity) for f in missing] == [("interface-missing", "error")]
    assert "eth0" in missing[0].fix
    a.network.interface = "eth0"
    assert check_interface(a, snap) == []
    wl = Snapshot((Interface("eth0", "wireless", up=True, carrier=False, addresses=()),))
    codes = {(f.code, f.severity) for f in check_interface(a, wl)}
    assert codes == {("wireless", "warning"), ("no-carrier", "warning"), ("no-address", "error")}


DEBIAN_DEFAULT = """# Debian's /etc/default/dnsmasq
ENABLED=1
CONFIG_DIR=/etc/dnsmasq.d,.dpkg-dist,.dpkg-old,.dpkg-new
"""


def test_systemd_conf_dir_rules() -> None:
    dirs = conf_dirs("#conf-dir=/etc/dnsmasq.d/,*.conf\n", DEBIAN_DEFAULT)
    assert dirs == [(Path("/etc/dnsmasq.d"), (".dpkg-dist", ".dpkg-old", ".dpkg-new"), False)]
    assert is_read_by_service(Path("/etc/dnsmasq.d/firecore.conf"), dirs)
    assert not is_read_by_service(Path("/etc/dnsmasq.d/firecore.conf.dpkg-old"), dirs)
    assert not is_read_by_service(Path("/etc/firecore.conf"), dirs)
    only_conf = conf_dirs("conf-dir=/etc/dnsmasq.d/,*.conf\n", "#CONFIG_DIR=x\n")
    assert is_read_by_service(Path("/etc/dnsmasq.d/firecore.conf"), only_conf)
    assert not is_read_by_service(Path("/etc/dnsmasq.d/firecore.cfg"), only_conf)

    a = default_answers()
    a.network.dnsmasq_service = "systemd"
    ok = systemd_findings(a, "", DEBIAN_DEFAULT)
    assert [f.code for f in ok] == ["systemd-dns-off"]
    unread = systemd_findings(a, "", "ENABLED=1\n")
    assert unread[0].code == "systemd-conf-dir" and unread[0].severity == "error"
    assert "conf-dir=/etc/dnsmasq.d/,*.conf" in unread[0].fix
    absent = systemd_findings(a, None, None)
    assert absent[0].code == "systemd-no-dnsmasq"
