"""The rules every TFTP root follows, here or on a remote host: pure functions over manifests.

What a build must hold to be published (``scan_build``), what a per-device tree holds
(``device_files``), what the deployed manifest records (``deploy_record``), when a build is
already live (``same_build``), which releases a deploy removes (``prune_ids``) and where a
rollback goes (``rollback_target``). The local root (``steps.deploy``, ``steps.host.tftproot``)
and the remote one (``steps.host.remotedeploy``) both follow them, so they cannot drift apart.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from steps.errors import DeployError, UsageError
from steps.host.tftproot import CURRENT, MANIFEST, PROFILES_DIR, RELEASES, ReleaseInfo, inside


def scan_build(out: Path, files: Mapping[str, Any]) -> tuple[list[str], list[str]]:
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


def device_files(
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


def device_tree(
    shared: list[str], files: Mapping[str, Any], serial: str, profile: str
) -> dict[str, str]:
    """``device_files`` for ``deploy.devices[serial] = profile``.

    Raises:
        DeployError: the build has no such profile.
    """
    tree = device_files(shared, files, profile)
    if tree is None:
        raise DeployError(
            f"the build has no profile {profile!r} (deploy.devices.{serial}); "
            "profiles are built from deploy.profiles",
            fix="run the remaster step again after changing deploy.profiles",
        )
    return tree


def same_build(
    live: Mapping[str, Any], manifest: Mapping[str, Any], devices: Mapping[str, str]
) -> bool:
    """True when the live release's manifest already serves this build with these devices."""
    info = live.get("deploy")
    if not isinstance(info, dict) or info.get("devices") != devices:
        return False
    if live.get("build_id") != manifest.get("build_id"):
        return False
    live_files = live.get("files", {})
    return all(live_files.get(k) == v for k, v in manifest["files"].items())


def rollback_target(
    releases: Sequence[ReleaseInfo], live: str | None, to: str | None, where: str
) -> str:
    """The release a rollback switches to: ``to``, else the one live before ``live``.

    Raises:
        DeployError: nothing is deployed, or ``live`` is the oldest release.
        UsageError: ``to`` is not a kept release.
    """
    ids = [r.id for r in releases]
    if live is None:
        raise DeployError(
            f"nothing is deployed in {where} (no {CURRENT} symlink)",
            fix="deploy first: firecore-wizard --answers FILE",
        )
    if to is not None:
        if to not in ids:
            known = ", ".join(ids) or "none"
            raise UsageError(
                f"release {to!r} is not in {where}/{RELEASES} (releases: {known})",
                fix="pick one from `firecore-wizard deploy --list`",
            )
        return to
    info = next(r for r in releases if r.id == live)
    older = [i for i in ids if i < live]
    if info.previous in ids and info.previous != live:
        return info.previous
    if older:
        return older[-1]
    raise DeployError(
        f"{live} is the oldest release in {where}: there is nothing to roll back to",
        fix="deploy a build instead",
    )


def prune_ids(releases: Sequence[ReleaseInfo], keep: int) -> list[str]:
    """Releases beyond the ``keep`` newest, never the live one or its rollback target."""
    live = next((r for r in releases if r.current), None)
    protect = {live.id, live.previous} if live else set()
    newest = {r.id for r in releases[-keep:]}
    return [r.id for r in releases if r.id not in newest and r.id not in protect]


def deploy_record(
    manifest: Mapping[str, Any],
    device_entries: Mapping[str, Any],
    *,
    release_id: str,
    source: str,
    devices: Mapping[str, str],
    previous: str | None,
    linked: int,
) -> dict[str, Any]:
    """The deployed manifest: the build's, plus the device trees and what deploy did."""
    record = dict(manifest)
    record["files"] = {**manifest["files"], **device_entries}
    record["deploy"] = {
        "release": release_id,
        "deployed": datetime.now(UTC).isoformat(timespec="seconds"),
        "source": source,
        "devices": dict(devices),
        "previous": previous,
        "linked": linked,
    }
    return record
