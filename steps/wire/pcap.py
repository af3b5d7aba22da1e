"""Capture files: pcap and pcapng read as a stream, and written for Wireshark.

``CaptureReader`` reads classic pcap (microsecond and nanosecond timestamps, either byte order)
and pcapng (any number of sections, each with its own byte order and interfaces; enhanced, simple
and obsolete packet blocks; ``if_tsresol`` and ``if_tsoffset``) from a file or a pipe. It decodes
records as the bytes arrive — ``tcpdump -U -w - | firecore-wizard monitor --pcap -`` shows each
packet when it is captured, not at EOF — and, given a ``poll`` interval, yields ``None`` when
nothing arrived for that long, so a live consumer can run its timers.

Each record comes out as a plain tuple ``(ts_ns, linktype, data, orig_len)`` (cheap: a ~200k
packet capture is read at close to disk speed). What is not a capture raises
``NotACaptureError`` (exit code 2) before anything is yielded; damage later on (a file cut in the
middle of a record, a length field that cannot be true) raises ``CaptureDamagedError`` (exit 1)
after every good record before it was yielded, so callers report what they decoded.

``CaptureWriter`` writes what was read or captured: pcap (µs, little-endian) or, for a ``.pcapng``
name, pcapng; to a temporary name renamed into place on ``close()``, so an interrupted run leaves
either the old file or a complete new one.

Formats: the tcpdump.org pcap man page (pcap-savefile(5)) and the pcapng draft
(draft-ietf-opsawg-pcapng, "PCAP Now Generic"): block types SHB 0x0A0D0D0A, IDB 1, PB 2, SPB 3,
EPB 6; IDB options ``if_tsresol`` (9) and ``if_tsoffset`` (14).
"""

from __future__ import annotations

import contextlib
import os
import select
import stat
import struct
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from steps.errors import StepError, UsageError
from steps.fsutil import disk_error

LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
LINKTYPE_LINUX_SLL = 113
LINKTYPE_IPV4 = 228
LINKTYPE_LINUX_SLL2 = 276
#: Link types the monitor decodes (others are read and counted, never decoded).
LINKTYPES = {
    LINKTYPE_ETHERNET: "Ethernet",
    LINKTYPE_RAW: "raw IP",
    LINKTYPE_LINUX_SLL: "Linux cooked (SLL)",
    LINKTYPE_IPV4: "raw IPv4",
    LINKTYPE_LINUX_SLL2: "Linux cooked v2 (SLL2)",
}

#: (ts_ns, linktype, captured bytes, original length)
Record = tuple[int, int, bytes, int]

_PCAP_MAGIC = {
    b"\xd4\xc3\xb2\xa1": ("<", 1000),  # µs, little-endian
    b"\xa1\xb2\xc3\xd4": (">", 1000),  # µs, big-endian
    b"\x4d\x3c\xb2\xa1": ("<", 1),  # ns, little-endian
    b"\xa1\xb2\x3c\x4d": (">", 1),  # ns, big-endian
}
_PCAPNG_SHB = 0x0A0D0D0A
_BOM = 0x1A2B3C4D
#: No sane record is longer (tcpdump's default snap length is 262144).
_MAX_RECORD = 0x40000 + 0x10000
_CHUNK = 1 << 20


class NotACaptureError(UsageError):
    """The input is not a pcap or pcapng capture (exit code 2)."""

    title = "Not a capture"


class CaptureDamagedError(StepError):
    """The capture is cut short or damaged after some good records (exit code 1)."""

    title = "Capture damaged"


def _describe_start(head: bytes) -> str:
    """A hint about what the first bytes are instead of a capture."""
    if not head:
        return "it is empty"
    if head[:2] == b"\x1f\x8b":
        return "it is gzip-compressed (gunzip it first)"
    if head[:4] == b"\xa1\xb2\xcd\x34" or head[:4] == b"\x34\xcd\xb2\xa1":
        return "it is a 'modified' (Kuznetzov) pcap: convert it with `editcap -F pcap`"
    text = head[:40]
    if all(32 <= b < 127 or b in (9, 10, 13) for b in text):
        shown = text.decode("ascii").splitlines()[0] if text.strip() else ""
        return f"it starts with text ({shown!r}): pipe tcpdump's binary output (`tcpdump -U -w -`)"
    return f"it starts with bytes {head[:4].hex(' ')}, not a pcap or pcapng magic number"


class _Feed:
    """Bytes from a file object or descriptor, in chunks; ``None`` when a poll interval passes."""

    def __init__(self, stream: BinaryIO, poll: float | None) -> None:
        self.stream = stream
        self.poll = poll
        self.fd: int | None = None
        with contextlib.suppress(AttributeError, OSError, ValueError):
            self.fd = stream.fileno()
        # a pipe or socket: read what is there (os.read returns as soon as a byte arrived)
        self.streaming = False
        if self.fd is not None:
            with contextlib.suppress(OSError):
                self.streaming = not stat.S_ISREG(os.fstat(self.fd).st_mode)
        self.eof = False

    def chunk(self) -> bytes | None:
        """The next bytes (``b""`` at EOF), or None when ``poll`` seconds passed without any."""
        if self.eof:
            return b""
        if self.streaming and self.fd is not None:
            if self.poll is not None:
                ready, _, _ = select.select([self.fd], [], [], self.poll)
                if not ready:
                    return None
            data = os.read(self.fd, _CHUNK)
        else:
            data = self.stream.read(_CHUNK)
        if not data:
            self.eof = True
        return data


class CaptureReader:
    """Records of a pcap or pcapng stream, in file order.

    Args:
        stream: a binary file object (a file, ``sys.stdin.buffer``, a pipe, BytesIO).
        name: how to name the input in messages (``capture.pcap``, ``stdin``).
        poll: when set, iteration yields ``None`` after this many seconds without new bytes
            (pipes and sockets only; files are read straight through).

    Raises (during iteration):
        NotACaptureError: the start is not a capture header.
        CaptureDamagedError: the capture is cut or damaged after a good start.
    """

    def __init__(self, stream: BinaryIO, name: str = "capture", *, poll: float | None = None):
        self.name = name
        self._feed = _Feed(stream, poll)
        self._buf = b""
        self._pos = 0
        self.format: str | None = None
        """``pcap`` or ``pcapng`` once the header was read."""
        self.records = 0
        """Records yielded so far."""
        self.offset = 0
        """Bytes consumed so far (the position of the next record)."""
        self.interfaces: list[tuple[int, str]] = []
        """(linktype, name) of every pcapng interface seen; one entry for pcap."""

    @property
    def bytes_read(self) -> int:
        """Bytes consumed from the input so far."""
        return self.offset + self._pos

    # ------------------------------------------------------------------ buffering
    def _fill(self, need: int) -> Iterator[None]:
        """Grow the buffer until ``need`` bytes follow ``_pos``; yields None on poll ticks.

        Returns with fewer bytes only at EOF.
        """
        while len(self._buf) - self._pos < need:
            chunk = self._feed.chunk()
            if chunk is None:
                yield None
                continue
            if not chunk:
                return
            self.offset += self._pos
            self._buf = self._buf[self._pos :] + chunk
            self._pos = 0

    def _damaged(self, what: str) -> CaptureDamagedError:
        return CaptureDamagedError(
            f"{self.name}: {what} (after {self.records} good record(s), at byte "
            f"{self.bytes_read}); the packets before it were read",
            fix="the capture was cut short or damaged: capture again (stop tcpdump with "
            "Ctrl-C or `kill -TERM` so it closes the file), or repair it with `editcap`",
        )

    # ------------------------------------------------------------------ entry
    def __iter__(self) -> Iterator[Record | None]:
        yield from self._fill(4)
        head = self._buf[self._pos : self._pos + 4]
        if head in _PCAP_MAGIC:
            self.format = "pcap"
            yield from self._pcap(*_PCAP_MAGIC[head])
        elif len(head) == 4 and struct.unpack("<I", head)[0] == _PCAPNG_SHB:
            self.format = "pcapng"
            yield from self._pcapng()
        else:
            yield from self._fill(40)
            raise NotACaptureError(
                f"{self.name} is not a pcap or pcapng capture: "
                f"{_describe_start(self._buf[self._pos : self._pos + 40])}",
                fix="give a file written by tcpdump -w, tshark -w or Wireshark (pcap or "
                "pcapng), or `-` for such a stream on stdin",
            )

    # ------------------------------------------------------------------ pcap
    def _pcap(self, order: str, ns_per_tick: int) -> Iterator[Record | None]:
        yield from self._fill(24)
        if len(self._buf) - self._pos < 24:
            raise NotACaptureError(
                f"{self.name}: the pcap header is cut short ({len(self._buf) - self._pos} of "
                "24 bytes)",
                fix="capture again; the file holds no packets",
            )
        _magic, _major, _minor, _zone, _sig, snaplen, network = struct.unpack_from(
            order + "IHHiIII", self._buf, self._pos
        )
        linktype = network & 0x0FFFFFFF if network >> 28 else network & 0xFFFF
        self.interfaces.append((linktype, ""))
        self._pos += 24
        header = struct.Struct(order + "IIII")
        unpack = header.unpack_from
        limit = max(snaplen, _MAX_RECORD)
        while True:
            buf, pos = self._buf, self._pos
            avail = len(buf) - pos
            if avail >= 16:
                sec, frac, incl, orig = unpack(buf, pos)
                if incl > limit:
                    raise self._damaged(f"a record claims {incl} bytes (snap length {snaplen})")
                end = pos + 16 + incl
                if end <= len(buf):
                    self._pos = end
                    self.records += 1
                    yield (
                        sec * 1_000_000_000 + frac * ns_per_tick,
                        linktype,
                        buf[pos + 16 : end],
                        orig,
                    )
                    continue
                need = 16 + incl
            else:
                need = 16
            yield from self._fill(need)
            if len(self._buf) - self._pos < need:
                if len(self._buf) == self._pos:
                    return
                raise self._damaged("the file ends inside a record")

    # ------------------------------------------------------------------ pcapng
    def _pcapng(self) -> Iterator[Record | None]:
        order = "<"
        # per section: (linktype, ns numerator, ns divisor, offset ns, snaplen) per interface
        ifaces: list[tuple[int, int, int, int, int]] = []
        last_ts = 0
        while True:
            yield from self._fill(12)
            avail = len(self._buf) - self._pos
            if avail == 0:
                return
            if avail < 12:
                raise self._damaged("the file ends inside a block header")
            buf, pos = self._buf, self._pos
            (btype,) = struct.unpack_from("<I", buf, pos)
            if btype == _PCAPNG_SHB:
                bom = buf[pos + 8 : pos + 12]
                if bom == b"\x4d\x3c\x2b\x1a":
                    order = "<"
                elif bom == b"\x1a\x2b\x3c\x4d":
                    order = ">"
                else:
                    if self.records == 0 and not self.interfaces:
                        raise NotACaptureError(
                            f"{self.name}: a pcapng section header with an unknown byte-order "
                            f"mark ({bom.hex()})",
                            fix="give a pcap or pcapng file",
                        )
                    raise self._damaged("a section header has an unknown byte-order mark")
                ifaces = []
            btype, blen = struct.unpack_from(order + "II", buf, pos)
            if blen < 12 or blen % 4 or blen > _MAX_RECORD + 64:
                raise self._damaged(f"a block (type {btype:#x}) claims a length of {blen}")
            yield from self._fill(blen)
            if len(self._buf) - self._pos < blen:
                raise self._damaged("the file ends inside a block")
            buf, pos = self._buf, self._pos
            self._pos = pos + blen
            body = pos + 8
            end = pos + blen - 4
            if btype == 6:  # enhanced packet block
                iface, hi, lo, caplen, orig = struct.unpack_from(order + "IIIII", buf, body)
                if iface >= len(ifaces) or 20 + caplen > end - body:
                    raise self._damaged(
                        f"a packet block names interface {iface} or overruns its block"
                    )
                linktype, num, div, off, _snap = ifaces[iface]
                ticks = (hi << 32) | lo
                last_ts = (ticks * num) // div + off
                self.records += 1
                yield (last_ts, linktype, buf[body + 20 : body + 20 + caplen], orig)
            elif btype == 3:  # simple packet block: interface 0, no timestamp
                if not ifaces:
                    raise self._damaged("a simple packet block comes before any interface")
                (orig,) = struct.unpack_from(order + "I", buf, body)
                linktype, _num, _div, _off, snap = ifaces[0]
                caplen = min(orig, snap or orig, end - body - 4)
                self.records += 1
                yield (last_ts, linktype, buf[body + 4 : body + 4 + caplen], orig)
            elif btype == 2:  # obsolete packet block
                iface, _drops, hi, lo, caplen, orig = struct.unpack_from(
                    order + "HHIIII", buf, body
                )
                if iface >= len(ifaces) or 20 + caplen > end - body:
                    raise self._damaged("an obsolete packet block overruns its block")
                linktype, num, div, off, _snap = ifaces[iface]
                last_ts = (((hi << 32) | lo) * num) // div + off
                self.records += 1
                yield (last_ts, linktype, buf[body + 20 : body + 20 + caplen], orig)
            elif btype == 1:  # interface description block
                linktype, _res, snap = struct.unpack_from(order + "HHI", buf, body)
                num, div, off, ifname = 1000, 1, 0, ""
                for code, value in _options(buf, body + 8, end, order):
                    if code == 9 and value:
                        num, div = _resolution(value[0])
                    elif code == 14 and len(value) == 8:
                        (secs,) = struct.unpack(order + "q", value)
                        off = secs * 1_000_000_000
                    elif code == 2:
                        ifname = value.decode("utf-8", "replace")
                ifaces.append((linktype, num, div, off, snap))
                self.interfaces.append((linktype, ifname))
            # other blocks (name resolution, statistics, custom …) carry no packets


def _resolution(code: int) -> tuple[int, int]:
    """``if_tsresol`` → (numerator, divisor) turning ticks into nanoseconds."""
    exp = code & 0x7F
    if code & 0x80:  # 2^-exp seconds per tick
        return 1_000_000_000, 1 << exp
    if exp <= 9:
        return 10 ** (9 - exp), 1
    return 1, 10 ** (exp - 9)


def _options(buf: bytes, pos: int, end: int, order: str) -> Iterator[tuple[int, bytes]]:
    """pcapng options between ``pos`` and ``end`` (stops at opt_endofopt or damage)."""
    while pos + 4 <= end:
        code, length = struct.unpack_from(order + "HH", buf, pos)
        if code == 0:
            return
        value = buf[pos + 4 : pos + 4 + length]
        if len(value) < length:
            return
        yield code, value
        pos += 4 + ((length + 3) & ~3)


def read_file(path: Path) -> Iterator[Record]:
    """Every record of a capture file (no poll ticks)."""
    try:
        fh = path.open("rb")
    except FileNotFoundError:
        raise UsageError(f"capture file {path} does not exist", fix="check --pcap") from None
    except IsADirectoryError:
        raise UsageError(f"{path} is a directory, not a capture file", fix="check --pcap") from None
    except PermissionError:
        raise UsageError(f"cannot read {path}: permission denied") from None
    with fh:
        for record in CaptureReader(fh, str(path)):
            if record is not None:
                yield record


# ----------------------------------------------------------------------------- writing


class CaptureWriter:
    """Write records to ``path`` as pcap, or pcapng when the name ends in ``.pcapng``.

    pcap holds one link type: records of another link type than the first are not written
    (``skipped`` counts them; use a ``.pcapng`` name to keep them all). The file appears under
    its name only on ``close()``; ``abort()`` removes the partial file.
    """

    def __init__(self, path: Path, *, snaplen: int = 262144) -> None:
        self.path = path
        self.pcapng = path.suffix.lower() in (".pcapng", ".ntar")
        self.snaplen = snaplen
        self.written = 0
        self.skipped = 0
        self._linktypes: dict[int, int] = {}
        """linktype → pcapng interface id (pcap: the one link type → 0)."""
        self._tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._fh: BinaryIO | None = self._tmp.open("wb")
        except OSError as exc:
            raise disk_error(path, exc) from None
        if self.pcapng:
            self._put(_shb())

    def _put(self, data: bytes) -> None:
        assert self._fh is not None
        try:
            self._fh.write(data)
        except OSError as exc:
            self.abort()
            raise disk_error(self.path, exc) from None

    def write(self, ts_ns: int, linktype: int, data: bytes, orig_len: int | None = None) -> None:
        """Append one record."""
        orig = len(data) if orig_len is None else orig_len
        iface = self._linktypes.get(linktype)
        if iface is None:
            if self.pcapng:
                iface = len(self._linktypes)
                self._linktypes[linktype] = iface
                self._put(_idb(linktype, self.snaplen))
            elif not self._linktypes:
                iface = 0
                self._linktypes[linktype] = 0
                self._put(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, self.snaplen, linktype))
            else:
                self.skipped += 1
                return
        if self.pcapng:
            pad = (-len(data)) % 4
            blen = 32 + len(data) + pad
            self._put(
                struct.pack(
                    "<IIIIIII",
                    6,
                    blen,
                    iface,
                    ts_ns >> 32 & 0xFFFFFFFF,
                    ts_ns & 0xFFFFFFFF,
                    len(data),
                    orig,
                )
                + data
                + b"\0" * pad
                + struct.pack("<I", blen)
            )
        else:
            sec, ns = divmod(ts_ns, 1_000_000_000)
            self._put(struct.pack("<IIII", sec, ns // 1000, len(data), orig) + data)
        self.written += 1

    def flush(self) -> None:
        """Push buffered records to the partial file (a long live capture does, now and then)."""
        if self._fh is not None:
            with contextlib.suppress(OSError):
                self._fh.flush()

    def close(self) -> None:
        """Finish the file and move it into place (an empty capture still gets its header)."""
        if self._fh is None:
            return
        if not self.pcapng and not self._linktypes:
            self._put(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, self.snaplen, 1))
        fh, self._fh = self._fh, None
        try:
            fh.flush()
            os.fsync(fh.fileno())
            fh.close()
            os.chmod(self._tmp, 0o644)
            os.replace(self._tmp, self.path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                self._tmp.unlink()
            raise disk_error(self.path, exc) from None

    def abort(self) -> None:
        """Drop the partial file; ``path`` keeps what it had."""
        if self._fh is not None:
            fh, self._fh = self._fh, None
            with contextlib.suppress(OSError):
                fh.close()
        with contextlib.suppress(OSError):
            self._tmp.unlink()


def _shb() -> bytes:
    blen = 28
    return struct.pack("<IIIHHqI", _PCAPNG_SHB, blen, _BOM, 1, 0, -1, blen)


def _idb(linktype: int, snaplen: int) -> bytes:
    # one option, if_tsresol = 9 (nanoseconds), then opt_endofopt
    opts = struct.pack("<HHB3x", 9, 1, 9) + struct.pack("<HH", 0, 0)
    blen = 20 + len(opts)
    return struct.pack("<IIHHI", 1, blen, linktype, 0, snaplen) + opts + struct.pack("<I", blen)


def write_records(path: Path, records: Iterable[Record]) -> int:
    """Write ``records`` to ``path`` (pcap, or pcapng by name); returns how many."""
    writer = CaptureWriter(path)
    try:
        for ts, linktype, data, orig in records:
            writer.write(ts, linktype, data, orig)
    except BaseException:
        writer.abort()
        raise
    writer.close()
    return writer.written
