"""newc ("070701") cpio archives: a deterministic writer and a streaming reader.

The Linux kernel unpacks an initramfs entry by entry and applies each directory entry's mode and
owner even when the directory already exists (init/initramfs.c ``do_name``). So the writer never
emits ``.``, emits each directory before its contents, sets every owner explicitly, uses nlink 1
(nlink ≥ 2 makes the kernel try hard-link matching) and takes fixed mtimes: identical inputs give
identical bytes. The reader walks an archive (rootfs-*.gz) without extracting it, to learn the
modes and owners of existing directories and read single files such as /opt/bootlocal.sh.
"""

from __future__ import annotations

import gzip
import io
import stat
import struct
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

MAGIC = b"070701"
TRAILER = "TRAILER!!!"
_HEADER_LEN = 110


@dataclass(frozen=True)
class Entry:
    """One archive member. ``data`` holds file contents or, for a symlink, the target."""

    name: str
    mode: int
    uid: int = 0
    gid: int = 0
    mtime: int = 0
    data: bytes = b""

    @property
    def is_dir(self) -> bool:
        return stat.S_ISDIR(self.mode)

    @property
    def is_file(self) -> bool:
        return stat.S_ISREG(self.mode)

    @property
    def is_symlink(self) -> bool:
        return stat.S_ISLNK(self.mode)


def directory(name: str, perm: int = 0o755, uid: int = 0, gid: int = 0, mtime: int = 0) -> Entry:
    """A directory entry with permission bits ``perm``."""
    return Entry(name, stat.S_IFDIR | perm, uid, gid, mtime)


def regular(
    name: str, data: bytes, perm: int = 0o644, uid: int = 0, gid: int = 0, mtime: int = 0
) -> Entry:
    """A regular-file entry."""
    return Entry(name, stat.S_IFREG | perm, uid, gid, mtime, data)


def symlink(name: str, target: str, uid: int = 0, gid: int = 0, mtime: int = 0) -> Entry:
    """A symbolic-link entry."""
    return Entry(name, stat.S_IFLNK | 0o777, uid, gid, mtime, target.encode())


def _pad4(n: int) -> bytes:
    return b"\0" * (-n % 4)


def _header(ino: int, e: Entry, namesize: int) -> bytes:
    fields = (ino, e.mode, e.uid, e.gid, 1, e.mtime, len(e.data), 0, 0, 0, 0, namesize, 0)
    return MAGIC + b"".join(b"%08X" % f for f in fields)


def normalise(name: str) -> str:
    """Archive name without a leading ``./`` or ``/``; refuses ``.``, ``..`` and empty names."""
    clean = name.lstrip("/")
    while clean.startswith("./"):
        clean = clean[2:]
    parts = clean.split("/")
    if not clean or any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"bad archive member name {name!r}")
    return clean


def write(entries: Iterable[Entry], out: BinaryIO) -> int:
    """Write ``entries`` in the given order as a newc archive; returns the bytes written.

    Names must already be normalised and parents must come first (``sort_entries`` does both).
    """
    written = 0
    for ino, e in enumerate(entries, start=1):
        name = e.name.encode() + b"\0"
        head = _header(ino, e, len(name))
        chunk = head + name + _pad4(_HEADER_LEN + len(name)) + e.data + _pad4(len(e.data))
        out.write(chunk)
        written += len(chunk)
    end = Entry(TRAILER, 0)
    name = TRAILER.encode() + b"\0"
    chunk = _header(0, end, len(name)) + name + _pad4(_HEADER_LEN + len(name))
    out.write(chunk)
    written += len(chunk)
    return written


def sort_entries(entries: Iterable[Entry]) -> list[Entry]:
    """Entries sorted by path components, so every directory precedes its contents.

    Raises:
        ValueError: a duplicate name, or a member whose parent directory is missing.
    """
    by_name: dict[str, Entry] = {}
    for e in entries:
        name = normalise(e.name)
        if name in by_name:
            raise ValueError(f"duplicate archive member {name!r}")
        by_name[name] = Entry(name, e.mode, e.uid, e.gid, e.mtime, e.data)
    ordered = [by_name[n] for n in sorted(by_name, key=lambda n: n.split("/"))]
    for e in ordered:
        parent = e.name.rpartition("/")[0]
        if parent and not (parent in by_name and by_name[parent].is_dir):
            raise ValueError(f"{e.name!r} has no parent directory entry {parent!r}")
    return ordered


def gzip_bytes(raw: bytes, level: int = 9) -> bytes:
    """gzip without file name or timestamp (``gzip -n``): same input → same bytes."""
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, compresslevel=level, mtime=0) as gz:
        gz.write(raw)
    return buf.getvalue()


class LevelledGzip:
    """A gzip writer whose deflate level can change between writes (``level``), still one member.

    Each level gets its own raw deflate stream; a stream is ended with a sync flush (byte
    aligned, not the final block) before the next begins, which is valid deflate — pigz joins
    independently compressed blocks the same way — and the gzip trailer holds the CRC-32 and
    size of everything. Header as ``gzip -n`` writes it (no name, mtime 0): same input, same
    bytes.
    """

    def __init__(self, out: BinaryIO, level: int) -> None:
        self._out = out
        self.level = level
        self._deflate: Any = None
        self._deflate_level = -1
        self._crc = 0
        self._size = 0
        out.write(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff")

    def write(self, data: bytes) -> int:
        """Deflate ``data`` at the current level."""
        if self._deflate is None or self._deflate_level != self.level:
            if self._deflate is not None:
                self._out.write(self._deflate.flush(zlib.Z_SYNC_FLUSH))
            self._deflate = zlib.compressobj(self.level, zlib.DEFLATED, -zlib.MAX_WBITS)
            self._deflate_level = self.level
        self._out.write(self._deflate.compress(data))
        self._crc = zlib.crc32(data, self._crc)
        self._size += len(data)
        return len(data)

    def close(self) -> None:
        """Finish the deflate data and write the trailer (the output is left open)."""
        if self._deflate is None:
            self.write(b"")
        self._out.write(self._deflate.flush(zlib.Z_FINISH))
        self._out.write(struct.pack("<II", self._crc, self._size & 0xFFFFFFFF))


def read(stream: BinaryIO) -> Iterator[Entry]:
    """Iterate the members of an uncompressed newc archive (stops at the trailer).

    Raises:
        ValueError: the data is not a newc archive.
    """
    while True:
        head = _read_exact(stream, _HEADER_LEN)
        if head is None:
            return
        if head[:6] not in (b"070701", b"070702"):
            raise ValueError("not a newc cpio archive (bad magic)")
        f = [int(head[6 + 8 * i : 14 + 8 * i], 16) for i in range(13)]
        mode, uid, gid, mtime, size, namesize = f[1], f[2], f[3], f[5], f[6], f[11]
        raw_name = _need(stream, namesize + len(_pad4(_HEADER_LEN + namesize)))
        name = raw_name[: namesize - 1].decode("utf-8", "surrogateescape")
        if name == TRAILER:
            return
        data = _need(stream, size + len(_pad4(size)))[:size]
        yield Entry(name.removeprefix("./"), mode, uid, gid, mtime, data)


def read_gz(path: str) -> Iterator[Entry]:
    """Iterate the members of a gzip-compressed newc archive (rootfs-*.gz, overlay.gz)."""
    with gzip.open(path, "rb") as fh:
        yield from read(fh)  # type: ignore[arg-type]


def _read_exact(stream: BinaryIO, n: int) -> bytes | None:
    data = stream.read(n)
    while data and len(data) < n:
        more = stream.read(n - len(data))
        if not more:
            break
        data += more
    if not data or (data.strip(b"\0") == b"" and len(data) < n):
        return None
    if len(data) < n:
        raise ValueError("truncated cpio archive")
    return data


def _need(stream: BinaryIO, n: int) -> bytes:
    data = _read_exact(stream, n) if n else b""
    if data is None or len(data) < n:
        raise ValueError("truncated cpio archive")
    return data
