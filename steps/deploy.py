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
from pathlib import Path
from typing import TYPE_CHECKING, Any

from steps.answers import Answers, resolve_path
from steps.artifacts import BuildResult, DeployResult
from steps.base import StepContext
from steps.errors import DeployError
from steps.events import Event, LogLine, Planned, Progress, Result
from steps.fsutil import KnownDigests, disk_error, staging_dir
from steps.host.releases import (
    deploy_record,
    device_tree,
    prune_ids,
    rollback_target,
    same_build,
    scan_build,
)
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

if TYPE_CHECKING:
    from steps.host.remotedeploy import RemoteDeploy

NAME = "deploy"


def _remote(answers: Answers) -> RemoteDeploy | None:
    """The router's TFTP root when ``deploy.target`` names one (ssh and tar are imported then)."""
    if not answers.deploy.target:
        return None
    from steps.host.remotedeploy import RemoteDeploy
    from steps.host.sshrun import ssh_for

    ssh = ssh_for(answers)
    return None if ssh is None else RemoteDeploy(ssh)


def rollback(answers: Answers, to: str | None = None) -> DeployResult:
    """Switch ``current`` back to the release that was live before it (or to ``to``).

    Works on this host's TFTP root or, with deploy.target, on the remote one.

    Raises:
        DeployError: nothing deployed yet, no earlier release, or ``to`` does not exist.
    """
    remote = _remote(answers)
    if remote is not None:
        return remote.rollback(to)
    root = tftp_root(answers)
    with deploy_lock(root):
        releases = list_releases(root)
        live = current_release(root)
        target = rollback_target(releases, live, to, str(root))
        switch_current(root, target)
        info = next(r for r in releases if r.id == target)
        return DeployResult(root, target, live, dict(info.devices))


# ----------------------------------------------------------------------------- the step


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
        for finding in tftp_size_findings(manifest):
            yield LogLine(NAME, finding.message(), "warning")
        remote = _remote(answers)
        if remote is not None:
            yield from remote.publish(ctx, out, manifest, devices)
            return
        yield from self._check_parents(root)

        if ctx.dry_run:
            yield from self._plan(ctx, root, out, manifest, devices)
            return

        with deploy_lock(root, ctx.cancel):
            for leftover in clean_leftovers(root):
                yield LogLine(NAME, f"removed {leftover} (left by an interrupted deploy)")
            live = current_release(root)
            live_manifest = read_manifest(root / RELEASES / live / MANIFEST) if live else None
            if live and live_manifest and same_build(live_manifest, manifest, devices):
                yield LogLine(NAME, f"release {live} already serves build {build_id}: no change")
                result = DeployResult(root, live, live_manifest["deploy"].get("previous"), devices)
                ctx.results.put(result)
                yield Result(NAME, f"{root / CURRENT} → {live} (unchanged)", result.to_data())
                return
            dirs, shared = scan_build(out, files)
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
                    record = deploy_record(
                        manifest,
                        device_entries,
                        release_id=release_id,
                        source=str(out),
                        devices=devices,
                        previous=live,
                        linked=deployed,
                    )
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
            tree = device_tree(shared, files, serial, profile)
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
        doomed = set(prune_ids(releases, keep))
        removed = []
        for r in releases:
            if r.id not in doomed:
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
        if live and live_manifest and same_build(live_manifest, manifest, dict(devices)):
            yield LogLine(NAME, f"release {live} already serves build {build_id}: no change")
            return
        _dirs, shared = scan_build(out, files)
        release_id = new_release_id(build_id)
        final = root / RELEASES / release_id
        live_files = (live_manifest or {}).get("files", {})
        for rel in shared:
            how = "hard link (unchanged)" if live_files.get(rel) == files[rel] else "copy"
            yield Planned(NAME, "write", str(final / rel), f"{how}, sha256 checked")
        for serial, profile in sorted(devices.items()):
            device_tree(shared, files, serial, profile)
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
