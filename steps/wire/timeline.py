"""One timeline per Pi: its stages, what it is, what it read, and what went wrong.

``Timeline`` is fed the decoded packets of a capture in order (``packet``), the TFTP transfers the
decoder opens and ends (``transfer_started``/``transfer_ended``), DATA progress (``block``), mDNS
announcements (``announcement``) and, when nothing arrives, the passing time (``tick``); it
appends ``StageEvent``, ``DiagnosisEvent`` and ``ClientEvent`` objects to ``out``. All times are
capture timestamps, so a file replays exactly as it happened live.

**Which clients.** A DHCP client is a Pi when its DISCOVER carries the PXE vendor class and
either a Pi GUID in option 97 (``steps.wire.dhcp.parse_guid``), the Pi 3 boot ROM's constant xid
0x26f30339, or a Raspberry Pi OUI (netboot.md §2.2, "to flag this is a Pi bootloader"). A TFTP
client reading Pi boot files, or announcing the firecore app over mDNS, becomes one too (a
capture started mid-boot). ``watch_mac`` follows one MAC whatever it looks like.

**What it infers.** Model and bootloader from option 97 (``RPi4``/``RPi5``, the 3B ROM's 0x44×16,
bootcode.bin's serial×4), the ROM xid, the file names (``start4.elf``, ``bcm2711-…dtb``, a first
``config.txt``…) and, as a last hint, the OUI; the serial from option 97 or a ``<serial>/``
prefix; the address and the DHCP server that gave it; the boot server the proxy named. A new
bootloader DISCOVER after TFTP began starts a new boot (``boots``), except bootcode.bin's own
second DHCP round, which is normal (netboot.md §4.1).

**When it judges.** A "not found" is only a finding when the boot does not get past it: the
firmware probes many files on a healthy boot (netboot.md §5.3). Such open questions wait until
the Pi resolves them (the same file served under another path, the next stage reached), and
become diagnoses when they are still open ``Timers.judge_after`` seconds later, when the Pi
starts over, or at the end of the capture. Timers (``Timers``) turn silence into findings: no
offer, unanswered ARP or TFTP requests, a stalled transfer, a stalled boot, no app.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from steps.errors import FirecoreError
from steps.picore.configtxt import ConfigTxt
from steps.wire import bootfiles, dhcp
from steps.wire.decode import TransferState
from steps.wire.diagnosis import finding
from steps.wire.mdns import MdnsAnnouncement
from steps.wire.monitor_events import (
    STAGES,
    ArpPacketEvent,
    ClientEvent,
    ClientSnapshot,
    DhcpPacketEvent,
    DiagnosisEvent,
    FileResult,
    PacketEvent,
    StageEvent,
    TftpPacketEvent,
)
from steps.wire.pimodels import overlay_names

_ORDER = {name: n for n, name in enumerate(STAGES)}
_NS = 1_000_000_000
_BAD_SERVER_MACS = frozenset({"aa:aa:aa:aa:aa:aa", "00:00:00:00:00:00"})
_PI3_ROM_XID = f"0x{dhcp.PI3_ROM_XID:08x}"
_MODEL_RANK = {"oui": 0, "order": 1, "files": 2, "mdns": 2, "devicetree": 3, "xid": 3, "guid": 4}


@dataclass(frozen=True)
class Timers:
    """How long silence may last before it means something (seconds of capture time)."""

    dhcp_reply: float = 5.0
    """A DISCOVER's offers (a full-DHCP server pings first, ~3 s; a Pi 4 retries after 4 s)."""
    arp_reply: float = 2.0
    tftp_reply: float = 5.0
    """A read request's first answer (a Pi 4 re-sends it every 2 s)."""
    tftp_stall: float = 6.0
    """An answered transfer without any packet for this long has stalled."""
    judge_after: float = 5.0
    """An open question (a missing file, a lost transfer) the boot did not get past."""
    stall: float = 30.0
    """A Pi silent this long at a stage before Linux runs (kernel never asked for, nothing
    after the firmware probes): ``boot-stalled`` / ``kernel-not-requested``."""
    os_wait: float = 120.0
    """From the last boot file to the booted Linux's DHCP."""
    app_wait: float = 120.0
    """From the Linux DHCP to the app's announcement."""
    no_discover: float = 30.0
    """Listening live with no Pi at all."""
    snapshot: float = 0.25
    """At most one progress snapshot (``ClientEvent``) per Pi in this long."""
    eof_quiet: float = 1.0
    """At the end of a capture, a Pi that was quiet this long is judged as stuck."""


@dataclass
class _Open:
    """A question the boot may still answer (see the module docstring)."""

    code: str
    key: str
    since_ns: int
    message: str
    evidence: list[int]
    boot: int
    file: str | None = None
    resolved: Callable[[], bool] | None = None
    at_eof: bool = True
    """Judge it at the end of a capture whatever its age."""
    wait: float | None = None
    """Its own age limit (default ``Timers.judge_after``)."""


@dataclass
class _Expect:
    """What the served config.txt says this Pi loads next."""

    kernel: str | None
    initramfs: tuple[str, ...]
    cmdline: str
    overlays: tuple[str, ...] = ()
    """``overlays/<name>.dtbo`` of every ``dtoverlay=`` of the board's sections."""
    note: str = ""


@dataclass(eq=False)
class Client:
    """The monitor's state for one Pi (internal; screens get ``ClientSnapshot``)."""

    mac: str
    first_ns: int
    model: str | None = None
    model_source: str | None = None
    bootloader: str | None = None
    serial: str | None = None
    serial_source: str | None = None
    ip: str | None = None
    ip_from: str | None = None
    tftp_server: str | None = None
    # ---- the current boot
    boot: int = 1
    power_on_ns: int = 0
    reached: dict[str, tuple[int, int | None]] = field(default_factory=dict)
    """stage → (ns, packet index)."""
    stage: str | None = None
    boot_xid: str | None = None
    discover_is: list[int] = field(default_factory=list)
    discover_ns: list[int] = field(default_factory=list)
    offers: dict[str, int] = field(default_factory=dict)
    """Real DHCP servers that offered an address this boot → index."""
    proxies: dict[str, int] = field(default_factory=dict)
    """Servers whose offer a Pi boots from this boot → index."""
    bad_proxies: dict[str, tuple[int, str]] = field(default_factory=dict)
    ignored_rounds: list[int] = field(default_factory=list)
    """DISCOVERs sent although both offers had arrived."""
    boot_files: list[TransferState] = field(default_factory=list)
    boot_starts: list[int] = field(default_factory=list)
    """Index of the first DISCOVER (or request) of every boot."""
    arp_wait: dict[str, list[int]] = field(default_factory=dict)
    arp_first: dict[str, int] = field(default_factory=dict)
    second_round: int | None = None
    """Index of bootcode.bin's own DISCOVER, while no request followed it yet."""
    expect: _Expect | None = None
    # ---- the whole life
    last_ns: int = 0
    files: list[TransferState] = field(default_factory=list)
    current: TransferState | None = None
    open: list[_Open] = field(default_factory=list)
    raised: set[str] = field(default_factory=set)
    codes: list[str] = field(default_factory=list)
    probe_is: list[int] = field(default_factory=list)
    snap_ns: int = 0
    announced: tuple[int, int] | None = None
    """(ns, index) of the first app announcement."""
    boot_codes: set[str] = field(default_factory=set)
    """Codes raised during the current boot (a boot already explained is not also "stalled")."""

    def set_model(self, model: str, source: str) -> None:
        """Take ``model`` if ``source`` is at least as strong as what we had."""
        old = _MODEL_RANK.get(self.model_source or "", -1)
        if _MODEL_RANK[source] > old or (self.model is None):
            self.model, self.model_source = model, source

    def set_serial(self, serial: str, source: str) -> None:
        if self.serial is None or (source == "guid" and self.serial_source != "guid"):
            self.serial, self.serial_source = serial, source


def _file_result(x: TransferState, *, final: bool, end_ns: int, stall: float) -> FileResult:
    """A transfer as a summary row; at the end an open one is ``timeout`` if it had stalled
    (or was never answered for a while), else ``incomplete`` (the capture stopped during it)."""
    status = x.status
    if status is None:
        if not final:
            status = "running"
        elif (end_ns - x.last_ns) / _NS >= stall or (
            not x.answered and (end_ns - x.first_ns) / _NS >= 1.0
        ):
            status = "timeout"
        else:
            status = "incomplete"
    return FileResult(
        name=x.file,
        status=status,  # type: ignore[arg-type]
        bytes=x.bytes,
        duration=round(x.duration, 6),
        tsize=x.tsize,
        blksize=x.blksize,
        requests=x.requests,
        transfer=x.id,
        i=x.first_i,
        error_code=x.error_code,
        error_msg=x.error_msg,
    )


_MODEL_TEXT = re.compile(r"Raspberry Pi (\d)")


class Timeline:
    """Per-Pi state machines over one capture (see the module docstring).

    Args:
        timers: the silence thresholds.
        ouis: Raspberry Pi MAC prefixes (``b8:27:eb``), a hint only.
        watch_mac: follow this MAC whatever it looks like.
        live: ``tick`` comes from a clock (live capture or a stream): ``no-discover`` may fire.
        health: called with (mac, announcement, ip) when a Pi announces its app, live only; the
            caller checks ``/health`` and reports back through ``health_result``.
    """

    def __init__(
        self,
        timers: Timers | None = None,
        ouis: Iterable[str] = (),
        *,
        watch_mac: str | None = None,
        live: bool = False,
        health: Callable[[str, MdnsAnnouncement, str | None], None] | None = None,
    ) -> None:
        self.timers = timers or Timers()
        self.ouis = frozenset(o.lower() for o in ouis)
        self.watch_mac = watch_mac.lower() if watch_mac else None
        self.live = live
        self.health = health
        self.clients: dict[str, Client] = {}
        self.by_ip: dict[str, str] = {}
        self.out: list[StageEvent | DiagnosisEvent | ClientEvent] = []
        self.t0: int | None = None
        self.now_ns = 0
        self.raised_global: set[str] = set()
        self.first_discover_i: int | None = None
        self.code_counts: dict[str, int] = {}

    # ------------------------------------------------------------------ helpers
    def _t(self, ns: int) -> float:
        return (ns - (self.t0 or ns)) / _NS

    def _emit_finding(self, d: DiagnosisEvent, client: Client | None) -> None:
        self.out.append(d)
        self.code_counts[d.code] = self.code_counts.get(d.code, 0) + 1
        if client is not None:
            if d.code not in client.codes:
                client.codes.append(d.code)
            if d.severity != "info":
                client.boot_codes.add(d.code)
            self._snapshot(client, force=True)

    def _raise(
        self,
        c: Client | None,
        code: str,
        message: str,
        evidence: Iterable[int],
        *,
        key: str | None = None,
        file: str | None = None,
        fix: str | None = None,
        ns: int | None = None,
    ) -> None:
        """Emit a diagnosis once per (Pi, key)."""
        dedupe = key or code
        seen = c.raised if c is not None else self.raised_global
        if dedupe in seen:
            return
        seen.add(dedupe)
        at = self.now_ns if ns is None else ns
        self._emit_finding(
            finding(
                code,
                mac=c.mac if c is not None else None,
                message=message,
                evidence=evidence,
                t=self._t(at),
                stage=c.stage if c is not None else None,
                file=file,
                fix=fix,
            ),
            c,
        )

    def _snapshot(self, c: Client, *, force: bool = False) -> None:
        if not force and self.now_ns - c.snap_ns < self.timers.snapshot * _NS:
            return
        c.snap_ns = self.now_ns
        self.out.append(ClientEvent(client=self.snapshot(c)))

    def snapshot(self, c: Client, *, final: bool = False) -> ClientSnapshot:
        """The client's row as it stands (``final``: open transfers get their end status)."""
        stall = self.timers.tftp_stall
        cur = c.current
        return ClientSnapshot(
            mac=c.mac,
            model=c.model,
            model_source=c.model_source,
            bootloader=c.bootloader,
            serial=c.serial,
            serial_source=c.serial_source,
            ip=c.ip,
            ip_from=c.ip_from,
            tftp_server=c.tftp_server,
            stage=c.stage,
            stages={
                s: round((ns - c.power_on_ns) / _NS, 6)
                for s, (ns, _i) in sorted(c.reached.items(), key=lambda kv: kv[1][0])
            },
            boots=c.boot,
            power_on_t=self._t(c.power_on_ns),
            current=(
                _file_result(cur, final=False, end_ns=self.now_ns, stall=stall)
                if cur is not None and cur.status is None and not final
                else None
            ),
            files=[_file_result(x, final=final, end_ns=self.now_ns, stall=stall) for x in c.files],
            codes=list(c.codes),
        )

    def _reach(self, c: Client, stage: str, ns: int, i: int | None) -> None:
        if stage in c.reached:
            return
        c.reached[stage] = (ns, i)
        if c.stage is None or _ORDER[stage] > _ORDER[c.stage]:
            c.stage = stage
        self.out.append(
            StageEvent(
                mac=c.mac,
                stage=stage,
                t=self._t(ns),
                since_power_on=(ns - c.power_on_ns) / _NS,
                i=i,
                boot=c.boot,
            )
        )
        self._snapshot(c, force=True)

    def _client(self, mac: str, ns: int) -> Client:
        c = self.clients.get(mac)
        if c is None:
            c = self.clients[mac] = Client(mac=mac, first_ns=ns, power_on_ns=ns, last_ns=ns)
            # a hint only: b8:27:eb is the Foundation's (Pi 1-3); dc:a6:32 and e4:5f:01 were
            # first used for the Pi 4; newer prefixes are shared by Pi 4, 5 and CM boards
            oui = mac[:8]
            if oui in self.ouis and oui == "b8:27:eb":
                c.set_model("pi1-3", "oui")
            elif oui in self.ouis and oui in ("dc:a6:32", "e4:5f:01"):
                c.set_model("pi4", "oui")
            self._snapshot(c, force=True)
        return c

    def _wants(self, mac: str | None) -> bool:
        return mac is not None and (self.watch_mac is None or mac == self.watch_mac)

    def _new_boot(self, c: Client, ns: int, i: int) -> None:
        """The Pi starts over: judge what the last boot left open, then reset."""
        self._judge(c, force=True, reason="restart")
        c.boot += 1
        c.power_on_ns = ns
        c.reached.clear()
        c.stage = None
        c.boot_xid = None
        c.discover_is, c.discover_ns = [], []
        c.offers, c.proxies, c.bad_proxies = {}, {}, {}
        c.ignored_rounds = []
        c.boot_files = []
        c.arp_wait, c.arp_first = {}, {}
        c.second_round = None
        c.expect = None
        c.boot_codes = set()
        c.boot_starts.append(i)
        if c.boot >= 3:
            self._raise(
                c,
                "boot-loop",
                f"{c.mac} started its boot {c.boot} times (first packets of each boot as "
                "evidence); look at what failed just before each restart",
                c.boot_starts,
            )

    # ------------------------------------------------------------------ packets
    def packet(self, pkt: PacketEvent) -> None:
        """Observe one decoded packet (DATA/ACK go through ``block`` instead)."""
        ns = pkt.ts_ns
        if self.t0 is None:
            self.t0 = ns
        if ns > self.now_ns:
            self.now_ns = ns
        if isinstance(pkt, DhcpPacketEvent):
            self._dhcp(pkt, ns)
        elif isinstance(pkt, ArpPacketEvent):
            self._arp(pkt, ns)
        elif isinstance(pkt, TftpPacketEvent):
            self._tftp_other(pkt, ns)

    # ---- DHCP
    def _is_pi_bootloader(self, pkt: DhcpPacketEvent) -> bool:
        if not (pkt.vendor_class or "").startswith("PXEClient"):
            return False
        if pkt.client_uuid and dhcp.parse_guid(bytes.fromhex(pkt.client_uuid)) is not None:
            return True
        if pkt.xid == _PI3_ROM_XID:
            return True
        return (pkt.chaddr or "")[:8] in self.ouis

    def _dhcp(self, pkt: DhcpPacketEvent, ns: int) -> None:
        mac = pkt.chaddr
        if mac is None or len(mac) != 17:
            return
        c = self.clients.get(mac)
        if pkt.op == 1:
            pxe = (pkt.vendor_class or "").startswith("PXEClient")
            if c is None:
                if not (
                    self._wants(mac) and (self._is_pi_bootloader(pkt) or mac == self.watch_mac)
                ):
                    return
                c = self._client(mac, ns)
            pkt.mac = mac
            c.last_ns = ns
            if pxe:
                # the bootloader (a REQUEST first: the capture began after its DISCOVER)
                if pkt.msg_type == "DISCOVER" or (pkt.msg_type == "REQUEST" and c.boot_xid is None):
                    self._bootloader_discover(c, pkt, ns)
                return
            if pkt.xid == c.boot_xid:
                return  # an old Pi 4 bootloader's REQUEST (no option 60): still the bootloader
            if pkt.msg_type in ("DISCOVER", "REQUEST"):
                c.bootloader = "linux"
                self._reach(c, "os-dhcp", ns, pkt.i)
                self._judge(c, force=False)
            return
        if c is None:
            return
        pkt.mac = mac
        self._dhcp_reply(c, pkt, ns)

    def _bootloader_discover(self, c: Client, pkt: DhcpPacketEvent, ns: int) -> None:
        guid = dhcp.parse_guid(bytes.fromhex(pkt.client_uuid)) if pkt.client_uuid else None
        # the boot ROM asks for 12 options, bootcode.bin for 14 (adding 1 and 3): netboot.md §2.2
        rom_style = pkt.parameter_list == tuple(dhcp.PI3_ROM_PRL) or (
            not pkt.parameter_list and pkt.client_uuid == dhcp.PI3_ROM_GUID.hex()
        )
        if c.boot_files or c.stage in ("os-dhcp", "app-up"):
            only_bootcode = all(
                bootfiles.split_prefix(x.file)[1] in ("bootcode.bin", "bootsig.bin")
                for x in c.boot_files
            ) and any(x.file == "bootcode.bin" and x.status == "complete" for x in c.boot_files)
            if only_bootcode and c.stage not in ("os-dhcp", "app-up") and not rom_style:
                # bootcode.bin's own DHCP round (netboot.md §4.1 step 8): normal
                c.bootloader = "bootcode.bin"
                if c.second_round is None:
                    c.second_round = pkt.i
                    self._second_round_check(c, pkt.i, ns)
                self._note_guid(c, guid, pkt)
                return
            if only_bootcode and rom_style:
                done = next(x for x in c.boot_files if x.file == "bootcode.bin")
                self._raise(
                    c,
                    "restart-after-bootcode",
                    f"{c.mac} read bootcode.bin ({done.bytes} bytes, packet {done.first_i}) "
                    f"and {(ns - done.last_ns) / _NS:.1f} s later its boot ROM sent a "
                    "DISCOVER again: the Pi reset when bootcode.bin started",
                    [done.first_i, pkt.i],
                )
            self._new_boot(c, ns, pkt.i)
        if not c.discover_is:
            c.power_on_ns = ns
            if not c.boot_starts:
                c.boot_starts.append(pkt.i)
            if self.first_discover_i is None:
                self.first_discover_i = pkt.i
        c.boot_xid = pkt.xid
        c.discover_is.append(pkt.i)
        c.discover_ns.append(ns)
        self._note_guid(c, guid, pkt)
        if c.bootloader is None or c.bootloader == "linux":
            c.bootloader = (
                "pi4-eeprom"
                if guid and guid.model == "pi4"
                else "pi5-eeprom"
                if guid and guid.model == "pi5"
                else "pi3-rom"
                if pkt.xid == _PI3_ROM_XID
                else None
            )
        self._reach(c, "discover", ns, pkt.i)
        if len(c.discover_is) == 1:
            self._dhcp_expectations(c, pkt.i, ns)
        else:
            self._retry(c, pkt, ns)

    def _note_guid(self, c: Client, guid: dhcp.PiGuid | None, pkt: DhcpPacketEvent) -> None:
        if guid is not None:
            c.set_model(guid.model, "guid")
            if guid.serial:
                c.set_serial(guid.serial, "guid")
        elif pkt.xid == _PI3_ROM_XID:
            c.set_model("pi3", "xid")

    def _dhcp_expectations(self, c: Client, i: int, ns: int) -> None:
        """Open the questions a first DISCOVER asks: an address, a proxy offer."""
        boot = c.boot

        def have_offer() -> bool:
            return c.boot != boot or bool(c.offers) or "lease" in c.reached

        def have_proxy() -> bool:
            return c.boot != boot or bool(c.proxies) or "firmware" in c.reached

        wait = self.timers.dhcp_reply
        c.open.append(
            _Open(
                "no-dhcp-lease",
                "no-dhcp-lease",
                ns,
                "",
                [i],
                boot,
                resolved=have_offer,
                at_eof=False,
                wait=wait,
            )
        )
        c.open.append(
            _Open(
                "no-proxy-offer",
                "no-proxy-offer",
                ns,
                "",
                [i],
                boot,
                resolved=have_proxy,
                at_eof=False,
                wait=wait,
            )
        )

    def _retry(self, c: Client, pkt: DhcpPacketEvent, ns: int) -> None:
        """A repeated DISCOVER in the same boot: what the Pi did not get (or ignored)."""
        if c.offers and c.proxies and "lease" not in c.reached:
            c.ignored_rounds.append(pkt.i)
            if len(c.ignored_rounds) >= 2:
                proxy = next(iter(c.proxies))
                cause = (
                    "the Pi 3B boot ROM's reply-timing bug"
                    if c.bootloader == "pi3-rom"
                    else "an old bootloader"
                )
                self._raise(
                    c,
                    "offer-ignored",
                    f"{c.mac} kept sending DISCOVERs ({len(c.discover_is)}) although "
                    f"{next(iter(c.offers))} offered an address and {proxy} a boot menu: "
                    f"{cause}",
                    [*c.discover_is, *c.offers.values(), *c.proxies.values()],
                )
        if (ns - c.discover_ns[0]) / _NS >= 1.5:
            self._judge(c, force=True, only=("no-dhcp-lease", "no-proxy-offer"))

    def _second_round_check(self, c: Client, i: int, ns: int) -> None:
        boot = c.boot

        def went_on() -> bool:
            return c.boot != boot or c.second_round != i or any(x.first_i > i for x in c.boot_files)

        c.open.append(
            _Open(
                "restart-after-bootcode",
                "restart-after-bootcode",
                ns,
                f"{c.mac} read bootcode.bin, then sent a DHCP DISCOVER again and asked for no "
                "file after it: bootcode.bin did not get going (it ignored the offers, or the "
                "Pi reset)",
                [i],
                boot,
                resolved=went_on,
                wait=self.timers.judge_after,
                at_eof=False,
            )
        )

    def _dhcp_reply(self, c: Client, pkt: DhcpPacketEvent, ns: int) -> None:
        server = pkt.server_id or pkt.src_ip or "?"
        if pkt.xid != c.boot_xid:
            if pkt.msg_type == "ACK" and pkt.yiaddr and pkt.yiaddr != "0.0.0.0":
                self._set_ip(c, pkt.yiaddr, server)
            return
        if pkt.msg_type == "NAK":
            self._raise(
                c,
                "no-dhcp-lease",
                f"{server} refused {c.mac}'s REQUEST (DHCPNAK)",
                [pkt.i],
                key="no-dhcp-lease:nak",
            )
            return
        raw = bytes.fromhex(pkt.pxe_raw) if pkt.pxe_raw is not None else None
        offers_address = bool(pkt.yiaddr) and pkt.yiaddr != "0.0.0.0"
        if offers_address and pkt.msg_type in ("OFFER", None):
            c.offers.setdefault(server, pkt.i)
            self._reach(c, "offer", ns, pkt.i)
        if offers_address and pkt.msg_type == "ACK":
            self._set_ip(c, pkt.yiaddr or "", server)
            self._reach(c, "lease", ns, pkt.i)
        if raw is None and not (pkt.vendor_class or "").startswith("PXEClient"):
            return
        if raw is None:
            if not offers_address:
                c.bad_proxies.setdefault(server, (pkt.i, "no option 43"))
            return
        pxe = dhcp.parse_pxe(raw)
        strict = c.model in ("pi4", "pi5")
        good = pxe.has_rpi_menu if strict else pxe.has_rpi_string
        if not good:
            shown = ", ".join(repr(m.description) for m in pxe.menu) or "no boot menu"
            c.bad_proxies.setdefault(server, (pkt.i, f"{shown} (option 43: {raw.hex()})"))
            return
        if server not in c.proxies:
            c.proxies[server] = pkt.i
        tftp = pkt.src_ip if c.model not in ("pi4", "pi5") else server
        c.tftp_server = c.tftp_server or tftp
        self._reach(c, "proxy-offer", ns, pkt.i)
        if len(c.proxies) > 1:
            self._raise(
                c,
                "multiple-proxies",
                f"{len(c.proxies)} servers offer {c.mac} a Raspberry Pi boot menu: "
                f"{', '.join(c.proxies)}; it boots from whichever it reads first",
                c.proxies.values(),
            )
        if len(pxe.menu) > 1 and dhcp.RPI_BOOT not in pxe.menu[0].description:
            self._raise(
                c,
                "pxe-menu-order",
                f"{server}'s PXE menu is {', '.join(repr(m.description) for m in pxe.menu)}: "
                '"Raspberry Pi Boot" is not first',
                [pkt.i],
            )
        named = pkt.tftp_server
        if named is not None and named != tftp:
            literal = _is_ip(named)
            self._raise(
                c,
                "tftp-server-mismatch",
                f"{server}'s offer names TFTP server {named!r} in option 66"
                + ("" if literal else " (a name: the firmware has no DNS resolver)")
                + f", but was sent by {pkt.src_ip}",
                [pkt.i],
            )
        if pkt.server_id and pkt.src_ip and pkt.server_id != pkt.src_ip:
            self._raise(
                c,
                "tftp-server-mismatch",
                f"the proxy offer came from {pkt.src_ip} but names server {pkt.server_id} "
                "(option 54): a Pi 3 would read from the first, a Pi 4 from the second",
                [pkt.i],
                key="tftp-server-mismatch:54",
            )

    def _set_ip(self, c: Client, ip: str, server: str) -> None:
        if ip != c.ip:
            if c.ip and self.by_ip.get(c.ip) == c.mac:
                del self.by_ip[c.ip]
            c.ip = ip
            self.by_ip[ip] = c.mac
        c.ip_from = server
        self._snapshot(c, force=True)

    def _uses_address(self, c: Client, ip: str | None, ns: int, i: int) -> None:
        """The Pi sends from an address: the Pi 3 ROM's "lease" (it sends no REQUEST)."""
        if not ip or ip == "0.0.0.0":
            return
        if c.ip != ip:
            self._set_ip(c, ip, next(iter(c.offers), c.ip_from or "?"))
        if "lease" not in c.reached and c.stage in ("offer", "proxy-offer", "discover"):
            self._reach(c, "lease", ns, i)

    # ---- ARP
    def _arp(self, pkt: ArpPacketEvent, ns: int) -> None:
        c = self.clients.get(pkt.sender_mac or "")
        if c is not None:
            pkt.mac = c.mac
            c.last_ns = ns
            if pkt.op == "request" and pkt.sender_ip and pkt.sender_ip != "0.0.0.0":
                self._uses_address(c, pkt.sender_ip, ns, pkt.i)
                target = pkt.target_ip or ""
                if target != pkt.sender_ip and c.stage not in ("os-dhcp", "app-up"):
                    waits = c.arp_wait.setdefault(target, [])
                    c.arp_first.setdefault(target, ns)
                    if len(waits) < 20:
                        waits.append(pkt.i)
            return
        # a reply to a Pi, or someone asking for a Pi's address
        mac = self.by_ip.get(pkt.target_ip or "")
        if mac is None and pkt.target_mac in self.clients:
            mac = pkt.target_mac
        if mac is not None:
            pkt.mac = mac
            peer = self.clients[mac]
            if pkt.op == "reply":
                peer.arp_wait.pop(pkt.sender_ip or "", None)

    # ---- TFTP
    def _tftp_other(self, pkt: TftpPacketEvent, ns: int) -> None:
        """OACK/ERROR (and anything but DATA/ACK and requests): keep the Pi alive."""
        if pkt.mac is not None:
            c = self.clients.get(pkt.mac)
            if c is not None:
                c.last_ns = ns

    def transfer_started(self, xfer: TransferState, pkt: TftpPacketEvent) -> None:
        """The decoder opened a transfer with this read request."""
        ns = pkt.ts_ns
        c = None
        if xfer.client_mac is not None:
            c = self.clients.get(xfer.client_mac)
        if c is None:
            mac = self.by_ip.get(xfer.client_ip)
            c = self.clients.get(mac) if mac else None
        prefix, base = bootfiles.split_prefix(xfer.file)
        if c is None:
            mac = xfer.client_mac
            looks_pi = (
                bool(prefix)
                or base in ("bootcode.bin", "config.txt")
                or bootfiles.kind_of(base) == "firmware"
            )
            if not self._wants(mac) or not (looks_pi or mac == self.watch_mac):
                return
            assert mac is not None
            c = self._client(mac, ns)
        xfer.mac = pkt.mac = c.mac
        xfer.owner = c
        c.last_ns = ns
        c.arp_wait.pop(xfer.server_ip, None)  # it was answered (the capture may miss replies)
        if c.stage in ("os-dhcp", "app-up"):
            c.files.append(xfer)
            return
        # a restart without DHCP: the boot's first file again after others
        if (
            c.boot_files
            and xfer.file == c.boot_files[0].file
            and len(c.boot_files) >= 3
            and c.boot_files[0].status != "complete"
        ):
            self._new_boot(c, ns, pkt.i)
            c.power_on_ns = ns
        if c.second_round is not None:
            c.second_round = None
        self._uses_address(c, xfer.client_ip, ns, pkt.i)
        first = not c.boot_files
        c.boot_files.append(xfer)
        c.files.append(xfer)
        c.current = xfer
        if base.lower() == "config.txt":
            xfer.keep = 65536
            xfer.data = bytearray()
        serial = bootfiles.serial_from_prefix(prefix)
        if serial:
            c.set_serial(serial, "prefix")
        hint = bootfiles.model_hint(base)
        if hint:
            c.set_model(hint, "devicetree" if base.endswith(".dtb") else "files")
        if first:
            # the first file tells the bootloader (netboot.md §9 "Model inference")
            if base == "bootcode.bin":
                c.set_model("pi3", "files")
                c.bootloader = c.bootloader or "pi3-rom"
            elif base == "config.txt" and c.discover_is:
                # a boot seen from its DISCOVER whose first file is config.txt (no start4.elf
                # probe): the Pi 5's own loader (netboot.md §4.4, UNCONFIRMED: a hint only)
                c.set_model("pi5", "order")
            elif bootfiles.prefix_probe(xfer.file) and base == "start.elf":
                c.set_model("pi3", "files")  # bootcode.bin on an SD card (Pi 1/2/Zero/3)
                c.bootloader = "bootcode.bin"
            self._reach(c, "firmware", ns, pkt.i)
        if pkt.dst_mac in _BAD_SERVER_MACS:
            self._raise(
                c,
                "tftp-bad-server-mac",
                f"{c.mac} sends its request for {xfer.file} to MAC {pkt.dst_mac}: its ARP "
                f"for {xfer.server_ip} failed",
                [pkt.i],
            )
        if c.tftp_server and xfer.server_ip != c.tftp_server:
            self._raise(
                c,
                "tftp-server-mismatch",
                f"{c.mac} reads {xfer.file} from {xfer.server_ip}, but the proxy offer named "
                f"{c.tftp_server} (option 66 / siaddr / TFTP_IP point elsewhere)",
                [pkt.i, *c.proxies.values()],
                key="tftp-server-mismatch:rrq",
            )
        self._snapshot(c, force=True)

    def request_repeated(self, xfer: TransferState, pkt: TftpPacketEvent) -> None:
        """The Pi asked again for a file the server had answered: the answers do not reach it
        when it keeps doing so without ever acknowledging (netboot.md §8 row 13)."""
        c = self.clients.get(xfer.mac or "")
        if c is None or xfer.last_ack is not None or xfer.requests < 3:
            return
        self._raise(
            c,
            "tftp-reply-lost",
            f"{xfer.server_ip} answered {c.mac}'s request for {xfer.file} from port "
            f"{xfer.server_port}, but the Pi asked {xfer.requests} times and never took the "
            "answer",
            xfer.request_is,
            file=xfer.file,
        )

    def block(self, xfer: TransferState, pkt: TftpPacketEvent) -> None:
        """A DATA or ACK of a claimed transfer: the Pi is alive; progress now and then.

        (``steps.wire.monitor.watch`` calls it only when a snapshot is due or at block 2; it
        updates ``last_ns`` itself for the others.)"""
        c = self._alive(xfer, pkt.ts_ns)
        if c is None:
            return
        ns = pkt.ts_ns
        if pkt.opcode == "DATA" and xfer.blocks == 2 and xfer.status is None:
            self._file_stage(c, xfer)
        if ns - c.snap_ns >= self.timers.snapshot * _NS:
            self._snapshot(c)

    def _alive(self, xfer: TransferState, ns: int) -> Client | None:
        """The Pi a transfer belongs to, seen alive at ``ns`` (None: not a Pi's transfer)."""
        c: Client | None = xfer.owner
        if c is not None:
            if ns > self.now_ns:
                self.now_ns = ns
            c.last_ns = ns
        return c

    def _file_stage(self, c: Client, xfer: TransferState) -> None:
        """A file proved to be really read (not probed): its stage, at its request's time."""
        if xfer not in c.boot_files:
            return
        _prefix, base = bootfiles.split_prefix(xfer.file)
        kind = bootfiles.kind_of(base)
        stage = {"kernel": "kernel", "initramfs": "initramfs"}.get(kind)
        if base.lower() == "config.txt" and xfer.status == "complete":
            stage = "config"
        if base.lower().startswith("recovery"):
            stage = None
        if stage is not None:
            self._reach(c, stage, xfer.first_ns, xfer.first_i)

    def transfer_ended(self, xfer: TransferState) -> None:
        """The decoder saw a transfer end (complete, probe, error)."""
        c = self._alive(xfer, xfer.last_ns)
        if c is None:
            return
        if c.current is xfer:
            c.current = None
        if c.stage in ("os-dhcp", "app-up") or xfer not in c.boot_files:
            self._snapshot(c, force=True)
            return
        prefix, base = bootfiles.split_prefix(xfer.file)
        kind = bootfiles.kind_of(base)
        status = xfer.status
        if status == "complete":
            self._file_stage(c, xfer)
            if base.lower() == "config.txt" and xfer.data is not None:
                self._read_config(c, bytes(xfer.data), xfer)
            if base == "bootcode.bin":
                c.bootloader = "bootcode.bin"
            elif base.startswith("start") and base.endswith(".elf"):
                c.bootloader = base
        elif status == "probe":
            if len(c.probe_is) < 20:
                c.probe_is.append(xfer.end_i or xfer.first_i)
            self._raise(
                c,
                "early-terminate",
                f"{c.mac} probes files with ERROR 0 {xfer.error_msg!r} after the first "
                f"answer ({xfer.file} first): the firmware's normal existence check",
                c.probe_is,
                file=xfer.file,
            )
        elif status in ("not-found", "denied"):
            self._missing(c, xfer, prefix, base, kind)
        elif status == "timeout":
            self._lost(c, xfer, base, "client gave up")
        self._snapshot(c, force=True)

    # ---- missing files
    def _served_after(self, c: Client, base: str, after_ns: int) -> bool:
        """The Pi got ``base`` (any prefix) after ``after_ns``: answered and not refused."""
        low = base.lower()
        for x in c.files:
            if (
                x.first_ns >= after_ns
                and bootfiles.split_prefix(x.file)[1].lower() == low
                and (x.status in ("complete", "probe") or (x.status is None and x.answered))
            ):
                return True
        return False

    def _missing(self, c: Client, xfer: TransferState, prefix: str, base: str, kind: str) -> None:
        evidence = [*xfer.request_is, xfer.end_i or xfer.first_i]
        if bootfiles.expected_missing(base) or bootfiles.prefix_probe(xfer.file):
            return
        if xfer.status == "denied":
            self._raise(
                c,
                "tftp-access-denied",
                f"the server refused {xfer.file} (ERROR 2 {xfer.error_msg!r})",
                evidence,
                key=f"tftp-access-denied:{xfer.file}",
                file=xfer.file,
            )
            return
        expect = c.expect
        code = "tftp-file-not-found"
        low = base.lower()
        hint = _double_prefix_hint(xfer.error_msg or "")
        if kind == "overlay" and expect is not None and low in (o.lower() for o in expect.overlays):
            self._raise(
                c,
                code,
                f"{xfer.file} (a dtoverlay= of config.txt) is missing on the server (ERROR 1 "
                f"{xfer.error_msg!r})",
                evidence,
                key=f"{code}:{xfer.file}",
                file=xfer.file,
            )
            return
        if kind in ("overlay", "other"):
            return
        if kind in ("kernel", "initramfs") and expect is not None:
            named = (low == (expect.kernel or "").lower()) or low in (
                f.lower() for f in expect.initramfs
            )
            if not named:
                return  # a probe: config.txt names other files
            if kind == "initramfs":
                code = "initramfs-missing"
            self._raise(
                c,
                code,
                f"{xfer.file} is named in config.txt but the server has no such file "
                f"(ERROR 1 {xfer.error_msg!r}){hint}",
                evidence,
                key=f"{code}:{xfer.file}",
                file=xfer.file,
            )
            return
        if kind == "initramfs":
            code = "initramfs-missing"
        boot = c.boot
        since = xfer.last_ns

        def resolved() -> bool:
            if c.boot != boot:
                return False
            if self._served_after(c, base, xfer.first_ns):
                return True
            return _moved_past(c, kind, base, since)

        message = (
            f"{xfer.file} not found on the server (ERROR 1 {xfer.error_msg!r}) and the boot "
            f"did not get past it{hint}"
        )
        c.open.append(
            _Open(code, f"{code}:{xfer.file}", since, message, evidence, boot, xfer.file, resolved)
        )

    def _lost(self, c: Client, xfer: TransferState, base: str, why: str) -> None:
        """A transfer that stopped: open a question the retry may answer."""
        boot = c.boot
        code = "tftp-timeout"
        evidence = [*xfer.request_is, xfer.last_i]
        secs = xfer.duration
        if not xfer.answered:
            code = "tftp-no-response"
            message = (
                f"{xfer.requests} request(s) for {xfer.file} to {xfer.server_ip}:69 got no "
                f"answer in {secs:.1f} s"
            )
        elif xfer.requests >= 3 and xfer.last_ack is None and xfer.blocks <= 1:
            return  # the answers were lost on the way: tftp-reply-lost says so
        elif (
            xfer.accepted is not None
            and xfer.blksize > 512
            and xfer.blocks <= 1
            and (xfer.last_ack or 0) == 0
            and (xfer.repeated_acks or xfer.duplicates)
        ):
            code = "tftp-blocks-lost"
            message = (
                f"{xfer.file}: blocks of {xfer.blksize} bytes were sent (OACK blksize) but "
                f"{c.mac} never acknowledged block 1"
            )
        elif xfer.blocks and (xfer.next_block - 1) & 0xFFFF == 0xFFFF:
            code = "tftp-block-rollover"
            message = (
                f"{xfer.file} stopped at block 65535 ({xfer.bytes} bytes): the block number "
                "would wrap"
            )
        elif xfer.error_from_client:
            message = (
                f"{c.mac} gave up {xfer.file} with ERROR {xfer.error_code} "
                f"{xfer.error_msg!r} after {xfer.bytes} bytes in {secs:.1f} s (the firmware's "
                "per-file timeout, TFTP_FILE_TIMEOUT, is 30 s)"
            )
        else:
            message = (
                f"{xfer.file} stopped after {xfer.bytes} bytes"
                + (f" of {xfer.tsize}" if xfer.tsize else "")
                + f" ({why}; no packet for {self.timers.tftp_stall:g} s)"
            )

        def resolved() -> bool:
            return c.boot == boot and any(
                x.first_ns > xfer.first_ns
                and x.status == "complete"
                and bootfiles.split_prefix(x.file)[1] == base
                for x in c.files
            )

        key = f"{code}:{xfer.server_ip}" if code == "tftp-no-response" else f"{code}:{xfer.file}"
        c.open.append(
            _Open(
                code,
                key,
                xfer.last_ns,
                message,
                evidence,
                boot,
                xfer.file,
                resolved,
            )
        )

    def _read_config(self, c: Client, data: bytes, xfer: TransferState) -> None:
        """Learn from the served config.txt which kernel and initramfs this Pi will read."""
        board = c.model if c.model in ("pi3", "pi4", "pi5") else None
        if board is None:
            return
        try:
            cfg = ConfigTxt.from_bytes(data, source=xfer.file)
            settings = cfg.settings(board, c.serial)
        except (FirecoreError, ValueError, UnicodeDecodeError):
            return
        kernel: str | None = None
        initramfs: tuple[str, ...] = ()
        cmdline = "cmdline.txt"
        for key, value in settings:
            if key == "kernel":
                kernel = value.split()[0] if value.split() else None
            elif key in ("initramfs", "ramfsfile"):
                first = value.split()[0] if value.split() else ""
                initramfs = tuple(f for f in first.split(",") if f)
            elif key == "cmdline" and value.split():
                cmdline = value.split()[0]
        note = f"config.txt names no kernel for [{board}]" if kernel is None else ""
        overlays = tuple(f"overlays/{name}.dtbo" for name in overlay_names(settings))
        c.expect = _Expect(kernel, initramfs, cmdline, overlays, note)

    # ------------------------------------------------------------------ mDNS / health
    def announcement(
        self, ann: MdnsAnnouncement, i: int, ns: int, src_mac: str | None, src_ip: str | None
    ) -> None:
        """A firecore app announcement on the wire."""
        if self.t0 is None:
            self.t0 = ns
        if ns > self.now_ns:
            self.now_ns = ns
        serial = ann.properties.get("serial") or None
        c = self.clients.get(src_mac or "") or self.clients.get(self.by_ip.get(src_ip or "", ""))
        if c is None and serial:
            c = next((x for x in self.clients.values() if x.serial == serial), None)
        if c is None:
            if not self._wants(src_mac):
                return
            assert src_mac is not None
            c = self._client(src_mac, ns)
        c.last_ns = ns
        if serial:
            c.set_serial(serial, "mdns")
        text = _MODEL_TEXT.search(ann.properties.get("model", ""))
        if text:
            c.set_model(f"pi{text.group(1)}", "mdns")
        if src_ip and src_ip != c.ip:
            self._set_ip(c, src_ip, c.ip_from or "?")
        if ann.goodbye:
            return
        first = c.announced is None
        if first:
            c.announced = (ns, i)
        if self.health is not None:
            if first:
                self.health(c.mac, ann, src_ip)
            return
        self._reach(c, "app-up", ns, i)

    def health_result(self, mac: str, ok: bool, detail: str) -> None:
        """The live ``/health`` check of an announced Pi came back."""
        c = self.clients.get(mac)
        if c is None:
            return
        i = c.announced[1] if c.announced is not None else None
        if ok:
            self._reach(c, "app-up", self.now_ns, i)
        else:
            self._raise(
                c,
                "app-not-responding",
                f"{c.mac} announced its app over mDNS but /health did not answer: {detail}",
                [i] if i is not None else [],
            )

    # ------------------------------------------------------------------ time
    def tick(self, now_ns: int) -> None:
        """Time passed (live) or the capture moved on: run the timers."""
        if now_ns > self.now_ns:
            self.now_ns = now_ns
        for c in list(self.clients.values()):
            self._timers(c, final=False)
            self._judge(c, force=False)
        self._no_discover(final=False)

    def finish(self, end_ns: int | None = None) -> None:
        """The capture ended: judge what is still open."""
        if end_ns is not None and end_ns > self.now_ns:
            self.now_ns = end_ns
        for c in list(self.clients.values()):
            self._timers(c, final=True)
            self._judge(c, force=True, reason="end")
        self._no_discover(final=True)

    def _no_discover(self, *, final: bool) -> None:
        if self.first_discover_i is not None or any(
            c.discover_is or c.files for c in self.clients.values()
        ):
            return
        who = f"from {self.watch_mac}" if self.watch_mac else "from any Raspberry Pi"
        if final:
            span = self._t(self.now_ns) if self.t0 is not None else 0.0
            self._raise(
                None,
                "no-discover",
                f"no DHCP DISCOVER {who} in the whole capture ({span:.1f} s)",
                [],
            )
        elif (
            self.live
            and self.t0 is not None
            and ((self.now_ns - self.t0) / _NS >= self.timers.no_discover)
        ):
            self._raise(
                None,
                "no-discover",
                f"no DHCP DISCOVER {who} in {self.timers.no_discover:g} s of listening",
                [],
            )

    def _timers(self, c: Client, *, final: bool) -> None:
        """Turn silence into open questions or findings."""
        tm = self.timers
        now = self.now_ns
        quiet = (now - c.last_ns) / _NS
        # ---- open transfers of this boot
        for x in c.boot_files:
            if x.status is not None:
                continue
            age = (now - x.last_ns) / _NS
            if not x.answered:
                waited = (now - x.first_ns) / _NS
                if waited >= tm.tftp_reply or x.requests >= 3 or (final and waited >= 1.0):
                    self._stopped(c, x, "no answer")
            elif age >= tm.tftp_stall or (final and age >= tm.eof_quiet):
                self._stopped(c, x, "stalled")
        # ---- ARP
        for target, idx in list(c.arp_wait.items()):
            age = (now - c.arp_first[target]) / _NS
            if len(idx) >= 3 or age >= tm.arp_reply or (final and age >= 1.0):
                del c.arp_wait[target]
                if c.tftp_server and target != c.tftp_server and "firmware" not in c.reached:
                    self._raise(
                        c,
                        "tftp-server-mismatch",
                        f"{c.mac} asks who has {target}, not the boot server {c.tftp_server} "
                        "the proxy offer named, and nobody answers",
                        [*idx, *c.proxies.values()],
                        key=f"tftp-server-mismatch:arp:{target}",
                    )
                else:
                    self._raise(
                        c,
                        "arp-unanswered",
                        f"{c.mac} asked {len(idx)} time(s) who has {target} (tell {c.ip}) and "
                        "got no answer",
                        idx,
                        key=f"arp-unanswered:{target}",
                    )
        # ---- a stalled boot
        still = quiet >= tm.stall or (final and quiet >= tm.eof_quiet)
        pending = any(
            o.boot == c.boot and not (o.resolved is not None and o.resolved()) for o in c.open
        )
        if not still or c.boot_codes or pending:
            self._app_timer(c, final=final)
            return
        if c.stage in ("firmware", "config", "kernel", "initramfs") and c.boot_files:
            self._stalled_boot(c, quiet)
        self._app_timer(c, final=final)

    def _stopped(self, c: Client, x: TransferState, why: str) -> None:
        """An open transfer that timed out on the wire."""
        x.status = "timeout"
        if c.current is x:
            c.current = None
        self._lost(c, x, bootfiles.split_prefix(x.file)[1], why)
        self._snapshot(c, force=True)

    def _stalled_boot(self, c: Client, quiet: float) -> None:
        kinds = [
            bootfiles.kind_of(bootfiles.split_prefix(x.file)[1])
            for x in c.boot_files
            if x.status in ("complete", None)
        ]
        evidence = [c.boot_files[-1].first_i]
        last = c.boot_files[-1].file
        expect = c.expect
        firmware_done = any(
            x.status == "complete" and bootfiles.split_prefix(x.file)[1].startswith("fixup")
            for x in c.boot_files
        ) or (c.model == "pi5" and "config" in c.reached)
        if "kernel" not in kinds and ("config" in c.reached or firmware_done):
            want = f" ({expect.note})" if expect is not None and expect.note else ""
            if expect is not None and expect.kernel and not expect.note:
                want = f" (config.txt names {expect.kernel})"
            self._raise(
                c,
                "kernel-not-requested",
                f"{c.mac} read its firmware and config.txt but never asked for a kernel"
                f"{want}; its last request was {last}",
                evidence,
                key=f"kernel-not-requested:{c.boot}",
            )
            return
        if expect is not None and "kernel" in kinds:
            got = {bootfiles.split_prefix(x.file)[1].lower() for x in c.boot_files}
            missing = [f for f in expect.initramfs if f.lower() not in got]
            if missing or (not expect.initramfs and "initramfs" not in kinds):
                what = (
                    ", ".join(missing) + " named in config.txt never requested"
                    if missing
                    else f"config.txt names no initramfs for [{c.model}]"
                )
                self._raise(
                    c,
                    "initramfs-missing",
                    f"{c.mac} read its kernel but {what}",
                    evidence,
                    key=f"initramfs-missing:{c.boot}",
                )
                return
        if c.stage in ("kernel", "initramfs"):
            if quiet < self.timers.os_wait:
                return
            message = (
                f"{c.mac} read its kernel and initramfs but Linux never asked for an address "
                f"({quiet:.0f} s): the kernel did not start or panicked (wrong cmdline.txt or "
                "initramfs, a missing device tree)"
            )
        else:
            message = (
                f"{c.mac} stopped at the {c.stage} stage after {last}: nothing from it for "
                f"{quiet:.0f} s"
            )
            if c.model == "pi3" and all(
                bootfiles.split_prefix(x.file)[1] in ("bootcode.bin", "bootsig.bin", "start.elf")
                for x in c.boot_files
            ):
                message += (
                    " (after bootsig.bin and <serial>/start.elf: start.elf/fixup.dat missing "
                    "or from another firmware release than bootcode.bin)"
                )
        self._raise(c, "boot-stalled", message, evidence, key=f"boot-stalled:{c.boot}")

    def _app_timer(self, c: Client, *, final: bool) -> None:
        if c.stage != "os-dhcp" or c.announced is not None:
            return
        since = (self.now_ns - c.reached["os-dhcp"][0]) / _NS
        if since >= self.timers.app_wait:
            self._raise(
                c,
                "app-not-responding",
                f"{c.mac} booted Linux (DHCP at {self._t(c.reached['os-dhcp'][0]):.1f} s) but "
                f"its app did not announce itself over mDNS in {since:.0f} s",
                [i for _ns, i in (c.reached["os-dhcp"],) if i is not None],
            )

    def _judge(
        self,
        c: Client,
        *,
        force: bool,
        reason: str = "",
        only: tuple[str, ...] | None = None,
    ) -> None:
        """Resolve or raise the open questions of ``c``."""
        keep: list[_Open] = []
        for item in c.open:
            if only is not None and item.code not in only:
                keep.append(item)
                continue
            if item.resolved is not None and item.resolved():
                continue
            age = (self.now_ns - item.since_ns) / _NS
            limit = item.wait if item.wait is not None else self.timers.judge_after
            due = age >= limit
            if force:
                if reason == "end":
                    due = due or item.at_eof or age >= self.timers.eof_quiet
                else:
                    due = True
            if not due:
                keep.append(item)
                continue
            code, message, evidence = item.code, item.message, item.evidence
            if not message:
                code, message, evidence = self._dhcp_finding(c, item)
            self._raise(c, code, message, evidence, key=item.key, file=item.file)
        c.open = keep

    def _dhcp_finding(self, c: Client, item: _Open) -> tuple[str, str, list[int]]:
        """The code, message and evidence of an unanswered DISCOVER (decided late)."""
        n = len(c.discover_is)
        evidence = list(c.discover_is)
        if item.code == "no-proxy-offer":
            if c.bad_proxies:
                server, (i, what) = next(iter(c.bad_proxies.items()))
                return (
                    "bad-option-43",
                    f"{server} answered {c.mac}'s DISCOVER with PXE data a Pi cannot boot "
                    f'from (no "Raspberry Pi Boot" menu entry): {what}',
                    [*evidence, i],
                )
            return (
                "no-proxy-offer",
                f"{c.mac} sent {n} DISCOVER(s) and no proxy-DHCP offer with "
                '"Raspberry Pi Boot" came back',
                evidence,
            )
        return (
            "no-dhcp-lease",
            f"{c.mac} sent {n} DISCOVER(s) and no DHCP server offered an address"
            + (" (only the proxy answered: it gives no addresses)" if c.proxies else ""),
            evidence,
        )


def _moved_past(c: Client, kind: str, base: str, since_ns: int) -> bool:
    """The boot got beyond the stage a missing file of ``kind`` belongs to."""
    later = [x for x in c.boot_files if x.first_ns >= since_ns and x.status != "not-found"]
    later_kinds = {bootfiles.kind_of(bootfiles.split_prefix(x.file)[1]) for x in later}
    leaf = base.lower()
    if kind == "firmware":
        if leaf == "bootcode.bin":
            return False
        family = (
            "start" if leaf.startswith("start") else "fixup" if leaf.startswith("fixup") else ""
        )
        if family and any(
            bootfiles.split_prefix(x.file)[1].lower().startswith(family)
            and (x.status in ("complete", "probe") or (x.status is None and x.answered))
            for x in c.boot_files
        ):
            return True
        return bool(later_kinds & {"devicetree", "cmdline", "kernel", "initramfs", "overlay"})
    if kind == "config":
        return "kernel" in c.reached or "initramfs" in c.reached
    if kind == "cmdline":
        return "os-dhcp" in c.reached
    if kind == "devicetree":
        return "os-dhcp" in c.reached or any(
            bootfiles.kind_of(bootfiles.split_prefix(x.file)[1]) == "devicetree"
            and x.status == "complete"
            for x in later
        )
    if kind == "kernel":
        return (
            any(
                bootfiles.kind_of(bootfiles.split_prefix(x.file)[1]) == "kernel"
                and (x.status == "complete" or (x.status is None and x.answered))
                for x in later
            )
            or "os-dhcp" in c.reached
        )
    return "os-dhcp" in c.reached


def _double_prefix_hint(message: str) -> str:
    """netboot.md §8 row 26: tftp-unique-root=mac plus TFTP_PREFIX=2 doubles the MAC dir."""
    dirs = re.findall(r"/([0-9a-f]{2}(?:-[0-9a-f]{2}){5})/", message.lower())
    if len(dirs) >= 2 and dirs[0] == dirs[1]:
        return (
            "; the path has the MAC directory twice: use tftp-unique-root=mac or TFTP_PREFIX=2, "
            "not both"
        )
    return ""


def _is_ip(text: str) -> bool:
    parts = text.split(".")
    return len(parts) == 4 and all(p.isdigit() and int(p) < 256 for p in parts)
