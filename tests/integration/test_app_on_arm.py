"""The app answers on an emulated ARM board: a headless build, booted under qemu, end to end.

``firecore-wizard --answers FILE`` (the product, as a subprocess) builds a boot tree from the
fixture mirror — release, extensions, the app with its wheels for the Pi from PyPI (compiled:
pydantic-core, zeroconf, and MarkupSafe for the user app), remaster, network (config written
only), deploy into a temporary TFTP root. Then an emulated board boots what config.txt makes a Pi
of that kind load: ``qemu-system-arm -M virt -cpu cortex-a15`` for armhf, ``qemu-system-aarch64
-M virt -cpu cortex-a57`` for aarch64, the kernel fed the board's initramfs files in config.txt
order with overlay.gz last and unchanged, and cmdline.txt as built. What stands in for piCore's
own parts (kernel, busybox, CPython, the end of tc-config) is described in
tests/support/arm_board.py and the README ("The app on an emulated ARM board").

The host then reaches the app through qemu's user-mode network: ``/health`` (healthy, the
manifest's build id), ``/info``, the boot log (app started as tc), the user app's route that
runs its C extension, and the announcer — its multicast announcements and its answer to a query
sent in through a UDP port forward, both read from qemu's capture of the guest's NIC — and
``steps.status.poll`` (what ``firecore-wizard status`` runs for each Pi) finds it healthy and on
the deployed build.

Each boot is bounded at 3 minutes from power-on (a hang stopper, not a timing assertion;
measured on the 2-core machine: README). ``FIRECORE_ARM_MATRIX=full`` (``make check``) boots
both apps on both architectures; ``make test`` boots each architecture once. The boots share one
xdist group, so ``--dist loadgroup`` runs them one after another on one worker: two emulated
guests at once starve the rest of the suite (and each other) on two cores.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from packaging.utils import parse_wheel_filename

from steps.answers import Answers, default_answers
from steps.answers_toml import dump_answers
from steps.demo.server import MirrorServer
from steps.picore.configtxt import ConfigTxt
from steps.status import Announcement, deployed_build, poll
from steps.wire.netframes import UdpPacket
from tests.support import mdns
from tests.support.arm_board import DATA, GUEST_IP, MDNS_PORT, Board, initrd, running
from tests.support.debian_arm import FOR_PICORE, Kit, KitUnavailable, ensure_kit

pytestmark = pytest.mark.qemu

WIZARD = str(Path(sys.executable).with_name("firecore-wizard"))
USER_APP = DATA / "user_app"
BOOT_BOUND = 180.0  # seconds from power-on to a healthy app, each boot
APP_PORT = 8000
MDNS_GROUP = "224.0.0.251"
SLIRP_HOST = "10.0.2.2"  # the host as the guest sees it (qemu user networking)


@dataclass(frozen=True)
class Case:
    """One release booted on one board with one app."""

    version: str
    arch: str
    board: str
    user_app: bool

    @property
    def id(self) -> str:
        return f"{self.arch}-{self.version}-{'user' if self.user_app else 'bundled'}"


def cases() -> list[Case]:
    """One boot per architecture in ``make test``; every app on every board with ``make check``."""
    if os.environ.get("FIRECORE_ARM_MATRIX") == "full":
        return [
            Case(v, a, b, user)
            for v, a, b in (("15.0.0", "armhf", "pi3"), ("16.0.0", "aarch64", "pi4"))
            for user in (False, True)
        ]
    return [Case("15.0.0", "armhf", "pi3", True), Case("16.0.0", "aarch64", "pi4", False)]


def kit_for(arch: str) -> Kit:
    try:
        return ensure_kit(FOR_PICORE[arch])
    except KitUnavailable as exc:
        if os.environ.get("CI"):
            pytest.fail(f"CI must be able to fetch the Debian {arch} packages: {exc}")
        pytest.skip(f"no Debian {arch} packages reachable (needs apt access): {exc}")


def build_answers(case: Case, base: Path, mirror_url: str) -> Answers:
    """Answers for a complete headless run that touches nothing outside ``base``."""
    a = default_answers()
    a.release.mirrors = [mirror_url]
    a.release.version = case.version
    a.release.arch = case.arch  # type: ignore[assignment]
    a.release.boards = [case.board]  # type: ignore[list-item]
    a.extensions.names = ["openssh.tcz", "python3.11.tcz"]
    a.app.hostname = "firecore"
    a.app.port = APP_PORT
    if case.user_app:
        a.app.path = str(USER_APP)
    a.build.output = str(base / "boot")
    a.build.cache = str(base / "cache")
    a.network.interface = "lo"  # the network step writes its config only (service none)
    a.network.dnsmasq_service = "none"
    a.network.dnsmasq_conf = str(base / "etc" / "firecore.conf")
    a.network.tftp_root = str(base / "tftp")
    a.network.state_dir = str(base / "run")
    a.network.backup_dir = str(base / "backups")
    a.network.probe_seconds = 0
    a.network.preflight_strict = False
    return a


def headless_build(answers: Answers, base: Path) -> list[dict[str, Any]]:
    """``firecore-wizard --answers FILE --json``; its JSON lines (exit 0 asserted)."""
    path = base / "answers.toml"
    path.write_text(dump_answers(answers))
    proc = subprocess.run(
        [WIZARD, "--answers", str(path), "--json"],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=base,
    )
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert proc.returncode == 0, (
        f"headless build failed:\n{proc.stdout[-4000:]}{proc.stderr[-4000:]}"
    )
    assert lines[-1] == {"type": "done", "exit_code": 0}
    return lines


def needs_newer_glibc(wheels: Iterable[str], glibc: tuple[int, int]) -> list[str]:
    """The wheels none of whose manylinux tags runs on ``glibc`` (manylinux2014 = 2.17)."""
    out = []
    for name in wheels:
        needs = []
        for tag in parse_wheel_filename(name)[3]:
            m = re.match(r"manylinux_(\d+)_(\d+)_", tag.platform)
            if m:
                needs.append((int(m.group(1)), int(m.group(2))))
            elif tag.platform.startswith("manylinux2014_"):
                needs.append((2, 17))
            else:
                needs.append((0, 0))  # any, linux_*: no glibc floor in the name
        if min(needs) > glibc:
            out.append(name)
    return out


def get_json(board: Board, path: str) -> dict[str, Any]:
    got = board.get(path)
    assert got is not None, f"{path}: no answer"
    status, body = got
    if status != 200:
        logs = board.get("/logs?name=all&lines=80")
        text = logs[1].decode(errors="replace") if logs else "(no /logs)"
        raise AssertionError(f"{path}: HTTP {status} {body[:300]!r}; the app's logs:\n{text}")
    data = json.loads(body)
    assert isinstance(data, dict)
    return data


@pytest.mark.timeout(900)
@pytest.mark.xdist_group("arm-board")  # one guest at a time (make test: --dist loadgroup)
@pytest.mark.parametrize("case", cases(), ids=lambda c: c.id)
def test_built_overlay_boots_to_a_healthy_app(
    case: Case, mirror_server: MirrorServer, tmp_path: Path
) -> None:
    kit = kit_for(case.arch)
    base = tmp_path
    answers = build_answers(case, base, mirror_server.url)
    events = headless_build(answers, base)
    assert [e["step"] for e in events if e["type"] == "result"] == [
        "release", "extensions", "app", "remaster", "network", "deploy",
    ]  # fmt: skip

    out = Path(answers.build.output)
    manifest = json.loads((out / "manifest.json").read_text())
    build_id = manifest["build_id"]
    deployed = deployed_build(Path(answers.network.tftp_root) / "current" / "manifest.json")
    assert deployed == build_id
    too_new = needs_newer_glibc(manifest["app"]["wheels"], kit.glibc)
    assert not too_new, (
        f"wheels for a newer glibc than the emulated board's {kit.glibc} (the fixture release "
        f"claims a newer one; a real Pi would load them): {too_new}"
    )
    boot = ConfigTxt.parse((out / "config.txt").read_text()).boot_for(case.board)
    assert boot.initramfs[-1] == "overlay.gz"
    cmdline = (out / boot.cmdline).read_text().strip()
    cmdline += f" console=ttyAMA0 panic=-1 firecore.kver={boot.kernel_release}"
    image = initrd(kit, out, boot.initramfs)
    assert image.endswith((out / "overlay.gz").read_bytes())  # the product's bytes, unchanged

    with running(kit, base / "board", image, cmdline, APP_PORT) as board:
        health = board.wait_for(
            "a healthy /health",
            lambda: _healthy(board),
            BOOT_BOUND,
        )
        assert health["build_id"] == build_id
        assert health["hostname"] == "firecore"

        info = get_json(board, "/info")
        assert info["build_id"] == build_id
        assert info["python"].startswith("3.11.")
        assert info["kernel"] == kit.kernel_release
        assert GUEST_IP in info["addresses"]["ipv4"].values()
        # the builtins were loaded at boot (each extension leaves its tce.installed mark)
        assert {"openssh", "python3.11", "openssl"} <= set(info["extensions"])

        status, boot_log = board.get("/logs?name=boot&lines=50") or (0, b"")
        assert status == 200
        assert b"starting app: python3.11 -m firecore_app (as tc)" in boot_log

        if case.user_app:
            compiled = get_json(board, "/compiled")
            assert compiled["machine"] == kit.arch.machine
            assert compiled["escaped"] == "&lt;a &amp; &#39;b&#39;&gt;"
            assert compiled["compiled"] is True
            assert compiled["extension"].startswith("/opt/firecore/site-packages/markupsafe/")
            assert (compiled["uid"], compiled["gid"]) == (1001, 50)  # user tc, group staff
            assert info["app"]["user_app"] == "main:app"

        # mDNS: the announcer multicasts its service on the board's LAN ...
        announced = board.wait_for(
            "an mDNS announcement",
            lambda: _mdns(board, lambda p: p.dst_ip == MDNS_GROUP),
            board.elapsed() + 60.0,
        )
        # ... and answers a query that came in through the UDP forward (sent again each poll)
        query_id = secrets.randbelow(0xFFFF) + 1

        def answer() -> mdns.Announced | None:
            board.send_mdns(mdns.ptr_query(query_id))
            return _mdns(board, lambda p: p.dst_ip == SLIRP_HOST, query_id)

        found = board.wait_for("an answer to the mDNS query", answer, board.elapsed() + 60.0)
        assert found == announced
        assert found.port == APP_PORT
        assert found.addresses == [GUEST_IP]
        assert found.properties["build"] == build_id
        assert found.properties["hostname"] == "firecore"

        # what `firecore-wizard status` concludes for this Pi (reached through the forward)
        seen = Announcement(
            f"{found.instance}.", f"{found.server}.", ("127.0.0.1",), board.http_port,
            found.properties,
        )  # fmt: skip
        pi = poll(seen, "", deployed, threading.Event())
        assert pi.healthy and pi.current, pi
        assert pi.build_id == build_id

        marks = {k: round(v, 1) for k, v in board.marks.items()}
        print(
            f"{case.id} on {kit.arch.qemu} -cpu {kit.arch.cpu}: {_phases(board.console())}, {marks}"
        )


def _healthy(board: Board) -> dict[str, Any] | None:
    got = board.get("/health", timeout=5)
    if got is None or got[0] != 200:
        return None
    data = json.loads(got[1])
    return data if isinstance(data, dict) and data.get("status") == "ok" else None


def _mdns(
    board: Board, where: Callable[[UdpPacket], bool], query_id: int | None = None
) -> mdns.Announced | None:
    """The first firecore instance the guest sent from port 5353 to ``where`` (answering
    ``query_id``, if given), from the capture of its NIC."""
    for pkt in board.captured_udp(MDNS_PORT):
        if pkt.src_ip != GUEST_IP or pkt.sport != MDNS_PORT or not where(pkt):
            continue
        msg_id, found = mdns.decode(pkt.payload)
        if found is not None and found.addresses and query_id in (None, msg_id):
            return found
    return None


def _phases(console: str) -> str:
    """Uptimes the stand-in scripts printed (kernel + /init, tc-config, bootsync)."""
    seen: dict[str, str] = {}
    for line in console.splitlines():
        if line.startswith("init: [") and "started" in line:
            seen.setdefault("/init at", line[len("init: [") :].split("]", 1)[0])
        elif line.startswith("tc-config: ["):
            t = line[len("tc-config: [") :].split("]", 1)[0]
            if "started" in line:
                seen.setdefault("tc-config at", t)
            elif "bootsync.sh done" in line:
                seen.setdefault("bootsync done at", t)
    return ", ".join(f"{k} {v} s" for k, v in seen.items())
