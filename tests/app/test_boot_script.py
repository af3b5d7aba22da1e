"""boot.sh under dash and busybox ash, in a stand-in environment.

The script runs for real: in a private UTS namespace (so setting the hostname touches only the
test), in a network namespace whose interface gets its address when the test says so, with a
fake app (a `run` script) that reports what it saw, dies on command, and runs as user nobody
(the stand-in for tc). Synchronisation is by polling the files the script writes.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT, needs_root
from tests.support.lab import Lab, stop_process

BOOT_SH = ROOT / "assets" / "boot" / "boot.sh"
SHELLS = {"dash": ["/bin/sh"], "busybox": ["busybox", "sh"]}

FAKE_APP = """#!/bin/sh
n=$(cat "$COUNTER" 2>/dev/null || echo 0)
n=$((n + 1))
echo "$n" > "$COUNTER"
echo "start=$n uid=$(id -u) host=$(hostname) cwd=$(pwd) greeting=$GREETING"
echo "pythonpath=$PYTHONPATH"
if [ "$n" -le "${DIE_TIMES:-0}" ]; then
    exit 3
fi
exec sleep 1000
"""


def wait_for(check: Callable[[], bool], timeout: float = 240.0, what: str = "") -> None:
    """Poll ``check``; ``timeout`` only stops a hung test (a loaded machine is slow, not wrong)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def read(path: Path) -> str:
    try:
        return path.read_text()
    except FileNotFoundError:
        return ""


@pytest.fixture
def world() -> Iterator[Path]:
    """A directory every user can traverse (the app runs as nobody), removed afterwards."""
    needs_root()
    root = Path(tempfile.mkdtemp(prefix="fwboot-", dir="/tmp"))
    root.chmod(0o755)
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def make_env(root: Path, **overrides: str) -> dict[str, str]:
    fdir = root / "opt" / "firecore"
    (fdir / "app").mkdir(parents=True)
    (fdir / "app" / "run").write_text(FAKE_APP)
    (fdir / "app" / "run").chmod(0o755)
    (fdir / "app.env").write_text(
        "FIRECORE_APP_MODE='run'\nFIRECORE_HOSTNAME='firecore'\nGREETING='hello world'\n"
    )
    counter = root / "counter"
    counter.touch()
    counter.chmod(0o666)
    env = {
        "PATH": os.environ["PATH"],
        "FIRECORE_DIR": str(fdir),
        "FIRECORE_LOG_DIR": str(root / "log"),
        "FIRECORE_RUN_DIR": str(root / "run"),
        "FIRECORE_MDNS": "0",
        "FIRECORE_USER": "nobody",
        "FIRECORE_POLL": "0.1",
        "FIRECORE_NET_WAIT": "20",
        "COUNTER": str(counter),
    }
    env.update(overrides)
    return env


def start(cmd_prefix: list[str], shell: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [*cmd_prefix, "unshare", "--uts", *SHELLS[shell], str(BOOT_SH)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


def stop(proc: subprocess.Popen[bytes], root: Path) -> None:
    """SIGTERM the script: it must stop the app and exit 0 promptly."""
    app_pid = int(read(root / "run" / "app.pid") or 0)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=240) == 0, proc.stderr.read() if proc.stderr else ""
    if app_pid:
        wait_for(lambda: not Path(f"/proc/{app_pid}").exists(), what="the app to exit")
    assert not (root / "run" / "app.pid").exists() and not (root / "run" / "boot.pid").exists()
    log = read(root / "log" / "boot.log")
    assert "app stopped" in log and log.rstrip().endswith("stopped")


@pytest.mark.netns
@pytest.mark.parametrize("shell", list(SHELLS))
def test_waits_for_an_address_sets_hostname_and_starts_app_as_user(
    lab: Lab, world: Path, shell: str
) -> None:
    env = make_env(world)
    (world / "opt" / "firecore" / "profile.env").write_text("FIRECORE_HOSTNAME='pi-kitchen'\n")
    boot_log, app_out = world / "log" / "boot.log", world / "log" / "app.out"
    pi = lab.host("pi")  # no address yet: DHCP has not answered
    proc = start(pi.cmd([]), shell, env)
    try:
        wait_for(lambda: "waiting up to 20s" in read(boot_log), what="the wait to begin")
        # several polls pass without an address (a slow machine only makes this check weaker)
        time.sleep(0.3)
        assert "IPv4 address:" not in read(boot_log) and read(app_out) == ""
        pi.add_address("10.99.0.7/24")  # … then the lease arrives
        wait_for(lambda: "pythonpath=" in read(app_out), what="the app to start")
        out = read(app_out)
        fdir = world / "opt" / "firecore"
        assert "start=1 uid=65534 host=pi-kitchen" in out  # nobody; the profile's hostname
        assert f"cwd={fdir / 'app'} greeting=hello world" in out
        assert f"pythonpath={fdir}/app:{fdir}/agent:{fdir}/site-packages" in out
        log = read(boot_log)
        order = ["waiting up to", "IPv4 address: 10.99.0.7", "hostname set to pi-kitchen",
                 "starting app"]  # fmt: skip
        positions = [log.index(step) for step in order]
        assert positions == sorted(positions), log
        assert int(read(world / "run" / "app.pid"))
        stop(proc, world)
    finally:
        stop_process(proc)


@pytest.mark.netns
@pytest.mark.parametrize("shell", list(SHELLS))
def test_no_address_within_the_bound_starts_the_app_anyway(
    lab: Lab, world: Path, shell: str
) -> None:
    env = make_env(world, FIRECORE_NET_WAIT="1")
    pi = lab.host("pi")
    proc = start(pi.cmd([]), shell, env)
    try:
        wait_for(lambda: "start=1" in read(world / "log" / "app.out"), what="the app")
        assert "no IPv4 address after 1s; starting the app anyway" in read(
            world / "log" / "boot.log"
        )
        stop(proc, world)
    finally:
        stop_process(proc)


@pytest.mark.parametrize("shell", list(SHELLS))
def test_restarts_a_dying_app_with_bounded_backoff(world: Path, shell: str) -> None:
    env = make_env(
        world,
        DIE_TIMES="4",
        FIRECORE_BACKOFF_MS="100",
        FIRECORE_BACKOFF_MAX_MS="300",
        FIRECORE_USER="root",
    )
    proc = start([], shell, env)
    try:
        wait_for(lambda: "start=5" in read(world / "log" / "app.out"), what="the 5th start")
        log = read(world / "log" / "boot.log")
        delays = [
            line.rsplit("restarting in ", 1)[1]
            for line in log.splitlines()
            if "app exited with status 3" in line
        ]
        assert delays == ["0.100s", "0.200s", "0.300s", "0.300s"]  # doubling, capped
        assert log.count("starting app") == 5
        assert "uid=0" in read(world / "log" / "app.out")
        stop(proc, world)
    finally:
        stop_process(proc)


def test_busybox_sets_the_hostname_without_sethostname(world: Path) -> None:
    """Without piCore's sethostname the script falls back to `hostname NAME` (private UTS)."""
    env = make_env(world, FIRECORE_USER="root")
    proc = start([], "busybox", env)
    try:
        wait_for(lambda: "start=1" in read(world / "log" / "app.out"), what="the app")
        assert "host=firecore" in read(world / "log" / "app.out")
        stop(proc, world)
    finally:
        stop_process(proc)


def test_sethostname_is_preferred_and_logs_are_bounded(world: Path) -> None:
    bindir = world / "bin"
    bindir.mkdir()
    (bindir / "sethostname").write_text(
        f'#!/bin/sh\necho "$1" > {world}/sethostname.called\nhostname "$1"\n'
    )
    (bindir / "sethostname").chmod(0o755)
    env = make_env(
        world,
        PATH=f"{bindir}:{os.environ['PATH']}",
        FIRECORE_USER="root",
        FIRECORE_LOG_MAX_BYTES="300",
        FIRECORE_ROTATE_SECS="0.1",
    )
    # an app that writes far more than the limit, then waits
    (world / "opt" / "firecore" / "app" / "run").write_text(
        '#!/bin/sh\ni=0\nwhile [ $i -lt 200 ]; do echo "line $i of chatter"; i=$((i+1)); done\n'
        "echo done-writing\nexec sleep 1000\n"
    )
    proc = start([], "dash", env)
    try:
        # the stand-in writes the file in one echo: wait for its whole line, not its existence
        wait_for(lambda: read(world / "sethostname.called").endswith("\n"), what="sethostname")
        assert read(world / "sethostname.called") == "firecore\n"
        out = world / "log" / "app.out"
        wait_for(lambda: (world / "log" / "app.out.1").exists(), what="rotation")
        wait_for(lambda: out.stat().st_size <= 300, what="app.out to be truncated")
        stop(proc, world)
    finally:
        stop_process(proc)


PICORE_SETHOSTNAME = """#!/bin/sh
# like piCore's /usr/bin/sethostname: host= on the kernel command line wins over the argument
H=$(for w in $(cat "$FIRECORE_PROC/cmdline"); do case $w in host=*) echo "${w#host=}";; esac; done)
H=$(echo "$H" | tail -n 1)
[ -n "$H" ] || H="$1"
[ -n "$H" ] || H=box
echo "$1" >> "$CALLS"
hostname "$H"
"""


@pytest.mark.parametrize("cmdline_host", ["", "firecore", "from-cmdline"])
def test_the_hostname_log_tells_what_really_happened(world: Path, cmdline_host: str) -> None:
    """piCore's sethostname ignores its argument when host= is on the cmdline (Core-scripts)."""
    bindir = world / "bin"
    bindir.mkdir()
    (bindir / "sethostname").write_text(PICORE_SETHOSTNAME)
    (bindir / "sethostname").chmod(0o755)
    proc_dir = world / "proc"
    proc_dir.mkdir()
    flags = "console=tty1 root=/dev/ram0 noembed nortc" + (
        f" host={cmdline_host}" if cmdline_host else ""
    )
    (proc_dir / "cmdline").write_text(flags + "\n")
    env = make_env(
        world,
        PATH=f"{bindir}:{os.environ['PATH']}",
        FIRECORE_USER="root",
        FIRECORE_PROC=str(proc_dir),
        CALLS=str(world / "calls"),
    )
    proc = start([], "busybox", env)
    try:
        wait_for(lambda: "start=1" in read(world / "log" / "app.out"), what="the app")
        assert "host=firecore" in read(world / "log" / "app.out")  # FIRECORE_HOSTNAME holds
        log = read(world / "log" / "boot.log")
        assert "hostname set to firecore" in log
        if cmdline_host == "from-cmdline":
            # sethostname would have set from-cmdline: it is not used, and the log says why
            assert not (world / "calls").exists()
            assert "the kernel command line says host=from-cmdline" in log
        else:
            assert read(world / "calls") == "firecore\n"
        stop(proc, world)
    finally:
        stop_process(proc)


def test_a_hostname_that_did_not_change_is_not_reported_as_set(world: Path) -> None:
    bindir = world / "bin"
    bindir.mkdir()
    (bindir / "sethostname").write_text("#!/bin/sh\nexit 0\n")  # says yes, does nothing
    (bindir / "sethostname").chmod(0o755)
    env = make_env(world, PATH=f"{bindir}:{os.environ['PATH']}", FIRECORE_USER="root")
    proc = start([], "dash", env)
    try:
        wait_for(lambda: "start=1" in read(world / "log" / "app.out"), what="the app")
        log = read(world / "log" / "boot.log")
        assert "hostname set to" not in log
        assert "could not set the hostname to firecore: it is " in log
        stop(proc, world)
    finally:
        stop_process(proc)
