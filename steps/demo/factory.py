"""Build a realistic fake piCore mirror with real tools: the fixture for tests and ``--demo``.

``build_mirror(root, specs)`` writes a tree shaped like tinycorelinux.net (picore.md §1.1, §8):
for each ``ReleaseSpec`` its release file (zip with ``.img`` + ``.img.md5.txt`` + README, or a
gzipped raw image for 16.x), a TCZ repository per ``<major>.x/<arch>/tcz/`` with real squashfs
extensions and every index file, a kernel ``src/`` directory and aliases in other arch
directories so listings look real, and the ``FIRECORE-DEMO`` marker at the root (and in every
boot partition). It returns a ``Mirror`` that says what was built: paths, md5s, partition
tables, boot files, kernel release per board, packages and their dependencies — tests assert
against it instead of hard-coding values.

``cached_mirror(cache_root)`` builds once into ``cache_root/mirror-<key>/`` (key = hash of the
specs, ``FACTORY_VERSION`` and the factory's own source) under a file lock, so concurrent pytest
workers or wizard runs share one build, and reloads the ``Mirror`` from ``mirror.json``.

File dates are the releases' dates; every byte is deterministic except where a tool offers no
control (none known with the pinned Debian 12 tools).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import lzma
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from steps.demo import texts
from steps.demo.release import BuiltRelease, build_release
from steps.demo.specs import DEFAULT_SPECS, FACTORY_VERSION, ReleaseSpec
from steps.demo.tczrepo import BuiltPackage, build_repo, package_specs
from steps.paths import DEMO_MARKER
from steps.picore.image import Partition

_PRUNE_AFTER = 24 * 3600

__all__ = [
    "DEFAULT_SPECS",
    "BuiltPackage",
    "BuiltRelease",
    "Mirror",
    "ReleaseSpec",
    "Repo",
    "build_mirror",
    "cached_mirror",
    "mirror_key",
]


@dataclass(frozen=True)
class Repo:
    """One TCZ repository directory of the mirror."""

    path: str
    """Below the mirror root, e.g. "15.x/armhf/tcz"."""
    python: str
    """Version of its pythonX.Y extension ("3.11")."""
    kernels: tuple[str, ...]
    """Kernel releases it has module extensions for ("6.6.47-piCore-v7" …)."""
    packages: Mapping[str, BuiltPackage]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(sorted(self.packages))


@dataclass(frozen=True)
class Mirror:
    """What ``build_mirror`` built, rooted at ``root``."""

    root: Path
    releases: tuple[BuiltRelease, ...]
    repos: Mapping[str, Repo]
    key: str = ""
    extra_files: tuple[str, ...] = field(default=())
    """Non-release files (README, marker, src/ configs) below the root."""

    def release(self, version: str, arch: str | None = None) -> BuiltRelease:
        """The release with that version (and arch, also an alias's arch); KeyError if none."""
        for rel in self.releases:
            arches = {rel.arch} | {a.split("/")[1] for a in rel.aliases}
            if rel.version == version and (arch is None or arch in arches):
                return rel
        raise KeyError(f"no release {version} {arch or ''} in the demo mirror")

    def repo_for(self, release: BuiltRelease) -> Repo:
        return self.repos[release.repo]

    def path(self, rel: str) -> Path:
        """Absolute path of a mirror path ("15.x/armhf/tcz/openssh.tcz")."""
        return self.root / rel

    def to_data(self) -> dict[str, Any]:
        data = asdict(self)
        data["root"] = str(self.root)
        return data

    @classmethod
    def from_data(cls, data: Mapping[str, Any], root: Path | None = None) -> Mirror:
        releases = []
        for r in data["releases"]:
            spec = ReleaseSpec(**{**r["spec"], "aliases": tuple(r["spec"]["aliases"])})
            releases.append(
                BuiltRelease(
                    **{
                        **r,
                        "spec": spec,
                        "aliases": tuple(r["aliases"]),
                        "partitions": tuple(Partition(**p) for p in r["partitions"]),
                        "tce_files": tuple(r["tce_files"]),
                    }
                )
            )
        repos = {
            path: Repo(
                path=repo["path"],
                python=repo["python"],
                kernels=tuple(repo["kernels"]),
                packages={
                    name: BuiltPackage(
                        **{**p, "deps": tuple(p["deps"]), "files": tuple(p["files"])}
                    )
                    for name, p in repo["packages"].items()
                },
            )
            for path, repo in data["repos"].items()
        }
        return cls(
            root=root or Path(data["root"]),
            releases=tuple(releases),
            repos=repos,
            key=data.get("key", ""),
            extra_files=tuple(data.get("extra_files", ())),
        )


def _repo_plan(specs: Sequence[ReleaseSpec]) -> dict[str, tuple[str, list[str], int, str]]:
    """Repo path → (python, kernel releases, epoch, date) from the releases that use it."""
    plan: dict[str, tuple[str, list[str], int, str]] = {}
    for spec in specs:
        python, kernels, epoch, date = plan.get(spec.repo, (spec.python, [], spec.epoch, spec.date))
        kernels += [k for k in spec.kernel_releases if k not in kernels]
        if spec.epoch > epoch:
            epoch, date = spec.epoch, spec.date
        plan[spec.repo] = (python, kernels, epoch, date)
    return plan


def _stamp(paths: Iterator[Path], epoch: int) -> None:
    for p in paths:
        os.utime(p, (epoch, epoch), follow_symlinks=False)


def _stamp_dirs(root: Path) -> None:
    """Give every directory the newest time of its contents (as a mirror's listing shows)."""
    for dirpath, dirnames, filenames in os.walk(root, topdown=False):
        times = [os.lstat(Path(dirpath) / n).st_mtime for n in dirnames + filenames]
        if times:
            t = max(times)
            os.utime(dirpath, (t, t))


#: ``on_progress(what, done, total)``: a part of the mirror was built (for a progress bar).
Progress = Callable[[str, int, int], None]


def build_mirror(
    root: Path, specs: Sequence[ReleaseSpec] = DEFAULT_SPECS, on_progress: Progress | None = None
) -> Mirror:
    """Build the fake mirror into ``root`` (created; must not hold an older mirror).

    Raises:
        ValueError: two specs publish the same path.
        CommandError: a tool (sfdisk, mtools, mke2fs, debugfs, mksquashfs) failed.
    """
    paths = [s.path for s in specs]
    if len(set(paths)) != len(paths):
        raise ValueError("two release specs publish the same path")
    root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".factory-", dir=root.parent))
    plan = _repo_plan(specs)
    total, done = len(plan) + len(specs), 0
    report = on_progress or (lambda what, done, total: None)
    try:
        repos: dict[str, Repo] = {}
        for path, (python, kernels, epoch, date) in plan.items():
            report(f"extensions {path}", done, total)
            arch = path.split("/")[1]
            built = build_repo(
                root / path, work / path.replace("/", "_"), package_specs(python, kernels, arch),
                epoch, date,
            )  # fmt: skip
            _stamp((root / path).iterdir(), epoch)
            repos[path] = Repo(path, python, tuple(kernels), built)
            done += 1
        releases = []
        for spec in specs:
            report(f"release {spec.filename}", done, total)
            rel = build_release(spec, root, work / spec.filename, repos[spec.repo].packages)
            releases.append(rel)
            done += 1
        report("done", done, total)
        extra = _extras(root, specs)
        for rel in releases:
            files = [rel.path, *rel.aliases]
            if rel.spec.publish_md5:
                files += [f"{p}.md5.txt" for p in files]
            _stamp((root / f for f in files), rel.spec.epoch)
        _stamp_dirs(root)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return Mirror(root, tuple(releases), repos, mirror_key(specs), tuple(extra))


def _extras(root: Path, specs: Sequence[ReleaseSpec]) -> list[str]:
    """README and marker at the root; kernel configs in src/ beside the release files."""
    newest = max(s.epoch for s in specs)
    out: list[str] = []
    (root / DEMO_MARKER).write_text(texts.DEMO_NOTE)
    (root / "README").write_text(
        "Tiny Core Linux / piCore — FIRECORE DEMO MIRROR\n\n" + texts.DEMO_NOTE
    )
    _stamp((root / n for n in (DEMO_MARKER, "README")), newest)
    out += [DEMO_MARKER, "README"]
    for spec in specs:
        if spec.beta:
            continue
        src = root / spec.release_dir.rsplit("/", 1)[0] / "src" / "kernel"
        src.mkdir(parents=True, exist_ok=True)
        for kver in spec.kernel_releases:
            name = f"{kver}_.config.xz"
            (src / name).write_bytes(
                lzma.compress(f"# Linux/arm {kver} Kernel Configuration (demo)\n".encode())
            )
            os.utime(src / name, (spec.epoch, spec.epoch))
            out.append(str((src / name).relative_to(root)))
    return out


def _source_digest() -> str:
    here = Path(__file__).resolve().parent
    h = hashlib.sha256()
    for path in sorted([*here.glob("*.py"), here.parent / "picore" / "cpio.py"]):
        if path.name != "server.py":
            h.update(path.name.encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def mirror_key(specs: Sequence[ReleaseSpec] = DEFAULT_SPECS) -> str:
    """Cache key of a mirror: the specs, FACTORY_VERSION and the factory's source code."""
    h = hashlib.sha256()
    h.update(FACTORY_VERSION.encode())
    h.update(json.dumps([asdict(s) for s in specs], sort_keys=True).encode())
    h.update(_source_digest().encode())
    return h.hexdigest()[:16]


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def cached_mirror(
    cache_root: Path,
    specs: Sequence[ReleaseSpec] = DEFAULT_SPECS,
    on_progress: Progress | None = None,
) -> Mirror:
    """The mirror for ``specs``, built once into ``cache_root/mirror-<key>/root``.

    Safe to call from several processes at once: one builds while the others wait on the lock,
    then all load the same ``mirror.json``. A build is moved into place only when complete.
    """
    key = mirror_key(specs)
    final = cache_root / f"mirror-{key}"
    manifest = final / "mirror.json"
    lock = cache_root / f"mirror-{key}.lock"
    with _locked(lock):
        os.utime(lock)  # "last used", for _prune
        if not manifest.exists():
            staging = Path(tempfile.mkdtemp(prefix=f".mirror-{key}.", dir=cache_root))
            os.chmod(staging, 0o755)
            try:
                root = staging / "root"
                mirror = (
                    build_mirror(root, specs, on_progress)
                    if on_progress
                    else build_mirror(root, specs)
                )
                data = mirror.to_data()
                data["root"] = "root"
                (staging / "mirror.json").write_text(json.dumps(data, indent=1, sort_keys=True))
                if final.exists():
                    shutil.rmtree(final)
                os.rename(staging, final)
            except BaseException:
                shutil.rmtree(staging, ignore_errors=True)
                raise
        data = json.loads(manifest.read_text())
    _prune(cache_root, keep=key)
    return Mirror.from_data(data, root=final / "root")


def _prune(cache_root: Path, keep: str) -> None:
    """Remove mirrors of other keys (older factory versions) unused for a day.

    A day, not at once: another process (a running demo, another test session) may still be
    serving an older mirror, and nothing tells us when it stops.
    """
    for old in cache_root.glob("mirror-*.lock"):
        key = old.name[len("mirror-") : -len(".lock")]
        try:
            unused = time.time() - old.stat().st_mtime > _PRUNE_AFTER
        except OSError:
            continue
        if key == keep or not unused:
            continue
        with open(old, "a+b") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                continue
            shutil.rmtree(cache_root / f"mirror-{key}", ignore_errors=True)
            old.unlink(missing_ok=True)
            fcntl.flock(fh, fcntl.LOCK_UN)
