"""A virtual Raspberry Pi: does on the wire what a Pi 3 boot ROM or a Pi 4/5 bootloader does.

From one interface, through a raw socket and a MAC of its own, it sends the model's DISCOVER
(byte-exact, ``steps.wire.dhcp``), collects every offer, checks the proxy offer the way the firmware
reads it, gets an address from the real DHCP server (the Pi 3 ROM simply takes the offered
address; the Pi 4/5 do the full DISCOVER/OFFER/REQUEST/ACK, option 60 in the REQUEST too), ARPs
for the TFTP server, and then reads over TFTP (``steps.wire.tftp``) the files the model reads, in
its order and with its options — the sequences are in ``steps.wire.pimodels``, with sources:

- Pi 3: ``bootcode.bin`` and the ``bootsig.bin`` probe from the ROM (no options, 512-byte
  blocks, client port 49152), then, from a new client port per request, the ``<serial>/start.elf``
  probe (which decides the per-device prefix), ``config.txt``, ``start.elf``, ``fixup.dat``
  (``tsize 0``);
- Pi 4: the ``<prefix>/start4.elf`` and ``<prefix>/start.elf`` probes, ``config.txt``,
  ``start4.elf``, ``fixup4.dat`` (``tsize 0 blksize 1468``, firmware files probed with
  ``ERROR 0 "Early terminate"`` and then read, a new source port per request);
- Pi 5: no bootcode.bin, no start*.elf: the ``<prefix>/config.txt`` probe and read, the
  ``pieeprom.sig`` self-update probe;
- every model, as start.elf does (built into the Pi 5 bootloader): the served ``config.txt`` is
  parsed (``steps.picore.configtxt``) and the board's initramfs files, its device tree (Pi 5:
  ``bcm2712-rpi-5-b.dtb`` or, D0 stepping, ``bcm2712d0-rpi-5-b.dtb``), ``overlays/overlay_map.dtb``,
  one ``overlays/<name>.dtbo`` per ``dtoverlay=``, the cmdline file and the kernel are read.

The per-device prefix is the serial (``TFTP_PREFIX`` 0) or, on a Pi 4/5, the MAC with dashes
(``TFTP_PREFIX`` 2). It plays a well-behaved Pi, not a buggy one: no 3B ROM reply-timing bug and
no bootcode.bin second DHCP round (the stages that matter for the server are covered without
them). Each step is reported as a ``Stage`` with a diagnosis code from ``steps.wire.diagnosis``
on failure. The stack under it is minimal and its own: it answers ARP for its address and
sends/receives UDP in raw frames, so the host's interface needs no address and its kernel is not
involved.
"""

from __future__ import annotations

import hashlib
import itertools
import socket
import threading
import time
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import psutil

from steps.errors import Cancelled, FirecoreError, UsageError
from steps.picore.configtxt import ConfigTxt
from steps.wire import dhcp, tftp
from steps.wire.netframes import (
    ARP_REPLY,
    ARP_REQUEST,
    ZERO_MAC,
    ArpPacket,
    UdpPacket,
    arp_frame,
    parse_frame,
    udp_frame,
)
from steps.wire.pimodels import (
    MODELS,
    PI3_ROM_PORT,
    PI_MODELS,
    Model,
    PrefixMode,
    Stepping,
    loader_reads,
    overlay_names,
    prefix_dir,
    virtual_mac,
)
from steps.wire.rawlink import RawLink

#: The device tree start*.elf loads for each model (netboot.md §5.3).
DTB = {name: spec.dtb() for name, spec in PI_MODELS.items()}
PI3_CLIENT_PORT = PI3_ROM_PORT
DEFAULT_SERIAL = "5e1f7e57"


@dataclass(frozen=True)
class Stage:
    """One checked step of a boot."""

    stage: str
    """"dhcp-offer", "proxy-offer" (router mode: "boot-offer"), "lease", "arp", or
    "tftp:<file as requested>"."""
    ok: bool
    message: str
    code: str | None = None
    """Diagnosis code (DESIGN.md) when not ok."""
    file: str | None = None
    status: str | None = None
    """TFTP outcome: complete, probe, not-found, denied, timeout, error, incomplete."""
    bytes: int = 0
    sha256: str | None = None
    elapsed: float = 0.0
    data: Mapping[str, Any] = field(default_factory=dict)
    required: bool = True
    """False for probes whose absence is normal (bootsig.bin, <serial>/start.elf …)."""


@dataclass
class BootReport:
    """Everything one virtual boot found, in the shape of the monitor's summary client."""

    mac: str
    model: str
    serial: str
    ip: str | None = None
    server: str | None = None
    prefix: str = ""
    phase: str = "discover"
    """Furthest boot phase reached: discover, offer, lease, tftp, firmware, kernel, initramfs,
    complete."""
    stages: list[Stage] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Every stage passed (and the boot got to the end)."""
        return self.phase == "complete" and all(s.ok for s in self.stages)

    def client(self) -> dict[str, Any]:
        """The monitor summary's client object."""
        return {
            "mac": self.mac,
            "ip": self.ip,
            "serial": self.serial,
            "model": self.model,
            "stage": self.phase,
            "files": [
                {"name": s.file, "status": s.status, "bytes": s.bytes}
                for s in self.stages
                if s.file is not None
            ],
        }


# ------------------------------------------------------------------------- tiny IP stack


class PiNet:
    """ARP and UDP for one station (MAC + IP) over a RawLink."""

    def __init__(self, link: RawLink, mac: str) -> None:
        self.link = link
        self.mac = mac
        self.ip = "0.0.0.0"
        self.neighbours: dict[str, str] = {}

    def handle(self, frame: bytes) -> UdpPacket | None:
        """Answer ARP for our address; return UDP addressed to us, drop everything else."""
        pkt = parse_frame(frame)
        if isinstance(pkt, ArpPacket):
            if pkt.op == ARP_REQUEST and pkt.target_ip == self.ip and self.ip != "0.0.0.0":
                self.neighbours[pkt.sender_ip] = pkt.sender_mac
                self.link.send(
                    arp_frame(
                        op=ARP_REPLY,
                        src_mac=self.mac,
                        src_ip=self.ip,
                        target_mac=pkt.sender_mac,
                        target_ip=pkt.sender_ip,
                    )
                )
            elif pkt.op == ARP_REPLY and pkt.target_ip == self.ip:
                self.neighbours[pkt.sender_ip] = pkt.sender_mac
            return None
        if isinstance(pkt, UdpPacket) and pkt.dst_ip == self.ip and pkt.dst_mac == self.mac:
            return pkt
        return None

    def arp(
        self, ip: str, *, tries: int = 3, wait: float = 1.0, cancel: threading.Event | None = None
    ) -> str | None:
        """Resolve ``ip`` (who-has, like the Pi before its first RRQ); None if unanswered."""
        for _ in range(tries):
            self.link.send(
                arp_frame(
                    op=ARP_REQUEST,
                    src_mac=self.mac,
                    src_ip=self.ip,
                    target_mac=ZERO_MAC,
                    target_ip=ip,
                )
            )
            deadline = time.monotonic() + wait
            while (left := deadline - time.monotonic()) > 0:
                if cancel is not None and cancel.is_set():
                    raise Cancelled()
                frame = self.link.recv(min(left, 0.1))
                if frame is not None:
                    self.handle(frame)
                if ip in self.neighbours:
                    return self.neighbours[ip]
        return None

    def endpoint(self, port: int) -> PiEndpoint:
        """A UDP port on our address (a ``tftp.Endpoint``)."""
        return PiEndpoint(self, port)


class PiEndpoint:
    """UDP port ``port`` of a PiNet station."""

    def __init__(self, net: PiNet, port: int) -> None:
        self.net = net
        self.port = port

    def send(self, data: bytes, addr: tftp.Addr) -> None:
        """Send a datagram (the peer's MAC must be known: ARP first)."""
        dst_mac = self.net.neighbours.get(addr[0])
        if dst_mac is None:
            return  # like the firmware: no ARP answer, nothing reaches the wire usefully
        self.net.link.send(
            udp_frame(
                src_mac=self.net.mac,
                dst_mac=dst_mac,
                src_ip=self.net.ip,
                dst_ip=addr[0],
                sport=self.port,
                dport=addr[1],
                payload=data,
            )
        )

    def recv(self, timeout: float) -> tuple[bytes, tftp.Addr] | None:
        """The next datagram to this port within ``timeout``; ARP is answered meanwhile."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            frame = self.net.link.recv(left)
            if frame is None:
                return None
            pkt = self.net.handle(frame)
            if pkt is not None and pkt.dport == self.port:
                return pkt.payload, (pkt.src_ip, pkt.sport)
        return None


# ------------------------------------------------------------------------- the boot


@dataclass
class BootOptions:
    """Knobs of a virtual boot (defaults suit a LAN; tests shorten them)."""

    dhcp_attempts: int = 3
    dhcp_window: float = 3.0
    """Seconds to collect offers after each DISCOVER."""
    settle: float = 0.6
    """After both offers arrived, keep listening this long for a second proxy."""
    arp_wait: float = 1.0
    """Seconds to wait for each of the 3 ARP requests for the TFTP server."""
    tftp_timeout: float = 1.0
    tftp_retries: int = 4
    file_timeout: float = 30.0
    manifest: Mapping[str, Any] | None = None
    """A deployed manifest.json: every complete file's sha256 is compared with it."""
    on_progress: Callable[[str, int, int | None], None] | None = None
    """Called with (file, bytes so far, tsize) during each transfer."""


def _local_hint(iface: str) -> str:
    """Why a proxy on this very host is not heard (a NIC never hands its own frames inward)."""
    try:
        addrs = psutil.net_if_addrs().get(iface, [])
    except OSError:  # pragma: no cover
        return ""
    own = [a.address for a in addrs if a.family == socket.AF_INET]
    if not own:
        return ""
    return (
        f" (if the proxy runs on this host ({', '.join(own)}): the virtual Pi's frames leave "
        f"through {iface} and never reach the local dnsmasq — run the self-test from another "
        "machine on the LAN)"
    )


class VirtualPi:
    """One emulated Pi 3, Pi 4 or Pi 5 on an interface."""

    def __init__(
        self,
        iface: str,
        *,
        model: Model = "pi3",
        serial: str = DEFAULT_SERIAL,
        mac: str | None = None,
        options: BootOptions | None = None,
        cancel: threading.Event | None = None,
        prefix: PrefixMode = "serial",
        stepping: Stepping = "c1",
    ) -> None:
        self.iface = iface
        self.model: Model = model
        self.spec = PI_MODELS[model]
        self.serial = serial.lower()
        self.mac = (mac or virtual_mac(model, self.serial)).lower()
        self.opts = options or BootOptions()
        self.cancel = cancel
        self.prefix_mode: PrefixMode = "serial" if model == "pi3" else prefix
        """TFTP_PREFIX 0 (serial) or 2 (MAC); a Pi 3 only knows the serial."""
        self.stepping: Stepping = stepping
        """BCM2712 stepping of a Pi 5 (D0 boards load bcm2712d0-rpi-5-b.dtb)."""
        # Pi 3: the ROM reads from 49152, bootcode.bin/start.elf from a new port per RRQ after it;
        # Pi 4/5: a new ephemeral port per RRQ (netboot.md §6, §12).
        start = PI3_ROM_PORT + 1 if model == "pi3" else 40084 + int(self.serial, 16) % 997 * 16
        self._ports = itertools.count(start)
        self.last: tftp.Transfer | None = None
        """The last TFTP transfer (its bytes: the served config.txt is parsed from it)."""

    def _check(self) -> None:
        if self.cancel is not None and self.cancel.is_set():
            raise Cancelled()

    def boot(self, report: BootReport | None = None) -> Iterator[Stage]:
        """Boot, yielding each stage as it finishes; ``report`` (if given) is filled in too."""
        report = report if report is not None else self.new_report()
        with RawLink(self.iface, self.mac) as link:
            net = PiNet(link, self.mac)
            for stage in self._boot(link, net, report):
                report.stages.append(stage)
                yield stage
                if not stage.ok and stage.required:
                    return
            report.phase = "complete"

    def new_report(self) -> BootReport:
        """An empty report for this Pi."""
        return BootReport(self.mac, self.model, self.serial)

    # ------------------------------------------------------------------ DHCP
    def _offers(self, link: RawLink) -> tuple[dhcp.DhcpPacket, list[dhcp.Offer], int]:
        """DISCOVER (repeated like the firmware) until both kinds of offer arrived (or, router
        mode, one offer with both an address and option 43).

        After the first real offer and the first proxy offer, it listens ``settle`` seconds
        more, so a second proxy on the segment is seen too.
        """
        discover = dhcp.discover_for(self.model, self.mac, self.serial)
        offers: list[dhcp.Offer] = []

        def both() -> bool:
            # an address and the boot options: two offers (proxy mode) or one (router mode)
            if any(o.offers_address and o.packet.pxe is not None for o in offers):
                return True
            return any(o.is_proxy for o in offers) and any(o.offers_address for o in offers)

        sent = 0
        for _ in range(self.opts.dhcp_attempts):
            self._check()
            started = time.monotonic()
            link.send(dhcp.client_frame(discover, ttl=128 if self.model == "pi3" else 64))
            sent += 1
            until = started + self.opts.dhcp_window
            settle_at: float | None = None
            while True:
                limit = until if settle_at is None else min(until, settle_at)
                if time.monotonic() >= limit:
                    break
                offers += dhcp.collect(
                    link,
                    xid=discover.xid,
                    mac=self.mac,
                    until=limit,
                    started=started,
                    done=bool,
                    cancel=self.cancel,
                )
                if settle_at is None and both():
                    settle_at = time.monotonic() + self.opts.settle
            if both():
                break
        return discover, offers, sent

    def _boot(self, link: RawLink, net: PiNet, report: BootReport) -> Iterator[Stage]:
        t0 = time.monotonic()
        discover, offers, sent = self._offers(link)
        real = [o for o in offers if o.offers_address]
        proxies = [o for o in offers if o.is_proxy]
        if real:
            first = real[0]
            report.phase = "offer"
            yield Stage(
                "dhcp-offer",
                True,
                f"{first.packet.yiaddr} offered by {first.server} after {first.elapsed:.2f} s",
                elapsed=first.elapsed,
                data={"offers": [o.to_data() for o in real]},
            )
        else:
            yield Stage(
                "dhcp-offer",
                False,
                f"no DHCP server offered an address to {self.mac} ({sent} DISCOVER(s), "
                f"{self.opts.dhcp_window:g} s each)",
                code="no-dhcp-lease",
                elapsed=time.monotonic() - t0,
                required=False,
            )
        # router mode: the DHCP server's own offer carries the boot menu (no proxy runs)
        booting_offers = [o for o in real if o.packet.pxe is not None]
        proxy_stage, server = self._check_proxy(proxies + booting_offers)
        yield proxy_stage
        if server is None:
            return
        report.server = server
        lease = yield from self._lease(link, discover, real)
        if lease is None:
            return
        net.ip = report.ip = lease
        report.phase = "lease"
        t = time.monotonic()
        server_mac = net.arp(server, wait=self.opts.arp_wait, cancel=self.cancel)
        if server_mac is None:
            yield Stage(
                "arp",
                False,
                f"ARP who-has {server} tell {lease}: no answer (3 tries)",
                code="arp-unanswered",
                elapsed=time.monotonic() - t,
            )
            return
        yield Stage("arp", True, f"{server} is at {server_mac}", elapsed=time.monotonic() - t)
        report.phase = "tftp"
        yield from self._tftp(net, server, report)

    def _check_proxy(self, proxies: list[dhcp.Offer]) -> tuple[Stage, str | None]:
        """Check the offers that carry boot options: proxy offers, or (router mode) the DHCP
        server's own offer with option 43. The stage is "proxy-offer" or "boot-offer"."""
        if not proxies:
            return (
                Stage(
                    "proxy-offer",
                    False,
                    "no offer with boot options (option 43) answered the DISCOVER: neither a "
                    "proxy-DHCP server nor the DHCP server names a boot server for a Pi on "
                    "this segment" + _local_hint(self.iface),
                    code="no-proxy-offer",
                ),
                None,
            )
        name = "proxy-offer" if any(o.is_proxy for o in proxies) else "boot-offer"
        what = "proxy offer" if name == "proxy-offer" else "DHCP offer"
        booting = [
            o
            for o in proxies
            if o.packet.pxe is not None
            and (o.packet.pxe.has_rpi_string if self.model == "pi3" else o.packet.pxe.has_rpi_menu)
        ]
        data = {"offers": [o.to_data() for o in proxies]}
        if not booting:
            seen = [o.packet.pxe.raw.hex() if o.packet.pxe else "no option 43" for o in proxies]
            return (
                Stage(
                    name,
                    False,
                    f'{what} from {proxies[0].server} carries no "Raspberry Pi Boot" '
                    f"PXE menu entry (option 43: {seen[0]})",
                    code="bad-option-43",
                    data=data,
                ),
                None,
            )
        servers = sorted({o.server for o in booting})
        if len(servers) > 1:
            return (
                Stage(
                    name,
                    False,
                    f"{len(servers)} servers offer Pis a boot menu: {', '.join(servers)}; a Pi "
                    "boots from "
                    "whichever it reads first",
                    code="multiple-proxies",
                    data=data,
                ),
                None,
            )
        offer = booting[0]
        pkt = offer.packet
        # Pi 3: the offer's IP source (opt 66 as a dotted IP would override); Pi 4/5: option 54.
        server = offer.src_ip if self.model == "pi3" else (pkt.server_id or offer.src_ip)
        named = pkt.tftp_server_name
        if named is not None and named != server:
            return (
                Stage(
                    name,
                    False,
                    f"the {what} names TFTP server {named!r} in option 66, but it was sent "
                    f"by {server}",
                    code="tftp-server-mismatch",
                    data=data,
                ),
                None,
            )
        if pkt.server_id and pkt.server_id != offer.src_ip:
            return (
                Stage(
                    name,
                    False,
                    f"the {what} came from {offer.src_ip} but names server {pkt.server_id} "
                    "(option 54); Pi 3 and Pi 4/5 would use different TFTP servers",
                    code="tftp-server-mismatch",
                    data=data,
                ),
                None,
            )
        menu = ", ".join(repr(m.description) for m in pkt.pxe.menu) if pkt.pxe else ""
        return (
            Stage(
                name,
                True,
                f"{server} offers PXE menu {menu} after {offer.elapsed:.2f} s"
                + ("" if offer.is_proxy else " in its DHCP offer (router mode)")
                + f"; TFTP server {server}",
                elapsed=offer.elapsed,
                data=data,
            ),
            server,
        )

    def _lease(
        self, link: RawLink, discover: dhcp.DhcpPacket, real: list[dhcp.Offer]
    ) -> Generator[Stage, None, str | None]:
        if not real:
            yield Stage(
                "lease",
                False,
                "no address: no DHCP server answered (the proxy gives none)",
                code="no-dhcp-lease",
            )
            return None
        offer = real[0]
        if self.model == "pi3":
            yield Stage(
                "lease",
                True,
                f"{offer.packet.yiaddr} taken from {offer.server}'s offer (the Pi 3 ROM sends "
                "no REQUEST)",
            )
            return offer.packet.yiaddr
        request = dhcp.pi4_request(discover, offer.packet)
        started = time.monotonic()
        for _ in range(self.opts.dhcp_attempts):
            self._check()
            link.send(dhcp.client_frame(request, ttl=64))
            replies = dhcp.collect(
                link,
                xid=request.xid,
                mac=self.mac,
                until=time.monotonic() + self.opts.dhcp_window,
                started=started,
                kinds=(dhcp.ACK, dhcp.NAK),
                done=lambda r: any(o.server == offer.server for o in r),
                cancel=self.cancel,
            )
            reply = next((o for o in replies if o.server == offer.server), None)
            if reply is None:
                continue
            if reply.packet.message_type == dhcp.NAK:
                yield Stage(
                    "lease",
                    False,
                    f"{offer.server} refused the REQUEST for {offer.packet.yiaddr} (NAK)",
                    code="no-dhcp-lease",
                )
                return None
            yield Stage(
                "lease",
                True,
                f"{reply.packet.yiaddr} acknowledged by {reply.server} (DHCPACK, lease "
                f"{reply.packet.lease_time} s)",
                elapsed=reply.elapsed,
            )
            return reply.packet.yiaddr
        yield Stage(
            "lease",
            False,
            f"{offer.server} offered {offer.packet.yiaddr} but never acknowledged the REQUEST",
            code="no-dhcp-lease",
        )
        return None

    # ------------------------------------------------------------------ TFTP
    def _fetch(
        self,
        net: PiNet,
        server: str,
        name: str,
        *,
        options: dict[str, str] | None,
        probe: bool = False,
        port: int | None = None,
        required: bool = True,
        missing_code: str = "tftp-file-not-found",
    ) -> Stage:
        self._check()
        ep = net.endpoint(port if port is not None else next(self._ports))
        progress = self.opts.on_progress

        def on_block(done: int) -> None:
            if progress is not None:
                progress(name, done, None)

        got = self.last = tftp.fetch(
            ep,
            server,
            name,
            options=options,
            probe=probe,
            timeout=self.opts.tftp_timeout,
            retries=self.opts.tftp_retries,
            file_timeout=self.opts.file_timeout,
            cancel=self.cancel,
            on_block=on_block,
        )
        return self._judge(got, required=required, missing_code=missing_code, client_port=ep.port)

    def _judge(
        self, got: tftp.Transfer, *, required: bool, missing_code: str, client_port: int = 0
    ) -> Stage:
        """The stage for one transfer: its outcome, and the manifest check when complete."""
        name = got.filename
        info: dict[str, Any] = {
            "options": got.options,
            "tsize": got.tsize,
            "blksize": got.blksize,
            "requests": got.requests,
            "server_port": got.server_port,
            "client_port": client_port,
        }

        def stage(ok: bool, message: str, code: str | None = None, sha: str | None = None) -> Stage:
            return Stage(
                f"tftp:{name}",
                ok,
                message,
                code,
                file=name,
                status=got.status,
                bytes=got.size,
                sha256=sha,
                elapsed=got.elapsed,
                data=info,
                required=required,
            )

        if got.status == "probe":
            return stage(True, got.reason)
        if got.status == "complete":
            digest = hashlib.sha256(got.data).hexdigest()
            if self.opts.manifest is None:
                return stage(True, got.reason, sha=digest)
            entry = self.opts.manifest.get("files", {}).get(name)
            if entry is None:
                return stage(
                    False,
                    f"served, but {name} is not in the deployed manifest",
                    "manifest-mismatch",
                    digest,
                )
            if entry.get("sha256") != digest:
                return stage(
                    False,
                    f"{got.size} bytes with sha256 {digest[:12]}…, the deployed manifest says "
                    f"{str(entry.get('sha256'))[:12]}… ({entry.get('size')} bytes)",
                    "manifest-mismatch",
                    digest,
                )
            return stage(True, f"{got.reason}, sha256 matches the manifest", sha=digest)
        if not required and got.status in ("not-found", "denied"):
            return stage(True, f"{got.reason} (normal)")
        if got.status == "not-found":
            return stage(False, f"{name} not found on the server: {got.reason}", missing_code)
        if got.status == "denied":
            return stage(False, f"{name}: access denied: {got.reason}", "tftp-access-denied")
        if got.status == "timeout" and got.server_port is None:
            return stage(
                False, f"no answer to RRQ {name} ({got.requests} request(s))", "tftp-no-response"
            )
        return stage(False, f"{name}: {got.reason}", "tftp-timeout")

    def _tftp(self, net: PiNet, server: str, report: BootReport) -> Iterator[Stage]:
        """The model's TFTP reads, in its order (``steps.wire.pimodels``)."""
        spec = self.spec
        pi3 = self.model == "pi3"

        def get(name: str, **kw: Any) -> Stage:
            kw.setdefault("options", dict(spec.options))
            return self._fetch(net, server, name, **kw)

        def probed(name: str, **kw: Any) -> Iterator[Stage]:
            """An existence probe (early terminate), then the real read."""
            probe = get(name, probe=True, **kw)
            if not probe.ok or probe.status != "probe":
                yield probe
                return
            yield get(name, **kw)

        def until_failure(stages: Iterable[Stage]) -> Iterator[Stage | None]:
            """Pass stages on; end with None when one of them stops the boot."""
            for stage in stages:
                yield stage
                if not stage.ok and stage.required:
                    yield None
                    return

        # ---- first stage: the Pi 3 ROM, then the per-device prefix
        if pi3:
            yield get("bootcode.bin", options=None, port=PI3_ROM_PORT)
            yield get("bootsig.bin", options=None, port=PI3_ROM_PORT, required=False)
        own = prefix_dir(self.prefix_mode, self.serial, self.mac)
        prefix = ""
        for name in spec.prefix_probes:
            first = get(f"{own}/{name}", probe=True, required=False)
            yield first
            if first.status == "probe":
                prefix = f"{own}/"
                break
        report.prefix = prefix

        # ---- config.txt, then the firmware files (Pi 3/4) or the self-update probe (Pi 5)
        if self.model == "pi5":
            reads: Iterable[Stage] = (
                [get(f"{prefix}config.txt")] if prefix else probed("config.txt")
            )
        else:
            reads = [get(f"{prefix}config.txt")]
        for config in until_failure(reads):
            if config is None:
                return
            yield config
        raw = self.last.data if self.last is not None else b""
        cfg = ConfigTxt.from_bytes(raw, source=f"served {prefix}config.txt")
        settings = cfg.settings(self.model, self.serial)
        named = dict(settings)
        for extra in spec.optional:
            yield get(f"{prefix}{extra}", required=False)
        for default, key in zip(spec.firmware, ("start_file", "fixup_file"), strict=False):
            name = (named.get(key) or default).split()[0]
            source = [get(f"{prefix}{name}")] if pi3 else probed(f"{prefix}{name}")
            for stage in until_failure(source):
                if stage is None:
                    return
                yield stage
        report.phase = "firmware"

        # ---- what start.elf reads (built into the Pi 5 bootloader)
        try:
            boot = cfg.boot_for(self.model, self.serial)
        except FirecoreError as exc:
            code = "kernel-not-requested" if "kernel" in exc.message else "initramfs-missing"
            yield Stage(
                "config",
                False,
                f"the served {prefix}config.txt: {exc.message}",
                code=code,
            )
            return
        tree = named.get("device_tree", "").split()
        dtb = tree[0] if tree else spec.dtb(self.stepping)
        for read in loader_reads(
            initramfs=boot.initramfs,
            dtb=dtb,
            overlays=overlay_names(settings),
            cmdline=boot.cmdline,
            kernel=boot.kernel,
        ):
            kw: dict[str, Any] = {"required": read.required, "missing_code": read.missing_code}
            source = (
                probed(prefix + read.name, **kw)
                if read.probe_first
                else [get(prefix + read.name, **kw)]
            )
            for stage in until_failure(source):
                if stage is None:
                    return
                yield stage
            if read.kind == "kernel":
                report.phase = "kernel"
        report.phase = "initramfs"


def check_serial(serial: str) -> str:
    """A serial as the firmware writes its prefix: 8 lower-case hex digits.

    Raises:
        UsageError: anything else.
    """
    low = serial.lower()
    if len(low) != 8 or any(c not in "0123456789abcdef" for c in low):
        raise UsageError(
            f"{serial!r} is not a serial number (8 hex digits, e.g. 9ffefdef)",
            fix="use the low 8 hex digits of /proc/cpuinfo's Serial",
        )
    return low


def run_selftest(
    iface: str,
    *,
    model: str = "pi3",
    serial: str = DEFAULT_SERIAL,
    mac: str | None = None,
    manifest: Mapping[str, Any] | None = None,
    options: BootOptions | None = None,
    cancel: threading.Event | None = None,
    report: BootReport | None = None,
    prefix: str = "serial",
    stepping: str = "c1",
) -> Iterator[Stage]:
    """Boot one virtual Pi on ``iface`` and yield each stage as it finishes.

    Raises:
        UsageError: bad model/serial/prefix, no such interface, or not root.
    """
    if model not in MODELS:
        raise UsageError(f"model {model!r} is not one of {', '.join(MODELS)}")
    if prefix not in ("serial", "mac"):
        raise UsageError(f"TFTP prefix {prefix!r} is not serial or mac")
    if prefix == "mac" and model == "pi3":
        raise UsageError(
            "a Pi 3 only knows the serial-number prefix (TFTP_PREFIX is a Pi 4/5 setting)",
            fix="use --tftp-prefix serial with --model pi3",
        )
    if stepping not in ("c1", "d0"):
        raise UsageError(f"BCM2712 stepping {stepping!r} is not c1 or d0")
    opts = options or BootOptions()
    if manifest is not None:
        opts.manifest = manifest
    pi = VirtualPi(
        iface,
        model=model,
        serial=check_serial(serial),
        mac=mac,
        options=opts,
        cancel=cancel,
        prefix=prefix,  # type: ignore[arg-type]
        stepping=stepping,  # type: ignore[arg-type]
    )
    if report is None:
        report = pi.new_report()
    report.mac, report.model, report.serial = pi.mac, pi.model, pi.serial
    yield from pi.boot(report)
