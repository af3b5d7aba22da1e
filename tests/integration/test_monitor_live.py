"""The monitor capturing live (AF_PACKET + its kernel filter) while a virtual Pi boots.

``firecore-wizard monitor --interface eth0 --json --write`` runs in the server namespace, as a
user would run it on the boot server, next to ``tcpdump -i eth0 arp or udp``; a virtual Pi 3
boots to Linux and to its real app (HTTP service and mDNS announcer from assets/app). The
monitor must report the same packets tcpdump captured, mark ``app-up`` only once ``/health``
answered, and write a pcap that decodes to the same packets. Ctrl-C ends it with the summary.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from steps.wire import dhcp
from steps.wire.capture import LiveCapture
from steps.wire.decode import Decoder
from steps.wire.monitor import MonitorOptions, watch
from steps.wire.monitor_events import PacketEvent
from steps.wire.pcap import (
    LINKTYPE_LINUX_SLL2,
    CaptureDamagedError,
    CaptureReader,
    NotACaptureError,
    read_file,
)
from steps.wire.rawlink import RawLink
from tests.conftest import needs_root
from tests.support.captures import NetbootLan, tcpdump
from tests.support.lab import Lab, stop_process
from tests.support.netboot_lab import in_netns

pytestmark = pytest.mark.netns

WIZARD = str(Path(sys.executable).with_name("firecore-wizard"))
PI3_MAC = "b8:27:eb:1f:7e:57"


def wait_for(path: Path, text: bytes, proc: subprocess.Popen[Any]) -> None:
    deadline = time.monotonic() + 240
    while text not in path.read_bytes():
        assert proc.poll() is None and time.monotonic() < deadline, path.read_text()
        time.sleep(0.05)


def pcap_frames(path: Path) -> int:
    """Whole frames in a capture tcpdump is still writing (a torn last one not counted)."""
    if not path.exists():
        return 0
    with path.open("rb") as fh:
        reader = CaptureReader(fh, path.name)
        with contextlib.suppress(CaptureDamagedError, NotACaptureError):
            for _ in reader:
                pass
    return reader.records


def without_position(packets: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in p.items() if k not in ("i", "t")} for p in packets]


def test_live_monitor_reports_what_tcpdump_captures_up_to_the_app(tmp_path: Path) -> None:
    needs_root()
    written = tmp_path / "live.pcapng"
    with NetbootLan(tmp_path, pi_mac=PI3_MAC) as lan:
        err = tmp_path / "monitor.err"
        out = tmp_path / "monitor.out"
        with out.open("wb") as fo, err.open("wb") as fe:
            mon = lan.srv.popen(
                [WIZARD, "monitor", "--interface", "eth0", "--json", "--write", str(written)],
                stdout=fo,
                stderr=fe,
            )
        wait_for(err, b"capturing ARP and UDP on eth0", mon)
        with tcpdump(lan.srv.ns, "eth0", tmp_path / "tcpdump.pcap", extra=["arp", "or", "udp"]):
            report = lan.boot("pi3")
            assert report.ok
            lan.linux_up(report.ip or "", service=True)
            deadline = time.monotonic() + 240
            while b'"stage": "app-up"' not in out.read_bytes():
                assert mon.poll() is None and time.monotonic() < deadline, err.read_text()
                time.sleep(0.1)
            time.sleep(1.0)
            # a starved tcpdump reads the kernel's buffer late, and what it has not read when
            # it is stopped is lost uncounted: let it catch up with the monitor first
            seen = out.read_bytes().count(b'"type": "packet"')
            deadline = time.monotonic() + 120
            while pcap_frames(tmp_path / "tcpdump.pcap") < seen:
                if time.monotonic() > deadline:
                    break  # frames it dropped: counted in its log, allowed for below
                time.sleep(0.1)
        mon.send_signal(signal.SIGINT)  # Ctrl-C: the summary, then exit 130
        assert mon.wait(timeout=240) == 130, err.read_text()
        stop_process(mon)
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert [x["type"] for x in lines[-3:]] == ["summary", "error", "done"], err.read_text()
    assert lines[-1]["exit_code"] == 130
    (client,) = lines[-3]["clients"]
    assert client["stage"] == "app-up" and client["mac"] == PI3_MAC
    assert set(client["stages"]) >= {"discover", "firmware", "initramfs", "os-dhcp", "app-up"}
    assert [x for x in lines if x["type"] == "diagnosis" and x["severity"] != "info"] == []
    live = [x for x in lines if x["type"] == "packet"]
    # tcpdump on the same interface saw the same packets (its capture, decoded, up to the
    # moment it stopped: the monitor ran a little longer)
    dumped = [
        e.to_json()
        for e in watch(read_file(tmp_path / "tcpdump.pcap"), MonitorOptions())
        if isinstance(e, PacketEvent)
    ]
    tcpdump_log = (tmp_path / "tcpdump.pcap.log").read_text()
    got = re.search(r"(\d+) packets? dropped by kernel", tcpdump_log)
    tcpdump_drops = int(got.group(1)) if got else 0
    assert len(dumped) + tcpdump_drops > 1900  # the whole boot
    theirs = without_position(dumped)
    ours = without_position(live)
    for p in (*ours, *theirs):
        p.pop("mac", None)
    start = ours.index(theirs[0])  # the monitor may have started a moment earlier
    monitor_drops = lines[-3].get("dropped") or 0
    if not tcpdump_drops and not monitor_drops:
        assert ours[start : start + len(theirs)] == theirs
    else:
        # two captures at once on two busy cores: a kernel drop on either side takes frames out
        window = ours[start : start + len(theirs) + tcpdump_drops]
        a = Counter(json.dumps(p, sort_keys=True) for p in window)
        b = Counter(json.dumps(p, sort_keys=True) for p in theirs)
        assert sum((b - a).values()) <= monitor_drops and sum((a - b).values()) <= tcpdump_drops
    # the --write file holds every frame the monitor read: same packets, same indexes
    rewritten = [
        e.to_json()
        for e in watch(read_file(written), MonitorOptions())
        if isinstance(e, PacketEvent)
    ]
    assert [p["i"] for p in rewritten] == [p["i"] for p in live]
    assert "wrote" in err.read_text()


def test_without_cap_net_raw_one_line_and_exit_2(tmp_path: Path) -> None:
    needs_root()
    proc = subprocess.run(
        [
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
            "--bounding-set=-all",
            WIZARD,
            "monitor",
            "--interface",
            "lo",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "HOME": str(tmp_path)},
    )
    assert proc.returncode == 2
    assert [json.loads(x)["type"] for x in proc.stdout.splitlines()] == ["error", "done"]
    lines = proc.stderr.strip().splitlines()
    assert lines[0] == "ERROR Usage: capturing on lo needs root (CAP_NET_RAW)"
    assert "Traceback" not in proc.stderr and len(lines) <= 2


def test_a_vlan_tag_the_kernel_removed_is_put_back_like_tcpdump(tmp_path: Path) -> None:
    """Tagged frames arrive on a veth; the kernel moves the tag into metadata before packet
    sockets see them: the capture must put it back (PACKET_AUXDATA), as libpcap does."""
    needs_root()
    with Lab() as lab:
        a = lab.host("a", None, mac="02:00:00:00:00:0a")
        b = lab.host("b", None, mac="02:00:00:00:00:0b")
        pi = dhcp.pi3_rom_discover(PI3_MAC)
        frame = dhcp.client_frame(pi, src_mac=PI3_MAC)
        tagged = frame[:12] + b"\x81\x00\x00\x0a" + frame[12:]
        dump = tmp_path / "b.pcap"
        with in_netns(b):
            cap = LiveCapture("eth0", poll=0.05)
        with cap, tcpdump(b.ns, "eth0", dump):
            with in_netns(a), RawLink("eth0", PI3_MAC) as link:
                for _ in range(3):
                    link.send(tagged)
            got = []
            for record in cap:
                if record is not None and record[2][12:14] == b"\x81\x00":
                    got.append(record)
                if len(got) == 3:
                    break
            time.sleep(0.5)
    assert [r[2] for r in got] == [tagged] * 3
    assert [r[2][: len(tagged)] for r in read_file(dump) if r[2][12:14] == b"\x81\x00"] == (
        [tagged] * 3
    )
    d = Decoder()
    assert d.decode(0, got[0]).to_json()["msg_type"] == "DISCOVER"  # type: ignore[union-attr]


def test_any_captures_cooked_frames_from_every_interface(tmp_path: Path) -> None:
    needs_root()
    with Lab() as lab:
        a = lab.host("a", None)
        b = lab.host("b", None)
        frame = dhcp.client_frame(dhcp.pi3_rom_discover(PI3_MAC), src_mac=PI3_MAC)
        with in_netns(b):
            cap = LiveCapture("any", poll=0.05)
        with cap:
            with in_netns(a), RawLink("eth0", PI3_MAC) as link:
                link.send(frame)
            d = Decoder()
            for i, record in enumerate(cap):
                if record is None:
                    continue
                assert record[1] == LINKTYPE_LINUX_SLL2
                pkt = d.decode(i, record)
                if pkt is not None:
                    break
    assert pkt is not None
    obj = pkt.to_json()
    assert (obj["msg_type"], obj["src_mac"], obj["dst_mac"]) == (
        "DISCOVER",
        PI3_MAC,
        "ff:ff:ff:ff:ff:ff",
    )
