"""Golden captures of real boots: each failure names its code, a good boot names none.

Every capture is made here, in network namespaces: real dnsmasq (a home router's plain DHCP and
our proxy-DHCP + TFTP, as netboot.md §7.1 configures it), the virtual Pi booting as a Pi 3 or
Pi 4 does, tcpdump on the Pi's switch port (``tests.support.captures``). One thing is broken per
capture; the monitor must name exactly that code, and the decoder must agree with tshark on every
field of every DHCP, ARP and TFTP packet (``tests.support.tshark``) — transfers on ephemeral
ports, Linux cooked captures from `tcpdump -i any`, and 802.1Q / pcapng / nanosecond copies
(this kernel has no 802.1Q driver: VLAN frames are copies written with a tag) included.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from steps.host.dnsmasq import load_ouis
from steps.wire.monitor import MonitorOptions, watch
from steps.wire.monitor_events import (
    STAGES,
    DiagnosisEvent,
    MonitorEvent,
    PacketEvent,
    SummaryEvent,
)
from steps.wire.pcap import read_file, write_records
from tests.conftest import ROOT, needs_root
from tests.support import linkcopies
from tests.support.captures import NetbootLan, monitor_json, tcpdump
from tests.support.tshark import assert_same_as_tshark

pytestmark = pytest.mark.netns

PI3_MAC = "b8:27:eb:1f:7e:57"  # the virtual Pi 3 of serial 5e1f7e57


def monitor(pcap: Path) -> list[MonitorEvent]:
    return list(watch(read_file(pcap), MonitorOptions(ouis=load_ouis())))


def codes(
    events: list[MonitorEvent], severities: tuple[str, ...] = ("error", "warning")
) -> list[str]:
    return [e.code for e in events if isinstance(e, DiagnosisEvent) and e.severity in severities]


def packets(events: list[MonitorEvent]) -> list[dict[str, Any]]:
    return [e.to_json() for e in events if isinstance(e, PacketEvent)]


def summary(events: list[MonitorEvent]) -> SummaryEvent:
    assert isinstance(events[-1], SummaryEvent)
    return events[-1]


def same_packets(
    a: list[dict[str, Any]], b: list[dict[str, Any]], *, drop: tuple[str, ...] = ()
) -> None:
    """Two decodes of one boot taken differently: the same packets in order (indexes and times
    may differ, and ``drop`` keys one link layer does not carry)."""

    def norm(p: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in p.items() if k not in ("i", "t", *drop)}

    assert [norm(p) for p in a] == [norm(p) for p in b]


# ----------------------------------------------------------------------------- good boots


def test_a_pi3_boot_to_its_app_reads_as_every_stage_and_no_diagnosis(tmp_path: Path) -> None:
    needs_root()
    with NetbootLan(tmp_path, pi_mac=PI3_MAC) as lan, lan.capture("pi3-good") as pcap:
        report = lan.boot("pi3")
        assert report.ok, report.stages[-1]
        lan.linux_up(report.ip or "")
    events = monitor(pcap)
    assert codes(events) == [] and codes(events, ("info",)) == ["early-terminate"]  # kernel probe
    (c,) = summary(events).clients
    assert set(c.stages) == set(STAGES) and c.stage == "app-up"
    assert (c.mac, c.model, c.serial, c.ip, c.tftp_server) == (
        PI3_MAC,
        "pi3",
        "5e1f7e57",
        report.ip,
        "10.99.0.1",
    )
    assert c.ip_from == "10.99.0.254" and c.bootloader == "linux"
    assert list(c.stages.values()) == sorted(c.stages.values())
    served = {f.name: (f.status, f.bytes) for f in c.files}
    assert served["bootcode.bin"] == ("complete", 52_000)
    assert served["overlay.gz"] == ("complete", 80_000)
    assert served["bootsig.bin"][0] == "not-found"
    n = assert_same_as_tshark(pcap, packets(events))
    assert n > 1900
    # the same capture as pcapng and as a nanosecond pcap (editcap), and through stdin
    for fmt in ("pcapng", "nsecpcap"):
        copy = tmp_path / f"copy.{fmt}"
        subprocess.run(["editcap", "-F", fmt, str(pcap), str(copy)], check=True)
        same_packets(packets(monitor(copy)), packets(events))
        assert codes(monitor(copy)) == []
    file_rc, file_lines = monitor_json(pcap)
    stdin_rc, stdin_lines = monitor_json(pcap, stdin=pcap.read_bytes())
    assert file_rc == stdin_rc == 0 and file_lines == stdin_lines
    assert [x["type"] for x in file_lines[-2:]] == ["summary", "done"] and len(file_lines) > n


def test_a_pi4_boot_and_its_cooked_captures(tmp_path: Path) -> None:
    needs_root()
    with NetbootLan(tmp_path) as lan:
        sll2 = tmp_path / "any-sll2.pcap"
        sll1 = tmp_path / "any-sll.pcap"
        with (
            tcpdump(lan.pi.ns, "any", sll2),
            tcpdump(lan.pi.ns, "any", sll1, extra=["-y", "LINUX_SLL"]),
            lan.capture("pi4-good") as pcap,
        ):
            report = lan.boot("pi4")
    assert report.ok
    events = monitor(pcap)
    assert codes(events) == [] and codes(events, ("info",)) == ["early-terminate"]
    (c,) = summary(events).clients
    assert (c.model, c.model_source, c.serial, c.serial_source, c.stage) == (
        "pi4",
        "guid",
        "5e1f7e57",
        "guid",
        "initramfs",
    )
    probes = [f.name for f in c.files if f.status == "probe"]
    assert probes == ["start4.elf", "fixup4.dat", "kernel6647v8.img"]
    assert_same_as_tshark(pcap, packets(events))
    ours = packets(events)
    for cooked, linktype in ((sll2, 276), (sll1, 113)):
        assert {r[1] for r in read_file(cooked)} == {linktype}
        cooked_events = monitor(cooked)
        assert codes(cooked_events) == []
        assert summary(cooked_events).clients[0].stage == "initramfs"
        # three captures at once on two busy cores may each drop a few frames, so the real
        # cooked captures are checked against tshark; the copies below must match exactly
        assert_same_as_tshark(cooked, packets(cooked_events), cooked=True)
    # copies on other link layers written by our own writer: 802.1Q, QinQ, SLL, SLL2 (pcapng)
    records = list(read_file(pcap))
    for name, how in (("vlan", linkcopies.vlan), ("sll2", linkcopies.sll2)):
        copy = tmp_path / f"{name}.pcapng"
        write_records(copy, [how(r) for r in records])
        copy_events = monitor(copy)
        same_packets(packets(copy_events), ours, drop=("dst_mac",) if "sll" in name else ())
        assert_same_as_tshark(copy, packets(copy_events), cooked="sll" in name)


def test_a_pi5_boot(tmp_path: Path) -> None:
    """The Pi 5 bootloader (RPi5 GUID, config.txt first, no start*.elf, its self-update probe,
    a D0 board's device tree) boots to its last initramfs file with nothing to report."""
    needs_root()
    with NetbootLan(tmp_path) as lan, lan.capture("pi5-good") as pcap:
        vp_report = lan.boot("pi5")
    assert vp_report.ok, vp_report.stages[-1]
    events = monitor(pcap)
    assert codes(events) == []
    (c,) = summary(events).clients
    assert (c.model, c.model_source, c.serial, c.serial_source, c.bootloader) == (
        "pi5",
        "guid",
        "5e1f7e57",
        "guid",
        "pi5-eeprom",
    )
    assert {"discover", "lease", "firmware", "config", "kernel", "initramfs"} <= set(c.stages)
    assert not any(f.name.endswith(".elf") for f in c.files)
    assert {f.name: f.status for f in c.files}["pieeprom.sig"] == "not-found"
    assert_same_as_tshark(pcap, packets(events))


# ----------------------------------------------------------------------------- failures


def remove(*names: str) -> Callable[[NetbootLan], None]:
    def setup(lan: NetbootLan) -> None:
        for name in names:
            (lan.tree / name).unlink()

    return setup


def unreadable(name: str) -> Callable[[NetbootLan], None]:
    def setup(lan: NetbootLan) -> None:
        os.chmod(lan.tree / name, 0o600)  # dnsmasq serves world-readable files only

    return setup


def no_pi4_kernel(lan: NetbootLan) -> None:
    config = lan.tree / "config.txt"
    config.write_text(config.read_text().replace("kernel kernel6647v8.img\n", ""))


def server_firewall(lan: NetbootLan) -> None:
    # a host firewall that allows udp/69 in but drops the answers from ephemeral ports
    lan.firewall(
        lan.srv,
        NFT.format(family="inet", hook="output", rule="udp sport != 69 udp dport >= 1024 drop"),
    )


def path_drops_replies(lan: NetbootLan) -> None:
    # a stateful box on the path that only lets udp/69 through
    lan.firewall(
        lan.lab.switch,
        NFT.format(
            family="bridge", hook="forward", rule="udp sport >= 1024 udp dport >= 1024 drop"
        ),
    )


def small_mtu_path(lan: NetbootLan) -> None:
    # frames over 1000 bytes are lost on the path (a VLAN/tunnel MTU below 1500)
    lan.firewall(
        lan.lab.switch, NFT.format(family="bridge", hook="forward", rule="udp length > 1000 drop")
    )


def arp_ignored(lan: NetbootLan) -> None:
    lan.srv.run(["sh", "-c", "echo 8 > /proc/sys/net/ipv4/conf/eth0/arp_ignore"])


NFT = "table {family} t {{\n chain c {{\n type filter hook {hook} priority 0;\n {rule}\n }}\n}}\n"

FAILURES: dict[str, dict[str, Any]] = {
    "no-proxy": dict(lan=dict(proxy=False), model="pi3", codes=["no-proxy-offer"]),
    "no-dhcp-server": dict(lan=dict(router=False), model="pi4", codes=["no-dhcp-lease"]),
    "wrong-menu-text": dict(
        lan=dict(proxy_kw=dict(menu="Install Windows", only_pis=False)),
        model="pi4",
        codes=["bad-option-43"],
    ),
    "two-proxies": dict(model="pi3", codes=["multiple-proxies"], second_proxy=True),
    "boot-file-missing": dict(
        model="pi3", setup=remove("start.elf"), codes=["tftp-file-not-found"]
    ),
    "initramfs-missing": dict(model="pi4", setup=remove("overlay.gz"), codes=["initramfs-missing"]),
    "dtoverlay-file-missing": dict(
        model="pi5", setup=remove("overlays/vc4-kms-v3d.dtbo"), codes=["tftp-file-not-found"]
    ),
    "kernel-not-in-config": dict(model="pi4", setup=no_pi4_kernel, codes=["kernel-not-requested"]),
    "file-not-readable": dict(
        model="pi3", setup=unreadable("start.elf"), codes=["tftp-access-denied"]
    ),
    "firewall-drops-tftp-answers": dict(
        model="pi4", setup=server_firewall, codes=["tftp-no-response"]
    ),
    "path-drops-tftp-data": dict(
        model="pi4", setup=path_drops_replies, at="srv", codes=["tftp-reply-lost"]
    ),
    "path-mtu-below-blksize": dict(
        model="pi4", setup=small_mtu_path, at="srv", codes=["tftp-blocks-lost"]
    ),
    "server-ignores-arp": dict(model="pi3", setup=arp_ignored, codes=["arp-unanswered"]),
    "no-pi-at-all": dict(model=None, codes=["no-discover"]),
    "dhcp-again-after-bootcode": dict(model="pi3", restarts=1, codes=["restart-after-bootcode"]),
    "boot-loop": dict(model="pi3", restarts=3, codes=["restart-after-bootcode", "boot-loop"]),
}


@pytest.mark.parametrize("name", list(FAILURES))
def test_each_failure_names_its_code(tmp_path: Path, name: str) -> None:
    needs_root()
    case = FAILURES[name]
    with NetbootLan(tmp_path, **case.get("lan", {})) as lan:
        if case.get("second_proxy"):
            lan.add_proxy("10.99.0.2")
        if "setup" in case:
            case["setup"](lan)
        with lan.capture(name, at=case.get("at", "pi")) as pcap:
            if case["model"] is None:
                time.sleep(1.0)  # a LAN with servers and no Pi
            elif case.get("restarts"):
                for _ in range(case["restarts"]):
                    lan.boot(case["model"], stop_after="tftp:bootcode.bin")
                if case["restarts"] == 1:
                    lan.boot(case["model"])
            else:
                report = lan.boot(case["model"])
                assert not report.ok
    events = monitor(pcap)
    assert codes(events) == case["codes"], [
        (e.code, e.message) for e in events if isinstance(e, DiagnosisEvent)
    ]
    for event in events:
        if isinstance(event, DiagnosisEvent) and event.severity == "error":
            assert event.fix and event.message
            assert event.evidence or event.code == "no-discover"
    assert_same_as_tshark(pcap, packets(events))
    rc, lines = monitor_json(pcap)
    assert rc == (0 if name == "no-pi-at-all" else 1)
    assert [x["code"] for x in lines if x["type"] == "diagnosis" and x["severity"] != "info"] == (
        case["codes"]
    )


def test_the_cli_on_a_damaged_capture_reports_what_came_before(tmp_path: Path) -> None:
    needs_root()
    with NetbootLan(tmp_path) as lan, lan.capture("cut") as pcap:
        lan.boot("pi3", stop_after="tftp:config.txt")
    data = pcap.read_bytes()
    cut = tmp_path / "cut-short.pcap"
    cut.write_bytes(data[: len(data) - 300])
    rc, lines = monitor_json(cut)
    assert rc == 1 and [x["type"] for x in lines[-3:]] == ["summary", "error", "done"]
    assert "ends inside a record" in lines[-2]["message"]
    assert any(x.get("stage") == "firmware" for x in lines if x["type"] == "stage")
    wizard = str(Path(sys.executable).with_name("firecore-wizard"))
    proc = subprocess.run(
        [wizard, "monitor", "--json", "--pcap", str(cut)], capture_output=True, text=True
    )
    assert "Traceback" not in proc.stderr and "ends inside a record" in proc.stderr
    shutil.copy(ROOT / "README.md", tmp_path / "notes.pcap")
    proc = subprocess.run(
        [wizard, "monitor", "--pcap", str(tmp_path / "notes.pcap")], capture_output=True, text=True
    )
    assert proc.returncode == 2 and proc.stdout == ""
    assert "is not a pcap or pcapng capture" in proc.stderr and "Traceback" not in proc.stderr
