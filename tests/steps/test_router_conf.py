"""Router mode's renderers (golden files, dnsmasq --test), the UCI model, answers checks.

``uci`` itself cannot run here. What is checked instead: the batch is a golden file; every line
is one this model (written from openwrt/uci's list.c/cli.c/file.c) understands; applying it to
an OpenWrt-shaped /etc/config/dhcp gives a golden result; applying it twice changes nothing; and
the namespace tests run real dnsmasq on what OpenWrt's init script makes of that result.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from steps.answers import Answers, default_answers, parse_answers, parse_target
from steps.errors import AnswersError
from steps.host.dnsmasq import check_conf
from steps.host.routerconf import option43_hex, render_router_dnsmasq, render_uci_batch
from steps.host.uci import UciError, apply_batch, parse_package
from steps.wire.dhcp import parse_pxe
from tests.support.openwrt import DEFAULT_DHCP, translate

DATA = Path(__file__).resolve().parent.parent / "data"
UPDATE = os.environ.get("FIRECORE_UPDATE_GOLDEN") == "1"


def router() -> Answers:
    a = default_answers()
    a.network.mode = "router"
    a.deploy.target = "ssh://root@192.168.1.1/mnt/sda1/firecore"
    return a


def golden(name: str, text: str) -> None:
    path = DATA / name
    if UPDATE:
        path.write_text(text)
    assert text == path.read_text(), f"{name} changed (FIRECORE_UPDATE_GOLDEN=1 rewrites it)"


def test_uci_batch_golden() -> None:
    golden("router-openwrt.uci", render_uci_batch(router()))


def test_dnsmasq_dropin_golden_and_dnsmasq_accepts_it() -> None:
    a = router()
    a.network.router_kind = "dnsmasq"
    a.network.dnsmasq_extra = ["tftp-mtu=1400"]
    text = render_router_dnsmasq(a)
    golden("router-dnsmasq.conf", text)
    assert "syntax check OK" in check_conf(text)


def test_option43_is_the_pxe_menu_dnsmasq_sends() -> None:
    raw = bytes.fromhex(option43_hex().replace(":", ""))
    pxe = parse_pxe(raw)
    assert pxe.has_rpi_menu and [m.description for m in pxe.menu] == ["Raspberry Pi Boot"]
    # the 32 bytes of netboot.md §3.1 (dnsmasq 2.90, pxe-service=0,"Raspberry Pi Boot")
    assert raw.hex() == "0601030a0400505845091400001152617370626572727920506920426f6f74ff"


def test_batch_applies_to_an_openwrt_config_and_is_idempotent() -> None:
    before = parse_package("dhcp", DEFAULT_DHCP)
    batch = render_uci_batch(router())
    once = apply_batch(before, batch)
    golden("router-openwrt-dhcp.after", once.export())
    assert apply_batch(once, batch).export() == once.export()
    dnsmasq = once.section("@dnsmasq[0]")
    assert dnsmasq is not None
    # the user's own addnmount stays, ours is added once; options keep their places
    assert once.value("@dnsmasq[0]", "addnmount") == ["/mnt/usb/other", "/mnt/sda1/firecore"]
    assert [o.name for o in dnsmasq.options][:2] == ["domainneeded", "localise_queries"]
    assert once.value("firecore_rpi", "dhcp_option") == [
        "60,PXEClient",
        f"43,{option43_hex()}",
        "66,192.168.1.1",
    ]


def test_what_openwrt_makes_of_it_is_the_dnsmasq_dropin(tmp_path: Path) -> None:
    """dnsmasq.init's translation of the batch's result carries the drop-in's boot options."""
    a = router()
    base = tmp_path / "mnt"
    a.deploy.target = f"ssh://root@192.168.1.1{base}"
    after = apply_batch(parse_package("dhcp", DEFAULT_DHCP), render_uci_batch(a))
    openwrt = translate(after, lan="10.0.0.100,10.0.0.199,255.255.255.0,1h", leases=tmp_path / "l")
    a.network.router_kind = "dnsmasq"
    plain = render_router_dnsmasq(a)
    want = {line for line in plain.splitlines() if line.startswith(("dhcp-option=", "tftp-root"))}
    assert want <= set(openwrt.splitlines())
    # OpenWrt's `config mac` lines use the old tag syntax (no set:), which dnsmasq takes as set:
    tags = {line.replace("set:", "") for line in plain.splitlines() if "firecore_rpi," in line}
    assert {line for line in tags if line.startswith("dhcp-mac")} <= set(openwrt.splitlines())
    assert "syntax check OK" in check_conf(openwrt)
    assert (base / "current").is_dir()  # the init script's mkdir -p (routerapply replaces it)


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"network": {"mode": "router"}}, "deploy.target"),
        (
            {"network": {"mode": "router"}, "deploy": {"target": "ssh://root@router.lan/mnt/x"}},
            "network.router_address",
        ),
        ({"network": {"router_address": "router.lan"}}, "network.router_address"),
        ({"deploy": {"target": "ssh://root@r/../x"}}, "deploy.target"),
        ({"deploy": {"target": "ssh://root@r/a b"}}, "deploy.target"),
        ({"deploy": {"target": "root@r:/x"}}, "deploy.target"),
    ],
)
def test_router_answers_are_checked(data: dict[str, object], key: str) -> None:
    with pytest.raises(AnswersError) as err:
        parse_answers({"version": 1, **data})
    assert err.value.key == key


def test_router_answers_that_work() -> None:
    a = parse_answers(
        {
            "version": 1,
            "network": {"mode": "router", "router_address": "192.168.1.1"},
            "deploy": {"target": "ssh://root@router.lan:2222/mnt/sda1/firecore/"},
        }
    )
    t = parse_target(a.deploy.target)
    assert t is not None and (t.host, t.port, t.path) == ("router.lan", 2222, "/mnt/sda1/firecore")
    # a plain dnsmasq server on this host needs no target
    parse_answers({"version": 1, "network": {"mode": "router", "router_kind": "dnsmasq",
                                              "router_address": "10.0.0.1"}})  # fmt: skip


def test_uci_model_follows_uci() -> None:
    pkg = parse_package("dhcp", "config dnsmasq\n\toption a 'x'\n")
    out = apply_batch(
        pkg,
        "set dhcp.@dnsmasq[0].a='y'\n"  # in place
        "add_list dhcp.@dnsmasq[0].a='z'\n"  # option → list, old value first
        "del_list dhcp.@dnsmasq[0].missing='q'\n"  # no-op
        "set dhcp.t=tag\nset dhcp.t.o=1  # a comment\n"
        "set dhcp.t=tag2\n"  # re-typed, options kept
        "delete dhcp.t.o\n",
    )
    assert out.export() == "\nconfig dnsmasq\n\tlist a 'y'\n\tlist a 'z'\n\nconfig tag2 't'\n\n"
    with pytest.raises(UciError):
        apply_batch(pkg, "delete dhcp.nosuch")
    with pytest.raises(UciError):
        apply_batch(pkg, "set network.lan.ipaddr='1'")
    quoted = parse_package("dhcp", "config tag 'x'\n\toption v 'it'\\''s' # c\n")
    assert quoted.value("x", "v") == ["it's"] and "'it'\\''s'" in quoted.export()


def test_monitor_source_for_router_mode() -> None:
    from steps.answers import parse_ssh_host
    from steps.monitor import MonitorStep

    t = parse_ssh_host("root@192.168.1.1:2222")
    assert (t.user, t.host, t.port) == ("root", "192.168.1.1", 2222)
    for bad in ("root@", "192.168.1.1", "root@h/x", "root@h:0", "r@h;rm"):
        with pytest.raises(ValueError):
            parse_ssh_host(bad)
    a = router()
    step = MonitorStep.for_answers(a)
    assert step.ssh is not None and step.interface == "br-lan"
    assert step.ssh.target.host == "192.168.1.1"
    a.network.mode = "proxy"
    assert MonitorStep.for_answers(a).ssh is None
