"""Deploy: versioned releases, the atomic ``current`` switch, device trees, rollback, safety."""

from __future__ import annotations

import os
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from steps import deploy
from steps.answers import Answers, Profile
from steps.artifacts import DeployResult
from steps.base import StepContext
from steps.errors import Cancelled, DeployError, UsageError
from steps.events import Event, LogLine, Planned, Progress, Result
from steps.host import tftproot
from tests.support.boot_tree import make_build

SERIAL_A = "9ffefdef"
SERIAL_B = "2caf9c61"


@pytest.fixture
def setup(answers: Answers, tmp_path: Path) -> tuple[Answers, Path, Path]:
    answers.network.tftp_root = str(tmp_path / "tftp")
    return answers, Path(answers.build.output), tmp_path / "tftp"


def run(answers: Answers, **kw: object) -> list[Event]:
    ctx = StepContext(answers=answers, **kw)  # type: ignore[arg-type]
    return list(deploy.DeployStep().run(ctx))


def tree_files(top: Path) -> dict[str, bytes]:
    return {
        p.relative_to(top).as_posix(): p.read_bytes()
        for p in sorted(top.rglob("*"))
        if p.is_file() and p.name != "manifest.json"
    }


def test_first_deploy_publishes_a_release_and_switches_current(
    setup: tuple[Answers, Path, Path],
) -> None:
    answers, out, root = setup
    files = make_build(out)
    ctx = StepContext(answers=answers)
    events = list(deploy.DeployStep().run(ctx))
    link = root / "current"
    assert link.is_symlink()
    target = os.readlink(link)
    assert target.startswith("releases/") and not os.path.isabs(target)
    release = root / target
    assert tree_files(release) == files
    result = ctx.results.get(DeployResult)
    assert result is not None and result.release == release.name and result.previous is None
    assert any(isinstance(e, Result) and release.name in e.summary for e in events)
    assert any(isinstance(e, Progress) and e.phase == "publish" for e in events)
    manifest = tftproot.read_manifest(link / "manifest.json")
    assert manifest is not None and manifest["deploy"]["release"] == release.name
    assert manifest["build_id"] in release.name
    # world-readable, writable only by the owner, nothing else in the root
    for p in [release, *release.rglob("*")]:
        mode = stat.S_IMODE(p.stat().st_mode)
        assert mode == (0o755 if p.is_dir() else 0o644), p
        assert not p.is_symlink()
    assert sorted(x.name for x in root.iterdir()) == [".deploy.lock", "current", "releases"]


def test_a_new_build_links_unchanged_files_and_records_the_previous_release(
    setup: tuple[Answers, Path, Path],
) -> None:
    answers, out, root = setup
    make_build(out, salt="v1")
    run(answers)
    first = tftproot.current_release(root)
    # rebuild: only the overlay changes
    import shutil

    shutil.rmtree(out)
    v1 = make_build(out, salt="v1", build_id="bbbbbbbbbbbb", extra={"overlay.gz": b"new overlay"})
    run(answers)
    second = tftproot.current_release(root)
    assert first and second and second > first
    a, b = root / "releases" / first, root / "releases" / second
    assert (b / "kernel6647v7.img").stat().st_ino == (a / "kernel6647v7.img").stat().st_ino
    assert (b / "overlay.gz").read_bytes() == b"new overlay"
    assert (a / "overlay.gz").read_bytes() != b"new overlay"  # the old release is intact
    assert tree_files(b) == v1
    infos = tftproot.list_releases(root)
    assert [i.id for i in infos] == [first, second]
    assert infos[1].previous == first and infos[1].current and not infos[0].current


def test_the_same_build_again_changes_nothing(setup: tuple[Answers, Path, Path]) -> None:
    answers, out, root = setup
    make_build(out)
    run(answers)
    before = tftproot.list_releases(root)
    events = run(answers)
    assert tftproot.list_releases(root) == before
    assert any(isinstance(e, LogLine) and "no change" in e.text for e in events)


def test_rollback_goes_back_through_history(setup: tuple[Answers, Path, Path]) -> None:
    answers, out, root = setup
    import shutil

    ids = []
    for salt in ("v1", "v2", "v3"):
        shutil.rmtree(out, ignore_errors=True)
        make_build(out, salt=salt)
        run(answers)
        ids.append(tftproot.current_release(root))
    res = deploy.rollback(answers)
    assert res.release == ids[1] and res.previous == ids[2]
    assert tftproot.current_release(root) == ids[1]
    deploy.rollback(answers)
    assert tftproot.current_release(root) == ids[0]
    with pytest.raises(DeployError, match="oldest release"):
        deploy.rollback(answers)
    deploy.rollback(answers, to=ids[2])
    assert tftproot.current_release(root) == ids[2]
    with pytest.raises(UsageError, match="not in"):
        deploy.rollback(answers, to="nope")
    # deploying after a rollback: rolling back returns to what was live, not the bad release
    deploy.rollback(answers, to=ids[0])
    shutil.rmtree(out)
    make_build(out, salt="v4")
    run(answers)
    assert deploy.rollback(answers).release == ids[0]


def test_rollback_without_a_deploy(setup: tuple[Answers, Path, Path]) -> None:
    answers, _out, _root = setup
    with pytest.raises(DeployError, match="nothing is deployed"):
        deploy.rollback(answers)


def test_keep_prunes_old_releases_but_never_the_live_one(
    setup: tuple[Answers, Path, Path],
) -> None:
    answers, out, root = setup
    import shutil

    answers.deploy.keep = 2
    ids = []
    for n in range(4):
        shutil.rmtree(out, ignore_errors=True)
        make_build(out, salt=f"v{n}")
        run(answers)
        ids.append(tftproot.current_release(root))
    assert [r.id for r in tftproot.list_releases(root)] == ids[-2:]
    # after rolling back to the older one, a new deploy keeps the live release's rollback target
    deploy.rollback(answers)
    shutil.rmtree(out)
    make_build(out, salt="v9")
    run(answers)
    left = [r.id for r in tftproot.list_releases(root)]
    assert ids[2] in left and len(left) == 3  # keep 2 + the rollback target of the live one
    assert not [p for p in (root / "releases").iterdir() if p.name.startswith(".")]


def test_device_trees_are_hard_links_plus_the_profile(setup: tuple[Answers, Path, Path]) -> None:
    answers, out, root = setup
    answers.deploy.profiles = {"kiosk": Profile(), "lab": Profile()}
    answers.deploy.devices = {SERIAL_A: "kiosk", SERIAL_B: "lab"}
    files = make_build(out, profiles={"kiosk": ["kernel kernel_alt.img"], "lab": []})
    ctx = StepContext(answers=answers)
    list(deploy.DeployStep().run(ctx))
    cur = root / "current"
    for serial, profile in ((SERIAL_A, "kiosk"), (SERIAL_B, "lab")):
        tree = cur / serial
        for name in ("start.elf", "start4.elf", "kernel6647v8.img", "overlays/vc4-kms-v3d.dtbo"):
            assert (tree / name).stat().st_ino == (cur / name).stat().st_ino
        for name in ("config.txt", "cmdline.txt", "pi.gz"):
            assert (tree / name).read_bytes() == files[f"profiles/{profile}/{name}"]
            assert (tree / name).stat().st_ino == (cur / "profiles" / profile / name).stat().st_ino
        assert not (tree / "profiles").exists() and not (tree / "manifest.json").exists()
    assert b"kernel_alt.img" in (cur / SERIAL_A / "config.txt").read_bytes()
    assert b"kernel_alt.img" not in (cur / SERIAL_B / "config.txt").read_bytes()
    manifest = tftproot.read_manifest(cur / "manifest.json")
    assert manifest is not None
    assert (
        manifest["files"][f"{SERIAL_A}/config.txt"]
        == manifest["files"]["profiles/kiosk/config.txt"]
    )
    assert manifest["deploy"]["devices"] == {SERIAL_A: "kiosk", SERIAL_B: "lab"}
    result = ctx.results.get(DeployResult)
    assert result is not None and dict(result.devices) == {SERIAL_A: "kiosk", SERIAL_B: "lab"}


def test_device_trees_by_mac_for_tftp_prefix_2(setup: tuple[Answers, Path, Path]) -> None:
    """A Pi 4/5 with TFTP_PREFIX=2 asks for dc-a6-32-01-36-c2/…: a MAC key gets that tree."""
    answers, out, root = setup
    answers.deploy.profiles = {"kiosk": Profile()}
    answers.deploy.devices = {"DC:A6:32:01:36:C2": "kiosk"}
    assert answers.deploy.devices == {"dc-a6-32-01-36-c2": "kiosk"}  # as the Pi asks for it
    files = make_build(out, profiles={"kiosk": ["kernel kernel_alt.img"]})
    run(answers)
    tree = root / "current" / "dc-a6-32-01-36-c2"
    assert (tree / "config.txt").read_bytes() == files["profiles/kiosk/config.txt"]
    assert (tree / "start4.elf").is_file()


def test_files_beyond_the_tftp_block_counter_are_warned_before_deploy() -> None:
    manifest = {
        "boards": {
            "pi3": {"kernel": "k7.img", "initramfs": ["rootfs.gz", "overlay.gz"]},
            "pi4": {"kernel": "k8.img", "initramfs": ["rootfs.gz", "overlay.gz"]},
            "pi5": {"kernel": "k8.img", "initramfs": ["rootfs.gz", "overlay.gz"]},
        },
        "files": {
            "k7.img": {"size": 9_000_000},
            "k8.img": {"size": 9_000_000},
            "rootfs.gz": {"size": 5_000_000},
            "overlay.gz": {"size": 40_000_000},  # > 65535 × 512, < 65535 × 1468
            "profiles/lab/pi.gz": {"size": 100_000_000},  # > 65535 × 1468
        },
    }
    found = {(f.board, f.file) for f in deploy.tftp_size_findings(manifest)}
    assert found == {
        ("pi3", "overlay.gz"),
        ("pi3", "profiles/lab/pi.gz"),
        ("pi4", "profiles/lab/pi.gz"),
        ("pi5", "profiles/lab/pi.gz"),
    }
    pi5 = next(f for f in deploy.tftp_size_findings(manifest) if f.board == "pi5")
    assert "2025-09-23" in pi5.message() and "96,205,380" in pi5.message()


def test_a_device_whose_profile_was_not_built_is_refused(
    setup: tuple[Answers, Path, Path],
) -> None:
    answers, out, root = setup
    answers.deploy.profiles = {"kiosk": Profile()}
    answers.deploy.devices = {SERIAL_A: "kiosk"}
    make_build(out)  # built before the profile existed
    with pytest.raises(DeployError, match="no profile 'kiosk'"):
        run(answers)
    assert tftproot.current_release(root) is None
    assert list((root / "releases").iterdir()) == []


@pytest.mark.parametrize("damage", ["changed", "extra", "missing", "escaping-symlink"])
def test_a_damaged_build_is_refused_and_nothing_changes(
    setup: tuple[Answers, Path, Path], damage: str
) -> None:
    answers, out, root = setup
    make_build(out, salt="v1")
    run(answers)
    live = tftproot.current_release(root)
    import shutil

    shutil.rmtree(out)
    make_build(out, salt="v2")
    if damage == "changed":
        (out / "start.elf").write_bytes(b"edited by hand")
        match = "start.elf does not match the build manifest"
    elif damage == "extra":
        (out / "notes.txt").write_text("x")
        match = "notes.txt is not in the build manifest"
    elif damage == "missing":
        (out / "fixup.dat").unlink()
        match = "fixup.dat is listed in the build manifest but missing"
    else:
        (out / "start.elf").unlink()
        (out / "start.elf").symlink_to("/etc/passwd")
        match = "points outside"
    with pytest.raises(DeployError, match=match):
        run(answers)
    assert tftproot.current_release(root) == live
    assert [p.name for p in (root / "releases").iterdir()] == [live]


def test_no_build_is_an_error_but_a_dry_run_plans(setup: tuple[Answers, Path, Path]) -> None:
    answers, _out, root = setup
    with pytest.raises(DeployError, match="holds no build"):
        run(answers)
    events = run(answers, dry_run=True)
    assert any(isinstance(e, Planned) and e.action == "switch" for e in events)
    assert not root.exists()


def test_dry_run_lists_every_file_and_writes_nothing(setup: tuple[Answers, Path, Path]) -> None:
    answers, out, root = setup
    answers.deploy.profiles = {"kiosk": Profile()}
    answers.deploy.devices = {SERIAL_A: "kiosk"}
    files = make_build(out, profiles={"kiosk": []})
    events = run(answers, dry_run=True)
    planned = [e for e in events if isinstance(e, Planned)]
    writes = {Path(e.target).name for e in planned if e.action == "write"}
    assert {Path(rel).name for rel in files} <= writes
    assert any(e.target.endswith(f"{SERIAL_A}/") for e in planned)
    assert any(e.action == "switch" and e.target == str(root / "current") for e in planned)
    assert not root.exists()


def test_a_second_deploy_waits_for_the_lock(
    setup: tuple[Answers, Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    answers, out, root = setup
    make_build(out)
    monkeypatch.setattr(tftproot, "_LOCK_WAIT", 0.3)
    with tftproot.deploy_lock(root), pytest.raises(DeployError, match=f"pid {os.getpid()}"):
        run(answers)
    assert tftproot.current_release(root) is None
    run(answers)  # free again
    assert tftproot.current_release(root) is not None


def test_cancel_mid_publish_leaves_no_trace(setup: tuple[Answers, Path, Path]) -> None:
    answers, out, root = setup
    make_build(out, salt="v1")
    run(answers)
    live = tftproot.current_release(root)
    import shutil

    shutil.rmtree(out)
    make_build(out, salt="v2")
    cancel = threading.Event()
    ctx = StepContext(answers=answers, cancel=cancel)
    gen: Iterator[Event] = deploy.DeployStep().run(ctx)
    with pytest.raises(Cancelled):
        for event in gen:
            if isinstance(event, Progress):
                cancel.set()
    assert tftproot.current_release(root) == live
    assert [p.name for p in (root / "releases").iterdir()] == [live]


def test_current_that_is_a_directory_is_not_replaced(setup: tuple[Answers, Path, Path]) -> None:
    answers, out, root = setup
    make_build(out)
    (root / "current").mkdir(parents=True)
    (root / "current" / "mine.txt").write_text("keep me")
    with pytest.raises(DeployError, match="not a symlink"):
        run(answers)
    assert (root / "current" / "mine.txt").read_text() == "keep me"


def test_modes_do_not_depend_on_the_umask(setup: tuple[Answers, Path, Path]) -> None:
    answers, out, root = setup
    make_build(out)
    old = os.umask(0o077)
    try:
        run(answers)
    finally:
        os.umask(old)
    for p in [root, root / "releases", *(root / "current").rglob("*")]:
        mode = stat.S_IMODE(p.stat().st_mode)
        assert mode == (0o755 if p.is_dir() else 0o644), p


def test_a_parent_dnsmasq_cannot_traverse_is_warned_about(
    setup: tuple[Answers, Path, Path], tmp_path: Path
) -> None:
    answers, out, _root = setup
    locked = tmp_path / "private"
    locked.mkdir(mode=0o700)
    answers.network.tftp_root = str(locked / "tftp")
    make_build(out)
    events = run(answers)
    warnings = [e for e in events if isinstance(e, LogLine) and e.stream == "warning"]
    assert warnings and str(locked) in warnings[0].text


def test_leftovers_of_a_killed_deploy_are_cleaned(setup: tuple[Answers, Path, Path]) -> None:
    answers, out, root = setup
    make_build(out)
    (root / "releases" / ".20260101T000000.000000Z-x.staging-abc" / "sub").mkdir(parents=True)
    (root / ".current.123.456").symlink_to("releases/nowhere")
    events = run(answers)
    assert [p.name for p in (root / "releases").iterdir()] == [tftproot.current_release(root)]
    assert not (root / ".current.123.456").is_symlink()
    assert sum(isinstance(e, LogLine) and "interrupted deploy" in e.text for e in events) == 2


def test_deploy_command_list_rollback_and_to(
    setup: tuple[Answers, Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json
    import shutil

    from steps.answers_toml import dump_answers
    from wizard.cli import main

    answers, out, root = setup
    afile = tmp_path / "answers.toml"
    afile.write_text(dump_answers(answers))
    assert main(["deploy", "--answers", str(afile), "--rollback"]) == 1
    assert "nothing is deployed" in capsys.readouterr().err
    for salt in ("v1", "v2"):
        shutil.rmtree(out, ignore_errors=True)
        make_build(out, salt=salt)
        assert main(["deploy", "--answers", str(afile)]) == 0
    ids = [r.id for r in tftproot.list_releases(root)]
    capsys.readouterr()
    assert main(["deploy", "--answers", str(afile), "--list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out.splitlines()[0])
    assert [r["id"] for r in listed["releases"]] == ids
    assert [r["current"] for r in listed["releases"]] == [False, True]
    assert main(["deploy", "--answers", str(afile), "--rollback"]) == 0
    assert f"releases/{ids[0]} (was {ids[1]})" in capsys.readouterr().out
    assert main(["deploy", "--answers", str(afile), "--list"]) == 0
    assert capsys.readouterr().out.startswith(f"* {ids[0]}")
    assert main(["deploy", "--answers", str(afile), "--to", "nope"]) == 2
    assert main(["deploy", "--answers", str(afile), "--to", ids[1], "--json"]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[0])["release"] == ids[1]
    assert tftproot.current_release(root) == ids[1]
