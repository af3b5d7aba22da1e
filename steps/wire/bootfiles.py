"""The files a Pi reads over TFTP: what each one is for, and which may be missing.

A read request names a path such as ``9ffefdef/start4.elf``: an optional per-device prefix (the
serial, or the MAC with dashes when ``TFTP_PREFIX=2``) and the boot-partition file. The packet
monitor uses ``split_prefix`` to find the serial, ``kind_of`` to know which boot stage a file
belongs to, ``expected_missing`` to tell a probe the firmware makes on every boot (a "not found"
that is normal) from a file a Pi needs, and ``model_hint`` to guess the model from a name.

Facts: netboot.md §5 (file lists per model, the prefix rules, §5.3's table of expected and fatal
missing files) and §4 (request orders); each model's prefix probes and optional files come from
``steps.wire.pimodels`` (the virtual Pi plays the same sequences).
"""

from __future__ import annotations

import re
from typing import Literal

from steps.wire.pimodels import PI_MODELS

Kind = Literal[
    "firmware", "config", "cmdline", "devicetree", "overlay", "kernel", "initramfs", "other"
]

_SERIAL = re.compile(r"^[0-9a-f]{8}$")
_MAC_DIR = re.compile(r"^[0-9a-f]{2}(-[0-9a-f]{2}){5}$")

#: Files the firmware asks for on a normal boot whose absence is expected (netboot.md §5.3).
EXPECTED_MISSING = frozenset(
    {
        "bootsig.bin",
        "autoboot.txt",
        "recovery.elf",
        "recover4.elf",
        "fixup_rc.dat",
        "fixup4rc.dat",
        "dt-blob.bin",
        "bootcfg.txt",
        "pieeprom.sig",
        "pieeprom.upd",
        "pieeprom.bin",
        "vl805.sig",
        "vl805.bin",
        "recovery8.img",
        "recovery8-32.img",
        "recovery7.img",
        "recovery.img",
        "kernel8-32.img",
        "overlays/overlay_map.dtb",
        "tryboot.txt",
        "boot.sig",
    }
    | {name for model in PI_MODELS.values() for name in model.optional}
)
#: The files whose presence under ``<prefix>/`` decides whether a Pi keeps its per-device prefix
#: (Pi 3: start.elf; Pi 4: start4.elf, start.elf; Pi 5: config.txt).
PREFIX_PROBES = frozenset(name for model in PI_MODELS.values() for name in model.prefix_probes)
_EXPECTED_PATTERNS = (re.compile(r"^armstub8.*\.bin$"),)


def split_prefix(path: str) -> tuple[str, str]:
    """``"9ffefdef/start4.elf"`` → ``("9ffefdef", "start4.elf")``; ``""`` when there is none.

    Only a first component that is a serial (8 lower-case hex digits) or a dashed MAC counts as
    a per-device prefix; ``overlays/x.dtbo`` keeps its directory. Leading slashes are dropped.
    """
    clean = path.lstrip("/")
    head, sep, rest = clean.partition("/")
    low = head.lower()
    if sep and rest and (_SERIAL.match(low) or _MAC_DIR.match(low)):
        return low, rest
    return "", clean


def serial_from_prefix(prefix: str) -> str | None:
    """The serial a ``<serial>/`` prefix names (None for a MAC prefix or none)."""
    return prefix if _SERIAL.match(prefix) else None


def kind_of(base: str) -> Kind:
    """What a boot-partition file is for (the prefix already removed)."""
    name = base.lower()
    leaf = name.rsplit("/", 1)[-1]
    if name.startswith("overlays/") or leaf.endswith(".dtbo"):
        return "overlay"
    if leaf.endswith(".dtb"):
        return "devicetree"
    if leaf in ("bootcode.bin", "bootsig.bin", "boot.img", "boot.sig", "dt-blob.bin"):
        return "firmware"
    if leaf.endswith(".elf") or (leaf.startswith("fixup") and leaf.endswith(".dat")):
        return "firmware"
    if leaf.startswith(("pieeprom", "vl805", "armstub")):
        return "firmware"
    if leaf in ("config.txt", "autoboot.txt", "tryboot.txt", "bootcfg.txt"):
        return "config"
    if leaf.endswith(".txt"):
        return "cmdline"
    if leaf.startswith("recovery") and leaf.endswith(".img"):
        return "kernel"
    if (
        leaf.startswith(("kernel", "vmlinuz", "zimage", "image"))
        or leaf.endswith(".img")
        or leaf in ("zimage", "image")
    ):
        return "kernel"
    if (
        leaf.endswith((".gz", ".cpio", ".xz", ".lz4", ".zst", ".lzma", ".bz2"))
        or leaf.startswith(("initramfs", "initrd", "rootfs"))
        or ".cpio" in leaf
    ):
        return "initramfs"
    return "other"


def expected_missing(base: str) -> bool:
    """True for a file whose "not found" is part of a normal boot (a probe)."""
    name = base.lower()
    return name in EXPECTED_MISSING or any(p.match(name) for p in _EXPECTED_PATTERNS)


def prefix_probe(path: str) -> bool:
    """A ``<prefix>/start*.elf`` (or, Pi 5, ``<prefix>/config.txt``) probe: how the firmware
    decides whether a per-device directory exists (its absence only drops the prefix)."""
    prefix, base = split_prefix(path)
    return bool(prefix) and base.lower() in PREFIX_PROBES


#: A file name → the model it implies (netboot.md §4, §5.3: start4/fixup4 are the BCM2711's;
#: bcm2710/2711/2712 device trees; kernel_2712.img is the Pi 5's default kernel name).
_MODEL_HINTS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^(start4\w*\.elf|fixup4\w*\.dat|recover4\.elf)$"), "pi4"),
    (re.compile(r"^bcm2711-"), "pi4"),
    (re.compile(r"^bcm2712\w*-"), "pi5"),
    (re.compile(r"^kernel_2712\.img$"), "pi5"),
    (re.compile(r"^bcm2710-"), "pi3"),
    (re.compile(r"^bcm2837-"), "pi3"),
)


def model_hint(base: str) -> str | None:
    """The model a file name implies, if any."""
    leaf = base.lower().rsplit("/", 1)[-1]
    for pattern, model in _MODEL_HINTS:
        if pattern.match(leaf):
            return model
    return None
