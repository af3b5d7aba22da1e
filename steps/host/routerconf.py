"""Router mode: the boot options for the LAN's own DHCP server, as OpenWrt ``uci`` and as dnsmasq.

In router mode (``network.mode = "router"``) no proxy runs: the DHCP server that leases the
addresses — an OpenWrt router, or any host whose dnsmasq is the LAN's DHCP server — gives the
Pis their boot options itself and serves TFTP from the directory deploy publishes into. Two pure
renderers produce the same options (golden-file tested):

- ``render_uci_batch`` — the ``uci batch`` script for OpenWrt's ``/etc/config/dhcp``;
- ``render_router_dnsmasq`` — a dnsmasq drop-in for a plain dnsmasq DHCP server (it passes
  ``dnsmasq --test``; the host's own config keeps its ``dhcp-range``).

What a Pi gets, and why (netboot.md §3, §7, §12; dnsmasq 2.90 measured in a namespace):

- **Only Pis are tagged** (``firecore_rpi``): the Raspberry Pi MAC prefixes (``assets/oui.txt``)
  and the Pi 4/5 option-97 GUID prefixes. The router answers every device on the LAN; the boot
  options go to Pis only.
- **Option 43**, the PXE menu "Raspberry Pi Boot", and **option 60** ``PXEClient``: the bytes
  ``steps.wire.dhcp.build_pxe`` makes, which are exactly what dnsmasq's own ``pxe-service=0,
  "Raspberry Pi Boot"`` sends in a full-DHCP reply (the same 32 bytes as in proxy mode, §3.1).
  They are given as plain ``dhcp-option`` lines rather than ``pxe-service`` because (a) dnsmasq
  in full-DHCP mode answers a PXE client that matches no tagged ``pxe-service`` with a menu-less
  option 43, which would change how other PXE machines on the router's LAN boot, and (b)
  OpenWrt's ``dnsmasq.init`` has long had ``dhcp_option`` on ``config tag`` sections, while its
  ``pxe_service`` list is recent. Both send option 60 + 43 byte for byte alike (measured).
- **Option 66**, the TFTP server as an IP literal ("not domain name!", the seed's note): the
  Pi's boot code has no resolver. dnsmasq sends it with a trailing NUL, which the Pis accept.
- **The 3B reply quirk** (the 3B ROM misses an immediate offer, §3.4, §12): a full-DHCP dnsmasq
  pings the address it offers first, so its offer comes ~3 s after the DISCOVER (measured 3.01 s
  with dnsmasq 2.90). OpenWrt keeps that (``noping = 0``); the dnsmasq drop-in also delays replies
  to ``b8:27:eb`` clients by 1 s (``dhcp-reply-delay``), which matters only where ping is off.
- **TFTP** from ``<dir>/current``, the release deploy switched live; ``tftp-no-fail`` so dnsmasq
  starts before the first deploy.

OpenWrt specifics (``package/network/services/dnsmasq/files/dnsmasq.init`` at openwrt/openwrt
commit 48615712): ``enable_tftp``, ``tftp_root`` and ``tftp_no_fail`` are options of the
``config dnsmasq`` section; ``config mac`` becomes ``dhcp-mac=NETWORKID,MAC``, ``config match``
``dhcp-match=set:NETWORKID,MATCH`` and a ``config tag NAME`` section's ``dhcp_option`` list
``dhcp-option=tag:NAME,…``. Since OpenWrt 21.02 dnsmasq runs in a procd jail that bind-mounts
the TFTP root when the service starts; ``addnmount`` adds the whole directory to the jail, so
``current`` — a symlink deploy renames — is followed live instead of being frozen at start.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from steps.answers import Answers, parse_target, resolve_path, router_address
from steps.errors import AnswersError
from steps.host.dnsmasq import (
    PI3_OUI,
    PI_GUID_PREFIXES,
    PXE_MENU_TEXT,
    _check_extra,
    _check_path,
    load_ouis,
)
from steps.wire.dhcp import build_pxe

#: dnsmasq tags (OpenWrt networkids) the router configs set; prefixed to stay clear of the
#: host's own tags.
PI_TAG = "firecore_rpi"
PI3_TAG = "firecore_rpi3"
#: The named uci section holding the Pis' options.
UCI_TAG_SECTION = PI_TAG
#: The dnsmasq section the batch changes: the first one, as OpenWrt's default config has.
UCI_DNSMASQ = "@dnsmasq[0]"


def option43_hex() -> str:
    """Option 43 ("Raspberry Pi Boot" PXE menu) as dnsmasq's hex syntax ``06:01:03:…:ff``."""
    return ":".join(f"{b:02x}" for b in build_pxe((PXE_MENU_TEXT,)))


def router_base(answers: Answers) -> str:
    """The directory the DHCP server serves TFTP from (``current`` below it is the live release):
    deploy.target's path, or network.tftp_root on this host."""
    target = parse_target(answers.deploy.target)
    return target.path if target is not None else str(resolve_path(answers.network.tftp_root))


def required_address(answers: Answers) -> str:
    """The router's IPv4 address for option 66.

    Raises:
        AnswersError: neither network.router_address nor an IPv4 deploy.target gives one.
    """
    address = router_address(answers)
    if address is None:
        raise AnswersError(
            "network.router_address",
            "router mode needs the DHCP server's IPv4 address (option 66 must be an address)",
            fix='set network.router_address = "192.168.1.1" (the router\'s LAN address)',
        )
    return address


@dataclass(frozen=True)
class RouterOptions:
    """Everything the two renderings are made from (so their digest is one)."""

    address: str
    base: str
    ouis: tuple[str, ...]
    reply_delay: bool
    extra: tuple[str, ...]

    def digest(self) -> str:
        """Short sha256 of the options: recorded in both renderings' headers."""
        canon = json.dumps(
            [self.address, self.base, list(self.ouis), self.reply_delay, list(self.extra)]
        )
        return hashlib.sha256(canon.encode()).hexdigest()[:16]


def router_options(answers: Answers, *, ouis: tuple[str, ...] | None = None) -> RouterOptions:
    """The router-mode settings from ``answers`` (checked like the proxy config's values).

    Raises:
        AnswersError: no router address, or a value that would escape its option.
    """
    base = router_base(answers)
    _check_path("deploy.target" if answers.deploy.target else "network.tftp_root", base)
    return RouterOptions(
        address=required_address(answers),
        base=base,
        ouis=ouis or load_ouis(),
        reply_delay=answers.network.pi3_reply_delay,
        extra=tuple(_check_extra(list(answers.network.dnsmasq_extra))),
    )


def _header(kind: str, opts: RouterOptions, comment: str) -> list[str]:
    return [
        f"{comment} Generated by firecore-wizard: Raspberry Pi netboot from {kind}.",
        f"{comment} network-digest: {opts.digest()}",
        f"{comment} router: {opts.address}",
        f"{comment} tftp: {opts.base}",
    ]


def render_uci_batch(answers: Answers, *, ouis: tuple[str, ...] | None = None) -> str:
    """The ``uci batch`` script that gives Pis their boot options from an OpenWrt router.

    Re-running it changes nothing: sections have fixed names, options are set (not appended)
    and the one list it shares with the user (``addnmount``) is removed before it is added.

    Raises:
        AnswersError: as ``router_options``.
    """
    opts = router_options(answers, ouis=ouis)
    d = f"dhcp.{UCI_DNSMASQ}"
    lines = _header("this OpenWrt router's dnsmasq", opts, "#")
    lines += [
        "# Run on the router: uci batch < THIS_FILE && /etc/init.d/dnsmasq restart",
        "# (firecore-wizard does it over ssh after copying /etc/config/dhcp aside).",
        "",
        "# TFTP from the router's storage; deploy switches `current` to the live release.",
        f"set {d}.enable_tftp='1'",
        f"set {d}.tftp_root='{opts.base}/current'",
        f"set {d}.tftp_no_fail='1'",
        "# dnsmasq's procd jail (21.02+) then sees a switch of `current` without a restart.",
        f"del_list {d}.addnmount='{opts.base}'",
        f"add_list {d}.addnmount='{opts.base}'",
    ]
    if opts.reply_delay:
        lines += [
            "# Pi 3B ROMs miss an immediate offer: keep the ping check (it answers ~3 s later).",
            f"set {d}.noping='0'",
        ]
    lines += ["", f"# Tag the Raspberry Pis as {PI_TAG}: MAC prefixes, Pi 4/5 option-97 GUID."]
    for oui in opts.ouis:
        name = f"firecore_mac_{oui.replace(':', '')}"
        lines += [
            f"set dhcp.{name}=mac",
            f"set dhcp.{name}.mac='{oui}:*:*:*'",
            f"set dhcp.{name}.networkid='{PI_TAG}'",
        ]
    for n, guid in enumerate(PI_GUID_PREFIXES, 1):
        name = f"firecore_guid_{n}"
        lines += [
            f"set dhcp.{name}=match",
            f"set dhcp.{name}.match='97,{guid}'",
            f"set dhcp.{name}.networkid='{PI_TAG}'",
        ]
    s = f"dhcp.{UCI_TAG_SECTION}"
    lines += [
        "",
        f'# Their boot options: the PXE menu "{PXE_MENU_TEXT}" (60 + 43) and the TFTP server (66).',
        f"set {s}=tag",
        f"set {s}.dhcp_option='60,PXEClient'",
        f"add_list {s}.dhcp_option='43,{option43_hex()}'",
        f"add_list {s}.dhcp_option='66,{opts.address}'",
        "",
        "commit dhcp",
    ]
    return "\n".join(lines) + "\n"


def render_router_dnsmasq(answers: Answers, *, ouis: tuple[str, ...] | None = None) -> str:
    """A dnsmasq drop-in with the same boot options, for a plain dnsmasq DHCP server.

    Raises:
        AnswersError: as ``router_options``.
    """
    opts = router_options(answers, ouis=ouis)
    lines = _header("this host's DHCP server (router mode)", opts, "#")
    lines += [
        "# A drop-in for the dnsmasq that leases addresses on the Pis' LAN (its own config keeps",
        "# its dhcp-range); the network step rewrites it (the previous one is backed up).",
        "",
        f"# Tag the Raspberry Pis as {PI_TAG}: MAC prefixes, Pi 4/5 option-97 GUID.",
    ]
    lines += [f"dhcp-mac=set:{PI_TAG},{oui}:*:*:*" for oui in opts.ouis]
    lines += [f"dhcp-match=set:{PI_TAG},97,{guid}" for guid in PI_GUID_PREFIXES]
    lines += [
        "",
        f'# Their boot options: the PXE menu "{PXE_MENU_TEXT}" (60 + 43, as pxe-service sends',
        "# them) and the TFTP server as an address (66).",
        f"dhcp-option=tag:{PI_TAG},60,PXEClient",
        f"dhcp-option=tag:{PI_TAG},43,{option43_hex()}",
        f"dhcp-option=tag:{PI_TAG},66,{opts.address}",
    ]
    if opts.reply_delay:
        lines += [
            "",
            "# Pi 3B ROMs miss an immediate reply: answer them 1 s later (where ping is off).",
            f"dhcp-mac=set:{PI3_TAG},{PI3_OUI}:*:*:*",
            f"dhcp-reply-delay=tag:{PI3_TAG},1",
        ]
    lines += [
        "",
        "enable-tftp",
        "# deploy switches current to a new release; start even before the first deploy.",
        f"tftp-root={opts.base}/current",
        "tftp-no-fail",
    ]
    if opts.extra:
        lines += ["", "# network.dnsmasq_extra", *opts.extra]
    return "\n".join(lines) + "\n"
