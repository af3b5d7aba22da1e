"""The Diagnostics screen's pure parts: the packet ring and the wording of each pane."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from steps.wire.monitor_events import (
    ClientSnapshot,
    DiagnosisEvent,
    FileResult,
    TftpPacketEvent,
)
from wizard.widgets import monitor_text
from wizard.widgets.packet_list import Ring


def test_the_ring_keeps_the_newest_in_order() -> None:
    ring: Ring[int] = Ring(3)
    ring.extend(range(7))
    assert list(ring) == [4, 5, 6] and len(ring) == 3 and ring.total == 7
    assert (ring[0], ring[2], ring[-1]) == (4, 6, 6)
    with pytest.raises(IndexError):
        ring[3]
    ring.clear()
    assert list(ring) == [] and ring.total == 0
    with pytest.raises(ValueError):
        Ring(0)


@settings(max_examples=300, deadline=None)
@given(
    size=st.integers(1, 9),
    batches=st.lists(st.lists(st.integers(), max_size=25), max_size=8),
)
def test_a_batch_lands_as_that_many_appends(size: int, batches: list[list[int]]) -> None:
    """``extend`` works by slices; every state it leaves is the one appending one by one does."""
    by_batch: Ring[int] = Ring(size)
    one_by_one: Ring[int] = Ring(size)
    for batch in batches:
        by_batch.extend(iter(batch))
        for item in batch:
            one_by_one.append(item)
        assert list(by_batch) == list(one_by_one)
        assert (len(by_batch), by_batch.total) == (len(one_by_one), one_by_one.total)
        assert [by_batch[i] for i in range(-len(by_batch), len(by_batch))] == [
            one_by_one[i] for i in range(-len(one_by_one), len(one_by_one))
        ]


def pi(**kw: object) -> ClientSnapshot:
    return ClientSnapshot(mac="b8:27:eb:12:34:56", model="pi3", serial="12345678", **kw)  # type: ignore[arg-type]


def test_a_healthy_boot_in_one_line() -> None:
    client = pi(
        stages={
            "discover": 0.0,
            "firmware": 1.23,
            "config": 1.5,
            "kernel": 4.0,
            "initramfs": 9.8,
            "os-dhcp": 15.2,
            "app-up": 23.4,
        }
    )
    assert monitor_text.headline(client) == (
        "firmware 1.2 s, kernel 4.0 s, initramfs 9.8 s, Linux up 15 s, app up 23 s"
    )


def test_the_timeline_marks_only_the_files_a_diagnosis_names() -> None:
    files = [
        FileResult(name="bootcode.bin", status="complete", bytes=52_000, i=5),
        FileResult(name="bootsig.bin", status="not-found", i=9),
        FileResult(name="start.elf", status="not-found", i=20),
        FileResult(name="kernel7.img", status="running", bytes=1000, tsize=4000, i=30),
    ]
    client = pi(stages={"discover": 0.0, "firmware": 1.0}, files=files, stage="firmware")
    text = monitor_text.timeline(client, flagged={"start.elf"}).plain
    assert " ✓ bootcode.bin  52.0 kB" in text
    assert " · bootsig.bin" in text and " ✕ start.elf" in text
    assert " ▸ kernel7.img  1.0 kB of 4.0 kB" in text
    assert " ✓ firmware        1.00 s  +1.00" in text and " ○ kernel" in text
    # files of an earlier boot are counted, not listed
    later = monitor_text.timeline(client, since=20).plain
    assert "bootcode.bin" not in later and "(and 2 of earlier boots)" in later


def test_the_progress_cell() -> None:
    running = FileResult(name="x/kernel8.img", status="running", bytes=3000, tsize=4000)
    assert monitor_text.progress_cell(running).plain == "██████░░  75% kernel8…"
    unknown = FileResult(name="overlay.gz", status="running", bytes=1500)
    assert monitor_text.progress_cell(unknown).plain == "1.5 kB overlay…"
    assert monitor_text.progress_cell(None).plain == ""


def test_a_diagnosis_reads_code_place_message_fix_evidence() -> None:
    d = DiagnosisEvent(
        code="tftp-file-not-found",
        severity="error",
        mac="b8:27:eb:12:34:56",
        message="start.elf not found",
        fix="Deploy again",
        evidence=list(range(10)),
        t=12.34,
        stage="config",
    )
    assert monitor_text.diagnosis(d).plain.splitlines() == [
        "✕ tftp-file-not-found  b8:27:eb:12:34:56 · at config · 12.3 s",
        "start.elf not found",
        "fix: Deploy again",
        "evidence: packets 0, 1, 2, 3, 4, 5, 6, 7 (+2) — Enter shows the first",
    ]


def test_a_packet_in_detail_with_its_bytes() -> None:
    frame = bytes(range(40))
    p = TftpPacketEvent(i=3, t=0.5, opcode="RRQ", file="start.elf", frame=frame, transfer=1)
    lines = monitor_text.packet_detail(p).plain.splitlines()
    assert lines[0] == "#3  TFTP RRQ start.elf"
    assert "file      start.elf" in lines and "transfer  1" in lines
    assert "40 bytes captured (Ethernet)" in lines
    assert lines[-3:] == monitor_text.hexdump(frame)
    assert monitor_text.hexdump(b"AB\x00")[0] == "0000  41 42 00" + " " * 39 + "  AB."
    assert monitor_text.hexdump(bytes(40), limit=16)[-1] == "… 24 more bytes"


def test_the_state_line_names_the_source() -> None:
    from steps.answers import parse_ssh_host
    from steps.host.sshrun import Ssh
    from steps.monitor import MonitorStep
    from wizard.widgets.diagnostics_view import source_label

    router = Ssh(parse_ssh_host("root@192.168.1.1"), None)
    assert source_label(MonitorStep(interface="eth0")) == "live on eth0"
    assert source_label(MonitorStep(interface="br-lan", ssh=router)) == "live on 192.168.1.1:br-lan"
    assert source_label(MonitorStep(pcap="-")) == "stdin"
    assert source_label(MonitorStep(pcap="/tmp/x/boot.pcap")) == "boot.pcap"
