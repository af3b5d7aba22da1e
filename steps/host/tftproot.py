"""The TFTP root on this host: releases, the ``current`` switch, the lock, and reading them back.

Layout of ``network.tftp_root`` (dnsmasq serves ``<tftp_root>/current``)::

    releases/<id>/            one complete, verified copy of a build (never changed afterwards)
    releases/<id>/<serial>/   per-device tree: hard links to the shared files + its profile's files
    releases/<id>/manifest.json   the build manifest + what deploy added (devices, previous)
    current -> releases/<id>  the live release, switched with one rename(2)
    .deploy.lock              flock: two deploys or rollbacks never interleave

The root is written as root and served to the LAN, so nothing in it is trusted that we did not
make: the lock is opened with ``O_NOFOLLOW`` (a planted symlink cannot make us truncate its
target), ``releases`` must be a real directory owned by root or by us that nobody else can
write (``own_dir``), and nothing is removed unless its real path is inside the root.

A Pi mid-boot never sees a half-copied tree: the new release is built in a staging directory,
renamed into ``releases/`` when complete, and only then does ``current`` change — by renaming a
new symlink over it, which is atomic. dnsmasq opens ``current/<file>`` per request, so each file a
Pi fetches comes whole from one release. Release ids are the UTC time (to the microsecond) plus
the build id, so they sort in deploy order and never collide. Files unchanged since the live
release are hard links to it, so keeping ``deploy.keep`` releases costs little space; every
copied file is checked against the build manifest's sha256 on the way.

Per-device trees follow the firmware (netboot.md §5.1/§5.2): a Pi first asks for
``<serial>/start.elf`` (Pi 3) or ``<serial>/start4.elf`` (Pi 4); if it exists, every later file
is read with the ``<serial>/`` prefix, so the directory holds the whole tree. Unknown serials get
"not found" and fall back to the shared tree.

The Deploy step (``steps.deploy``) publishes into it; ``deploy --rollback`` and the screens read it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import stat
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from steps.answers import Answers, resolve_path
from steps.errors import DeployError
from steps.fsutil import disk_error, hold_lock

RELEASES = "releases"
CURRENT = "current"
LOCK = ".deploy.lock"
#: Names the remaster step writes (steps/remaster.py); repeated here to keep deploy light.
MANIFEST = "manifest.json"
PROFILES_DIR = "profiles"
FILE_MODE = 0o644
DIR_MODE = 0o755
_CHUNK = 1 << 20
_LOCK_WAIT = 30.0


# ----------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class ReleaseInfo:
    """One release directory in the TFTP root."""

    id: str
    path: Path
    build_id: str
    deployed: str
    """UTC time of the deploy, ISO 8601."""
    devices: Mapping[str, str]
    previous: str | None
    """The release that was live when this one was deployed (the rollback target)."""
    current: bool
    demo: bool = False

    def to_data(self) -> dict[str, Any]:
        """JSON-able form (for ``deploy --list --json``)."""
        return {
            "id": self.id,
            "path": str(self.path),
            "build_id": self.build_id,
            "deployed": self.deployed,
            "devices": dict(self.devices),
            "previous": self.previous,
            "current": self.current,
            "demo": self.demo,
        }


def read_manifest(path: Path) -> dict[str, Any] | None:
    """A manifest.json as a dict; None if missing or unreadable."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def current_release(root: Path) -> str | None:
    """The id ``current`` points at, or None (no deploy yet, or ``current`` is not ours)."""
    link = root / CURRENT
    try:
        target = os.readlink(link)
    except OSError:
        return None
    parts = Path(target).parts
    if len(parts) == 2 and parts[0] == RELEASES and (root / RELEASES / parts[1]).is_dir():
        return parts[1]
    return None


def list_releases(root: Path) -> list[ReleaseInfo]:
    """Every complete release under ``root``, oldest first."""
    base = root / RELEASES
    if not base.is_dir():
        return []
    live = current_release(root)
    out: list[ReleaseInfo] = []
    for entry in sorted(base.iterdir()):
        if entry.name.startswith(".") or not entry.is_dir() or entry.is_symlink():
            continue
        out.append(release_info(entry.name, entry, read_manifest(entry / MANIFEST), live))
    return out


def release_info(
    release_id: str, path: Path, manifest: Mapping[str, Any] | None, live: str | None
) -> ReleaseInfo:
    """A ReleaseInfo from a release's deployed manifest (here or on a remote root)."""
    manifest = manifest or {}
    info = manifest.get("deploy") if isinstance(manifest.get("deploy"), dict) else {}
    assert isinstance(info, dict)
    previous = info.get("previous")
    return ReleaseInfo(
        id=release_id,
        path=path,
        build_id=str(manifest.get("build_id", "")),
        deployed=str(info.get("deployed", "")),
        devices=dict(info.get("devices", {})),
        previous=previous if isinstance(previous, str) else None,
        current=release_id == live,
        demo=bool(manifest.get("demo", False)),
    )


def tftp_root(answers: Answers) -> Path:
    """``network.tftp_root`` as an absolute path."""
    return resolve_path(answers.network.tftp_root)


# ----------------------------------------------------------------------------- locking


@contextlib.contextmanager
def deploy_lock(
    root: Path, cancel: threading.Event | None = None, wait: float | None = None
) -> Iterator[None]:
    """Hold ``<root>/.deploy.lock`` (flock); wait up to ``wait`` s for another deploy to finish.

    Raises:
        DeployError: another deploy or rollback still holds it after ``wait`` seconds.
    """
    wait = _LOCK_WAIT if wait is None else wait
    try:
        if not root.exists():
            root.mkdir(parents=True)
            os.chmod(root, DIR_MODE)  # whatever the umask: dnsmasq must traverse it
        own_dir(root.resolve(), "the TFTP root")
        own_dir(root / RELEASES, "the releases directory")
    except OSError as exc:
        raise disk_error(root, exc) from None

    def busy(holder: str) -> DeployError:
        return DeployError(
            f"another deploy or rollback (pid {holder}) is still running on {root}",
            fix="wait for it to finish, then run again",
        )

    with hold_lock(root / LOCK, wait=wait, busy=busy, cancel=cancel):
        yield


# ----------------------------------------------------------------------------- switching


def switch_current(root: Path, release_id: str) -> None:
    """Point ``<root>/current`` at ``releases/<id>`` atomically (new symlink, then rename).

    Raises:
        DeployError: ``current`` exists and is not a symlink (not ours to replace).
    """
    link = root / CURRENT
    if link.exists() and not link.is_symlink():
        raise DeployError(
            f"{link} exists and is not a symlink; deploy will not replace it",
            fix=f"move it away (e.g. `mv {link} {link}.old`) and deploy again",
        )
    tmp = root / f".{CURRENT}.{os.getpid()}.{time.monotonic_ns()}"
    try:
        os.symlink(f"{RELEASES}/{release_id}", tmp)
        os.rename(tmp, link)
        dfd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise disk_error(link, exc) from None


def new_release_id(build_id: str, now: datetime | None = None) -> str:
    """``20261126T003218.123456Z-<build id>``: sorts in deploy order, unique per microsecond."""
    now = now or datetime.now(UTC)
    return now.strftime("%Y%m%dT%H%M%S.%fZ") + f"-{build_id or 'nobuild'}"


def hash_copy(src: Path, dest: Path) -> tuple[str, int]:
    """Copy ``src`` to ``dest`` (new file, mode 0644) returning its sha256 and size."""
    h = hashlib.sha256()
    size = 0
    with src.open("rb") as fin, dest.open("xb") as fout:
        while chunk := fin.read(_CHUNK):
            h.update(chunk)
            fout.write(chunk)
            size += len(chunk)
    os.chmod(dest, FILE_MODE)
    return h.hexdigest(), size


def inside(path: Path, top: Path) -> bool:
    """True when the real path of ``path`` is ``top`` or below it (symlinks resolved)."""
    try:
        path.resolve().relative_to(top.resolve())
    except ValueError:
        return False
    return True


def own_dir(path: Path, what: str) -> None:
    """``path`` is a real directory (not a symlink) owned by root or by us, not writable by
    others (unless sticky); absent is fine.

    Raises:
        DeployError: naming it: someone else could have planted or swapped it.
    """
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise disk_error(path, exc) from None
    problem = ""
    if stat.S_ISLNK(st.st_mode):
        problem = f"is a symlink (to {os.readlink(path)})"
    elif not stat.S_ISDIR(st.st_mode):
        problem = "is not a directory"
    elif st.st_uid not in (0, os.geteuid()):
        problem = f"is owned by uid {st.st_uid}"
    elif st.st_mode & 0o022 and not st.st_mode & stat.S_ISVTX:
        problem = f"is writable by other users (mode {stat.S_IMODE(st.st_mode):o})"
    if problem:
        raise DeployError(
            f"{what} {path} {problem}: deploy does not follow or write what it did not make",
            fix=f"move it away (`mv {path} {path}.suspect`) and deploy again",
        )


def remove_tree(path: Path, top: Path) -> None:
    """``rmtree(path)`` only when ``path`` is a real directory inside ``top``."""
    if path.is_symlink() or not inside(path, top):
        raise DeployError(f"refusing to remove {path}: it is not inside {top}")
    shutil.rmtree(path, ignore_errors=True)


def clean_leftovers(root: Path) -> list[Path]:
    """Remove staging trees and temporary symlinks a killed deploy left (call under the lock)."""
    removed: list[Path] = []
    for p in root.glob(f".{CURRENT}.*"):
        if p.is_symlink():
            p.unlink()
            removed.append(p)
    base = root / RELEASES
    if base.is_dir() and not base.is_symlink():
        for p in base.iterdir():
            if p.name.startswith(".") and (
                ".staging-" in p.name or p.name.startswith(".removing-")
            ):
                remove_tree(p, base)
                removed.append(p)
    return removed
