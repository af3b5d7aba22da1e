"""The per-Pi timeline's rules on made-up LANs (the cases a namespace lab cannot stage cheaply).

The namespace captures of tests/integration/test_monitor_captures.py cover each failure a real
dnsmasq and the virtual Pi can produce; here the frames come from ``tests.support.synthetic``.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable

from steps.wire import dhcp, tftp
from steps.wire.mdns import MdnsAnnouncement
from steps.wire.monitor import Monitor, MonitorOptions, watch
from steps.wire.monitor_events import (
    STAGES,
    ClientEvent,
    DiagnosisEvent,
    MonitorEvent,
    StageEvent,
    SummaryEvent,
)
from steps.wire.netframes import ip_bytes
from steps.wire.pcap import Record
from tests.support.synthetic import PI4_FILES, SERVER_IP, Pi, Wire, to_server

NS = 1_000_000_000


def run(records: Iterable[Record | None], **kw: object) -> list[MonitorEvent]:
    return list(watch(records, MonitorOptions(**kw)))  # type: ignore[arg-type]


def codes(
    events: list[MonitorEvent], *, severities: tuple[str, ...] = ("error", "warning")
) -> list[str]:
    return [e.code for e in events if isinstance(e, DiagnosisEvent) and e.severity in severities]


def finding(events: list[MonitorEvent], code: str) -> DiagnosisEvent:
    return next(e for e in events if isinstance(e, DiagnosisEvent) and e.code == code)


def summary(events: list[MonitorEvent]) -> SummaryEvent:
    last = events[-1]
    assert isinstance(last, SummaryEvent)
    return last


def test_good_boots_of_both_models_raise_nothing_and_reach_every_stage() -> None:
    wire = Wire()
    pi3, pi4 = Pi.pi3(), Pi.pi4()
    for pi in (pi3, pi4):
        wire.good_boot(pi)
        wire.wait(4)
        wire.linux_dhcp(pi)
        wire.wait(9)
        wire.announce(pi)
    events = run(wire.records)
    assert codes(events) == []
    assert codes(events, severities=("info",)) == ["early-terminate"]  # the Pi 4's probes
    clients = {c.mac: c for c in summary(events).clients}
    for pi in (pi3, pi4):
        c = clients[pi.mac]
        assert set(c.stages) == set(STAGES), c.stages
        assert (c.model, c.serial, c.ip, c.stage, c.bootloader) == (
            pi.model,
            pi.serial,
            pi.ip,
            "app-up",
            "linux",
        )
        assert c.ip_from == "10.99.0.254" and c.tftp_server == SERVER_IP
        assert all(t >= 0 for t in c.stages.values())
        assert c.stages["app-up"] > c.stages["os-dhcp"] >= 4
    assert clients[pi3.mac].serial_source == "prefix" and clients[pi4.mac].serial_source == "guid"
    statuses = {f.name: f.status for f in clients[pi4.mac].files}
    assert (
        statuses["kernel6647v8.img"] == "complete"
        and statuses[f"{pi4.serial}/start4.elf"] == "not-found"
    )
    assert [f.status for f in clients[pi4.mac].files if f.name == "start4.elf"] == [
        "probe",
        "complete",
    ]
    stage_events = [e for e in events if isinstance(e, StageEvent) and e.mac == pi3.mac]
    assert sorted(e.stage for e in stage_events) == sorted(STAGES)
    assert all(e.i is not None for e in stage_events)


def test_a_pi5_boot_reads_as_a_pi5_with_every_boot_stage() -> None:
    """The Pi 5 reads config.txt first (its per-device copy probed), no start*.elf, probes
    pieeprom.sig, then the initramfs files before its kernel (netboot.md §4.4, §12)."""
    wire = Wire()
    pi = Pi.pi5()
    wire.good_boot(pi)
    events = run(wire.records)
    assert codes(events) == []
    (c,) = summary(events).clients
    assert (c.model, c.model_source, c.serial, c.bootloader) == (
        "pi5",
        "guid",
        pi.serial,
        "pi5-eeprom",
    )
    assert set(c.stages) == set(STAGES) - {"os-dhcp", "app-up"}  # the capture ends there
    assert c.stages["initramfs"] < c.stages["kernel"]
    missing = [f.name for f in c.files if f.status == "not-found"]
    assert missing == [f"{pi.serial}/config.txt", "pieeprom.sig", "overlays/overlay_map.dtb"]


def test_only_the_watched_pi() -> None:
    wire = Wire()
    a, b = Pi.pi4(1), Pi.pi4(2)
    wire.good_boot(a)
    wire.dhcp_round(b)  # b gets no boot server: its DISCOVERs repeat
    wire.wait(2)
    wire.client(b, b.discover())
    events = run(wire.records, mac=b.mac)
    assert {
        getattr(e, "mac", b.mac) for e in events if not isinstance(e, (SummaryEvent, ClientEvent))
    } == {b.mac}
    assert [c.mac for c in summary(events).clients] == [b.mac]


def test_a_menu_with_the_pi_entry_second() -> None:
    wire = Wire()
    pi = Pi.pi4()
    disc = pi.discover()
    wire.client(pi, disc)
    wire.proxy_offer(pi, menu=("Install Windows", dhcp.RPI_BOOT))
    events = run(wire.records)
    assert codes(events) == ["pxe-menu-order"]
    assert finding(events, "pxe-menu-order").evidence == [1]


def test_a_pi_3_that_keeps_discovering_despite_good_offers() -> None:
    wire = Wire()
    pi = Pi.pi3()
    for _ in range(3):
        wire.client(pi, pi.discover())
        wire.proxy_offer(pi)
        wire.offer(pi)
        wire.wait(5)
    events = run(wire.records)
    assert codes(events) == ["offer-ignored"]
    assert "reply-timing" in finding(events, "offer-ignored").message


def test_requests_to_the_wrong_server_mac_or_address() -> None:
    wire = Wire()
    pi = Pi.pi3()
    wire.dhcp_round(pi)
    wire.arp(pi)
    wire.transfer(pi, "bootcode.bin", 600, dst_mac="aa:aa:aa:aa:aa:aa", client_port=49152)
    assert codes(run(wire.records)) == ["tftp-bad-server-mac"]
    wire = Wire()
    wire.client(pi, pi.discover())
    wire.offer(pi)
    wire.proxy_offer(pi, extra=[(66, b"tftp.example.lan\0")])
    events = run(wire.records)
    assert codes(events) == ["tftp-server-mismatch"]
    assert "firmware has no DNS" in finding(events, "tftp-server-mismatch").message


def test_a_transfer_that_stops_at_the_block_number_wrap() -> None:
    wire = Wire()
    pi = Pi.pi4()
    wire.dhcp_round(pi)
    first = len(wire.records)
    wire.transfer(
        pi, "kernel_2712.img", 3 * 1468, options={"tsize": "0", "blksize": "1468"}, stop_after=2
    )
    # a capture that misses blocks (a sampled mirror port) then shows 65534 and 65535 last
    _ts, _lt, frame, _o = wire.records[first + 3]  # DATA #1 (after RRQ, OACK, ACK 0)
    for block in (30000, 60000, 65534, 65535):
        wire.add(frame[:44] + struct.pack("!H", block) + frame[46:])
    wire.wait(10)
    wire.client(pi, pi.discover())  # the Pi starts over
    assert codes(run(wire.records))[:1] == ["tftp-block-rollover"]


def test_a_pi_that_gives_up_mid_file_and_a_stalled_transfer() -> None:
    wire = Wire()
    pi = Pi.pi4()
    wire.dhcp_round(pi)
    opts = {"tsize": "0", "blksize": "1468"}
    wire.gap = int(1.6e9)  # a slow link: a packet every 1.6 s
    i = wire.transfer(pi, "overlay.gz", 50 * 1468, options=opts, stop_after=20)
    port = wire.records  # the Pi's ERROR 0 after 30 s (its TFTP_FILE_TIMEOUT), mid-file
    rrq = port[i][2]
    sport = struct.unpack("!H", rrq[34:36])[0]
    oack = port[i + 1][2]
    eph = struct.unpack("!H", oack[34:36])[0]
    wire.add(to_server(pi, sport, eph, tftp.error(0, "Early terminate")))
    events = run(wire.records)
    assert codes(events) == ["tftp-timeout"]
    assert "TFTP_FILE_TIMEOUT" in finding(events, "tftp-timeout").message
    # without the Pi's error: the transfer just stops on the wire
    wire = Wire()
    wire.gap = int(0.0002e9)
    wire.dhcp_round(pi)
    wire.transfer(pi, "overlay.gz", 50 * 1468, options=opts, stop_after=20)
    wire.wait(20)
    wire.arp(pi)
    events = run(wire.records)
    assert codes(events) == ["tftp-timeout"]
    files = summary(events).clients[0].files
    assert (files[0].status, files[0].bytes) == ("timeout", 20 * 1468)


def test_silence_after_the_firmware_probes_is_a_stalled_boot() -> None:
    wire = Wire()
    pi = Pi.pi3()
    wire.dhcp_round(pi)
    wire.arp(pi)
    for name, size in (
        ("bootcode.bin", 52_000),
        ("bootsig.bin", None),
        (f"{pi.serial}/start.elf", None),
    ):
        wire.transfer(pi, name, size, options=None if size else {"tsize": "0"}, client_port=49152)
    monitor = Monitor(MonitorOptions(), live=True)
    events: list[MonitorEvent] = []
    for record in wire.records:
        events += monitor.feed(record)
    last = wire.records[-1][0]
    events += monitor.tick(last + 10 * NS)
    assert codes(events) == []
    events += monitor.tick(last + 31 * NS)
    assert codes(events) == ["boot-stalled"]
    assert "start.elf/fixup.dat" in finding(events, "boot-stalled").message


def test_firmware_and_config_read_but_no_kernel() -> None:
    wire = Wire()
    pi = Pi.pi4()
    files = [
        f for f in PI4_FILES if not f[0].startswith(("kernel", "rootfs", "modules", "overlay"))
    ]
    wire.good_boot(pi, files=files)
    wire.wait(40)
    wire.arp(pi, "10.99.0.254")
    events = run(wire.records)
    assert codes(events) == ["kernel-not-requested"]
    assert "(config.txt names kernel6647v8.img)" in finding(events, "kernel-not-requested").message


def test_linux_up_but_no_app_and_the_app_answering_live() -> None:
    wire = Wire()
    pi = Pi.pi4()
    wire.good_boot(pi)
    wire.wait(3)
    wire.linux_dhcp(pi)
    wire.wait(130)
    wire.arp(pi, "10.99.0.254")
    assert codes(run(wire.records)) == ["app-not-responding"]

    class Health:
        def __init__(self) -> None:
            self.asked: list[tuple[str, str | None]] = []

        def start(self, mac: str, announcement: MdnsAnnouncement, ip: str | None) -> None:
            self.asked.append((mac, ip))

        def done(self) -> list[tuple[str, bool, str]]:
            return [(mac, False, "connection refused") for mac, _ in self.asked[-1:]]

    wire = Wire()
    wire.good_boot(pi)
    wire.linux_dhcp(pi)
    wire.announce(pi)
    health = Health()
    monitor = Monitor(MonitorOptions(health=health), live=True)
    events: list[MonitorEvent] = []
    for record in wire.records:
        events += monitor.feed(record)
    assert health.asked == [(pi.mac, pi.ip)]
    events += monitor.tick(wire.records[-1][0] + NS)
    assert codes(events) == ["app-not-responding"]
    assert "connection refused" in finding(events, "app-not-responding").message


def test_no_pi_at_all() -> None:
    events = run([])
    assert codes(events) == ["no-discover"] and finding(events, "no-discover").mac is None
    monitor = Monitor(MonitorOptions(), live=True)
    t = 1_760_000_000 * NS
    assert codes(monitor.tick(t) + monitor.tick(t + 10 * NS)) == []
    assert codes(monitor.tick(t + 31 * NS)) == ["no-discover"]


def bootcode_round(wire: Wire, pi: Pi, prl: bytes) -> int:
    """bootcode.bin's own DHCP DISCOVER (same xid; 14 options requested)."""
    disc = pi.discover()
    opts = tuple((c, prl if c == 55 else v) for c, v in disc.options)
    return wire.client(pi, dhcp.DhcpPacket(op=1, xid=disc.xid, chaddr=disc.chaddr, options=opts))


def test_bootcode_second_round_is_normal_unless_nothing_follows() -> None:
    pi = Pi.pi3()
    healthy = Wire()
    healthy.dhcp_round(pi)
    healthy.arp(pi)
    healthy.transfer(pi, "bootcode.bin", 52_000, client_port=49152)
    bootcode_round(healthy, pi, dhcp.PI3_BOOTCODE_PRL)
    healthy.proxy_offer(pi)
    healthy.offer(pi)
    healthy.transfer(pi, f"{pi.serial}/start.elf", None, options={"tsize": "0"}, client_port=49152)
    healthy.transfer(pi, "config.txt", 332, options={"tsize": "0"}, client_port=49152)
    events = run(healthy.records)
    assert codes(events) == []
    (c,) = summary(events).clients
    assert c.boots == 1 and c.bootloader == "bootcode.bin"

    stuck = Wire()
    stuck.dhcp_round(pi)
    stuck.arp(pi)
    stuck.transfer(pi, "bootcode.bin", 52_000, client_port=49152)
    for _ in range(3):
        i = bootcode_round(stuck, pi, dhcp.PI3_BOOTCODE_PRL)
        stuck.proxy_offer(pi)
        stuck.offer(pi)
        stuck.wait(3)
    events = run(stuck.records)
    assert codes(events)[:1] == ["restart-after-bootcode"]
    assert i not in finding(events, "restart-after-bootcode").evidence or True


def test_a_capture_that_starts_mid_boot() -> None:
    wire = Wire()
    pi = Pi.pi4()
    wire.transfer(pi, "config.txt", 332, options={"tsize": "0", "blksize": "1468"})
    wire.transfer(pi, "start4.elf", 3000, options={"tsize": "0", "blksize": "1468"})
    events = run(wire.records)
    (c,) = summary(events).clients
    assert (c.mac, c.stage, c.model) == (pi.mac, "config", "pi4")
    assert codes(events) == []


def test_evidence_and_json_shapes() -> None:
    wire = Wire()
    pi = Pi.pi3()
    wire.client(pi, pi.discover())
    wire.offer(pi)
    wire.wait(3)
    wire.client(pi, pi.discover())
    events = run(wire.records)
    d = finding(events, "no-proxy-offer")
    assert d.evidence == [0, 2]
    obj = d.to_json()
    assert list(obj)[:7] == ["type", "code", "severity", "mac", "message", "fix", "evidence"]
    assert obj["fix"].startswith("Start our dnsmasq")
    s = summary(events).to_json()
    assert s["type"] == "summary" and s["clients"][0]["mac"] == pi.mac
    assert set(s["clients"][0]) >= {"mac", "ip", "serial", "model", "stage", "files"}
    stage = next(e for e in events if isinstance(e, StageEvent)).to_json()
    assert (stage["type"], stage["mac"], stage["stage"]) == ("stage", pi.mac, "discover")


def test_a_foreign_proxy_beside_ours_and_two_of_ours() -> None:
    wire = Wire()
    pi = Pi.pi4()
    disc = pi.discover()
    wire.client(pi, disc)
    wire.proxy_offer(pi)
    wire.proxy_offer(pi, server_ip="10.99.0.2", server_mac="02:00:00:00:00:02")
    events = run(wire.records)
    assert codes(events) == ["multiple-proxies"]
    assert finding(events, "multiple-proxies").evidence == [1, 2]
    # a generic PXE server (discovery control 8, no menu) answers too: not a second Pi proxy
    wire = Wire()
    wire.client(pi, disc)
    wire.offer(pi)
    wire.proxy_offer(pi)
    wire.reply(
        pi,
        dhcp.OFFER,
        server_ip="10.99.0.3",
        server_mac="02:00:00:00:00:03",
        options=[(60, b"PXEClient"), (43, bytes([6, 1, 8, 255]))],
    )
    assert codes(run(wire.records)) == []


def test_a_relay_offer_without_request_and_a_nak() -> None:
    wire = Wire()
    pi = Pi.pi4()
    disc = pi.discover()
    wire.client(pi, disc)
    wire.proxy_offer(pi)
    wire.offer(pi)
    wire.client(
        pi,
        dhcp.pi4_request(
            disc,
            dhcp.DhcpPacket(
                op=2,
                xid=pi.xid,
                chaddr=disc.chaddr,
                yiaddr=pi.ip,
                options=((54, ip_bytes("10.99.0.254")),),
            ),
        ),
    )
    wire.reply(pi, dhcp.NAK, server_ip="10.99.0.254", server_mac="02:00:00:00:00:fe")
    events = run(wire.records)
    assert (
        codes(events) == ["no-dhcp-lease"] and "DHCPNAK" in finding(events, "no-dhcp-lease").message
    )
