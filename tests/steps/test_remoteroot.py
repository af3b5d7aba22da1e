"""The remote TFTP root's scripts, run here by busybox's own sh (no ssh in between).

Every script is what deploy sends to a router; busybox ``sh`` (with busybox applets preferred, as
on OpenWrt) runs it on a temporary directory, with the tar stream or nothing on stdin.
"""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import tarfile
from pathlib import Path

import pytest

from steps.answers import SshTarget
from steps.errors import DeployError
from steps.host.remoteroot import (
    E_CHANGED,
    E_NOT_OURS,
    E_VERIFY,
    Upload,
    check_rel,
    check_release_id,
    inspect_script,
    parse_inspect,
    publish_script,
    switch_script,
)
from steps.host.sshrun import BOOTSTRAP, RemoteResult, quote

RID = "20261203T154745.699168Z-3bfc269594ef"
RID2 = "20261203T154800.000001Z-deadbeef0001"
#: busybox < 1.34: mv knows no -T (ash prefers applets, so a function stands in for the old one)
OLD_MV = 'mv() { for a; do case $a in -*T*) return 1;; esac; done; command mv "$@"; }\n'


def run(script: str, tmp: Path, stdin: bytes = b"") -> RemoteResult:
    work = tmp / "t"
    work.mkdir(exist_ok=True)
    done = subprocess.run(
        ["busybox", "sh", "-c", script, "sh", str(work)],
        input=stdin,
        capture_output=True,
        timeout=120,
    )
    return RemoteResult(done.returncode, done.stdout, done.stderr.decode())


def tar_of(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for rel, data in files.items():
            info = tarfile.TarInfo(rel)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def upload(files: dict[str, bytes], **kw: object) -> Upload:
    sums = {rel: hashlib.sha256(data).hexdigest() for rel, data in files.items()}
    base: dict[str, object] = dict(
        release_id=RID, expect="none", live=None, from_live=[], device_links=[], sums=sums,
        prune=[], switch="rename",
    )  # fmt: skip
    base.update(kw)
    return Upload(**base)  # type: ignore[arg-type]


@pytest.fixture
def target(tmp_path: Path) -> SshTarget:
    return SshTarget("root", "router", None, str(tmp_path / "firecore"))


FILES = {"bootcode.bin": os.urandom(3000), "overlays/a.dtbo": b"dtbo", "config.txt": b"[all]\n"}


def test_publish_then_inspect_then_rollback(target: SshTarget, tmp_path: Path) -> None:
    base = Path(target.path)
    done = run(publish_script(target, upload(FILES)), tmp_path, tar_of(FILES))
    assert done.code == 0, done.stderr
    assert os.readlink(base / "current") == f"releases/{RID}"
    assert (base / "current" / "overlays" / "a.dtbo").read_bytes() == b"dtbo"
    assert done.fields()["verified"] == "3"
    # a second release: unchanged files are hard links to the live one, a device tree too
    new = {**FILES, "config.txt": b"[all]\nnew\n"}
    up = upload(
        {**new, "9ffefdef/config.txt": new["config.txt"]},
        release_id=RID2,
        expect=f"releases/{RID}",
        live=RID,
        from_live=["bootcode.bin", "overlays/a.dtbo"],
        device_links=[("config.txt", "9ffefdef/config.txt")],
    )
    done = run(publish_script(target, up), tmp_path, tar_of({"config.txt": new["config.txt"]}))
    assert done.code == 0, done.stderr
    rel2 = base / "releases" / RID2
    assert (rel2 / "bootcode.bin").samefile(base / "releases" / RID / "bootcode.bin")
    assert (rel2 / "9ffefdef" / "config.txt").samefile(rel2 / "config.txt")
    state = parse_inspect(run(inspect_script(target), tmp_path))
    assert state.releases == [RID, RID2] and state.live == RID2 and state.mv_t
    assert not state.missing_tools()
    back = run(switch_script(target, expect=f"releases/{RID2}", release_id=RID,
                             switch="rename"), tmp_path)  # fmt: skip
    assert back.code == 0 and os.readlink(base / "current") == f"releases/{RID}"


def test_a_corrupt_upload_changes_nothing(target: SshTarget, tmp_path: Path) -> None:
    bad = {**FILES, "bootcode.bin": b"not what the manifest says"}
    done = run(publish_script(target, upload(FILES)), tmp_path, tar_of(bad))
    assert done.code == E_VERIFY and "bootcode.bin: FAILED" in done.stderr
    base = Path(target.path)
    assert not (base / "current").exists() and os.listdir(base / "releases") == []
    assert not (base / ".deploy.lock.d").exists()
    # cut short: tar fails, nothing is left
    done = run(publish_script(target, upload(FILES)), tmp_path, tar_of(FILES)[:2048])
    assert done.code != 0 and os.listdir(base / "releases") == []


def test_current_changed_meanwhile_or_not_ours(target: SshTarget, tmp_path: Path) -> None:
    base = Path(target.path)
    assert run(publish_script(target, upload(FILES)), tmp_path, tar_of(FILES)).code == 0
    stale = upload(FILES, release_id=RID2, expect="none")
    done = run(publish_script(target, stale), tmp_path, tar_of(FILES))
    assert done.code == E_CHANGED and os.readlink(base / "current") == f"releases/{RID}"
    # a real directory with files in it is never replaced; an empty one (OpenWrt's init) is
    os.unlink(base / "current")
    (base / "current").mkdir()
    (base / "current" / "keep.me").write_text("x")
    ok = upload(FILES, release_id=RID2, expect="dir")
    assert run(publish_script(target, ok), tmp_path, tar_of(FILES)).code == E_NOT_OURS
    (base / "current" / "keep.me").unlink()
    ok = upload(FILES, release_id=RID2, expect="empty-dir")
    assert run(publish_script(target, ok), tmp_path, tar_of(FILES)).code == 0
    assert os.readlink(base / "current") == f"releases/{RID2}"


def test_stale_lock_is_taken_over(target: SshTarget, tmp_path: Path) -> None:
    lock = Path(target.path) / ".deploy.lock.d"
    lock.mkdir(parents=True)
    (lock / "pid").write_text("999999\n")  # no such process
    done = run(publish_script(target, upload(FILES)), tmp_path, tar_of(FILES))
    assert done.code == 0, done.stderr
    assert not lock.exists()


def test_old_busybox_without_mv_T_switches_with_ln(target: SshTarget, tmp_path: Path) -> None:
    state = parse_inspect(run(OLD_MV + inspect_script(target), tmp_path))
    assert state.mv_t is False
    up = upload(FILES, switch="link")
    done = run(OLD_MV + publish_script(target, up), tmp_path, tar_of(FILES))
    assert done.code == 0, done.stderr
    assert f"switched releases/{RID} link" in done.stdout.decode()
    assert os.readlink(Path(target.path) / "current") == f"releases/{RID}"


def test_bootstrap_runs_the_script_and_hands_it_the_payload(tmp_path: Path) -> None:
    script = b'cat > "$1/payload"; cp "$1/payload" ' + quote(str(tmp_path / "got")).encode()
    stream = f"{len(script)}\n".encode() + script + b"PAYLOAD\x00\xff" * 1000
    inner = BOOTSTRAP.removeprefix("sh -c '").removesuffix("'")
    done = subprocess.run(["busybox", "sh", "-c", inner], input=stream, capture_output=True)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "got").read_bytes() == b"PAYLOAD\x00\xff" * 1000


@pytest.mark.parametrize("bad", ["../x", "/etc/passwd", "a/../../b", "a b", "FC_EOF\nrm", ""])
def test_paths_and_ids_are_checked_before_they_reach_a_script(bad: str) -> None:
    with pytest.raises(DeployError):
        check_rel(bad)
    with pytest.raises(DeployError):
        check_release_id(bad or "x")
