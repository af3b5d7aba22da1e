"""The network step for real: the headless CLI in a server namespace, real dnsmasq, real probes.

Each test builds a small LAN (tests/support/lab.py): the server namespace runs
``firecore-wizard dnsmasq apply|status|stop|preflight|restore`` through ``ip netns exec``, a router
namespace runs a plain DHCP dnsmasq, and the Pi side sends boot-ROM DISCOVERs with steps.wire.dhcp.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from steps.answers import Answers, default_answers
from steps.answers_toml import dump_answers
from steps.wire.dhcp import (
    DISCOVER,
    DhcpPacket,
    Offer,
    client_frame,
    collect,
    pi3_rom_discover,
    pi4_discover,
    pi5_discover,
)
from steps.wire.netframes import mac_bytes
from steps.wire.rawlink import RawLink
from tests.conftest import ROOT, needs_root
from tests.support.lab import Host, Lab
from tests.support.netboot_lab import boot_lan, in_netns, start_proxy

pytestmark = pytest.mark.netns

CLI = str(Path(sys.executable).parent / "firecore-wizard")


@pytest.fixture
def served_tmp() -> Iterator[Path]:
    """A temp dir dnsmasq can read after dropping to nobody (pytest's tmp_path is 0700)."""
    needs_root()
    path = Path(tempfile.mkdtemp(prefix="fw-net-", dir="/tmp"))
    os.chmod(path, 0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def make_answers(base: Path, **network: Any) -> Path:
    a: Answers = default_answers()
    a.network.interface = "eth0"
    a.network.tftp_root = str(base / "tftp")
    a.network.dnsmasq_conf = str(base / "etc" / "dnsmasq.d" / "firecore.conf")
    a.network.state_dir = str(base / "state")
    a.network.backup_dir = str(base / "backups")
    a.network.dnsmasq_service = "process"
    a.network.probe_seconds = 1.0
    for key, value in network.items():
        setattr(a.network, key, value)
    path = base / "answers.toml"
    path.write_text(dump_answers(a))
    return path


def cli(host: Host, *args: str) -> subprocess.CompletedProcess[str]:
    """The real console script inside the host's namespace."""
    return host.run([CLI, *args], check=False, cwd=ROOT)


def release(root: Path, name: str, content: str) -> None:
    d = root / "releases" / name
    d.mkdir(parents=True, exist_ok=True)
    (d / "bootcode.bin").write_text(content)
    for p in (root, root / "releases", d):
        os.chmod(p, 0o755)
    os.chmod(d / "bootcode.bin", 0o644)


def switch(root: Path, name: str) -> None:
    """Atomically point current at releases/<name> (what deploy does)."""
    tmp = root / ".current.tmp"
    tmp.unlink(missing_ok=True)
    os.symlink(f"releases/{name}", tmp)
    os.rename(tmp, root / "current")


def offers_for(host: Host, packet: DhcpPacket, *, want: int, timeout: float = 60.0) -> list[Offer]:
    """Send ``packet`` as a boot ROM would from ``host`` and collect up to ``want`` offers.

    Returns as soon as ``want`` offers are in; ``timeout`` only stops a test whose server is gone
    (or bounds the wait where fewer offers are the expected outcome).
    """
    mac = packet.mac
    with in_netns(host), RawLink(host.iface, mac) as link:
        started = time.monotonic()
        link.send(client_frame(packet, src_mac=mac))
        return collect(
            link,
            xid=packet.xid,
            mac=mac,
            until=started + timeout,
            started=started,
            done=lambda got: len(got) >= want,
        )


def pc_pxe_discover(mac: str) -> DhcpPacket:
    """A PC's PXE ROM on the same LAN (x86 BIOS, a SMBIOS UUID in option 97): not a Pi."""
    return DhcpPacket(
        op=1,
        xid=0x5EC0FFEE,
        chaddr=mac_bytes(mac),
        options=(
            (53, bytes([DISCOVER])),
            (57, b"\x04\xec"),
            (55, bytes([1, 2, 3, 5, 6, 11, 12, 13, 15, 16, 17, 18, 43, 54, 60, 67, 128, 129])),
            (97, b"\x00" + bytes.fromhex("4c4c4544004a3610804bb4c04f4d3232")),
            (94, b"\x01\x02\x01"),
            (93, b"\x00\x00"),
            (60, b"PXEClient:Arch:00000:UNDI:002001"),
        ),
    )


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat.rpartition(")")[2].split()[0] != "Z"


def test_process_mode_serves_the_pis_and_survives_the_wizard(served_tmp: Path, lab: Lab) -> None:
    answers = make_answers(served_tmp)
    tftp = served_tmp / "tftp"
    lan = boot_lan(lab, served_tmp, pi_cidr="10.99.0.50/24", pi_mac="dc:a6:32:01:02:03")
    srv, pi = lan.srv, lan.pi

    done = cli(srv, "dnsmasq", "apply", "--answers", str(answers))
    assert done.returncode == 0, done.stderr
    assert "dnsmasq (PID" in done.stderr and "listens on udp/67 (DHCP) and udp/69" in done.stderr
    pid = int((served_tmp / "state" / "dnsmasq.pid").read_text())
    # the CLI has exited; our dnsmasq keeps serving, detached in its own session
    assert alive(pid) and os.getsid(pid) != os.getsid(0)
    cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    assert str(served_tmp / "etc/dnsmasq.d/firecore.conf").encode() in cmd
    assert tftp.is_dir() and not (tftp / "current").exists()

    # a Pi 4 bootloader: proxy offer with the boot menu, at once; the router leases
    pi4 = offers_for(pi, pi4_discover("dc:a6:32:01:02:03", "1234abcd"), want=2)
    proxy = [o for o in pi4 if o.is_proxy]
    assert len(proxy) == 1 and proxy[0].server == "10.99.0.1"
    assert proxy[0].packet.pxe is not None and proxy[0].packet.pxe.has_rpi_menu
    assert next(o.packet.yiaddr for o in pi4 if o.offers_address).startswith("10.99.0.1")
    # a Pi 3B ROM: the same menu, one second late (network.pi3_reply_delay)
    pi3 = offers_for(pi, pi3_rom_discover("b8:27:eb:28:f6:6d"), want=2)
    late = [o for o in pi3 if o.is_proxy]
    assert late and late[0].boots_pi and late[0].elapsed >= 0.9
    assert proxy[0].elapsed < late[0].elapsed  # the Pi 4 was answered without the delay
    # a Pi 5 whose MAC is in no OUI list: tagged by its "RPi5" GUID, served at once
    pi5 = offers_for(pi, pi5_discover("02:00:5e:01:02:03", "1234abcd"), want=2)
    assert [o.server for o in pi5 if o.is_proxy and o.boots_pi] == ["10.99.0.1"]
    # a PC's PXE ROM on the same LAN (only_pis): the router answers it, our proxy does not
    # (dhcp-ignore=tag:!rpi; without it the PC got a menu-less proxy offer)
    pc = offers_for(pi, pc_pxe_discover("52:54:00:12:34:56"), want=2, timeout=2.5)
    assert [o for o in pc if o.is_proxy] == []
    assert any(o.offers_address for o in pc)  # it did reach the segment
    log = (served_tmp / "state" / "dnsmasq.log").read_text()
    assert "52:54:00:12:34:56 proxy-ignored" in log

    # TFTP follows the current symlink for every request
    release(tftp, "r1", "first\n")
    release(tftp, "r2", "second\n")
    switch(tftp, "r1")
    url = "tftp://10.99.0.1/bootcode.bin"
    assert pi.run(["curl", "-s", "-m", "5", url]).stdout == "first\n"
    switch(tftp, "r2")
    assert pi.run(["curl", "-s", "-m", "5", url]).stdout == "second\n"

    status = cli(srv, "dnsmasq", "status", "--json", "--answers", str(answers))
    st = json.loads(status.stdout.splitlines()[0])
    assert status.returncode == 0, status.stdout
    assert st["pid"] == pid and st["serving"] and st["ports"] == [67, 69]
    assert st["drift"] is False and st["live"] == ["10.99.0.1/24"]
    assert any("sent" in line and "bootcode.bin" in line for line in st["log"])

    again = cli(srv, "dnsmasq", "apply", "--answers", str(answers))
    assert again.returncode == 0, again.stderr
    assert f"our dnsmasq (PID {pid}) already serves this config" in again.stderr

    stop = cli(srv, "dnsmasq", "stop", "--answers", str(answers))
    assert stop.returncode == 0 and f"stopped our dnsmasq (PID {pid})" in stop.stdout
    assert not alive(pid)
    after = cli(srv, "dnsmasq", "status", "--json", "--answers", str(answers))
    assert after.returncode == 1 and json.loads(after.stdout.splitlines()[0])["alive"] is False


def test_preflight_names_a_second_proxy_a_port_holder_and_a_firewall_drop(
    served_tmp: Path, lab: Lab
) -> None:
    answers = make_answers(served_tmp)
    srv = boot_lan(lab, served_tmp).srv
    other = lab.host("other", "10.99.0.2/24")
    for d in ("other", "other-tftp"):
        (served_tmp / d).mkdir()
    start_proxy(other, served_tmp / "other", served_tmp / "other-tftp")
    holder = srv.popen(
        [
            sys.executable,
            "-c",
            "import socket, time; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); "
            "s.bind(('0.0.0.0', 69)); print('bound', flush=True); time.sleep(120)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "bound"
    srv.run(["nft", "add", "table", "inet", "site"])
    srv.run(["nft", "add chain inet site input { type filter hook input priority 0; }"])
    srv.run(["nft", "add rule inet site input udp dport 67 drop"])

    done = cli(srv, "dnsmasq", "preflight", "--json", "--answers", str(answers))
    assert done.returncode == 1, done.stderr
    findings = json.loads(done.stdout.splitlines()[0])["findings"]
    by_code = {f["code"]: f for f in findings}

    proxy = by_code["second-proxy"]
    assert proxy["severity"] == "error" and "10.99.0.2" in proxy["message"]
    assert "Raspberry Pi boot menu" in proxy["message"]
    assert "10.99.0.254" in by_code["dhcp-server"]["evidence"][0]

    port = by_code["port-in-use"]
    assert port["severity"] == "error"
    assert f"(PID {holder.pid}) holds udp/69 (TFTP)" in port["message"]
    assert port["message"].startswith("python")

    fw = by_code["firewall-drop"]
    assert "udp/67" in fw["message"]
    assert fw["evidence"] == ["inet site input (handle 2): udp dport 67 drop"]
    assert [f["severity"] for f in findings][:3] == ["error", "error", "error"]

    # the network step refuses to install anything while preflight reports errors
    refused = cli(srv, "dnsmasq", "apply", "--answers", str(answers))
    assert refused.returncode == 1
    assert "ERROR Network in step network: preflight:" in refused.stderr
    assert not (served_tmp / "etc").exists()

    # forced past preflight, dnsmasq itself fails to bind and says so
    forced = make_answers(served_tmp, preflight_strict=False, probe_seconds=0)
    failed = cli(srv, "dnsmasq", "apply", "--answers", str(forced))
    assert failed.returncode == 1
    assert "dnsmasq did not start: dnsmasq: failed to create listening socket" in failed.stderr
    assert "Address already in use" in failed.stderr


def test_address_change_is_detected_and_regenerated_with_backup_and_restore(
    served_tmp: Path, lab: Lab
) -> None:
    answers = make_answers(served_tmp, dnsmasq_service="none", probe_seconds=0)
    conf = served_tmp / "etc" / "dnsmasq.d" / "firecore.conf"
    srv = lab.host("srv", "10.99.0.1/24")

    plan = cli(srv, "dnsmasq", "apply", "--dry-run", "--json", "--answers", str(answers))
    assert plan.returncode == 0, plan.stderr
    events = [json.loads(line) for line in plan.stdout.splitlines()]
    planned = [(e["action"], e["target"]) for e in events if e["type"] == "plan"]
    assert ("write", str(conf)) in planned and ("create", str(served_tmp / "tftp")) in planned
    diff = [e["text"] for e in events if e["type"] == "log" and e["stream"] == "stdout"]
    assert "+dhcp-range=tag:eth0,10.99.0.1,proxy" in diff
    assert not conf.exists() and not (served_tmp / "tftp").exists()

    first = cli(srv, "dnsmasq", "apply", "--answers", str(answers))
    assert first.returncode == 0, first.stderr
    first_text = conf.read_text()
    assert "dhcp-range=tag:eth0,10.99.0.1,proxy" in first_text

    srv.run(["ip", "addr", "del", "10.99.0.1/24", "dev", "eth0"])
    srv.run(["ip", "addr", "add", "10.99.0.7/24", "dev", "eth0"])
    status = cli(srv, "dnsmasq", "status", "--json", "--answers", str(answers))
    st = json.loads(status.stdout.splitlines()[0])
    assert status.returncode == 1
    assert st["drift"] is True
    assert (st["recorded"], st["live"]) == (["10.99.0.1/24"], ["10.99.0.7/24"])
    human = cli(srv, "dnsmasq", "status", "--answers", str(answers))
    assert "DRIFT:" in human.stdout and "dnsmasq apply" in human.stdout

    regen = cli(srv, "dnsmasq", "apply", "--answers", str(answers))
    assert regen.returncode == 0, regen.stderr
    assert (
        "address changed since the config was written (10.99.0.1/24 → 10.99.0.7/24" in regen.stderr
    )
    assert "dhcp-range=tag:eth0,10.99.0.7,proxy" in conf.read_text()
    backups = sorted((served_tmp / "backups").iterdir())
    assert [b.read_text() for b in backups] == [first_text]

    # dnsmasq --test rejects an option: its own message, nothing installed
    bad = make_answers(
        served_tmp,
        dnsmasq_service="none",
        probe_seconds=0,
        dnsmasq_extra=["tftp-port-range=70000,70001"],  # allowed shape, refused by dnsmasq
    )
    current = conf.read_text()
    rejected = cli(srv, "dnsmasq", "apply", "--answers", str(bad))
    assert rejected.returncode == 1
    assert "`dnsmasq --test` rejected the generated config: dnsmasq: bad port range at" in (
        rejected.stderr
    )
    assert "'tftp-port-range=70000,70001'" in rejected.stderr
    assert conf.read_text() == current

    restored = cli(srv, "dnsmasq", "restore", "--json", "--answers", str(answers))
    assert restored.returncode == 0, restored.stderr
    assert conf.read_text() == first_text
    listed = cli(srv, "dnsmasq", "restore", "--list", "--json", "--answers", str(answers))
    assert (
        len(json.loads(listed.stdout.splitlines()[0])["backups"]) == 2
    )  # the restore kept the replaced one
