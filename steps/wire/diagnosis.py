"""The diagnosis codes shared by the self-test and the packet monitor (DESIGN.md).

Codes are stable identifiers: grow the set, never rename one. Each has a severity, what it means
and how to fix it; reports print the fix next to the evidence, and the README's table is this
dict. The causes and fixes come from netboot.md §8 (failure signatures).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Severity = Literal["error", "warning", "info"]


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
]

DIAGNOSES: dict[str, Diagnosis] = {d.code: d for d in _ROWS}


def fix_for(code: str | None) -> str:
    """The fix text for a code ("" for None or an unknown code)."""
    d = DIAGNOSES.get(code or "")
    return d.fix if d else ""


def markdown_table() -> str:
    """The README's table of codes (kept in sync by a test)."""
    lines = ["| Code | Severity | Meaning | Fix |", "|---|---|---|---|"]
    for d in _ROWS:
        lines.append(f"| `{d.code}` | {d.severity} | {d.meaning} | {d.fix} |")
    return "\n".join(lines)
