"""A fake Raspberry Pi's /proc, /sys, tce.installed and build.json for the app's tests, and
overlay files written out as the Pi would see them."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from steps.artifacts import OverlayFile

SERIAL_LINE = "Serial\t\t: 00000000abcdef12\n"


def pi_files(root: Path) -> dict[str, str]:
    """A fake /proc, /sys, tce.installed and build.json of a Pi 3; returns the env for them."""
    proc = root / "proc"
    (proc / "device-tree").mkdir(parents=True)
    (proc / "sys" / "kernel").mkdir(parents=True)
    (proc / "net").mkdir()
    (proc / "cpuinfo").write_text(
        "processor\t: 0\nmodel name\t: ARMv7 Processor rev 4 (v7l)\n"
        "Hardware\t: BCM2835\n" + SERIAL_LINE + "Model\t\t: Raspberry Pi 3 Model B Rev 1.2\n"
    )
    (proc / "device-tree" / "model").write_bytes(b"Raspberry Pi 3 Model B Rev 1.2\x00")
    (proc / "sys" / "kernel" / "osrelease").write_text("6.6.47-piCore-v7\n")
    (proc / "uptime").write_text("3723.45 7000.00\n")
    (proc / "meminfo").write_text(
        "MemTotal:         948304 kB\nMemFree:          700000 kB\nMemAvailable:     800000 kB\n"
    )
    (proc / "loadavg").write_text("0.10 0.20 0.30 1/100 1234\n")
    (proc / "net" / "if_inet6").write_text(
        "fe800000000000000000000000000001 02 40 20 80     eth0\n"
        "00000000000000000000000000000001 01 80 10 80       lo\n"
    )
    thermal = root / "sys" / "class" / "thermal" / "thermal_zone0"
    thermal.mkdir(parents=True)
    (thermal / "temp").write_text("48312\n")
    tce = root / "tce.installed"
    tce.mkdir()
    for name in ("openssh", "python3.11", "openssl"):
        (tce / name).write_text("")
    (root / "build.json").write_text(json.dumps({"build_id": "b1d0c0de", "version": "15.0.0"}))
    return {
        "FIRECORE_PROC": str(proc),
        "FIRECORE_SYS": str(root / "sys"),
        "FIRECORE_TCE_INSTALLED": str(tce),
        "FIRECORE_BUILD_FILE": str(root / "build.json"),
        "FIRECORE_LOG_DIR": str(root / "log"),
        "FIRECORE_NETBOOT_FILE": str(root / "run" / "netboot.json"),
    }


def write_overlay_files(root: Path, files: Iterable[OverlayFile], *, skip: str = "") -> None:
    """Write overlay ``files`` under ``root`` as the kernel would unpack them under ``/``
    (those whose path starts with ``skip``, when given, are left out)."""
    for f in files:
        if skip and f.path.startswith(skip):
            continue
        dest = root / f.path
        if f.is_dir:
            dest.mkdir(parents=True, exist_ok=True)
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(f.data if f.data is not None else f.source.read_bytes())  # type: ignore[union-attr]
        dest.chmod(f.mode)
