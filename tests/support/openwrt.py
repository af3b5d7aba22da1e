"""OpenWrt's side of router mode, for the namespace router of ``tests.support.sshrouter``.

``uci`` and procd cannot run here, so two small stand-ins take their place on the test router,
each doing only what the real one does for the options router mode uses:

- ``uci batch`` / ``uci export`` run ``steps.host.uci`` on the router's ``/etc/config/dhcp``;
- ``/etc/init.d/dnsmasq start|restart|stop`` turns ``/etc/config/dhcp`` into a dnsmasq config
  the way OpenWrt's ``dnsmasq.init`` does (``package/network/services/dnsmasq/files/
  dnsmasq.init`` at openwrt/openwrt commit 48615712: ``append_bool``/``append_parm`` for the
  ``config dnsmasq`` options, ``dhcp_mac_add``, ``dhcp_match_add``, ``dhcp_tag_add``, and the
  ``mkdir -p "$tftp_root"`` it does before enabling TFTP) and (re)starts the real dnsmasq.

``translate`` is that translation, usable on its own: the boot tests run real dnsmasq on the
config an OpenWrt router would generate from the golden batch.
"""

from __future__ import annotations

from pathlib import Path

from steps.host.uci import Package

#: ``config dnsmasq`` booleans → dnsmasq options (dnsmasq.init ``append_bool``).
_BOOLS = {"tftp_no_fail": "tftp-no-fail", "logdhcp": "log-dhcp", "noping": "no-ping"}


def translate(pkg: Package, *, lan: str, leases: Path) -> str:
    """The dnsmasq config OpenWrt's init script writes for ``pkg`` (what router mode uses).

    Args:
        pkg: the ``dhcp`` package.
        lan: the LAN pool as a ``dhcp-range`` value (the init script derives it from the
            ``lan`` section and the network config: start, limit, netmask, leasetime).
        leases: the lease file.
    """
    lines = ["port=0", "interface=eth0", "bind-dynamic", f"dhcp-leasefile={leases}"]
    for sec in (s for s in pkg.sections if s.type == "dnsmasq"):
        values = {o.name: o.values for o in sec.options}

        def flag(name: str, values: dict[str, list[str]] = values) -> bool:
            return values.get(name, ["0"])[-1] in ("1", "on", "true", "yes", "enabled")

        root = values.get("tftp_root", [""])[-1]
        if root:
            Path(root).mkdir(parents=True, exist_ok=True)  # the init script's mkdir -p
            if flag("enable_tftp"):
                lines.append("enable-tftp")
            lines.append(f"tftp-root={root}")
        lines += [opt for key, opt in _BOOLS.items() if flag(key)]
        lines += [f"dhcp-option={o}" for o in values.get("dhcp_option", [])]
        break  # the first dnsmasq section: the default instance
    for sec in pkg.sections:
        values = {o.name: o.values for o in sec.options}
        netid = values.get("networkid", [""])[-1]
        if sec.type == "mac" and netid and values.get("mac"):
            lines.append(f"dhcp-mac={netid},{values['mac'][-1]}")
        elif sec.type == "match" and netid and values.get("match"):
            lines.append(f"dhcp-match=set:{netid},{values['match'][-1]}")
        elif sec.type == "tag" and sec.name:
            lines += [f"dhcp-option=tag:{sec.name},{o}" for o in values.get("dhcp_option", [])]
    lines.append(f"dhcp-range=set:lan,{lan}")
    return "\n".join(lines) + "\n"


#: A router's /etc/config/dhcp before router mode: OpenWrt's default shape (a dnsmasq section
#: and the lan/wan pools), written as uci writes it, with a user's own TFTP list entry.
DEFAULT_DHCP = """
config dnsmasq
\toption domainneeded '1'
\toption localise_queries '1'
\toption rebind_protection '1'
\toption local '/lan/'
\toption domain 'lan'
\toption expandhosts '1'
\toption authoritative '1'
\toption readethers '1'
\toption leasefile '/tmp/dhcp.leases'
\toption localservice '1'
\tlist addnmount '/mnt/usb/other'

config dhcp 'lan'
\toption interface 'lan'
\toption start '100'
\toption limit '150'
\toption leasetime '12h'

config dhcp 'wan'
\toption interface 'wan'
\toption ignore '1'

"""
