"""The dnsmasq proxy-DHCP + TFTP config: render it, check it, install it with a backup.

``render_dnsmasq_conf`` is a pure function of the answers and the chosen interface's snapshot
(golden-file tested): proxy mode only — it never writes a range that leases addresses — with one
``dhcp-range=tag:<iface>,<own address>,proxy`` per IPv4 subnet on the interface, because dnsmasq
2.90 has no IPv4 syntax that names an interface (netboot.md §7.2). The header records the
interface addresses it was rendered for, so a changed address is detected later (``drift``).

With ``network.only_pis`` the Pis are tagged ``rpi`` (MAC prefix or option-97 GUID) and
``dhcp-ignore=tag:!rpi`` makes dnsmasq ignore every other PXE client: its proxy path answers any
``PXEClient`` DISCOVER in a proxy range, with a menu-less offer (discovery control 8) when no
``pxe-service`` tag matches, unless the client is ignored (dnsmasq 2.90 ``src/rfc2131.c``: the
``dhcp-ignore`` match sets ``ignore``, the proxy branch then logs ``proxy-ignored`` and sends
nothing; netboot.md §12).

Every value from the answers is re-checked here even though the answers model validates it: a
value that would escape its line or field (newline, quote, comma, '#', whitespace) is refused
with an ``AnswersError`` naming the key, whatever path it came in by.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import re
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from steps.answers import Answers, dnsmasq_extra_problem, resolve_path
from steps.errors import AnswersError, CommandError, NetworkError
from steps.fsutil import atomic_write, backup, disk_error
from steps.host.netif import Address, Interface
from steps.paths import asset

PXE_MENU_TEXT = "Raspberry Pi Boot"
#: option-97 GUID prefixes of Pi bootloaders: "RPi4", the reversed magic of newer Pi 4
#: firmware, "RPi5" (netboot.md §2.2, §7.1).
PI_GUID_PREFIXES = ("0:52:50:69:34", "0:34:69:50:52", "0:52:50:69:35")
PI3_OUI = "b8:27:eb"

#: dnsmasq release that introduced each option we may emit (changelog of dnsmasq-base).
OPTION_SINCE: dict[str, tuple[int, int]] = {
    "pxe-service": (2, 48),
    "dhcp-match": (2, 52),
    "bind-dynamic": (2, 63),
    "tftp-no-fail": (2, 73),
    "dhcp-reply-delay": (2, 77),
}

#: options the generator owns; network.dnsmasq_extra may not set them (proxy-only, one root).
RESERVED_OPTIONS = frozenset(
    {
        "port",
        "interface",
        "except-interface",
        "listen-address",
        "bind-interfaces",
        "bind-dynamic",
        "dhcp-range",
        "tftp-root",
        "pid-file",
        "dhcp-leasefile",
        "log-facility",
        "conf-file",
        "conf-dir",
        "enable-tftp",
        "tftp-max",
    }
)

#: options that run a program or read more files: a restored backup may not carry them (a file
#: someone planted in the backup directory must not get a program run as root).
UNSAFE_OPTIONS = frozenset(
    {
        "dhcp-script",
        "dhcp-luascript",
        "dhcp-scriptuser",
        "script-arp",
        "conf-script",
        "conf-file",
        "conf-dir",
        "dhcp-hostsfile",
        "dhcp-optsfile",
        "dhcp-hostsdir",
        "dhcp-optsdir",
        "addn-hosts",
        "hostsdir",
        "servers-file",
        "resolv-file",
        "user",
    }
)

#: dnsmasq's own limit on concurrent TFTP transfers when tftp-max is not set (dnsmasq(8)).
DNSMASQ_TFTP_MAX = 50
#: Concurrent transfers allowed per Pi of network.fleet_size. A Pi reads its files one after
#: another, but a Pi 4 opens a second transfer for each file it first probes for its size (it
#: ends the probe with "Early terminate", netboot.md §4.3) and dnsmasq keeps a transfer until its
#: last block is acknowledged or times out: one spare per Pi keeps a booting class from queueing.
TRANSFERS_PER_PI = 2


def tftp_max(fleet_size: int) -> int:
    """The tftp-max for ``fleet_size`` Pis booting at once (see TRANSFERS_PER_PI).

    dnsmasq lowers it to what its open-file limit allows (RLIMIT_NOFILE − 50: 974 with the usual
    1024) and logs "restricting maximum simultaneous TFTP transfers" when it does.
    """
    return max(DNSMASQ_TFTP_MAX, TRANSFERS_PER_PI * fleet_size)


_SAFE_IFACE = re.compile(r"[A-Za-z0-9_.-]{1,15}")
_UNSAFE_PATH = re.compile(r"[\x00-\x20\x7f\",#]")
_OUI = re.compile(r"[0-9a-f]{2}:[0-9a-f]{2}:[0-9a-f]{2}")
_HEADER = re.compile(r"# (network-digest|interface|addresses|service): ?(.*)")


@dataclass(frozen=True)
class StateFiles:
    """Where our dnsmasq keeps its pid, leases and log (process/none modes)."""

    pid: Path
    leases: Path
    log: Path


def state_files(answers: Answers) -> StateFiles:
    """The state files under ``network.state_dir``."""
    state = resolve_path(answers.network.state_dir)
    return StateFiles(state / "dnsmasq.pid", state / "dnsmasq.leases", state / "dnsmasq.log")


def load_ouis(path: Path | None = None) -> tuple[str, ...]:
    """The Raspberry Pi MAC prefixes from ``assets/oui.txt`` (comments and blanks skipped).

    Raises:
        NetworkError: the table is missing or has a malformed line.
    """
    source = path or asset("oui.txt")
    try:
        lines = source.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise NetworkError(
            f"cannot read the OUI table {source}: {exc.strerror}",
            fix="reinstall firecore-wizard (the file is part of its assets)",
        ) from None
    out: list[str] = []
    for n, raw in enumerate(lines, 1):
        line = raw.split("#", 1)[0].strip().lower()
        if not line:
            continue
        if not _OUI.fullmatch(line):
            raise NetworkError(
                f"{source}:{n}: {raw.strip()!r} is not an OUI like b8:27:eb",
                fix="fix or remove that line",
            )
        if line not in out:
            out.append(line)
    return tuple(out)


#: the [network] keys that shape the rendered text (and so the digest in its header).
_RENDERED_KEYS = (
    "interface",
    "tftp_root",
    "state_dir",
    "dnsmasq_service",
    "only_pis",
    "pi3_reply_delay",
    "dnsmasq_extra",
    "fleet_size",
)


def network_digest(answers: Answers) -> str:
    """Short sha256 of the [network] answers the config is rendered from.

    Only keys that shape the text count, so unrelated answers (a new extension, the probe
    window) do not make an installed config look stale.
    """
    values = answers.network.model_dump(mode="json", include=set(_RENDERED_KEYS))
    canon = json.dumps(values, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canon.encode()).hexdigest()[:16]


def _check_path(key: str, value: str) -> str:
    if not value or _UNSAFE_PATH.search(value):
        raise AnswersError(
            key,
            f"{value!r} cannot go into a dnsmasq option (empty, or has whitespace, a quote, "
            "a comma, '#' or a control character)",
            fix="choose a plain path",
        )
    return str(resolve_path(value))


def _check_iface(answers: Answers, iface: Interface) -> str:
    name = answers.network.interface
    if not _SAFE_IFACE.fullmatch(name):
        raise AnswersError(
            "network.interface",
            f"{name!r} is not a kernel interface name dnsmasq can serve "
            "(letters, digits, '_', '.', '-'; no alias label like eth0:1)",
            fix="use the interface itself, as `ip -br link` lists it",
        )
    if iface.name != name:
        raise NetworkError(
            f"the snapshot is of {iface.name}, but network.interface is {name}",
            fix="pass the snapshot of the configured interface",
        )
    return name


def _check_extra(lines: list[str]) -> list[str]:
    for n, line in enumerate(lines):
        key = f"network.dnsmasq_extra[{n}]"
        name = line.partition("=")[0]
        if name in RESERVED_OPTIONS:
            raise AnswersError(
                key,
                f"{name} is set by the generator and cannot be overridden",
                fix="change the matching network.* key instead (or remove the line)",
            )
        problem = dnsmasq_extra_problem(line)  # the answers' allow-list, whatever path it came by
        if problem:
            raise AnswersError(key, problem)
    return lines


def proxy_subnets(addresses: tuple[Address, ...]) -> list[Address]:
    """One address per IPv4 subnet (the first the interface lists for it)."""
    seen: set[str] = set()
    out: list[Address] = []
    for addr in addresses:
        net = str(addr.network)
        if net not in seen:
            seen.add(net)
            out.append(addr)
    return out


def render_dnsmasq_conf(
    answers: Answers, iface: Interface, *, ouis: tuple[str, ...] | None = None
) -> str:
    """The complete dnsmasq config for ``answers`` on ``iface`` (its snapshot).

    Args:
        answers: the wizard's answers; only the [network] section is used.
        iface: the snapshot of ``network.interface`` (addresses become the proxy ranges).
        ouis: Raspberry Pi MAC prefixes; default: ``assets/oui.txt``.

    Raises:
        AnswersError: a value would escape its option (names the key).
        NetworkError: the interface has no IPv4 address.
    """
    net = answers.network
    name = _check_iface(answers, iface)
    tftp_root = _check_path("network.tftp_root", net.tftp_root)
    _check_path("network.state_dir", net.state_dir)
    extra = _check_extra(list(net.dnsmasq_extra))
    ranges = proxy_subnets(iface.addresses)
    if not ranges:
        raise NetworkError(
            f"{name} has no IPv4 address, so there is no subnet to serve (network.interface)",
            fix=f"give {name} an address (`ip addr add …` or DHCP), or set network.interface "
            "to the interface on the Pis' LAN",
        )
    menu_tag = "tag:rpi," if net.only_pis else ""
    lines = [
        "# Generated by firecore-wizard: proxy-DHCP + TFTP for Raspberry Pi netboot.",
        "# Do not edit: the network step rewrites this file (the previous one is backed up).",
        f"# network-digest: {network_digest(answers)}",
        f"# interface: {name}",
        f"# addresses: {' '.join(str(a) for a in iface.addresses)}",
        f"# service: {net.dnsmasq_service}",
        "",
        "# Proxy mode only: the LAN's DHCP server leases the addresses, this adds the boot menu.",
        "port=0",
        f"interface={name}",
        "bind-dynamic",
    ]
    lines += [f"dhcp-range=tag:{name},{addr.address},proxy" for addr in ranges]
    if net.only_pis:
        lines += ["", "# Only Raspberry Pis get the menu: MAC prefixes (oui.txt), Pi 4/5 GUID."]
        lines += [f"dhcp-mac=set:rpi,{oui}:*:*:*" for oui in (ouis or load_ouis())]
        lines += [f"dhcp-match=set:rpi,97,{guid}" for guid in PI_GUID_PREFIXES]
        lines += [
            "# Every other PXE client (a PC booting on this LAN) gets no offer at all; without",
            "# this it would get a menu-less proxy offer (dnsmasq logs `proxy-ignored`).",
            "dhcp-ignore=tag:!rpi",
        ]
    lines += ["", f'pxe-service={menu_tag}0,"{PXE_MENU_TEXT}"']
    if net.pi3_reply_delay:
        lines += [
            "",
            "# Pi 3B boot ROMs miss an immediate reply: answer them 1 s later.",
            f"dhcp-mac=set:rpi3,{PI3_OUI}:*:*:*",
            "dhcp-reply-delay=tag:rpi3,1",
        ]
    lines += [
        "",
        "log-dhcp",
        "enable-tftp",
        "# deploy switches current to a new release; start even before the first deploy.",
        f"tftp-root={tftp_root}/current",
        "tftp-no-fail",
        f"# network.fleet_size = {net.fleet_size} Pis booting at once, "
        f"{TRANSFERS_PER_PI} transfers each (dnsmasq's default is {DNSMASQ_TFTP_MAX}).",
        f"tftp-max={tftp_max(net.fleet_size)}",
    ]
    if net.dnsmasq_service == "systemd":
        lines += ["# systemd mode: dnsmasq.service keeps its own pid, lease and log files."]
    else:
        files = state_files(answers)
        lines += [
            f"pid-file={files.pid}",
            f"dhcp-leasefile={files.leases}",
            f"log-facility={files.log}",
        ]
    if extra:
        lines += ["", "# network.dnsmasq_extra", *extra]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------ reading a config back


@dataclass(frozen=True)
class Header:
    """What an installed config says it was generated from."""

    digest: str = ""
    interface: str = ""
    addresses: tuple[str, ...] = ()
    service: str = ""


def parse_header(text: str) -> Header | None:
    """The generator's header of a config, or None when it is not one of ours."""
    if not text.startswith("# Generated by firecore-wizard"):
        return None
    fields: dict[str, str] = {}
    for line in text.splitlines()[:10]:
        m = _HEADER.fullmatch(line)
        if m:
            fields[m.group(1)] = m.group(2).strip()
    return Header(
        digest=fields.get("network-digest", ""),
        interface=fields.get("interface", ""),
        addresses=tuple(fields.get("addresses", "").split()),
        service=fields.get("service", ""),
    )


@dataclass(frozen=True)
class Drift:
    """Installed config vs the live interface: which addresses came and went."""

    interface: str
    recorded: tuple[str, ...]
    live: tuple[str, ...]

    @property
    def changed(self) -> bool:
        """True when the interface's addresses are not the ones the config was made for."""
        return set(self.recorded) != set(self.live)

    def describe(self) -> str:
        """One line: ``10.99.0.1/24 → 10.99.0.7/24 on eth0``."""
        before = " ".join(self.recorded) or "none"
        after = " ".join(self.live) or "none"
        return f"{before} → {after} on {self.interface}"


def drift(installed_text: str, iface: Interface | None) -> Drift | None:
    """Compare an installed config's recorded addresses with the live interface.

    None when the text is not our config; an interface that vanished has no live addresses.
    """
    header = parse_header(installed_text)
    if header is None:
        return None
    live = tuple(str(a) for a in iface.addresses) if iface is not None else ()
    return Drift(header.interface, header.addresses, live)


def read_installed(answers: Answers) -> str | None:
    """The config currently at ``network.dnsmasq_conf``, or None when there is none."""
    path = resolve_path(answers.network.dnsmasq_conf)
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise NetworkError(f"cannot read {path}: {exc.strerror}") from None


def unified_diff(old: str | None, new: str, path: Path) -> list[str]:
    """Lines of a unified diff from the installed config to the new one (empty: identical)."""
    return list(
        difflib.unified_diff(
            (old or "").splitlines(),
            new.splitlines(),
            fromfile=f"{path} (installed)" if old is not None else "/dev/null",
            tofile=f"{path} (new)",
            lineterm="",
        )
    )


def required_version(text: str) -> tuple[int, int]:
    """The oldest dnsmasq that understands every option in ``text``."""
    need = (2, 48)
    for line in text.splitlines():
        name = line.partition("=")[0].strip()
        need = max(need, OPTION_SINCE.get(name, need))
    return need


# ------------------------------------------------------------------ checking and installing


def dnsmasq_program() -> str:
    """The dnsmasq binary: on PATH, or in /usr/sbin (not on a normal user's PATH)."""
    from steps import proc  # here, not at the top: the wizard reads what is done at start-up

    return proc.locate("dnsmasq") or "dnsmasq"  # proc.run turns a miss into "install …"


def check_conf(text: str, *, cancel: threading.Event | None = None) -> str:
    """Run ``dnsmasq --test -C`` on ``text``; returns dnsmasq's own verdict line.

    Raises:
        NetworkError: dnsmasq rejects it; the message is dnsmasq's own, plus the offending line.
        CommandError: dnsmasq is not installed.
    """
    with tempfile.TemporaryDirectory(prefix="firecore-dnsmasq-test-") as tmp:
        path = Path(tmp) / "firecore.conf"
        path.write_text(text, encoding="utf-8")
        from steps import proc

        try:
            done = proc.run(dnsmasq_program(), "--test", "-C", str(path), cancel=cancel)
        except CommandError as exc:
            if exc.returncode is None:
                raise
            said = exc.stderr.strip().splitlines()
            message = said[-1] if said else f"exit code {exc.returncode}"
            message = message.replace(str(path), "the generated config")
            m = re.search(r"at line (\d+)", message)
            offending = ""
            if m and 0 < int(m.group(1)) <= len(text.splitlines()):
                offending = text.splitlines()[int(m.group(1)) - 1]
            raise NetworkError(
                f"`dnsmasq --test` rejected the generated config: {message}"
                + (f" ({offending!r})" if offending else ""),
                fix="this dnsmasq does not accept that option; fix network.dnsmasq_extra or "
                "upgrade dnsmasq",
                details=exc.stderr,
            ) from None
    return (done.stderr.decode("utf-8", "replace").strip() or "syntax check OK").replace(
        str(path), "the generated config"
    )


@dataclass(frozen=True)
class Installed:
    """Outcome of an install: where, the backup of what it replaced, whether it changed."""

    path: Path
    backup: Path | None
    changed: bool


def backup_dir(answers: Answers) -> Path:
    """Where replaced configs are kept (``network.backup_dir``)."""
    return resolve_path(answers.network.backup_dir)


def install_conf(answers: Answers, text: str) -> Installed:
    """Write ``text`` to ``network.dnsmasq_conf`` atomically, backing up what it replaces.

    An identical file is left alone (no backup, ``changed`` False).

    Raises:
        StepError: the file or the backup cannot be written (disk full, permissions).
    """
    path = resolve_path(answers.network.dnsmasq_conf)
    old = read_installed(answers)
    if old == text:
        return Installed(path, None, False)
    saved: Path | None = None
    try:
        if old is not None:
            saved = backup(path, backup_dir(answers))
        atomic_write(path, text, 0o644)
    except OSError as exc:
        raise disk_error(exc.filename or path, exc) from None
    return Installed(path, saved, True)


def list_backups(answers: Answers) -> list[Path]:
    """Backups of ``network.dnsmasq_conf``, oldest first."""
    name = resolve_path(answers.network.dnsmasq_conf).name
    folder = backup_dir(answers)
    if not folder.is_dir():
        return []
    found: list[tuple[str, int, Path]] = []
    for p in folder.glob(f"{name}.*.bak"):
        m = re.fullmatch(re.escape(name) + r"\.(\d{8}-\d{6})(?:-(\d+))?\.bak", p.name)
        if m and p.is_file():
            found.append((m.group(1), int(m.group(2) or 1), p))
    return [p for _, _, p in sorted(found)]


def restore_backup(answers: Answers, chosen: Path | None = None) -> Installed:
    """Put a backup (default: the newest) back in place, backing up the current file first.

    Raises:
        NetworkError: there is no backup, or the chosen one does not exist.
    """
    backups = list_backups(answers)
    source = chosen or (backups[-1] if backups else None)
    if source is None or not source.is_file():
        where = backup_dir(answers)
        raise NetworkError(
            f"no backup of {answers.network.dnsmasq_conf} to restore"
            + (f" ({source} does not exist)" if source else f" in {where}"),
            fix="list them with `firecore-wizard dnsmasq restore --list`",
        )
    text = check_backup(answers, source, backups)
    check_conf(text)
    return install_conf(answers, text)


def check_backup(answers: Answers, source: Path, backups: list[Path]) -> str:
    """The text of a backup that may be restored, after the checks a restore owes root.

    Only a file ``list_backups`` lists (in ``network.backup_dir``, by its name), a plain file
    owned by root or by us that nobody else can write, holding no option that runs a program
    or reads more files (``UNSAFE_OPTIONS``), and — when it is one of our generated configs —
    no ``dnsmasq_extra`` line outside the allow-list. ``dnsmasq --test`` runs after this.

    Raises:
        UsageError: not one of the backups.
        NetworkError: it fails a check (names the file and the line).
    """
    from steps.errors import UsageError

    resolved = {b.resolve() for b in backups}
    if source.resolve() not in resolved or source.is_symlink():
        raise UsageError(
            f"--backup {source} is not one of the backups in {backup_dir(answers)}",
            fix="pick one from `firecore-wizard dnsmasq restore --list`",
        )
    fd = os.open(source, os.O_RDONLY | os.O_NOFOLLOW)
    try:
        st = os.fstat(fd)
        data = os.read(fd, 1 << 20)
    finally:
        os.close(fd)
    if st.st_uid not in (0, os.geteuid()) or st.st_mode & 0o022:
        raise NetworkError(
            f"{source} is owned by uid {st.st_uid} or writable by others (mode "
            f"{st.st_mode & 0o777:o}): it is not restored as dnsmasq's config",
            fix=f"check where it came from; `chown root: {source}; chmod 644 {source}` if it is "
            "yours",
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise NetworkError(f"{source} is not UTF-8 text") from None
    ours = parse_header(text) is not None
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name = line.partition("=")[0].strip()
        if name in UNSAFE_OPTIONS:
            raise NetworkError(
                f"{source}:{n}: {name} runs a program or reads more files; a backup with it is "
                "not restored",
                fix="restore it by hand after reading it",
            )
        if ours and name not in _GENERATED and dnsmasq_extra_problem(line):
            raise NetworkError(
                f"{source}:{n}: {line[:60]!r} is neither generated nor an allowed extra line",
                fix="restore it by hand after reading it",
            )
    return text


#: options render_dnsmasq_conf itself writes (a generated backup may hold these and the extras).
_GENERATED = frozenset(
    {
        "port",
        "interface",
        "bind-dynamic",
        "dhcp-range",
        "dhcp-mac",
        "dhcp-match",
        "dhcp-ignore",
        "pxe-service",
        "dhcp-reply-delay",
        "log-dhcp",
        "enable-tftp",
        "tftp-root",
        "tftp-no-fail",
        "pid-file",
        "dhcp-leasefile",
        "log-facility",
        "tftp-max",
    }
)
