"""The virtual Pi's judgement: offers it must refuse, and each failure's diagnosis code.

Offer checks are unit tests on constructed packets; the network failures (a second proxy, a
foreign PXE menu, no router, a server that ignores ARP, no TFTP) run against real dnsmasq in
namespaces, with short timeouts.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from steps.answers import Answers
from steps.base import StepContext
from steps.errors import StepError
from steps.events import LogLine, Result
from steps.selftest import SelftestStep
from steps.wire import dhcp
from steps.wire.diagnosis import DIAGNOSES, markdown_table
from steps.wire.jsonlines import stage_json, summary_json
from steps.wire.netframes import ip_bytes
from steps.wire.virtualpi import BootOptions, BootReport, Stage, VirtualPi
from tests.support.boot_tree import make_build
from tests.support.lab import Host, Lab
from tests.support.netboot_lab import BootLan, boot_lan, in_netns, start_proxy

ROOT = Path(__file__).resolve().parents[2]


def offer(
    src: str, *, opt43: bytes | None, server_id: str | None = None, opt66: bytes | None = None
) -> dhcp.Offer:
    opts: list[tuple[int, bytes]] = [(53, b"\x02")]
    if server_id:
        opts.append((54, ip_bytes(server_id)))
    opts.append((60, b"PXEClient"))
    if opt66 is not None:
        opts.append((66, opt66))
    if opt43 is not None:
        opts.append((43, opt43))
    pkt = dhcp.DhcpPacket(op=2, xid=1, chaddr=b"\xb8\x27\xeb\0\0\1", options=tuple(opts))
    return dhcp.Offer(pkt, "02:00:00:00:00:01", src, 0.01)


def judge(model: str, *offers: dhcp.Offer) -> tuple[Stage, str | None]:
    pi = VirtualPi("lo", model=model)  # type: ignore[arg-type]
    return pi._check_proxy(list(offers))


def test_a_good_proxy_offer_names_its_sender_as_tftp_server() -> None:
    stage, server = judge("pi4", offer("10.0.0.1", opt43=dhcp.build_pxe(), server_id="10.0.0.1"))
    assert stage.ok and server == "10.0.0.1" and "Raspberry Pi Boot" in stage.message


@pytest.mark.parametrize(
    ("model", "offers", "code"),
    [
        ("pi3", [], "no-proxy-offer"),
        (
            "pi4",
            [offer("10.0.0.1", opt43=bytes.fromhex("060108 0a0400505845 ff"))],
            "bad-option-43",
        ),
        ("pi4", [offer("10.0.0.1", opt43=dhcp.build_pxe(["iPXE"]))], "bad-option-43"),
        # the raw string without PXE framing: a Pi 3 ROM takes it, a Pi 4 parses sub-options
        ("pi4", [offer("10.0.0.1", opt43=b"Raspberry Pi Boot   ")], "bad-option-43"),
        (
            "pi3",
            [offer("10.0.0.1", opt43=dhcp.build_pxe()), offer("10.0.0.9", opt43=dhcp.build_pxe())],
            "multiple-proxies",
        ),
        (
            "pi3",
            [offer("10.0.0.1", opt43=dhcp.build_pxe(), opt66=b"10.0.0.7\x00")],
            "tftp-server-mismatch",
        ),
        (
            "pi4",
            [offer("10.0.0.1", opt43=dhcp.build_pxe(), server_id="10.0.0.5")],
            "tftp-server-mismatch",
        ),
    ],
)
def test_offers_a_pi_cannot_boot_from(model: str, offers: list[dhcp.Offer], code: str) -> None:
    stage, server = judge(model, *offers)
    assert not stage.ok and stage.code == code and server is None
    assert code in DIAGNOSES


def test_the_pi3_rom_accepts_the_unframed_string() -> None:
    stage, server = judge("pi3", offer("10.0.0.1", opt43=b"Raspberry Pi Boot   "))
    assert stage.ok and server == "10.0.0.1"


def test_stage_and_summary_json_shapes() -> None:
    ok = Stage(
        "tftp:start.elf",
        True,
        "60000 bytes",
        file="start.elf",
        status="complete",
        bytes=60000,
        sha256="ab",
        data={"tsize": 60000, "blksize": 512, "options": {}},
    )
    bad = Stage(
        "tftp:fixup.dat",
        False,
        "fixup.dat not found",
        "tftp-file-not-found",
        file="fixup.dat",
        status="not-found",
    )
    line = stage_json(ok, "b8:27:eb:00:00:01")
    assert {k: line[k] for k in ("type", "stage", "ok", "code", "message")} == {
        "type": "stage",
        "stage": "tftp:start.elf",
        "ok": True,
        "code": None,
        "message": "60000 bytes",
    }
    assert line["file"] == "start.elf" and line["bytes"] == 60000 and line["blksize"] == 512
    failed = stage_json(bad, "b8:27:eb:00:00:01")
    assert failed["code"] == "tftp-file-not-found" and failed["severity"] == "error"
    assert failed["fix"] == DIAGNOSES["tftp-file-not-found"].fix
    report = BootReport(
        "b8:27:eb:00:00:01", "pi3", "0badc0de", ip="10.0.0.9", phase="firmware", stages=[ok, bad]
    )
    summary = summary_json([report])
    assert summary == {
        "type": "summary",
        "ok": False,
        "clients": [
            {
                "mac": "b8:27:eb:00:00:01",
                "ip": "10.0.0.9",
                "serial": "0badc0de",
                "model": "pi3",
                "stage": "firmware",
                "files": [
                    {"name": "start.elf", "status": "complete", "bytes": 60000},
                    {"name": "fixup.dat", "status": "not-found", "bytes": 0},
                ],
            }
        ],
    }


def test_docs_document_every_diagnosis_code() -> None:
    page = (ROOT / "docs" / "reference" / "diagnosis-codes.md").read_text()
    assert markdown_table() in page


# --------------------------------------------------------------------- on the wire


def fast() -> BootOptions:
    """One DHCP round and short retries: these boots are expected to fail at a known stage.

    Every window is still far longer than a reply takes on a loaded machine (milliseconds), so a
    late answer never makes a boot fail at the wrong stage.
    """
    return BootOptions(
        dhcp_attempts=1,
        dhcp_window=3.0,
        settle=1.0,
        tftp_timeout=1.0,
        tftp_retries=2,
        arp_wait=1.0,
    )


def boot(host: Host, model: str = "pi3", **kw: str) -> BootReport:
    pi = VirtualPi("eth0", model=model, options=fast(), **kw)  # type: ignore[arg-type]
    report = pi.new_report()
    with in_netns(host):
        for _ in pi.boot(report):
            pass
    return report


def first_failure(report: BootReport) -> Stage:
    return next(s for s in report.stages if not s.ok)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "tftp"
    make_build(root)
    return root


@pytest.mark.netns
def test_two_proxies_are_reported(lan: BootLan, tmp_path: Path, tree: Path) -> None:
    second = lan.lab.host("s2", "10.99.0.2/24")
    start_proxy(lan.srv, tmp_path, tree)
    start_proxy(second, tmp_path, tree, address="10.99.0.2", name="proxy2")
    report = boot(lan.pi)
    bad = first_failure(report)
    assert bad.code == "multiple-proxies" and "10.99.0.1" in bad.message
    assert "10.99.0.2" in bad.message


@pytest.mark.netns
def test_a_foreign_pxe_menu_is_bad_option_43(lan: BootLan, tmp_path: Path, tree: Path) -> None:
    start_proxy(lan.srv, tmp_path, tree, menu="Install Windows", only_pis=False)
    report = boot(lan.pi, "pi4")
    bad = first_failure(report)
    assert bad.code == "bad-option-43" and bad.stage == "proxy-offer"


@pytest.mark.netns
def test_no_router_means_no_lease(lab: Lab, tmp_path: Path, tree: Path) -> None:
    lan = boot_lan(lab, tmp_path, router=False)
    start_proxy(lan.srv, tmp_path, tree)
    report = boot(lan.pi, "pi4")
    assert [(s.stage, s.ok, s.code) for s in report.stages] == [
        ("dhcp-offer", False, "no-dhcp-lease"),
        ("proxy-offer", True, None),
        ("lease", False, "no-dhcp-lease"),
    ]
    assert report.phase == "discover" and not report.ok


@pytest.mark.netns
def test_a_server_that_ignores_arp(lan: BootLan, tmp_path: Path, tree: Path) -> None:
    lan.srv.run(["sh", "-c", "echo 8 > /proc/sys/net/ipv4/conf/eth0/arp_ignore"])
    start_proxy(lan.srv, tmp_path, tree)
    report = boot(lan.pi)
    bad = first_failure(report)
    assert bad.stage == "arp" and bad.code == "arp-unanswered" and "10.99.0.1" in bad.message


@pytest.mark.netns
def test_a_proxy_without_tftp(lan: BootLan, tmp_path: Path, tree: Path) -> None:
    start_proxy(lan.srv, tmp_path, tree, tftp=False)
    report = boot(lan.pi)
    bad = first_failure(report)
    assert bad.stage == "tftp:bootcode.bin" and bad.code == "tftp-no-response"
    assert report.phase == "tftp"


@pytest.mark.netns
def test_selftest_step_fails_with_the_code_and_its_fix(
    lan: BootLan, tmp_path: Path, tree: Path, answers: Answers
) -> None:
    answers.network.tftp_root = str(tmp_path / "nothing-deployed-here")
    (tree / "start.elf").unlink()
    start_proxy(lan.srv, tmp_path, tree)
    step = SelftestStep(interface="eth0", model="pi3", serial=None, options=fast())
    events: list[object] = []
    with in_netns(lan.pi), pytest.raises(StepError) as err:
        for event in step.run(StepContext(answers=answers)):
            events.append(event)
    (tree / "start.elf").write_bytes(b"x")
    ok_step = SelftestStep(interface="eth0", model="pi4", options=fast())
    with in_netns(lan.pi):
        done = list(ok_step.run(StepContext(answers=answers)))
    assert "tftp-file-not-found" in err.value.message and "start.elf" in err.value.message
    assert err.value.fix == DIAGNOSES["tftp-file-not-found"].fix
    failed_result = events[-1]  # the stages reach the front end before the failure
    assert isinstance(failed_result, Result) and failed_result.data["ok"] is False
    assert failed_result.data["stages"][-1]["code"] == "tftp-file-not-found"
    result = done[-1]
    assert isinstance(result, Result) and result.data["ok"] is True
    assert any(isinstance(e, LogLine) and e.text.startswith("PASS proxy-offer") for e in done)


# ------------------------------------------------------------ what each model reads, in order


def served_boot(
    lan: BootLan,
    tmp_path: Path,
    tree: Path,
    model: str,
    *,
    prefix: str = "serial",
    stepping: str = "c1",
) -> tuple[BootReport, str]:
    """Boot one virtual Pi against dnsmasq serving ``tree``: its report and the router's log."""
    start_proxy(lan.srv, tmp_path, tree)
    report = boot(lan.pi, model, prefix=prefix, stepping=stepping)
    return report, (tmp_path / "router" / "router.log").read_text()


def files_read(report: BootReport) -> list[tuple[str, str | None]]:
    return [(s.file, s.status) for s in report.stages if s.file is not None]


@pytest.mark.netns
def test_a_pi5_reads_config_then_what_its_builtin_start_elf_reads(
    lan: BootLan, tmp_path: Path, tree: Path
) -> None:
    report, router = served_boot(lan, tmp_path, tree, "pi5", stepping="d0")
    assert report.ok, [s for s in report.stages if not s.ok]
    assert files_read(report) == [
        ("5e1f7e57/config.txt", "not-found"),  # the prefix probe
        ("config.txt", "complete"),  # probed first (a passed probe is no stage of its own)
        ("pieeprom.sig", "not-found"),  # its self-update probe: normal
        ("rootfs-piCore-15.0.gz", "complete"),
        ("modules-6.6.47-piCore-v8.gz", "complete"),
        ("overlay.gz", "complete"),
        ("bcm2712d0-rpi-5-b.dtb", "complete"),  # the D0 stepping's device tree
        ("overlays/overlay_map.dtb", "not-found"),
        ("overlays/vc4-kms-v3d.dtbo", "complete"),  # its section's dtoverlay=
        ("cmdline.txt", "complete"),
        ("kernel6647v8.img", "complete"),
    ]
    assert all(s.data.get("blksize") == 1468 for s in report.stages if s.status == "complete")
    assert report.client()["model"] == "pi5" and report.mac.startswith("2c:cf:67:")
    # its REQUEST, like its DISCOVER, says PXEClient (the router logs both)
    assert router.count("vendor class: PXEClient:Arch:00000:UNDI:002001") >= 2


@pytest.mark.netns
def test_a_pi4_request_carries_option_60(lan: BootLan, tmp_path: Path, tree: Path) -> None:
    report, router = served_boot(lan, tmp_path, tree, "pi4")
    assert report.ok
    request = [ln for ln in router.splitlines() if "DHCPREQUEST" in ln]
    assert request, router
    xid = request[0].split("dnsmasq-dhcp[", 1)[1].split("]: ", 1)[1].split()[0]
    vendor = [ln for ln in router.splitlines() if f"{xid} vendor class: PXEClient" in ln]
    assert len(vendor) == 2, router  # DISCOVER and REQUEST
    names = [f for f, _ in files_read(report)]
    assert "overlays/vc4-kms-v3d-pi4.dtbo" in names and "bcm2711-rpi-4-b.dtb" in names
    # start4.elf reads the initramfs before the device tree and the kernel (rpi-eeprom #87)
    assert (
        names.index("overlay.gz")
        < names.index("bcm2711-rpi-4-b.dtb")
        < names.index("kernel6647v8.img")
    )


@pytest.mark.netns
def test_a_pi3_start_elf_uses_a_new_client_port_per_request(
    lan: BootLan, tmp_path: Path, tree: Path
) -> None:
    report, _ = served_boot(lan, tmp_path, tree, "pi3")
    assert report.ok
    ports = [(s.file, s.data["client_port"]) for s in report.stages if s.file is not None]
    assert ports[:2] == [("bootcode.bin", 49152), ("bootsig.bin", 49152)]  # the ROM
    later = [p for _, p in ports[2:]]
    assert len(set(later)) == len(later) and min(later) > 49152  # bootcode.bin, start.elf
    assert all(
        s.data["blksize"] == 512 for s in report.stages if s.status == "complete"
    )  # tsize only: 512-byte blocks


@pytest.mark.netns
@pytest.mark.parametrize("model", ["pi3", "pi4", "pi5"])
def test_a_missing_overlays_tree_fails_the_boot(lan: BootLan, tmp_path: Path, model: str) -> None:
    root = tmp_path / "tftp"
    make_build(root, omit=("overlays/vc4-kms-v3d.dtbo", "overlays/vc4-kms-v3d-pi4.dtbo"))
    config = (root / "config.txt").read_text()
    (root / "config.txt").write_text(config + "[PI3]\ndtoverlay=vc4-kms-v3d\n")
    report, _ = served_boot(lan, tmp_path, root, model)
    bad = first_failure(report)
    assert bad.file is not None and bad.file.startswith("overlays/vc4-kms-v3d")
    assert bad.code == "tftp-file-not-found" and not report.ok


@pytest.mark.netns
@pytest.mark.parametrize("model", ["pi4", "pi5"])
def test_per_device_trees_by_mac_tftp_prefix_2(
    lan: BootLan, tmp_path: Path, tree: Path, model: str
) -> None:
    """TFTP_PREFIX=2: the directory is the MAC with dashes, the whole tree is read from it."""
    mac = f"{'dc:a6:32' if model == 'pi4' else '2c:cf:67'}:1f:7e:57"
    own = tree / mac.replace(":", "-")
    make_build(own, salt="own tree")
    report, _ = served_boot(lan, tmp_path, tree, model, prefix="mac")
    assert report.ok and report.prefix == f"{own.name}/"
    complete = [f for f, status in files_read(report) if status == "complete"]
    assert complete and all(f.startswith(f"{own.name}/") for f in complete)
