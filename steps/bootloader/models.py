"""Per Raspberry Pi model: can it netboot, what turns netboot on, which card does it.

Facts, from raspberrypi/documentation (computers/raspberry-pi/):

- **Pi 3B** (BCM2837): network boot is an OTP bit. "Add ``program_usb_boot_mode=1`` to
  config.txt and reboot"; afterwards ``vcgencmd otp_dump`` row 17 reads ``3020000a``
  (boot-net.adoc, "Debugging Network Boot Mode"). Row 17 is the bootmode register; bit 29
  "enables USB host booting (ethernet and mass storage)" (otp-bits.adoc). The bit is permanent.
- **Pi 2B v1.2** has the same BCM2837 and boots from the network the same way (bootmodes.adoc:
  "Pi 2B version 1.2, Pi 3B, and Pi 3B+"); older Pi 2B (BCM2836), Pi 1 (BCM2835) and the Zeros
  (no Ethernet port) cannot netboot from their ROM.
- **Pi 3B+**: network boot is enabled at the factory (netboot.md §1).
- **Pi 4, 400, CM4** (BCM2711) and **Pi 5** (BCM2712): the EEPROM bootloader netboots when
  ``BOOT_ORDER`` contains 2 (eeprom-bootloader.adoc). At power-on the ROM runs ``recovery.bin``
  from the SD card's boot partition, which flashes ``pieeprom.upd`` after checking it against
  ``pieeprom.sig``, renames itself to ``recovery.000`` and reboots; with ``pieeprom.bin`` it
  stops after flashing instead (boot-eeprom.adoc, "Bootloader update files"). Success: the
  green LED blinks rapidly, an HDMI screen turns green (rpi-eeprom imager/README-2711.txt).
  A CM4 with eMMC cannot load recovery.bin from it: it needs rpiboot (boot-eeprom.adoc).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Literal

from steps.errors import UsageError

Action = Literal["otp-card", "nothing", "eeprom-card", "sd-image"]


@dataclass(frozen=True)
class ModelInfo:
    """What ``prepare`` does for one model."""

    key: str
    title: str
    action: Action
    """otp-card: our system with program_usb_boot_mode=1; nothing: netboots already;
    eeprom-card: a bootloader recovery card; sd-image: cannot netboot, boots from the card."""
    why: str
    """One paragraph: how netboot is (or is not) enabled on this model."""
    chip: str = ""
    """"2711" or "2712" for EEPROM cards."""
    note: str = ""
    """A caveat for this model (e.g. CM4 with eMMC)."""
    boards: tuple[str, ...] = ()
    """``release.boards`` families one of which a card with our system needs (otp-card,
    sd-image)."""


_EEPROM_WHY = (
    "The {title} netboots from its EEPROM bootloader when BOOT_ORDER contains 2 (network). The "
    "recovery card flashes a bootloader whose configuration has your BOOT_ORDER and TFTP "
    "settings; recovery.bin checks the image against pieeprom.sig before writing it."
)
_SD_WHY = (
    "The {title} cannot boot from the network (its boot ROM has no network boot{extra}). It "
    "boots the same system from an SD card: the SD image of this build (build.sd_image)."
)

MODELS: dict[str, ModelInfo] = {
    "pi3b": ModelInfo(
        "pi3b",
        "Raspberry Pi 3 Model B",
        "otp-card",
        "The Pi 3B's boot ROM netboots once bit 29 of OTP row 17 is set. Booting once with "
        "program_usb_boot_mode=1 in config.txt sets it, for good (it cannot be undone). This "
        "card boots your build with that line; its app then reports the OTP row "
        "(17:3020000a = netboot on).",
        note="A Pi 2B v1.2 (BCM2837) is prepared the same way.",
        boards=("pi3",),
    ),
    "pi3b+": ModelInfo(
        "pi3b+",
        "Raspberry Pi 3 Model B+",
        "nothing",
        "The Pi 3B+ netboots out of the box: network boot is enabled at the factory. Remove "
        "any bootable SD card, connect Ethernet and power it on.",
    ),
    "pi4": ModelInfo("pi4", "Raspberry Pi 4 Model B", "eeprom-card", _EEPROM_WHY, chip="2711"),
    "pi400": ModelInfo("pi400", "Raspberry Pi 400", "eeprom-card", _EEPROM_WHY, chip="2711"),
    "cm4": ModelInfo(
        "cm4",
        "Compute Module 4",
        "eeprom-card",
        _EEPROM_WHY,
        chip="2711",
        note=(
            "A CM4 with eMMC cannot load recovery.bin from it: flash the bootloader with rpiboot "
            "(github.com/raspberrypi/usbboot, recovery/) using this card's pieeprom file. A CM4 "
            "Lite uses the SD card."
        ),
    ),
    "pi5": ModelInfo("pi5", "Raspberry Pi 5", "eeprom-card", _EEPROM_WHY, chip="2712"),
    "pi2": ModelInfo(
        "pi2",
        "Raspberry Pi 2 Model B",
        "sd-image",
        _SD_WHY.replace("{extra}", ": BCM2836"),
        note="A Pi 2B v1.2 has the BCM2837 of the Pi 3B and can netboot: use --model pi3b.",
        boards=("pi2",),
    ),
    "pi1": ModelInfo(
        "pi1",
        "Raspberry Pi 1",
        "sd-image",
        _SD_WHY.replace("{extra}", ": BCM2835"),
        boards=("pi1",),
    ),
    "zero": ModelInfo(
        "zero",
        "Raspberry Pi Zero / Zero W / Zero 2 W",
        "sd-image",
        _SD_WHY.replace("{extra}", ", and no Ethernet port"),
        boards=("pi0", "pi02"),
    ),
}
MODEL_KEYS: tuple[str, ...] = tuple(MODELS)


def model(key: str) -> ModelInfo:
    """The model called ``key``.

    Raises:
        UsageError: an unknown model, with the closest known one.
    """
    info = MODELS.get(key.lower().replace(" ", ""))
    if info is None:
        close = difflib.get_close_matches(key.lower(), MODEL_KEYS, n=1, cutoff=0.5)
        hint = f"did you mean {close[0]}? " if close else ""
        raise UsageError(
            f"{key!r} is not a model prepare knows",
            fix=f"{hint}choose one of {', '.join(MODEL_KEYS)}",
        )
    return info


def why(info: ModelInfo) -> str:
    """``info.why`` with the model's title filled in."""
    return info.why.replace("{title}", info.title)
