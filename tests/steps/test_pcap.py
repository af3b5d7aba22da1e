"""Capture files: every pcap and pcapng variant reads alike; damage and non-captures are named.

The pcap and pcapng bytes here are built field by field in the test (both byte orders, µs and
ns, several pcapng sections with their own interfaces and timestamp resolutions), independently
of ``steps.wire.pcap``'s writer; the writer's files are read back by tshark.
"""

from __future__ import annotations

import contextlib
import io
import os
import struct
import subprocess
import threading
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from steps.wire.pcap import (
    LINKTYPE_ETHERNET,
    LINKTYPE_LINUX_SLL2,
    LINKTYPE_RAW,
    CaptureDamagedError,
    CaptureReader,
    CaptureWriter,
    NotACaptureError,
    Record,
    write_records,
)

T0 = 1_700_000_000_123_456_000  # ns, a whole number of µs
FRAMES = [bytes([n]) * (60 + n) for n in range(5)]


def pcap_bytes(records: list[Record], *, order: str = "<", ns: bool = False, lt: int = 1) -> bytes:
    magic = 0xA1B23C4D if ns else 0xA1B2C3D4
    out = struct.pack(order + "IHHiIII", magic, 2, 4, 0, 0, 65535, lt)
    for ts, _lt, data, orig in records:
        sec, frac = divmod(ts, 1_000_000_000)
        out += struct.pack(order + "IIII", sec, frac if ns else frac // 1000, len(data), orig)
        out += data
    return out


def read_all(data: bytes) -> list[Record]:
    return [r for r in CaptureReader(io.BytesIO(data), "test") if r is not None]


def records(lt: int = LINKTYPE_ETHERNET) -> list[Record]:
    return [(T0 + n * 1_500_000, lt, f, len(f) + n) for n, f in enumerate(FRAMES)]


@pytest.mark.parametrize("order", ["<", ">"])
@pytest.mark.parametrize("ns", [False, True])
def test_pcap_in_both_byte_orders_and_resolutions(order: str, ns: bool) -> None:
    want = records()
    assert read_all(pcap_bytes(want, order=order, ns=ns)) == want


def test_pcap_keeps_nanoseconds() -> None:
    want = [(T0 + 789, LINKTYPE_ETHERNET, FRAMES[0], 60)]
    assert read_all(pcap_bytes(want, ns=True))[0][0] == T0 + 789


# ----------------------------------------------------------------------------- pcapng


def block(order: str, btype: int, body: bytes) -> bytes:
    body += b"\0" * ((-len(body)) % 4)
    length = 12 + len(body)
    return struct.pack(order + "II", btype, length) + body + struct.pack(order + "I", length)


def option(order: str, code: int, value: bytes) -> bytes:
    return struct.pack(order + "HH", code, len(value)) + value + b"\0" * ((-len(value)) % 4)


def shb(order: str) -> bytes:
    body = struct.pack(order + "IHHq", 0x1A2B3C4D, 1, 0, -1)
    return block(order, 0x0A0D0D0A, body)


def idb(order: str, lt: int, *, tsresol: int | None = None, tsoffset: int = 0) -> bytes:
    opts = option(order, 2, b"eth0")
    if tsresol is not None:
        opts += option(order, 9, bytes([tsresol]))
    if tsoffset:
        opts += option(order, 14, struct.pack(order + "q", tsoffset))
    opts += struct.pack(order + "HH", 0, 0)
    return block(order, 1, struct.pack(order + "HHI", lt, 0, 0) + opts)


def epb(order: str, iface: int, ticks: int, data: bytes, orig: int | None = None) -> bytes:
    body = struct.pack(
        order + "IIIII", iface, ticks >> 32, ticks & 0xFFFFFFFF, len(data), orig or len(data)
    )
    return block(order, 6, body + data)


def test_pcapng_sections_interfaces_resolutions_and_block_kinds() -> None:
    f = FRAMES
    # section 1, little-endian: Ethernet in µs (default), SLL2 in ns with a 10 s offset
    s1 = (
        shb("<")
        + idb("<", LINKTYPE_ETHERNET)
        + idb("<", LINKTYPE_LINUX_SLL2, tsresol=9, tsoffset=10)
        + epb("<", 0, T0 // 1000, f[0])
        + block("<", 4, b"\0\0\0\0")  # name resolution block: skipped
        + epb("<", 1, T0 + 5, f[1], orig=500)
        + block("<", 5, struct.pack("<III", 0, 0, 0))  # interface statistics: skipped
    )
    # section 2, big-endian: raw IP with 2^-10 s ticks; a simple and an obsolete packet block
    s2 = (
        shb(">")
        + idb(">", LINKTYPE_RAW, tsresol=0x80 | 10)
        + epb(">", 0, 1024 * 7, f[2])
        + block(">", 3, struct.pack(">I", len(f[3])) + f[3])  # SPB: iface 0, previous time
        + block(">", 2, struct.pack(">HHIIII", 0, 0, 0, 1024 * 9, len(f[4]), len(f[4])) + f[4])
        + block(">", 0x00000BAD, b"custom")  # a custom block: skipped
    )
    reader = CaptureReader(io.BytesIO(s1 + s2), "multi.pcapng")
    got = [r for r in reader if r is not None]
    assert reader.format == "pcapng"
    assert got == [
        (T0, LINKTYPE_ETHERNET, f[0], len(f[0])),
        (T0 + 5 + 10 * 1_000_000_000, LINKTYPE_LINUX_SLL2, f[1], 500),
        (7 * 1_000_000_000, LINKTYPE_RAW, f[2], len(f[2])),
        (7 * 1_000_000_000, LINKTYPE_RAW, f[3], len(f[3])),
        (9 * 1_000_000_000, LINKTYPE_RAW, f[4], len(f[4])),
    ]
    assert [lt for lt, _ in reader.interfaces] == [1, 276, 101]


# ----------------------------------------------------------------------------- damage


def test_a_capture_cut_inside_a_record_reports_the_good_records_first() -> None:
    data = pcap_bytes(records())
    reader = CaptureReader(io.BytesIO(data[:-10]), "cut.pcap")
    got: list[Record] = []
    with pytest.raises(CaptureDamagedError) as err:
        for r in reader:
            if r is not None:
                got.append(r)
    assert got == records()[:-1]
    assert "cut.pcap" in err.value.message and "4 good record(s)" in err.value.message
    assert err.value.exit_code == 1 and err.value.fix


def test_an_impossible_record_length_is_damage() -> None:
    data = pcap_bytes(records()[:1]) + struct.pack("<IIII", 1, 0, 0x7FFFFFFF, 60)
    with pytest.raises(CaptureDamagedError, match="claims 2147483647 bytes"):
        read_all(data)


def test_pcapng_cut_inside_a_block() -> None:
    data = shb("<") + idb("<", 1) + epb("<", 0, 5, FRAMES[0]) + epb("<", 0, 6, FRAMES[1])
    with pytest.raises(CaptureDamagedError, match="inside a block"):
        read_all(data[:-8])


@pytest.mark.parametrize(
    ("data", "hint"),
    [
        (b"", "empty"),
        (b"tcpdump: listening on eth0, link-type EN10MB\n", "starts with text"),
        (b"\x1f\x8b\x08\x00" + b"\0" * 40, "gzip"),
        (b"\x00\x01\x02\x03" + b"\xff" * 40, "00 01 02 03"),
        (b"\xd4\xc3\xb2\xa1\x02\x00", "header is cut short"),
    ],
)
def test_what_is_not_a_capture_is_named_before_any_record(data: bytes, hint: str) -> None:
    with pytest.raises(NotACaptureError) as err:
        read_all(data)
    assert hint in err.value.message and err.value.exit_code == 2


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_any_bytes_raise_only_capture_errors(data: bytes) -> None:
    for head in (b"", pcap_bytes([])[:24], shb("<") + idb("<", 1)):
        with contextlib.suppress(NotACaptureError, CaptureDamagedError):
            read_all(head + data)


# ----------------------------------------------------------------------------- streams


def test_a_pipe_is_decoded_as_it_arrives_and_ticks_while_idle() -> None:
    rfd, wfd = os.pipe()
    first = pcap_bytes(records()[:1])
    second = pcap_bytes(records()[1:2])[24:]
    reader = CaptureReader(os.fdopen(rfd, "rb", buffering=0), "stdin", poll=0.05)
    release = threading.Event()

    def writer() -> None:
        os.write(wfd, first)
        release.wait(60)
        os.write(wfd, second)
        os.close(wfd)

    thread = threading.Thread(target=writer)
    thread.start()
    seen: list[Record | None] = []
    try:
        for item in reader:
            seen.append(item)
            if item is not None and len([r for r in seen if r is not None]) == 1:
                # the first record came out while the writer still holds the pipe open
                assert not release.is_set()
            if item is None and any(r is not None for r in seen):
                release.set()  # ticks come while nothing arrives; now send the rest
    finally:
        release.set()
        thread.join()
    assert [r for r in seen if r is not None] == records()[:2]
    assert None in seen


# ----------------------------------------------------------------------------- writing


@pytest.mark.parametrize("name", ["out.pcap", "out.pcapng"])
def test_writer_output_reads_back_here_and_in_tshark(tmp_path: Path, name: str) -> None:
    want = [(T0 + 123, LINKTYPE_ETHERNET, FRAMES[0], 60), (T0 + 2_000_000_456, 1, FRAMES[1], 61)]
    path = tmp_path / name
    assert write_records(path, want) == 2
    got = [r for r in CaptureReader(path.open("rb")) if r is not None]
    if name.endswith(".pcap"):  # µs resolution
        want = [(ts - ts % 1000, lt, d, o) for ts, lt, d, o in want]
    assert got == want
    out = subprocess.run(
        ["tshark", "-r", str(path), "-T", "fields", "-e", "frame.time_epoch", "-e", "frame.len"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert [int(n) for n in out[1::2]] == [60, 61]
    assert abs(float(out[0]) - T0 / 1e9) < 1e-6


def test_a_pcap_keeps_one_link_type_and_appears_only_when_closed(tmp_path: Path) -> None:
    path = tmp_path / "mixed.pcap"
    path.write_bytes(b"old")
    writer = CaptureWriter(path)
    writer.write(T0, LINKTYPE_ETHERNET, FRAMES[0])
    writer.write(T0, LINKTYPE_LINUX_SLL2, FRAMES[1])
    assert path.read_bytes() == b"old"
    writer.close()
    assert (writer.written, writer.skipped) == (1, 1)
    assert len(read_all(path.read_bytes())) == 1
    aborted = CaptureWriter(tmp_path / "gone.pcap")
    aborted.write(T0, 1, FRAMES[0])
    aborted.abort()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mixed.pcap"]
