"""Reading releases without root: checked against sfdisk, mtools, unzip, gzip, md5sum, debugfs."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import subprocess
import threading
import zipfile
from pathlib import Path
from typing import Any

import pytest

from steps import proc
from steps.demo.factory import BuiltRelease, Mirror
from steps.errors import Cancelled, ChecksumError, RemasterError
from steps.events import Progress, drive
from steps.picore import image
from steps.picore.image import BootTree, read_partitions, unpack_boot

ENV = {**os.environ, "MTOOLS_SKIP_CHECK": "1", "LC_ALL": "C"}


def unpack(release: Path, cache: Path, **kw: Any) -> tuple[BootTree, list[Progress]]:
    events: list[Progress] = []
    tree = drive(unpack_boot("release", release, cache, **kw), events.append)
    assert isinstance(tree, BootTree)
    return tree, events


def sh(*args: str | Path, **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, check=True, env=ENV, **kw
    )


def leftovers(cache: Path) -> list[str]:
    base = cache / "boot"
    return sorted(p.name for p in base.iterdir()) if base.exists() else []


RELEASES = ["12.0", "15.0.0", "16.0.0", "15.0.0-beta2"]


@pytest.mark.parametrize("version", RELEASES)
def test_unpack_boot_matches_what_the_factory_built(
    fake_mirror: Mirror, tmp_path: Path, version: str
) -> None:
    rel = fake_mirror.release(version)
    tree, events = unpack(fake_mirror.path(rel.path), tmp_path)
    assert tree.path == tmp_path / "boot" / rel.sha256 / "p1"
    assert tree.release_sha256 == rel.sha256
    assert tree.image_name == rel.image_name
    assert tree.image_md5 == rel.image_md5
    assert tree.image_md5_verified == (rel.spec.layout == "zip")
    assert [(p.number, p.type, p.start, p.sectors) for p in tree.partitions] == [
        (p.number, p.type, p.start, p.sectors) for p in rel.partitions
    ]
    assert tree.fat.start == 8192 and tree.fat.sectors == rel.spec.boot_sectors
    # every boot file, byte-identical, names as on the partition
    assert set(tree.files) == set(rel.boot_files)
    for name, digest in rel.boot_files.items():
        assert hashlib.sha256((tree.path / name).read_bytes()).hexdigest() == digest
    assert tree.config_txt().text == rel.config_txt
    assert tree.cmdline().text == rel.cmdline_txt
    assert tree.demo
    assert tree.config_txt().kernel_releases(rel.kernels) == rel.kernels
    # progress: one "extract" phase with byte counts that never go backwards within a message
    assert events and all(e.phase == "extract" and e.unit == "bytes" for e in events)
    streamed = [e for e in events if e.message.startswith("unpacking")]
    assert streamed[-1].done == rel.image_size
    assert leftovers(tmp_path) == [rel.sha256]


def test_partitions_agree_with_sfdisk_and_files_with_mdir(
    fake_mirror: Mirror, tmp_path: Path
) -> None:
    rel = fake_mirror.release("15.0.0")
    zpath = fake_mirror.path(rel.path)
    assert "No errors detected" in sh("unzip", "-t", zpath).stdout
    sh("unzip", "-q", zpath, "-d", tmp_path)
    sh("md5sum", "-c", f"{rel.image_name}.md5.txt", cwd=tmp_path)
    img = tmp_path / rel.image_name
    table = json.loads(sh("sfdisk", "--json", img).stdout)["partitiontable"]
    ours = read_partitions(img)
    assert [(p["start"], p["size"], int(p["type"], 16)) for p in table["partitions"]] == [
        (p.start, p.sectors, p.type) for p in ours
    ]
    tree, _ = unpack(zpath, tmp_path / "cache")
    fat = tree.fat
    listing = sh("mdir", "-/", "-b", "-i", f"{img}@@{fat.offset}", "::/").stdout.split()
    mdir_files = sorted(p.removeprefix("::/") for p in listing if not p.endswith("/"))
    assert mdir_files == sorted(tree.files)
    # p2 is ext4 with tce/ (read with debugfs: no mount)
    p2 = ours[1]
    onboot = sh("debugfs", "-R", "cat /tce/onboot.lst", f"{img}?offset={p2.offset}").stdout
    assert onboot == "openssh.tcz\n"


def test_img_gz_is_a_valid_gzip_of_the_image(fake_mirror: Mirror, tmp_path: Path) -> None:
    rel = fake_mirror.release("16.0.0")
    path = fake_mirror.path(rel.path)
    sh("gzip", "-t", path)
    with gzip.open(path, "rb") as fh:
        assert hashlib.md5(fh.read()).hexdigest() == rel.image_md5
    with image.raw_image(path, tmp_path) as (img, name, md5):
        assert name == rel.image_name and md5 == rel.image_md5
        assert img.stat().st_size == rel.image_size
    assert list(tmp_path.iterdir()) == []


def test_second_call_does_no_work(
    fake_mirror: Mirror, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rel = fake_mirror.release("12.0")
    first, _ = unpack(fake_mirror.path(rel.path), tmp_path)

    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("a cached unpack must not run tools or read the image")

    monkeypatch.setattr(proc, "run", forbidden)
    monkeypatch.setattr(image, "extract_image", forbidden)
    again, events = unpack(fake_mirror.path(rel.path), tmp_path)
    assert again == first
    assert len(events) == 1 and "cached" in events[0].message
    # with the digest given, the release file is not even read
    monkeypatch.setattr(image, "sha256_file", forbidden)
    given, _ = unpack(fake_mirror.path(rel.path), tmp_path, sha256=rel.sha256)
    assert given == first


def test_concurrent_unpacks_share_one_entry(fake_mirror: Mirror, tmp_path: Path) -> None:
    rel = fake_mirror.release("15.0.0-beta2")
    trees: list[BootTree] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            trees.append(unpack(fake_mirror.path(rel.path), tmp_path)[0])
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len({t.path for t in trees}) == 1
    assert leftovers(tmp_path) == [rel.sha256]


def test_cancel_leaves_nothing(fake_mirror: Mirror, tmp_path: Path) -> None:
    rel = fake_mirror.release("16.0.0")
    cancel = threading.Event()
    gen = unpack_boot("release", fake_mirror.path(rel.path), tmp_path, cancel)
    next(gen)  # the first progress event: extraction has begun
    cancel.set()
    with pytest.raises(Cancelled):
        drive(gen)
    assert leftovers(tmp_path) == []
    cancel.clear()
    tree, _ = unpack(fake_mirror.path(rel.path), tmp_path, cancel=cancel)
    assert tree.demo


# ---------------------------------------------------------------------- bad input


def _blank_image(path: Path, table: str | None, sectors: int = 24576) -> Path:
    with open(path, "wb") as fh:
        fh.truncate(sectors * 512)
    if table is not None:
        sh("sfdisk", "--quiet", path, input=table)
    return path


def test_image_without_partition_table(tmp_path: Path) -> None:
    img = _blank_image(tmp_path / "zeros.img", None)
    with pytest.raises(RemasterError, match="no partition table") as err:
        unpack(img, tmp_path / "cache")
    assert "zeros.img" in err.value.message and err.value.fix
    assert leftovers(tmp_path / "cache") == []


def test_image_without_fat_partition(tmp_path: Path) -> None:
    img = _blank_image(tmp_path / "linux.img", "label: dos\nstart=2048, size=8192, type=83\n")
    with pytest.raises(RemasterError, match="no FAT boot partition") as err:
        unpack(img, tmp_path / "cache")
    assert "0x83" in err.value.message
    assert leftovers(tmp_path / "cache") == []


def test_gpt_image_is_refused(tmp_path: Path) -> None:
    img = _blank_image(tmp_path / "gpt.img", "label: gpt\nstart=2048, size=8192\n")
    with pytest.raises(RemasterError, match="GPT"):
        unpack(img, tmp_path / "cache")


def test_fat_type_with_garbage_inside(tmp_path: Path) -> None:
    img = _blank_image(tmp_path / "junk.img", "label: dos\nstart=2048, size=8192, type=c\n")
    with pytest.raises(RemasterError, match="not a readable FAT") as err:
        unpack(img, tmp_path / "cache")
    assert "junk.img" in err.value.message
    assert leftovers(tmp_path / "cache") == []


def test_truncated_image(fake_mirror: Mirror, tmp_path: Path) -> None:
    rel = fake_mirror.release("15.0.0")
    with image.raw_image(fake_mirror.path(rel.path), tmp_path / "w") as (img, _, _):
        cut = tmp_path / rel.image_name
        with open(img, "rb") as src, open(cut, "wb") as dst:
            dst.write(src.read(rel.image_size - 512 * 100))
    with pytest.raises(RemasterError, match="truncated image") as err:
        unpack(cut, tmp_path / "cache")
    assert "partition 2" in err.value.message


def test_truncated_zip(fake_mirror: Mirror, tmp_path: Path) -> None:
    rel = fake_mirror.release("12.0")
    data = fake_mirror.path(rel.path).read_bytes()
    bad = tmp_path / rel.filename
    bad.write_bytes(data[: len(data) // 2])
    assert subprocess.run(["unzip", "-t", str(bad)], capture_output=True).returncode != 0
    with pytest.raises(RemasterError) as err:
        unpack(bad, tmp_path / "cache")
    assert rel.filename in err.value.message and "download it again" in err.value.fix
    assert leftovers(tmp_path / "cache") == []


def test_truncated_img_gz(fake_mirror: Mirror, tmp_path: Path) -> None:
    rel = fake_mirror.release("16.0.0")
    data = fake_mirror.path(rel.path).read_bytes()
    bad = tmp_path / rel.filename
    bad.write_bytes(data[: len(data) - 4000])
    with pytest.raises(RemasterError, match=rel.filename):
        unpack(bad, tmp_path / "cache")
    assert leftovers(tmp_path / "cache") == []


def _rezip(rel: BuiltRelease, src: Path, dest: Path, md5_text: str | None) -> Path:
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dest, "w") as zout:
        for info in zin.infolist():
            if info.filename.endswith(".md5.txt"):
                if md5_text is not None:
                    zout.writestr(info, md5_text)
            else:
                zout.writestr(info, zin.read(info))
    return dest


def test_md5_mismatch_inside_zip(fake_mirror: Mirror, tmp_path: Path) -> None:
    rel = fake_mirror.release("12.0")
    wrong = "0" * 32
    bad = _rezip(
        rel, fake_mirror.path(rel.path), tmp_path / rel.filename, f"{wrong}  {rel.image_name}\n"
    )
    with pytest.raises(ChecksumError) as err:
        unpack(bad, tmp_path / "cache")
    assert err.value.name == rel.image_name
    assert err.value.expected == wrong and err.value.actual == rel.image_md5
    assert rel.filename in err.value.message
    assert leftovers(tmp_path / "cache") == []
    # without an md5 file the image is accepted, but not marked verified
    plain = _rezip(rel, fake_mirror.path(rel.path), tmp_path / "nomd5.zip", None)
    tree, _ = unpack(plain, tmp_path / "cache")
    assert not tree.image_md5_verified and tree.image_md5 == rel.image_md5


def test_zip_without_image(tmp_path: Path) -> None:
    bad = tmp_path / "piCore-99.0.zip"
    with zipfile.ZipFile(bad, "w") as zf:
        zf.writestr("README", "nothing here\n")
    with pytest.raises(RemasterError, match=r"no \.img file"):
        unpack(bad, tmp_path / "cache")


def test_missing_release_file(tmp_path: Path) -> None:
    with pytest.raises(RemasterError, match="does not exist"):
        unpack(tmp_path / "nope.zip", tmp_path / "cache")


def test_upper_case_names_are_kept_and_found(tmp_path: Path) -> None:
    """A boot partition written by another tool: 8.3 upper-case names, found case-insensitively."""
    img = _blank_image(tmp_path / "upper.img", "label: dos\nstart=2048, size=16384, type=c\n")
    sh("mkfs.vfat", "--offset", "2048", "-n", "BOOT", img, "8192")
    (tmp_path / "CONFIG.TXT").write_text("[all]\ninitramfs R.GZ,modules-1.0-piCore.gz\nkernel K\n")
    (tmp_path / "Kernel7.img").write_bytes(b"k")
    part = f"{img}@@{2048 * 512}"
    sh("mcopy", "-i", part, tmp_path / "CONFIG.TXT", tmp_path / "Kernel7.img", "::/")
    tree, _ = unpack(img, tmp_path / "cache")
    assert set(tree.files) == {"CONFIG.TXT", "Kernel7.img"}
    assert tree.find("config.txt") == tree.path / "CONFIG.TXT"
    assert tree.find("KERNEL7.IMG") == tree.path / "Kernel7.img"
    assert tree.config_txt().boot_for("pi3").kernel_release == "1.0-piCore"
    assert not tree.demo
    with pytest.raises(RemasterError, match=r"no cmdline\.txt"):
        tree.cmdline()
    shutil.rmtree(tmp_path / "cache")
