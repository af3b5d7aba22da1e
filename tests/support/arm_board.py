"""An emulated ARM board that boots a build's initramfs files the way a Pi's firmware hands them
to the kernel, and lets the test reach the app on it.

The initrd is ``cat`` of the board's ``initramfs a,b,…`` files from config.txt with two archives
slipped in before the last one (overlay.gz): Debian's userland for the architecture
(tests/support/debian_arm.py: busybox, glibc, CPython 3.11, the kernel's virtio/loop/squashfs
modules) and the stand-in boot scripts (tests/data/armboard/: piCore's /init and the end of its
tc-config). overlay.gz goes last and unchanged, exactly as config.txt orders it.

Networking is qemu's user mode (slirp) with ``restrict=on``: the guest gets 10.0.2.15 from
qemu's DHCP server and can reach nothing outside (so its multicast never leaves the emulator).
What that network allows: TCP port forwards both ways (the host reaches the app); UDP forwards
into the guest only (an mDNS query reaches the announcer, whose unicast answer slirp then drops);
no multicast to the host. So the guest's mDNS traffic — its announcements to 224.0.0.251 and its
answers — is read from a pcap of its NIC (qemu's filter-dump). qemu is stopped by PID when the
test ends.
"""

from __future__ import annotations

import io
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import dpkt

from steps.picore import cpio
from steps.wire.netframes import UdpPacket, parse_frame
from tests.support.debian_arm import Kit

DATA = Path(__file__).resolve().parent.parent / "data" / "armboard"
GUEST_IP = "10.0.2.15"  # the first address qemu's DHCP server hands out
MDNS_PORT = 5353
T = TypeVar("T")


def stand_ins_gz() -> bytes:
    """The stand-in boot scripts: /init and /etc/init.d/tc-config."""
    entries = [
        cpio.directory("etc", 0o755),
        cpio.directory("etc/init.d", 0o755),
        cpio.regular("init", (DATA / "init").read_bytes(), 0o755),
        cpio.regular("etc/init.d/tc-config", (DATA / "tc-config").read_bytes(), 0o755),
    ]
    raw = io.BytesIO()
    cpio.write(entries, raw)
    return cpio.gzip_bytes(raw.getvalue())


def initrd(kit: Kit, boot_dir: Path, files: tuple[str, ...]) -> bytes:
    """``cat`` of the board's initramfs files with the userland and stand-ins before the last.

    The kernel reads an uncompressed archive only at a 4-byte aligned offset and skips zero
    bytes between archives, so the (uncompressed) userland is preceded by up to 3 zeros.
    """
    parts = [(boot_dir / f).read_bytes() for f in files]
    head = b"".join(parts[:-1])
    pad = b"\0" * (-len(head) % 4)
    return b"".join([head, pad, kit.userland.read_bytes(), stand_ins_gz(), parts[-1]])


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A port on 127.0.0.1 that is free right now (qemu binds it a moment later)."""
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class BootFailed(AssertionError):
    """The board did not get where the test waited for (the console tail says why)."""


@dataclass
class Board:
    """One running qemu; ``url()`` reaches the guest's app port through the forward."""

    kit: Kit
    work: Path
    app_port: int
    http_port: int = 0
    mdns_port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    marks: dict[str, float] = field(default_factory=dict)

    @property
    def console_log(self) -> Path:
        return self.work / "console.log"

    @property
    def pcap(self) -> Path:
        return self.work / "net.pcap"

    def console(self) -> str:
        try:
            return self.console_log.read_text(errors="replace").replace("\r", "")
        except FileNotFoundError:
            return ""

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.http_port}{path}"

    def start(self, initrd_path: Path, cmdline: str) -> None:
        """Start qemu (retrying with other ports if a forward cannot bind)."""
        arch = self.kit.arch
        for _ in range(3):
            self.http_port, self.mdns_port = free_port(), free_port(socket.SOCK_DGRAM)
            netdev = (
                f"user,id=n0,restrict=on,"
                f"hostfwd=tcp:127.0.0.1:{self.http_port}-:{self.app_port},"
                f"hostfwd=udp:127.0.0.1:{self.mdns_port}-:{MDNS_PORT}"
            )
            self.console_log.unlink(missing_ok=True)
            args = [
                arch.qemu, "-M", "virt", "-cpu", arch.cpu, "-smp", "2", "-m", "1024",
                "-display", "none", "-monitor", "none", "-no-reboot",
                "-serial", f"file:{self.console_log}",
                "-kernel", str(self.kit.kernel), "-initrd", str(initrd_path),
                "-append", cmdline,
                "-netdev", netdev, "-device", "virtio-net-device,netdev=n0",
                "-object", f"filter-dump,id=d0,netdev=n0,file={self.pcap}",
                "-device", "virtio-rng-device",
            ]  # fmt: skip
            self.started = time.monotonic()
            with (self.work / "qemu.out").open("wb") as qemu_out:  # qemu keeps its own copy
                self.proc = subprocess.Popen(
                    args,
                    stdin=subprocess.DEVNULL,
                    stdout=qemu_out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            try:
                self.proc.wait(timeout=1.0)
            except subprocess.TimeoutExpired:
                return  # running
            out = (self.work / "qemu.out").read_text(errors="replace")
            if "host forwarding" not in out:
                raise BootFailed(f"{arch.qemu} exited at once: {out[-2000:]}")
        raise BootFailed(f"{arch.qemu} could not bind its port forwards: {out[-500:]}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)  # its own session: only the qemu we started
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def wait_for(self, what: str, probe: Callable[[], T | None], bound: float) -> T:
        """Poll ``probe`` until it returns a value; BootFailed with the console tail if qemu
        exits first or the board has been on for ``bound`` seconds."""
        while True:
            got = probe()
            if got is not None:
                self.marks[what] = self.elapsed()
                return got
            if self.proc is not None and self.proc.poll() is not None:
                raise BootFailed(f"qemu exited before {what}:\n{self.console()[-6000:]}")
            if self.elapsed() > bound:
                raise BootFailed(
                    f"no {what} {bound:.0f} s after power-on:\n{self.console()[-6000:]}"
                )
            time.sleep(0.5)

    def get(self, path: str, timeout: float = 10.0) -> tuple[int, bytes] | None:
        """GET through the port forward: (status, body), or None when nothing answers yet."""
        try:
            with urllib.request.urlopen(self.url(path), timeout=timeout) as resp:
                return int(resp.status), resp.read()
        except urllib.error.HTTPError as exc:
            return int(exc.code), exc.read()
        except (OSError, ValueError):
            return None  # refused/reset while the guest's app is not listening yet

    def send_mdns(self, packet: bytes) -> None:
        """Send a DNS packet to the guest's port 5353 through the UDP forward. The responder
        answers the sender's address and port (a legacy unicast query), but with restrict=on
        slirp drops UDP from the guest to the host: the answer is read from the capture."""
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(packet, ("127.0.0.1", self.mdns_port))

    def captured_udp(self, port: int) -> list[UdpPacket]:
        """UDP packets to or from ``port`` in the capture of the guest's NIC so far."""
        out: list[UdpPacket] = []
        if not self.pcap.is_file():
            return out
        with self.pcap.open("rb") as fh:
            try:
                for _ts, frame in dpkt.pcap.Reader(fh):
                    pkt = parse_frame(bytes(frame))
                    if isinstance(pkt, UdpPacket) and port in (pkt.sport, pkt.dport):
                        out.append(pkt)
            except (ValueError, dpkt.NeedData):
                pass  # the last record is still being written
        return out


@contextmanager
def running(
    kit: Kit, work: Path, initrd_bytes: bytes, cmdline: str, app_port: int
) -> Iterator[Board]:
    """A started board; stopped (by PID) on exit, whatever happened."""
    if shutil.which(kit.arch.qemu) is None:
        raise BootFailed(f"{kit.arch.qemu} is missing (make setup installs qemu-system-arm)")
    work.mkdir(parents=True, exist_ok=True)
    path = work / "initrd.gz"
    path.write_bytes(initrd_bytes)
    board = Board(kit, work, app_port)
    try:
        board.start(path, cmdline)
        yield board
    finally:
        board.stop()
