"""Conflicts that would stop the Pis from booting, found before anything is installed.

Each check returns ``Finding``s with a severity, the evidence (PID and name, the firewall rule,
the offer's server) and a fix:

- the interface: missing, down, no address, wireless/bond/bridge (``steps.host.netif``);
- ports: other processes owning udp/67 or udp/69 (our own dnsmasq is not a conflict; DNS is
  always off in our config, ``port=0``, so udp/53 is not checked);
- the segment: one PXE-flavoured DISCOVER from a locally administered MAC (``steps.wire.dhcp``); an
  offer of an address = a DHCP server (needed: proxy DHCP only adds the boot menu), an offer with
  option 43 from a host that is not us = a second proxy. Needs root and the interface up. It
  listens up to ``network.probe_seconds`` but stops ``PROXY_SETTLE`` after the first offer of an
  address;
- the firewall: nftables / iptables rules that drop udp/67 or udp/69 (``steps.host.firewall``);
- dnsmasq: missing, built without DHCP/TFTP, or older than the options the config uses;
- systemd mode: the unit exists and reads the drop-in's directory.

The checks only read (and send one probe); ``run_preflight`` never changes anything. The
firewall's parsers are imported by the firewall check, which a no-change rerun leaves out.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from steps import proc
from steps.answers import Answers, resolve_path
from steps.errors import CommandError, FirecoreError
from steps.host.dnsmasq import dnsmasq_program, required_version
from steps.host.netif import Interface, Snapshot, assess, missing_interface
from steps.host.udpsockets import owners, udp_sockets

if TYPE_CHECKING:
    from steps.host.firewall import Blocked, Chain

Severity = Literal["error", "warning", "info"]
SERVICE_PORTS = {67: "DHCP", 69: "TFTP"}
#: Seconds the probe keeps listening after a DHCP server offered an address. A proxy hands out no
#: address, so it answers without the ping a DHCP server may send first (dnsmasq waits ~3 s,
#: netboot.md §7.3): by the time the server's offer is in, a proxy's has had as long, plus this.
#: One second is also about how long a Pi 3 ROM listens per DISCOVER (netboot.md §3.4): a proxy
#: slower than that loses the race for a Pi 3 anyway.
PROXY_SETTLE = 1.0


@dataclass(frozen=True)
class Finding:
    """One preflight result: what, how bad, the evidence, and how to fix it."""

    code: str
    severity: Severity
    message: str
    fix: str = ""
    evidence: tuple[str, ...] = field(default_factory=tuple)

    def to_data(self) -> dict[str, Any]:
        """JSON-able form (``Result.data["findings"]``, the TUI's findings table)."""
        return {
            "code": self.code,
            "severity": self.severity,
            "message": self.message,
            "fix": self.fix,
            "evidence": list(self.evidence),
        }


# ------------------------------------------------------------------ interface


def check_interface(answers: Answers, snapshot: Snapshot) -> list[Finding]:
    """The configured interface exists, is up, has an address; kind warnings with reasons."""
    iface = snapshot.get(answers.network.interface)
    if iface is None:
        message, fix = missing_interface(answers.network.interface, snapshot)
        return [Finding("interface-missing", "error", message, fix)]
    out: list[Finding] = []
    for note in assess(iface, snapshot).notes:
        out.append(Finding(note.code, note.level, note.message, note.reason))
    return out


# ------------------------------------------------------------------ ports


@dataclass(frozen=True)
class PortUse:
    """A socket bound to a UDP port, and who holds it."""

    port: int
    address: str
    pid: int | None
    name: str


def port_users(ports: Iterable[int] = SERVICE_PORTS) -> list[PortUse]:
    """Sockets on the given UDP ports in this network namespace (pid None without root)."""
    sockets = udp_sockets(ports)
    holders = owners(s.inode for s in sockets)
    out: list[PortUse] = []
    for sock in sockets:
        pids: list[int | None] = [*holders.get(sock.inode, [])] or [None]
        for pid in pids:
            out.append(PortUse(sock.port, sock.address, pid, _process_name(pid)))
    return sorted(out, key=lambda u: (u.port, u.pid or 0, u.address))


def _process_name(pid: int | None) -> str:
    """psutil's name for ``pid`` (the full name where ``comm`` is cut at 15 bytes), "?" if gone."""
    if pid is None:
        return "?"
    import psutil  # only for a port somebody holds: a no-change rerun never gets here

    try:
        return str(psutil.Process(pid).name())
    except psutil.Error:
        return "?"


def port_findings(users: Iterable[PortUse], own_pids: set[int]) -> list[Finding]:
    """A finding per process (other than ours) holding udp/67 or udp/69."""
    seen: dict[tuple[int, int | None], list[PortUse]] = {}
    for use in users:
        if use.pid is not None and use.pid in own_pids:
            continue
        seen.setdefault((use.port, use.pid), []).append(use)
    out: list[Finding] = []
    for (port, pid), uses in sorted(seen.items(), key=lambda kv: (kv[0][0], kv[0][1] or 0)):
        name = uses[0].name
        who = f"{name} (PID {pid})" if pid is not None else "a process (run as root to see it)"
        addrs = ", ".join(sorted({u.address or "*" for u in uses}))
        evidence = tuple(f"udp {u.address or '*'}:{port} held by {who}" for u in uses)
        service = SERVICE_PORTS.get(port, "")
        if name == "dnsmasq":
            out.append(
                Finding(
                    "port-in-use",
                    "warning",
                    f"another dnsmasq{f' (PID {pid})' if pid is not None else ''} holds "
                    f"udp/{port} ({service}) on {addrs}",
                    "two dnsmasq instances coexist only if each binds its own interface "
                    "(bind-interfaces/bind-dynamic); otherwise stop that one "
                    f"(`kill {pid}` or its service)",
                    evidence,
                )
            )
        else:
            out.append(
                Finding(
                    "port-in-use",
                    "error",
                    f"{who} holds udp/{port} ({service}) on {addrs}",
                    f"stop {name} or reconfigure it to leave udp/{port} free "
                    f"(`ss -uanp | grep ':{port} '` shows it)",
                    evidence,
                )
            )
    return out


# ------------------------------------------------------------------ the segment


def segment_findings(
    offers: Iterable[Any], own_addresses: set[str], probe_mac: str
) -> list[Finding]:
    """Judge the offers one probe DISCOVER drew (``steps.wire.dhcp.Offer`` objects)."""
    out: list[Finding] = []
    servers: list[str] = []
    proxies: list[tuple[str, bool]] = []
    for offer in offers:
        if offer.server in own_addresses or offer.src_ip in own_addresses:
            continue
        if offer.offers_address:
            servers.append(f"{offer.server} offered {offer.packet.yiaddr} (from {offer.src_mac})")
        if offer.packet.has(43):
            proxies.append((f"{offer.server} (from {offer.src_mac})", offer.boots_pi))
    if servers:
        out.append(
            Finding(
                "dhcp-server",
                "info",
                "a DHCP server answers on this segment (the Pis get their address from it)",
                evidence=tuple(servers),
            )
        )
    else:
        out.append(
            Finding(
                "no-dhcp-server",
                "warning",
                "no DHCP server answered the probe; proxy DHCP only adds the boot menu, the "
                "Pis still need an address from a real DHCP server",
                "make sure the LAN's DHCP server (usually the router) serves this segment; "
                "if it pings before offering, raise network.probe_seconds",
                (f"probe from {probe_mac}",),
            )
        )
    for server, boots_pi in proxies:
        what = "offers the Raspberry Pi boot menu" if boots_pi else "sends PXE options"
        out.append(
            Finding(
                "second-proxy",
                "error",
                f"another PXE/proxy-DHCP server {server} {what}: Pis may boot from it instead",
                "keep one Pi boot server per segment: stop the other proxy (another dnsmasq, "
                "a router's PXE option, piserver) or move it to another network",
                (f"option 43 in an offer from {server} to probe {probe_mac}",),
            )
        )
    return out


def check_segment(
    answers: Answers, iface: Interface | None, *, cancel: threading.Event | None = None
) -> list[Finding]:
    """Probe the segment for DHCP servers and other proxies (root and an up interface only)."""
    seconds = answers.network.probe_seconds
    if seconds <= 0:
        return [Finding("probe-skipped", "info", "segment probe off (network.probe_seconds = 0)")]
    if os.geteuid() != 0:
        return [
            Finding(
                "probe-skipped",
                "info",
                "skipped: needs root (the DHCP probe uses a raw socket)",
                "run as root to look for other DHCP and proxy-DHCP servers",
            )
        ]
    if iface is None or not iface.up:
        return [Finding("probe-skipped", "info", "skipped: the interface is missing or down")]
    from steps.wire.dhcp import probe

    try:
        result = probe(
            iface.name, None, model="pi4", timeout=seconds, cancel=cancel, settle=PROXY_SETTLE
        )
    except FirecoreError:
        raise
    except OSError as exc:
        return [Finding("probe-skipped", "warning", f"the DHCP probe failed: {exc}")]
    own = {a.address for a in iface.addresses}
    return segment_findings(result.offers, own, result.mac)


# ------------------------------------------------------------------ firewall


def firewall_chains(cancel: threading.Event | None = None) -> tuple[list[Chain], list[str]]:
    """Read nftables and iptables (legacy too) rulesets; returns chains and what was read."""
    from steps.host.firewall import parse_iptables_save, parse_nft

    chains: list[Chain] = []
    sources: list[str] = []
    if nft := proc.locate("nft"):
        try:
            out = proc.run(nft, "-j", "list", "ruleset", cancel=cancel).text
            chains += parse_nft(out or '{"nftables": []}')
            sources.append("nft -j list ruleset")
        except (CommandError, ValueError):
            pass
    # iptables-nft's tables were skipped in the nft JSON: iptables-save prints them with their
    # xt matches; iptables-legacy-save adds rules of the legacy backend, if any are loaded.
    legacy_seen = False
    for prog in ("iptables-save", "iptables-legacy-save"):
        program = None if legacy_seen else proc.locate(prog)
        if program is None:
            continue
        try:
            out = proc.run(program, cancel=cancel).text
        except CommandError:
            continue
        legacy_seen = "(legacy)" in out.partition("\n")[0]
        chains += parse_iptables_save(out, label=prog.removesuffix("-save"))
        sources.append(prog)
    return chains, sources


def firewall_findings(found: Iterable[Blocked], iface: str) -> list[Finding]:
    """One finding per port: definite drops are errors, possible ones warnings."""
    out: list[Finding] = []
    by_port: dict[tuple[int, bool], list[str]] = {}
    for b in found:
        by_port.setdefault((b.port, b.definite), []).append(b.rule)
    for (port, definite), rules in sorted(by_port.items(), key=lambda kv: (not kv[0][1], kv[0])):
        service = SERVICE_PORTS.get(port, "")
        if definite:
            out.append(
                Finding(
                    "firewall-drop",
                    "error",
                    f"the firewall drops {service} requests (udp/{port}) arriving on {iface}",
                    f"allow them, e.g. `nft insert rule inet filter input iifname {iface} "
                    f"udp dport {{ 67, 69 }} accept` (in your firewall's own config)",
                    tuple(rules),
                )
            )
        else:
            out.append(
                Finding(
                    "firewall-maybe-drop",
                    "warning",
                    f"a firewall rule may drop {service} requests (udp/{port}) on {iface}, "
                    "depending on conditions preflight cannot know",
                    "check the rule below against the Pis' traffic (broadcast from 0.0.0.0)",
                    tuple(rules),
                )
            )
    return out


def check_firewall(iface: str, cancel: threading.Event | None = None) -> list[Finding]:
    """Read the rulesets and report drops of udp/67 and udp/69 on ``iface``."""
    from steps.host.firewall import blocked

    chains, sources = firewall_chains(cancel)
    if not sources:
        return [
            Finding(
                "firewall-unknown",
                "info",
                "no nft or iptables found (or not readable): firewall not checked",
                "run as root with nftables/iptables installed to check it",
            )
        ]
    found = firewall_findings(blocked(chains, SERVICE_PORTS, iface), iface)
    if not found:
        found.append(
            Finding(
                "firewall-ok",
                "info",
                f"no firewall rule drops udp/67 or udp/69 on {iface}",
                evidence=(f"read: {', '.join(sources)}",),
            )
        )
    return found


# ------------------------------------------------------------------ dnsmasq


def parse_version(text: str) -> tuple[tuple[int, int] | None, set[str]]:
    """(version, compile options) from ``dnsmasq --version``."""
    m = re.search(r"[Dd]nsmasq version (\d+)\.(\d+)", text)
    version = (int(m.group(1)), int(m.group(2))) if m else None
    opts: set[str] = set()
    m2 = re.search(r"Compile time options:\s*(.*)", text)
    if m2:
        opts = set(m2.group(1).split())
    return version, opts


def version_findings(version_text: str, conf_text: str) -> list[Finding]:
    """dnsmasq too old for the options ``conf_text`` uses, or built without DHCP/TFTP."""
    version, opts = parse_version(version_text)
    out: list[Finding] = []
    if version is None:
        return [
            Finding(
                "dnsmasq-unknown",
                "warning",
                "could not read dnsmasq's version",
                evidence=(version_text.strip().splitlines()[0] if version_text.strip() else "",),
            )
        ]
    need = required_version(conf_text)
    shown = f"{version[0]}.{version[1]}"
    if version < need:
        out.append(
            Finding(
                "dnsmasq-too-old",
                "error",
                f"dnsmasq {shown} is older than {need[0]}.{need[1]}, which the generated config "
                "needs",
                "upgrade dnsmasq (`apt-get install dnsmasq-base`), or turn off "
                "network.pi3_reply_delay (needs 2.77)",
                (f"dnsmasq --version: {shown}",),
            )
        )
    for feature in ("DHCP", "TFTP"):
        if f"no-{feature}" in opts:
            out.append(
                Finding(
                    "dnsmasq-no-" + feature.lower(),
                    "error",
                    f"this dnsmasq was built without {feature}",
                    "install Debian's dnsmasq-base, which has both",
                    (f"compile time options: {' '.join(sorted(opts))}",),
                )
            )
    if not out:
        out.append(Finding("dnsmasq-ok", "info", f"dnsmasq {shown} supports the config"))
    return out


def check_dnsmasq(conf_text: str, cancel: threading.Event | None = None) -> list[Finding]:
    """dnsmasq installed, new enough, with DHCP and TFTP."""
    try:
        text = proc.run(dnsmasq_program(), "--version", cancel=cancel).text
    except CommandError as exc:
        if exc.returncode is None:
            return [
                Finding(
                    "dnsmasq-missing",
                    "error",
                    "dnsmasq is not installed",
                    "install it: `apt-get install dnsmasq-base` (or run `make setup`)",
                )
            ]
        text = exc.stderr
    return version_findings(text, conf_text)


# ------------------------------------------------------------------ systemd mode


def conf_dirs(main_conf: str, default_file: str) -> list[tuple[Path, tuple[str, ...], bool]]:
    """Directories the Debian dnsmasq service reads: (dir, suffix filters, include-only).

    From ``conf-dir=`` lines of /etc/dnsmasq.conf and ``CONFIG_DIR`` in /etc/default/dnsmasq
    (the init script passes it as ``-7``). A ``*.conf`` entry means "only these suffixes";
    other entries are suffixes to skip.
    """
    specs: list[str] = []
    for line in main_conf.splitlines():
        line = line.strip()
        if line.startswith("conf-dir="):
            specs.append(line.partition("=")[2])
    for line in default_file.splitlines():
        line = line.strip()
        if line.startswith("CONFIG_DIR="):
            specs.append(line.partition("=")[2].strip("\"'"))
    out: list[tuple[Path, tuple[str, ...], bool]] = []
    for spec in specs:
        parts = [p.strip() for p in spec.split(",") if p.strip()]
        if not parts:
            continue
        includes = tuple(p[1:] for p in parts[1:] if p.startswith("*"))
        excludes = tuple(p for p in parts[1:] if not p.startswith("*"))
        if includes:
            out.append((Path(parts[0]), includes, True))
        else:
            out.append((Path(parts[0]), excludes, False))
    return out


def is_read_by_service(conf: Path, dirs: list[tuple[Path, tuple[str, ...], bool]]) -> bool:
    """Would the service load ``conf`` given its conf-dirs?"""
    for folder, suffixes, include_only in dirs:
        if conf.parent != folder:
            continue
        if include_only:
            if any(conf.name.endswith(s) for s in suffixes):
                return True
        elif not any(conf.name.endswith(s) for s in suffixes) and not conf.name.startswith("."):
            return True
    return False


def systemd_findings(
    answers: Answers, main_conf: str | None, default_file: str | None
) -> list[Finding]:
    """Will dnsmasq.service read our drop-in? (pure over the two files' texts)"""
    conf = resolve_path(answers.network.dnsmasq_conf)
    if main_conf is None and default_file is None:
        return [
            Finding(
                "systemd-no-dnsmasq",
                "error",
                "dnsmasq.service is not installed (no /etc/dnsmasq.conf, no /etc/default/dnsmasq)",
                "install the service: `apt-get install dnsmasq`, or set network.dnsmasq_service "
                '= "process"',
            )
        ]
    dirs = conf_dirs(main_conf or "", default_file or "")
    out: list[Finding] = []
    if not is_read_by_service(conf, dirs):
        shown = ", ".join(str(d) for d, _, _ in dirs) or "none"
        out.append(
            Finding(
                "systemd-conf-dir",
                "error",
                f"dnsmasq.service does not read {conf} (its conf-dirs: {shown})",
                f"add `conf-dir={conf.parent}/,*.conf` to /etc/dnsmasq.conf, or set "
                "network.dnsmasq_conf to a .conf file in one of its conf-dirs",
            )
        )
    out.append(
        Finding(
            "systemd-dns-off",
            "info",
            "the drop-in sets port=0: the system dnsmasq stops answering DNS",
            'if this host\'s dnsmasq also serves DNS, use network.dnsmasq_service = "process"',
        )
    )
    return out


def check_systemd(answers: Answers) -> list[Finding]:
    """``systemd_findings`` for this host's files."""

    def read(path: str) -> str | None:
        try:
            return Path(path).read_text(encoding="utf-8", errors="replace")
        except OSError:
            return None

    return systemd_findings(answers, read("/etc/dnsmasq.conf"), read("/etc/default/dnsmasq"))


# ------------------------------------------------------------------ all of it


def run_preflight(
    answers: Answers,
    snapshot: Snapshot,
    conf_text: str,
    *,
    own_pids: set[int] | None = None,
    cancel: threading.Event | None = None,
    probe: bool = True,
    segment: list[Finding] | None = None,
    programs: bool = True,
) -> list[Finding]:
    """Every check, errors first. ``conf_text`` is the config about to be installed.

    ``segment``: findings that stand for the segment probe (why it was not sent); None probes.
    ``programs`` False leaves out the checks that run programs (firewall, dnsmasq, systemd).
    """
    iface = snapshot.get(answers.network.interface)
    found = check_interface(answers, snapshot)
    found += port_findings(port_users(), own_pids or set())
    if segment is not None:
        found += segment
    elif probe:
        found += check_segment(answers, iface, cancel=cancel)
    if programs:
        found += check_firewall(answers.network.interface, cancel)
        found += check_dnsmasq(conf_text, cancel)
        if answers.network.dnsmasq_service == "systemd":
            found += check_systemd(answers)
    tftp_current = resolve_path(answers.network.tftp_root) / "current"
    if not tftp_current.exists():
        found.append(
            Finding(
                "tftp-root-empty",
                "info",
                f"{tftp_current} does not exist yet: the deploy step creates it",
                "dnsmasq starts anyway (tftp-no-fail) and serves files once deploy ran",
            )
        )
    order = {"error": 0, "warning": 1, "info": 2}
    return sorted(found, key=lambda f: order[f.severity])
