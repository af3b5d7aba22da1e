"""The diagnosis codes shared by the self-test and the packet monitor (DESIGN.md).

Codes are stable identifiers: grow the set, never rename one. Each has a severity, what it means
and how to fix it; reports print the fix next to the evidence, and the docs' table is generated
from this list (``markdown_table``; a test keeps the README current). The causes and fixes come
from netboot.md §8 (failure signatures): the self-test raises the codes of the stages it checks,
the monitor (``steps.wire.timeline``) every code a capture can show, through ``finding``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from steps.wire.monitor_events import DiagnosisEvent, Severity


@dataclass(frozen=True)
class Diagnosis:
    """What a code means and how to fix it."""

    code: str
    severity: Severity
    meaning: str
    fix: str


_ROWS: list[Diagnosis] = [
    Diagnosis(
        "no-proxy-offer",
        "error",
        "A Pi's DISCOVER got no proxy-DHCP offer (option 43): nothing tells it where to boot.",
        "Start our dnsmasq (`firecore-wizard dnsmasq status`), check it serves this interface "
        "and subnet (log: `no address range available`), that udp/67 is not firewalled, and "
        "that the Pi's OUI/GUID is matched when network.only_pis is on. On the server itself "
        "use `selftest --rehearse`: a NIC never hands its own frames to the local dnsmasq.",
    ),
    Diagnosis(
        "no-dhcp-lease",
        "error",
        "No DHCP server gave the Pi an address (no offer, or no ACK to a Pi 4's REQUEST). The "
        "proxy never hands out addresses; a real DHCP server (the router) must.",
        "Make sure the LAN's DHCP server answers on this segment (and has free addresses); a "
        "Pi behind a relay needs a relay-capable bootloader.",
    ),
    Diagnosis(
        "bad-option-43",
        "error",
        'A proxy answered, but option 43 has no "Raspberry Pi Boot" PXE menu entry (e.g. a '
        "generic PXE server, or a tag filter that excludes this Pi).",
        'Serve `pxe-service=0,"Raspberry Pi Boot"` (the generated config does); add the '
        "Pi's OUI to the tag rules or turn network.only_pis off; stop other PXE servers.",
    ),
    Diagnosis(
        "multiple-proxies",
        "error",
        "Two or more servers send Raspberry Pi boot offers; a Pi boots from whichever it "
        "reads, so boots depend on timing.",
        "Keep one Pi boot server per LAN segment: stop the other dnsmasq / piserver / router "
        "PXE service (`firecore-wizard dnsmasq preflight` names them).",
    ),
    Diagnosis(
        "tftp-server-mismatch",
        "error",
        "The offer points the Pi at a TFTP server that is not the host that sent it (option 66 "
        "or option 54 disagrees with the IP source).",
        "Serve TFTP on the host that sends option 43 and do not set option 66 (proxy mode "
        "ignores it; the firmware has no DNS).",
    ),
    Diagnosis(
        "arp-unanswered",
        "error",
        "The Pi asked who has the TFTP server's address and nobody answered.",
        "The TFTP host must own that address on this segment (check `ip addr`, VLANs, and "
        "arp_ignore/arp_filter when several NICs share a subnet).",
    ),
    Diagnosis(
        "tftp-no-response",
        "error",
        "Read requests to udp/69 got no answer at all.",
        "Check dnsmasq has enable-tftp and runs, and that no firewall drops udp/69 or the "
        "replies from ephemeral ports (or use tftp-single-port).",
    ),
    Diagnosis(
        "tftp-file-not-found",
        "error",
        "The server answered ERROR 1 for a file the Pi needs.",
        "Deploy again (`firecore-wizard deploy`), check tftp-root points at <tftp_root>/current "
        "and that the file is in the boot tree.",
    ),
    Diagnosis(
        "tftp-access-denied",
        "error",
        "The server answered ERROR 2: the file is not world-readable, not owned by the "
        "dnsmasq user with tftp-secure, or the path leaves the root.",
        "Deploy again (deploy makes files 0644 and directories 0755), or `chmod -R a+rX` "
        "the TFTP root.",
    ),
    Diagnosis(
        "tftp-timeout",
        "error",
        "A transfer started but stopped (blocks lost, or the file never completed).",
        "Check the path MTU (tftp-mtu / tftp-no-blocksize on VLANs and tunnels), link errors, "
        "and the firmware's per-file timeout for very large files.",
    ),
    Diagnosis(
        "kernel-not-requested",
        "error",
        "config.txt was read but names no kernel for this board, so the firmware never asks "
        "for one.",
        "Fix the kernel line of that board's section in config.txt (rebuild with the "
        "remaster step) and check release.boards includes the board.",
    ),
    Diagnosis(
        "initramfs-missing",
        "error",
        "An initramfs file named on the board's initramfs line is missing (or there is no "
        "initramfs line): the kernel panics with unknown-block(0,0).",
        "Rebuild and deploy: every file on the initramfs line must be in the boot tree.",
    ),
    Diagnosis(
        "manifest-mismatch",
        "error",
        "A file was served complete but its sha256 differs from the deployed manifest (the "
        "TFTP root was changed by hand, or dnsmasq serves another directory).",
        "Check dnsmasq's tftp-root is <tftp_root>/current and deploy again.",
    ),
    Diagnosis(
        "boot-loop",
        "error",
        "The Pi keeps starting over (the same early files again and again).",
        "Look at the first failing file in the timeline; usually firmware files missing or "
        "mismatched.",
    ),
    Diagnosis(
        "app-not-responding",
        "error",
        "The Pi booted but its app does not answer on /health.",
        "Check the app logs on the Pi (`firecore-wizard status`), the app port and token.",
    ),
    Diagnosis(
        "early-terminate",
        "info",
        'The firmware read the start of a file and stopped with ERROR 0 "Early terminate": '
        "its normal existence/size probe.",
        "Nothing to fix.",
    ),
    Diagnosis(
        "no-discover",
        "warning",
        "Nothing from any Pi: no DHCP DISCOVER from a Raspberry Pi bootloader while listening "
        "(or in the whole capture).",
        "Power the Pi on (a good 5 V supply); remove its SD card; enable network boot — Pi 3B: "
        "boot it once with `program_usb_boot_mode=1` in config.txt (`vcgencmd otp_dump | grep "
        "17:` then shows 3020000a; the 3B+ has it from the factory), Pi 4/5: a BOOT_ORDER "
        "containing 2, e.g. `rpi-eeprom-config --edit` → `BOOT_ORDER=0xf21` (or `firecore-wizard "
        "prepare`). Capture on the Pis' segment (switches do not flood unicast) and enable "
        "PortFast on managed switches. A Pi 3 gives up 25 s after power-on: power-cycle it.",
    ),
    Diagnosis(
        "restart-after-bootcode",
        "error",
        "A Pi 3 loaded bootcode.bin and then started over with the boot ROM's DHCP (or "
        "bootcode.bin's own DHCP led to no further request): the Pi resets right after "
        "bootcode.bin runs — the classic under-voltage symptom.",
        "Use a good power supply (5.1 V, 2.5 A or more) and a short cable; check that the "
        "proxy also answers bootcode.bin's second DHCP round (`dhcp-reply-delay=1` helps the "
        "3B); as a workaround put bootcode.bin alone on an SD card.",
    ),
    Diagnosis(
        "offer-ignored",
        "error",
        "The Pi got an address offer and a good proxy offer but kept sending DISCOVERs: it "
        "ignored them (the Pi 3B boot ROM processes a reply only when a later packet arrives; "
        "a Pi 4 before 2020-06 ignores relayed offers).",
        "For a Pi 3B: `dhcp-reply-delay=tag:rpi,1` in the dnsmasq config (the generated one "
        "has it), or bootcode.bin on an SD card; for a Pi 4 behind a relay: update its "
        "EEPROM or serve it from its own segment.",
    ),
    Diagnosis(
        "pxe-menu-order",
        "warning",
        'The proxy\'s PXE menu lists another entry before "Raspberry Pi Boot"; Pi 4 '
        "bootloaders before 2020-01 read only the first entry.",
        "Put the Pi entry first or give Pis and PCs separate services with tags "
        '(`pxe-service=tag:rpi,0,"Raspberry Pi Boot"`); update old Pi 4 EEPROMs.',
    ),
    Diagnosis(
        "tftp-bad-server-mac",
        "error",
        "The Pi sends its TFTP requests to the MAC address aa:aa:aa:aa:aa:aa or "
        "00:00:00:00:00:00: its own ARP for the server failed (seen with bootcode.bin right "
        "after a link bounce), so the server never receives them.",
        "Let switch ports forward at once (PortFast / no STP delay on the Pi's port); use a "
        "current bootcode.bin, or bootcode.bin on an SD card.",
    ),
    Diagnosis(
        "tftp-reply-lost",
        "error",
        "The server answers the read request from its ephemeral port, but the Pi never "
        "acknowledges and keeps asking again: the answers are dropped on the way (a stateful "
        "firewall, NAT or a container network that only allows udp/69).",
        "Allow the server's replies from its ephemeral ports (conntrack's tftp helper), or "
        "pin them with dnsmasq `tftp-single-port` or `tftp-port-range` plus a firewall rule.",
    ),
    Diagnosis(
        "tftp-blocks-lost",
        "error",
        "The transfer negotiated large blocks (blksize) but the Pi never acknowledged the "
        "first data block: large frames are lost on the path (an MTU below 1500: VLAN tag "
        "stripping, a tunnel, a misconfigured switch).",
        "Lower the block size with dnsmasq `tftp-mtu=<path MTU>` (or `tftp-no-blocksize`), or "
        "fix the MTU on the path.",
    ),
    Diagnosis(
        "tftp-block-rollover",
        "error",
        "A transfer stopped exactly where the 16-bit TFTP block number wraps (block 65535): "
        "bootloaders before 2025-09-23 cannot read files larger than 65535 blocks.",
        "Update the Pi's EEPROM (rpi-eeprom 2025-09-23 or later), or keep each boot file "
        "under 65535 × blksize bytes (≈ 96 MB at 1468).",
    ),
    Diagnosis(
        "boot-stalled",
        "error",
        "A Pi stopped making progress at one stage: nothing more from it for a while, with no "
        "failed request to blame (e.g. nothing after bootsig.bin and <serial>/start.elf, or "
        "no Linux DHCP after the kernel and initramfs were read).",
        "Read the message for the stage: after the firmware probes, copy a matching firmware "
        "set (bootcode.bin, start*.elf and fixup*.dat of one release); after the kernel, check "
        "cmdline.txt and the initramfs (a kernel panic shows only on the Pi's HDMI/serial "
        "console).",
    ),
]

DIAGNOSES: dict[str, Diagnosis] = {d.code: d for d in _ROWS}


def fix_for(code: str | None) -> str:
    """The fix text for a code ("" for None or an unknown code)."""
    d = DIAGNOSES.get(code or "")
    return d.fix if d else ""


def finding(
    code: str,
    *,
    mac: str | None,
    message: str,
    evidence: Iterable[int] = (),
    t: float = 0.0,
    stage: str | None = None,
    file: str | None = None,
    fix: str | None = None,
) -> DiagnosisEvent:
    """A monitor diagnosis for ``code`` with its table severity and fix (``fix`` adds to it).

    Raises:
        KeyError: an unknown code (codes are fixed; add a row to the table first).
    """
    row = DIAGNOSES[code]
    return DiagnosisEvent(
        code=code,
        severity=row.severity,
        mac=mac,
        message=message,
        fix=f"{fix} {row.fix}" if fix else row.fix,
        evidence=sorted(set(evidence))[:20],
        t=t,
        stage=stage,
        file=file,
    )


def markdown_table() -> str:
    """The docs' table of codes (kept in sync by a test)."""
    lines = ["| Code | Severity | Meaning | Fix |", "|---|---|---|---|"]
    for d in _ROWS:
        lines.append(f"| `{d.code}` | {d.severity} | {d.meaning} | {d.fix} |")
    return "\n".join(lines)
