"""A small TFTP client (RFC 1350 + 2347/2348/2349) with the exact behaviour of a Pi's firmware.

The virtual Pi needs control a library would hide: RRQs without options (the Pi 3 ROM, 512-byte
blocks) or with ``tsize 0 blksize 1468`` (the Pi 4), an existence probe that stops with
``ERROR 0 "Early terminate"`` after the OACK, a new source port per request, and a result that
says *how* a transfer ended (complete, probe, not-found, denied, timeout …) rather than raising.

It runs over any ``Endpoint`` — a plain UDP socket (``UdpEndpoint``) or the virtual Pi's raw
frames (``steps.wire.virtualpi``) — and follows the server's ephemeral port (the transfer id) as RFC
1350 says: the first answer fixes it, packets from any other port get ``ERROR 5`` and are
otherwise ignored.
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal, Protocol

from steps.errors import Cancelled

RRQ, WRQ, DATA, ACK, ERROR, OACK = 1, 2, 3, 4, 5, 6
TFTP_PORT = 69
EARLY_TERMINATE = "Early terminate"
ERROR_NAMES = {
    0: "not defined",
    1: "file not found",
    2: "access violation",
    3: "disk full",
    4: "illegal operation",
    5: "unknown transfer id",
    6: "file exists",
    7: "no such user",
    8: "option negotiation failed",
}

Status = Literal["complete", "probe", "not-found", "denied", "timeout", "error", "incomplete"]
Addr = tuple[str, int]


class Endpoint(Protocol):
    """One local UDP port: send a datagram, wait for the next one addressed to it."""

    def send(self, data: bytes, addr: Addr) -> None:
        """Send ``data`` to ``addr``."""
        ...

    def recv(self, timeout: float) -> tuple[bytes, Addr] | None:
        """The next datagram and its source within ``timeout`` seconds, or None."""
        ...


class UdpEndpoint:
    """An ``Endpoint`` on a kernel UDP socket."""

    def __init__(self, bind: str = "0.0.0.0", port: int = 0) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((bind, port))

    def send(self, data: bytes, addr: Addr) -> None:
        """Send ``data`` to ``addr``."""
        self.sock.sendto(data, addr)

    def recv(self, timeout: float) -> tuple[bytes, Addr] | None:
        """The next datagram within ``timeout`` seconds, or None."""
        self.sock.settimeout(max(timeout, 0.001))
        try:
            data, addr = self.sock.recvfrom(65536)
        except (TimeoutError, ConnectionRefusedError):
            return None
        return data, (addr[0], addr[1])

    def close(self) -> None:
        """Close the socket."""
        self.sock.close()


# ------------------------------------------------------------------------------ packets


def rrq(filename: str, options: Mapping[str, str] | None = None, mode: str = "octet") -> bytes:
    """A read request: ``00 01 <file> 00 octet 00 [<opt> 00 <value> 00]…``."""
    out = struct.pack("!H", RRQ) + filename.encode() + b"\0" + mode.encode() + b"\0"
    for key, value in (options or {}).items():
        out += key.encode() + b"\0" + value.encode() + b"\0"
    return out


def ack(block: int) -> bytes:
    """ACK for ``block`` (modulo 65536)."""
    return struct.pack("!HH", ACK, block & 0xFFFF)


def error(code: int, message: str) -> bytes:
    """An ERROR packet."""
    return struct.pack("!HH", ERROR, code) + message.encode() + b"\0"


@dataclass(frozen=True)
class Packet:
    """A decoded TFTP packet (only the fields its opcode carries are set)."""

    opcode: int
    filename: str = ""
    mode: str = ""
    options: dict[str, str] = field(default_factory=dict)
    block: int = 0
    data: bytes = b""
    code: int = 0
    message: str = ""


def decode(raw: bytes) -> Packet | None:
    """Decode a TFTP packet; None if it is not one."""
    if len(raw) < 2:
        return None
    (opcode,) = struct.unpack("!H", raw[:2])
    body = raw[2:]
    if opcode in (RRQ, WRQ):
        parts = body.split(b"\0")
        if len(parts) < 3:
            return None
        strings = [p.decode("latin-1") for p in parts[:-1]]
        opts = {strings[i].lower(): strings[i + 1] for i in range(2, len(strings) - 1, 2)}
        return Packet(opcode, filename=strings[0], mode=strings[1].lower(), options=opts)
    if opcode == DATA and len(body) >= 2:
        return Packet(opcode, block=struct.unpack("!H", body[:2])[0], data=body[2:])
    if opcode == ACK and len(body) >= 2:
        return Packet(opcode, block=struct.unpack("!H", body[:2])[0])
    if opcode == ERROR and len(body) >= 2:
        (code,) = struct.unpack("!H", body[:2])
        return Packet(opcode, code=code, message=body[2:].split(b"\0")[0].decode("latin-1"))
    if opcode == OACK:
        parts = body.split(b"\0")
        strings = [p.decode("latin-1") for p in parts[:-1]]
        opts = {strings[i].lower(): strings[i + 1] for i in range(0, len(strings) - 1, 2)}
        return Packet(opcode, options=opts)
    return None


# ------------------------------------------------------------------------------- client


@dataclass(frozen=True)
class Transfer:
    """How one read request ended."""

    filename: str
    status: Status
    data: bytes = b""
    options: dict[str, str] = field(default_factory=dict)
    """What the server accepted (its OACK); empty when it answered with DATA directly."""
    blksize: int = 512
    tsize: int | None = None
    error_code: int | None = None
    error_message: str = ""
    server_port: int | None = None
    requests: int = 1
    """How many times the RRQ was sent (1 + retransmissions)."""
    elapsed: float = 0.0

    @property
    def size(self) -> int:
        """Bytes received."""
        return len(self.data)

    @property
    def reason(self) -> str:
        """One line on why it ended this way."""
        if self.status == "complete":
            return f"{self.size} bytes in {self.elapsed:.2f} s (blksize {self.blksize})"
        if self.status == "probe":
            return "probe: the file exists, stopped with ERROR 0 Early terminate"
        if self.error_code is not None:
            return f"ERROR {self.error_code} {self.error_message!r}"
        if self.status == "timeout":
            got = f" after {self.size} bytes" if self.size else ""
            return f"no answer{got} ({self.requests} request(s), {self.elapsed:.1f} s)"
        if self.status == "incomplete":
            return f"got {self.size} bytes, the server announced tsize {self.tsize}"
        return self.status


def fetch(
    endpoint: Endpoint,
    server: str,
    filename: str,
    *,
    options: Mapping[str, str] | None = None,
    probe: bool = False,
    timeout: float = 1.0,
    retries: int = 4,
    file_timeout: float = 30.0,
    port: int = TFTP_PORT,
    cancel: threading.Event | None = None,
    on_block: Callable[[int], None] | None = None,
) -> Transfer:
    """Read ``filename`` from ``server`` and say how it went (never raises for a TFTP outcome).

    Args:
        endpoint: the local port to use (one per request, like a Pi 4).
        server: server IP; its answer's source port becomes the transfer id.
        filename: path as the Pi sends it (no leading slash).
        options: RFC 2347 options in wire order, e.g. ``{"tsize": "0", "blksize": "1468"}``;
            None or empty sends none (the Pi 3 ROM).
        probe: stop after the first answer with ``ERROR 0 "Early terminate"``, like the Pi 4's
            existence check.
        timeout: seconds to wait for each answer before retransmitting.
        retries: retransmissions of the RRQ (or of the last ACK) before giving up.
        file_timeout: the whole transfer's limit (the Pi 4's TFTP_FILE_TIMEOUT is 30 s).
        port: the server's request port.
        cancel: raises Cancelled when set.
        on_block: called with the byte count after each DATA block.
    """
    request = rrq(filename, options)
    started = time.monotonic()
    deadline = started + file_timeout
    endpoint.send(request, (server, port))
    sends = 1
    last_sent, last_dest = request, (server, port)
    next_retransmit = started + timeout
    retransmits = 0
    tid: int | None = None
    blksize = 512
    accepted: dict[str, str] = {}
    tsize: int | None = None
    expected = 1
    chunks: list[bytes] = []
    received = 0

    def result(status: Status, code: int | None = None, message: str = "") -> Transfer:
        return Transfer(
            filename,
            status,
            b"".join(chunks),
            accepted,
            blksize,
            tsize,
            error_code=code,
            error_message=message,
            server_port=tid,
            requests=sends,
            elapsed=time.monotonic() - started,
        )

    def stop(message: str) -> None:
        if tid is not None:
            endpoint.send(error(0, message), (server, tid))

    while True:
        if cancel is not None and cancel.is_set():
            stop("Cancelled")
            raise Cancelled()
        now = time.monotonic()
        if now >= deadline:
            stop(EARLY_TERMINATE)
            return result("timeout")
        if now >= next_retransmit:
            if retransmits >= retries:
                stop(EARLY_TERMINATE)
                return result("timeout")
            retransmits += 1
            endpoint.send(last_sent, last_dest)
            if tid is None:
                sends += 1
            next_retransmit = now + timeout
            continue
        got = endpoint.recv(min(next_retransmit, deadline) - now)
        if got is None:
            continue
        raw, src = got
        pkt = decode(raw) if src[0] == server else None
        if pkt is None:
            continue
        if tid is None:
            tid = src[1]
        elif src[1] != tid:
            endpoint.send(error(5, "Unknown transfer ID"), src)
            continue
        if pkt.opcode == ERROR:
            status: Status = (
                "not-found" if pkt.code == 1 else "denied" if pkt.code == 2 else "error"
            )
            return result(status, pkt.code, pkt.message)
        if pkt.opcode == OACK and expected == 1:
            accepted = dict(pkt.options)
            blksize = int(accepted.get("blksize", "512"))
            tsize = int(accepted["tsize"]) if "tsize" in accepted else None
            if probe:
                stop(EARLY_TERMINATE)
                return result("probe")
            last_sent, last_dest = ack(0), (server, tid)
            endpoint.send(last_sent, last_dest)
            retransmits, next_retransmit = 0, time.monotonic() + timeout
            continue
        if pkt.opcode != DATA:
            continue
        if pkt.block == expected & 0xFFFF:
            if probe:
                stop(EARLY_TERMINATE)
                return result("probe")
            chunks.append(pkt.data)
            received += len(pkt.data)
            if on_block is not None:
                on_block(received)
            last_sent, last_dest = ack(pkt.block), (server, tid)
            endpoint.send(last_sent, last_dest)
            retransmits, next_retransmit = 0, time.monotonic() + timeout
            expected += 1
            if len(pkt.data) < blksize:
                if tsize is not None and tsize != received:
                    return result("incomplete")
                return result("complete")
        elif pkt.block == (expected - 1) & 0xFFFF:
            endpoint.send(ack(pkt.block), (server, tid))  # our ACK was lost: repeat it
