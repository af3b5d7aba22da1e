"""Deploy, roll back and list releases in a TFTP root on another host (deploy.target).

The same rules as the local root (``steps.host.releases``: what a build must hold, per-device
trees, the deployed manifest, pruning, the rollback target), carried out by the busybox scripts
of ``steps.host.remoteroot`` over ssh (``steps.host.sshrun``). Files are read from
``build.output`` and checked against the build manifest's sha256 as they stream into the upload,
and the remote host checks every file of the new release again with ``sha256sum -c`` before
``current`` moves — so a file served from the new release is always the manifest's.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import threading
from collections.abc import Generator, Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import IO, Any

from steps.artifacts import DeployResult
from steps.base import StepContext
from steps.errors import Cancelled, DeployError
from steps.events import Event, LogLine, Planned, Progress, Result
from steps.host.releases import (
    deploy_record,
    device_tree,
    prune_ids,
    rollback_target,
    same_build,
    scan_build,
)
from steps.host.remoteroot import (
    RemoteState,
    Upload,
    check_rel,
    fetch_script,
    inspect_script,
    parse_inspect,
    publish_script,
    script_error,
    served_views,
    switch_script,
)
from steps.host.sshrun import RemoteProcess, RemoteResult, Ssh
from steps.host.tftproot import (
    CURRENT,
    MANIFEST,
    RELEASES,
    ReleaseInfo,
    new_release_id,
    release_info,
)

NAME = "deploy"
_CHUNK = 1 << 20
#: Room left on the remote filesystem beyond the upload itself (KiB).
_SPARE_KB = 1024


class _Checked:
    """Reads a build file for the tar stream, hashing it; honours the cancel flag."""

    def __init__(self, fh: IO[bytes], cancel: threading.Event | None) -> None:
        self.fh = fh
        self.cancel = cancel
        self.hash = hashlib.sha256()
        self.size = 0

    def read(self, n: int = -1) -> bytes:
        if self.cancel is not None and self.cancel.is_set():
            raise Cancelled()
        data = self.fh.read(n)
        self.hash.update(data)
        self.size += len(data)
        return data


class RemoteDeploy:
    """The TFTP root at ``ssh.target``."""

    def __init__(self, ssh: Ssh) -> None:
        self.ssh = ssh
        self.target = ssh.target
        self.root = Path(self.target.path)

    # ------------------------------------------------------------------ reading
    def inspect(self, cancel: threading.Event | None = None) -> RemoteState:
        """What the remote root holds now.

        Raises:
            RemoteError: ssh failed; DeployError: the remote cannot run the script.
        """
        state = parse_inspect(self.ssh.run(inspect_script(self.target), cancel=cancel))
        if state.releases_symlink:
            raise DeployError(
                f"{self.target}/{RELEASES} is a symlink: deploy does not follow what it did not "
                "make",
                fix="move it away on the remote host and deploy again",
            )
        return state

    def releases(self, state: RemoteState | None = None) -> list[ReleaseInfo]:
        """Every release there, oldest first (``deploy --list``)."""
        state = state or self.inspect()
        return [
            release_info(rid, self.root / RELEASES / rid, state.manifests.get(rid), state.live)
            for rid in state.releases
        ]

    def _switch_mode(self, state: RemoteState) -> Iterator[LogLine]:
        if not state.mv_t:
            yield LogLine(
                NAME,
                f"{self.target.host}'s mv has no -T (busybox before 1.34, OpenWrt before 22.03): "
                "current is switched with ln -sfn, so a Pi reading at that very instant may get "
                "one 'file not found' and retry",
                "warning",
            )

    def _served(self, result: RemoteResult, release: str) -> Iterator[LogLine]:
        want = f"{RELEASES}/{release}"
        for pid, view in sorted(served_views(result).items()):
            if view != want:
                yield LogLine(
                    NAME,
                    f"dnsmasq (PID {pid}) on {self.target.host} still sees current as {view!r}: "
                    "its jail froze an older view; restart it (`/etc/init.d/dnsmasq restart`) — "
                    "the router-mode config adds the directory to the jail (addnmount) so this "
                    "does not happen again",
                    "warning",
                )

    def live_manifest(self) -> dict[str, Any] | None:
        """The live release's deployed manifest (None: nothing deployed there)."""
        state = self.inspect()
        return state.manifests.get(state.live) if state.live else None

    # ------------------------------------------------------------------ rollback
    def rollback(self, to: str | None = None) -> DeployResult:
        """Switch the remote ``current`` back (``deploy --rollback`` / ``--to``).

        Raises:
            DeployError, UsageError: as ``releases.rollback_target``; a failed switch.
        """
        state = self.inspect()
        releases = self.releases(state)
        target = rollback_target(releases, state.live, to, str(self.target))
        result = self.ssh.run(
            switch_script(
                self.target,
                expect=state.current,
                release_id=target,
                switch="rename" if state.mv_t else "link",
            )
        )
        if result.code != 0:
            raise script_error(result, self.target)
        info = next(r for r in releases if r.id == target)
        return DeployResult(self.root, target, state.live, dict(info.devices), self.target.origin)

    # ------------------------------------------------------------------ publish
    def publish(
        self,
        ctx: StepContext,
        out: Path,
        manifest: Mapping[str, Any],
        devices: Mapping[str, str],
    ) -> Iterator[Event]:
        """Upload ``out`` as a new release next to the live one, verify, switch, prune."""
        files: Mapping[str, Any] = manifest["files"]
        build_id = str(manifest.get("build_id", ""))
        yield LogLine(NAME, f"TFTP root {self.target} (over ssh)", "cmd")
        state = self.inspect(ctx.cancel)
        missing = state.missing_tools()
        if missing:
            raise DeployError(
                f"{self.target.host} lacks {', '.join(missing)}: deploy needs busybox's tar, "
                "sha256sum, mktemp, dd, readlink, ln, mv, rm and mkdir there",
                fix="install them on the remote host (on OpenWrt they are in the default busybox)",
            )
        live = state.live
        live_manifest = state.manifests.get(live) if live else None
        if live and live_manifest and same_build(live_manifest, manifest, devices):
            yield LogLine(NAME, f"release {live} already serves build {build_id}: no change")
            previous = (live_manifest.get("deploy") or {}).get("previous")
            same = DeployResult(self.root, live, previous, dict(devices), self.target.origin)
            ctx.results.put(same)
            yield Result(NAME, f"{same.where}/{CURRENT} → {live} (unchanged)", same.to_data())
            return
        dirs, shared = scan_build(out, files)
        for rel in [*dirs, *shared]:
            check_rel(rel)
        live_files: Mapping[str, Any] = (live_manifest or {}).get("files", {})
        from_live = [rel for rel in shared if live and live_files.get(rel) == files[rel]]
        upload = [rel for rel in shared if rel not in set(from_live)]
        device_links: list[tuple[str, str]] = []
        device_entries: dict[str, Any] = {}
        for serial, profile in sorted(devices.items()):
            for rel, src in sorted(device_tree(shared, files, serial, profile).items()):
                device_links.append((src, f"{serial}/{rel}"))
                device_entries[f"{serial}/{rel}"] = files[src]
        release_id = new_release_id(build_id)
        record = deploy_record(
            manifest,
            device_entries,
            release_id=release_id,
            source=str(out),
            devices=devices,
            previous=live,
            linked=len(from_live),
        )
        total = sum(int(files[rel].get("size", 0)) for rel in upload)
        if state.free_kb is not None and total // 1024 + _SPARE_KB > state.free_kb:
            raise DeployError(
                f"{self.target.host} has {state.free_kb} KiB free in {self.target.path}, the "
                f"upload needs {total // 1024 + _SPARE_KB} KiB",
                fix="free space there (deploy.keep = 1 keeps fewer releases) or use a larger "
                "USB stick",
            )
        after = [*self.releases(state), _new_info(release_id, self.root, record)]
        after = [_with_current(r, release_id) for r in after]
        prune = [rid for rid in prune_ids(after, ctx.answers.deploy.keep) if rid != release_id]
        if ctx.dry_run:
            yield from self._plan(release_id, upload, from_live, devices, prune)
            return
        yield from self._switch_mode(state)
        sums = {rel: str(files[rel]["sha256"]) for rel in shared}
        sums.update({link: str(files[src]["sha256"]) for src, link in device_links})
        script = publish_script(
            self.target,
            Upload(
                release_id=release_id,
                expect=state.current,
                live=live,
                from_live=from_live,
                device_links=device_links,
                sums=sums,
                prune=prune,
                switch="rename" if state.mv_t else "link",
            ),
        )
        yield LogLine(
            NAME,
            f"uploading {len(upload)} file(s) ({total} bytes), hard-linking {len(from_live)} "
            f"unchanged from {live or 'nothing'}",
        )
        remote = self.ssh.start(script)
        try:
            yield from self._stream(ctx, remote, out, dirs, upload, files, total, record)
            result = remote.finish(ctx.cancel)
        except BaseException:
            remote.kill()
            raise
        if result.code != 0:
            raise script_error(result, self.target)
        fields = result.fields()
        yield LogLine(NAME, f"{fields.get('verified', '?')} files verified on {self.target.host}")
        for line in result.stdout.decode("utf-8", "replace").splitlines():
            word, _, rest = line.partition(" ")
            if word == "removed":
                yield LogLine(NAME, f"removed {rest} (left by an interrupted deploy)")
            elif word == "pruned":
                yield LogLine(NAME, f"removed old release {rest} (deploy.keep)")
        yield LogLine(NAME, f"{self.target}/{CURRENT} → {RELEASES}/{release_id}")
        yield from self._served(result, release_id)
        deployed = DeployResult(self.root, release_id, live, dict(devices), self.target.origin)
        ctx.results.put(deployed)
        per_device = f", {len(devices)} per-device tree(s)" if devices else ""
        yield Result(
            NAME,
            f"{deployed.where}/{CURRENT} → {release_id} (build {build_id}{per_device})",
            {**deployed.to_data(), "files": len(shared), "uploaded": len(upload)},
        )

    def _stream(
        self,
        ctx: StepContext,
        remote: RemoteProcess,
        out: Path,
        dirs: list[str],
        upload: list[str],
        files: Mapping[str, Any],
        total: int,
        record: Mapping[str, Any],
    ) -> Generator[Event, None, None]:
        """Write the tar stream: directories, changed files (sha256 checked), the manifest."""
        done = 0
        with tarfile.open(fileobj=remote.stdin, mode="w|", format=tarfile.USTAR_FORMAT) as tar:  # type: ignore[call-overload]
            for rel in dirs:
                info = tarfile.TarInfo(rel)
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            for rel in upload:
                if remote.closed:
                    return  # the remote script stopped: finish() says why
                entry = files[rel]
                info = tarfile.TarInfo(rel)
                info.size, info.mode = int(entry.get("size", 0)), 0o644
                with (out / rel).open("rb") as fh:
                    checked = _Checked(fh, ctx.cancel)
                    try:
                        tar.addfile(info, checked)
                    except OSError as exc:  # tarfile: "unexpected end of data"
                        raise _mismatch(out / rel, entry, checked) from exc
                if checked.hash.hexdigest() != entry.get("sha256"):
                    raise _mismatch(out / rel, entry, checked)
                done += info.size
                yield Progress(NAME, "upload", done, total, "bytes", rel)
            body = json.dumps(record, indent=2, sort_keys=True).encode() + b"\n"
            info = tarfile.TarInfo(MANIFEST)
            info.size, info.mode = len(body), 0o644
            tar.addfile(info, io.BytesIO(body))

    def _plan(
        self,
        release_id: str,
        upload: list[str],
        from_live: list[str],
        devices: Mapping[str, str],
        prune: list[str],
    ) -> Iterator[Event]:
        final = f"{self.target}/{RELEASES}/{release_id}"
        for rel in upload:
            yield Planned(NAME, "upload", f"{final}/{rel}", "over ssh, sha256 checked there")
        for rel in from_live:
            yield Planned(NAME, "write", f"{final}/{rel}", "hard link (unchanged)")
        for serial, profile in sorted(devices.items()):
            yield Planned(NAME, "write", f"{final}/{serial}/", f"profile {profile}, hard links")
        yield Planned(NAME, "write", f"{final}/{MANIFEST}", "deployed manifest")
        yield Planned(NAME, "switch", f"{self.target}/{CURRENT}", f"→ {RELEASES}/{release_id}")
        if prune:
            yield Planned(NAME, "remove", f"{len(prune)} old release(s)", "deploy.keep")

    # ------------------------------------------------------------------ fetch
    def fetch_live(self, dest: Path, cancel: threading.Event | None = None) -> None:
        """Copy the live release into ``dest`` (a rehearsal of what the remote host serves).

        Raises:
            DeployError: nothing is deployed there; RemoteError: ssh failed.
        """
        result = self.ssh.run(fetch_script(self.target), cancel=cancel)
        if result.code != 0:
            raise script_error(result, self.target)
        with tarfile.open(fileobj=io.BytesIO(result.stdout), mode="r:") as tar:
            tar.extractall(dest, filter="data")


def _mismatch(path: Path, entry: Mapping[str, Any], checked: _Checked) -> DeployError:
    return DeployError(
        f"{path} does not match the build manifest (sha256 {checked.hash.hexdigest()[:12]}…, "
        f"{checked.size} bytes; manifest {str(entry.get('sha256'))[:12]}…, "
        f"{entry.get('size')} bytes)",
        fix="build.output was changed after the build: run the remaster step again",
    )


def _new_info(release_id: str, root: Path, record: Mapping[str, Any]) -> ReleaseInfo:
    return release_info(release_id, root / RELEASES / release_id, record, release_id)


def _with_current(info: ReleaseInfo, live: str) -> ReleaseInfo:
    return replace(info, current=info.id == live)
