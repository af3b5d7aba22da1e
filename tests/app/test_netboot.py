"""The app's netboot report: OTP row 17, the bootloader config, the boot mode, degrading."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
from firecore_app import netboot, sysinfo
from firecore_app.settings import Settings

from tests.support.pifiles import pi_files

FAKE_VCGENCMD = """#!/bin/sh
case "$1" in
  otp_dump) printf '16:00280000\\n17:%s\\n18:%s\\n' "$OTP17" "$OTP17" ;;
  bootloader_config) printf '[all]\\nBOOT_UART=0\\nBOOT_ORDER=%s\\n' "$ORDER" ;;
  *) exit 2 ;;
esac
"""


@pytest.fixture
def pi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Settings]:
    """A fake Pi 3B, and a PATH without vcgencmd (the test adds a stand-in when it wants)."""
    env = pi_files(tmp_path)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    monkeypatch.setattr(netboot, "_VCGENCMD_DIRS", ())
    return tmp_path, Settings.from_env(env)


def with_vcgencmd(root: Path, monkeypatch: pytest.MonkeyPatch, **env: str) -> None:
    tool = root / "bin" / "vcgencmd"
    tool.write_text(FAKE_VCGENCMD)
    tool.chmod(0o755)
    for key, value in env.items():
        monkeypatch.setenv(key, value)


def set_model(root: Path, model: str, mode: int | None = None) -> None:
    dt = root / "proc" / "device-tree"
    (dt / "model").write_bytes(model.encode() + b"\0")
    if mode is not None:
        (dt / "chosen" / "bootloader").mkdir(parents=True, exist_ok=True)
        (dt / "chosen" / "bootloader" / "boot-mode").write_bytes(struct.pack(">I", mode))


def report(settings: Settings, root: Path) -> dict:
    result: dict = netboot.report(settings, device=str(root / "no-vcio"))
    return result


@pytest.mark.parametrize(("otp", "enabled"), [("3020000a", True), ("1020000a", False)])
def test_pi3b_reads_otp_row_17(
    pi: tuple[Path, Settings], monkeypatch: pytest.MonkeyPatch, otp: str, enabled: bool
) -> None:
    root, settings = pi
    set_model(root, "Raspberry Pi 3 Model B Rev 1.2", mode=1)
    with_vcgencmd(root, monkeypatch, OTP17=otp)
    r = report(settings, root)
    assert r["enabled"] is enabled and r["otp_row17"] == otp
    assert r["reason"] == f"OTP 17:{otp} (bit 29 {'set' if enabled else 'not set'})"
    assert r["boot_mode"] == "sd" and r["sources"]["otp_dump"] == "vcgencmd otp_dump"


def test_pi3b_without_tools_says_why(pi: tuple[Path, Settings]) -> None:
    root, settings = pi
    r = report(settings, root)
    assert r["enabled"] is None and r["otp_row17"] is None
    assert r["reason"].startswith("cannot tell: no vcgencmd (piCore: the rpi-vc extension)")
    assert "no-vcio" in r["reason"]


@pytest.mark.parametrize(("order", "enabled"), [("0xf21", True), ("0xf41", False)])
def test_pi4_reads_the_bootloader_config(
    pi: tuple[Path, Settings], monkeypatch: pytest.MonkeyPatch, order: str, enabled: bool
) -> None:
    root, settings = pi
    set_model(root, "Raspberry Pi 4 Model B Rev 1.4", mode=1)
    with_vcgencmd(root, monkeypatch, ORDER=order)
    r = report(settings, root)
    assert r["enabled"] is enabled and r["boot_order"] == order
    assert r["sources"]["bootloader_config"] == "vcgencmd bootloader_config"


def test_pi5_reads_the_blconfig_nvmem_copy_without_vcgencmd(pi: tuple[Path, Settings]) -> None:
    root, settings = pi
    set_model(root, "Raspberry Pi 5 Model B Rev 1.0", mode=2)
    base = root / "sys" / "firmware" / "devicetree" / "base"
    node = base / "reserved-memory" / "nvram@0"
    node.mkdir(parents=True)
    (base / "aliases").mkdir()
    (base / "aliases" / "blconfig").write_bytes(b"/reserved-memory/nvram@0\0")
    dev = root / "sys" / "bus" / "nvmem" / "devices" / "rmem0"
    dev.mkdir(parents=True)
    (dev / "of_node").symlink_to(node)
    (dev / "nvmem").write_bytes(
        b"[all]\nBOOT_UART=1\n[pi5]\nBOOT_ORDER=0xf14\n[all]\nBOOT_ORDER=0xf21\n" + b"\0" * 64
    )
    r = report(settings, root)
    assert r["enabled"] is True and r["boot_order"] == "0xf21" and r["boot_mode"] == "network"
    assert r["reason"] == "booted from the network; BOOT_ORDER=0xf21 includes network (2)"
    assert r["sources"]["bootloader_config"] == "blconfig nvmem"


@pytest.mark.parametrize(
    ("model", "enabled", "reason"),
    [
        ("Raspberry Pi 3 Model B Plus Rev 1.3", True, "enabled at the factory (Pi 3B+)"),
        ("Raspberry Pi Zero W Rev 1.1", False, "this model cannot netboot"),
        ("Raspberry Pi 2 Model B Rev 1.1", False, "this model cannot netboot"),
    ],
)
def test_models_decided_by_their_name(
    pi: tuple[Path, Settings], model: str, enabled: bool, reason: str
) -> None:
    root, settings = pi
    set_model(root, model)
    r = report(settings, root)
    assert r["enabled"] is enabled and r["reason"] == reason


def test_gencmd_mailbox_message_layout() -> None:
    buf = netboot.gencmd_buffer("otp_dump")
    raw = buf.tobytes()
    words = len(buf)
    assert words == 6 + 1024 // 4 + 1 and buf[0] == words * 4
    assert buf[1] == 0 and buf[2] == 0x00030080 and buf[3] == 1024 and buf[4] == buf[5] == 0
    assert raw[24:33] == b"otp_dump\0" and buf[-1] == 0
    # what the firmware writes back: the response text over the command, the error code in [5]
    answered = bytearray(raw)
    answered[24 : 24 + 12] = b"17:3020000a\0"
    answered[20:24] = bytes(4)  # error slot: 0
    code, text = netboot.gencmd_result(netboot.array.array("I", bytes(answered)))
    assert (code, text) == (0, "17:3020000a")


def test_info_prefers_the_record_boot_sh_wrote_as_root(
    pi: tuple[Path, Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    root, settings = pi
    live = sysinfo.info(settings, 0.0)["netboot"]
    assert live["probed"] == "live" and live["enabled"] is None
    set_model(root, "Raspberry Pi 3 Model B Rev 1.2")
    with_vcgencmd(root, monkeypatch, OTP17="3020000a")
    monkeypatch.setenv("FIRECORE_PROC", settings.proc)
    monkeypatch.setenv("FIRECORE_SYS", settings.sys)
    record = Path(settings.netboot_file)
    record.parent.mkdir()
    assert netboot.main(["--write", str(record)]) == 0  # what boot.sh runs, as root
    monkeypatch.setenv("PATH", "/usr/bin:/bin")  # the app's user has no vcgencmd
    info = sysinfo.info(settings, 0.0)["netboot"]
    assert info["enabled"] is True and info["otp_row17"] == "3020000a"
    assert info["probed"] == "at boot (root)"
    assert json.loads(record.read_text())["reason"] == "OTP 17:3020000a (bit 29 set)"
