"""Writing a boot card image: an MBR and one FAT32 partition holding a set of files, rootless.

Used for the SD image of the built system (``build.sd_image``) and for the cards ``prepare``
makes (the Pi 3B OTP card, the Pi 4/5 EEPROM recovery card). No mounts and no loop devices:
``sfdisk`` writes the partition table into a sparse file, ``mformat`` makes a FAT32 file system
at the partition's byte offset and ``mcopy`` copies the files in, one call per directory batch.

Deterministic: the caller gives the disk identifier (MBR) and the FAT volume serial, and every
timestamp on the card is ``mtime`` — mtools honours ``SOURCE_DATE_EPOCH`` for the entries it
creates (checked with mtools 4.0.32: two runs seconds apart give identical bytes), and files are
copied without ``-m`` so their build-host mtimes never leak in. Same files, same mtools version
→ same bytes. The image is built under a temporary name beside ``dest`` and renamed into place
only when complete, so a failure or Ctrl-C leaves no partial image.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import threading
from collections.abc import Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from steps import proc
from steps.errors import CommandError, StepError
from steps.events import Event, LogLine, Progress
from steps.fsutil import atomic_write, disk_error, sha256_file
from steps.picore.overlay import json_bytes

SECTOR = 512
#: First sector of the partition: 4 MiB, where piCore and Raspberry Pi OS images start theirs.
START_SECTOR = 8192
#: FAT32 needs at least 65525 clusters (Microsoft's FAT specification); keep a margin.
_MIN_CLUSTERS = 66_000
_MIN_PARTITION = 64 << 20
_MIB = 1 << 20
#: mcopy batches of at most this many bytes, so progress moves during big directories.
_BATCH = 16 << 20
#: FAT32 LBA (MBR partition type 0x0c), as on piCore's and Raspberry Pi OS's boot partitions.
FAT32_LBA = "c"


@dataclass(frozen=True)
class CardFile:
    """One file to put on the card: copied from ``source`` or written from ``data``."""

    path: str
    """Relative POSIX path on the card, e.g. "overlays/w1-gpio.dtbo"."""
    source: Path | None = None
    data: bytes | None = None

    @property
    def size(self) -> int:
        if self.data is not None:
            return len(self.data)
        assert self.source is not None
        return self.source.stat().st_size


@dataclass(frozen=True)
class CardImage:
    """A finished card image."""

    path: Path
    sha256: str
    size: int
    """Bytes of the image file (the whole card: table, gap and partition)."""
    partition_offset: int
    """Byte offset of the FAT32 partition (mtools: ``IMAGE@@OFFSET``)."""
    files: int

    def to_data(self) -> dict[str, Any]:
        """JSON-able form (manifests, ``Result.data``)."""
        return {
            "file": self.path.name,
            "path": str(self.path),
            "sha256": self.sha256,
            "size": self.size,
            "partition_offset": self.partition_offset,
            "files": self.files,
        }


def image_name(build_id: str) -> str:
    """The SD image of a build: ``firecore-<build id>.img``, beside the boot tree."""
    return f"firecore-{build_id}.img"


def is_image_name(name: str) -> bool:
    """True for a name ``image_name`` makes (so only our own images are ever removed)."""
    return bool(re.fullmatch(r"firecore-[0-9a-f]{12}\.img", name))


def geometry(sizes: Iterable[int], count_dirs: int = 0) -> tuple[int, int]:
    """(partition sectors, sectors per cluster) for files of these sizes.

    Clusters are as small as FAT32 allows for the size (512 B on a 64 MiB card, at most 4 KiB):
    little slack per file, and within the cluster sizes the Pi's ROM reads (recovery.bin had
    trouble with 32 KiB clusters before 2021, rpi-eeprom release notes 2021-09-22). The
    partition is the payload rounded up per cluster, plus a quarter and 16 MiB for the FATs
    and directories, at least 64 MiB, in whole MiB.
    """
    sizes = list(sizes)
    payload = sum(sizes)
    for spc in (8, 4, 2, 1):
        cluster = spc * SECTOR
        used = sum(-(-s // cluster) * cluster for s in sizes) + (count_dirs + 1) * cluster
        part = max(_MIN_PARTITION, used + used // 4 + (16 << 20))
        part = -(-part // _MIB) * _MIB
        if part // cluster >= _MIN_CLUSTERS:
            return part // SECTOR, spc
    raise AssertionError(f"no FAT32 geometry for {payload} bytes")  # pragma: no cover


def _check_paths(files: Sequence[CardFile], dirs: Iterable[str]) -> tuple[list[str], list[str]]:
    """Sorted file paths and every directory they need; refuse names FAT would merge."""
    paths: list[str] = []
    folded: dict[str, str] = {}
    wanted_dirs: set[str] = set()
    for item in [*(f.path for f in files), *dirs]:
        pure = PurePosixPath(item)
        if pure.is_absolute() or ".." in pure.parts or not pure.parts:
            raise StepError(f"{item!r} is not a relative path for the card")
    for f in files:
        key = f.path.lower()
        if key in folded:
            raise StepError(
                f"{folded[key]} and {f.path} are the same name on FAT (case-insensitive)",
                fix="rename one of them",
            )
        folded[key] = f.path
        paths.append(f.path)
        parent = PurePosixPath(f.path).parent
        while str(parent) != ".":
            wanted_dirs.add(str(parent))
            parent = parent.parent
    for d in dirs:
        pure = PurePosixPath(d)
        while str(pure) != ".":
            wanted_dirs.add(str(pure))
            pure = pure.parent
    return sorted(paths), sorted(wanted_dirs, key=lambda d: (d.count("/"), d))


def write_card(
    step: str,
    files: Sequence[CardFile],
    dest: Path,
    *,
    label: str,
    serial: int,
    mtime: int,
    dirs: Iterable[str] = (),
    cancel: threading.Event | None = None,
) -> Generator[Event, None, CardImage]:
    """Write ``files`` (and the empty ``dirs``) to a new card image at ``dest``.

    Yields ``Progress(step, "image", …)`` in bytes; returns the ``CardImage``.

    Args:
        step: the step name for the events.
        files: what goes on the card; paths must be distinct on FAT (case-insensitive).
        dest: the image file; replaced atomically.
        label: FAT volume label (≤ 11 characters).
        serial: 32-bit FAT volume serial, also the MBR disk identifier.
        mtime: the one timestamp on the card (seconds since the epoch).
        dirs: directories to create even when empty (e.g. "overlays").
        cancel: stops between mtools calls; nothing is left behind.

    Raises:
        StepError: a bad path or a name clash; the disk is full.
        CommandError: sfdisk or mtools failed (named, with stderr).
        Cancelled: ``cancel`` was set.
    """
    by_path = {f.path: f for f in files}
    paths, all_dirs = _check_paths(files, dirs)
    sizes = {p: by_path[p].size for p in paths}
    sectors, spc = geometry(sizes.values(), len(all_dirs))
    offset = START_SECTOR * SECTOR
    total = sum(sizes.values())
    env = {"SOURCE_DATE_EPOCH": str(mtime), "MTOOLS_SKIP_CHECK": "1"}
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f".{dest.name}.staging-", dir=dest.parent))
    except OSError as exc:
        raise disk_error(dest, exc) from None
    try:
        image = work / "card.img"
        with open(image, "wb") as fh:
            fh.truncate((START_SECTOR + sectors) * SECTOR)
        table = (
            f"label: dos\nlabel-id: 0x{serial & 0xFFFFFFFF:08x}\nunit: sectors\n\n"
            f"start={START_SECTOR}, size={sectors}, type={FAT32_LBA}\n"
        )
        proc.run("sfdisk", "--quiet", "--no-reread", "--no-tell-kernel", image, stdin=table,
                 cancel=cancel)  # fmt: skip
        target = f"{image}@@{offset}"
        proc.run(
            "mformat", "-i", target, "-F", "-v", label[:11], "-N", f"{serial & 0xFFFFFFFF:08x}",
            "-T", str(sectors), "-h", "64", "-s", "32", "-H", str(START_SECTOR), "-c", str(spc),
            "::", env=env, cancel=cancel,
        )  # fmt: skip
        for d in all_dirs:
            proc.run("mmd", "-i", target, f"::/{d}", env=env, cancel=cancel)
        done = 0
        yield Progress(step, "image", 0, total, "bytes", dest.name)
        for directory, batch in _batches(paths, sizes):
            sources = [_source(work, by_path[p]) for p in batch]
            where = "::/" if directory == "." else f"::/{directory}/"
            try:
                proc.run("mcopy", "-i", target, *sources, where, env=env, cancel=cancel)
            except CommandError as exc:
                if "full" in exc.stderr.lower():
                    raise StepError(
                        f"the card image ran out of room while copying into {where}",
                        fix="report this: the image size is computed from the files",
                        details=exc.stderr,
                    ) from None
                raise
            done += sum(sizes[p] for p in batch)
            yield Progress(step, "image", done, total, "bytes", directory)
        with open(image, "rb+") as fh:
            os.fsync(fh.fileno())
        digest = sha256_file(image, cancel=cancel)
        size = image.stat().st_size
        os.replace(image, dest)
    except OSError as exc:
        raise disk_error(exc.filename or dest, exc) from None
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return CardImage(dest, digest, size, offset, len(paths))


def _batches(paths: list[str], sizes: Mapping[str, int]) -> Iterable[tuple[str, list[str]]]:
    """(directory, paths) groups in path order, each at most ``_BATCH`` bytes (or one file)."""
    groups: dict[str, list[str]] = {}
    for p in paths:
        groups.setdefault(str(PurePosixPath(p).parent), []).append(p)
    for directory in sorted(groups, key=lambda d: (d != ".", d)):
        batch: list[str] = []
        nbytes = 0
        for p in groups[directory]:
            if batch and nbytes + sizes[p] > _BATCH:
                yield directory, batch
                batch, nbytes = [], 0
            batch.append(p)
            nbytes += sizes[p]
        if batch:
            yield directory, batch


def _source(work: Path, item: CardFile) -> str:
    """A host path whose file name is the card name (mcopy keeps the source's name)."""
    name = PurePosixPath(item.path).name
    if item.source is not None and item.source.name == name:
        return str(item.source)
    staged = work / "files" / item.path
    staged.parent.mkdir(parents=True, exist_ok=True)
    if item.data is not None:
        staged.write_bytes(item.data)
    else:
        assert item.source is not None
        shutil.copyfile(item.source, staged)
    return str(staged)


# ---------------------------------------------------------------------- the built tree as a card

#: The remaster step's manifest (the keys read here: files, build_id, built, sd_image).
MANIFEST = "manifest.json"


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _intact(path: Path, size: int, sha256: str) -> bool:
    try:
        return path.is_file() and path.stat().st_size == size and sha256_file(path) == sha256
    except OSError:
        return False


def tree_image(
    step: str,
    tree: Path,
    *,
    previous: str = "",
    cancel: threading.Event | None = None,
) -> Generator[Event, None, Path]:
    """The built boot tree as an SD-card image beside it, recorded in the tree's manifest.

    The image holds every file the manifest lists (not manifest.json itself, which records the
    image), with the build's own timestamp (``built``) and the build id as disk identifier and
    volume serial: the same build gives the same bytes. An image the manifest already records
    and that is intact is kept. The manifest names the image only once it is complete; the
    previous build's image (``previous``, or the one the manifest recorded) is removed only
    then, and only if it has a name this module makes.

    Raises:
        StepError: ``tree`` holds no build (no manifest); writing failed.
    """
    manifest = _read_json(tree / MANIFEST)
    if manifest is None or "build_id" not in manifest or "files" not in manifest:
        raise StepError(
            f"{tree} holds no finished build (no {MANIFEST})",
            fix="build first: firecore-wizard --answers FILE (or the wizard's Build screen)",
        )
    build_id = str(manifest["build_id"])
    dest = tree.parent / image_name(build_id)
    recorded = manifest.get("sd_image") or {}
    if recorded.get("file") == dest.name and _intact(
        dest, int(recorded.get("size", -1)), str(recorded.get("sha256"))
    ):
        yield LogLine(step, f"SD image {dest} is up to date")
        return dest
    files = [CardFile(rel, source=tree / rel) for rel in sorted(manifest["files"])]
    dirs = sorted(
        p.relative_to(tree).as_posix() for p in tree.rglob("*") if p.is_dir() and not p.is_symlink()
    )
    card = yield from write_card(
        step,
        files,
        dest,
        label="FIRECORE",
        serial=int(build_id[:8], 16),
        mtime=int(manifest.get("built", 0)),
        dirs=dirs,
        cancel=cancel,
    )
    manifest["sd_image"] = {
        "file": dest.name,
        "sha256": card.sha256,
        "size": card.size,
        "partition_offset": card.partition_offset,
    }
    try:
        atomic_write(tree / MANIFEST, json_bytes(manifest))
    except OSError as exc:
        raise disk_error(tree / MANIFEST, exc) from None
    old = previous or str(recorded.get("file", ""))
    if old and old != dest.name and is_image_name(old):
        (tree.parent / old).unlink(missing_ok=True)
    yield LogLine(step, f"SD image {dest} ({card.size / 1e6:.0f} MB, sha256 {card.sha256})")
    return dest
