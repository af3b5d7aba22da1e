"""A raw AF_PACKET socket on one interface, seen through one MAC address.

The virtual Pi (and the preflight probe) must send frames a normal socket cannot: DHCP from
0.0.0.0 with UDP checksum 0, from a MAC that is not the interface's own. A ``RawLink`` sends whole
Ethernet frames and receives only the frames addressed to its MAC or to broadcast: a classic BPF
filter drops the rest in the kernel, so twenty virtual Pis on one interface do not each wake up
for every frame of the others. When the MAC differs from the interface's, the socket asks for
promiscuous mode (a packet-socket membership the kernel drops when the socket closes).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import os
import select
import socket
import struct
import time
from types import TracebackType

from steps.errors import UsageError
from steps.wire.netframes import mac_bytes, mac_str

ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_ADD_MEMBERSHIP = 1
PACKET_MR_PROMISC = 1
PACKET_OUTGOING = 4
SO_ATTACH_FILTER = 26
SIOCGIFHWADDR = 0x8927

# classic BPF opcodes
_LD_H_ABS = 0x28
_LD_W_ABS = 0x20
_JEQ_K = 0x15
_RET_K = 0x06


def interface_mac(iface: str, sock: socket.socket | None = None) -> str:
    """The interface's own MAC (ioctl SIOCGIFHWADDR, so it works in any network namespace).

    Raises:
        UsageError: no such interface.
    """
    own = sock is None
    s = sock or socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        req = struct.pack("256s", iface.encode()[:15])
        res = fcntl.ioctl(s.fileno(), SIOCGIFHWADDR, req)
    except OSError:
        raise UsageError(
            f"interface {iface!r} does not exist",
            fix="pick one from `ip -br link` (the interface on the Pis' LAN)",
        ) from None
    finally:
        if own:
            s.close()
    return mac_str(res[18:24])


BpfProgram = list[tuple[int, int, int, int]]
"""Classic BPF: (code, jump if true, jump if false, k) per instruction."""


def attach_filter(sock: socket.socket, program: BpfProgram) -> None:
    """Attach a classic BPF program to a packet socket (SO_ATTACH_FILTER): the kernel then
    drops what it rejects before a single byte reaches Python."""
    code = b"".join(struct.pack("HBBI", *ins) for ins in program)
    buf = ctypes.create_string_buffer(code)
    fprog = struct.pack("HL", len(program), ctypes.addressof(buf))
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)


def packet_socket(
    kind: int = socket.SOCK_RAW, *, what: str = "sending raw Ethernet frames"
) -> socket.socket:
    """An AF_PACKET socket for every protocol.

    Raises:
        UsageError: no root / CAP_NET_RAW (one line naming the fix).
    """
    try:
        return socket.socket(socket.AF_PACKET, kind, socket.htons(ETH_P_ALL))
    except PermissionError:
        raise UsageError(
            f"{what} needs root (CAP_NET_RAW)",
            fix="run it with sudo (or give the program CAP_NET_RAW)",
        ) from None


def _mac_filter(mac: str) -> BpfProgram:
    """BPF: accept frames whose destination is ``mac`` or ff:ff:ff:ff:ff:ff."""
    raw = mac_bytes(mac)
    hi = int.from_bytes(raw[:2], "big")
    lo = int.from_bytes(raw[2:], "big")
    return [
        (_LD_H_ABS, 0, 0, 0),
        (_JEQ_K, 0, 2, hi),
        (_LD_W_ABS, 0, 0, 2),
        (_JEQ_K, 4, 0, lo),
        (_LD_H_ABS, 0, 0, 0),
        (_JEQ_K, 0, 3, 0xFFFF),
        (_LD_W_ABS, 0, 0, 2),
        (_JEQ_K, 0, 1, 0xFFFFFFFF),
        (_RET_K, 0, 0, 0x40000),
        (_RET_K, 0, 0, 0),
    ]


class RawLink:
    """Send and receive Ethernet frames on ``iface`` as the station ``mac``."""

    def __init__(self, iface: str, mac: str | None = None, *, all_frames: bool = False) -> None:
        """Open the socket.

        Args:
            iface: interface name.
            mac: the MAC to receive for; None: the interface's own.
            all_frames: receive everything (no MAC filter), e.g. for a capture.

        Raises:
            UsageError: not root (no CAP_NET_RAW) or no such interface.
        """
        self.iface = iface
        sock = packet_socket()
        try:
            self.iface_mac = interface_mac(iface, sock)
            self.mac = (mac or self.iface_mac).lower()
            mac_bytes(self.mac)
        except (UsageError, ValueError):
            sock.close()
            raise
        self.sock = sock
        try:
            if not all_frames:
                attach_filter(sock, _mac_filter(self.mac))
            sock.bind((iface, ETH_P_ALL))
            if self.mac != self.iface_mac or all_frames:
                ifindex = socket.if_nametoindex(iface)
                mreq = struct.pack("iHH8s", ifindex, PACKET_MR_PROMISC, 0, b"")
                sock.setsockopt(SOL_PACKET, PACKET_ADD_MEMBERSHIP, mreq)
        except OSError as exc:
            sock.close()
            if exc.errno in (errno.ENODEV, errno.ENXIO):
                raise UsageError(f"interface {iface!r} does not exist") from None
            if exc.errno == errno.ENETDOWN:
                raise UsageError(
                    f"interface {iface} is down", fix=f"bring it up: `ip link set {iface} up`"
                ) from None
            raise
        sock.setblocking(False)

    def send(self, frame: bytes) -> None:
        """Send one Ethernet frame (padded to the 60-byte minimum by the kernel/NIC)."""
        if len(frame) < 60:
            frame = frame + b"\0" * (60 - len(frame))
        try:
            self.sock.send(frame)
        except OSError as exc:
            if exc.errno == errno.ENETDOWN:
                raise UsageError(f"interface {self.iface} is down") from None
            raise

    def recv(self, timeout: float) -> bytes | None:
        """The next incoming frame within ``timeout`` seconds (our own sends skipped), or None."""
        deadline = time.monotonic() + max(timeout, 0.0)
        while True:
            try:
                data, addr = self.sock.recvfrom(65535)
            except BlockingIOError:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                select.select([self.sock], [], [], left)
                continue
            if addr[2] == PACKET_OUTGOING:
                continue
            return data

    def fileno(self) -> int:
        """The socket's descriptor (for select)."""
        return self.sock.fileno()

    def close(self) -> None:
        """Close the socket (promiscuous mode ends with it)."""
        with contextlib.suppress(OSError):
            self.sock.close()

    def __enter__(self) -> RawLink:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def random_local_mac() -> str:
    """A random locally-administered unicast MAC (for probes that must not look like a Pi)."""
    raw = bytearray(os.urandom(6))
    raw[0] = (raw[0] & 0xFC) | 0x02
    return mac_str(bytes(raw))
