"""Fixed data for the wizard's tests: a ``Services`` whose lookups return fake, stable records.

The lookups still run in the app's thread workers (``StepRunner.load``), so the tests exercise
the real message flow; only what the domain would have fetched from mirrors, interfaces or the
LAN is replaced. Every value is fixed, so snapshots are deterministic.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from steps.answers import Answers
from steps.artifacts import Extension, ReleaseRef
from steps.errors import FirecoreError
from wizard.services import Services
from wizard.views import (
    CardProblem,
    CardTarget,
    Check,
    Closure,
    DnsmasqPreview,
    ExtensionInfo,
    Finding,
    HostCheck,
    InterfaceRow,
    MirrorState,
    ReleaseListing,
    TftpRelease,
    TftpState,
)

RELEASES = (
    ReleaseRef(
        "16.0.0",
        "aarch64",
        "piCore64",
        "piCore64-16.0.0.img.gz",
        "img.gz",
        "16.x/aarch64/release/RPi/piCore64-16.0.0.img.gz",
        False,
        101_000_000,
        "2025-04-12T10:00:00",
    ),
    ReleaseRef(
        "15.0.0",
        "armhf",
        "piCore",
        "piCore-15.0.0.zip",
        "zip",
        "15.x/armhf/releases/RPi/piCore-15.0.0.zip",
        False,
        96_000_000,
        "2024-09-02T08:30:00",
    ),
    ReleaseRef(
        "15.0.0-beta2",
        "aarch64",
        "piCore64",
        "piCore64-15.0.0-beta2.zip",
        "zip",
        "15.x/aarch64/test_releases/RPi/piCore64-15.0.0-beta2.zip",
        True,
        98_000_000,
        "2024-06-20T12:00:00",
    ),
    ReleaseRef(
        "12.0",
        "armv7",
        "piCore",
        "piCore-12.0.zip",
        "zip",
        "12.x/armv7/releases/RPi/piCore-12.0.zip",
        False,
        62_000_000,
        "2020-09-19T09:00:00",
    ),
)

INDEX = (
    ExtensionInfo("openssh.tcz", 1_100_000, "OpenSSH client and server"),
    ExtensionInfo("openssl.tcz", 2_400_000, "OpenSSL libraries and tools"),
    ExtensionInfo("python3.11.tcz", 11_000_000, "Python 3.11 interpreter"),
    ExtensionInfo("python3.11-pip.tcz", 2_000_000, "pip for Python 3.11"),
    ExtensionInfo("nano.tcz", 200_000, "Small friendly text editor"),
    ExtensionInfo("curl.tcz", 300_000, "Command line URL tool"),
    ExtensionInfo("ca-certificates.tcz", 150_000, "Mozilla CA certificates"),
)

DEPS: dict[str, tuple[str, ...]] = {
    "openssh.tcz": ("openssl.tcz",),
    "python3.11.tcz": ("openssl.tcz", "ca-certificates.tcz"),
    "curl.tcz": ("openssl.tcz", "ca-certificates.tcz"),
}


def fake_closure(names: list[str]) -> Closure:
    """The closure of ``names`` over ``DEPS`` with "why" chains (dependencies first)."""
    sizes = {e.name: e.size for e in INDEX}
    order: list[Extension] = []
    seen: set[str] = set()

    def visit(name: str, chain: tuple[str, ...]) -> None:
        if name in seen:
            return
        seen.add(name)
        for dep in DEPS.get(name, ()):
            visit(dep, (*chain, dep))
        order.append(Extension(name, DEPS.get(name, ()), chain, sizes.get(name)))

    for name in names:
        visit(name, (name,))
    total = sum(p.size or 0 for p in order)
    return Closure(tuple(order), total, total * 3, "RAM ≈ 3 × download size (squashfs, xz)")


@dataclass
class FakeServices(Services):
    """Deterministic lookups; ``fail`` makes the named lookup raise that error."""

    fail: dict[str, FirecoreError] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    installed_conf: str | None = None
    tftp: TftpState | None = None
    rolled_back: list[str] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)
    targets: dict[str, CardTarget] = field(default_factory=dict)
    """Devices the write dialog's Check describes (others: the real inspection)."""

    def _call(self, name: str) -> None:
        self.calls.append(name)
        if name in self.fail:
            raise self.fail[name]

    def host_checks(self) -> list[HostCheck]:
        self._call("host_checks")
        return [
            HostCheck("mcopy", True, "/usr/bin/mcopy", "", "build"),
            HostCheck("dnsmasq", False, "not installed", "apt-get install dnsmasq-base", "network"),
            HostCheck("privileges", True, "root", "", "network, self-test"),
        ]

    def releases(self, answers: Answers, cancel: threading.Event) -> ReleaseListing:
        self._call("releases")
        return ReleaseListing(
            RELEASES,
            (
                MirrorState("http://mirror.test/", True, "answered"),
                MirrorState("http://backup.test/", False, "not asked"),
            ),
        )

    def extension_index(self, answers: Answers, cancel: threading.Event) -> list[ExtensionInfo]:
        self._call("extension_index")
        return list(INDEX)

    def closure(self, answers: Answers, cancel: threading.Event) -> Closure:
        self._call("closure")
        return fake_closure(list(answers.extensions.names))

    def app_checks(self, answers: Answers, cancel: threading.Event) -> list[Check]:
        self._call("app_checks")
        return [
            Check("entry point", True, "bundled app: firecore_app.main:app"),
            Check("wheels", True, "2 packages for cp311 manylinux2014_armv7l"),
        ]

    def interfaces(self, answers: Answers) -> list[InterfaceRow]:
        self._call("interfaces")
        return [
            InterfaceRow(
                "eth0", ("192.168.1.10/24",), "wired", True, "00:11:22:33:44:55", (), True
            ),
            InterfaceRow(
                "wlan0",
                ("10.0.0.5/24",),
                "wireless",
                True,
                "00:11:22:33:44:66",
                ("wireless: Pis netboot over Ethernet only",),
            ),
            InterfaceRow(
                "docker0",
                ("172.17.0.1/16",),
                "bridge",
                False,
                "02:42:ac:11:00:01",
                ("bridge: make sure the Pis' port is a member",),
            ),
        ]

    def preflight(self, answers: Answers, cancel: threading.Event) -> list[Finding]:
        self._call("preflight")
        return list(self.findings)

    def dnsmasq_preview(self, answers: Answers) -> DnsmasqPreview:
        self._call("dnsmasq_preview")
        iface = answers.network.interface
        new = (
            "# generated by firecore-wizard\n"
            "port=0\n"
            f"interface={iface}\n"
            "bind-dynamic\n"
            f"dhcp-range=tag:{iface},192.168.1.10,proxy\n"
            'pxe-service=0,"Raspberry Pi Boot"\n'
            "enable-tftp\n"
            f"tftp-root={answers.network.tftp_root}/current\n"
        )
        return DnsmasqPreview(answers.network.dnsmasq_conf, new, self.installed_conf)

    def router_preview(self, answers: Answers) -> DnsmasqPreview:
        self._call("router_preview")
        where = f"{answers.deploy.target or 'router'}:/etc/config/dhcp"
        before = "config dnsmasq\n\toption domain 'lan'\n"
        return DnsmasqPreview(where, before + "\toption enable_tftp '1'\n", before)

    def tftp_state(self, answers: Answers) -> TftpState:
        self._call("tftp_state")
        if self.tftp is not None:
            return self.tftp
        return TftpState(
            answers.network.tftp_root,
            (
                TftpRelease("20250102T101500-3f2a9c1d", True, "3f2a9c1d", 41),
                TftpRelease("20250101T090000-0badc0de", False, "0badc0de", 41),
            ),
        )

    def rollback(self, answers: Answers) -> str:
        self._call("rollback")
        self.rolled_back.append(answers.network.tftp_root)
        return "20250101T090000-0badc0de"

    def card_devices(self) -> list[CardTarget]:
        self._call("card_devices")
        return [CardTarget("/dev/sdb", "/dev/sdb (SanDisk Ultra, 31.9 GB, USB, removable)")]

    def card_target(self, image: str, device: str) -> CardTarget:
        self._call("card_target")
        if device in self.targets:
            return self.targets[device]
        return super().card_target(image, device)


#: Pis as the status step reports them (``PiStatus.to_data()`` shape).
PIS_DATA: list[dict[str, Any]] = [
    {
        "name": "firecore-9ffefdef",
        "serial": "9ffefdef",
        "hostname": "firecore",
        "model": "Raspberry Pi 4 Model B",
        "ip": "192.168.1.51",
        "build_id": "3f2a9c1d",
        "current": True,
        "healthy": True,
        "uptime": 723.0,
        "netboot_text": "on (booted from the network; BOOT_ORDER=0xf21 includes network (2))",
    },
    {
        "name": "kiosk-1a2b3c4d",
        "serial": "1a2b3c4d",
        "hostname": "kiosk",
        "model": "Raspberry Pi 3 Model B+",
        "ip": "192.168.1.52",
        "build_id": "0badc0de",
        "current": False,
        "healthy": True,
        "uptime": 10904.0,
        "netboot_text": "on (enabled at the factory (Pi 3B+))",
    },
    {
        "name": "firecore-deadbeef",
        "serial": "deadbeef",
        "hostname": "firecore",
        "model": "Raspberry Pi 4 Model B",
        "ip": "192.168.1.53",
        "build_id": None,
        "current": None,
        "healthy": False,
        "error": "timeout",
        "uptime": None,
    },
]

#: A self-test that passed every stage (the selftest JSON stage shape).
STAGES_OK: list[dict[str, Any]] = [
    {"stage": "dhcp-offer", "ok": True, "message": "offer from 192.168.1.1: 192.168.1.77"},
    {"stage": "proxy-offer", "ok": True, "message": "Raspberry Pi Boot from 192.168.1.10"},
    {"stage": "lease", "ok": True, "message": "192.168.1.77"},
    {"stage": "bootcode.bin", "ok": True, "message": "52 456 bytes, sha256 matches"},
    {"stage": "config.txt", "ok": True, "message": "1 203 bytes, sha256 matches"},
    {
        "stage": "overlay.gz",
        "ok": False,
        "code": "tftp-file-not-found",
        "message": "the server answered File not found",
    },
]

#: What the prepare step reports for a Pi 4 EEPROM card (``PreparedCard.to_data()`` shape).
PI4_CARD: dict[str, Any] = {
    "model": "pi4",
    "title": "Raspberry Pi 4 Model B",
    "action": "eeprom-card",
    "why": "The Raspberry Pi 4 Model B netboots from its EEPROM bootloader …",
    "note": "",
    "instructions": [
        "Write the card: firecore-wizard write-image /cards/firecore-pi4-eeprom-1b6018a08f4e.img"
        " --device /dev/sdX",
        "Put the card in the Raspberry Pi 4 Model B, power it on and wait at least 10 seconds.",
    ],
    "check": "firecore-wizard status: its netboot column reads 'enabled (BOOT_ORDER=0xf21)'.",
    "image": "/cards/firecore-pi4-eeprom-1b6018a08f4e.img",
    "sha256": "9d4e" * 16,
    "directory": "/cards/pi4-eeprom",
    "files": {},
    "settings": {"BOOT_ORDER": "0xf21"},
}

#: Devices the write dialog may be shown: one refused outright, one Force may override.
MOUNTED = CardTarget(
    "/dev/sdc",
    "/dev/sdc (Generic Flash Disk, 15.5 GB, USB, removable)",
    (CardProblem("/dev/sdc is in use: mounted at /media/x", "unmount it first"),),
)
INTERNAL = CardTarget(
    "/dev/sda",
    "/dev/sda (Samsung SSD, 500.1 GB)",
    (
        CardProblem("/dev/sda is not a removable device", "pass --force if sure", True),
        CardProblem("/dev/sda is 500.1 GB, larger than a card would be", "check it", True),
    ),
)
