"""The bootloader's configuration (``bootconf.txt``): the netboot properties, set and read back.

"The syntax is the same as config.txt" (raspberrypi/documentation, eeprom-bootloader.adoc):
``KEY=value`` lines, ``#`` comments and ``[filter]`` sections, where ``[all]`` applies to every
board and is in force from the top; a later line overrides an earlier one. The properties a
netboot card sets (same page): ``BOOT_ORDER`` (one boot mode per hex nibble, tried from the
least significant; 2 = NETWORK), ``TFTP_PREFIX`` (0 serial, 1 ``TFTP_PREFIX_STR``, 2 MAC),
``TFTP_PREFIX_STR`` (≤ 32 characters), ``TFTP_IP`` (dotted IPv4, overrides the DHCP server's
choice) and ``DHCP_TIMEOUT`` (ms, minimum 5000, default 45000).

``apply`` keeps every other line of the image's own configuration (``BOOT_UART``,
``WAKE_ON_GPIO`` …), removes the lines for the keys it sets wherever they are — so no board
filter can override them — and appends them, after an ``[all]`` line when the text ends inside
another section.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from steps.answers import PrepareAnswers

#: The keys a netboot card may set, in the order they are written.
NETBOOT_KEYS = ("BOOT_ORDER", "TFTP_PREFIX", "TFTP_PREFIX_STR", "TFTP_IP", "DHCP_TIMEOUT")
_SECTION = re.compile(r"^\s*\[([^\]]*)\]")
#: A title for every mode of ``steps.answers.BOOT_MODES``.
MODE_TITLES = {
    0x0: "SD card (wait for card change)",
    0x1: "SD card",
    0x2: "network",
    0x3: "RPIBOOT",
    0x4: "USB mass storage",
    0x5: "USB (BCM)",
    0x6: "NVMe",
    0x7: "HTTP",
    0xE: "stop",
    0xF: "restart",
}


def netboot_settings(prepare: PrepareAnswers) -> dict[str, str]:
    """The properties to set for these answers (only those the user chose, BOOT_ORDER always)."""
    out = {"BOOT_ORDER": prepare.boot_order}
    prefix = prepare.tftp_prefix
    if prefix == "serial":
        out["TFTP_PREFIX"] = "0"
    elif prefix == "mac":
        out["TFTP_PREFIX"] = "2"
    elif prefix:
        out["TFTP_PREFIX"] = "1"
        out["TFTP_PREFIX_STR"] = prefix
    if prepare.tftp_ip:
        out["TFTP_IP"] = prepare.tftp_ip
    if prepare.dhcp_timeout:
        out["DHCP_TIMEOUT"] = str(prepare.dhcp_timeout)
    return out


def _key(line: str) -> str | None:
    text = line.split("#", 1)[0].strip()
    if "=" not in text or _SECTION.match(text):
        return None
    return text.split("=", 1)[0].strip().upper()


def settings(text: str) -> dict[str, str]:
    """What applies to every board: ``KEY → value`` from the top and ``[all]`` sections."""
    out: dict[str, str] = {}
    everywhere = True
    for line in text.splitlines():
        m = _SECTION.match(line)
        if m:
            everywhere = m.group(1).strip().lower() == "all"
            continue
        key = _key(line)
        if key is not None and everywhere:
            out[key] = line.split("#", 1)[0].split("=", 1)[1].strip()
    return out


def apply(text: str, values: Mapping[str, str]) -> str:
    """``text`` with ``values`` set for every board (other lines kept, in order)."""
    keys = {k.upper() for k in values}
    lines = [ln for ln in text.splitlines() if _key(ln) not in keys]
    while lines and not lines[-1].strip():
        lines.pop()
    sections = [m.group(1).strip().lower() for ln in lines if (m := _SECTION.match(ln))]
    if sections and sections[-1] != "all":
        lines.append("[all]")
    lines += [f"{key}={values[key]}" for key in values]
    return "\n".join(lines) + "\n"


def boot_order_text(value: str) -> str:
    """``0xf21`` → "SD card, then network, then restart" (the order the bootloader tries)."""
    nibbles = [int(c, 16) for c in reversed(value.lower().removeprefix("0x"))]
    return ", then ".join(MODE_TITLES.get(n, f"mode {n:x}") for n in nibbles)
