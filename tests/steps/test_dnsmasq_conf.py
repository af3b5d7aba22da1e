"""The generated dnsmasq config: golden files, injection, dnsmasq --test, install/backup/restore."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from steps.answers import Answers, default_answers, parse_answers
from steps.errors import AnswersError, NetworkError, StepError
from steps.host.dnsmasq import (
    check_conf,
    drift,
    install_conf,
    list_backups,
    load_ouis,
    parse_header,
    render_dnsmasq_conf,
    required_version,
    restore_backup,
    unified_diff,
)
from steps.host.netif import Address, Interface
from tests.conftest import needs_root
from tests.support.lab import stop_process

DATA = Path(__file__).resolve().parent.parent / "data"
UPDATE = os.environ.get("FIRECORE_UPDATE_GOLDEN") == "1"


def lo_interface() -> Interface:
    return Interface("lo", "loopback", "00:00:00:00:00:00", (Address("127.0.0.1", 8),), True, True)


def eth0(*cidrs: str) -> Interface:
    addrs = tuple(Address(c.split("/")[0], int(c.split("/")[1])) for c in cidrs)
    return Interface("eth0", "wired", "02:00:00:00:00:01", addrs, up=True, carrier=True)


def base() -> Answers:
    a = default_answers()
    a.network.tftp_root = "/srv/firecore/tftp"
    a.network.state_dir = "/run/firecore"
    a.network.dnsmasq_service = "process"
    return a


def case_default() -> tuple[Answers, Interface]:
    return base(), eth0("10.99.0.1/24")


def case_all_clients() -> tuple[Answers, Interface]:
    a = base()
    a.network.only_pis = False
    a.network.pi3_reply_delay = False
    return a, eth0("192.168.1.23/24")


def case_two_subnets() -> tuple[Answers, Interface]:
    a = base()
    a.network.pi3_reply_delay = False
    # a secondary address in the first subnet must not add a second range
    return a, eth0("10.99.0.1/24", "10.99.0.9/24", "172.16.1.1/16")


def case_systemd_extra() -> tuple[Answers, Interface]:
    a = base()
    a.network.dnsmasq_service = "systemd"
    a.network.only_pis = False
    a.network.dnsmasq_extra = ["tftp-single-port", "tftp-mtu=1400"]
    return a, eth0("10.99.0.1/24")


def case_classroom() -> tuple[Answers, Interface]:
    a = base()
    a.network.fleet_size = 100
    return a, eth0("10.99.0.1/24")


CASES: dict[str, Callable[[], tuple[Answers, Interface]]] = {
    "default": case_default,
    "classroom": case_classroom,
    "all-clients": case_all_clients,
    "two-subnets": case_two_subnets,
    "systemd-extra": case_systemd_extra,
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_render_matches_golden_file(name: str) -> None:
    answers, iface = CASES[name]()
    text = render_dnsmasq_conf(answers, iface)
    golden = DATA / f"dnsmasq-{name}.conf"
    if UPDATE:
        golden.write_text(text)
    assert text == golden.read_text(), (
        f"re-generate with FIRECORE_UPDATE_GOLDEN=1 and review {golden}"
    )


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden_files_pass_real_dnsmasq_test(name: str) -> None:
    assert "syntax check OK" in check_conf((DATA / f"dnsmasq-{name}.conf").read_text())


def test_render_is_proxy_only_and_follows_the_options() -> None:
    text = render_dnsmasq_conf(*case_two_subnets())
    ranges = [line for line in text.splitlines() if line.startswith("dhcp-range=")]
    assert ranges == ["dhcp-range=tag:eth0,10.99.0.1,proxy", "dhcp-range=tag:eth0,172.16.1.1,proxy"]
    assert "port=0" in text.splitlines()
    assert "dhcp-reply-delay" not in text
    assert 'pxe-service=tag:rpi,0,"Raspberry Pi Boot"' in text
    assert "dhcp-match=set:rpi,97,0:52:50:69:35" in text  # RPi5 GUID
    assert "dhcp-ignore=tag:!rpi" in text.splitlines()  # other PXE clients get no offer
    open_menu = render_dnsmasq_conf(*case_all_clients())
    assert 'pxe-service=0,"Raspberry Pi Boot"' in open_menu
    assert "set:rpi," not in open_menu and "dhcp-ignore" not in open_menu
    delayed = render_dnsmasq_conf(*case_default())
    assert "dhcp-mac=set:rpi3,b8:27:eb:*:*:*" in delayed
    assert "dhcp-reply-delay=tag:rpi3,1" in delayed


@pytest.mark.parametrize(
    ("fleet", "limit"), [(1, 50), (25, 50), (26, 52), (100, 200), (1000, 2000)]
)
def test_tftp_max_follows_the_fleet_size(fleet: int, limit: int) -> None:
    answers, iface = case_default()
    answers.network.fleet_size = fleet
    lines = render_dnsmasq_conf(answers, iface).splitlines()
    assert [line for line in lines if line.startswith("tftp-max=")] == [f"tftp-max={limit}"]


def test_the_fleet_size_is_a_checked_answer_and_tftp_max_belongs_to_it() -> None:
    for bad in (0, 1001, "many"):
        with pytest.raises(AnswersError) as err:
            parse_answers({"version": 1, "network": {"fleet_size": bad}})
        assert err.value.key == "network.fleet_size"
    answers, iface = case_default()
    answers.network.dnsmasq_extra = ["tftp-max=500"]
    with pytest.raises(AnswersError) as owned:
        render_dnsmasq_conf(answers, iface)
    assert "tftp-max" in owned.value.message
    before = parse_header(render_dnsmasq_conf(*case_default()))
    after = parse_header(render_dnsmasq_conf(*case_classroom()))
    assert before is not None and after is not None
    assert before.digest != after.digest  # an installed config for another fleet is stale


def test_dnsmasq_serves_the_classroom_limit_without_lowering_it(tmp_path: Path) -> None:
    """Real dnsmasq, the usual 1024 open files: 400 Pis → tftp-max=800, kept (it logs a cut)."""
    needs_root()
    answers, _ = case_default()
    answers.network.fleet_size = 400
    answers.network.interface = "lo"
    answers.network.tftp_root = str(tmp_path)
    answers.network.state_dir = str(tmp_path / "state")
    text = render_dnsmasq_conf(answers, lo_interface())
    assert "tftp-max=800" in text.splitlines()
    (tmp_path / "current").mkdir()
    (tmp_path / "state").mkdir()
    conf = tmp_path / "firecore.conf"
    conf.write_text(text)
    log = tmp_path / "dnsmasq.out"
    log.touch()
    script = (
        "ip link set lo up; ulimit -n 1024; "
        f"exec dnsmasq --no-daemon --conf-file={conf} --user=root --log-facility=- >{log} 2>&1"
    )
    proc = subprocess.Popen(["unshare", "--net", "sh", "-c", script], start_new_session=True)
    try:
        deadline = time.monotonic() + 240  # a hang-stopper: it logs at once
        while "TFTP root is" not in log.read_text(errors="replace"):
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.02)
    finally:
        stop_process(proc)
    assert "restricting maximum simultaneous TFTP transfers" not in log.read_text()


def test_systemd_mode_leaves_pid_lease_and_log_to_the_service() -> None:
    text = render_dnsmasq_conf(*case_systemd_extra())
    for option in ("pid-file=", "dhcp-leasefile=", "log-facility="):
        assert option not in text
    assert text.rstrip().endswith("tftp-single-port\ntftp-mtu=1400")
    proc_text = render_dnsmasq_conf(*case_default())
    assert "pid-file=/run/firecore/dnsmasq.pid" in proc_text


def test_no_ipv4_address_is_a_network_error_naming_the_key() -> None:
    with pytest.raises(NetworkError) as err:
        render_dnsmasq_conf(base(), eth0())
    assert "network.interface" in err.value.message
    assert "no IPv4 address" in err.value.message


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("tftp_root", "/srv/tftp\nport=53"),
        ("tftp_root", "/srv/tftp,eth1"),
        ("tftp_root", '/srv/"tftp"'),
        ("state_dir", "/run/fire core"),
        ("dnsmasq_conf", "/etc/dnsmasq.d/x#y.conf"),
        ("backup_dir", "/var/backups/a\rb"),
        ("interface", "eth0\nport=53"),
        ("interface", "eth0,lo"),
        ("dnsmasq_extra", ["tftp-mtu=1400\nport=53"]),
        ("dnsmasq_extra", ["# comment"]),
    ],
)
def test_answers_reject_injected_values_naming_the_key(key: str, value: object) -> None:
    with pytest.raises(AnswersError) as err:
        parse_answers({"version": 1, "network": {key: value}})
    assert err.value.key.startswith(f"network.{key}")


@pytest.mark.parametrize(
    ("key", "value", "shown"),
    [
        ("tftp_root", "/srv/tftp\nport=53", "network.tftp_root"),
        ("tftp_root", "/srv/tftp,eth1", "network.tftp_root"),
        ("state_dir", "/run/a b", "network.state_dir"),
        ("interface", "eth0:1", "network.interface"),
        ("interface", "eth0\ndhcp-range=1.2.3.4", "network.interface"),
        ("dnsmasq_extra", ["dhcp-range=10.0.0.10,10.0.0.20"], "network.dnsmasq_extra[0]"),
        ("dnsmasq_extra", ["tftp-single-port", "port=53"], "network.dnsmasq_extra[1]"),
        ("dnsmasq_extra", ["log-dhcp\nport=53"], "network.dnsmasq_extra[0]"),
    ],
)
def test_render_rechecks_values_that_bypassed_validation(
    key: str, value: object, shown: str
) -> None:
    a = base()
    # model_construct skips validation: the renderer must still refuse the value
    net = a.network.model_construct(**{**a.network.model_dump(), key: value})
    bad = a.model_construct(**{**dict(a), "network": net})
    name = value if key == "interface" and isinstance(value, str) else "eth0"
    iface = Interface(name, "wired", addresses=(Address("10.99.0.1", 24),), up=True)
    with pytest.raises(AnswersError) as err:
        render_dnsmasq_conf(bad, iface)
    assert err.value.key == shown


def test_dnsmasq_test_failure_reports_dnsmasqs_own_message() -> None:
    # the allow-list keeps such a line out of the answers; a config edited by hand still gets it
    text = render_dnsmasq_conf(base(), eth0("10.99.0.1/24")) + "tftp-fancy-mode=1\n"
    with pytest.raises(NetworkError) as err:
        check_conf(text)
    line = text.splitlines().index("tftp-fancy-mode=1") + 1
    assert f"bad option at line {line}" in err.value.message
    assert "'tftp-fancy-mode=1'" in err.value.message
    assert "dnsmasq:" in err.value.details


def test_header_records_the_addresses_and_detects_drift() -> None:
    answers, iface = case_two_subnets()
    text = render_dnsmasq_conf(answers, iface)
    header = parse_header(text)
    assert header is not None
    assert header.interface == "eth0"
    assert header.addresses == ("10.99.0.1/24", "10.99.0.9/24", "172.16.1.1/16")
    same = drift(text, iface)
    assert same is not None and not same.changed
    moved = drift(text, eth0("10.99.0.7/24"))
    assert moved is not None and moved.changed
    assert moved.describe() == "10.99.0.1/24 10.99.0.9/24 172.16.1.1/16 → 10.99.0.7/24 on eth0"
    gone = drift(text, None)
    assert gone is not None and gone.changed
    assert drift("interface=eth0\n", iface) is None  # not our file


def test_digest_follows_only_the_network_section() -> None:
    a, iface = case_default()
    b = base()
    b.extensions.names = ["nano.tcz"]
    b.network.probe_seconds = 1
    b.network.backup_dir = "/tmp/elsewhere"
    assert render_dnsmasq_conf(a, iface) == render_dnsmasq_conf(b, iface)
    b.network.pi3_reply_delay = False
    digest_a = parse_header(render_dnsmasq_conf(a, iface))
    digest_b = parse_header(render_dnsmasq_conf(b, iface))
    assert digest_a is not None and digest_b is not None
    assert digest_a.digest != digest_b.digest


def test_required_version_follows_the_options_used() -> None:
    assert required_version(render_dnsmasq_conf(*case_default())) == (2, 77)
    assert required_version(render_dnsmasq_conf(*case_all_clients())) == (2, 73)


def test_oui_table_is_loaded_and_validated(tmp_path: Path) -> None:
    ouis = load_ouis()
    assert ouis[0] == "b8:27:eb"
    assert {"dc:a6:32", "e4:5f:01", "d8:3a:dd", "2c:cf:67", "28:cd:c1", "88:a2:9e"} <= set(ouis)
    bad = tmp_path / "oui.txt"
    bad.write_text("# comment\nb8:27:eb\nB8-27-EB\n")
    with pytest.raises(NetworkError) as err:
        load_ouis(bad)
    assert f"{bad}:3" in err.value.message


# ------------------------------------------------------------------ install / backup / restore


def _tmp_answers(tmp_path: Path) -> Answers:
    a = base()
    a.network.dnsmasq_conf = str(tmp_path / "etc" / "dnsmasq.d" / "firecore.conf")
    a.network.backup_dir = str(tmp_path / "backups")
    a.network.state_dir = str(tmp_path / "state")
    return a


def test_install_backs_up_what_it_replaces_and_restore_brings_it_back(tmp_path: Path) -> None:
    a = _tmp_answers(tmp_path)
    conf = Path(a.network.dnsmasq_conf)
    conf.parent.mkdir(parents=True)
    conf.write_text("# the admin's own proxy config\ndhcp-range=10.0.0.1,proxy\n")
    first = render_dnsmasq_conf(a, eth0("10.99.0.1/24"))

    done = install_conf(a, first)
    assert done.changed and done.backup is not None
    assert conf.read_text() == first
    assert done.backup.read_text().startswith("# the admin's own proxy config")
    assert done.backup.parent == tmp_path / "backups"  # never inside the dnsmasq conf-dir
    assert sorted(p.name for p in conf.parent.iterdir()) == ["firecore.conf"]
    assert oct(conf.stat().st_mode & 0o777) == "0o644"

    again = install_conf(a, first)  # identical: no rewrite, no new backup
    assert not again.changed and again.backup is None
    assert len(list_backups(a)) == 1

    second = render_dnsmasq_conf(a, eth0("10.99.0.7/24"))
    install_conf(a, second)
    backups = list_backups(a)
    assert [b.read_text() for b in backups] == [done.backup.read_text(), first]

    restored = restore_backup(a)  # newest backup = the first generated config
    assert conf.read_text() == first
    assert restored.backup is not None and restored.backup.read_text() == second
    restore_backup(a, backups[0])
    assert conf.read_text().startswith("# the admin's own proxy config")


def test_restore_without_backup_says_so(tmp_path: Path) -> None:
    with pytest.raises(NetworkError) as err:
        restore_backup(_tmp_answers(tmp_path))
    assert "no backup" in err.value.message


def test_no_replacement_without_a_backup(tmp_path: Path) -> None:
    a = _tmp_answers(tmp_path)
    conf = Path(a.network.dnsmasq_conf)
    conf.parent.mkdir(parents=True)
    conf.write_text("old\n")
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    a.network.backup_dir = str(blocker)  # the backup cannot be written
    with pytest.raises(StepError) as err:
        install_conf(a, render_dnsmasq_conf(a, eth0("10.99.0.1/24")))
    assert "cannot write" in err.value.message
    assert conf.read_text() == "old\n"
    assert sorted(p.name for p in conf.parent.iterdir()) == ["firecore.conf"]


def test_unified_diff_names_the_file_and_is_empty_when_identical(tmp_path: Path) -> None:
    path = tmp_path / "f.conf"
    assert unified_diff("a\n", "a\n", path) == []
    diff = unified_diff("port=0\nlog-dhcp\n", "port=0\nenable-tftp\n", path)
    assert diff[0] == f"--- {path} (installed)"
    assert "-log-dhcp" in diff and "+enable-tftp" in diff
    assert unified_diff(None, "x\n", path)[0] == "--- /dev/null"
