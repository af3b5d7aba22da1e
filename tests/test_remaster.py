"""RemasterStep on the fixture mirror (12.x, 15.x, 16.x layouts), checked with independent tools."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import json
import os
import shutil
import stat
import subprocess
import threading
import zipfile
from pathlib import Path
from typing import Any

import pytest

from steps import fsutil
from steps.answers import Answers, Profile, default_answers
from steps.artifacts import AppBundle, BuildResult, OverlayFile
from steps.demo.factory import Mirror, cached_mirror
from steps.demo.release import BuiltRelease
from steps.errors import AnswersError, Cancelled, ChecksumError, FirecoreError, RemasterError
from steps.events import Event, LogLine, Planned, Progress
from steps.picore import cpio
from steps.picore.configtxt import ConfigTxt
from steps.remaster import RemasterStep
from tests.support import remaster_support as rs

BOARDS = {"12.0": ["pi3", "pi4"], "15.0.0": ["pi3", "pi4"], "16.0.0": ["pi3", "pi4"]}
EXTENSIONS = ["openssh.tcz", "myapp.tcz"]


@pytest.fixture
def mirror(fake_mirror: Mirror) -> Mirror:
    """The shared fixture mirror (tests/support/fixtures.py)."""
    return fake_mirror


def make_answers(tmp: Path, boards: list[str], **build: object) -> Answers:
    a = default_answers()
    a.build.output = str(tmp / "out")
    a.build.cache = str(tmp / "cache")
    a.release.boards = boards  # type: ignore[assignment]
    a.extensions.names = list(EXTENSIONS)
    a.app.ssh_authorized_keys = [
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIP1MmLxuAyRA0X7Oeqjlg43oYao6r1xYdBvheitzVYVZ test@host"
    ]
    for key, value in build.items():
        setattr(a.build, key, value)
    return a


class Build:
    """One release of the mirror + answers + inputs; ``run()`` builds into build.output."""

    def __init__(self, mirror: Mirror, version: str, tmp: Path) -> None:
        self.mirror = mirror
        self.release: BuiltRelease = mirror.release(version)
        self.tmp = tmp
        self.answers = make_answers(tmp, BOARDS[version])
        self.app_dir = tmp / "app"
        self.bundle = rs.app_bundle(self.app_dir)
        self.cancel = threading.Event()
        self.release_file = mirror.path(self.release.path)

    @property
    def out(self) -> Path:
        return Path(self.answers.build.output)

    def inputs(self) -> tuple[object, ...]:
        spec = self.release.spec
        art = rs.release_artifact(
            self.release_file,
            version=spec.version,
            arch=spec.arch,
            flavour=spec.flavour,
            config_txt=self.release.config_txt,
            boards=self.answers.release.boards,
            image_name=self.release.image_name,
            image_md5=self.release.image_md5,
        )
        repo = self.mirror.path(self.release.repo)
        ext = rs.extension_set(repo, self.answers.extensions.names, art.kernels.values())
        return art, ext, self.bundle

    def run(self, *, dry_run: bool = False) -> list[Event]:
        ctx = rs.context(
            self.answers, self.tmp / "cache", *self.inputs(), cancel=self.cancel, dry_run=dry_run
        )
        self.ctx = ctx
        return rs.run(RemasterStep(), ctx)

    def result(self) -> BuildResult:
        res = self.ctx.results.get(BuildResult)
        assert res is not None
        return res


def tree_state(root: Path) -> dict[str, tuple[int, int, str]]:
    """rel path → (inode, mtime_ns, sha256) of every file."""
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file():
            st = p.stat()
            out[p.relative_to(root).as_posix()] = (
                st.st_ino,
                st.st_mtime_ns,
                hashlib.sha256(p.read_bytes()).hexdigest(),
            )
    return out


def cpio_listing(overlay: Path) -> list[list[str]]:
    text = subprocess.run(
        f"gzip -dc '{overlay}' | cpio -itv --quiet --numeric-uid-gid",
        shell=True,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return [line.split(None, 8) for line in text.splitlines()]


# ---------------------------------------------------------------------- the tree


@pytest.mark.parametrize("version", ["12.0", "15.0.0", "16.0.0"])
def test_boot_tree_for_each_layout(mirror: Mirror, tmp_path: Path, version: str) -> None:
    b = Build(mirror, version, tmp_path)
    events = b.run()
    out = b.out
    res = b.result()
    assert res.changed and res.demo and res.output == out
    phases = {e.phase for e in events if isinstance(e, Progress)}
    assert {
        "download",
        "verify",
        "extract",
        "extensions",
        "app",
        "wheels",
        "pack",
        "write",
    } <= phases

    # every boot-partition file byte-identical, except the two patched ones
    for rel, sha in b.release.boot_files.items():
        if rel in ("config.txt", "cmdline.txt"):
            continue
        assert hashlib.sha256((out / rel).read_bytes()).hexdigest() == sha, rel

    # config.txt: only the initramfs lines differ, each by ",overlay.gz" before followkernel
    old = b.release.config_txt.splitlines(keepends=True)
    new = (out / "config.txt").read_text().splitlines(keepends=True)
    assert len(old) == len(new)
    changed = [(o, n) for o, n in zip(old, new, strict=True) if o != n]
    assert changed and all(o.lstrip().startswith("initramfs") for o, _ in changed)
    assert all(n == o.replace(" followkernel", ",overlay.gz followkernel") for o, n in changed)
    assert sum(ln.lstrip().startswith("initramfs") for ln in new) == len(changed)

    flags = (out / "cmdline.txt").read_text().split()
    assert flags[: len(b.release.cmdline_txt.split())] == b.release.cmdline_txt.split()
    assert {"nortc", "norestore", "base", "host=firecore"} <= set(flags)
    assert flags.count("nortc") == 1

    # overlay.gz: gzip -t, newc, no ".", parents first, base modes kept, zero-padded to 4 bytes
    ov = out / "overlay.gz"
    subprocess.run(["gzip", "-t", str(ov)], check=True)
    assert ov.stat().st_size % 4 == 0
    assert gzip.decompress(ov.read_bytes())[:6] == b"070701"
    rows = cpio_listing(ov)
    names = [r[8] for r in rows]
    assert "." not in names and "./" not in names
    for i, name in enumerate(names):
        parent = name.rpartition("/")[0]
        assert not parent or parent in names[:i], name
    by = {r[8]: r for r in rows}
    assert by["tmp"][0] == "drwxrwxrwt" and by["tmp"][2:4] == ["0", "0"]
    assert by["opt"][0] == "drwxrwxr-x" and by["opt"][2:4] == ["0", "50"]
    assert by["home/tc/.ssh"][0] == "drwx------" and by["home/tc/.ssh"][2:4] == ["1001", "50"]
    assert by["home/tc/.ssh/authorized_keys"][0] == "-rw-------"
    assert by["opt/bootlocal.sh"][0].startswith("-rwx")
    assert all(r[1] == "1" for r in rows)

    # the extension closure for every target kernel, with onboot.lst and md5s that check
    unpacked = tmp_path / "unpacked"
    unpacked.mkdir()
    subprocess.run(
        f"gzip -dc '{ov}' | cpio -idm --quiet --no-absolute-filenames",
        shell=True,
        check=True,
        cwd=unpacked,
    )
    builtin = unpacked / "tmp/builtin"
    assert (builtin / "onboot.lst").read_text() == "openssh.tcz\nmyapp.tcz\n"
    staged = {p.name for p in (builtin / "optional").glob("*.tcz")}
    repo = mirror.repo_for(b.release)
    kernels = set(b.release.kernels[x] for x in BOARDS[version])
    for k in kernels:
        assert any(k in name for name in staged), (k, staged)
    assert {"openssh.tcz", "openssl.tcz", "myapp.tcz"} <= staged
    for name in staged:
        assert (
            hashlib.md5((builtin / "optional" / name).read_bytes()).hexdigest()
            == repo.packages[name].md5
        )
    check = subprocess.run(
        "md5sum -c *.md5.txt", shell=True, cwd=builtin / "optional", capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout + check.stderr
    dep = (builtin / "optional" / "myapp.tcz.dep").read_text()
    assert "KERNEL" in dep  # kept as published: piCore's loader expands it at boot
    info = json.loads((unpacked / "opt/firecore/build.json").read_text())
    assert info["build_id"] == res.build_id and info["demo"] is True
    bootlocal = (unpacked / "opt/bootlocal.sh").read_text()
    assert bootlocal.startswith("#!/bin/sh")
    assert bootlocal.rstrip().endswith("/opt/firecore/boot.sh &")
    assert "/usr/local/etc/init.d/openssh start" in bootlocal

    # the manifest names every file with its sha256 and size, and the inputs
    manifest = json.loads((out / "manifest.json").read_text())
    files = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert set(manifest["files"]) == files - {"manifest.json"}
    for rel, meta in manifest["files"].items():
        data = (out / rel).read_bytes()
        assert meta == {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
    assert manifest["build_id"] == res.build_id and manifest["demo"] is True
    assert manifest["release"]["image_md5"] == b.release.image_md5
    assert {p["name"]: p["md5"] for p in manifest["extensions"]["packages"]}[
        "openssh.tcz"
    ] == repo.packages["openssh.tcz"].md5
    assert manifest["app"]["wheels"] == dict(b.bundle.wheels)


def test_two_builds_are_byte_identical(mirror: Mirror, tmp_path: Path) -> None:
    """Same answers, built from scratch twice (output and caches removed in between)."""
    b = Build(mirror, "15.0.0", tmp_path)
    b.run()
    first = tree_state(b.out)
    shutil.rmtree(b.out)
    shutil.rmtree(tmp_path / "cache")
    b.run()
    again = tree_state(b.out)
    assert {k: v[2] for k, v in first.items()} == {k: v[2] for k, v in again.items()}
    assert b.result().changed


def every_byte(root: Path) -> dict[str, tuple[int, bytes | None]]:
    """rel path → (mode, contents; None for a directory) of everything below ``root``."""
    return {
        p.relative_to(root).as_posix(): (
            p.lstat().st_mode,
            p.read_bytes() if p.is_file() else None,
        )
        for p in sorted(root.rglob("*"))
    }


def test_the_same_answers_built_in_two_places_give_identical_trees(
    mirror: Mirror, tmp_path: Path
) -> None:
    """build.output and build.cache only say where: the trees match byte for byte, manifest too."""
    here = Build(mirror, "15.0.0", tmp_path / "here")
    there = Build(mirror, "15.0.0", tmp_path / "elsewhere" / "deeper")
    there.bundle = here.bundle  # the same app files (the answers do not name an app directory)
    here.run()
    there.run()
    assert here.answers.build.output != there.answers.build.output
    assert here.answers.build.cache != there.answers.build.cache
    a, b = every_byte(here.out), every_byte(there.out)
    assert "manifest.json" in a and "overlay.gz" in a
    assert a.keys() == b.keys()
    assert [k for k in a if a[k] != b[k]] == []


def test_no_change_rebuild_rewrites_nothing(
    mirror: Mirror, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    b = Build(mirror, "15.0.0", tmp_path)
    b.run()
    before = tree_state(b.out)
    dir_ino = b.out.stat().st_ino
    read: list[Path] = []
    real = fsutil.sha256_file

    def counting(path: Path, **kw: Any) -> str:
        read.append(path)
        return real(path, **kw)

    monkeypatch.setattr(fsutil, "sha256_file", counting)
    events = b.run()  # at once: the files were written a moment ago
    assert b.result().changed is False
    assert tree_state(b.out) == before and b.out.stat().st_ino == dir_ino
    assert not {e.phase for e in events if isinstance(e, Progress)} & {"extract", "pack", "write"}
    # The build waited out the racy window before its tree appeared: every digest it recorded
    # is trusted, and the rebuild reads none of the files it wrote.
    assert [p for p in read if b.out in p.parents] == []


def test_app_change_rebuilds_only_the_overlay(mirror: Mirror, tmp_path: Path) -> None:
    b = Build(mirror, "15.0.0", tmp_path)
    b.run()
    before = tree_state(b.out)
    first = b.result().build_id
    b.bundle = rs.app_bundle(b.app_dir, message="changed")
    events = b.run()
    assert b.result().changed and b.result().build_id != first
    after = tree_state(b.out)
    differ = {k for k in after if after[k] != before.get(k)}
    assert differ == {"overlay.gz", "manifest.json"}
    extract = [e for e in events if isinstance(e, Progress) and e.phase == "extract"]
    assert extract and all("cached" in e.message for e in extract)  # nothing extracted


def test_cancel_mid_build_leaves_previous_output(mirror: Mirror, tmp_path: Path) -> None:
    b = Build(mirror, "15.0.0", tmp_path)
    b.run()
    before = tree_state(b.out)
    b.bundle = rs.app_bundle(b.app_dir, message="second")
    ctx = rs.context(b.answers, tmp_path / "cache", *b.inputs(), cancel=b.cancel)
    with pytest.raises(Cancelled):
        for event in RemasterStep().run(ctx):
            if isinstance(event, Progress) and event.phase == "write" and event.done > 0:
                b.cancel.set()
    assert tree_state(b.out) == before
    assert [p.name for p in b.out.parent.iterdir() if p.name.startswith(".out")] == []


def test_dry_run_plans_every_file_and_writes_nothing(mirror: Mirror, tmp_path: Path) -> None:
    b = Build(mirror, "16.0.0", tmp_path)
    b.answers.deploy.profiles = {"lab": Profile(hostname="lab1")}
    events = b.run(dry_run=True)
    planned = {e.target for e in events if isinstance(e, Planned)}
    assert not b.out.exists()
    for rel in b.release.boot_files:
        assert str(b.out / rel) in planned
    for rel in (
        "overlay.gz",
        "manifest.json",
        "profiles/lab/config.txt",
        "profiles/lab/pi.gz",
    ):
        assert str(b.out / rel) in planned


def test_profiles(mirror: Mirror, tmp_path: Path) -> None:
    b = Build(mirror, "15.0.0", tmp_path)
    b.answers.build.cmdline_extra = ["loglevel=7"]
    b.answers.deploy.profiles = {
        "kiosk": Profile(
            hostname="kiosk1",
            env={"ROLE": "kiosk"},
            cmdline_extra=["quiet"],
            config_txt=["dtoverlay=disable-bt"],
        ),
    }
    b.run()
    assert b.result().profiles == ("kiosk",)
    prof = b.out / "profiles" / "kiosk"
    config = (prof / "config.txt").read_text()
    for line in config.splitlines():
        if line.strip().startswith("initramfs"):
            assert ",overlay.gz,pi.gz followkernel" in line
    assert config.rstrip().endswith("dtoverlay=disable-bt")
    flags = (prof / "cmdline.txt").read_text().split()
    assert "host=kiosk1" in flags and "host=firecore" not in flags and "loglevel=7" in flags
    assert "loglevel=3" not in flags  # key=value replaced, not duplicated
    env = {e.name: e for e in cpio.read(io.BytesIO(gzip.decompress((prof / "pi.gz").read_bytes())))}
    text = env["opt/firecore/profile.env"].data.decode()
    assert "FIRECORE_HOSTNAME='kiosk1'" in text and "ROLE='kiosk'" in text
    assert (prof / "pi.gz").stat().st_size % 4 == 0  # a Pi 5 loads it after overlay.gz
    assert stat.S_IMODE(env["opt"].mode) == 0o775  # the base's /opt, untouched


def test_extracted_mode_unpacks_extensions(mirror: Mirror, tmp_path: Path) -> None:
    b = Build(mirror, "15.0.0", tmp_path)
    b.answers.extensions.mode = "extracted"
    b.run()
    rows = cpio_listing(b.out / "overlay.gz")
    names = {r[8] for r in rows}
    assert not any(n.startswith("tmp/builtin") for n in names)
    repo = mirror.repo_for(b.release)
    for path in repo.packages["openssh.tcz"].files:
        assert path.strip("/") in names
    assert "usr/local/tce.installed/openssh" in names
    by = {r[8]: r for r in rows}
    assert by["usr/local/tce.installed"][0] == "drwxrwxr-x"  # the base's root:staff 0775
    assert by["usr/local/tce.installed"][2:4] == ["0", "50"]
    bootlocal = subprocess.run(
        f"gzip -dc '{b.out / 'overlay.gz'}' | cpio -i --to-stdout --quiet opt/bootlocal.sh",
        shell=True,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.splitlines()
    assert bootlocal[:2] == ["#!/bin/sh", "/opt/firecore/tce-setup.sh"]
    runner = subprocess.run(
        f"gzip -dc '{b.out / 'overlay.gz'}' | cpio -i --to-stdout --quiet "
        "opt/firecore/tce-setup.sh",
        shell=True,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.splitlines()
    # what tce-bootload does last: udev's first trigger ran before these modules existed
    assert runner[-2:] == ["/sbin/udevadm trigger 2>/dev/null", "exit 0"]


# ---------------------------------------------------------------------- what a Pi can read


def test_config_lines_stay_within_98_characters(mirror: Mirror, tmp_path: Path) -> None:
    """piCore64's [PI5] line names two long archives: ours must still fit the firmware's 98."""
    b = Build(mirror, "16.0.0", tmp_path)
    b.answers.release.boards = ["pi4", "pi5"]
    b.answers.deploy.profiles = {"lab": Profile(hostname="lab1")}
    b.run()
    for rel in ("config.txt", "profiles/lab/config.txt"):
        lines = (b.out / rel).read_text().splitlines()
        pi5 = lines[lines.index("[PI5]") + 1]
        assert pi5.startswith("initramfs") and pi5.endswith(" followkernel"), pi5
        assert max(len(line) for line in lines if not line.startswith("#")) <= 98, rel
    assert ",overlay.gz,pi.gz followkernel" in (b.out / "profiles/lab/config.txt").read_text()


def test_a_written_line_over_98_characters_is_refused(mirror: Mirror, tmp_path: Path) -> None:
    b = Build(mirror, "16.0.0", tmp_path)
    b.answers.deploy.profiles = {"lab": Profile(config_txt=["dtoverlay=" + "x" * 90])}
    with pytest.raises(AnswersError) as info:
        b.run()
    assert info.value.key == "deploy.profiles.lab.config_txt[0]" and "98" in info.value.message


def test_check_config_names_the_line_we_would_cut() -> None:
    from steps.remaster import _check_config

    release = ConfigTxt.parse("[PI5]\ninitramfs " + "r" * 60 + ".gz,m.gz followkernel\n")
    with pytest.raises(RemasterError) as info:
        _check_config("config.txt", release, release.with_initramfs("overlay.gz"))
    assert "config.txt line 2" in info.value.message and "followkernel" in info.value.message
    assert _check_config("config.txt", release, release) == []  # the release's own line: fine


def test_config_past_4096_bytes_is_a_warning(mirror: Mirror, tmp_path: Path) -> None:
    b = Build(mirror, "15.0.0", tmp_path)
    lines = [f"dtparam=i2c_arm_baudrate={100000 + i}" for i in range(120)]
    b.answers.deploy.profiles = {"big": Profile(config_txt=[*lines, "enable_uart=1"])}
    events = b.run()
    warnings = [e.text for e in events if isinstance(e, LogLine) and e.stream == "warning"]
    late = [w for w in warnings if "past byte 4096" in w]
    assert late and "profiles/big/config.txt" in late[0] and "enable_uart=1" in late[0]
    assert not any("past byte 4096" in w and w.startswith("config.txt") for w in warnings)


def test_lst_is_refused_and_prefix_collisions_warned(mirror: Mirror, tmp_path: Path) -> None:
    b = Build(mirror, "15.0.0", tmp_path)
    b.answers.build.cmdline_extra = ["lst=mine.lst"]
    with pytest.raises(AnswersError) as info:
        b.run()
    assert info.value.key == "build.cmdline_extra[0]" and "tce-setup" in info.value.message
    b.answers.build.cmdline_extra = ["isolcpus=1", "tz=CET"]
    events = b.run()
    warnings = [e.text for e in events if isinstance(e, LogLine) and e.stream == "warning"]
    assert any("isolcpus=1" in w and "'iso'" in w for w in warnings), warnings
    assert not any("tz=CET" in w for w in warnings)  # tz= itself is meant


def test_paths_named_mnt_are_refused(mirror: Mirror, tmp_path: Path) -> None:
    b = Build(mirror, "15.0.0", tmp_path)
    data = tmp_path / "mnt-data.txt"
    data.write_text("x\n")
    extra = (
        OverlayFile("opt/firecore/site-packages/pkg/mnt", 0o755, is_dir=True),
        OverlayFile("opt/firecore/site-packages/pkg/mnt/data.txt", 0o644, source=data),
    )
    b.bundle = dataclasses.replace(b.bundle, files=b.bundle.files + extra, digest="mnt")
    with pytest.raises(RemasterError) as info:
        b.run()
    assert "/opt/firecore/site-packages/pkg/mnt" in info.value.message
    assert "--exclude=mnt" in info.value.message and not b.out.exists()


def test_tftp_limits_and_pi5_needs_are_reported(mirror: Mirror, tmp_path: Path) -> None:
    b = Build(mirror, "15.0.0", tmp_path)
    b.answers.release.boards = ["pi3", "pi5"]
    big = tmp_path / "big.bin"
    with big.open("wb") as fh:  # sparse: 40 MB of zeros, incompressible enough via urandom tail
        fh.write(os.urandom(34_000_000))
    extra = (OverlayFile("opt/firecore/app/big.bin", 0o644, source=big),)
    b.bundle = dataclasses.replace(b.bundle, files=b.bundle.files + extra, digest="big")
    events = b.run()
    warnings = [e.text for e in events if isinstance(e, LogLine) and e.stream == "warning"]
    size = [w for w in warnings if "overlay.gz" in w and "block counter" in w]
    assert [w.split(" on ")[1].split()[0] for w in size] == ["pi3"]  # 512-byte blocks only
    assert "33,553,920" in size[0]
    assert any("bcm2712d0-rpi-5-b.dtb" in w for w in warnings)  # the demo release lacks it


# ---------------------------------------------------------------------- bad input


def expect_failure(b: Build, match: str) -> FirecoreError:
    with pytest.raises(FirecoreError, match=match) as info:
        b.run()
    assert info.value.exit_code == 1
    return info.value


def test_bad_inputs_fail_cleanly_and_keep_the_previous_output(
    mirror: Mirror, tmp_path: Path
) -> None:
    b = Build(mirror, "15.0.0", tmp_path)
    b.run()
    before = tree_state(b.out)
    inputs = b.inputs

    # a TCZ that is not squashfs (an error page saved under the name)
    repo = tmp_path / "repo"
    shutil.copytree(mirror.path(b.release.repo), repo)
    page = b"<html>502 Bad Gateway</html>"  # published as is, md5 and all
    (repo / "openssl.tcz").write_bytes(page)
    (repo / "openssl.tcz.md5.txt").write_text(f"{hashlib.md5(page).hexdigest()}  openssl.tcz\n")
    good_release = b.release

    def with_repo() -> tuple[object, ...]:
        art, _, app = inputs()
        ext = rs.extension_set(repo, b.answers.extensions.names, art.kernels.values())  # type: ignore[attr-defined]
        return art, ext, app

    b.inputs = with_repo  # type: ignore[method-assign]
    expect_failure(b, r"openssl.tcz .*is not a squashfs image")
    b.inputs = inputs  # type: ignore[method-assign]

    # an app file that vanished, and one that is a symlink out of the tree
    (b.app_dir / "escape").symlink_to("/etc/passwd")
    b.bundle = AppBundle(
        (OverlayFile("opt/firecore/app/x", 0o644, source=b.app_dir / "gone"),),
        "",
        "3.11",
        "linux_armv7l",
    )
    expect_failure(b, "gone does not exist")
    b.answers.app.path = str(b.app_dir)
    b.bundle = AppBundle(
        (OverlayFile("opt/firecore/app/e", 0o644, source=b.app_dir / "escape"),),
        "",
        "3.11",
        "linux_armv7l",
    )
    expect_failure(b, "symlink to /etc/passwd, outside the app directory")
    b.bundle = rs.app_bundle(b.app_dir)

    # the release's image md5 does not match its .md5.txt
    bad_zip = tmp_path / "bad" / good_release.filename
    bad_zip.parent.mkdir()
    with zipfile.ZipFile(b.release_file) as src, zipfile.ZipFile(bad_zip, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename.endswith(".md5.txt"):
                data = b"0" * 32 + data[32:]
            dst.writestr(info, data)
    b.release_file = bad_zip
    err = expect_failure(b, "md5")
    assert isinstance(err, ChecksumError | RemasterError)
    assert tree_state(b.out) == before


def make_img_gz(
    tmp: Path, name: str, *, config: str | None, fat: bool = True, table: bool = True
) -> Path:
    """A small raw image (MBR + FAT p1 with config.txt/cmdline.txt/rootfs), gzipped."""
    img = tmp / f"{name}.img"
    with open(img, "wb") as fh:
        fh.truncate((8192 + 8192) * 512)
    if table:
        kind = "c" if fat else "83"
        subprocess.run(
            ["sfdisk", "--quiet", str(img)],
            input=f"label: dos\nunit: sectors\nstart=8192, size=8192, type={kind}\n",
            text=True,
            check=True,
        )
    if fat and table:
        target = f"{img}@@{8192 * 512}"
        env = {**os.environ, "MTOOLS_SKIP_CHECK": "1"}
        subprocess.run(
            ["mformat", "-i", target, "-T", "8192", "-h", "64", "-s", "32", "-H", "8192", "::"],
            check=True,
            env=env,
        )
        boot = tmp / f"{name}-boot"
        boot.mkdir()
        if config is not None:
            (boot / "config.txt").write_text(config)
        (boot / "cmdline.txt").write_text("console=tty1 root=/dev/ram0 quiet\n")
        raw = io.BytesIO()
        cpio.write(cpio.sort_entries([cpio.directory("opt", 0o775, 0, 50)]), raw)
        (boot / "rootfs-x.gz").write_bytes(cpio.gzip_bytes(raw.getvalue()))
        (boot / "kernel-6.1.0-piCore-v7.img").write_bytes(b"k")
        subprocess.run(
            ["mcopy", "-i", target, *map(str, sorted(boot.iterdir())), "::/"], check=True, env=env
        )
    out = tmp / f"{name}.img.gz"
    out.write_bytes(gzip.compress(img.read_bytes(), mtime=0))
    return out


@pytest.mark.parametrize(
    ("kind", "match"),
    [
        ("no-initramfs", r"config.txt.* no `initramfs`"),
        ("no-table", r"partition table"),
        ("no-fat", r"FAT"),
    ],
)
def test_unusable_images_are_named(mirror: Mirror, tmp_path: Path, kind: str, match: str) -> None:
    b = Build(mirror, "15.0.0", tmp_path)
    b.run()
    before = tree_state(b.out)
    config = "[pi3]\nkernel kernel-6.1.0-piCore-v7.img\n"
    img = make_img_gz(tmp_path, kind, config=config, fat=kind != "no-fat", table=kind != "no-table")
    b.release_file = img
    b.release = BuiltRelease(
        **{
            **b.release.__dict__,
            "config_txt": config.replace("kernel ", "initramfs rootfs-x.gz followkernel\nkernel "),
        }
    )
    b.answers.release.boards = ["pi3"]
    b.answers.extensions.names = ["openssh.tcz"]
    err = expect_failure(b, match)
    assert "Traceback" not in str(err)
    assert tree_state(b.out) == before


def test_no_space_left_is_a_clear_error(mirror: Mirror, tmp_path: Path) -> None:
    """The output on a 1 MiB tmpfs (private mount namespace): ENOSPC → named, nothing left."""
    script = tmp_path / "nospace.py"
    script.write_text(
        "import sys, pathlib\n"
        "sys.path.insert(0, sys.argv[1])\n"
        "from tests.test_remaster import nospace_build\n"
        "nospace_build(pathlib.Path(sys.argv[2]))\n"
    )
    root = Path(__file__).resolve().parent.parent
    mnt = tmp_path / "small"
    mnt.mkdir()
    proc = subprocess.run(
        [
            "unshare",
            "-m",
            "--propagation",
            "private",
            "sh",
            "-c",
            f"mount -t tmpfs -o size=1m tmpfs '{mnt}' && exec '{root}/.venv/bin/python' '{script}' "
            f"'{root}' '{tmp_path}'",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "NOSPACE-OK" in proc.stdout, proc.stdout + proc.stderr


def nospace_build(tmp: Path) -> None:
    """Run inside the private mount namespace by test_no_space_left_is_a_clear_error."""
    mirror = cached_mirror(tmp.parent.parent / "firecore-fake-mirror")  # = fake_mirror
    b = Build(mirror, "15.0.0", tmp)
    b.answers.build.output = str(tmp / "small" / "out")
    b.run()
    before = tree_state(b.out)
    big = b.app_dir / "big.bin"
    big.write_bytes(os.urandom(900 * 1024))
    b.bundle = AppBundle(
        (*b.bundle.files, OverlayFile("opt/firecore/app/big.bin", 0o644, source=big)),
        b.bundle.bootlocal,
        "3.11",
        "linux_armv7l",
        digest="big",
    )
    try:
        b.run()
    except FirecoreError as exc:
        assert exc.exit_code == 1, exc
        assert "no space left on the device" in exc.message, exc.message
        assert str(tmp / "small") in exc.message, exc.message
    else:
        raise AssertionError("the build did not fail")
    assert tree_state(b.out) == before
    leftovers = [p.name for p in (tmp / "small").iterdir() if p.name != "out"]
    assert leftovers == [], leftovers
    print("NOSPACE-OK")


def test_tool_version_is_the_installed_distribution_s() -> None:
    from importlib import metadata

    from steps.remaster import tool_version

    assert tool_version() == metadata.version("firecore-wizard")
