"""The Deploy step: publish the boot tree into the TFTP root atomically, with instant rollback.

The step checks ``build.output`` against its manifest, copies it into a new release directory
(hard-linking files unchanged since the live release, checking every copied file's sha256),
adds a per-device tree for each serial in ``deploy.devices``, switches ``current`` to it and
keeps the newest ``deploy.keep`` releases (a build already live is not published again).
``rollback`` switches ``current`` back. The layout of the TFTP root, why a Pi mid-boot never
sees a half-copied tree, and how the firmware finds a per-device tree (netboot.md §5.1/§5.2)
are in ``steps.host.tftproot``, which owns that layout.
Every copied file is checked against the manifest's sha256 — read again unless it is the very
file the remaster step wrote with those bytes (``fsutil.KnownDigests``).
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import stat
from collections.abc import Generator, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from steps.answers import Answers, resolve_path
from steps.artifacts import BuildResult, DeployResult
from steps.base import StepContext
from steps.errors import DeployError, UsageError
from steps.events import Event, LogLine, Planned, Progress, Result
from steps.fsutil import KnownDigests, disk_error, staging_dir
from steps.host.tftproot import (
    CURRENT,
    DIR_MODE,
    FILE_MODE,
    MANIFEST,
    PROFILES_DIR,
    RELEASES,
    clean_leftovers,
    current_release,
    deploy_lock,
    hash_copy,
    inside,
    list_releases,
    new_release_id,
    read_manifest,
    remove_tree,
    switch_current,
    tftp_root,
)
from steps.paths import cache_dir, digests_file
from steps.wire.pimodels import SizeFinding, size_findings

NAME = "deploy"


def rollback(answers: Answers, to: str | None = None) -> DeployResult:
    """Switch ``current`` back to the release that was live before it (or to ``to``).

    Raises:
        DeployError: nothing deployed yet, no earlier release, or ``to`` does not exist.
    """
    root = tftp_root(answers)
    with deploy_lock(root):
        releases = list_releases(root)
        ids = [r.id for r in releases]
        live = current_release(root)
        if live is None:
            raise DeployError(
                f"nothing is deployed in {root} (no {CURRENT} symlink)",
                fix="deploy first: firecore-wizard --answers FILE",
            )
        if to is not None:
            if to not in ids:
                known = ", ".join(ids) or "none"
                raise UsageError(
                    f"release {to!r} is not in {root / RELEASES} (releases: {known})",
                    fix="pick one from `firecore-wizard deploy --list`",
                )
            target = to
        else:
            info = next(r for r in releases if r.id == live)
            older = [i for i in ids if i < live]
            if info.previous in ids and info.previous != live:
                target = info.previous
            elif older:
                target = older[-1]
            else:
                raise DeployError(
                    f"{live} is the oldest release in {root}: there is nothing to roll back to",
                    fix="deploy a build instead",
                )
        switch_current(root, target)
        info = next(r for r in releases if r.id == target)
        return DeployResult(root, target, live, dict(info.devices))


# ----------------------------------------------------------------------------- the step


def _scan_build(out: Path, files: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """The build tree's directories and files (relative), checked against its manifest.

    Raises:
        DeployError: a symlink leaves the tree, a special file, a file missing from the
            manifest or a manifest file missing from the tree.
    """
    dirs: list[str] = []
    found: list[str] = []
    for dirpath, dirnames, filenames in os.walk(out):
        base = Path(dirpath)
        for name in sorted(dirnames):
            p = base / name
            if p.is_symlink():
                raise DeployError(
                    f"{p} is a symlink; the boot tree must hold plain files and directories",
                    fix="run the remaster step again to rebuild build.output",
                )
            dirs.append(p.relative_to(out).as_posix())
        for name in filenames:
            p = base / name
            rel = p.relative_to(out).as_posix()
            if rel == MANIFEST:
                continue
            if p.is_symlink() and not inside(p, out):
                raise DeployError(
                    f"{p} is a symlink that points outside the boot tree ({os.readlink(p)})",
                    fix="replace it with the file itself, or rebuild with the remaster step",
                )
            if not p.is_file():
                raise DeployError(f"{p} is not a regular file", fix="remove it from build.output")
            if rel not in files:
                raise DeployError(
                    f"{p} is not in the build manifest (build.output was changed after the build)",
                    fix="run the remaster step again (or remove the extra file)",
                )
            found.append(rel)
    missing = sorted(set(files) - set(found))
    if missing:
        raise DeployError(
            f"{out / missing[0]} is listed in the build manifest but missing"
            + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""),
            fix="run the remaster step again",
        )
    return sorted(dirs), sorted(found)


def tftp_size_findings(manifest: Mapping[str, Any]) -> list[SizeFinding]:
    """Files of a build that a board's boot code may fail to read whole (``pimodels``).

    From the manifest alone: each board's kernel and initramfs files, plus every profile's
    archives (``profiles/<name>/*.gz``, loaded after overlay.gz).
    """
    files = manifest.get("files", {})
    sizes = {rel: int(meta.get("size", 0)) for rel, meta in files.items()}
    extra = [rel for rel in files if rel.startswith(f"{PROFILES_DIR}/") and rel.endswith(".gz")]
    reads: dict[str, list[str]] = {}
    for board, info in (manifest.get("boards") or {}).items():
        if isinstance(info, dict):
            reads[board] = [str(info.get("kernel", "")), *info.get("initramfs", []), *extra]
    return size_findings(sizes, reads)


def _device_files(
    shared: list[str], files: Mapping[str, Any], profile: str
) -> dict[str, str] | None:
    """Per-device tree: relative path in ``<serial>/`` → source path in the release."""
    prefix = f"{PROFILES_DIR}/{profile}/"
    own = {rel[len(prefix) :]: rel for rel in files if rel.startswith(prefix)}
    if not own:
        return None
    tree = {rel: rel for rel in shared if not rel.startswith(f"{PROFILES_DIR}/")}
    tree.update(own)
    return tree


class DeployStep:
    """Publish ``build.output`` as a new release and switch ``current`` to it."""

    name = NAME
    title = "Deploy"

    def run(self, ctx: StepContext) -> Iterator[Event]:
        """Verify, copy (or hard-link), build device trees, switch, prune."""
        answers = ctx.answers
        self._digests = KnownDigests(digests_file(cache_dir(answers, ctx.cache_dir)))
        build = ctx.results.get(BuildResult)
        out = build.output if build is not None else resolve_path(answers.build.output)
        root = tftp_root(answers)
        manifest = read_manifest(out / MANIFEST)
        if manifest is None or not isinstance(manifest.get("files"), dict):
            if ctx.dry_run:
                yield from self._plan_unbuilt(root, out, answers)
                return
            raise DeployError(
                f"{out} holds no build (no readable {MANIFEST})",
                fix="run the remaster step first (it writes build.output)",
            )
        files: dict[str, Any] = manifest["files"]
        build_id = str(manifest.get("build_id", ""))
        devices = dict(answers.deploy.devices)
        yield from self._check_parents(root)
        for finding in tftp_size_findings(manifest):
            yield LogLine(NAME, finding.message(), "warning")

        if ctx.dry_run:
            yield from self._plan(ctx, root, out, manifest, devices)
            return

        with deploy_lock(root, ctx.cancel):
            for leftover in clean_leftovers(root):
                yield LogLine(NAME, f"removed {leftover} (left by an interrupted deploy)")
            live = current_release(root)
            live_manifest = read_manifest(root / RELEASES / live / MANIFEST) if live else None
            if live and live_manifest and self._same(live_manifest, manifest, devices):
                yield LogLine(NAME, f"release {live} already serves build {build_id}: no change")
                result = DeployResult(root, live, live_manifest["deploy"].get("previous"), devices)
                ctx.results.put(result)
                yield Result(NAME, f"{root / CURRENT} → {live} (unchanged)", result.to_data())
                return
            dirs, shared = _scan_build(out, files)
            release_id = new_release_id(build_id)
            while (root / RELEASES / release_id).exists():  # pragma: no cover - same µs
                release_id = new_release_id(build_id)
            final = root / RELEASES / release_id
            try:
                if not (root / RELEASES).is_dir():
                    (root / RELEASES).mkdir()
                    os.chmod(root / RELEASES, DIR_MODE)
                with staging_dir(final) as stage:
                    deployed = yield from self._publish(
                        ctx, out, stage, dirs, shared, files, live, live_manifest
                    )
                    device_entries = yield from self._devices(ctx, stage, shared, files, devices)
                    record = dict(manifest)
                    record["files"] = {**files, **device_entries}
                    record["deploy"] = {
                        "release": release_id,
                        "deployed": datetime.now(UTC).isoformat(timespec="seconds"),
                        "source": str(out),
                        "devices": devices,
                        "previous": live,
                        "linked": deployed,
                    }
                    mpath = stage / MANIFEST
                    mpath.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
                    os.chmod(mpath, FILE_MODE)
                    os.chmod(stage, DIR_MODE)
                    ctx.check_cancel()
                    os.rename(stage, final)
            except OSError as exc:
                raise disk_error(getattr(exc, "filename", None) or final, exc) from None
            switch_current(root, release_id)
            yield LogLine(NAME, f"{root / CURRENT} → {RELEASES}/{release_id}")
            removed = self._prune(root, answers.deploy.keep)
            for rid in removed:
                yield LogLine(
                    NAME, f"removed old release {rid} (deploy.keep = {answers.deploy.keep})"
                )
        result = DeployResult(root, release_id, live, devices)
        ctx.results.put(result)
        per_device = f", {len(devices)} per-device tree(s)" if devices else ""
        yield Result(
            NAME,
            f"{root / CURRENT} → {release_id} (build {build_id}{per_device})",
            {**result.to_data(), "files": len(shared)},
        )

    # ------------------------------------------------------------------ helpers

    @staticmethod
    def _same(
        live: Mapping[str, Any], manifest: Mapping[str, Any], devices: dict[str, str]
    ) -> bool:
        info = live.get("deploy")
        if not isinstance(info, dict) or info.get("devices") != devices:
            return False
        if live.get("build_id") != manifest.get("build_id"):
            return False
        live_files = live.get("files", {})
        return all(live_files.get(k) == v for k, v in manifest["files"].items())

    def _check_parents(self, root: Path) -> Iterator[Event]:
        """Warn when dnsmasq (which drops to an unprivileged user) cannot reach the root."""
        for p in [root, *root.parents]:
            try:
                mode = p.stat().st_mode
            except OSError:
                continue
            if not mode & stat.S_IXOTH:
                yield LogLine(
                    NAME,
                    f"{p} is mode {stat.S_IMODE(mode):o}: dnsmasq running as an unprivileged "
                    f"user cannot reach {root}; use a TFTP root under /srv (or chmod o+x {p})",
                    "warning",
                )
                return

    def _publish(
        self,
        ctx: StepContext,
        out: Path,
        stage: Path,
        dirs: list[str],
        shared: list[str],
        files: Mapping[str, Any],
        live: str | None,
        live_manifest: Mapping[str, Any] | None,
    ) -> Generator[Event, None, int]:
        """Copy the build into ``stage``; unchanged files become hard links to the live release.

        Returns (through StopIteration) how many files were hard-linked.
        """
        live_files: Mapping[str, Any] = (live_manifest or {}).get("files", {})
        live_dir = stage.parent / live if live else None
        total = sum(int(files[rel].get("size", 0)) for rel in shared)
        done = 0
        linked = 0
        for d in dirs:
            (stage / d).mkdir(parents=True, exist_ok=True)
            os.chmod(stage / d, DIR_MODE)
        for rel in shared:
            ctx.check_cancel()
            entry = files[rel]
            dest = stage / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            old = live_dir / rel if live_dir is not None else None
            if (
                old is not None
                and live_files.get(rel) == entry
                and old.is_file()
                and not old.is_symlink()
                and old.stat().st_size == int(entry.get("size", -1))
            ):
                try:
                    os.link(old, dest)
                    linked += 1
                except OSError as exc:
                    if exc.errno not in (errno.EXDEV, errno.EMLINK, errno.EPERM):
                        raise
                    self._copy(out / rel, dest, entry)
            else:
                self._copy(out / rel, dest, entry)
            done += int(entry.get("size", 0))
            yield Progress(NAME, "publish", done, total, "bytes", rel)
        yield LogLine(
            NAME, f"copied {len(shared) - linked} file(s), hard-linked {linked} unchanged"
        )
        return linked

    def _copy(self, src: Path, dest: Path, entry: Mapping[str, Any]) -> None:
        if self._digests.known(src) == entry.get("sha256"):
            # the very file the remaster step wrote (or last read) with these bytes: copy
            # without reading it through Python to hash it again
            shutil.copyfile(src, dest)
            os.chmod(dest, FILE_MODE)
            return
        digest, size = hash_copy(src, dest)
        if digest != entry.get("sha256") or size != entry.get("size"):
            raise DeployError(
                f"{src} does not match the build manifest (sha256 {digest[:12]}…, {size} bytes; "
                f"manifest {str(entry.get('sha256'))[:12]}…, {entry.get('size')} bytes)",
                fix="build.output was changed after the build: run the remaster step again",
            )

    def _devices(
        self,
        ctx: StepContext,
        stage: Path,
        shared: list[str],
        files: Mapping[str, Any],
        devices: Mapping[str, str],
    ) -> Generator[Event, None, dict[str, Any]]:
        """Create ``<serial>/`` trees of hard links; returns their manifest entries."""
        entries: dict[str, Any] = {}
        for serial, profile in sorted(devices.items()):
            ctx.check_cancel()
            tree = _device_files(shared, files, profile)
            if tree is None:
                raise DeployError(
                    f"the build has no profile {profile!r} (deploy.devices.{serial}); "
                    f"profiles are built from deploy.profiles",
                    fix="run the remaster step again after changing deploy.profiles",
                )
            base = stage / serial
            for rel, src in sorted(tree.items()):
                dest = base / rel
                dest.parent.mkdir(parents=True, exist_ok=True)
                os.link(stage / src, dest)
                entries[f"{serial}/{rel}"] = files[src]
            for d in [base, *(p for p in base.rglob("*") if p.is_dir())]:
                os.chmod(d, DIR_MODE)
            yield LogLine(NAME, f"{serial}/: profile {profile} ({len(tree)} files, hard links)")
        return entries

    @staticmethod
    def _prune(root: Path, keep: int) -> list[str]:
        """Remove releases beyond the ``keep`` newest, never the live one or its rollback target."""
        releases = list_releases(root)
        live = next((r for r in releases if r.current), None)
        protect = {live.id, live.previous} if live else set()
        newest = {r.id for r in releases[-keep:]}
        removed = []
        for r in releases:
            if r.id in newest or r.id in protect:
                continue
            if r.path.is_symlink() or not inside(r.path, root / RELEASES):
                continue  # not a release we made: never removed
            aside = root / RELEASES / f".removing-{r.id}"
            os.rename(r.path, aside)
            remove_tree(aside, root / RELEASES)
            removed.append(r.id)
        return removed

    # ------------------------------------------------------------------ dry run

    def _plan(
        self,
        ctx: StepContext,
        root: Path,
        out: Path,
        manifest: Mapping[str, Any],
        devices: Mapping[str, str],
    ) -> Iterator[Event]:
        files: Mapping[str, Any] = manifest["files"]
        build_id = str(manifest.get("build_id", ""))
        live = current_release(root)
        live_manifest = read_manifest(root / RELEASES / live / MANIFEST) if live else None
        if live and live_manifest and self._same(live_manifest, manifest, dict(devices)):
            yield LogLine(NAME, f"release {live} already serves build {build_id}: no change")
            return
        _dirs, shared = _scan_build(out, files)
        release_id = new_release_id(build_id)
        final = root / RELEASES / release_id
        live_files = (live_manifest or {}).get("files", {})
        for rel in shared:
            how = "hard link (unchanged)" if live_files.get(rel) == files[rel] else "copy"
            yield Planned(NAME, "write", str(final / rel), f"{how}, sha256 checked")
        for serial, profile in sorted(devices.items()):
            if _device_files(shared, files, profile) is None:
                raise DeployError(
                    f"the build has no profile {profile!r} (deploy.devices.{serial})",
                    fix="run the remaster step again after changing deploy.profiles",
                )
            yield Planned(
                NAME, "write", str(final / serial) + "/", f"profile {profile}, hard links"
            )
        yield Planned(NAME, "write", str(final / MANIFEST), "deployed manifest")
        yield Planned(NAME, "switch", str(root / CURRENT), f"→ {RELEASES}/{release_id}")
        keep = ctx.answers.deploy.keep
        old = [r.id for r in list_releases(root)]
        if len(old) + 1 > keep:
            yield Planned(
                NAME, "remove", f"{len(old) + 1 - keep} old release(s)", f"deploy.keep = {keep}"
            )

    def _plan_unbuilt(self, root: Path, out: Path, answers: Answers) -> Iterator[Event]:
        yield LogLine(NAME, f"{out} is not built yet (dry run): files not listed")
        final = root / RELEASES / "<time>-<build id>"
        yield Planned(NAME, "write", str(final) + "/", f"every file of {out}, sha256 checked")
        for serial, profile in sorted(answers.deploy.devices.items()):
            yield Planned(NAME, "write", str(final / serial) + "/", f"profile {profile}")
        yield Planned(NAME, "switch", str(root / CURRENT), f"→ {RELEASES}/<new release>")
