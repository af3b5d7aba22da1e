"""What the demo factory builds: one ``ReleaseSpec`` per piCore release file on the fake mirror.

The defaults mirror the real layouts (picore.md §1.1, §2): 12.0 armv7 as a zip in
``releases/RPi``, 15.0.0 armhf as a zip with a 64-bit v8 kernel for Pi 4/5, 16.0.0 piCore64 as a
gzipped raw image in ``release/RPi`` (singular), and a piCore64 beta in ``test_releases/RPi``.
Partition sizes are deliberately small and different from the real ones, so code that reads the
partition table passes and code that assumes 64 MiB fails.
"""

from __future__ import annotations

import calendar
import time
from dataclasses import dataclass
from typing import Literal

#: Bump when the factory's output changes; part of the cached mirror's key.
FACTORY_VERSION = "1"

Layout = Literal["zip", "img.gz"]
Style = Literal["12", "15", "64"]

#: Config style → board → kernel flavour suffix ("" = the ARMv6 kernel "…-piCore").
FLAVOURS: dict[str, dict[str, str]] = {
    "12": {"pi0": "", "pi1": "", "pi2": "-v7", "pi3": "-v7", "pi4": "-v7l"},
    "15": {
        "pi0": "",
        "pi02": "-v7",
        "pi1": "",
        "pi2": "-v7",
        "pi3": "-v7",
        "pi4": "-v8",
        "pi5": "-v8",
    },
    "64": {"pi02": "-v8", "pi3": "-v8", "pi4": "-v8", "pi5": "-v8-16k"},
}


@dataclass(frozen=True)
class ReleaseSpec:
    """One release file to build."""

    version: str
    """"12.0", "15.0.0", "15.0.0-beta2" …"""
    arch: str
    """Arch directory on the mirror (armv7, armhf, aarch64 …)."""
    kernel: str
    """Kernel version, e.g. "6.6.47"; releases are "<kernel>-piCore<flavour>"."""
    style: Style
    """Which config.txt template: 12.0 (PI0…PI4), 15.0 (+PI02/PI5, v8 on Pi 4/5), piCore64."""
    flavour: str = "piCore"
    """"piCore" or "piCore64" (file name prefix)."""
    layout: Layout = "zip"
    beta: bool = False
    python: str = "3.11"
    """Python version of the pythonX.Y extension in this release's TCZ repo."""
    boot_sectors: int = 16384
    """Size of p1 (FAT) in 512-byte sectors; p1 always starts at sector 8192."""
    tce_sectors: int = 8192
    """Size of p2 (ext4)."""
    fat32: bool = False
    """FAT32 (needs ≥ 65525 clusters: a bigger p1) instead of FAT16; the type byte is 0x0c."""
    publish_md5: bool = False
    """Also publish ``<file>.md5.txt`` next to the release file (not every mirror does)."""
    aliases: tuple[str, ...] = ()
    """Other arch directories that publish the same file (12.0's armv6 zip is the same image)."""
    date: str = "2020-09-20"
    """Release date: file times in the image and on the mirror, SOURCE_DATE_EPOCH."""
    final_newline: bool = True
    """False: config.txt lacks its final newline (parsers must round-trip that too)."""

    @property
    def major(self) -> str:
        return self.version.split(".")[0]

    @property
    def short_version(self) -> str:
        """MAJOR.MINOR, as used in rootfs names ("15.0" for 15.0.0-beta2)."""
        parts = self.version.split("-")[0].split(".")
        return ".".join(parts[:2])

    @property
    def image_name(self) -> str:
        return f"{self.flavour}-{self.version}.img"

    @property
    def filename(self) -> str:
        return f"{self.flavour}-{self.version}.{'zip' if self.layout == 'zip' else 'img.gz'}"

    @property
    def release_dir(self) -> str:
        """Directory of the release file below the mirror root."""
        if self.beta:
            sub = "test_releases/RPi"
        elif int(self.major) >= 16:
            sub = "release/RPi"
        else:
            sub = "releases/RPi"
        return f"{self.major}.x/{self.arch}/{sub}"

    @property
    def path(self) -> str:
        return f"{self.release_dir}/{self.filename}"

    @property
    def repo(self) -> str:
        """The TCZ repository directory for this release."""
        return f"{self.major}.x/{self.arch}/tcz"

    @property
    def rootfs(self) -> str:
        return f"rootfs-{self.flavour}-{self.short_version}.gz"

    @property
    def epoch(self) -> int:
        return calendar.timegm(time.strptime(self.date, "%Y-%m-%d")) + 12 * 3600

    def kernel_release(self, board: str) -> str:
        return f"{self.kernel}-piCore{FLAVOURS[self.style][board]}"

    def kernel_file(self, suffix: str) -> str:
        """kernel6647v8.img style name for a flavour suffix ("-v8" → "v8")."""
        return f"kernel{self.kernel.replace('.', '')}{suffix.lstrip('-')}.img"

    @property
    def boards(self) -> tuple[str, ...]:
        return tuple(FLAVOURS[self.style])

    @property
    def flavour_suffixes(self) -> tuple[str, ...]:
        """Distinct kernel flavours, in board order ("", "-v7", "-v7l")."""
        out: list[str] = []
        for suffix in FLAVOURS[self.style].values():
            if suffix not in out:
                out.append(suffix)
        return tuple(out)

    @property
    def kernel_releases(self) -> tuple[str, ...]:
        return tuple(f"{self.kernel}-piCore{s}" for s in self.flavour_suffixes)


DEFAULT_SPECS: tuple[ReleaseSpec, ...] = (
    ReleaseSpec(
        "12.0",
        "armv7",
        "5.4.51",
        "12",
        python="3.8",
        boot_sectors=16384,
        tce_sectors=8192,
        publish_md5=True,
        aliases=("armv6",),
        date="2020-09-20",
    ),
    ReleaseSpec(
        "15.0.0",
        "armhf",
        "6.6.47",
        "15",
        boot_sectors=20480,
        tce_sectors=6144,
        date="2024-09-29",
    ),
    ReleaseSpec(
        "16.0.0",
        "aarch64",
        "6.12.25",
        "64",
        flavour="piCore64",
        layout="img.gz",
        boot_sectors=73728,
        tce_sectors=8192,
        fat32=True,
        publish_md5=True,
        date="2025-06-01",
    ),
    ReleaseSpec(
        "15.0.0-beta2",
        "aarch64",
        "6.6.34",
        "64",
        flavour="piCore64",
        beta=True,
        boot_sectors=12288,
        tce_sectors=4096,
        date="2024-06-30",
        final_newline=False,
    ),
)
