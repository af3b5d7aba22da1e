"""Monitor benchmark: decoding speed against tshark and scapy, memory over a million packets.

A ~200k-packet capture of Pi boots (Pi 3 and Pi 4 alternating, every frame built by the
project's own builders, ``tests.support.synthetic``; cached under ``.cache/bench``) is decoded
in the same run by:

- the monitor's decoder (``steps.wire.decode``: every frame read and turned into its packet
  event, TFTP followed across ephemeral ports) and the whole monitor (``steps.wire.monitor``:
  decoder + per-Pi timeline + diagnoses);
- ``tshark -T fields`` with the fields the monitor reports;
- scapy's full dissection (``PcapReader``), on the first 20k packets (it is slow).

Speeds are CPU time (user + system of the process that decodes), so other work on a shared
machine does not skew the ratios. Then one million packets are streamed through ``firecore-wizard
monitor --pcap - --json`` (generated boot by boot into its stdin, JSON to /dev/null) and its peak
RSS is read from ``wait4``.

Targets (issue 14): decode ≥ 3× tshark and ≥ 20× scapy; peak RSS ≤ 200 MB on 1M packets.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import resource
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from steps.wire.decode import Decoder
from steps.wire.monitor import MonitorOptions, watch
from steps.wire.pcap import Record, read_file, write_records
from tests.support import synthetic

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".cache" / "bench"
PACKETS = 200_000
MILLION = 1_000_000
SCAPY_SAMPLE = 20_000
TSHARK_FIELDS = [
    "frame.time_epoch",
    "eth.src",
    "eth.dst",
    "ip.src",
    "ip.dst",
    "udp.srcport",
    "udp.dstport",
    "dhcp.option.dhcp",
    "dhcp.id",
    "arp.opcode",
    "tftp.opcode",
    "tftp.block",
    "tftp.source_file",
    "tftp.error.code",
]
TARGETS = {"tshark": 3.0, "scapy": 20.0, "rss_mb": 200.0}


def boots(total: int) -> Iterator[list[Record]]:
    """Records of successive boots (Pi 3, Pi 4, Pi 3 …) until ``total`` records."""
    made = 0
    t0 = synthetic.T0
    for n in itertools.count():
        wire = synthetic.Wire(t0=t0)
        pi = synthetic.Pi.pi3(n) if n % 2 == 0 else synthetic.Pi.pi4(n)
        wire.good_boot(pi)
        records = wire.records[: total - made]
        made += len(records)
        t0 = wire.now + 50_000_000
        yield records
        if made >= total:
            return


def capture(n: int) -> Path:
    """The cached ``n``-packet capture (rebuilt when the synthetic LAN's code changes)."""
    key = hashlib.sha256(Path(synthetic.__file__).read_bytes()).hexdigest()[:12]
    path = CACHE / f"monitor-{n}-{key}.pcap"
    if not path.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        write_records(path, (r for records in boots(n) for r in records))
    return path


def stream(n: int, out: IO[bytes]) -> None:
    """Write an ``n``-packet pcap to ``out`` boot by boot (nothing kept)."""
    out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))
    for records in boots(n):
        out.write(
            b"".join(
                struct.pack("<IIII", ts // 1_000_000_000, ts % 1_000_000_000 // 1000, len(d), o) + d
                for ts, _lt, d, o in records
            )
        )
    out.flush()


def cpu_rate(fn: object, n: int) -> float:
    start = time.process_time()
    fn()  # type: ignore[operator]
    return n / (time.process_time() - start)


def ours(path: Path) -> tuple[float, float, int]:
    """(decode rate, whole-monitor rate, packets) in packets per CPU second."""
    n = sum(1 for _ in read_file(path))

    def decode() -> None:
        decoder = Decoder()
        for i, record in enumerate(read_file(path)):
            decoder.decode(i, record)
            decoder.finished.clear()

    def monitor() -> None:
        for _event in watch(read_file(path), MonitorOptions()):
            pass

    return cpu_rate(decode, n), cpu_rate(monitor, n), n


def tshark(path: Path, n: int) -> float:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    argv = ["tshark", "-n", "-r", str(path), "-T", "fields"]
    for name in TSHARK_FIELDS:
        argv += ["-e", name]
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    used = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return n / used


def scapy(path: Path) -> float | None:
    try:
        from scapy.layers.inet import IP, UDP
        from scapy.utils import PcapReader
    except ImportError:
        return None

    def dissect() -> None:
        for pkt in itertools.islice(PcapReader(str(path)), SCAPY_SAMPLE):
            if UDP in pkt:
                (pkt[IP].src, pkt[IP].dst, pkt[UDP].sport, pkt[UDP].dport)

    return cpu_rate(dissect, SCAPY_SAMPLE)


def million_rss() -> tuple[float, float]:
    """(peak RSS in MB, seconds) of ``monitor --pcap - --json`` on 1M streamed packets."""
    wizard = str(Path(sys.executable).with_name("firecore-wizard"))
    with open(os.devnull, "wb") as null:
        proc = subprocess.Popen(
            [wizard, "monitor", "--pcap", "-", "--json"],
            stdin=subprocess.PIPE,
            stdout=null,
            stderr=subprocess.DEVNULL,
        )
        assert proc.stdin is not None
        start = time.monotonic()
        stream(MILLION, proc.stdin)
        proc.stdin.close()
        _pid, _status, usage = os.wait4(proc.pid, 0)
        proc.returncode = 0
    return usage.ru_maxrss / 1024, time.monotonic() - start


def main() -> int:
    """Run, print the table, exit 1 if a target is missed."""
    if "--stream" in sys.argv:  # helper mode: python -m bench.monitor --stream N > file
        stream(int(sys.argv[-1]), sys.stdout.buffer)
        return 0
    print("* monitor: decoding a capture of Pi boots, and memory over 1M packets")
    path = capture(PACKETS)
    decode_rate, monitor_rate, n = ours(path)
    tshark_rate = tshark(path, n)
    scapy_rate = scapy(path)
    rss, seconds = million_rss()
    rows = [
        ("monitor decoder", decode_rate),
        ("monitor (decoder + timeline)", monitor_rate),
        ("tshark -T fields", tshark_rate),
    ]
    if scapy_rate is not None:
        rows.append((f"scapy full dissection ({SCAPY_SAMPLE // 1000}k sample)", scapy_rate))
    print(f"  capture: {n} packets, {path.stat().st_size / 1e6:.0f} MB ({path.name})")
    for name, rate in rows:
        print(f"  {name:40} {rate:>10,.0f} packets/CPU s")
    ok = True
    vs_tshark = decode_rate / tshark_rate
    ok &= vs_tshark >= TARGETS["tshark"]
    print(f"  decoder / tshark: {vs_tshark:.1f}× (target ≥ {TARGETS['tshark']:g}×)")
    print(f"  whole monitor / tshark: {monitor_rate / tshark_rate:.1f}×")
    if scapy_rate is None:
        print("  scapy not installed (make bench installs the bench extra): not compared")
        ok = False
    else:
        vs_scapy = decode_rate / scapy_rate
        ok &= vs_scapy >= TARGETS["scapy"]
        print(f"  decoder / scapy: {vs_scapy:.0f}× (target ≥ {TARGETS['scapy']:g}×)")
    ok &= rss <= TARGETS["rss_mb"]
    print(
        f"  1M packets through `monitor --pcap - --json`: peak RSS {rss:.0f} MB "
        f"(target ≤ {TARGETS['rss_mb']:g} MB), {seconds:.0f} s wall"
    )
    print("  all targets met" if ok else "  TARGET MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
