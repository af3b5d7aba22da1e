"""A stand-in rpi-eeprom release: bootloader images with the real section layout, offline.

The real EEPROM images cannot be downloaded here (and are not ours to ship), so tests and the
demo use generated ones: random code sections, the modifiable files the released images carry
(``updatetime``, ``pubkey.bin``, ``cacert.der``, ``bootconf.sig``, ``bootconf.txt``) at
256-byte boundaries with padding sections between them, laid out as ``steps.bootloader.eeprom``
documents — a 512 KiB BCM2711 image with ``bootconf.txt`` as its last section, and a 2 MiB
BCM2712 A/B image (``bootsys`` at 64 KiB, ``bootconf.txt`` followed by padding up to the end of
partition A, an empty partition B). The bootloader's last 4 KiB hold non-0xFF bytes, so a test
sees an editor that writes there.

``write_release(root)`` lays the files out as the rpi-eeprom repository does
(``firmware-2711/default/pieeprom-<date>.bin``, ``recovery.bin`` …) and returns the matching
firmware catalog (``steps.bootloader.firmware``), with sha256 and md5 of every file.
"""

from __future__ import annotations

import hashlib
import random
import struct
from pathlib import Path
from typing import Any

from steps.bootloader.eeprom import (
    DATA_OFFSET,
    ERASE_SECTOR,
    FILE_MAGIC,
    HEADER,
    NAME_LEN,
    PAD_MAGIC,
    PARTITION,
    READ_ONLY,
    SECTION_MAGIC,
)

#: The stand-in release's version (a date, as rpi-eeprom names its images).
VERSION = "2099-01-01"
DEFAULT_CONFIG = {
    "2711": "[all]\nBOOT_UART=0\nWAKE_ON_GPIO=1\nPOWER_OFF_ON_HALT=0\n",
    "2712": "[all]\nBOOT_UART=1\nBOOT_ORDER=0xf461\nNET_INSTALL_AT_POWER_ON=1\n",
}
_SIZES = {"2711": 512 * 1024, "2712": 2 * 1024 * 1024}


class _Builder:
    def __init__(self, size: int, rng: random.Random) -> None:
        self.buf = bytearray(b"\xff" * size)
        self.pos = 0
        self.rng = rng

    def section(self, magic: int, payload: bytes) -> None:
        struct.pack_into(">II", self.buf, self.pos, magic, len(payload))
        self.buf[self.pos + HEADER : self.pos + HEADER + len(payload)] = payload
        self.pos = (self.pos + HEADER + len(payload) + 7) & ~7

    def blob(self, size: int, magic: int = 0x55AAF44F) -> None:
        self.section(magic, self.rng.randbytes(size))

    def file(self, name: str, data: bytes) -> None:
        body = name.encode().ljust(NAME_LEN, b"\0") + b"\0" * (DATA_OFFSET - HEADER - NAME_LEN)
        self.section(FILE_MAGIC, body + data)

    def pad_to(self, offset: int) -> None:
        """A padding section from here up to ``offset`` (0xFF filled)."""
        assert offset - self.pos >= HEADER, (self.pos, offset)
        struct.pack_into(">II", self.buf, self.pos, PAD_MAGIC, offset - self.pos - HEADER)
        self.pos = offset

    def boundary(self, step: int = 256) -> None:
        nxt = -(-(self.pos + HEADER) // step) * step
        self.pad_to(nxt)


def make_image(chip: str, config: str | None = None, *, seed: int = 0) -> bytes:
    """A bootloader image for ``chip`` ("2711" or "2712") whose bootconf.txt is ``config``."""
    rng = random.Random(f"{chip}-{seed}")
    b = _Builder(_SIZES[chip], rng)
    text = (config if config is not None else DEFAULT_CONFIG[chip]).encode()
    b.blob(25_000, SECTION_MAGIC)  # the bootcode
    b.boundary()
    if chip == "2712":
        b.file("updatetime", b"\0" * 8)
        b.pad_to(READ_ONLY)
        b.file("bootsys", rng.randbytes(30_000))
        b.boundary()
    for size in (60_000, 12_000, 9_000, 2_256):
        b.blob(size)
    b.file("updatetime", b"\0" * 8)
    b.boundary()
    b.file("pubkey.bin", b"\0" * 512)
    b.boundary()
    b.file("cacert.der", b"\0" * 2048)
    b.boundary()
    b.file("bootconf.sig", b"\0" * 1024)
    b.boundary()
    b.file("bootconf.txt", text)
    if chip == "2712":
        end_a = READ_ONLY + PARTITION
        b.pad_to(end_a)
        b.pad_to(len(b.buf) - 2 * ERASE_SECTOR)  # partition B, empty; then the journals
    # the bootloader's own last 4 KiB: not ours to write
    b.buf[-ERASE_SECTOR:] = rng.randbytes(ERASE_SECTOR)
    return bytes(b.buf)


def make_recovery(chip: str) -> bytes:
    """Stand-in recovery.bin bytes (random: nothing runs them)."""
    return random.Random(f"recovery-{chip}").randbytes(100_000)


def _entry(root: Path, rel: str, data: bytes) -> dict[str, Any]:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return {
        "path": rel,
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "md5": hashlib.md5(data).hexdigest(),
    }


def write_release(root: Path, *, version: str = VERSION) -> dict[str, Any]:
    """Write an rpi-eeprom-shaped tree under ``root``; return its firmware catalog."""
    releases: dict[str, Any] = {}
    for chip in ("2711", "2712"):
        base = f"firmware-{chip}/default"
        releases[chip] = {
            "version": version,
            "channel": "default",
            "pieeprom": _entry(root, f"{base}/pieeprom-{version}.bin", make_image(chip)),
            "recovery": _entry(root, f"{base}/recovery.bin", make_recovery(chip)),
        }
    return {"format": 1, "source": "firecore demo (generated)", "releases": releases}
