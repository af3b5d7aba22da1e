"""Router mode on the DHCP server itself: read its config, preview the change, apply it over ssh.

``preview`` reads what the DHCP server has now and renders what it should have:

- **OpenWrt** (``network.router_kind = "openwrt"``): ``/etc/config/dhcp`` is read over ssh, the
  batch (``routerconf.render_uci_batch``) is applied to it by ``steps.host.uci`` and the two are
  diffed as ``uci export`` prints them;
- **plain dnsmasq** (``"dnsmasq"``): the drop-in at ``network.dnsmasq_conf`` on that host (over
  ssh, or here when deploy.target is empty) against ``routerconf.render_router_dnsmasq``.

``apply`` then changes the router in one ssh session, in this order: a copy of the current file
goes to ``/etc/firecore-wizard/`` on the router (and to ``network.backup_dir`` here); the batch
runs (``uci batch``, then ``uci`` is asked for the result) or the drop-in is written beside the
old one, checked with the router's own ``dnsmasq --test`` and renamed into place; ``current`` in
the TFTP directory is made a symlink if it is not one yet (OpenWrt's init script would otherwise
create it as an empty directory, which its dnsmasq jail then freezes); dnsmasq is restarted
(``/etc/init.d/dnsmasq restart``, else ``systemctl restart dnsmasq``); and the script waits until a
*new* dnsmasq process runs and UDP ports 67 and 69 are open. If it does not come back within
15 s, the saved file is put back and dnsmasq restarted again, and the step fails saying so. The
file as the router then holds it is read back and compared with the preview.

A plain dnsmasq server on this very host (deploy.target empty) is installed with the proxy
mode's own machinery (``dnsmasq.install_conf``, ``dnsmasq_service.restart``).
"""

from __future__ import annotations

import difflib
import threading
from collections.abc import Generator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from steps.answers import Answers, resolve_path
from steps.errors import NetworkError
from steps.events import Event, LogLine
from steps.fsutil import atomic_write, disk_error
from steps.host.dnsmasq import check_conf, read_installed
from steps.host.routerconf import (
    render_router_dnsmasq,
    render_uci_batch,
    router_base,
)
from steps.host.sshrun import RemoteResult, Ssh, quote, ssh_for
from steps.host.uci import Package, UciError, apply_batch, parse_package

OPENWRT_DHCP = "/etc/config/dhcp"
ROUTER_BACKUPS = "/etc/firecore-wizard"
_BEGIN = "----- firecore-wizard: config follows -----"

E_NOT_OPENWRT = 30
E_NOT_BACK = 31
E_REJECTED = 32
E_RESTART = 33


@dataclass(frozen=True)
class RouterPreview:
    """The DHCP server's config now, what it becomes, and the diff."""

    kind: str
    where: str
    """Where the config lives: ``ssh://root@192.168.1.1/etc/config/dhcp``, or a local path."""
    generated: str
    """What is sent: the uci batch, or the drop-in text."""
    before: str
    """The config as it is (``uci export`` form for OpenWrt; "" when there is none)."""
    after: str
    """The config as it will be."""

    @property
    def diff(self) -> list[str]:
        """Unified diff lines from ``before`` to ``after`` (empty: nothing changes)."""
        return list(
            difflib.unified_diff(
                self.before.splitlines(),
                self.after.splitlines(),
                fromfile=f"{self.where} (now)",
                tofile=f"{self.where} (router mode)",
                lineterm="",
            )
        )


def _read_script(path: str) -> str:
    return "\n".join(
        [
            f"f={quote(path)}",
            'if [ -f "$f" ]; then echo present; cat "$f"; else echo absent; fi',
            "",
        ]
    )


def _remote_text(ssh: Ssh, path: str, cancel: threading.Event | None) -> str | None:
    result = ssh.run(_read_script(path), cancel=cancel)
    if result.code != 0:
        raise NetworkError(f"cannot read {path} on {ssh.target.host}: {result.last_error()}")
    head, _, body = result.stdout.decode("utf-8", "replace").partition("\n")
    return body if head == "present" else None


def _parse_dhcp(text: str, where: str) -> Package:
    try:
        return parse_package("dhcp", text)
    except UciError as exc:
        raise NetworkError(
            f"{where} cannot be read as a UCI file: {exc}",
            fix="check the file on the router (`uci show dhcp` shows what uci makes of it)",
        ) from None


def preview(answers: Answers, *, cancel: threading.Event | None = None) -> RouterPreview:
    """Read the DHCP server's config and render the router-mode change (changes nothing).

    Raises:
        AnswersError: router-mode answers missing (router address, target).
        RemoteError: the router cannot be reached over ssh.
        NetworkError: its config cannot be read.
    """
    ssh = ssh_for(answers)
    if answers.network.router_kind == "openwrt":
        if ssh is None:  # check_answers refuses this; kept for direct callers
            raise NetworkError("an OpenWrt router is reached over ssh: set deploy.target")
        batch = render_uci_batch(answers)
        where = f"{ssh.target.origin}{OPENWRT_DHCP}"
        text = _remote_text(ssh, OPENWRT_DHCP, cancel)
        if text is None:
            raise NetworkError(
                f"{where} does not exist: is {ssh.target.host} an OpenWrt router?",
                fix='set network.router_kind = "dnsmasq" for a plain dnsmasq DHCP server',
            )
        pkg = _parse_dhcp(text, where)
        try:
            after = apply_batch(pkg, batch)
        except UciError as exc:
            raise NetworkError(
                f"the batch does not apply to {where}: {exc}",
                fix="OpenWrt's default config has one `config dnsmasq` section; check yours",
            ) from None
        return RouterPreview("openwrt", where, batch, pkg.export(), after.export())
    text = render_router_dnsmasq(answers)
    conf = answers.network.dnsmasq_conf
    if ssh is None:
        path = resolve_path(conf)
        return RouterPreview("dnsmasq", str(path), text, read_installed(answers) or "", text)
    old = _remote_text(ssh, conf, cancel)
    return RouterPreview("dnsmasq", f"{ssh.target.origin}{conf}", text, old or "", text)


# ------------------------------------------------------------------------------- applying

_WAIT_BACK = [
    # a new dnsmasq (not one of $old) runs, and udp/67 and udp/69 are open, within 15 s
    "came_back() {",
    "  n=0",
    '  while [ "$n" -lt 30 ]; do',
    "    for p in $(pidof dnsmasq 2>/dev/null); do",
    '      case " $old " in *" $p "*) continue;; esac',
    "      if grep -q ':0043 ' /proc/net/udp && grep -q ':0045 ' /proc/net/udp; then",
    '        echo "dnsmasq $p"; return 0',
    "      fi",
    "    done",
    "    n=$((n + 1)); sleep 1 2>/dev/null || true",
    "  done",
    "  return 1",
    "}",
    "restart() {",
    "  if [ -x /etc/init.d/dnsmasq ]; then /etc/init.d/dnsmasq restart",
    "  elif command -v systemctl >/dev/null 2>&1; then systemctl restart dnsmasq",
    '  else fail 33 "neither /etc/init.d/dnsmasq nor systemctl can restart dnsmasq here"; fi',
    "}",
]


def _ensure_current(base: str) -> list[str]:
    # current must be a symlink before dnsmasq (re)starts: OpenWrt's init script mkdirs the TFTP
    # root, and its jail would then keep that empty directory mounted over later switches
    return [
        f"tb={quote(base)}",
        'mkdir -p "$tb/releases" || fail 20 "cannot create $tb/releases"',
        'if [ -d "$tb/current" ] && [ ! -L "$tb/current" ]; then',
        '  rmdir "$tb/current" 2>/dev/null && ln -s releases "$tb/current"',
        'elif [ ! -e "$tb/current" ] && [ ! -L "$tb/current" ]; then',
        '  ln -s releases "$tb/current"',
        "fi",
    ]


def apply_script(answers: Answers, pv: RouterPreview, stamp: str) -> str:
    """The one script that changes the router (see the module docstring for the order)."""
    lines = [
        "set -u",
        "umask 022",
        'fail() { code=$1; shift; echo "$*" >&2; exit "$code"; }',
        "old=$(pidof dnsmasq 2>/dev/null || true)",
        *_WAIT_BACK,
    ]
    if pv.kind == "openwrt":
        saved = f"{ROUTER_BACKUPS}/dhcp.{stamp}"
        lines += [
            f'[ -f {OPENWRT_DHCP} ] && command -v uci >/dev/null 2>&1 || fail 30 "no uci or '
            f'{OPENWRT_DHCP}: this is not OpenWrt"',
            f"mkdir -p {ROUTER_BACKUPS} && cp {OPENWRT_DHCP} {quote(saved)} "
            f'|| fail 20 "cannot save {OPENWRT_DHCP} to {ROUTER_BACKUPS}"',
            f'echo "saved {saved}"',
            f"undo() {{ cp {quote(saved)} {OPENWRT_DHCP}; restart >/dev/null 2>&1; }}",
            "uci batch <<'FC_EOF' >\"$1/uci.out\" 2>&1",
            *pv.generated.splitlines(),
            "FC_EOF",
            'grep -v "^$" "$1/uci.out" >&2 || true',
        ]
        show = OPENWRT_DHCP
    else:
        conf = answers.network.dnsmasq_conf
        backups = answers.network.backup_dir
        saved = f"{backups}/{Path(conf).name}.{stamp}.bak"
        lines += [
            f"conf={quote(conf)}",
            f'mkdir -p {quote(backups)} "$(dirname "$conf")" || fail 20 "cannot create {backups}"',
            f'if [ -f "$conf" ]; then cp "$conf" {quote(saved)} && echo "saved {saved}"; fi',
            f"saved={quote(saved)}",
            'undo() { if [ -f "$saved" ]; then cp "$saved" "$conf"; else rm -f "$conf"; fi; '
            "restart >/dev/null 2>&1; }",
            'new="$conf.firecore.tmp"',
            "cat > \"$new\" <<'FC_EOF'",
            *pv.generated.splitlines(),
            "FC_EOF",
            "if command -v dnsmasq >/dev/null 2>&1; then",
            '  dnsmasq --test -C "$new" >"$1/test.out" 2>&1 || { cat "$1/test.out" >&2; '
            'rm -f "$new"; fail 32 "this host\'s dnsmasq rejects the drop-in"; }',
            "fi",
            'mv -f "$new" "$conf" || fail 20 "cannot write $conf"',
        ]
        show = conf
    lines += _ensure_current(router_base(answers))
    lines += [
        'restart >"$1/restart.out" 2>&1 || true',
        "if ! came_back; then",
        '  cat "$1/restart.out" >&2',
        "  undo",
        '  fail 31 "dnsmasq did not come back within 15 s after the restart; the previous '
        'config was put back"',
        "fi",
        f'echo "{_BEGIN}"',
        f"cat {quote(show)}",
    ]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Applied:
    """What ``apply`` did."""

    where: str
    pid: int | None
    router_backup: str | None
    local_backup: Path | None
    readback_matches: bool


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%d-%H%M%S")


def apply(
    answers: Answers, pv: RouterPreview, *, step: str, cancel: threading.Event | None = None
) -> Generator[Event, None, Applied]:
    """Change the DHCP server as ``pv`` shows (a generator of events; returns ``Applied``).

    Raises:
        NetworkError: the router rejected the change or dnsmasq did not come back (its config
            is put back first).
    """
    ssh = ssh_for(answers)
    if ssh is None:
        return (yield from _apply_local(answers, pv, step=step, cancel=cancel))
    stamp = _stamp()
    local = _keep_locally(answers, pv, stamp)
    if local is not None:
        yield LogLine(step, f"copied the router's current config to {local}")
    yield LogLine(step, f"applying on {ssh.target.host}: backup, change, restart dnsmasq", "cmd")
    result = ssh.run(apply_script(answers, pv, stamp), cancel=cancel)
    if result.code != 0:
        raise _apply_error(result, pv)
    out = result.stdout.decode("utf-8", "replace")
    head, _, readback = out.partition(_BEGIN + "\n")
    fields = RemoteResult(0, head.encode(), "").fields()
    for line in result.stderr.strip().splitlines():
        yield LogLine(step, f"router: {line}", "stderr")
    saved = fields.get("saved")
    if saved:
        yield LogLine(step, f"{ssh.target.host} keeps the previous config as {saved}")
    pid_text = fields.get("dnsmasq", "")
    matches = _readback_matches(pv, readback)
    if not matches:
        yield LogLine(
            step,
            f"{pv.where} as the router holds it now differs from the preview: check it with "
            "`uci show dhcp`",
            "warning",
        )
    return Applied(pv.where, int(pid_text) if pid_text.isdigit() else None, saved, local, matches)


def _readback_matches(pv: RouterPreview, text: str) -> bool:
    if pv.kind == "openwrt":
        try:
            return parse_package("dhcp", text).export() == pv.after
        except UciError:
            return False
    return text == pv.after


def _keep_locally(answers: Answers, pv: RouterPreview, stamp: str) -> Path | None:
    if not pv.before:
        return None
    name = "openwrt-dhcp" if pv.kind == "openwrt" else Path(answers.network.dnsmasq_conf).name
    path = resolve_path(answers.network.backup_dir) / f"{name}.{stamp}.router.bak"
    try:
        atomic_write(path, pv.before, 0o600)
    except OSError as exc:
        raise disk_error(path, exc) from None
    return path


def _apply_error(result: RemoteResult, pv: RouterPreview) -> NetworkError:
    msg = result.last_error()
    fixes = {
        E_NOT_OPENWRT: 'set network.router_kind = "dnsmasq" unless the host is an OpenWrt router',
        E_NOT_BACK: "look at the router's log (`logread -e dnsmasq` on OpenWrt) — its previous "
        "config is in place again",
        E_REJECTED: "that dnsmasq is older or built without an option: see the message",
        E_RESTART: "restart dnsmasq on that host by hand",
    }
    return NetworkError(
        f"{pv.where}: {msg}", fix=fixes.get(result.code, "see the message"), details=result.stderr
    )


def _apply_local(
    answers: Answers, pv: RouterPreview, *, step: str, cancel: threading.Event | None
) -> Generator[Event, None, Applied]:
    """A plain dnsmasq DHCP server on this host: install the drop-in, restart, check."""
    from steps.host.dnsmasq import install_conf
    from steps.host.dnsmasq_service import restart
    from steps.host.udpsockets import udp_ports_of

    yield LogLine(step, "dnsmasq --test -C <router-mode drop-in>", "cmd")
    yield LogLine(step, check_conf(pv.generated, cancel=cancel), "stderr")
    base = Path(router_base(answers))
    _ensure_local_current(base)
    installed = install_conf(answers, pv.generated)
    if installed.backup is not None:
        yield LogLine(step, f"backed up the previous drop-in to {installed.backup}")
    pid = yield from restart(step, answers, cancel=cancel)
    if answers.network.dnsmasq_service != "none" and not {67, 69} <= udp_ports_of(pid):
        raise NetworkError(
            f"dnsmasq (PID {pid}) does not listen on udp/67 and udp/69 after the restart",
            fix="check its log (`journalctl -u dnsmasq`)",
        )
    return Applied(str(installed.path), pid, None, installed.backup, True)


def _ensure_local_current(base: Path) -> None:
    import os

    releases = base / "releases"
    try:
        releases.mkdir(parents=True, exist_ok=True)
        current = base / "current"
        if current.is_dir() and not current.is_symlink() and not any(current.iterdir()):
            current.rmdir()
        if not current.exists() and not current.is_symlink():
            os.symlink("releases", current)
    except OSError as exc:
        raise disk_error(base, exc) from None
