"""The host's network interfaces, and which one the Pis should boot from.

``read_snapshot()`` reads everything once (netifaces for addresses and default routes,
/sys/class/net for link state and the interface kind); everything after that is a pure function
over the frozen ``Snapshot``, so the advice (``assess``, ``recommend``) is unit-tested without
touching the host. The proxy-DHCP ranges of the dnsmasq config come from the chosen interface's
own IPv4 addresses, which is why ``Address`` keeps the prefix length.
"""

from __future__ import annotations

import contextlib
import ipaddress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

Kind = Literal["wired", "wireless", "bridge", "bond", "vlan", "virtual", "loopback"]
Level = Literal["error", "warning", "info"]

SYS_CLASS_NET = Path("/sys/class/net")
_ARPHRD_LOOPBACK = 772
_IFF_UP = 0x1


@dataclass(frozen=True)
class Address:
    """One IPv4 address of an interface, with its prefix length."""

    address: str
    prefixlen: int

    @property
    def network(self) -> ipaddress.IPv4Network:
        """The subnet this address is on."""
        return ipaddress.IPv4Interface(f"{self.address}/{self.prefixlen}").network

    def __str__(self) -> str:
        return f"{self.address}/{self.prefixlen}"


@dataclass(frozen=True)
class Interface:
    """One interface as read at snapshot time."""

    name: str
    kind: Kind
    mac: str = ""
    addresses: tuple[Address, ...] = ()
    up: bool = False
    carrier: bool | None = None
    """Link detected; None when the kernel cannot say (interface down)."""
    speed: int | None = None
    """Link speed in Mb/s; None when unknown."""
    mtu: int = 0
    default_gateway: str | None = None
    """The IPv4 default route leaves through this interface via this gateway."""
    master: str | None = None
    """The bridge or bond this interface is a port of."""
    detail: str = ""
    """Kind-specific facts shown with the warnings (bond mode, bridge STP state)."""

    def to_data(self) -> dict[str, Any]:
        """JSON-able form (for ``Result.data`` and the TUI table)."""
        return {
            "name": self.name,
            "kind": self.kind,
            "mac": self.mac,
            "addresses": [str(a) for a in self.addresses],
            "up": self.up,
            "carrier": self.carrier,
            "speed": self.speed,
            "mtu": self.mtu,
            "default_gateway": self.default_gateway,
            "master": self.master,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class Snapshot:
    """All interfaces of this host (network namespace) at one moment."""

    interfaces: tuple[Interface, ...] = ()

    def get(self, name: str) -> Interface | None:
        """The interface called ``name``, or None."""
        return next((i for i in self.interfaces if i.name == name), None)

    @property
    def names(self) -> list[str]:
        """Interface names in snapshot order."""
        return [i.name for i in self.interfaces]


@dataclass(frozen=True)
class Note:
    """One piece of advice about an interface: what, why, at which level."""

    code: str
    level: Level
    message: str
    reason: str = ""


@dataclass(frozen=True)
class Assessment:
    """Whether an interface can serve the Pis, how well, and the warnings that go with it."""

    interface: Interface
    usable: bool
    score: int
    notes: tuple[Note, ...] = field(default_factory=tuple)

    def to_data(self) -> dict[str, Any]:
        """JSON-able form."""
        return {
            "interface": self.interface.to_data(),
            "usable": self.usable,
            "score": self.score,
            "notes": [
                {"code": n.code, "level": n.level, "message": n.message, "reason": n.reason}
                for n in self.notes
            ],
        }


# ------------------------------------------------------------------ advice (pure)

_KIND_SCORE: dict[Kind, int] = {
    "wired": 100,
    "bridge": 90,
    "vlan": 80,
    "bond": 70,
    "virtual": 50,
    "wireless": 10,
    "loopback": 0,
}


def _kind_notes(iface: Interface) -> list[Note]:
    notes: list[Note] = []
    if iface.kind == "wireless":
        notes.append(
            Note(
                "wireless",
                "warning",
                f"{iface.name} is a wireless interface",
                "Pis netboot over Ethernet only, and most access points do not forward the "
                "Pi's PXE broadcasts between the wired and the wireless side; use a wired port "
                "on the Pis' switch",
            )
        )
    elif iface.kind == "bond":
        notes.append(
            Note(
                "bond",
                "warning",
                f"{iface.name} is a bond{f' ({iface.detail})' if iface.detail else ''}",
                "the Pi's boot ROM sends broadcasts and expects replies from the address it "
                "saw; balance-rr/balance-xor bonds can send replies out of another port or "
                "duplicate them — prefer active-backup or 802.3ad with a matching switch config",
            )
        )
    elif iface.kind == "bridge":
        stp_on = "stp on" in iface.detail
        notes.append(
            Note(
                "bridge",
                "warning" if stp_on else "info",
                f"{iface.name} is a bridge{f' ({iface.detail})' if iface.detail else ''}",
                "dnsmasq must serve the bridge itself, not its ports; with STP on, a port that "
                "just came up stays in listening/learning for the forward delay, longer than a "
                "Pi 3's 25 s DHCP window — set stp_state 0 or forward_delay 0"
                if stp_on
                else "dnsmasq serves the bridge itself, never its member ports",
            )
        )
    elif iface.kind == "vlan":
        notes.append(
            Note(
                "vlan",
                "info",
                f"{iface.name} is a VLAN interface",
                "the Pis must sit on an untagged (access) port of this VLAN: the boot ROM "
                "cannot tag frames",
            )
        )
    elif iface.kind == "virtual":
        notes.append(
            Note(
                "virtual",
                "info",
                f"{iface.name} is a virtual interface (veth, tun, dummy …)",
                "fine for containers, namespaces and the virtual-Pi self-test; real Pis need a "
                "physical port or a bridge that contains one",
            )
        )
    return notes


def _conflict_notes(iface: Interface, snapshot: Snapshot) -> list[Note]:
    notes: list[Note] = []
    for addr in iface.addresses:
        for other in snapshot.interfaces:
            if other.name == iface.name or other.kind == "loopback":
                continue
            clash = [a for a in other.addresses if a.network.overlaps(addr.network)]
            if clash:
                notes.append(
                    Note(
                        "subnet-overlap",
                        "warning",
                        f"{addr.network} of {iface.name} overlaps {clash[0]} on {other.name}",
                        "with two interfaces on one subnet, ARP replies and the proxy offer "
                        "can leave through the wrong port and the Pi cannot reach the TFTP "
                        "server; keep one interface per subnet",
                    )
                )
    defaults = [i.name for i in snapshot.interfaces if i.default_gateway]
    if iface.default_gateway and len(defaults) > 1:
        notes.append(
            Note(
                "default-route-conflict",
                "warning",
                f"default routes leave through {', '.join(defaults)}",
                "replies may take a different path than requests; keep a single default route",
            )
        )
    return notes


def assess(iface: Interface, snapshot: Snapshot) -> Assessment:
    """Can ``iface`` serve the Pis? Its score (higher is better) and every warning with a reason.

    Unusable: loopback, a port of a bridge/bond, down, or without an IPv4 address (the proxy
    range is derived from it).
    """
    notes = _kind_notes(iface)
    usable = True
    if iface.kind == "loopback":
        note = Note(
            "loopback",
            "error",
            f"{iface.name} is the loopback interface: no Pi can reach it",
            "set network.interface to the wired interface on the Pis' LAN",
        )
        return Assessment(iface, False, 0, (note,))
    if iface.master:
        usable = False
        notes.append(
            Note(
                "enslaved",
                "error",
                f"{iface.name} is a port of {iface.master}",
                f"its addresses live on {iface.master}; choose {iface.master} instead",
            )
        )
    if not iface.up:
        usable = False
        notes.append(
            Note(
                "down",
                "error",
                f"{iface.name} is down",
                f"bring it up: `ip link set {iface.name} up`",
            )
        )
    elif iface.carrier is False:
        notes.append(
            Note(
                "no-carrier",
                "warning",
                f"{iface.name} has no link",
                "no cable or the switch port is off; the Pis will not reach this server",
            )
        )
    if not iface.addresses:
        usable = False
        notes.append(
            Note(
                "no-address",
                "error",
                f"{iface.name} has no IPv4 address",
                "proxy DHCP answers on the interface's own subnet; give it an address "
                "(normally from the LAN's DHCP server, or static)",
            )
        )
    notes.extend(_conflict_notes(iface, snapshot))
    score = _KIND_SCORE[iface.kind] if usable else 0
    if usable:
        score += 20 if iface.carrier else 0
        score += 5 if iface.default_gateway else 0
        score -= 30 * sum(1 for n in notes if n.code == "subnet-overlap")
        score -= 20 * sum(1 for n in notes if n.code == "default-route-conflict")
        score = max(score, 1)
    return Assessment(iface, usable, score, tuple(notes))


def assess_all(snapshot: Snapshot) -> list[Assessment]:
    """``assess`` for every interface, best first (ties by name)."""
    found = [assess(i, snapshot) for i in snapshot.interfaces]
    return sorted(found, key=lambda a: (-a.score, a.interface.name))


def recommend(snapshot: Snapshot) -> str | None:
    """Name of the best usable interface, or None when none can serve the Pis.

    Wired beats bridge, VLAN, bond, virtual and wireless; link up, a default route (a router,
    hence usually the LAN's DHCP server, is on that segment) and no subnet overlap add to it.
    """
    best = next((a for a in assess_all(snapshot) if a.usable), None)
    return best.interface.name if best else None


def missing_interface(name: str, snapshot: Snapshot) -> tuple[str, str]:
    """What to say when ``network.interface`` names no interface on this host: the message
    (with the interfaces there are) and the fix (the one ``recommend`` picks)."""
    best = recommend(snapshot)
    known = ", ".join(n for n in snapshot.names if n != "lo") or "none"
    return (
        f"network.interface: {name!r} does not exist on this host (interfaces: {known})",
        f"set network.interface = {best!r}" if best else "connect the Pis' LAN first",
    )


# ------------------------------------------------------------------ reading the host


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def read_kind(sysdir: Path) -> tuple[Kind, str]:
    """Kind of the interface whose sysfs directory is ``sysdir``, plus a detail string.

    Order matters: a bridge or bond has no ``device`` link either, so it is checked before
    "virtual"; a wireless NIC has both ``device`` and ``wireless``/``phy80211``.
    """
    uevent = _read(sysdir / "uevent") or ""
    devtype = ""
    for line in uevent.splitlines():
        if line.startswith("DEVTYPE="):
            devtype = line.partition("=")[2]
    iftype = _read(sysdir / "type")
    if iftype is not None and iftype.isdigit() and int(iftype) == _ARPHRD_LOOPBACK:
        return "loopback", ""
    if (sysdir / "wireless").exists() or (sysdir / "phy80211").exists() or devtype == "wlan":
        return "wireless", ""
    if (sysdir / "bridge").is_dir() or devtype == "bridge":
        stp = _read(sysdir / "bridge" / "stp_state")
        delay = _read(sysdir / "bridge" / "forward_delay")
        detail = ""
        if stp is not None:
            detail = "stp on" if stp != "0" else "stp off"
            if stp != "0" and delay and delay.isdigit():
                detail += f", forward delay {int(delay) / 100:g} s"
        return "bridge", detail
    if (sysdir / "bonding").is_dir() or devtype == "bond":
        mode = _read(sysdir / "bonding" / "mode") or ""
        return "bond", f"mode {mode.split()[0]}" if mode else ""
    if devtype == "vlan":
        return "vlan", ""
    if (sysdir / "device").exists():
        return "wired", ""
    return "virtual", devtype


def _prefixlen(netmask: str | None) -> int:
    if not netmask:
        return 32
    try:
        return ipaddress.IPv4Network(f"0.0.0.0/{netmask}").prefixlen
    except ValueError:
        return 32


def _default_gateways() -> dict[str, str]:
    """Interface → IPv4 default gateway (netifaces reads the kernel's routing table)."""
    import netifaces

    out: dict[str, str] = {}
    with contextlib.suppress(OSError, ValueError):
        for entry in netifaces.gateways().get(netifaces.AF_INET, []):
            gateway, name, is_default = entry[0], entry[1], entry[2] if len(entry) > 2 else False
            if is_default and name not in out:
                out[str(name)] = str(gateway)
    return out


def _flags(sysdir: Path) -> int | None:
    try:
        return int(_read(sysdir / "flags") or "", 16)
    except ValueError:
        return None


def _number(sysdir: Path, name: str) -> int | None:
    """A positive number from a sysfs attribute (``speed`` is -1 or unreadable when unknown)."""
    try:
        value = int(_read(sysdir / name) or "")
    except ValueError:
        return None
    return value if value > 0 else None


def _ioctl_state(name: str) -> tuple[bool, int]:
    """(up, MTU) of ``name`` asked of the kernel through a socket of this network namespace."""
    import fcntl
    import socket
    import struct

    siocgifflags, siocgifmtu = 0x8913, 0x8921
    request = struct.pack("16s16x", name.encode()[:15])
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            flags = struct.unpack_from("H", fcntl.ioctl(sock, siocgifflags, request), 16)[0]
            mtu = struct.unpack_from("i", fcntl.ioctl(sock, siocgifmtu, request), 16)[0]
        except OSError:
            return False, 0
    return bool(flags & _IFF_UP), int(mtu)


def read_snapshot(sys_root: Path = SYS_CLASS_NET) -> Snapshot:
    """Read every interface of this host (this network namespace) now.

    The names and addresses come from ``getifaddrs`` (netifaces), which lists every interface of
    the namespace, with or without an address; up (``IFF_UP``), MTU, speed, carrier and kind from
    sysfs. psutil reads the same sources, at the price of an import that cost more than
    everything else a no-change rerun's network step does (``tests/steps/test_netif.py``
    compares the two on a namespace's interfaces).

    sysfs shows the interfaces of the namespace it was mounted for: ``ip netns exec`` mounts one
    per namespace, ``nsenter --net`` keeps the host's. A directory that is missing, or whose MAC
    is not the one ``getifaddrs`` gave, is another namespace's: up and MTU are then asked through
    a socket of this namespace, and what only sysfs tells (carrier, speed, kind beyond loopback)
    stays unknown.
    """
    import netifaces

    gateways = _default_gateways()
    interfaces: list[Interface] = []
    for name in sorted(netifaces.interfaces()):
        sysdir = sys_root / name
        addrs = netifaces.ifaddresses(name)
        links = addrs.get(netifaces.AF_LINK, [])
        mac = str(links[0].get("addr", "")).lower() if links else ""
        v4 = tuple(
            Address(str(a["addr"]), _prefixlen(a.get("netmask")))
            for a in addrs.get(netifaces.AF_INET, [])
            if a.get("addr")
        )
        flags = _flags(sysdir)
        if flags is not None and (_read(sysdir / "address") or "").lower() == mac:
            kind, detail = read_kind(sysdir)
            carrier_text = _read(sysdir / "carrier")
            carrier = None if carrier_text not in ("0", "1") else carrier_text == "1"
            master_link = sysdir / "master"
            master = master_link.resolve().name if master_link.is_symlink() else None
            up, mtu = bool(flags & _IFF_UP), _number(sysdir, "mtu") or 0
            speed = _number(sysdir, "speed")
        else:
            kind = "loopback" if name == "lo" else "virtual"
            detail = f"{sys_root} is another network namespace's: kind and link unknown"
            carrier, master, speed = None, None, None
            up, mtu = _ioctl_state(name)
        interfaces.append(
            Interface(
                name=name,
                kind=kind,
                mac=mac,
                addresses=v4,
                up=up,
                carrier=carrier,
                speed=speed,
                mtu=mtu,
                default_gateway=gateways.get(name),
                master=master,
                detail=detail,
            )
        )
    return Snapshot(tuple(interfaces))
