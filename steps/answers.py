"""The answers model: the one state of the whole wizard.

The TUI fills it, ``--answers FILE`` loads it, the TUI saves it, and every step reads it. Same
answers → same outputs, whichever front end ran them. The file is TOML with ``version = 1``;
unknown keys are errors with a "did you mean" hint; every key has a default except ``version``.

Relative paths in the file (``build.output`` …) are taken relative to the current working
directory of the run, like every other command-line tool, not relative to the answers file.
Secrets (the app's bearer token) never live here: ``app.secrets_file`` names a separate TOML file
that must be mode 0600.
"""

from __future__ import annotations

import ast
import binascii
import functools
import hashlib
import inspect
import ipaddress
import itertools
import json
import os
import re
import stat
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from steps.errors import AnswersError, UsageError
from steps.model import BaseModel, Field, ValidationError, ValidationInfo, field_validator
from steps.textsafe import has_control, printable

Arch = Literal["armv6", "armv7", "armv7l", "armhf", "aarch64"]
Board = Literal["pi0", "pi02", "pi1", "pi2", "pi3", "pi4", "pi5"]
ServiceMode = Literal["systemd", "process", "none"]
NetworkMode = Literal["proxy", "router"]
RouterKind = Literal["openwrt", "dnsmasq"]
ExtensionMode = Literal["builtin", "extracted"]
CardMode = Literal["once", "many"]

DEFAULT_MIRRORS = ["http://tinycorelinux.net/", "http://repo.tinycorelinux.net/"]
#: The rpi-eeprom repository at a fixed commit (raw files): the bundled firmware catalog
#: (assets/eeprom.json) pins the sha256 of every file it names there.
DEFAULT_EEPROM_MIRRORS = [
    "https://raw.githubusercontent.com/raspberrypi/rpi-eeprom/86759b04b22173e10186139ac3ae4debcd0d7252/"
]
BOARDS: tuple[str, ...] = ("pi0", "pi02", "pi1", "pi2", "pi3", "pi4", "pi5")
ARCHES: tuple[str, ...] = ("armv6", "armv7", "armv7l", "armhf", "aarch64")

# Every pattern is used with ``fullmatch``: ``$`` in ``re.match`` also matches before a final
# newline, so "value\n" would pass (and end a line early in app.env or a dnsmasq config).
_HOSTNAME = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")
_SERIAL = re.compile(r"[0-9a-f]{8}")
_MAC_KEY = re.compile(r"[0-9a-f]{2}([:-])[0-9a-f]{2}(\1[0-9a-f]{2}){4}")
_VERSION = re.compile(r"\d{1,2}\.\d+(\.\d+)?(-?(beta|rc)\d*[a-z]?)?")
_IFACE = re.compile(r"[A-Za-z0-9_.:@-]{1,15}")
_PROFILE = re.compile(r"[A-Za-z0-9_-]{1,40}")
_MIRROR = re.compile(r"https?://[^\s/@]+(@[^\s/@]+)?(/[^\s]*)?")
_EXTENSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]*\.tcz")
_ENV_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_IPV4 = re.compile(r"(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}")
# ssh://user@host[:port]/path — a plain user name, a host name or IPv4/[IPv6] address, an
# absolute path of safe characters (it goes into remote shell commands and dnsmasq options).
_TARGET = re.compile(
    r"ssh://(?P<user>[A-Za-z_][A-Za-z0-9._-]{0,31})@"
    r"(?P<host>[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?|\[[0-9A-Fa-f:.]{2,45}\])"
    r"(?::(?P<port>[0-9]{1,5}))?(?P<path>/[A-Za-z0-9._/+-]*)"
)
# Characters that would let a value escape its line or field in a generated config file.
_UNSAFE = re.compile(r"[\x00-\x1f\x7f\",#]")


#: dnsmasq options network.dnsmasq_extra may add, each with the shape of its value (None: a bare
#: flag). An allow-list, not a deny-list: an option that is not here is refused, so an extra
#: line can never run a program (dhcp-script, conf-script), read another file (conf-file,
#: dhcp-hostsfile), serve addresses (dhcp-range) or move the TFTP root. Names from
#: ``dnsmasq --help`` (2.90).
DNSMASQ_EXTRA_ALLOWED: dict[str, re.Pattern[str] | None] = {
    "tftp-single-port": None,
    "tftp-no-blocksize": None,
    "tftp-lowercase": None,
    "tftp-no-fail": None,
    "tftp-secure": None,
    "tftp-mtu": re.compile(r"\d{3,5}"),
    "tftp-max": re.compile(r"\d{1,5}"),
    "tftp-port-range": re.compile(r"\d{4,5},\d{4,5}"),
    "log-dhcp": None,
    "quiet-dhcp": None,
    "quiet-tftp": None,
    "log-async": re.compile(r"\d{0,3}"),
    "dhcp-reply-delay": re.compile(r"(tag:[A-Za-z0-9_-]{1,32},)?\d{1,2}"),
}


def dnsmasq_extra_problem(line: str) -> str:
    """Why ``line`` may not be a network.dnsmasq_extra line ("" when it may)."""
    name, eq, value = line.partition("=")
    if name not in DNSMASQ_EXTRA_ALLOWED:
        allowed = ", ".join(sorted(DNSMASQ_EXTRA_ALLOWED))
        return (
            f"{printable(name, 40)!r} is not an option dnsmasq_extra may set (allowed: {allowed})"
        )
    shape = DNSMASQ_EXTRA_ALLOWED[name]
    if shape is None and eq:
        return f"{name} takes no value"
    if (
        shape is not None
        and not (eq and shape.fullmatch(value))
        and not (name == "log-async" and not eq)
    ):
        return f"{printable(line, 60)!r}: the value of {name} is not valid"
    return ""


#: OpenSSH public key types accepted in app.ssh_authorized_keys.
SSH_KEY_TYPES = frozenset(
    {
        "ssh-ed25519",
        "ssh-rsa",
        "ecdsa-sha2-nistp256",
        "ecdsa-sha2-nistp384",
        "ecdsa-sha2-nistp521",
        "sk-ssh-ed25519@openssh.com",
        "sk-ecdsa-sha2-nistp256@openssh.com",
    }
)
_BASE64 = re.compile(r"[A-Za-z0-9+/]+={0,2}")
_COMMENT = re.compile(r"[\x21-\x7e]+( [\x21-\x7e]+)*")


def check_ssh_key(line: str) -> str:
    """One OpenSSH public key, ``TYPE BASE64 [COMMENT]``, parsed (not prefix-checked).

    The blob must decode and name the same key type inside (RFC 4253 §6.6 string encoding);
    options (``command="…"``), control characters and a second key in the comment are refused.

    Raises:
        ValueError: what is wrong, with the start of the line.
    """
    shown = printable(line, 40)
    if has_control(line):
        raise ValueError(f"{shown!r} holds a control character; give one key per entry")
    parts = line.strip().split(" ", 2)
    if len(parts) < 2 or parts[0] not in SSH_KEY_TYPES:
        raise ValueError(
            f"{shown!r} is not an OpenSSH public key (TYPE BASE64 [COMMENT], "
            f"TYPE one of {', '.join(sorted(SSH_KEY_TYPES))}; no options)"
        )
    kind, blob = parts[0], parts[1]
    try:
        if not _BASE64.fullmatch(blob):
            raise binascii.Error("not base64")
        raw = binascii.a2b_base64(blob, strict_mode=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"{shown!r}: the key data is not base64") from None
    size = int.from_bytes(raw[:4], "big") if len(raw) >= 4 else -1
    if size != len(kind) or raw[4 : 4 + size] != kind.encode() or len(raw) < 4 + size + 8:
        raise ValueError(f"{shown!r}: the key data does not hold a {kind} key")
    comment = parts[2] if len(parts) == 3 else ""
    if comment and (
        not _COMMENT.fullmatch(comment) or any(w in SSH_KEY_TYPES for w in comment.split())
    ):
        raise ValueError(f"{shown!r}: the comment must be plain text, and one key per entry")
    return " ".join(parts)


@dataclass(frozen=True)
class SshTarget:
    """A parsed ``ssh://user@host[:port]/path`` (deploy.target)."""

    user: str
    host: str
    """Host name or address as written (an IPv6 address keeps its brackets)."""
    port: int | None
    path: str
    """Absolute directory on the remote host, without a trailing slash."""

    @property
    def destination(self) -> str:
        """``user@host`` as ssh takes it (brackets of an IPv6 address removed)."""
        return f"{self.user}@{self.host.strip('[]')}"

    @property
    def ipv4(self) -> str | None:
        """The host when it is an IPv4 address (usable as DHCP option 66), else None."""
        return self.host if _IPV4.fullmatch(self.host) else None

    @property
    def origin(self) -> str:
        """``ssh://user@host[:port]`` (the target without its path)."""
        port = f":{self.port}" if self.port is not None else ""
        return f"ssh://{self.user}@{self.host}{port}"

    def __str__(self) -> str:
        return f"{self.origin}{self.path}"


def parse_target(value: str) -> SshTarget | None:
    """``deploy.target`` parsed; None for "" (this host).

    Raises:
        ValueError: not an ``ssh://user@host[:port]/absolute/path`` this tool can use safely.
    """
    if not value:
        return None
    m = _TARGET.fullmatch(value)
    if m is None:
        raise ValueError(
            f"{value[:80]!r} is not ssh://user@host[:port]/path (a plain user name, a host "
            "name or address, an absolute path of letters, digits and . _ / + -)"
        )
    path = m.group("path").rstrip("/")
    parts = path.split("/")[1:]
    if not path or any(part in ("", ".", "..") for part in parts):
        raise ValueError(
            f"the path of {value!r} must be an absolute directory below / without '.', '..' "
            "or '//', e.g. /mnt/sda1/firecore"
        )
    port = int(m.group("port")) if m.group("port") else None
    if port is not None and not 0 < port < 65536:
        raise ValueError(f"port {port} of {value!r} is not between 1 and 65535")
    return SshTarget(m.group("user"), m.group("host"), port, path)


def parse_ssh_host(value: str) -> SshTarget:
    """``user@host[:port]`` (``monitor --ssh``) as a target whose path is ``/``.

    Raises:
        ValueError: not a plain user, host and optional port.
    """
    m = _TARGET.fullmatch(f"ssh://{value}/")
    if m is None or m.group("path") != "/":
        raise ValueError(f"{value[:80]!r} is not user@host or user@host:port")
    port = int(m.group("port")) if m.group("port") else None
    if port is not None and not 0 < port < 65536:
        raise ValueError(f"port {port} is not between 1 and 65535")
    return SshTarget(m.group("user"), m.group("host"), port, "/")


def is_ipv4(value: str) -> bool:
    """True for a dotted-quad IPv4 address."""
    return _IPV4.fullmatch(value) is not None


class _Model(BaseModel):
    """An answers section. Strict (``steps.model``): a TOML string is never read as a bool or a
    number ("no" is not false, "8080" is not a port) and true is not 1; ints are still accepted
    for float keys. Field docs are the attribute docstrings below; ``document_fields`` reads
    them when they are shown, so a headless run never reads the source."""


def is_extension_name(name: str) -> bool:
    """True for a TCZ file name like ``openssh.tcz`` (also what a mirror may name: no ``/``,
    no ``..``, no control characters), checked before any such name becomes a path."""
    return bool(_EXTENSION.fullmatch(name)) and ".." not in name and len(name) <= 200


def _check_path(value: str, *, allow_empty: bool) -> str:
    if not value:
        if allow_empty:
            return value
        raise ValueError("must not be empty")
    if _UNSAFE.search(value):
        raise ValueError("must not contain control characters, quotes, commas or '#'")
    return value


def _default_boards() -> list[Board]:
    return ["pi3", "pi4"]


class ReleaseAnswers(_Model):
    """Which piCore release to start from, and from where."""

    mirrors: list[str] = Field(default_factory=lambda: list(DEFAULT_MIRRORS), min_length=1)
    """piCore mirrors (base URLs), tried in order; the first that answers serves each file."""
    version: str = "15.0.0"
    """piCore release, e.g. "15.0.0", "16.0.0" or a beta such as "15.0.0-beta2"."""
    arch: Arch = "armhf"
    """Architecture directory on the mirror: armv6, armv7, armv7l (12.x–14.x), armhf (15.x+, all
    32-bit boards) or aarch64 (piCore64)."""
    boards: list[Board] = Field(default_factory=lambda: _default_boards(), min_length=1)
    """Board families to serve (config.txt sections [PI0] … [PI5]); decides which kernels and
    kernel-module extensions are staged."""

    @field_validator("mirrors")
    @classmethod
    def _mirrors(cls, value: list[str]) -> list[str]:
        for url in value:
            if not _MIRROR.fullmatch(url):
                raise ValueError(f"{printable(url)!r} is not an http:// or https:// URL")
        return [u if u.endswith("/") else u + "/" for u in value]

    @field_validator("version")
    @classmethod
    def _version(cls, value: str) -> str:
        if not _VERSION.fullmatch(value):
            raise ValueError(f"{value!r} is not a piCore version like 15.0.0")
        return value

    @field_validator("boards")
    @classmethod
    def _boards(cls, value: list[str]) -> list[str]:
        return sorted(set(value), key=BOARDS.index)


class ExtensionsAnswers(_Model):
    """TinyCore extensions (TCZ) baked into the overlay."""

    names: list[str] = Field(default_factory=lambda: ["openssh.tcz", "python3.11.tcz"])
    """Extensions to include; their .tcz.dep closure is added automatically."""
    mode: ExtensionMode = "builtin"
    """builtin: ship the .tcz files for piCore's loader (/tmp/builtin, loop-mounted at boot);
    extracted: unpack them into the overlay (no loop mounts at boot, more RAM)."""

    @field_validator("names")
    @classmethod
    def _names(cls, value: list[str]) -> list[str]:
        out: list[str] = []
        for name in value:
            name = name.strip()
            if not name.endswith(".tcz"):
                name += ".tcz"
            if not is_extension_name(name):
                raise ValueError(f"{name!r} is not an extension name like openssh.tcz")
            out.append(name)
        return list(dict.fromkeys(out))  # de-duplicated in order, in linear time


class AppAnswers(_Model):
    """The Python app that runs on every Pi."""

    path: str = ""
    """Directory of your app; empty: the bundled FastAPI app."""
    python_packages: list[str] = Field(default_factory=lambda: ["fastapi", "uvicorn"])
    """pip requirements installed for the Pi's platform (wheels only)."""
    wheelhouse: str = ""
    """Optional local directory of wheels, used instead of PyPI (offline builds)."""
    hostname: str = "firecore"
    """Hostname of the Pis (a per-device profile can override it)."""
    ssh_authorized_keys: list[str] = Field(default_factory=list)
    """Public keys allowed to log in as user tc over SSH."""
    port: int = Field(default=8000, ge=1024, le=65535)
    """TCP port the app listens on (the app runs as user tc, so 1024 or above)."""
    bind: str = "0.0.0.0"
    """Address the app binds to."""
    secrets_file: str = ""
    """Separate TOML file (mode 0600) holding `token = "..."`; empty: no token, open endpoints."""
    env: dict[str, str] = Field(default_factory=dict)
    """Environment variables (app settings) given to the app."""
    precompile: bool = True
    """Ship .pyc files for the Pi's Python: the app answers about a quarter sooner after every
    boot, for a larger overlay (about +50 %); false: sources only."""

    @field_validator("path", "wheelhouse", "secrets_file")
    @classmethod
    def _paths(cls, value: str) -> str:
        return _check_path(value, allow_empty=True)

    @field_validator("python_packages")
    @classmethod
    def _packages(cls, value: list[str]) -> list[str]:
        from steps.reqline import invalid

        for line in value:
            if invalid(line) is not None:
                raise ValueError(
                    f"{printable(line, 60)!r} is not a pip requirement like fastapi>=0.110"
                )
        return value

    @field_validator("bind")
    @classmethod
    def _bind(cls, value: str) -> str:
        try:
            ipaddress.ip_address(value)
        except ValueError:
            raise ValueError(
                f"{printable(value, 60)!r} is not an IP address like 0.0.0.0"
            ) from None
        return value

    @field_validator("hostname")
    @classmethod
    def _hostname(cls, value: str) -> str:
        if not _HOSTNAME.fullmatch(value):
            raise ValueError(
                f"{value!r} is not a hostname (lower-case letters, digits and '-', ≤ 63)"
            )
        return value

    @field_validator("ssh_authorized_keys")
    @classmethod
    def _keys(cls, value: list[str]) -> list[str]:
        return [check_ssh_key(key) for key in value]

    @field_validator("env")
    @classmethod
    def _env(cls, value: dict[str, str]) -> dict[str, str]:
        return _check_env(value)


def _check_env(value: dict[str, str]) -> dict[str, str]:
    for key, val in value.items():
        if not _ENV_KEY.fullmatch(key):
            raise ValueError(f"{key!r} is not an environment variable name")
        if has_control(val):
            raise ValueError(f"the value of {key} must be one line")
    return value


class BuildAnswers(_Model):
    """Where the remastered boot tree is written."""

    output: str = "build/boot"
    """The TFTP-ready boot tree (replaced atomically on each build)."""
    cache: str = ""
    """Download and build cache; empty: the user cache directory."""
    cmdline_extra: list[str] = Field(default_factory=list)
    """Extra kernel command-line flags appended to cmdline.txt (nortc, norestore and
    host=<hostname> are always added)."""
    sd_image: bool = False
    """Also write firecore-<build id>.img beside the boot tree: an SD-card image (MBR + one FAT32
    partition holding the boot files) for Pis that cannot netboot (Pi 1, 2, Zero)."""

    @field_validator("output")
    @classmethod
    def _output(cls, value: str) -> str:
        return _check_path(value, allow_empty=False)

    @field_validator("cache")
    @classmethod
    def _cache(cls, value: str) -> str:
        return _check_path(value, allow_empty=True)

    @field_validator("cmdline_extra")
    @classmethod
    def _cmdline(cls, value: list[str]) -> list[str]:
        return _check_cmdline(value)


def _check_cmdline(value: list[str]) -> list[str]:
    for flag in value:
        if not flag or any(c.isspace() for c in flag) or '"' in flag:
            raise ValueError(f"{flag!r} must be one kernel flag without spaces or quotes")
    return value


class NetworkAnswers(_Model):
    """The interface the Pis boot from, and how dnsmasq serves them."""

    interface: str = "eth0"
    """Network interface on the Pis' LAN; proxy-DHCP ranges are derived from its addresses."""
    tftp_root: str = "/srv/firecore/tftp"
    """TFTP root that dnsmasq serves; deploy publishes release directories here."""
    dnsmasq_conf: str = "/etc/dnsmasq.d/firecore.conf"
    """Where the generated dnsmasq drop-in is installed (the previous one is backed up)."""
    dnsmasq_service: ServiceMode = "systemd"
    """systemd: restart dnsmasq.service; process: run our own dnsmasq in the background;
    none: write the file only."""
    state_dir: str = "/run/firecore"
    """Directory for dnsmasq's pid, lease and log files (process mode) and backups."""
    only_pis: bool = True
    """Answer only Raspberry Pis (OUI list and option-97 GUID match); other PXE clients are
    left to whatever else serves them."""
    pi3_reply_delay: bool = True
    """Delay proxy offers to Pi 3B boot ROMs by 1 s (works around the 3B ROM timing bug)."""
    backup_dir: str = "/var/backups/firecore-wizard"
    """Where the dnsmasq config that an install replaces is backed up (never inside a dnsmasq
    conf-dir, which would load the backup as config)."""
    probe_seconds: float = Field(default=4.0, ge=0, le=60)
    """The longest preflight listens for other DHCP/proxy servers after its probe DISCOVER (DHCP
    servers that ping first answer after ~3 s); it stops 1 s after a DHCP server's offer. 0 skips
    the probe."""
    preflight_strict: bool = True
    """Stop before installing anything when preflight finds an error (a second proxy, a port
    taken, dnsmasq missing); false: report it and go on."""
    fleet_size: int = Field(default=25, ge=1, le=1000)
    """How many Pis may power on at the same moment (a classroom on one switch); the config
    lets dnsmasq serve 2 TFTP transfers per Pi at once (tftp-max, never below dnsmasq's own 50)."""
    dnsmasq_extra: list[str] = Field(default_factory=list)
    """Extra dnsmasq option lines appended to the generated config, from an allow-list of
    tuning options: tftp-single-port, tftp-mtu=1400, tftp-max=N, tftp-port-range=A,B,
    tftp-no-blocksize, tftp-lowercase, tftp-secure, log-dhcp, quiet-dhcp, quiet-tftp, log-async,
    dhcp-reply-delay; anything else is refused (nothing that runs a program or serves
    addresses)."""
    mode: NetworkMode = "proxy"
    """proxy: our dnsmasq on this host adds the boot menu beside the LAN's DHCP server and serves
    TFTP; router: the LAN's DHCP server itself (an OpenWrt router, or another host's dnsmasq)
    gives the Pis their boot options and serves TFTP from deploy.target (docs/router.md)."""
    router_kind: RouterKind = "openwrt"
    """Router mode: openwrt: a uci batch for the router's /etc/config/dhcp, applied over ssh;
    dnsmasq: a drop-in for a plain dnsmasq DHCP server, installed at network.dnsmasq_conf on
    the host of deploy.target (this host when deploy.target is empty)."""
    router_address: str = ""
    """Router mode: the DHCP server's IPv4 address on the Pis' LAN, sent as DHCP option 66 (an
    address, never a name: the Pi's boot code has no DNS resolver); empty: the host of
    deploy.target when that is an IPv4 address."""
    router_interface: str = "br-lan"
    """Router mode: the router's interface on the Pis' LAN, where the monitor captures over ssh
    (OpenWrt's LAN bridge is br-lan)."""

    @field_validator("interface", "router_interface")
    @classmethod
    def _iface(cls, value: str) -> str:
        if not _IFACE.fullmatch(value):
            raise ValueError(f"{value!r} is not an interface name (≤ 15 of A-Z a-z 0-9 _ . : @ -)")
        return value

    @field_validator("tftp_root", "dnsmasq_conf", "state_dir", "backup_dir")
    @classmethod
    def _paths(cls, value: str) -> str:
        value = _check_path(value, allow_empty=False)
        if any(c.isspace() for c in value):
            raise ValueError("must not contain spaces (dnsmasq option values cannot quote them)")
        return value

    @field_validator("router_address")
    @classmethod
    def _router_address(cls, value: str) -> str:
        if value and not is_ipv4(value):
            raise ValueError(
                f"{value[:60]!r} is not an IPv4 address like 192.168.1.1 (option 66 must be an "
                "address: the Pi's boot code cannot resolve names)"
            )
        return value

    @field_validator("dnsmasq_extra")
    @classmethod
    def _extra(cls, value: list[str]) -> list[str]:
        for line in value:
            problem = dnsmasq_extra_problem(line)
            if problem:
                raise ValueError(problem)
        return value


#: BOOT_ORDER boot modes by name (raspberrypi/documentation eeprom-bootloader.adoc, BOOT_ORDER
#: fields): one nibble each, tried from the least significant nibble up.
BOOT_MODES: dict[str, int] = {
    "sd-detect": 0x0,
    "sd": 0x1,
    "network": 0x2,
    "rpiboot": 0x3,
    "usb": 0x4,
    "bcm-usb": 0x5,
    "nvme": 0x6,
    "http": 0x7,
    "stop": 0xE,
    "restart": 0xF,
}
_TFTP_PREFIX_STR = re.compile(r"^[A-Za-z0-9._/-]{1,32}$")


def boot_order_value(text: str) -> str:
    """A BOOT_ORDER as the EEPROM writes it ("0xf21"), from hex or from mode names.

    ``"sd,network"`` → ``"0xf21"`` (a ``restart`` is added so the Pi keeps trying). The order
    must contain network boot (nibble 2): that is what the card is for.

    Raises:
        ValueError: not hex of at most 8 known nibbles or a comma list of mode names.
    """
    raw = text.strip().lower()
    if re.fullmatch(r"0x[0-9a-f]{1,8}", raw):
        nibbles = [int(c, 16) for c in reversed(raw[2:])]
    else:
        names = [n.strip() for n in raw.split(",") if n.strip()]
        unknown = [n for n in names if n not in BOOT_MODES]
        if not names or unknown:
            raise ValueError(
                f"{text!r} is neither hex like 0xf21 nor a list of boot modes like "
                f"'sd,network' (modes: {', '.join(BOOT_MODES)})"
            )
        nibbles = [BOOT_MODES[n] for n in names]
        if nibbles[-1] not in (0xE, 0xF):
            nibbles.append(0xF)
        if len(nibbles) > 8:
            raise ValueError(f"{text!r}: at most 8 boot modes")
    bad = [f"{n:x}" for n in nibbles if n not in BOOT_MODES.values()]
    if bad:
        raise ValueError(f"{text!r}: {', '.join(bad)} is not a boot mode (0-7, e, f)")
    if 0x2 not in nibbles:
        raise ValueError(f"{text!r} has no network boot (mode 2): the Pi would never netboot")
    return "0x" + "".join(f"{n:x}" for n in reversed(nibbles))


class PrepareAnswers(_Model):
    """The card that makes each Pi netboot-ready (firecore-wizard prepare, docs/prepare.md)."""

    output: str = "build/prepare"
    """Where prepare writes its card images and card directories."""
    boot_order: str = "0xf21"
    """BOOT_ORDER of Pi 4/400/CM4/5 EEPROM cards, hex or mode names ("sd,network" = 0xf21: SD
    card first, then network, repeat; "network,sd" = 0xf12); must include network (2)."""
    tftp_prefix: str = ""
    """TFTP_PREFIX of EEPROM cards: "" keeps the bootloader's default (the serial number),
    "serial", "mac", or a directory like "pis/" (TFTP_PREFIX_STR, ≤ 32 characters)."""
    tftp_ip: str = ""
    """TFTP_IP of EEPROM cards: the TFTP server the Pi uses whatever DHCP says; "" for none."""
    dhcp_timeout: int = Field(default=0, ge=0, le=600000)
    """DHCP_TIMEOUT of EEPROM cards in milliseconds (≥ 5000; the bootloader's default is 45000);
    0 leaves it out."""
    card: CardMode = "once"
    """once: pieeprom.upd — after flashing, recovery.bin renames itself and the Pi boots on;
    many: pieeprom.bin — the card flashes every Pi it is put in and stops (green screen)."""
    eeprom_mirrors: list[str] = Field(
        default_factory=lambda: list(DEFAULT_EEPROM_MIRRORS), min_length=1
    )
    """Where the EEPROM firmware (pieeprom-*.bin, recovery.bin) is downloaded from, tried in
    order: base URLs of the rpi-eeprom repository's raw files, or local directories holding a
    copy of it (offline)."""
    eeprom_catalog: str = ""
    """JSON file pinning the firmware files and their sha256 (docs/prepare.md); empty: the
    bundled catalog."""

    @field_validator("output", "eeprom_catalog")
    @classmethod
    def _paths(cls, value: str, info: ValidationInfo) -> str:
        return _check_path(value, allow_empty=info.field_name == "eeprom_catalog")

    @field_validator("boot_order")
    @classmethod
    def _boot_order(cls, value: str) -> str:
        return boot_order_value(value)

    @field_validator("tftp_prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        if value in ("", "serial", "mac") or _TFTP_PREFIX_STR.fullmatch(value):
            return value
        raise ValueError(
            f"{value!r} is not serial, mac or a directory of ≤ 32 characters like pis/"
        )

    @field_validator("tftp_ip")
    @classmethod
    def _ip(cls, value: str) -> str:
        if value:
            try:
                ipaddress.IPv4Address(value)
            except ValueError:
                raise ValueError(f"{value!r} is not a dotted IPv4 address") from None
        return value

    @field_validator("dhcp_timeout")
    @classmethod
    def _dhcp(cls, value: int) -> int:
        if 0 < value < 5000:
            raise ValueError(f"{value} ms is below the bootloader's minimum of 5000 ms")
        return value

    @field_validator("eeprom_mirrors")
    @classmethod
    def _mirrors(cls, value: list[str]) -> list[str]:
        out: list[str] = []
        for item in value:
            if re.match(r"^https?://[^\s/]+", item):
                out.append(item if item.endswith("/") else item + "/")
            else:
                out.append(_check_path(item, allow_empty=False))
        return out


class Profile(_Model):
    """Per-device settings for the Pis mapped to it in deploy.devices."""

    hostname: str = ""
    """Hostname for these Pis; empty: app.hostname."""
    env: dict[str, str] = Field(default_factory=dict)
    """App settings added to app.env for these Pis."""
    cmdline_extra: list[str] = Field(default_factory=list)
    """Kernel flags appended to cmdline.txt for these Pis."""
    config_txt: list[str] = Field(default_factory=list)
    """Lines appended to config.txt for these Pis (e.g. a different `kernel` line)."""

    @field_validator("hostname")
    @classmethod
    def _hostname(cls, value: str) -> str:
        if value and not _HOSTNAME.fullmatch(value):
            raise ValueError(f"{value!r} is not a hostname")
        return value

    @field_validator("env")
    @classmethod
    def _env(cls, value: dict[str, str]) -> dict[str, str]:
        return _check_env(value)

    @field_validator("cmdline_extra")
    @classmethod
    def _cmdline(cls, value: list[str]) -> list[str]:
        return _check_cmdline(value)

    @field_validator("config_txt")
    @classmethod
    def _config(cls, value: list[str]) -> list[str]:
        for line in value:
            if has_control(line):
                raise ValueError("each config.txt line must be one line without control characters")
        return value


class DeployAnswers(_Model):
    """How the boot tree is published to the TFTP root."""

    devices: dict[str, str] = Field(default_factory=dict)
    """Pi → profile name; empty: one tree for all Pis. A Pi is its serial number (8 hex digits,
    the bootloader's default TFTP_PREFIX 0) or, for a Pi 4/5 with TFTP_PREFIX=2, its MAC
    (written dc-a6-32-01-36-c2, as the bootloader asks for it)."""
    profiles: dict[str, Profile] = Field(default_factory=dict)
    """Named per-device profiles used by deploy.devices."""
    keep: int = Field(default=3, ge=1, le=100)
    """How many release directories to keep in the TFTP root (for rollback)."""
    target: str = ""
    """Where releases are published: empty: network.tftp_root on this host;
    "ssh://user@host[:port]/path": that directory on another machine (an OpenWrt router's USB
    stick, a NAS, another Linux box), over ssh with busybox tools only."""
    ssh_config: str = ""
    """An ssh_config(5) file given to ssh with -F for deploy.target (host key, identity, port,
    jump host); empty: ssh's own defaults (~/.ssh/config)."""

    @field_validator("target")
    @classmethod
    def _target(cls, value: str) -> str:
        parse_target(value)
        return value

    @field_validator("ssh_config")
    @classmethod
    def _ssh_config(cls, value: str) -> str:
        return _check_path(value, allow_empty=True)

    @field_validator("devices")
    @classmethod
    def _devices(cls, value: dict[str, str]) -> dict[str, str]:
        out: dict[str, str] = {}
        for serial, profile in value.items():
            low = serial.lower()
            if _MAC_KEY.fullmatch(low):
                low = low.replace(":", "-")  # the directory a Pi with TFTP_PREFIX=2 asks for
            elif not _SERIAL.fullmatch(low):
                raise ValueError(
                    f"{serial!r} is neither a serial number (8 hex digits, e.g. 9ffefdef) nor a "
                    "MAC address (dc:a6:32:01:36:c2)"
                )
            if low in out:
                raise ValueError(f"{serial!r} is listed twice")
            out[low] = profile
        return out

    @field_validator("profiles")
    @classmethod
    def _profiles(cls, value: dict[str, Profile]) -> dict[str, Profile]:
        for name in value:
            if not _PROFILE.fullmatch(name):
                raise ValueError(f"{name!r} is not a profile name (letters, digits, _ and -)")
        return value


class Answers(_Model):
    """Everything the wizard needs to know; the answers file is this model as TOML."""

    version: Literal[1]
    """Format version of this file; always 1."""
    release: ReleaseAnswers = Field(default_factory=ReleaseAnswers)
    extensions: ExtensionsAnswers = Field(default_factory=ExtensionsAnswers)
    app: AppAnswers = Field(default_factory=AppAnswers)
    build: BuildAnswers = Field(default_factory=BuildAnswers)
    network: NetworkAnswers = Field(default_factory=NetworkAnswers)
    prepare: PrepareAnswers = Field(default_factory=PrepareAnswers)
    deploy: DeployAnswers = Field(default_factory=DeployAnswers)


class Secrets(_Model):
    """Contents of the separate secrets file."""

    token: str = ""
    """Bearer token that protects every app endpoint except /health; empty: no token."""

    @field_validator("token")
    @classmethod
    def _token(cls, value: str) -> str:
        if value and not re.fullmatch(r"[\x21-\x7e]{1,512}", value):
            raise ValueError("must be up to 512 printable ASCII characters without spaces")
        return value


def _attribute_docs(cls: ast.ClassDef) -> dict[str, str]:
    """``name: type = …`` followed by a string literal: that string documents ``name``."""
    docs: dict[str, str] = {}
    for before, node in itertools.pairwise(cls.body):
        if (
            isinstance(before, ast.AnnAssign)
            and isinstance(before.target, ast.Name)
            and isinstance(node, ast.Expr)
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
        ):
            docs[before.target.id] = inspect.cleandoc(node.value.value)
    return docs


@functools.cache
def document_fields() -> None:
    """Give every answers field its attribute docstring as ``description`` (once per process).

    Called by whatever shows the docs (the answers file's comments, the README reference, the
    wizard's field help, the JSON Schema); a headless run never pays for reading the source.
    """
    try:
        tree = ast.parse(Path(__file__).read_text(encoding="utf-8"))
    except OSError:  # pragma: no cover - installed without its source
        return
    classes = {node.name: node for node in tree.body if isinstance(node, ast.ClassDef)}
    pending = list(_Model.__subclasses__())
    while pending:
        model = pending.pop()
        pending.extend(model.__subclasses__())
        node = classes.get(model.__name__)
        if node is None or model.__module__ != __name__:
            continue
        docs = _attribute_docs(node)
        for name, info in model.model_fields.items():
            if info.description is None and name in docs:
                info.description = docs[name]


def answers_json_schema() -> dict[str, Any]:
    """The JSON Schema of the answers file, every field with its documentation."""
    document_fields()
    return Answers.model_json_schema()


def default_answers() -> Answers:
    """A complete answers object with every default filled in."""
    return Answers(version=1)


# ---------------------------------------------------------------- validation → AnswersError


def _model_at(
    parts: Sequence[str | int], root: type[BaseModel] | None = None
) -> type[BaseModel] | None:
    """The sub-model class addressed by a key path (to suggest field names), if any."""
    model: type[BaseModel] = root or Answers
    for part in parts:
        field = model.model_fields.get(str(part))
        ann = field.annotation if field is not None else None
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            model = ann
        else:
            return None
    return model


def _location(loc: Sequence[str | int]) -> tuple[str, Sequence[str | int]]:
    """Dotted key path for an error location."""
    return ".".join(str(p) for p in loc), loc


def _parent_model(
    loc: Sequence[str | int], root: type[BaseModel] | None = None
) -> type[BaseModel] | None:
    parts = list(loc[:-1])
    # deploy.profiles.<name>.<field>: skip the free-form profile name
    if root is None and len(parts) >= 3 and parts[0] == "deploy" and parts[1] == "profiles":
        return Profile
    return _model_at(parts, root)


def answers_error(exc: ValidationError, root: type[BaseModel] | None = None) -> AnswersError:
    """The first validation problem as an AnswersError naming its key path.

    ``root`` is the model that was validated (Answers unless given), so an unknown key is
    matched against that model's keys (the secrets file suggests ``token``, not answers keys).
    """
    err = exc.errors(include_url=False)[0]
    key, loc = _location(err["loc"])
    if err["type"] == "extra_forbidden":
        parent = _parent_model(loc, root)
        unknown = str(loc[-1])
        fix = ""
        if parent is not None:
            import difflib  # only for a refusal

            close = difflib.get_close_matches(unknown, list(parent.model_fields), n=1, cutoff=0.5)
            fix = f"did you mean {'.'.join([*key.split('.')[:-1], close[0]])}?" if close else ""
            if not fix:
                fix = "known keys here: " + ", ".join(parent.model_fields)
        return AnswersError(key, "unknown key", fix=fix)
    if err["type"] == "missing" and key == "version":
        return AnswersError("version", "missing", fix="add `version = 1` at the top of the file")
    msg = str(err["msg"]).removeprefix("Value error, ")
    if err["type"] == "too_short":  # "List should have at least 1 item after validation …"
        msg = "must not be empty (list at least one)"
    if err["type"] == "literal_error" and key != "version":
        msg = f"{printable(repr(err.get('input')), 80)} is not allowed; {msg}"
    elif err["type"] in _TYPE_ERRORS:
        given = type(err.get("input")).__name__
        shown = printable(repr(err.get("input")), 60)
        msg = f"{shown} is a {_TOML_TYPES.get(given, given)}; {msg.lower()}"
        return AnswersError(key, msg, fix=_TYPE_FIXES.get(err["type"], ""))
    return AnswersError(key, msg)


_TYPE_ERRORS = frozenset(
    {"bool_type", "int_type", "float_type", "string_type", "list_type", "dict_type"}
)
_TOML_TYPES = {"str": "string", "bool": "boolean", "int": "integer", "float": "float",
               "list": "list", "dict": "table"}  # fmt: skip
_TYPE_FIXES = {
    "bool_type": "write true or false, without quotes",
    "int_type": "write a whole number without quotes",
    "float_type": "write a number without quotes",
    "string_type": "write the value in double quotes",
}


def _control_path(data: Any, path: str = "") -> str | None:
    """The key path of the first string (value or key) holding a control character."""
    if isinstance(data, str):
        return path if has_control(data) else None
    if isinstance(data, dict):
        for k, v in data.items():
            sub = f"{path}.{k}" if path else str(k)
            if isinstance(k, str) and has_control(k):
                return f"{path}.{printable(k)}" if path else printable(k)
            found = _control_path(v, sub)
            if found is not None:
                return found
    if isinstance(data, list | tuple):
        for i, v in enumerate(data):
            found = _control_path(v, f"{path}[{i}]")
            if found is not None:
                return found
    return None


def refuse_control(data: Any, what: str = "") -> None:
    """AnswersError naming the first key whose value or name holds a control character."""
    where = _control_path(data)
    if where is not None:
        key = f"{what}.{where}" if what and where else (what or where)
        raise AnswersError(
            key,
            "must not contain control characters (a newline, tab, escape …)",
            fix="remove them; every value is one line of plain text",
        )


def check_answers(answers: Answers) -> None:
    """Checks that span several keys (the model validates each key on its own).

    Raises:
        AnswersError: naming the offending key path.
    """
    _check_router(answers)
    profiles = answers.deploy.profiles
    for serial, profile in answers.deploy.devices.items():
        if profile not in profiles:
            known = ", ".join(sorted(profiles)) or "none is defined"
            raise AnswersError(
                f"deploy.devices.{serial}",
                f"profile {profile!r} is not in deploy.profiles ({known})",
                fix=f"add a [deploy.profiles.{profile}] table or use a defined profile",
            )


def router_address(answers: Answers) -> str | None:
    """The DHCP server's IPv4 address in router mode: network.router_address, else the host of
    deploy.target when it is an IPv4 address; None when neither gives one."""
    if answers.network.router_address:
        return answers.network.router_address
    target = parse_target(answers.deploy.target)
    return target.ipv4 if target is not None else None


def _check_router(answers: Answers) -> None:
    net = answers.network
    if net.mode != "router":
        return
    target = parse_target(answers.deploy.target)
    if target is None and net.router_kind == "openwrt":
        raise AnswersError(
            "deploy.target",
            "router mode with an OpenWrt router needs the router as deploy.target: its dnsmasq "
            "serves TFTP from the router's own storage",
            fix='set deploy.target = "ssh://root@192.168.1.1/mnt/sda1/firecore" (your router, '
            "a directory on its USB stick)",
        )
    if target is None and net.dnsmasq_service == "process":
        raise AnswersError(
            "network.dnsmasq_service",
            "router mode on this host adds a drop-in to the dnsmasq that serves the LAN's DHCP; "
            "process mode would start a dnsmasq with nothing but the drop-in",
            fix='set network.dnsmasq_service = "systemd" (or "none" to write the file only)',
        )
    if target is not None and router_address(answers) is None:
        raise AnswersError(
            "network.router_address",
            f"router mode needs the router's IPv4 address for option 66, and {target.host!r} "
            "(deploy.target) is a name",
            fix='set network.router_address = "192.168.1.1" (the router\'s LAN address)',
        )


def parse_answers(data: dict[str, Any]) -> Answers:
    """Validate a plain dict (parsed TOML) into Answers, or raise AnswersError."""
    refuse_control(data)
    try:
        answers = Answers.model_validate(data)
    except ValidationError as exc:
        raise answers_error(exc) from None
    check_answers(answers)
    return answers


def load_answers(path: str | os.PathLike[str]) -> Answers:
    """Read and validate an answers file.

    Raises:
        UsageError: the file is missing or is not TOML.
        AnswersError: a key is unknown or a value invalid; the message names the key path.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"answers file {p} does not exist", fix="check the path") from None
    except OSError as exc:
        raise UsageError(f"cannot read answers file {p}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise UsageError(f"answers file {p} is not UTF-8 text") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{p}: not valid TOML: {exc}", fix="fix the syntax at that line") from None
    return parse_answers(data)


#: Answers that only say where: where the tree is written, where scratch files and downloads are
#: kept, which mirror serves the (md5-verified, identical) release. Left out of ``build_digest``,
#: so the same answers built into another directory, with another cache or mirror, give a
#: byte-identical tree, manifest included. Keys that choose content (app.path, app.wheelhouse,
#: app.secrets_file …) stay in: another value there is another app, other wheels, another token.
WHERE_ONLY: tuple[tuple[str, str], ...] = (
    ("build", "output"),
    ("build", "cache"),
    ("release", "mirrors"),
)


def build_digest(answers: Answers) -> str:
    """sha256 of the answers that shape the boot tree (not network, prepare, devices, keep, or
    WHERE_ONLY).

    Recorded in the build manifest: the TUI (which fills the network screen after building) and
    ``--answers`` (which has every section from the start) then write identical trees, and so do
    two builds into different directories.
    """
    data = answers.model_dump(mode="json")
    data.pop("network")
    data.pop("prepare")  # cards for the Pis, not the boot tree
    data["build"].pop("sd_image")  # an extra file beside the tree, not in it
    data["deploy"] = {"profiles": data["deploy"]["profiles"]}
    for section, key in WHERE_ONLY:
        data[section].pop(key)
    canon = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canon.encode()).hexdigest()


def load_secrets(path: str | os.PathLike[str]) -> Secrets:
    """Read the secrets file; refuse one that other users can read."""
    p = Path(path)
    try:
        st = p.stat()
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise AnswersError(
            "app.secrets_file", f"{p} does not exist", fix="create it or leave the key empty"
        ) from None
    except UnicodeDecodeError:
        raise AnswersError("app.secrets_file", f"{p} is not UTF-8 text") from None
    except OSError as exc:
        raise AnswersError(
            "app.secrets_file", f"cannot read {p}: {exc.strerror or exc}", fix="name a file"
        ) from None
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise AnswersError(
            "app.secrets_file",
            f"{p} is readable by other users (mode {stat.S_IMODE(st.st_mode):o})",
            fix=f"run `chmod 600 {p}`",
        )
    try:
        data = tomllib.loads(text)
        refuse_control(data, "app.secrets_file")
        return Secrets.model_validate(data)
    except tomllib.TOMLDecodeError as exc:
        raise AnswersError("app.secrets_file", f"{p}: not valid TOML: {exc}") from None
    except ValidationError as exc:
        inner = answers_error(exc, Secrets)
        raise AnswersError("app.secrets_file", f"{p}: {inner.message}", fix=inner.fix) from None


def resolve_path(value: str) -> Path:
    """An answers path as an absolute Path (``~`` expanded, relative to the working directory)."""
    return Path(os.path.abspath(os.path.expanduser(value)))
