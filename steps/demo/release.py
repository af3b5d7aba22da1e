"""One fake piCore release file, built with the real tools and no root.

The recipe is TESTING.md's "A fake piCore release": an MBR image (``sfdisk``) with a FAT boot
partition (``mformat -T`` so it stops at its partition, ``mcopy``) and an ext4 TCE partition
(``mke2fs -d``, owners fixed with ``debugfs``), zipped with its ``.img.md5.txt`` and a README, or
gzipped whole for the 16.x layout. Output is deterministic: fixed volume serial, disk id and
ext4 UUIDs, ``SOURCE_DATE_EPOCH`` for mtools, ``E2FSPROGS_FAKE_TIME`` plus explicit inode times
for e2fsprogs, and fixed timestamps in the zip and gzip headers.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import shutil
import tarfile
import time
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from steps import proc
from steps.demo import texts
from steps.demo.rootfs import STAFF_GID, TC_UID, blob, modules_gz, rootfs_gz
from steps.demo.specs import ReleaseSpec
from steps.demo.tczrepo import BuiltPackage
from steps.paths import DEMO_MARKER
from steps.picore.image import Partition

SECTOR = 512
P1_START = 8192
_CHUNK = 1 << 20

FIRMWARE = (
    "bootcode.bin",
    "start.elf", "start_cd.elf", "start_db.elf", "start_x.elf",
    "fixup.dat", "fixup_cd.dat", "fixup_db.dat", "fixup_x.dat",
    "start4.elf", "start4cd.elf", "start4db.elf", "start4x.elf",
    "fixup4.dat", "fixup4cd.dat", "fixup4db.dat", "fixup4x.dat",
)  # fmt: skip

DTBS: dict[str, tuple[str, ...]] = {
    "12": (
        "bcm2708-rpi-zero.dtb", "bcm2708-rpi-zero-w.dtb", "bcm2708-rpi-b.dtb",
        "bcm2708-rpi-b-plus.dtb", "bcm2709-rpi-2-b.dtb", "bcm2710-rpi-2-b.dtb",
        "bcm2710-rpi-3-b.dtb", "bcm2710-rpi-3-b-plus.dtb", "bcm2711-rpi-4-b.dtb",
        "bcm2711-rpi-400.dtb",
    ),
    "15": (
        "bcm2708-rpi-zero.dtb", "bcm2708-rpi-zero-w.dtb", "bcm2708-rpi-b-plus.dtb",
        "bcm2709-rpi-2-b.dtb", "bcm2710-rpi-zero-2-w.dtb", "bcm2710-rpi-3-b.dtb",
        "bcm2710-rpi-3-b-plus.dtb", "bcm2711-rpi-4-b.dtb", "bcm2711-rpi-400.dtb",
        "bcm2711-rpi-cm4.dtb", "bcm2712-rpi-5-b.dtb",
    ),
    "64": (
        "bcm2710-rpi-zero-2-w.dtb", "bcm2710-rpi-3-b.dtb", "bcm2710-rpi-3-b-plus.dtb",
        "bcm2711-rpi-4-b.dtb", "bcm2711-rpi-400.dtb", "bcm2711-rpi-cm4.dtb",
        "bcm2712-rpi-5-b.dtb", "bcm2712d0-rpi-5-b.dtb", "bcm2712-rpi-cm5-cm5io.dtb",
    ),
}  # fmt: skip

OVERLAYS = (
    "overlay_map.dtb", "w1-gpio.dtbo", "vc4-kms-v3d.dtbo", "vc4-kms-v3d-pi4.dtbo",
    "disable-bt.dtbo", "dwc2.dtbo",
)  # fmt: skip


@dataclass(frozen=True)
class BuiltRelease:
    """A release file on the fake mirror, with everything tests may assert against."""

    spec: ReleaseSpec
    path: str
    """Below the mirror root, e.g. "15.x/armhf/releases/RPi/piCore-15.0.0.zip"."""
    aliases: tuple[str, ...]
    """Other paths on the mirror with the same bytes."""
    size: int
    md5: str
    """md5 of the release file."""
    sha256: str
    image_name: str
    image_md5: str
    image_size: int
    partitions: tuple[Partition, ...]
    boot_files: Mapping[str, str]
    """Boot partition path ("overlays/README") → sha256 of its bytes."""
    tce_files: tuple[str, ...]
    """Paths in p2 ("tce/onboot.lst" …)."""
    config_txt: str
    cmdline_txt: str
    kernels: Mapping[str, str]
    """Board → kernel release, per the release's config.txt."""

    @property
    def version(self) -> str:
        return self.spec.version

    @property
    def arch(self) -> str:
        return self.spec.arch

    @property
    def filename(self) -> str:
        return self.spec.filename

    @property
    def repo(self) -> str:
        return self.spec.repo


def boot_partition_files(spec: ReleaseSpec) -> dict[str, bytes]:
    """Every file of the boot partition: path → bytes."""
    files: dict[str, bytes] = {}
    if spec.style != "64":
        for name in FIRMWARE:
            files[name] = blob(f"{spec.filename} {name}", 3072 if name.endswith(".elf") else 640)
    else:
        for name in ("bootcode.bin", "start4.elf", "fixup4.dat", "start.elf", "fixup.dat"):
            files[name] = blob(f"{spec.filename} {name}", 2048)
    files["config.txt"] = texts.config_txt(spec).encode()
    files["cmdline.txt"] = texts.cmdline_txt(spec).encode()
    files[spec.rootfs] = rootfs_gz(spec)
    for suffix in spec.flavour_suffixes:
        kver = f"{spec.kernel}-piCore{suffix}"
        files[spec.kernel_file(suffix)] = b"\0" * 36 + blob(f"{spec.filename} {kver}", 8156)
        files[f"modules-{kver}.gz"] = modules_gz(spec, kver)
    for dtb in DTBS[spec.style]:
        files[dtb] = b"\xd0\x0d\xfe\xed" + blob(f"{spec.kernel} {dtb}", 1020)
    for name in OVERLAYS:
        files[f"overlays/{name}"] = b"\xd0\x0d\xfe\xed" + blob(f"{spec.kernel} {name}", 252)
    files["overlays/README"] = b"Device Tree overlays: see the Raspberry Pi documentation.\n"
    files[DEMO_MARKER] = texts.DEMO_NOTE.encode()
    return files


def _mydata(spec: ReleaseSpec) -> bytes:
    raw = io.BytesIO()
    with (
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.GNU_FORMAT) as tar,
    ):
        for name, data, uid, gid in (
            ("opt/bootlocal.sh", texts.BOOTLOCAL.encode(), 0, STAFF_GID),
            ("home/tc/.ash_history", b"tce-load -wi nano\n", TC_UID, STAFF_GID),
        ):
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.uid, info.gid = len(data), spec.epoch, uid, gid
            info.mode = 0o775 if name.endswith(".sh") else 0o600
            tar.addfile(info, io.BytesIO(data))
    return raw.getvalue()


def _tce_tree(
    spec: ReleaseSpec, dest: Path, repo_dir: Path, repo: Mapping[str, BuiltPackage]
) -> list[str]:
    """Fill ``dest`` with p2's tce/ tree; returns its paths (dirs with a trailing slash)."""
    optional = dest / "tce" / "optional"
    optional.mkdir(parents=True)
    (dest / "tce" / "onboot.lst").write_text("openssh.tcz\n")
    (dest / "tce" / "mydata.tgz").write_bytes(_mydata(spec))
    for name in ("openssh.tcz", "openssl.tcz"):
        for extra in ("", ".md5.txt", ".dep"):
            src = repo_dir / f"{name}{extra}"
            if src.exists():
                shutil.copyfile(src, optional / src.name)
    assert "openssh.tcz" in repo
    paths = []
    for dirpath, dirnames, filenames in os.walk(dest):
        rel = Path(dirpath).relative_to(dest)
        dirnames.sort()
        if str(rel) != ".":
            paths.append(f"{rel}/")
            os.chmod(dirpath, 0o775)
        for fn in sorted(filenames):
            os.chmod(Path(dirpath) / fn, 0o664)
            paths.append(str(rel / fn) if str(rel) != "." else fn)
    return paths


def _touch_tree(root: Path, epoch: int) -> None:
    for dirpath, dirnames, filenames in os.walk(root, topdown=False):
        for name in filenames + dirnames:
            os.utime(Path(dirpath) / name, (epoch, epoch), follow_symlinks=False)
    os.utime(root, (epoch, epoch))


def _ext4(spec: ReleaseSpec, src: Path, out: Path, entries: list[str]) -> None:
    env = {"E2FSPROGS_FAKE_TIME": str(spec.epoch), "SOURCE_DATE_EPOCH": str(spec.epoch)}
    uuid = hashlib.md5(f"{spec.filename} p2".encode()).hexdigest()
    uuid = f"{uuid[:8]}-{uuid[8:12]}-{uuid[12:16]}-{uuid[16:20]}-{uuid[20:32]}"
    size_k = spec.tce_sectors * SECTOR // 1024
    proc.run(
        "mke2fs", "-q", "-F", "-t", "ext4", "-L", "TCE", "-U", uuid,
        "-E", f"root_owner=0:0,hash_seed={uuid}", "-d", src, out, f"{size_k}k", env=env,
    )  # fmt: skip
    # tce/ belongs to tc:staff (piCorePlayer's builder: chown 1001.50); -d copies the builder's
    # uid, and e2fsprogs 1.47.0 stamps ctime with the real clock: fix both inode by inode.
    cmds = []
    for p in entries:
        cmds += [f"sif /{p.rstrip('/')} uid {TC_UID}", f"sif /{p.rstrip('/')} gid {STAFF_GID}"]
    for ino in range(1, 12 + len(entries) + 1):
        for field in ("atime", "ctime", "mtime", "crtime"):
            cmds.append(f"sif <{ino}> {field} @{spec.epoch}")
    script = out.with_suffix(".debugfs")
    script.write_text("\n".join(cmds) + "\n")
    proc.run("debugfs", "-w", "-f", script, out, env=env)


def build_release(
    spec: ReleaseSpec,
    mirror: Path,
    work: Path,
    repo: Mapping[str, BuiltPackage],
) -> BuiltRelease:
    """Build ``spec``'s release file under ``mirror`` (its repo must be built already)."""
    from steps.picore.configtxt import (
        ConfigTxt,  # the factory checks its own config with the parser
    )

    work.mkdir(parents=True)
    env = {"SOURCE_DATE_EPOCH": str(spec.epoch)}
    boot = work / "boot"
    files = boot_partition_files(spec)
    for rel, data in files.items():
        target = boot / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    _touch_tree(boot, spec.epoch)

    p2_dir = work / "p2"
    p2_dir.mkdir()
    tce_entries = _tce_tree(spec, p2_dir, mirror / spec.repo, repo)
    _touch_tree(p2_dir, spec.epoch)
    p2_img = work / "p2.ext4"
    _ext4(spec, p2_dir, p2_img, tce_entries)

    p2_start = P1_START + spec.boot_sectors
    parts = (
        Partition(1, 0x0C, P1_START, spec.boot_sectors),
        Partition(2, 0x83, p2_start, spec.tce_sectors),
    )
    img = work / spec.image_name
    with open(img, "wb") as fh:
        fh.truncate((p2_start + spec.tce_sectors) * SECTOR)
    disk_id = hashlib.md5(spec.image_name.encode()).hexdigest()[:8]
    table = f"label: dos\nlabel-id: 0x{disk_id}\nunit: sectors\n" + "".join(
        f"start={p.start}, size={p.sectors}, type={p.type:x}\n" for p in parts
    )
    proc.run("sfdisk", "--quiet", "--no-reread", "--no-tell-kernel", img, stdin=table)
    p1 = f"{img}@@{P1_START * SECTOR}"
    fat = ["-F", "-c", "1"] if spec.fat32 else ["-c", "1"]
    proc.run(
        "mformat", "-i", p1, *fat, "-v", "PICORE", "-N", disk_id, "-T",
        str(spec.boot_sectors), "-h", "64", "-s", "32", "-H", str(P1_START), "::", env=env,
    )  # fmt: skip
    top = sorted(str(p) for p in boot.iterdir())
    proc.run("mcopy", "-i", p1, "-s", "-p", "-m", "-Q", *top, "::/", env=env)
    with open(img, "r+b") as dst, open(p2_img, "rb") as src:
        dst.seek(p2_start * SECTOR)
        shutil.copyfileobj(src, dst, _CHUNK)

    image_md5 = _digest(img, "md5")
    out = mirror / spec.path
    out.parent.mkdir(parents=True, exist_ok=True)
    if spec.layout == "zip":
        _zip(spec, img, image_md5, out)
    else:
        with (
            open(img, "rb") as src,
            open(out, "wb") as raw,
            gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=6) as gz,
        ):
            shutil.copyfileobj(src, gz, _CHUNK)
    release_md5 = _digest(out, "md5")
    if spec.publish_md5:
        (out.parent / f"{out.name}.md5.txt").write_text(f"{release_md5}  {out.name}\n")
    aliases = []
    for arch in spec.aliases:
        alias = spec.path.replace(f"/{spec.arch}/", f"/{arch}/", 1)
        (mirror / alias).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(out, mirror / alias)
        if spec.publish_md5:
            shutil.copyfile(out.parent / f"{out.name}.md5.txt", mirror / f"{alias}.md5.txt")
        aliases.append(alias)

    config = ConfigTxt.parse(texts.config_txt(spec))
    return BuiltRelease(
        spec=spec,
        path=spec.path,
        aliases=tuple(aliases),
        size=out.stat().st_size,
        md5=release_md5,
        sha256=_digest(out, "sha256"),
        image_name=spec.image_name,
        image_md5=image_md5,
        image_size=img.stat().st_size,
        partitions=parts,
        boot_files={rel: hashlib.sha256(data).hexdigest() for rel, data in sorted(files.items())},
        tce_files=tuple(tce_entries),
        config_txt=texts.config_txt(spec),
        cmdline_txt=texts.cmdline_txt(spec),
        kernels={b: config.boot_for(b).kernel_release for b in spec.boards},
    )


def _zip(spec: ReleaseSpec, img: Path, image_md5: str, out: Path) -> None:
    stamp = time.gmtime(spec.epoch)[:6]

    def info(name: str, mode: int = 0o644) -> zipfile.ZipInfo:
        zi = zipfile.ZipInfo(name, date_time=stamp)
        zi.compress_type = zipfile.ZIP_DEFLATED
        zi.create_system = 3
        zi.external_attr = (0o100000 | mode) << 16
        return zi

    with zipfile.ZipFile(out, "w") as zf:
        with open(img, "rb") as src, zf.open(info(img.name), "w") as dst:
            shutil.copyfileobj(src, dst, _CHUNK)
        zf.writestr(info(f"{img.name}.md5.txt"), f"{image_md5}  {img.name}\n")
        zf.writestr(info("README"), texts.release_readme(spec))


def _digest(path: Path, algo: str) -> str:
    h = hashlib.new(algo)
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()
