"""Interfaces: kind from sysfs, advice over snapshots, and the real reader in a namespace."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from steps.host.netif import Address, Interface, Snapshot, assess, assess_all, read_kind, recommend
from tests.conftest import ROOT
from tests.support.lab import Lab


def sysfs(tmp: Path, name: str, **files: str) -> Path:
    """A fake /sys/class/net/<name> with the given files ("dir/" values make directories)."""
    d = tmp / name
    d.mkdir()
    (d / "type").write_text("1\n")
    for rel, content in files.items():
        path = d / rel.replace("__", "/")
        if content == "dir/":
            path.mkdir(parents=True, exist_ok=True)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content)
    return d


def test_kind_is_read_from_sysfs(tmp_path: Path) -> None:
    assert read_kind(sysfs(tmp_path, "eth0", device="dir/")) == ("wired", "")
    assert read_kind(sysfs(tmp_path, "wlan0", device="dir/", wireless="dir/"))[0] == "wireless"
    assert read_kind(sysfs(tmp_path, "wlp2", device="dir/", phy80211="dir/"))[0] == "wireless"
    assert read_kind(sysfs(tmp_path, "br0", bridge__stp_state="0\n")) == ("bridge", "stp off")
    assert read_kind(
        sysfs(tmp_path, "br1", bridge__stp_state="1\n", bridge__forward_delay="1500\n")
    ) == (
        "bridge",
        "stp on, forward delay 15 s",
    )
    assert read_kind(sysfs(tmp_path, "bond0", bonding__mode="balance-rr 0\n")) == (
        "bond",
        "mode balance-rr",
    )
    assert (
        read_kind(sysfs(tmp_path, "eth0.10", uevent="DEVTYPE=vlan\nINTERFACE=eth0.10\n"))[0]
        == "vlan"
    )
    assert read_kind(sysfs(tmp_path, "veth1", uevent="INTERFACE=veth1\n"))[0] == "virtual"
    lo = sysfs(tmp_path, "lo")
    (lo / "type").write_text("772\n")
    assert read_kind(lo)[0] == "loopback"


def iface(name: str, kind: str = "wired", *cidrs: str, **kw: object) -> Interface:
    addrs = tuple(Address(c.split("/")[0], int(c.split("/")[1])) for c in cidrs)
    fields: dict[str, object] = {"up": True, "carrier": True, **kw}
    return Interface(name, kind, "02:00:00:00:00:01", addrs, **fields)  # type: ignore[arg-type]


def test_recommends_wired_over_wireless_and_explains_wireless() -> None:
    snap = Snapshot(
        (
            iface("lo", "loopback", "127.0.0.1/8"),
            iface("wlan0", "wireless", "192.168.1.50/24", default_gateway="192.168.1.1"),
            iface("eth0", "wired", "10.0.0.2/24"),
        )
    )
    assert recommend(snap) == "eth0"
    wl = assess(snap.interfaces[1], snap)
    assert wl.usable
    note = next(n for n in wl.notes if n.code == "wireless")
    assert note.level == "warning" and "Ethernet only" in note.reason
    assert next(a.interface.name for a in assess_all(snap)) == "eth0"


def test_unusable_interfaces_are_never_recommended() -> None:
    snap = Snapshot(
        (
            iface("eth0", "wired", master="br0"),
            iface("eth1", "wired", "10.1.0.1/24", up=False, carrier=None),
            iface("eth2", "wired"),
            iface("wlan0", "wireless", "192.168.1.5/24"),
        )
    )
    assert recommend(snap) == "wlan0"
    codes = {a.interface.name: {n.code for n in a.notes} for a in assess_all(snap)}
    assert "enslaved" in codes["eth0"] and "no-address" in codes["eth0"]
    assert "down" in codes["eth1"]
    assert "no-address" in codes["eth2"]
    assert recommend(Snapshot((iface("eth2", "wired"),))) is None


def test_bond_and_bridge_warnings_carry_reasons() -> None:
    snap = Snapshot(
        (
            iface("bond0", "bond", "10.0.0.1/24", detail="mode balance-rr"),
            iface("br0", "bridge", "10.1.0.1/24", detail="stp on, forward delay 15 s"),
            iface("br1", "bridge", "10.2.0.1/24", detail="stp off"),
        )
    )
    bond = assess(snap.interfaces[0], snap).notes[0]
    assert (
        bond.level == "warning" and "balance-rr" in bond.message and "active-backup" in bond.reason
    )
    br0 = assess(snap.interfaces[1], snap).notes[0]
    assert br0.level == "warning" and "forward_delay 0" in br0.reason
    br1 = assess(snap.interfaces[2], snap).notes[0]
    assert br1.level == "info"


def test_subnet_overlap_and_default_route_conflicts_lower_the_score() -> None:
    snap = Snapshot(
        (
            iface("eth0", "wired", "10.0.0.2/24", default_gateway="10.0.0.1"),
            iface("eth1", "wired", "10.0.0.3/24"),
            iface("eth2", "wired", "172.16.0.1/24"),
        )
    )
    # eth0 and eth1 share a subnet; eth2 is clean
    assert recommend(snap) == "eth2"
    notes = {n.code for n in assess(snap.interfaces[1], snap).notes}
    assert "subnet-overlap" in notes
    two_defaults = Snapshot(
        (
            iface("eth0", "wired", "10.0.0.2/24", default_gateway="10.0.0.1"),
            iface("eth1", "wired", "10.1.0.2/24", default_gateway="10.1.0.1"),
        )
    )
    assert "default-route-conflict" in {
        n.code for n in assess(two_defaults.interfaces[0], two_defaults).notes
    }


def test_a_wired_interface_with_the_default_route_wins_a_tie() -> None:
    snap = Snapshot(
        (
            iface("eth0", "wired", "10.0.0.2/24"),
            iface("eth1", "wired", "10.1.0.2/24", default_gateway="10.1.0.1"),
        )
    )
    assert recommend(snap) == "eth1"


@pytest.mark.netns
def test_real_reader_in_a_namespace(lab: Lab, tmp_path: Path) -> None:
    srv = lab.host("srv", "10.99.0.1/24", mac="02:aa:bb:cc:dd:01")
    srv.add_address("172.16.5.1/16")
    srv.run(["ip", "link", "add", "br9", "type", "bridge"])
    srv.run(["ip", "link", "add", "nolink0", "type", "veth", "peer", "name", "nolink1"])
    srv.run(["ip", "link", "set", "nolink0", "mtu", "1400", "up"])  # up; its peer is down
    srv.run(["ip", "route", "add", "default", "via", "10.99.0.254"])
    code = (
        "import json, psutil; from steps.host.netif import read_snapshot, recommend;"
        "s = read_snapshot();"
        "ps = {n: {'flags': st.flags.split(','), 'mtu': st.mtu, 'speed': st.speed}"
        " for n, st in psutil.net_if_stats().items()};"
        "pa = {n: sorted(a.address for a in v if a.family == 2) for n, v in"
        " psutil.net_if_addrs().items()};"
        "import sys; from pathlib import Path;"
        "other = read_snapshot(Path(sys.argv[1]));"
        "print(json.dumps({'ifs': [i.to_data() for i in s.interfaces], 'best': recommend(s),"
        " 'psutil': ps, 'addrs': pa, 'other': [i.to_data() for i in other.interfaces]}))"
    )
    # Another namespace's sysfs (as `nsenter --net` leaves it): an eth0 that is down, with
    # another MAC and MTU, and no directory for the rest.
    sysfs(tmp_path, "eth0", flags="0x1002\n", address="02:00:00:00:00:99\n", mtu="9000\n")
    out = srv.run([sys.executable, "-c", code, str(tmp_path)], cwd=ROOT).stdout
    data = json.loads(out)
    by = {i["name"]: i for i in data["ifs"]}
    assert set(by) == {"lo", "eth0", "br9", "nolink0", "nolink1"}
    eth0 = by["eth0"]
    assert eth0["kind"] == "virtual"  # a veth: no device link
    assert eth0["addresses"] == ["10.99.0.1/24", "172.16.5.1/16"]
    assert eth0["mac"] == "02:aa:bb:cc:dd:01"
    assert eth0["up"] is True and eth0["carrier"] is True
    assert by["br9"]["kind"] == "bridge" and by["br9"]["up"] is False
    assert by["lo"]["kind"] == "loopback"
    # Administratively up without a link: "no link", not "down" (psutil's isup is RUNNING).
    assert by["nolink0"]["up"] is True and by["nolink0"]["carrier"] is False
    assert by["nolink0"]["mtu"] == 1400
    assert data["best"] == "eth0"
    # The same facts psutil reads (getifaddrs and SIOCGIFFLAGS/SIOCGIFMTU), interface by interface.
    assert set(data["psutil"]) == set(by)
    for name, iface in by.items():
        ps = data["psutil"][name]
        assert iface["up"] == ("up" in ps["flags"]), name
        assert iface["mtu"] == ps["mtu"], name
        assert sorted(a.split("/")[0] for a in iface["addresses"]) == data["addrs"][name], name
        if iface["up"] and iface["carrier"]:
            assert iface["speed"] == (ps["speed"] or None), name
    # Not this namespace's sysfs: up and MTU come from the kernel all the same; what only sysfs
    # knows is left unknown rather than taken from the wrong interface.
    other = {i["name"]: i for i in data["other"]}
    assert set(other) == set(by)
    for name, iface in other.items():
        assert (iface["up"], iface["mtu"]) == (by[name]["up"], by[name]["mtu"]), name
        assert iface["carrier"] is None and iface["speed"] is None, name
        assert iface["kind"] == ("loopback" if name == "lo" else "virtual"), name
        assert iface["addresses"] == by[name]["addresses"] and iface["mac"] == by[name]["mac"]
