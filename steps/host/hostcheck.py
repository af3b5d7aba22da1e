"""What this machine needs for the job, checked: the programs, root, pip — each with its fix.

The wizard's Welcome screen shows it before anything runs, so a missing tool is named up front
instead of failing half-way through a build.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass

from steps import proc

#: Programs the job needs: (program, what for). ``proc.PACKAGES`` names their Debian packages.
NEEDED_PROGRAMS: tuple[tuple[str, str], ...] = (
    ("mcopy", "build: reading the image's FAT boot partition"),
    ("sfdisk", "build: reading the image's partition table"),
    ("unsquashfs", "build: extracted extension mode"),
    ("dnsmasq", "network: proxy DHCP + TFTP"),
    ("ip", "network: interfaces"),
)


@dataclass(frozen=True)
class HostNeed:
    """One thing the job needs from this machine, and whether it is there."""

    item: str
    ok: bool
    detail: str
    fix: str = ""
    needed_for: str = ""


def check_host() -> list[HostNeed]:
    """The programs (found on PATH or in /usr/sbin, /sbin), root, and pip."""
    needs: list[HostNeed] = []
    for program, needed_for in NEEDED_PROGRAMS:
        found = proc.which(program) or proc.locate(program)
        package = proc.PACKAGES.get(program, program)
        needs.append(
            HostNeed(
                program,
                found is not None,
                str(found) if found else "not installed",
                "" if found else f"apt-get install {package}",
                needed_for,
            )
        )
    root = os.geteuid() == 0
    needs.append(
        HostNeed(
            "privileges",
            root,
            "root" if root else f"uid {os.geteuid()}",
            "" if root else "run the Network/Deploy/self-test parts with sudo",
            "network: install dnsmasq config, start dnsmasq, self-test raw sockets",
        )
    )
    pip = importlib.util.find_spec("pip") is not None
    needs.append(
        HostNeed(
            "pip",
            pip,
            "available" if pip else "missing",
            "" if pip else "python3 -m ensurepip",
            "build: wheels for the Pi",
        )
    )
    return needs
