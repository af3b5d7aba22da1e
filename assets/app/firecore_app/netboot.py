"""Whether this Pi netboots, as the Pi itself reports it (``/info`` → ``netboot``).

What is read, each source optional (the report lists what was read, or why not):

- ``<proc>/device-tree/chosen/bootloader/boot-mode``: the boot mode the firmware used, a
  big-endian 32-bit number with the BOOT_ORDER values (1 SD card, 2 network, 4 USB …)
  (raspberrypi/documentation, configuration/device-tree.adoc, "Common bootloader properties").
- Pi 4/400/CM4/5: the bootloader configuration, from the ``blconfig`` NVMEM device the firmware
  provides (device-tree alias ``blconfig`` → the nvmem device whose ``of_node`` it names; same
  document, "NVMEM nodes"), else ``vcgencmd bootloader_config``. Netboot is on when its
  BOOT_ORDER has a 2 nibble; no BOOT_ORDER means the default 0xf41 (eeprom-bootloader.adoc).
- Pi 3B / 2B v1.2: OTP row 17, from ``vcgencmd otp_dump``, else straight from the VideoCore
  mailbox (``/dev/vcio``, the "get gencmd result" property tag 0x00030080 — the interface
  raspberrypi/utils' vcgencmd itself uses). Bit 29 "enables USB host booting (ethernet and mass
  storage)" (otp-bits.adoc); a programmed 3B reads ``17:3020000a`` (boot-net.adoc).
- Pi 3B+: netboot is enabled at the factory; Pi 1, 2 (before v1.2) and Zero cannot netboot.

piCore's base system has no ``vcgencmd`` (the VideoCore tools come in the ``rpi-vc``
extension) and the mailbox needs root, while the app runs as user tc: boot.sh runs
``python3 -m firecore_app.netboot --write FILE`` once as root at boot, and the app reports that
record, re-reading live whatever it can read itself.
"""

import array
import fcntl
import json
import os
import shutil
import struct
import subprocess
import sys
from typing import Any, Callable, Dict, List, Optional, Tuple

from firecore_app.settings import Settings

#: BOOT_ORDER / boot-mode values (eeprom-bootloader.adoc, "BOOT_ORDER fields").
BOOT_MODES = {
    0x0: "sd",
    0x1: "sd",
    0x2: "network",
    0x3: "rpiboot",
    0x4: "usb",
    0x5: "usb",
    0x6: "nvme",
    0x7: "http",
}
DEFAULT_BOOT_ORDER = "0xf41"
OTP_NETBOOT_BIT = 29
GENCMD_TAG = 0x00030080
GENCMD_MAX = 1024
_VCGENCMD_DIRS = ("/usr/local/bin", "/usr/bin", "/opt/vc/bin")

Runner = Callable[[List[str]], Tuple[int, str]]


def _read_bytes(path: str) -> Optional[bytes]:
    try:
        with open(path, "rb") as fh:
            return fh.read(1 << 16)
    except OSError:
        return None


def model(settings: Settings) -> str:
    raw = _read_bytes(os.path.join(settings.proc, "device-tree", "model")) or b""
    return raw.replace(b"\0", b"").decode("utf-8", "replace").strip()


def family(model_name: str) -> str:
    """ "eeprom" (Pi 4/400/CM4/5/500/CM5), "otp" (3B, 2B v1.2), "factory" (3B+), "none", ""."""
    m = model_name.lower()
    if not m:
        return ""
    if any(k in m for k in ("pi 4", "pi 400", "compute module 4", "pi 5", "pi 500", "module 5")):
        return "eeprom"
    if "pi 3 model b plus" in m:
        return "factory"
    if "pi 3 model b" in m or "pi 2 model b rev 1.2" in m:
        return "otp"
    if "pi 3 model a" in m:
        return "none"  # no Ethernet port
    return "none"


def boot_mode(settings: Settings) -> Optional[int]:
    raw = _read_bytes(
        os.path.join(settings.proc, "device-tree", "chosen", "bootloader", "boot-mode")
    )
    if raw is None or len(raw) < 4:
        return None
    return int(struct.unpack(">I", raw[:4])[0])


def _vcgencmd() -> Optional[str]:
    found = shutil.which("vcgencmd")
    if found:
        return found
    for folder in _VCGENCMD_DIRS:
        candidate = os.path.join(folder, "vcgencmd")
        if os.access(candidate, os.X_OK):
            return candidate
    return None


def run_command(argv: List[str]) -> Tuple[int, str]:
    """Run a program (5 s at most); (exit code, stdout). 127: not found."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=5)
    except FileNotFoundError:
        return 127, ""
    except (OSError, subprocess.TimeoutExpired) as exc:
        return 126, str(exc)
    return done.returncode, done.stdout


def gencmd_buffer(command: str) -> "array.array[int]":
    """The mailbox property message for one gencmd (layout of raspberrypi/utils vcgencmd.c).

    Words: total size in bytes, request code 0, the tag, the value buffer size, the request
    length, the error slot, then the NUL-terminated command in a GENCMD_MAX-byte buffer, then
    the end tag 0. Native byte order (the ARM is little-endian).
    """
    text = command.encode("ascii") + b"\0"
    if len(text) >= GENCMD_MAX:
        raise ValueError("gencmd command too long")
    words = 6 + GENCMD_MAX // 4 + 1
    buf = array.array("I", [0] * words)
    buf[0] = words * 4
    buf[2] = GENCMD_TAG
    buf[3] = GENCMD_MAX
    raw = bytearray(buf.tobytes())
    raw[24 : 24 + len(text)] = text
    return array.array("I", bytes(raw))


def gencmd_result(buf: "array.array[int]") -> Tuple[int, str]:
    """(error code, response text) from a message the firmware answered."""
    raw = buf.tobytes()
    text = raw[24 : 24 + GENCMD_MAX].split(b"\0", 1)[0].decode("ascii", "replace")
    return int(buf[5]), text


def mailbox_gencmd(command: str, device: str = "/dev/vcio") -> Tuple[int, str]:
    """vcgencmd without vcgencmd: one ioctl on the VideoCore mailbox (needs root)."""
    size = struct.calcsize("P")  # _IOWR(100, 0, char *)
    request = (3 << 30) | (size << 16) | (100 << 8) | 0
    buf = gencmd_buffer(command)
    fd = os.open(device, os.O_RDONLY)
    try:
        fcntl.ioctl(fd, request, buf, True)
    finally:
        os.close(fd)
    return gencmd_result(buf)


def gencmd(
    command: str, runner: Runner = run_command, device: str = "/dev/vcio"
) -> Tuple[Optional[str], str]:
    """(output, source) of a vcgencmd command; output None with the reason as source."""
    tool = _vcgencmd()
    if tool is not None:
        code, out = runner([tool, *command.split()])
        if code == 0:
            return out, "vcgencmd " + command
        why = f"vcgencmd {command} exited with {code}"
    else:
        why = "no vcgencmd (piCore: the rpi-vc extension)"
    if os.path.exists(device):
        try:
            code, out = mailbox_gencmd(command, device)
        except OSError as exc:
            return None, f"{why}; {device}: {exc.strerror}"
        if code == 0:
            return out, "mailbox " + command
        return None, f"{why}; mailbox {command} returned {code}"
    return None, f"{why}; no {device}"


def otp_row(text: str, row: int) -> Optional[int]:
    """Row ``row`` of ``vcgencmd otp_dump`` output (lines like ``17:3020000a``)."""
    for line in text.splitlines():
        key, _, value = line.strip().partition(":")
        if key.strip() == str(row):
            try:
                return int(value.strip(), 16)
            except ValueError:
                return None
    return None


def blconfig(settings: Settings) -> Optional[str]:
    """The bootloader config from the firmware's ``blconfig`` NVMEM copy, if the kernel has it."""
    base = os.path.join(settings.sys, "firmware", "devicetree", "base")
    alias = _read_bytes(os.path.join(base, "aliases", "blconfig"))
    if alias is None:
        return None
    node = os.path.realpath(base + alias.rstrip(b"\0").decode("ascii", "replace"))
    nvmem = os.path.join(settings.sys, "bus", "nvmem", "devices")
    try:
        names = sorted(os.listdir(nvmem))
    except OSError:
        return None
    for name in names:
        if os.path.realpath(os.path.join(nvmem, name, "of_node")) == node:
            data = _read_bytes(os.path.join(nvmem, name, "nvmem"))
            if data is not None:
                return data.rstrip(b"\0\xff").decode("utf-8", "replace")
    return None


def boot_order(config: str) -> str:
    """The BOOT_ORDER that applies to every board ([all] and the top), or the default."""
    value = DEFAULT_BOOT_ORDER
    everywhere = True
    for line in config.splitlines():
        text = line.split("#", 1)[0].strip()
        if text.startswith("["):
            everywhere = text.strip("[]").strip().lower() == "all"
        elif everywhere and text.upper().startswith("BOOT_ORDER") and "=" in text:
            value = text.split("=", 1)[1].strip().lower()
    return value


def has_network(order: str) -> bool:
    digits = order.lower()[2:] if order.lower().startswith("0x") else order.lower()
    return "2" in digits


def report(
    settings: Settings, runner: Runner = run_command, device: str = "/dev/vcio"
) -> Dict[str, Any]:
    """The netboot state: ``enabled`` (True/False/None), ``reason``, and what was read."""
    name = model(settings)
    kind = family(name)
    mode = boot_mode(settings)
    out = {
        "enabled": None,
        "reason": "",
        "model": name or None,
        "boot_mode": BOOT_MODES.get(mode, str(mode)) if mode is not None else None,
        "boot_order": None,
        "otp_row17": None,
        "sources": {},
    }  # type: Dict[str, Any]
    sources = out["sources"]
    if kind == "eeprom":
        config = blconfig(settings)
        source = "blconfig nvmem"
        if config is None:
            config, source = gencmd("bootloader_config", runner, device)
        sources["bootloader_config"] = source
        if config is not None:
            order = boot_order(config)
            out["boot_order"] = order
            out["enabled"] = has_network(order)
            out["reason"] = "BOOT_ORDER={} {}".format(
                order, "includes network (2)" if out["enabled"] else "has no network (2)"
            )
    elif kind == "otp":
        text, source = gencmd("otp_dump", runner, device)
        sources["otp_dump"] = source
        row = otp_row(text, 17) if text is not None else None
        if row is not None:
            out["otp_row17"] = f"{row:08x}"
            out["enabled"] = bool(row >> OTP_NETBOOT_BIT & 1)
            out["reason"] = "OTP 17:{:08x} (bit 29 {})".format(
                row, "set" if out["enabled"] else "not set"
            )
    elif kind == "factory":
        out["enabled"] = True
        out["reason"] = "enabled at the factory (Pi 3B+)"
    elif kind == "none":
        out["enabled"] = False
        out["reason"] = "this model cannot netboot"
    if out["boot_mode"] == "network":
        out["enabled"] = True
        out["reason"] = "booted from the network" + ("; " + out["reason"] if out["reason"] else "")
    if not out["reason"]:
        out["reason"] = "cannot tell: " + (
            "; ".join(str(v) for v in sources.values()) or "not a Raspberry Pi (no model)"
        )
    return out


def cached_or_live(settings: Settings, path: str) -> Dict[str, Any]:
    """The record boot.sh wrote as root (if any), else a live probe (as this user)."""
    data = _read_bytes(path)
    if data:
        try:
            record = json.loads(data.decode("utf-8"))
            if isinstance(record, dict) and "enabled" in record:
                record["probed"] = "at boot (root)"
                return record
        except ValueError:
            pass
    record = report(settings)
    record["probed"] = "live"
    return record


def main(argv: Optional[List[str]] = None) -> int:
    """``python3 -m firecore_app.netboot [--write FILE]``: print or write the report."""
    args = sys.argv[1:] if argv is None else argv
    record = report(Settings.from_env())
    text = json.dumps(record, indent=1, sort_keys=True) + "\n"
    if args[:1] == ["--write"] and len(args) == 2:
        tmp = args[1] + ".tmp"
        with open(tmp, "w") as fh:
            fh.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, args[1])
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
