"""Router mode end to end: the LAN's own DHCP server boots the Pis, reached only over ssh.

A namespace "router" runs real dropbear (the ssh server OpenWrt ships) whose sessions see nothing
but busybox applets, plus the router's programs (``uci``, ``/etc/init.d/dnsmasq``) as stand-ins
that turn ``/etc/config/dhcp`` into a real dnsmasq full DHCP + TFTP server the way OpenWrt does
(``tests.support.sshrouter``, ``tests.support.openwrt``). From the server namespace the tool,
headless, applies router mode to it (``dnsmasq apply``: preview, backup, ``uci batch``, restart,
came-back check) and deploys to it (``deploy``: tar stream over ssh, ``sha256sum -c`` there, atomic
switch). Virtual Pi 3, 4 and 5 then boot through the router to the last initramfs byte, releases
are switched and rolled back while Pis read over TFTP, an upload is cut off halfway, and a
router whose busybox ``mv`` has no ``-T`` still switches.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from steps import deploy
from steps.answers import Answers, default_answers
from steps.answers_toml import dump_answers
from steps.base import StepContext
from steps.errors import Cancelled
from steps.events import Progress
from steps.host import tftproot
from steps.wire import dhcp
from steps.wire.rawlink import RawLink
from steps.wire.virtualpi import BootOptions, BootReport, VirtualPi
from tests.conftest import needs_root
from tests.support.boot_tree import make_build
from tests.support.lab import Host, Lab
from tests.support.netboot_lab import ROUTER_IP, boot_lan, in_netns
from tests.support.sshrouter import SshRouter, remove_router, start_router, start_service

pytestmark = pytest.mark.netns

WIZARD = str(Path(sys.executable).with_name("firecore-wizard"))
SERIAL_KIOSK = "9ffefdef"
PROFILES = {"kiosk": ["kernel kernel_alt.img"]}


@dataclass
class RouterLan:
    lab: Lab
    srv: Host
    pi: Host
    router: SshRouter
    answers: Answers
    answers_file: Path
    work: Path
    files: dict[str, bytes]

    def wizard(self, *args: str, host: Host | None = None) -> subprocess.CompletedProcess[str]:
        return (host or self.srv).run([WIZARD, *args], check=False, timeout=300)

    @property
    def base(self) -> Path:
        return self.router.base


def router_answers(work: Path, router: SshRouter) -> Answers:
    a = default_answers()
    a.build.output = str(work / "build")
    a.network.mode = "router"
    a.network.backup_dir = str(work / "backups")
    a.network.dnsmasq_conf = str(router.dropin)
    a.deploy.target = router.target
    a.deploy.ssh_config = str(router.ssh_config)
    a.deploy.profiles = {"kiosk": default_answers().deploy.profiles.get("kiosk") or _profile()}
    a.deploy.devices = {SERIAL_KIOSK: "kiosk"}
    return a


def _profile() -> Any:
    from steps.answers import Profile

    return Profile()


def make_lan(lab: Lab, tmp: Path, kind: str) -> RouterLan:
    lan = boot_lan(lab, tmp, router=False)
    router = start_router(lan.rt, ROUTER_IP, kind=kind, ssh_client=lan.srv)
    start_service(router, lan.srv)  # the router's DHCP server runs before router mode
    work = Path(tempfile.mkdtemp(prefix="fwt-rtr-work-", dir="/tmp"))
    answers = router_answers(work, router)
    if kind == "dnsmasq":
        answers.network.router_kind = "dnsmasq"
    files = make_build(
        Path(answers.build.output), profiles=PROFILES, extra={"kernel_alt.img": os.urandom(9000)}
    )
    answers_file = work / "answers.toml"
    answers_file.write_text(dump_answers(answers))
    return RouterLan(lab, lan.srv, lan.pi, router, answers, answers_file, work, files)


@pytest.fixture(scope="module")
def openwrt(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RouterLan]:
    needs_root()
    with Lab() as lab:
        r = make_lan(lab, tmp_path_factory.mktemp("openwrt"), "openwrt")
        try:
            before = r.router.dnsmasq_pid()
            applied = r.wizard("dnsmasq", "apply", "--answers", str(r.answers_file), "--json")
            assert applied.returncode == 0, applied.stdout + applied.stderr
            assert r.router.dnsmasq_pid() not in (None, before)
            done = r.wizard("deploy", "--answers", str(r.answers_file), "--json")
            assert done.returncode == 0, done.stdout + done.stderr
            yield r
        finally:
            remove_router(r.router)
            shutil.rmtree(r.work, ignore_errors=True)


def selftest(r: RouterLan, model: str, serial: str) -> tuple[int, list[dict[str, Any]]]:
    done = r.wizard(
        "selftest",
        "--interface",
        "eth0",
        "--model",
        model,
        "--serial",
        serial,
        "--answers",
        str(r.answers_file),
        "--json",
        host=r.pi,
    )
    return done.returncode, [json.loads(line) for line in done.stdout.splitlines()]


def expected(r: RouterLan, requested: str) -> bytes:
    device, _, rest = requested.partition("/")
    if rest and device in r.answers.deploy.devices:
        profile = r.answers.deploy.devices[device]
        return r.files.get(f"profiles/{profile}/{rest}", r.files.get(rest, b"<absent>"))
    return r.files[requested]


# ------------------------------------------------------------------------ the router itself


def test_router_config_is_the_preview_and_the_old_one_is_kept(openwrt: RouterLan) -> None:
    r = openwrt
    config = (r.router.etc / "config" / "dhcp").read_text()
    golden = Path(__file__).resolve().parents[1] / "data" / "router-openwrt-dhcp.after"
    expected_text = golden.read_text().replace("/mnt/sda1/firecore", str(r.base))
    expected_text = expected_text.replace("66,192.168.1.1", f"66,{ROUTER_IP}")
    assert config == expected_text
    saved = list((r.router.etc / "firecore-wizard").iterdir())
    assert len(saved) == 1 and "firecore" not in saved[0].read_text()  # the config before
    assert list(Path(r.answers.network.backup_dir).glob("openwrt-dhcp.*.router.bak"))
    # applying again: nothing to change, dnsmasq left alone
    pid = r.router.dnsmasq_pid()
    again = r.wizard("dnsmasq", "apply", "--answers", str(r.answers_file))
    assert again.returncode == 0 and "unchanged" in again.stdout + again.stderr
    assert r.router.dnsmasq_pid() == pid


def test_remote_root_holds_one_verified_release(openwrt: RouterLan) -> None:
    live = tftproot.current_release(openwrt.base)
    assert live is not None
    release = openwrt.base / "releases" / live
    for rel, data in openwrt.files.items():
        assert (release / rel).read_bytes() == data, rel
    assert (release / SERIAL_KIOSK / "pi.gz").samefile(release / "profiles/kiosk/pi.gz")
    listing = openwrt.wizard("deploy", "--list", "--answers", str(openwrt.answers_file), "--json")
    data = json.loads(listing.stdout.splitlines()[0])
    assert [x["id"] for x in data["releases"] if x["current"]] == [live]


@pytest.mark.parametrize(
    ("model", "serial", "prefix", "kernel", "initramfs"),
    [
        ("pi3", "0badc0de", "", "kernel6647v7.img", "overlay.gz"),
        ("pi4", "0badc0de", "", "kernel6647v8.img", "overlay.gz"),
        ("pi5", "0badc0de", "", "kernel6647v8.img", "overlay.gz"),
        ("pi4", SERIAL_KIOSK, f"{SERIAL_KIOSK}/", "kernel_alt.img", "pi.gz"),
    ],
)
def test_virtual_pis_boot_through_the_router(
    openwrt: RouterLan, model: str, serial: str, prefix: str, kernel: str, initramfs: str
) -> None:
    code, lines = selftest(openwrt, model, serial)
    stages = [o for o in lines if o["type"] == "stage"]
    assert code == 0, json.dumps(lines, indent=1)
    assert [o["stage"] for o in stages[:4]] == ["dhcp-offer", "boot-offer", "lease", "arp"]
    assert "router mode" in stages[1]["message"] and ROUTER_IP in stages[1]["message"]
    complete = {o["file"]: o for o in stages if o.get("status") == "complete"}
    for name, o in complete.items():
        assert o["sha256"] == hashlib.sha256(expected(openwrt, name)).hexdigest(), name
    last = complete[f"{prefix}{initramfs}"]
    assert last["bytes"] == last["tsize"] == len(expected(openwrt, f"{prefix}{initramfs}"))
    assert stages[-1]["file"] == f"{prefix}{kernel}"
    client = next(o for o in lines if o["type"] == "summary")["clients"][0]
    assert client["stage"] == "complete" and client["ip"].startswith("10.99.0.1")


def test_only_pis_get_the_boot_options(openwrt: RouterLan) -> None:
    """A PC that PXE-boots on the router's LAN gets a plain lease, no Pi boot menu."""
    mac = "02:00:00:00:00:42"
    pi = dhcp.pi4_discover(mac, "12345678")
    disc = replace(pi, options=tuple(o for o in pi.options if o[0] != 97))  # no Pi GUID
    with in_netns(openwrt.pi), RawLink("eth0", mac) as link:
        link.send(dhcp.client_frame(disc))
        started = time.monotonic()
        offers = dhcp.collect(
            link, xid=disc.xid, mac=mac, until=started + 10, started=started, done=bool
        )
    assert offers and offers[0].offers_address
    assert not offers[0].packet.has(43) and not offers[0].packet.has(66)


def test_rehearsal_of_a_router_mode_config(openwrt: RouterLan) -> None:
    done = openwrt.wizard(
        "selftest", "--rehearse", "--model", "pi4", "--answers", str(openwrt.answers_file), "--json"
    )
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert done.returncode == 0, done.stdout + done.stderr
    assert [o["stage"] for o in lines if o["type"] == "stage"][1] == "boot-offer"


# ------------------------------------------------------------ deploy, rollback, interruption


def test_deploy_and_rollback_under_tftp_load_serve_whole_releases(openwrt: RouterLan) -> None:
    r = openwrt
    answers = r.answers.model_copy(deep=True)
    answers.deploy.keep = 100
    original = tftproot.current_release(r.base)
    builds = []
    for n in range(2):
        out = r.work / f"load{n}"
        make_build(out, salt=f"l{n}", profiles=PROFILES, extra={"kernel_alt.img": os.urandom(64)})
        builds.append(out)
    manifests: dict[str, dict[str, Any]] = {}

    def remember() -> None:
        for info in tftproot.list_releases(r.base):
            m = tftproot.read_manifest(info.path / "manifest.json")
            assert m is not None
            manifests.setdefault(info.id, m)

    remember()
    stop = threading.Event()
    reports: list[BootReport] = []
    errors: list[BaseException] = []

    def booter(serial: str) -> None:
        try:
            with in_netns(r.pi):
                while not stop.is_set():
                    pi = VirtualPi(
                        "eth0", model="pi4", serial=serial, options=BootOptions(settle=0)
                    )
                    report = pi.new_report()
                    for _ in pi.boot(report):
                        pass
                    reports.append(report)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=booter, args=(s,)) for s in (SERIAL_KIOSK, "0badc0de")]
    for t in threads:
        t.start()
    switches = 0
    try:
        with in_netns(r.srv):  # ssh to the router from the server's namespace
            while switches < 8 or len(reports) < 4:
                answers.build.output = str(builds[switches % 2])
                list(deploy.DeployStep().run(StepContext(answers=answers)))
                remember()
                deploy.rollback(answers)
                switches += 2
    finally:
        stop.set()
        for t in threads:
            t.join(120)
        with in_netns(r.srv):
            deploy.rollback(answers, to=original)
    assert not errors, errors
    checked = 0
    for report in reports:
        assert report.ok, [(s.stage, s.message) for s in report.stages if not s.ok]
        for st in report.stages:
            if st.status == "complete":
                options = {m["files"].get(st.file, {}).get("sha256") for m in manifests.values()}
                assert st.sha256 in options, f"{st.file} matches no release"
                checked += 1
    assert checked > 40
    assert tftproot.current_release(r.base) == original


def test_an_interrupted_upload_leaves_the_live_release(openwrt: RouterLan) -> None:
    r = openwrt
    live = tftproot.current_release(r.base)
    before = sorted(p.name for p in (r.base / "releases").iterdir())
    answers = r.answers.model_copy(deep=True)
    answers.build.output = str(r.work / "cut")
    make_build(Path(answers.build.output), salt="cut", profiles=PROFILES,
               extra={"kernel_alt.img": os.urandom(2_000_000)})  # fmt: skip
    cancel = threading.Event()
    ctx = StepContext(answers=answers, cancel=cancel)
    with in_netns(r.srv), pytest.raises(Cancelled):
        for event in deploy.DeployStep().run(ctx):
            if isinstance(event, Progress) and event.done > 0:
                cancel.set()  # halfway through the tar stream
    assert tftproot.current_release(r.base) == live
    deadline = time.monotonic() + 240  # the remote script cleans up when its stdin ends
    while any(p.name.startswith(".") for p in (r.base / "releases").iterdir()):
        assert time.monotonic() < deadline, list((r.base / "releases").iterdir())
        time.sleep(0.1)
    assert sorted(p.name for p in (r.base / "releases").iterdir()) == before
    assert not (r.base / ".deploy.lock.d").exists()
    # and the next deploy goes through
    with in_netns(r.srv):
        again = list(deploy.DeployStep().run(StepContext(answers=answers)))
        assert tftproot.current_release(r.base) != live and again
        deploy.rollback(answers, to=live)


def test_rollback_and_keep_on_the_router(openwrt: RouterLan) -> None:
    r = openwrt
    answers = r.answers.model_copy(deep=True)
    answers.deploy.keep = 2
    live = tftproot.current_release(r.base)
    ids = []
    for n in range(3):
        answers.build.output = str(r.work / f"keep{n}")
        make_build(Path(answers.build.output), salt=f"k{n}", profiles=PROFILES,
                   extra={"kernel_alt.img": b"k"})  # fmt: skip
        with in_netns(r.srv):
            list(deploy.DeployStep().run(StepContext(answers=answers)))
        ids.append(tftproot.current_release(r.base))
    kept = [i.id for i in tftproot.list_releases(r.base)]
    assert kept[-2:] == ids[-2:] and ids[0] not in kept and len(kept) <= 3
    file = r.work / "keep.toml"
    file.write_text(dump_answers(answers))
    back = r.wizard("deploy", "--rollback", "--answers", str(file), "--json")
    assert back.returncode == 0, back.stderr
    assert tftproot.current_release(r.base) == ids[-2]
    assert json.loads(back.stdout.splitlines()[0])["host"] == f"ssh://root@{ROUTER_IP}"
    with in_netns(r.srv):
        deploy.rollback(answers, to=live if live in kept else ids[-1])


# ------------------------------------------------------------ watching a boot on the router


def _tcpdump_listening(host: Host) -> bool:
    pids = subprocess.run(["ip", "netns", "pids", host.ns], capture_output=True, text=True)
    for pid in pids.stdout.split():
        try:
            if Path(f"/proc/{pid}/comm").read_text().strip() != "tcpdump":
                continue
            links = [os.readlink(f) for f in Path(f"/proc/{pid}/fd").iterdir()]
        except OSError:
            continue
        if any(link.startswith("socket:") for link in links):
            return True
    return False


def _untimed(value: Any) -> Any:
    """``value`` without its times (two captures stamp the same frames a few µs apart)."""
    if isinstance(value, dict):
        timing = ("t", "i", "duration", "since_power_on", "elapsed")
        out = {k: _untimed(v) for k, v in value.items() if k not in timing}
        if isinstance(out.get("stages"), dict):
            out["stages"] = sorted(out["stages"])  # when each stage was reached: µs apart
        return out
    if isinstance(value, list):
        return [_untimed(v) for v in value]
    return value


def _packets(lines: list[dict[str, Any]], *, arp: bool = False) -> list[str]:
    """The capture's DHCP/TFTP packets (or, with ``arp``, its ARP ones), without capture times.

    ARP is kept apart: the router's neighbour refreshes (to the Pi and to the other hosts of the
    LAN) come when its kernel decides, before, during and after the boot, and on a loaded
    machine one of the two captures can see a refresh the other's window missed (CI, stop 18).
    """
    packets = [o for o in lines if o["type"] == "packet" and (o.get("proto") == "arp") == arp]
    keep = [{k: v for k, v in o.items() if k not in ("t", "i")} for o in packets]
    return sorted(json.dumps(o, sort_keys=True) for o in keep)


def test_remote_capture_decodes_like_a_local_one(openwrt: RouterLan) -> None:
    """monitor --ssh (tcpdump on the router, decoded here) = the monitor on the router's eth0."""
    r = openwrt
    out_remote, out_local = r.work / "remote.jsonl", r.work / "local.jsonl"
    err_remote, err_local = r.work / "remote.err", r.work / "local.err"
    common = ["--interface", "eth0", "--json", "--duration", "20"]
    with out_remote.open("w") as o, err_remote.open("w") as e:
        remote = r.srv.popen(
            [WIZARD, "monitor", "--ssh", f"root@{ROUTER_IP}", "--ssh-config",
             str(r.router.ssh_config), *common],
            stdout=o, stderr=e,
        )  # fmt: skip
    with out_local.open("w") as o, err_local.open("w") as e:
        local = r.router.host.popen([WIZARD, "monitor", *common], stdout=o, stderr=e)
    deadline = time.monotonic() + 240
    while not (
        "over ssh" in err_remote.read_text()
        and "capturing" in err_local.read_text()
        and _tcpdump_listening(r.router.host)
    ):
        assert remote.poll() is None and local.poll() is None, err_remote.read_text()
        assert time.monotonic() < deadline, err_remote.read_text() + err_local.read_text()
        time.sleep(0.1)
    code, _ = selftest(r, "pi4", "0badc0de")
    assert code == 0
    assert remote.wait(120) in (0, 1) and local.wait(120) in (0, 1)
    remote_lines = [json.loads(line) for line in out_remote.read_text().splitlines()]
    local_lines = [json.loads(line) for line in out_local.read_text().splitlines()]
    assert len(_packets(local_lines)) > 50
    assert _packets(remote_lines) == _packets(local_lines)
    # the same ARP frames decode the same; the Pi's own request for the server is in both
    both = set(_packets(remote_lines, arp=True)) & set(_packets(local_lines, arp=True))
    pi_asks = [o for o in map(json.loads, both) if o.get("mac") == o["sender_mac"]]
    assert any(o["op"] == "request" and o["target_ip"] == ROUTER_IP for o in pi_asks), both
    summary = next(o for o in remote_lines if o["type"] == "summary")
    local_summary = next(o for o in local_lines if o["type"] == "summary")
    a, b = _untimed(summary["clients"]), _untimed(local_summary["clients"])
    assert a == b
    assert any(c["files"] for c in summary["clients"])
    stages = [o["stage"] for o in remote_lines if o["type"] == "stage"]
    assert stages == [o["stage"] for o in local_lines if o["type"] == "stage"] and stages
    # DNS stays on the router: the filter leaves udp/53 out
    assert not any(o.get("dst_port") == 53 for o in remote_lines if o["type"] == "packet")


# ------------------------------------------------------------ a plain dnsmasq DHCP server


def test_plain_dnsmasq_router_boots_a_pi(tmp_path: Path) -> None:
    needs_root()
    with Lab() as lab:
        r = make_lan(lab, tmp_path, "dnsmasq")
        try:
            applied = r.wizard("dnsmasq", "apply", "--answers", str(r.answers_file))
            assert applied.returncode == 0, applied.stdout + applied.stderr
            assert "tftp-root=" in r.router.dropin.read_text()
            done = r.wizard("deploy", "--answers", str(r.answers_file))
            assert done.returncode == 0, done.stderr
            code, lines = selftest(r, "pi4", "0badc0de")
            assert code == 0, json.dumps(lines, indent=1)
            # a second apply with an option that cannot be: refused before the router is touched
            text = dump_answers(r.answers).replace("dnsmasq_extra = []",
                                                   'dnsmasq_extra = ["tftp-max=abc"]')  # fmt: skip
            r.answers_file.write_text(text)
            before = r.router.dropin.read_text()
            bad = r.wizard("dnsmasq", "apply", "--answers", str(r.answers_file))
            assert bad.returncode == 2 and "network.dnsmasq_extra" in bad.stderr
            assert r.router.dropin.read_text() == before
        finally:
            remove_router(r.router)
            shutil.rmtree(r.work, ignore_errors=True)


def test_ssh_failures_are_named_with_their_fix(tmp_path: Path) -> None:
    """A key the router does not know, a host key that is not the router's, nobody there."""
    needs_root()
    with Lab() as lab:
        lan = boot_lan(lab, tmp_path, router=False)
        router = start_router(lan.rt, ROUTER_IP, kind="openwrt", ssh_client=lan.srv,
                              tcpdump=False)  # fmt: skip
        work = Path(tempfile.mkdtemp(prefix="fwt-rtr-old-", dir="/tmp"))
        try:
            answers = router_answers(work, router)
            answers.deploy.devices = {}
            file = work / "answers.toml"
            # no tcpdump there: the exact install command
            cap = lan.srv.run(
                [WIZARD, "monitor", "--ssh", f"root@{ROUTER_IP}", "--ssh-config",
                 str(router.ssh_config), "--interface", "eth0", "--duration", "5"],
                check=False,
            )  # fmt: skip
            assert cap.returncode == 2 and "has no tcpdump" in cap.stderr
            assert "`opkg update && opkg install tcpdump-mini`" in cap.stderr
            # a key the router does not know
            other = work / "other_key"
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)],
                           check=True)  # fmt: skip
            config = work / "ssh_config"
            config.write_text(router.ssh_config.read_text().replace(
                str(router.dir / "client_key"), str(other)))  # fmt: skip
            answers.deploy.ssh_config = str(config)
            file.write_text(dump_answers(answers))
            denied = lan.srv.run([WIZARD, "deploy", "--list", "--answers", str(file)], check=False)
            assert denied.returncode == 1 and "ssh-copy-id" in denied.stderr
            assert "Traceback" not in denied.stderr
            # a host key that is not the router's
            (work / "known").write_text(f"{ROUTER_IP} ssh-ed25519 " + "A" * 68 + "\n")
            config.write_text(router.ssh_config.read_text().replace(
                str(router.dir / "known_hosts"), str(work / "known")))  # fmt: skip
            changed = lan.srv.run([WIZARD, "deploy", "--list", "--answers", str(file)], check=False)
            assert changed.returncode == 1 and "host key" in changed.stderr
            # nobody there
            answers.deploy.target = "ssh://root@10.99.0.77/srv/x"
            answers.deploy.ssh_config = str(router.ssh_config)
            file.write_text(dump_answers(answers))
            gone = lan.srv.run([WIZARD, "deploy", "--list", "--answers", str(file)], check=False)
            assert gone.returncode == 1 and "10.99.0.77" in gone.stderr
        finally:
            remove_router(router)
            shutil.rmtree(work, ignore_errors=True)
