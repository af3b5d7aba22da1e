"""A router in a network namespace that the tool reaches over ssh, as it would reach OpenWrt.

- **ssh**: real dropbear (the ssh server OpenWrt ships; Debian's ``dropbear-bin``), started on
  the router's address with a generated host key, in its own mount namespace where ``/root`` and
  ``/etc`` are overlays whose changes (the test's authorized key, the router's config) land in a
  temporary directory: the machine's own ``/root`` and ``/etc`` are never touched.
- **busybox only**: every session runs through a forced command whose ``PATH`` holds nothing but
  busybox applets (``busybox --install -s`` into a temporary directory, minus applets OpenWrt's
  default busybox leaves out) and the router's own programs (``uci`` below).
- **the router's programs**: the real ``tcpdump`` (unless a test wants a router without it), and
  stand-ins for what cannot run here (``tests.support.openwrt``):
  ``uci`` (batch and export, on ``/etc/config/dhcp``) and ``/etc/init.d/dnsmasq``, which turns
  the router's config into a real dnsmasq full DHCP + TFTP server in the namespace, the way
  OpenWrt's init script does — or, for a plain dnsmasq router, runs its base config plus the
  drop-in router mode installs.

The test's ssh client config (``ssh_config``) names the key, the host key and the port; the
answers' ``deploy.ssh_config`` points at it. Everything lives in one temporary directory and every
process runs in the router's namespace, so ``Lab.close`` stops them all.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.lab import Host

REPO = Path(__file__).resolve().parents[2]
#: Applets Debian's busybox has and OpenWrt's default busybox config does not build
#: (package/utils/busybox/Config-defaults.in): router-side scripts must do without them.
NOT_ON_OPENWRT = (
    "realpath",
    "stat",
    "timeout",
    "truncate",
    "base64",
    "install",
    "flock",
    "nohup",
    "od",
    "unlink",
    "sha1sum",
    "sha512sum",
    "shuf",
    "tac",
)
POOL = "10.99.0.100,10.99.0.199,255.255.255.0,1h"


@dataclass
class SshRouter:
    """The router: its namespace, address, TFTP directory and how to reach it."""

    host: Host
    address: str
    kind: str
    """"openwrt" or "dnsmasq"."""
    dir: Path
    """Everything of this router (keys, overlay, state) lives below here."""
    base: Path
    """The TFTP directory deploy.target names."""
    ssh_config: Path
    dropin: Path
    """Where a plain-dnsmasq router reads the router-mode drop-in (network.dnsmasq_conf)."""

    @property
    def target(self) -> str:
        """deploy.target for this router."""
        return f"ssh://root@{self.address}{self.base}"

    @property
    def etc(self) -> Path:
        """The router's changes to /etc (the overlay's upper directory)."""
        return self.dir / "etc-upper"

    @property
    def log(self) -> Path:
        """The router dnsmasq's log."""
        return self.dir / "state" / "dnsmasq.log"

    def ssh(
        self, client: Host, command: str, *, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run ``command`` on the router (busybox sh) from ``client``'s namespace."""
        return client.run(
            ["ssh", "-F", str(self.ssh_config), f"root@{self.address}", command],
            check=check,
            timeout=120,
        )

    def dnsmasq_pid(self) -> int | None:
        """PID of the router's running dnsmasq (from its pid file)."""
        try:
            pid = int((self.dir / "state" / "dnsmasq.pid").read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if Path(f"/proc/{pid}").exists() else None


def _write(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)


_UCI = """#!{python}
import os, sys
sys.path.insert(0, {repo!r})
from steps.host.uci import UciError, apply_batch, parse_package
CFG = "/etc/config/dhcp"
args = sys.argv[1:]
pkg = parse_package("dhcp", open(CFG).read())
if args == ["batch"]:
    try:
        new = apply_batch(pkg, sys.stdin.read())
    except UciError as exc:
        print(f"uci: {{exc}}", file=sys.stderr)
        sys.exit(0)  # like uci batch, which reports and goes on
    tmp = CFG + ".tmp"
    open(tmp, "w").write(new.export())
    os.replace(tmp, CFG)
elif args == ["export", "dhcp"]:
    sys.stdout.write(pkg.export(header=True))
else:
    print("uci (test stand-in): only `batch` and `export dhcp`", file=sys.stderr)
    sys.exit(1)
"""

_INIT = """#!{python}
import os, signal, subprocess, sys, time
from pathlib import Path
sys.path.insert(0, {repo!r})
from steps.host.uci import parse_package
from tests.support.openwrt import translate
STATE = Path({state!r})
KIND = {kind!r}
PID = STATE / "dnsmasq.pid"

def stop():
    try:
        pid = int(PID.read_text())
    except (OSError, ValueError):
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    for _ in range(200):
        if not Path(f"/proc/{{pid}}").exists():
            return
        time.sleep(0.02)

def start():
    if KIND == "openwrt":
        conf = translate(parse_package("dhcp", open("/etc/config/dhcp").read()),
                         lan={pool!r}, leases=STATE / "leases")
    else:
        conf = (open({base_conf!r}).read()
                + (f"conf-file={dropin}\\n" if os.path.exists({dropin!r}) else ""))
    (STATE / "dnsmasq.conf").write_text(conf)
    done = subprocess.run(["/usr/sbin/dnsmasq", "-C", str(STATE / "dnsmasq.conf"),
                           f"--pid-file={{PID}}", "--user=root", "--log-dhcp",
                           f"--log-facility={{STATE / 'dnsmasq.log'}}"],
                          capture_output=True, text=True, env={{"LANG": "C", "LC_ALL": "C"}})
    if done.returncode != 0:
        sys.stderr.write(done.stderr)
        sys.exit(1)

cmd = sys.argv[1] if len(sys.argv) > 1 else ""
if cmd == "stop":
    stop()
elif cmd in ("start", "restart", "reload"):
    stop()
    start()
else:
    print("usage: dnsmasq start|stop|restart", file=sys.stderr)
    sys.exit(1)
"""

_SESSION = """#!/bin/sh
PATH={path}
export PATH
cd /
exec {bb}/sh -c "$SSH_ORIGINAL_COMMAND"
"""


def busybox_dir(path: Path) -> Path:
    """Every busybox applet as a symlink in ``path``, minus those OpenWrt does not build."""
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["busybox", "--install", "-s", str(path)], check=True)
    for name in NOT_ON_OPENWRT:
        (path / name).unlink(missing_ok=True)
    return path


def start_router(
    host: Host, address: str, *, kind: str, ssh_client: Host, tcpdump: bool = True
) -> SshRouter:
    """dropbear + the router's programs in ``host`` (which has ``address``); wait until ssh works.

    ``tcpdump``: the router has tcpdump (``opkg install tcpdump-mini`` done) — Debian's, real.

    Raises:
        RuntimeError: dropbear did not accept the test's key within a minute (its log attached).
    """
    top = Path(tempfile.mkdtemp(prefix="fwt-router-", dir="/tmp"))
    top.chmod(0o755)
    state = top / "state"
    state.mkdir()
    base = top / "firecore"
    home = top / "root-upper"  # /root's overlay: only .ssh/authorized_keys is added
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh").chmod(0o700)
    (top / "root-work").mkdir()
    python = sys.executable
    # keys: the router's host key (dropbear's format) and the client's key (OpenSSH)
    hostkey = top / "hostkey"
    subprocess.run(["dropbearkey", "-t", "ed25519", "-f", str(hostkey)], check=True,
                   capture_output=True)  # fmt: skip
    pub = subprocess.run(["dropbearkey", "-y", "-f", str(hostkey)], check=True,
                         capture_output=True, text=True).stdout  # fmt: skip
    host_line = next(line for line in pub.splitlines() if line.startswith("ssh-"))
    client_key = top / "client_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(client_key)],
                   check=True)  # fmt: skip
    _write(home / ".ssh" / "authorized_keys", (top / "client_key.pub").read_text(), 0o600)
    known = top / "known_hosts"
    _write(known, f"{address} {' '.join(host_line.split()[:2])}\n")
    ssh_config = top / "ssh_config"
    _write(
        ssh_config,
        f"Host {address}\n  User root\n  IdentityFile {client_key}\n  IdentitiesOnly yes\n"
        f"  UserKnownHostsFile {known}\n  GlobalKnownHostsFile /dev/null\n"
        "  StrictHostKeyChecking yes\n  LogLevel ERROR\n",
    )
    # the router's filesystem: busybox applets, its programs, its /etc changes
    bb = busybox_dir(top / "bb")
    routerbin = top / "routerbin"
    _write(routerbin / "uci", _UCI.format(python=python, repo=str(REPO)), 0o755)
    if tcpdump:
        (routerbin / "tcpdump").symlink_to(shutil.which("tcpdump") or "/usr/bin/tcpdump")
    if kind == "openwrt":  # OpenWrt's package manager, only to be found (nothing installs)
        _write(routerbin / "opkg", "#!/bin/sh\necho 'opkg (test stand-in)' >&2\nexit 1\n", 0o755)
    upper, work = top / "etc-upper", top / "etc-work"
    dropin = top / "dnsmasq.d" / "firecore.conf"
    base_conf = top / "router-base.conf"
    _write(
        base_conf,
        "port=0\ninterface=eth0\nbind-dynamic\n"
        f"dhcp-range={POOL}\ndhcp-leasefile={state / 'leases'}\n",
    )
    _write(
        upper / "init.d" / "dnsmasq",
        _INIT.format(
            python=python,
            repo=str(REPO),
            state=str(state),
            kind=kind,
            pool=POOL,
            base_conf=str(base_conf),
            dropin=str(dropin),
        ),
        0o755,
    )
    if kind == "openwrt":
        from tests.support.openwrt import DEFAULT_DHCP

        _write(upper / "config" / "dhcp", DEFAULT_DHCP)
    work.mkdir()
    _write(top / "session", _SESSION.format(path=f"{bb}:{routerbin}", bb=bb), 0o755)
    mounts = (
        f"mount -t overlay overlay -o lowerdir=/root,upperdir={home},workdir={top / 'root-work'}"
        " /root && "
        f"mount -t overlay overlay -o lowerdir=/etc,upperdir={upper},workdir={work} /etc && "
        f"exec dropbear -F -E -s -j -k -m -p {address}:22 -r {hostkey} -c {top / 'session'}"
        f" -P {state / 'dropbear.pid'}"
    )
    log = (top / "dropbear.log").open("wb")
    host.popen(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", mounts],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    log.close()
    router = SshRouter(host, address, kind, top, base, ssh_config, dropin)
    deadline = time.monotonic() + 240
    while True:
        done = router.ssh(ssh_client, "echo ready", check=False)
        if done.returncode == 0 and done.stdout.strip() == "ready":
            return router
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"dropbear in {host.name} did not let us in: {done.stderr}\n"
                + (top / "dropbear.log").read_text(errors="replace")
            )
        time.sleep(0.2)


def remove_router(router: SshRouter) -> None:
    """Remove the router's files (its processes stop with the lab)."""
    shutil.rmtree(router.dir, ignore_errors=True)


def start_service(router: SshRouter, client: Host) -> Any:
    """``/etc/init.d/dnsmasq start`` on the router (over ssh, like an admin would)."""
    return router.ssh(client, "/etc/init.d/dnsmasq start")
