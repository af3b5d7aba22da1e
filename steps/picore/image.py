"""Reading a piCore release without root, mounts or loop devices.

A release is a ``.zip`` holding ``<name>.img`` and ``<name>.img.md5.txt`` (≤ 15.x), a gzipped raw
image ``.img.gz`` (16.x), or a plain ``.img``. The image is streamed out to a temporary file
while its md5 is computed (never read whole into memory) and checked against the md5 file in
the zip. The MBR partition table is parsed here with ``struct`` — sizes and offsets are read,
never assumed — and the FAT boot partition is copied out with mtools (``mcopy -s`` at the
partition's byte offset), keeping the names exactly as they are on the partition.

``unpack_boot`` is the cached entry point used by the release step (to read config.txt) and the
remaster step (to copy every boot file byte-identically): it extracts once into
``<cache>/boot/<sha256 of the release file>/p1`` through a staging directory that is renamed
into place only when complete, so a second call — or a crash halfway — never sees a partial
tree. It is a generator that yields ``Progress`` events and returns the ``BootTree``::

    tree = yield from unpack_boot("release", release_file, cache_root, ctx.cancel)
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import os
import queue
import shutil
import stat
import struct
import tempfile
import threading
import zlib
from collections.abc import Generator, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Protocol

from steps import proc
from steps.errors import Cancelled, ChecksumError, CommandError, RemasterError
from steps.events import Progress, drive
from steps.fsutil import disk_error, sha256_file
from steps.paths import DEMO_MARKER
from steps.picore.configtxt import Cmdline, ConfigTxt

if TYPE_CHECKING:
    import zipfile

SECTOR = 512
#: MBR partition types of FAT file systems (FAT12, FAT16 < 32M, FAT16, FAT32 CHS/LBA, FAT16 LBA).
FAT_TYPES = frozenset({0x01, 0x04, 0x06, 0x0B, 0x0C, 0x0E})
_CHUNK = 1 << 20
#: Chunks the reading thread may run ahead of the hashing and writing one.
_AHEAD = 8
#: Granularity of the holes left for runs of zeros in an extracted image.
_SPARSE = 1 << 16
_ZEROS = bytes(_SPARSE)
_PROGRESS_EVERY = 8 << 20
#: Bump when the cache layout changes (older entries are then re-extracted).
_CACHE_FORMAT = 2


@dataclass(frozen=True)
class Partition:
    """One primary MBR partition."""

    number: int
    type: int
    start: int
    """First sector (512 bytes each)."""
    sectors: int
    bootable: bool = False

    @property
    def offset(self) -> int:
        return self.start * SECTOR

    @property
    def size(self) -> int:
        return self.sectors * SECTOR

    @property
    def is_fat(self) -> bool:
        return self.type in FAT_TYPES


@dataclass(frozen=True)
class BootTree:
    """The extracted boot partition of a release (shared, read-only: copy, never modify)."""

    path: Path
    """Directory holding the boot partition's files, names as on the partition."""
    image_name: str
    """The raw image's name ("piCore-15.0.0.img")."""
    image_md5: str
    """md5 of the raw image (computed while streaming it out)."""
    image_md5_verified: bool
    """True when the release carried an ``<img>.md5.txt`` and it matched."""
    partitions: tuple[Partition, ...]
    files: tuple[str, ...]
    """Every file below ``path`` as a relative POSIX path, sorted."""
    release_sha256: str = ""
    sums: Mapping[str, tuple[int, str]] = field(default_factory=dict)
    """(size, sha256) of every file as extracted: what a reader checks the copy against."""

    def find(self, name: str) -> Path | None:
        """The file called ``name`` (a relative path), matched case-insensitively like FAT."""
        exact = self.path / name
        if name in self.files:
            return exact
        low = name.lower().strip("/")
        for rel in self.files:
            if rel.lower() == low:
                return self.path / rel
        return None

    def read(self, name: str) -> bytes:
        """Bytes of ``name`` (case-insensitive).

        Raises:
            RemasterError: the boot partition has no such file.
        """
        found = self.find(name)
        if found is None:
            raise RemasterError(
                f"{self.image_name}: the boot partition has no {name}",
                fix="is this a piCore release? Choose another release or download it again",
            )
        return found.read_bytes()

    def config_txt(self) -> ConfigTxt:
        """The boot partition's config.txt as a model."""
        return ConfigTxt.from_bytes(self.read("config.txt"), f"{self.image_name}:config.txt")

    def cmdline(self, name: str = "cmdline.txt") -> Cmdline:
        return Cmdline.from_bytes(self.read(name))

    @property
    def demo(self) -> bool:
        """Built by firecore's demo factory (its marker file is on the partition)."""
        return self.find(DEMO_MARKER) is not None

    @property
    def fat(self) -> Partition:
        """The boot (first FAT) partition."""
        return fat_partition(self.partitions, self.image_name)

    @property
    def bytes(self) -> int:
        """Total size of the files."""
        return sum((self.path / f).stat().st_size for f in self.files)


# ---------------------------------------------------------------------- partition table


def parse_mbr(sector0: bytes, image_size: int, name: str) -> tuple[Partition, ...]:
    """The primary partitions of an MBR (empty slots skipped).

    Raises:
        RemasterError: no MBR signature, a GPT disk, or a partition past the end of the image.
    """
    fix = "download the release again (or pick another); this file is not a piCore image"
    if len(sector0) < SECTOR or image_size < SECTOR:
        raise RemasterError(
            f"{name}: {image_size} bytes is too small to hold a partition table", fix=fix
        )
    if sector0[510:512] != b"\x55\xaa":
        raise RemasterError(
            f"{name}: no partition table (no MBR signature 55 AA at byte 510)", fix=fix
        )
    parts: list[Partition] = []
    for i in range(4):
        entry = sector0[446 + 16 * i : 446 + 16 * (i + 1)]
        status, ptype, start, sectors = entry[0], entry[4], *struct.unpack("<II", entry[8:16])
        if ptype == 0 or sectors == 0:
            continue
        if ptype == 0xEE:
            raise RemasterError(
                f"{name}: has a GPT partition table; piCore images use MBR", fix=fix
            )
        parts.append(Partition(i + 1, ptype, start, sectors, status == 0x80))
    if not parts:
        raise RemasterError(f"{name}: the partition table is empty", fix=fix)
    for p in parts:
        end = (p.start + p.sectors) * SECTOR
        if end > image_size:
            raise RemasterError(
                f"{name}: truncated image: partition {p.number} ends at byte {end} but the "
                f"image has only {image_size} bytes",
                fix="the download was cut short; delete it from the cache and download again",
            )
    return tuple(parts)


def read_partitions(image: Path, label: str = "") -> tuple[Partition, ...]:
    """Partition table of a raw image file (``label`` names it in errors; default its name)."""
    size = image.stat().st_size
    with open(image, "rb") as fh:
        sector0 = fh.read(SECTOR)
    return parse_mbr(sector0, size, label or image.name)


def fat_partition(parts: tuple[Partition, ...], name: str) -> Partition:
    """The first FAT partition (piCore's boot partition).

    Raises:
        RemasterError: there is none.
    """
    for p in parts:
        if p.is_fat:
            return p
    types = ", ".join(f"p{p.number}: 0x{p.type:02x}" for p in parts)
    raise RemasterError(
        f"{name}: no FAT boot partition (partition types {types}; FAT is 0x0b/0x0c/0x0e/0x06)",
        fix="this is not a Raspberry Pi boot image; choose a piCore release",
    )


# ---------------------------------------------------------------------- streaming the image


class _Reader(Protocol):
    def read(self, size: int = ..., /) -> bytes: ...


def _check(cancel: threading.Event | None) -> None:
    if cancel is not None and cancel.is_set():
        raise Cancelled()


def _chunks(src: _Reader, cancel: threading.Event | None) -> Iterator[bytes]:
    """``src`` read in chunks by a helper thread, a few chunks ahead of the consumer.

    Decompressing (zip, gzip) and hashing + writing both release the GIL for large buffers, so
    the two halves of an extraction run on two cores at once. Closing the iterator (the
    consumer stopped: cancel, error) stops the helper within a chunk.
    """
    ahead: queue.Queue[bytes | BaseException | None] = queue.Queue(maxsize=_AHEAD)
    stop = threading.Event()

    def put(item: bytes | BaseException | None) -> bool:
        while not stop.is_set():
            with contextlib.suppress(queue.Full):
                ahead.put(item, timeout=0.1)
                return True
        return False

    def read() -> None:
        try:
            while not stop.is_set() and not (cancel is not None and cancel.is_set()):
                chunk = src.read(_CHUNK)
                if not chunk or not put(chunk):
                    break
        except BaseException as exc:  # handed to the consumer
            put(exc)
            return
        put(None)

    reader = threading.Thread(target=read, name="image-read", daemon=True)
    reader.start()
    try:
        while (item := ahead.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        reader.join()


def _copy(
    step: str,
    src: _Reader,
    dst: BinaryIO,
    total: int | None,
    label: str,
    cancel: threading.Event | None,
) -> Generator[Progress, None, str]:
    """Copy src to dst in chunks, yielding progress; returns the md5 of the bytes.

    ``dst`` is written sparse: runs of zeros (the empty space of both partitions, most of a fresh
    ext4) are skipped with a seek, so the disk sees only the data; reading the holes gives zeros.
    """
    md5 = hashlib.md5()
    done = 0
    last = 0
    yield Progress(step, "extract", 0, total, "bytes", label)
    for chunk in _chunks(src, cancel):
        _check(cancel)
        md5.update(chunk)
        for at in range(0, len(chunk), _SPARSE):
            piece = chunk[at : at + _SPARSE]
            if piece == _ZEROS[: len(piece)]:
                dst.seek(len(piece), os.SEEK_CUR)
            else:
                dst.write(piece)
        done += len(chunk)
        if done - last >= _PROGRESS_EVERY:
            last = done
            yield Progress(step, "extract", done, total, "bytes", label)
    _check(cancel)  # the reader stops early on a cancel: never take that for the end
    dst.truncate(done)  # a trailing hole still counts: the image keeps its size
    if done != last or done == 0:
        yield Progress(step, "extract", done, total if total is not None else done, "bytes", label)
    return md5.hexdigest()


def _gzip_isize(path: Path) -> int | None:
    """Uncompressed size from a gzip trailer (mod 2**32; a hint for progress only)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(-4, os.SEEK_END)
            return int(struct.unpack("<I", fh.read(4))[0])
    except OSError:
        return None


def _zip_image(release: Path, zf: zipfile.ZipFile) -> zipfile.ZipInfo:
    images = [i for i in zf.infolist() if i.filename.lower().endswith(".img")]
    if not images:
        names = ", ".join(i.filename for i in zf.infolist()) or "nothing"
        raise RemasterError(
            f"{release.name}: the zip holds no .img file (it holds {names})",
            fix="choose a piCore release zip",
        )
    want = release.name[: -len(".zip")].lower() + ".img"
    return next((i for i in images if Path(i.filename).name.lower() == want), images[0])


def _zip_md5(release: Path, zf: zipfile.ZipFile, image: zipfile.ZipInfo) -> str | None:
    want = image.filename.lower() + ".md5.txt"
    for info in zf.infolist():
        if info.filename.lower() == want:
            text = zf.read(info).decode("ascii", "replace").split()
            if not text or len(text[0]) != 32:
                raise RemasterError(
                    f"{release.name}: {info.filename} is not an md5sum line",
                    fix="download the release again",
                )
            return text[0].lower()
    return None


def extract_image(
    step: str,
    release: Path,
    dest: Path,
    cancel: threading.Event | None = None,
) -> Generator[Progress, None, tuple[str, str, bool]]:
    """Stream the raw image of ``release`` to ``dest``.

    Returns (image name, md5, verified against an md5 file in the release).

    Raises:
        ChecksumError: the md5 in the zip does not match the image.
        RemasterError: the file is not a readable zip / gzip / image (e.g. truncated).
    """
    import zipfile  # here: a cached extraction (every rerun) opens no zip

    lower = release.name.lower()
    fix = "the file is damaged or incomplete; delete it from the cache and download it again"
    try:
        if lower.endswith(".zip"):
            with zipfile.ZipFile(release) as zf:
                info = _zip_image(release, zf)
                expected = _zip_md5(release, zf, info)
                label = f"unpacking {Path(info.filename).name}"
                with zf.open(info) as src, open(dest, "wb") as dst:
                    md5 = yield from _copy(step, src, dst, info.file_size, label, cancel)
            name = Path(info.filename).name
            if expected is not None and expected != md5:
                raise ChecksumError(name, expected, md5, source=release.name)
            return name, md5, expected is not None
        if lower.endswith(".gz"):
            name = release.name[:-3]
            with gzip.open(release, "rb") as src, open(dest, "wb") as dst:
                md5 = yield from _copy(
                    step, src, dst, _gzip_isize(release), f"unpacking {name}", cancel
                )
            return name, md5, False
        with open(release, "rb") as src, open(dest, "wb") as dst:
            md5 = yield from _copy(
                step, src, dst, release.stat().st_size, f"copying {release.name}", cancel
            )
        return release.name, md5, False
    except (zipfile.BadZipFile, EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise RemasterError(f"{release.name}: cannot read it: {exc}", fix=fix) from None
    except OSError as exc:
        if exc.errno is None:  # zlib/zip errors without an errno: bad data, not the disk
            raise RemasterError(f"{release.name}: cannot read it: {exc}", fix=fix) from None
        raise disk_error(dest, exc) from None


# ---------------------------------------------------------------------- the FAT partition


def copy_fat(
    image: Path,
    part: Partition,
    dest: Path,
    cancel: threading.Event | None = None,
    label: str = "",
) -> None:
    """Copy every file of the FAT partition into ``dest`` (mtools, names kept as stored)."""
    dest.mkdir(parents=True, exist_ok=True)
    try:
        proc.run(
            "mcopy", "-s", "-n", "-m", "-i", f"{image}@@{part.offset}", "::/", f"{dest}/",
            cancel=cancel,
        )  # fmt: skip
    except CommandError as exc:
        raise RemasterError(
            f"{label or image.name}: partition {part.number} (type 0x{part.type:02x}) is not "
            f"a readable FAT file system: {exc.message}",
            fix="the image is damaged; download the release again",
            details=exc.stderr,
        ) from None


def _listing(root: Path) -> tuple[str, ...]:
    out: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        rel = Path(dirpath).relative_to(root)
        out += [(rel / f).as_posix() if str(rel) != "." else f for f in filenames]
    return tuple(sorted(out))


# ---------------------------------------------------------------------- cached entry point


def _load(entry: Path) -> BootTree | None:
    meta = entry / "boot.json"
    try:
        data = json.loads(meta.read_text())
    except (OSError, ValueError):
        return None
    try:
        if data.get("format") != _CACHE_FORMAT or not (entry / "p1").is_dir():
            return None
        sums = {str(k): (int(v[0]), str(v[1])) for k, v in data.get("sums", {}).items()}
        if sorted(sums) != sorted(data["files"]):
            return None
    except (AttributeError, KeyError, TypeError, ValueError, IndexError):
        return None
    for rel, (size, _) in sums.items():  # cheap on every reuse: a size that changed = damaged
        try:
            st = (entry / "p1" / rel).lstat()
        except OSError:
            return None
        if not stat.S_ISREG(st.st_mode) or st.st_size != size:
            return None
    return BootTree(
        path=entry / "p1",
        image_name=data["image_name"],
        image_md5=data["image_md5"],
        image_md5_verified=data["image_md5_verified"],
        partitions=tuple(Partition(**p) for p in data["partitions"]),
        files=tuple(data["files"]),
        release_sha256=data["release_sha256"],
        sums=sums,
    )


def evict(tree: BootTree) -> None:
    """Remove a cached extraction whose files failed a check (the next call re-extracts)."""
    entry = tree.path.parent
    if (entry / "boot.json").is_file() and not entry.is_symlink():
        shutil.rmtree(entry, ignore_errors=True)


def unpack_boot(
    step: str,
    release_file: Path,
    cache_root: Path,
    cancel: threading.Event | None = None,
    *,
    sha256: str | None = None,
) -> Generator[Progress, None, BootTree]:
    """The release's boot partition, extracted once into ``cache_root/boot/<sha256>/p1``.

    Yields ``Progress(step, "extract", …)`` with byte counts; returns the ``BootTree``. A second
    call for the same file returns the cached tree without reading the image. Pass ``sha256``
    when it is already known (saves one read of the file).

    Raises:
        ChecksumError: the image md5 in the zip does not match.
        RemasterError: unreadable release, no partition table, no FAT partition, truncated.
        Cancelled: ``cancel`` was set; nothing is left behind.
    """
    release_file = Path(release_file)
    if not release_file.is_file():
        raise RemasterError(
            f"release file {release_file} does not exist", fix="run the release step first"
        )
    digest = sha256 or sha256_file(release_file, cancel=cancel)
    entry = cache_root / "boot" / digest
    cached = _load(entry)
    if cached is not None:
        total = cached.bytes
        yield Progress(step, "extract", total, total, "bytes", "boot partition (cached)")
        return cached
    base = cache_root / "boot"
    try:
        base.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{digest[:16]}.staging-", dir=base))
    except OSError as exc:
        raise disk_error(base, exc) from None
    try:
        img = staging / "image.img"
        name, md5, verified = yield from extract_image(step, release_file, img, cancel)
        label = release_file.name if name == release_file.name else f"{release_file.name} ({name})"
        parts = read_partitions(img, label)
        part = fat_partition(parts, label)
        _check(cancel)
        yield Progress(step, "extract", 0, None, "bytes", "copying the boot partition")
        copy_fat(img, part, staging / "p1", cancel, label)
        img.unlink()
        files = _listing(staging / "p1")
        copied = sum((staging / "p1" / f).stat().st_size for f in files)
        yield Progress(
            step, "extract", copied, copied, "bytes", f"boot partition: {len(files)} files"
        )
        sums = {
            f: [(staging / "p1" / f).stat().st_size, sha256_file(staging / "p1" / f, cancel=cancel)]
            for f in files
        }
        meta = {
            "format": _CACHE_FORMAT,
            "sums": sums,
            "image_name": name,
            "image_md5": md5,
            "image_md5_verified": verified,
            "partitions": [asdict(p) for p in parts],
            "files": list(files),
            "release_sha256": digest,
            "release_file": release_file.name,
        }
        (staging / "boot.json").write_text(json.dumps(meta, indent=1))
        _check(cancel)
        _publish(staging, entry)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise disk_error(staging, exc) from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    tree = _load(entry)
    assert tree is not None
    return tree


def _publish(staging: Path, entry: Path) -> None:
    """Rename the finished staging dir into place; if another run won the race, keep theirs."""
    if entry.exists() and _load(entry) is None:
        shutil.rmtree(entry, ignore_errors=True)  # an older format or a damaged entry
    try:
        os.rename(staging, entry)
    except OSError:
        if _load(entry) is None:
            raise
        shutil.rmtree(staging, ignore_errors=True)


@contextlib.contextmanager
def raw_image(
    release_file: Path, workdir: Path, cancel: threading.Event | None = None
) -> Iterator[tuple[Path, str, str]]:
    """The raw image of a release in a temporary file (removed afterwards), events discarded.

    Yields (image path, image name, md5). For callers that need the whole image (p2, tests).
    """
    workdir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".image-", dir=workdir))
    try:
        img = tmp / "image.img"
        name, md5, _ = drive(extract_image("image", release_file, img, cancel))
        yield img, name, md5
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
