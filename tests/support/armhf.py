"""A Debian armhf kernel and busybox-static for the real-kernel test, fetched once and cached.

Fetched with apt from the machine's own Debian sources but with a PRIVATE apt state directory and
``APT::Architecture=armhf``: the host's dpkg architectures and package lists are never touched,
so there is nothing to undo afterwards. Cached in ``<repo>/.cache/armhf/`` (git-ignored; CI
rebuilds it), guarded by a file lock so parallel pytest workers download once.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".cache" / "armhf"


@dataclass(frozen=True)
class ArmhfKit:
    """What the test boots: a vmlinuz for ``qemu-system-arm -M virt`` and a static busybox."""

    kernel: Path
    busybox: Path


class KitUnavailable(RuntimeError):
    """apt could not fetch the packages (no Debian mirror reachable)."""


def _apt(state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    opts = [
        "-q",
        "-o", "APT::Architecture=armhf",
        "-o", "APT::Architectures::=armhf",
        "-o", f"Dir::State={state / 'state'}",
        "-o", f"Dir::State::status={state / 'status'}",
        "-o", f"Dir::Cache={state / 'cache'}",
        "-o", "Acquire::Retries=3",
    ]  # fmt: skip
    tool = "apt-cache" if args[0] in ("depends", "policy") else "apt-get"
    return subprocess.run(
        [tool, *opts, *args], capture_output=True, text=True, timeout=600, cwd=state / "debs"
    )


def _fetch(dest: Path) -> None:
    work = dest.with_name(dest.name + ".work")
    shutil.rmtree(work, ignore_errors=True)
    for sub in ("state/lists/partial", "cache/archives/partial", "debs"):
        (work / sub).mkdir(parents=True)
    (work / "status").touch()
    update = _apt(work, "update")  # a failing security list is fine if main is there
    lists = list((work / "state" / "lists").glob("*_main_binary-armhf_Packages*"))
    if not lists:
        raise KitUnavailable(f"apt-get update found no armhf package list: {update.stderr[-400:]}")
    dep = _apt(work, "depends", "linux-image-armmp").stdout
    m = re.search(r"Depends: (linux-image-[0-9][^\s]*-armmp)\b", dep)
    if not m:
        raise KitUnavailable(f"no linux-image-*-armmp in the armhf lists: {dep[-300:]}")
    got = _apt(work, "download", "busybox-static", m.group(1))
    debs = work / "debs"
    bb = next(debs.glob("busybox-static_*.deb"), None)
    kd = next(debs.glob("linux-image-*.deb"), None)
    if got.returncode != 0 or bb is None or kd is None:
        raise KitUnavailable(f"apt-get download failed: {got.stderr[-400:]}")
    stage = work / "x"
    subprocess.run(["dpkg-deb", "-x", str(bb), str(stage)], check=True)
    tar = subprocess.run(
        f"dpkg-deb --fsys-tarfile '{kd}' | tar -x -C '{stage}' --wildcards './boot/vmlinuz-*'",
        shell=True, capture_output=True, text=True,
    )  # fmt: skip
    if tar.returncode != 0:
        raise KitUnavailable(f"cannot unpack {kd.name}: {tar.stderr[-300:]}")
    out = work / "kit"
    out.mkdir()
    shutil.copy(stage / "bin" / "busybox", out / "busybox")
    shutil.copy(next((stage / "boot").glob("vmlinuz-*")), out / "vmlinuz")
    shutil.rmtree(dest, ignore_errors=True)
    os.rename(out, dest)
    shutil.rmtree(work, ignore_errors=True)


def ensure_kit(cache: Path = CACHE) -> ArmhfKit:
    """The cached kit, downloading it first if needed (once, under a lock)."""
    cache.mkdir(parents=True, exist_ok=True)
    kit = cache / "kit"
    with (cache / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (kit / "vmlinuz").is_file() or not (kit / "busybox").is_file():
            _fetch(kit)
    return ArmhfKit(kit / "vmlinuz", kit / "busybox")
