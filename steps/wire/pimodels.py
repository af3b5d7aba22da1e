"""What each Raspberry Pi model's network boot code reads, in one place.

The virtual Pi (``steps.wire.virtualpi``) plays these sequences, the packet monitor can compare a
capture with them, and the remaster and deploy steps check a boot tree against the TFTP limits of
the code that reads it. Each fact names its source (netboot.md §12 holds the checked list):

- **Pi 3 family** (and Pi 0/1/2 with bootcode.bin on SD): the BCM2837 mask ROM reads
  ``bootcode.bin`` and ``bootsig.bin`` from client port 49152 without options (512-byte blocks);
  bootcode.bin and start.elf then read with ``tsize 0`` only (still 512-byte blocks), **a new
  client port per request** (49153, 49154 …) [raspberrypi/documentation boot-net.adoc capture;
  raspberrypi/firmware #745, #1700]. The first file after the ROM is ``<serial>/start.elf``: if it
  exists, every later file is read with that prefix [boot-net.adoc].
- **Pi 4**: the EEPROM bootloader probes ``<prefix>/start4.elf`` and ``<prefix>/start.elf`` (the
  prefix is cleared when neither exists), reads config.txt, start4.elf and fixup4.dat with
  ``tsize 0 blksize 1468`` (1024 before 2022-10-03), each probed with ``ERROR 0 "Early
  terminate"`` first, a new port per request [eeprom-bootloader.adoc TFTP_PREFIX; rpi-eeprom
  release notes; rpi-eeprom #74].
- **Pi 5**: no bootcode.bin, no start*.elf — the bootloader has start.elf built in
  [bootflow-eeprom.adoc]; it reads ``<prefix>/config.txt`` first and probes ``pieeprom.sig`` (its
  self-update) [tinkerbell docs/technical/RASPBERRY_PI5.md; eeprom-bootloader.adoc
  ENABLE_SELF_UPDATE]. Whether it drops the prefix when ``<serial>/config.txt`` is missing is
  UNCONFIRMED (tinkerbell reports that it does); we assume so.
- **What start.elf reads after config.txt** (every model; the same common firmware): the
  initramfs files first, then the device tree, ``overlays/overlay_map.dtb`` (optional), one
  ``overlays/<name>.dtbo`` per ``dtoverlay=`` of the board's sections, the cmdline file and last
  the kernel (probed, then read) [fireCore's Pi 3 capture in picore.md §3.1; rpi-eeprom #87 for a
  Pi 4; netboot.md §12].
- **TFTP prefix**: ``TFTP_PREFIX`` 0 = the serial (8 lower-case hex digits), 2 = the MAC,
  lower case with dashes (``dc-a6-32-01-36-c2/``) [eeprom-bootloader.adoc]. Pi 3s only know the
  serial.
- **Block-counter limits**: TFTP numbers blocks with 16 bits, so a file of ``65535 × blksize``
  bytes or more needs the counter to roll over. The Pi 4/5 bootloaders roll over only since
  2025-09-23 ("Fix TFTP to allow larger files", rpi-eeprom release notes, issue #720); whether
  start.elf (Pi 3, 512-byte blocks: ≈ 32 MiB) and start4.elf do is UNCONFIRMED.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

Model = Literal["pi3", "pi4", "pi5"]
MODELS: tuple[Model, ...] = ("pi3", "pi4", "pi5")
Stepping = Literal["c1", "d0"]

#: TFTP block counter: block numbers are 16 bits, and the last block must be shorter than blksize.
MAX_BLOCKS = 65535
PI3_ROM_PORT = 49152
#: TFTP_PREFIX values the bootloader knows (0 serial, 2 MAC; 1 = TFTP_PREFIX_STR is site-specific).
PrefixMode = Literal["serial", "mac"]


@dataclass(frozen=True)
class PiModel:
    """One model's boot code, as the wire sees it."""

    name: Model
    title: str
    oui: str
    """MAC prefix of the virtual Pi (a real Pi 4/5 MAC has no link to its serial)."""
    fourcc: bytes | None
    """Option-97 FourCC ("RPi4", "RPi5"); None for the Pi 3 ROM's constant GUID."""
    board_rev: int | None
    """Board revision the virtual Pi puts in option 97 (eeprom-bootloader.adoc examples)."""
    prefix_probes: tuple[str, ...]
    """Files probed under ``<prefix>/`` that decide whether the prefix is kept."""
    firmware: tuple[str, ...]
    """Firmware files read after config.txt (start_file/fixup_file can rename them)."""
    options: Mapping[str, str]
    """RRQ options once past the ROM."""
    blksize: int
    """Block size the boot files are read with (what the limits are computed from)."""
    reader: str
    """Who reads the kernel and initramfs files."""
    rollover: str
    """What is known about the 16-bit block counter of ``reader``."""
    optional: tuple[str, ...] = ()
    """Files probed (prefixed) right after config.txt whose absence is normal."""

    def dtb(self, stepping: Stepping = "c1") -> str:
        """The device tree start.elf loads on this model (netboot.md §5.3).

        Pi 5 boards with the D0 stepping of the BCM2712 load ``bcm2712d0-rpi-5-b.dtb``
        (raspberrypi/firmware boot/ lists both).
        """
        if self.name == "pi3":
            return "bcm2710-rpi-3-b.dtb"
        if self.name == "pi4":
            return "bcm2711-rpi-4-b.dtb"
        return "bcm2712d0-rpi-5-b.dtb" if stepping == "d0" else "bcm2712-rpi-5-b.dtb"

    @property
    def limit(self) -> int:
        """Files of this many bytes or more need the block counter to roll over."""
        return MAX_BLOCKS * self.blksize


PI_MODELS: dict[Model, PiModel] = {
    "pi3": PiModel(
        "pi3",
        "Pi 3",
        "b8:27:eb",
        None,
        None,
        ("start.elf",),
        ("start.elf", "fixup.dat"),
        {"tsize": "0"},
        512,
        "start.elf",
        "whether start.elf rolls the block counter over is unconfirmed",
    ),
    "pi4": PiModel(
        "pi4",
        "Pi 4",
        "dc:a6:32",
        b"RPi4",
        0x00C03111,
        ("start4.elf", "start.elf"),
        ("start4.elf", "fixup4.dat"),
        {"tsize": "0", "blksize": "1468"},
        1468,
        "start4.elf",
        "the Pi 4 bootloader rolls over since 2025-09-23; whether start4.elf does is unconfirmed",
    ),
    "pi5": PiModel(
        "pi5",
        "Pi 5",
        "2c:cf:67",
        b"RPi5",
        0x00D04170,
        ("config.txt",),
        (),
        {"tsize": "0", "blksize": "1468"},
        1468,
        "the Pi 5 bootloader",
        "fixed by the 2025-09-23 bootloader (rpi-eeprom #720): older EEPROMs fail",
        optional=("pieeprom.sig",),
    ),
}

#: Board (answers ``release.boards``) → the model whose boot code reads its files. Pi 0/1/2 and
#: Zero 2 W netboot with bootcode.bin on SD: the Pi 3 family's bootcode.bin and start.elf.
BOARD_MODEL: dict[str, Model] = {
    "pi0": "pi3",
    "pi02": "pi3",
    "pi1": "pi3",
    "pi2": "pi3",
    "pi3": "pi3",
    "pi4": "pi4",
    "pi5": "pi5",
}


def virtual_mac(model: Model, serial: str) -> str:
    """A virtual Pi's MAC: the model's OUI + the serial's low 3 bytes (a Pi 3's real rule)."""
    low = serial[-6:]
    return PI_MODELS[model].oui + ":" + ":".join(low[i : i + 2] for i in (0, 2, 4))


def prefix_dir(mode: PrefixMode, serial: str, mac: str) -> str:
    """The per-device directory the bootloader asks for: ``9ffefdef`` or ``dc-a6-32-01-36-c2``."""
    return serial.lower() if mode == "serial" else mac.lower().replace(":", "-")


@dataclass(frozen=True)
class Read:
    """One file start.elf reads after config.txt, in order."""

    name: str
    """Path without the per-device prefix."""
    kind: Literal["initramfs", "dtb", "optional", "overlay", "cmdline", "kernel"]
    probe_first: bool = False
    """Existence probe (ERROR 0 "Early terminate") before the read."""

    @property
    def required(self) -> bool:
        return self.kind != "optional"

    @property
    def missing_code(self) -> str:
        """The diagnosis code when the server says the file does not exist."""
        return "initramfs-missing" if self.kind == "initramfs" else "tftp-file-not-found"


def overlay_names(settings: Iterable[tuple[str, str]]) -> list[str]:
    """The overlay of each ``dtoverlay=name[,param…]`` setting, in order, without repeats.

    An empty ``dtoverlay=`` loads nothing (config_txt/boot.adoc).
    """
    out: list[str] = []
    for key, value in settings:
        if key != "dtoverlay":
            continue
        name = value.split(",", 1)[0].split(":", 1)[0].strip()
        if name and name not in out:
            out.append(name)
    return out


def loader_reads(
    *,
    initramfs: Iterable[str],
    dtb: str,
    overlays: Iterable[str],
    cmdline: str,
    kernel: str,
) -> list[Read]:
    """What start.elf (or the Pi 5 bootloader's copy of it) reads after config.txt, in order."""
    reads = [Read(name, "initramfs") for name in initramfs]
    reads.append(Read(dtb, "dtb"))
    reads.append(Read("overlays/overlay_map.dtb", "optional"))
    reads += [Read(f"overlays/{name}.dtbo", "overlay") for name in overlays]
    reads.append(Read(cmdline, "cmdline"))
    reads.append(Read(kernel, "kernel", probe_first=True))
    return reads


# ----------------------------------------------------------------------- checks on a boot tree


@dataclass(frozen=True)
class SizeFinding:
    """A served file that a board's boot code may fail to read whole."""

    board: str
    file: str
    size: int
    limit: int
    reader: str
    rollover: str

    def message(self) -> str:
        """One line for the build log."""
        return (
            f"{self.file} ({self.size:,} bytes) is read by {self.reader} on {self.board} with "
            f"{self.limit // MAX_BLOCKS}-byte TFTP blocks: files of {self.limit:,} bytes or "
            f"more need the 16-bit block counter to roll over ({self.rollover})"
        )


def size_findings(
    files: Mapping[str, int], board_files: Mapping[str, Iterable[str]]
) -> list[SizeFinding]:
    """Every (board, file) whose size reaches the block-counter limit of the code reading it.

    Args:
        files: served path → size in bytes.
        board_files: board → the paths it reads (kernel, initramfs files …).
    """
    out: list[SizeFinding] = []
    for board, names in board_files.items():
        model = PI_MODELS[BOARD_MODEL.get(board, "pi3")]
        for name in names:
            size = files.get(name)
            if size is not None and size >= model.limit:
                out.append(
                    SizeFinding(board, name, size, model.limit, model.reader, model.rollover)
                )
    return out
