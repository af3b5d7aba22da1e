"""Captures for the Diagnostics screen's tests, written with the project's own frame builders.

``scene`` is a small LAN with two Pis (a Pi 3 that boots to its app with a person's timing, a
Pi 4 whose firmware file is missing); ``Flood`` pipes an endless pcap stream of boots into a
``MonitorStep`` reading stdin (``--pcap -``), as ``tcpdump -U -w - | firecore-wizard monitor``
does, for as long as a test needs packets to keep arriving. The namespace-made captures are in
tests/integration.
"""

from __future__ import annotations

import os
import select
import struct
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from steps.wire.pcap import Record, write_records
from tests.support.synthetic import PI3_FILES, Pi, Wire

PI3 = Pi.pi3(7)
PI4 = Pi.pi4(3)
"""The scene's Pis (their MACs, serials, addresses); each scene builds its own copies, since a
``Pi`` counts the ports it has used and a capture must not depend on the ones built before."""


def boot_with_pauses(wire: Wire, pi: Pi) -> None:
    """A Pi 3 boot to its app with the pauses a real one makes (firmware ~1 s, app ~20 s)."""
    wire.dhcp_round(pi)
    wire.wait(0.9)
    wire.arp(pi)
    for raw, size in PI3_FILES:
        name = raw.format(serial=pi.serial)
        wire.wait(0.25 if size is None else 0.4)
        opts = None if name in ("bootcode.bin", "bootsig.bin") else {"tsize": "0"}
        wire.transfer(pi, name, size, options=opts, client_port=49152)
    wire.wait(6.0)
    wire.linux_dhcp(pi)
    wire.wait(9.0)
    wire.announce(pi)


def scene_records() -> list[Record]:
    """The Pi 3's good boot, then a Pi 4 that stops at a missing start4.elf."""
    wire = Wire()
    pi3, pi4 = Pi.pi3(7), Pi.pi4(3)
    boot_with_pauses(wire, pi3)
    wire.wait(2.0)
    wire.dhcp_round(pi4)
    wire.wait(0.3)
    wire.arp(pi4)
    opts = {"tsize": "0", "blksize": "1468"}
    wire.transfer(pi4, "config.txt", 332, options=opts)
    wire.transfer(pi4, "start4.elf", None, options=opts)
    wire.wait(10.0)  # the Pi 4 gives up; the capture goes on a little
    wire.arp(pi4)
    return wire.records


def scene(tmp: Path) -> Path:
    """``scene_records`` as a pcap file."""
    path = tmp / "two-pis.pcap"
    write_records(path, scene_records())
    return path


def pcap_bytes(records: Iterable[Record], *, header: bool) -> bytes:
    """Records as a classic pcap stream (µs, little-endian), with its file header if asked."""
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1)] if header else []
    for ts_ns, _linktype, frame, orig in records:
        sec, rest = divmod(ts_ns, 1_000_000_000)
        out.append(struct.pack("<IIII", sec, rest // 1000, len(frame), orig) + frame)
    return b"".join(out)


def flood_records(pis: int = 6) -> list[Record]:
    """Good boots of ``pis`` Pi 4s one after the other (~1,400 packets each)."""
    wire = Wire()
    for n in range(pis):
        wire.good_boot(Pi.pi4(100 + n))
    return wire.records


class Flood:
    """An endless pcap stream on a pipe: the same boots again and again, later each time.

    ``stream`` is the reading end for ``MonitorStep(pcap="-", stdin=...)``; leaving the block
    stops the writer and closes its end (the monitor then reads the end of the stream), then
    closes ``stream``: leave it after the app that reads it.
    """

    def __init__(self, records: list[Record] | None = None) -> None:
        self.records = records or flood_records()
        read_fd, self._write_fd = os.pipe()
        self.stream: BinaryIO = os.fdopen(read_fd, "rb", buffering=0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._write, name="flood-writer", daemon=True)
        self.rounds = 0

    def _chunks(self) -> Iterator[bytes]:
        span = self.records[-1][0] - self.records[0][0] + 1_000_000_000
        yield pcap_bytes(self.records, header=True)
        while True:
            self.rounds += 1
            shift = self.rounds * span
            yield pcap_bytes(
                ((ts + shift, lt, frame, orig) for ts, lt, frame, orig in self.records),
                header=False,
            )

    def _write(self) -> None:
        # non-blocking, so stopping never waits for a reader that has gone
        os.set_blocking(self._write_fd, False)
        try:
            for chunk in self._chunks():
                view = memoryview(chunk)
                while view:
                    if self._stop.is_set():
                        return
                    _, ready, _ = select.select([], [self._write_fd], [], 0.1)
                    if ready:
                        view = view[os.write(self._write_fd, view[:65536]) :]
        except (BrokenPipeError, BlockingIOError):
            return
        finally:
            os.close(self._write_fd)  # the reader sees the end of the stream

    def __enter__(self) -> Flood:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=60)
        self.stream.close()
