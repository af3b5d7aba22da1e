"""End to end in network namespaces: our server, a home router, virtual Pis.

The server namespace runs the tool headless with its own ``eth0`` — the network step (config
rendered, ``dnsmasq --test``, installed, dnsmasq started in ``process`` mode) and the deploy step
(release published, per-device trees, ``current`` switched) — and the Pi namespace runs
``firecore-wizard selftest`` as a subprocess, which boots an emulated Pi 3, Pi 4 and Pi 5 to the
last byte of the last initramfs file (and the kernel, which start.elf reads last). Every file a
virtual Pi receives is compared with the bytes that were built. Per-device trees by serial and,
for a Pi 4/5 with TFTP_PREFIX=2, by MAC.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from steps import deploy
from steps.answers import Answers, Profile, default_answers
from steps.answers_toml import dump_answers
from steps.base import StepContext
from steps.host import tftproot
from steps.wire.virtualpi import BootOptions, BootReport, VirtualPi
from tests.conftest import needs_root
from tests.support import json_lines
from tests.support.boot_tree import make_build
from tests.support.lab import Host, Lab
from tests.support.netboot_lab import BootLan, boot_lan, in_netns
from tests.support.wheelhouse import service_wheels

pytestmark = pytest.mark.netns

WIZARD = str(Path(sys.executable).with_name("firecore-wizard"))
SERIAL_KIOSK = "9ffefdef"  # Pi 4, profile kiosk: its own kernel and profile overlay
SERIAL_LAB = "2caf9c61"  # Pi 3, profile lab
SERIAL_UNKNOWN = "0badc0de"  # not in deploy.devices: the shared tree
SERIAL_PI5 = "d04170aa"  # Pi 5, profile lab by serial
SERIAL_BY_MAC = "6a7c0001"  # Pi 4 with TFTP_PREFIX=2: its tree is named by its MAC
MAC_PI4 = "dc:a6:32:7c:00:01"  # the virtual Pi 4's MAC for SERIAL_BY_MAC (OUI + serial's end)
PROFILES = {"kiosk": ["kernel kernel_alt.img"], "lab": []}


@dataclass
class Server:
    """The running netboot server of this module."""

    lab: Lab
    srv: Host
    pi: Host
    answers: Answers
    answers_file: Path
    base: Path
    files: dict[str, bytes]
    """What the build holds (relative path → bytes)."""

    def wizard(
        self, host: Host, *args: str, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        result = host.run([WIZARD, *args], check=False, timeout=120)
        if check and result.returncode != 0:
            raise AssertionError(
                f"firecore-wizard {' '.join(args)} → {result.returncode}\n"
                f"{result.stdout}\n{result.stderr}"
            )
        return result

    def selftest(self, model: str, serial: str, *extra: str) -> tuple[int, list[dict[str, Any]]]:
        result = self.wizard(
            self.pi,
            "selftest",
            "--interface",
            "eth0",
            "--model",
            model,
            "--serial",
            serial,
            "--answers",
            str(self.answers_file),
            "--json",
            *extra,
            check=False,
        )
        return result.returncode, json_lines(result.stdout)


def public_dir() -> Path:
    """A directory dnsmasq can read after dropping to nobody (pytest's tmp is 0700)."""
    path = Path(tempfile.mkdtemp(prefix="fwt-e2e-", dir="/tmp"))
    path.chmod(0o755)
    return path


def server_answers(base: Path) -> Answers:
    a = default_answers()
    a.build.output = str(base / "build")
    a.build.cache = str(base / "cache")
    a.network.interface = "eth0"
    a.network.tftp_root = str(base / "tftp")
    a.network.dnsmasq_conf = str(base / "etc" / "firecore.conf")
    a.network.dnsmasq_service = "process"
    a.network.state_dir = str(base / "run")
    a.network.backup_dir = str(base / "backups")
    a.network.probe_seconds = 1.0
    a.deploy.profiles = {name: Profile() for name in PROFILES}
    a.deploy.devices = {
        SERIAL_KIOSK: "kiosk",
        SERIAL_LAB: "lab",
        SERIAL_PI5: "lab",
        MAC_PI4: "kiosk",  # stored as dc-a6-32-7c-00-01, the directory the Pi asks for
    }
    return a


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    needs_root()
    base = public_dir()
    tmp = tmp_path_factory.mktemp("router")
    try:
        answers = server_answers(base)
        files = make_build(
            Path(answers.build.output),
            profiles=PROFILES,
            extra={"kernel_alt.img": os.urandom(64_000)},
        )
        answers_file = base / "answers.toml"
        answers_file.write_text(dump_answers(answers))
        with Lab() as lab:
            lan = boot_lan(lab, tmp, pi_mac="b8:27:eb:00:00:01")
            s = Server(lab, lan.srv, lan.pi, answers, answers_file, base, files)
            # the tool, headless, inside the server namespace: network step, then deploy step
            s.wizard(lan.srv, "dnsmasq", "apply", "--answers", str(answers_file))
            s.wizard(lan.srv, "deploy", "--answers", str(answers_file))
            yield s
    finally:
        shutil.rmtree(base, ignore_errors=True)


def expected_bytes(s: Server, requested: str) -> bytes:
    """What the build says a Pi should receive for a requested path."""
    device, _, rest = requested.partition("/")
    if rest and device in s.answers.deploy.devices:
        profile = s.answers.deploy.devices[device]
        return s.files.get(f"profiles/{profile}/{rest}", s.files.get(rest, b"<absent>"))
    return s.files[requested]


def test_the_server_is_what_the_headless_run_left(server: Server) -> None:
    conf = Path(server.answers.network.dnsmasq_conf).read_text()
    assert "dhcp-range=tag:eth0,10.99.0.1,proxy" in conf
    assert f"tftp-root={server.answers.network.tftp_root}/current" in conf
    pid = int((server.base / "run" / "dnsmasq.pid").read_text())
    assert Path(f"/proc/{pid}").exists()  # dnsmasq kept running after the wizard exited
    assert tftproot.current_release(Path(server.answers.network.tftp_root)) is not None


DASHED = MAC_PI4.replace(":", "-")


@pytest.mark.parametrize(
    ("model", "serial", "prefix", "kernel", "initramfs"),
    [
        ("pi3", SERIAL_UNKNOWN, "", "kernel6647v7.img", "overlay.gz"),
        ("pi4", SERIAL_UNKNOWN, "", "kernel6647v8.img", "overlay.gz"),
        ("pi5", SERIAL_UNKNOWN, "", "kernel6647v8.img", "overlay.gz"),
        ("pi4", SERIAL_KIOSK, f"{SERIAL_KIOSK}/", "kernel_alt.img", "pi.gz"),
        ("pi3", SERIAL_LAB, f"{SERIAL_LAB}/", "kernel6647v7.img", "pi.gz"),
        ("pi5", SERIAL_PI5, f"{SERIAL_PI5}/", "kernel6647v8.img", "pi.gz"),
        ("pi4", SERIAL_BY_MAC, f"{DASHED}/", "kernel_alt.img", "pi.gz"),
    ],
)
def test_virtual_pis_boot_to_the_last_initramfs_byte_identically(
    server: Server, model: str, serial: str, prefix: str, kernel: str, initramfs: str
) -> None:
    by_mac = prefix == f"{DASHED}/"
    code, lines = server.selftest(model, serial, *(["--tftp-prefix", "mac"] if by_mac else []))
    stages = [o for o in lines if o["type"] == "stage"]
    summary = lines[-1]
    assert code == 0, json.dumps(lines, indent=1)
    assert summary["type"] == "summary" and summary["ok"] is True
    assert all(o["ok"] for o in stages)
    assert [o["stage"] for o in stages[:4]] == ["dhcp-offer", "proxy-offer", "lease", "arp"]
    complete = {o["file"]: o for o in stages if o.get("status") == "complete"}
    assert complete, stages
    for name, o in complete.items():
        import hashlib

        assert o["sha256"] == hashlib.sha256(expected_bytes(server, name)).hexdigest(), name
    # every byte of the last initramfs file arrived; start.elf reads the kernel last
    last = complete[f"{prefix}{initramfs}"]
    assert last["bytes"] == last["tsize"] == len(expected_bytes(server, f"{prefix}{initramfs}"))
    assert stages[-1]["file"] == f"{prefix}{kernel}" and stages[-1]["status"] == "complete"
    client = summary["clients"][0]
    assert client["model"] == model and client["serial"] == serial
    assert client["stage"] == "complete" and client["ip"].startswith("10.99.0.")
    files = [o["file"] for o in stages[4:]]
    if model == "pi4":
        own = DASHED if by_mac else serial
        assert stages[4]["file"] == f"{own}/start4.elf"
        assert stages[4]["status"] == ("probe" if prefix else "not-found")
        assert complete[f"{prefix}start4.elf"]["blksize"] == 1468
    elif model == "pi5":
        assert stages[4]["file"] == f"{serial}/config.txt"  # no bootcode.bin, no start*.elf
        assert not any(f.endswith((".elf", "bootcode.bin")) for f in files)
        assert f"{prefix}pieeprom.sig" in files and f"{prefix}bcm2712-rpi-5-b.dtb" in complete
        assert complete[f"{prefix}{initramfs}"]["blksize"] == 1468
    else:
        assert stages[4]["file"] == "bootcode.bin" and stages[4]["blksize"] == 512


def test_profiles_differ_per_device(server: Server) -> None:
    cur = Path(server.answers.network.tftp_root) / "current"
    kiosk = (cur / SERIAL_KIOSK / "pi.gz").read_bytes()
    lab = (cur / SERIAL_LAB / "pi.gz").read_bytes()
    assert kiosk != lab
    assert b"kernel_alt.img" in (cur / SERIAL_KIOSK / "config.txt").read_bytes()
    assert not (cur / SERIAL_UNKNOWN).exists()


def test_selftest_human_output_and_exit_code(server: Server) -> None:
    result = server.wizard(
        server.pi,
        "selftest",
        "--interface",
        "eth0",
        "--model",
        "pi4",
        "--answers",
        str(server.answers_file),
    )
    lines = result.stdout.splitlines()
    assert lines[0].startswith("PASS dhcp-offer")
    assert all(line.startswith("PASS ") for line in lines[:-1])
    assert "booted" in lines[-1]


# ------------------------------------------------------------- atomic deploy under load


def test_deploy_and_rollback_under_load_never_serve_a_mixed_file(server: Server) -> None:
    """Virtual Pis boot in a loop while releases are deployed and rolled back."""
    answers = server.answers.model_copy(deep=True)
    answers.deploy.keep = 100  # keep every release: the original is restored at the end
    root = Path(answers.network.tftp_root)
    original = tftproot.current_release(root)
    work = server.base / "load"
    manifests: dict[str, dict[str, Any]] = {}

    def remember() -> None:
        for info in tftproot.list_releases(root):
            m = tftproot.read_manifest(info.path / "manifest.json")
            assert m is not None
            manifests.setdefault(info.id, m)

    remember()
    builds = []
    for n in range(2):
        out = work / f"build{n}"
        make_build(
            out,
            salt=f"load{n}",
            profiles=PROFILES,
            extra={"kernel_alt.img": os.urandom(64_000)},
        )
        builds.append(out)

    stop = threading.Event()
    reports: list[BootReport] = []
    errors: list[BaseException] = []

    def booter(model: str, serial: str) -> None:
        try:
            with in_netns(server.pi):
                while not stop.is_set():
                    pi = VirtualPi(
                        "eth0",
                        model=model,  # type: ignore[arg-type]
                        serial=serial,
                        options=BootOptions(settle=0.2),
                    )
                    report = pi.new_report()
                    for _ in pi.boot(report):
                        pass
                    reports.append(report)
        except BaseException as exc:  # surfaced in the main thread
            errors.append(exc)

    threads = [
        threading.Thread(target=booter, args=("pi4", SERIAL_KIOSK)),
        threading.Thread(target=booter, args=("pi4", SERIAL_UNKNOWN)),
    ]
    for t in threads:
        t.start()
    switches = 0
    try:
        # switch until both Pis have booted a few times across switches (a slow machine boots
        # fewer Pis per second, so the goal is counted, not timed; the bound stops a hang)
        deadline = time.monotonic() + 240
        while switches < 10 or len(reports) < 4:
            assert time.monotonic() < deadline and not errors, (switches, len(reports), errors)
            answers.build.output = str(builds[switches % 2])
            list(deploy.DeployStep().run(StepContext(answers=answers)))
            remember()
            time.sleep(0.05)
            deploy.rollback(answers)
            switches += 2
            time.sleep(0.05)
    finally:
        stop.set()
        for t in threads:
            t.join(60)
        deploy.rollback(answers, to=original)
    assert not errors, errors
    assert switches >= 10
    checked = 0
    for report in reports:
        assert report.ok, [(s.stage, s.message) for s in report.stages if not s.ok]
        for st in report.stages:
            if st.status != "complete":
                continue
            candidates = {m["files"].get(st.file, {}).get("sha256") for m in manifests.values()}
            assert st.sha256 in candidates, f"{st.file} matches no release"
            checked += 1
    assert len(reports) >= 4 and checked > 40


# -------------------------------------------------------------------- failure diagnosis


def fast() -> BootOptions:
    """One DHCP round, short TFTP retries: these boots are expected to fail at a known stage.

    The windows are still far longer than a reply takes on a loaded machine (milliseconds): a
    boot that fails because an answer was late would name the wrong stage.
    """
    return BootOptions(
        dhcp_attempts=1, dhcp_window=3.0, settle=0.5, tftp_timeout=1.0, tftp_retries=2
    )


def boot(
    host: Host, model: str = "pi3", serial: str = SERIAL_UNKNOWN, opts: BootOptions | None = None
) -> BootReport:
    pi = VirtualPi("eth0", model=model, serial=serial, options=opts or fast())  # type: ignore[arg-type]
    report = pi.new_report()
    with in_netns(host):
        for _ in pi.boot(report):
            pass
    return report


def failed(report: BootReport) -> tuple[str | None, str]:
    bad = [s for s in report.stages if not s.ok]
    assert bad, "expected a failed stage"
    return bad[0].code, bad[0].message


def test_missing_file_is_named(server: Server) -> None:
    root = Path(server.answers.network.tftp_root)
    rel = root / "current" / "fixup.dat"
    data = rel.read_bytes()
    os.rename(rel, rel.with_name(".fixup.dat.aside"))
    try:
        code, message = failed(boot(server.pi))
    finally:
        os.rename(rel.with_name(".fixup.dat.aside"), rel)
    assert code == "tftp-file-not-found" and "fixup.dat" in message
    assert rel.read_bytes() == data


def test_unreadable_file_is_access_denied(server: Server) -> None:
    rel = Path(server.answers.network.tftp_root) / "current" / "start.elf"
    rel.chmod(0o600)
    try:
        code, message = failed(boot(server.pi))
    finally:
        rel.chmod(0o644)
    assert code == "tftp-access-denied" and "start.elf" in message


def test_missing_initramfs(server: Server) -> None:
    rel = Path(server.answers.network.tftp_root) / "current" / "rootfs-piCore-15.0.gz"
    os.rename(rel, rel.with_name(".aside"))
    try:
        code, message = failed(boot(server.pi, "pi4"))
    finally:
        os.rename(rel.with_name(".aside"), rel)
    assert code == "initramfs-missing" and "rootfs-piCore-15.0.gz" in message


def test_changed_file_fails_the_manifest_check(server: Server) -> None:
    root = Path(server.answers.network.tftp_root)
    manifest = tftproot.read_manifest(root / "current" / "manifest.json")
    manifest_file = server.base / "old-manifest.json"
    assert manifest is not None
    manifest["files"]["config.txt"]["sha256"] = "0" * 64
    manifest_file.write_text(json.dumps(manifest))
    result = server.wizard(
        server.pi,
        "selftest",
        "--interface",
        "eth0",
        "--manifest",
        str(manifest_file),
        "--json",
        check=False,
    )
    lines = json_lines(result.stdout)
    bad = [o for o in lines if o["type"] == "stage" and not o["ok"]]
    assert result.returncode == 1
    assert bad[0]["stage"] == "tftp:config.txt" and bad[0]["code"] == "manifest-mismatch"
    assert bad[0]["fix"] and lines[-1] == {**lines[-1], "type": "summary", "ok": False}


def test_no_proxy_running(lan: BootLan) -> None:
    pi = lan.pi  # our server is there, but runs no proxy
    report = boot(pi)
    pi.add_address("10.99.0.50/24")  # now it looks like a server host
    with_address = boot(pi)
    code, message = failed(report)
    assert code == "no-proxy-offer" and "option 43" in message
    assert "another machine" not in message
    assert "run the self-test from another machine" in failed(with_address)[1]
    assert [s.stage for s in report.stages] == ["dhcp-offer", "proxy-offer"]
    assert report.stages[0].ok  # the router did answer


def test_selftest_without_root_privileges_is_a_usage_error() -> None:
    needs_root()
    # root without CAP_NET_RAW (a plain user has none either)
    result = subprocess.run(
        ["setpriv", "--bounding-set=-net_raw", WIZARD, "selftest", "--interface", "lo"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "needs root" in result.stderr and "Traceback" not in result.stderr


def test_unknown_interface_is_a_usage_error() -> None:
    needs_root()
    result = subprocess.run(
        [WIZARD, "selftest", "--interface", "nosuch0"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2 and "nosuch0" in result.stderr


# ------------------------------------------------------------ the whole plan, headless

MIRROR_SERVER = """
import sys, threading
from pathlib import Path
from steps.demo.server import MirrorServer
server = MirrorServer(Path(sys.argv[1])).start()
print(server.url, flush=True)
threading.Event().wait()
"""


def test_full_headless_plan_in_the_server_namespace_boots_virtual_pis(
    fake_mirror: Any, tmp_path: Path
) -> None:
    """``firecore-wizard --answers`` (every step of the plan) leaves a server Pis boot from."""
    needs_root()
    base = public_dir()
    try:
        answers = server_answers(base)
        answers.release.version = "15.0.0"
        answers.release.arch = "armhf"
        answers.release.boards = ["pi3", "pi4", "pi5"]
        answers.extensions.names = ["openssh.tcz", "python3.11.tcz"]
        answers.app.wheelhouse = str(base / "wheelhouse")  # offline: small real wheels
        service_wheels(base / "wheelhouse")
        with Lab() as lab:
            lan = boot_lan(lab, tmp_path)
            srv, pi = lan.srv, lan.pi
            mirror = srv.popen(
                [sys.executable, "-c", MIRROR_SERVER, str(fake_mirror.root)],
                stdout=subprocess.PIPE,
                text=True,
                cwd=str(Path(__file__).resolve().parents[2]),
            )
            assert mirror.stdout is not None
            answers.release.mirrors = [mirror.stdout.readline().strip()]
            answers_file = base / "answers.toml"
            answers_file.write_text(dump_answers(answers))
            run = srv.run([WIZARD, "--answers", str(answers_file), "--json"], check=False)
            events = [json.loads(line) for line in run.stdout.splitlines()]
            assert run.returncode == 0, run.stderr[-3000:]
            done = [e["step"] for e in events if e["type"] == "step" and e["status"] == "ok"]
            assert done[-2:] == ["network", "deploy"] and "remaster" in done
            built = Path(answers.build.output)
            for model, serial in (
                ("pi3", SERIAL_UNKNOWN),
                ("pi4", SERIAL_KIOSK),
                ("pi5", SERIAL_PI5),
            ):
                test = pi.run(
                    [
                        WIZARD,
                        "selftest",
                        "--interface",
                        "eth0",
                        "--model",
                        model,
                        "--serial",
                        serial,
                        "--answers",
                        str(answers_file),
                        "--json",
                    ],
                    check=False,
                )
                lines = json_lines(test.stdout)
                assert test.returncode == 0, test.stdout
                fetched = [o for o in lines if o.get("status") == "complete"]
                profile = answers.deploy.devices.get(serial)
                prefix = f"{serial}/" if profile else ""
                for o in fetched:
                    rel = o["file"].removeprefix(prefix)
                    if profile and (built / "profiles" / profile / rel).exists():
                        src = built / "profiles" / profile / rel
                    else:
                        src = built / rel
                    import hashlib

                    assert o["sha256"] == hashlib.sha256(src.read_bytes()).hexdigest(), rel
                names = [o["file"] for o in fetched]
                last = f"{prefix}{'pi.gz' if prefix else 'overlay.gz'}"  # the last initramfs
                assert last in names and names[-1].removeprefix(prefix).startswith("kernel")
    finally:
        shutil.rmtree(base, ignore_errors=True)
