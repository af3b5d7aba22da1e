"""Composing overlay.gz: the extra initramfs that carries extensions, the app and boot glue.

The kernel unpacks overlay.gz after the release's rootfs and modules archives and applies every
directory entry's mode and owner even to directories that already exist. So the builder:

- never emits ``.`` and gives a directory that exists in the base archives exactly the base's
  mode/owner (``/tmp`` stays 1777, ``/opt`` root:staff …); new directories get explicit metadata;
- refuses to put a directory where the base has a file or symlink, and two different files on
  one path (unless the caller says later wins, as unpacked extensions do);
- sorts entries by path components (parents first), sets uid/gid explicitly, nlink 1 and one fixed
  mtime, and streams file contents from disk one entry at a time (memory stays flat however big
  the extensions are) into gzip without name or time: identical inputs give identical bytes.

Extensions go in the way piCore loads embedded ones (``tmp/builtin``, see ``add_builtin``) or
unpacked into the tree (``add_extracted``); the step in ``steps/remaster.py`` decides which.

Two facts of the boot shape the archive too:

- piCore's ``/init`` with ``noembed`` (every release's cmdline.txt) copies the unpacked root to a
  tmpfs with busybox ``tar -C / --exclude=mnt -cf - . | tar -C /mnt/ -xf -``
  (tinycorelinux/Core-scripts branch picore, ``init``), and busybox tar matches a pattern without
  ``/`` against every path component (``archival/tar.c`` ``exclude_file``): any path with a
  component named ``mnt`` would silently vanish, so ``Overlay(drops_mnt=True)`` refuses one.
- ``write_gz`` pads the file with zero bytes to a multiple of 4: Pi 5 bootloaders before
  2023-11-20 fail ("BOOT ERROR: code 45") on several initramfs files whose sizes are not
  multiples of 4 (rpi-eeprom firmware-2712 release notes; raspberrypi/firmware #1843), and the
  kernel skips zero bytes between archives (``init/initramfs.c`` ``unpack_to_rootfs``).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import stat
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from steps import proc
from steps.artifacts import AppBundle, Extension, ExtensionSet
from steps.errors import Cancelled, ChecksumError, RemasterError
from steps.fsutil import md5_file
from steps.picore import cpio
from steps.picore.rootfs import BOOTLOCAL, BaseRootfs

TC_UID = 1001
STAFF_GID = 50
SQUASHFS_MAGIC = b"hsqs"
BUILTIN = "tmp/builtin"
FIRECORE_DIR = "opt/firecore"
BUILD_JSON = "opt/firecore/build.json"
TCE_RUNNER = "opt/firecore/tce-setup.sh"
GZIP_LEVEL = 6
#: zlib level for members whose bytes are compressed already (TCZs are squashfs images of gzip or
#: xz blocks): deflate cannot shrink them (level 1 saves 0.2 %), and level 6 spends most of its
#: time failing to. Level 0 stores them in deflate's uncompressed blocks.
COMPRESSED_LEVEL = 0
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Item:
    """One overlay member before packing; file bytes come from ``data`` or ``source``."""

    path: str
    mode: int
    uid: int
    gid: int
    data: bytes = b""
    source: Path | None = None
    md5: str | None = None
    """Expected md5 of ``source`` (a TCZ), checked while packing."""
    size: int = 0
    origin: str = ""
    """What put it there, for error messages ("extension openssh.tcz", "app" …)."""
    implicit: bool = False
    """A parent directory nobody asked for explicitly."""
    compressed: bool = False
    """Its bytes are compressed already (a TCZ): deflated at ``COMPRESSED_LEVEL`` (``pack``)."""

    @property
    def is_dir(self) -> bool:
        return stat.S_ISDIR(self.mode)


class Overlay:
    """A set of overlay members, checked against the base rootfs as they are added."""

    def __init__(self, base: BaseRootfs, *, drops_mnt: bool = False) -> None:
        self.base = base
        self.drops_mnt = drops_mnt
        """piCore's /init (``noembed``) drops every path component named mnt: refuse those."""
        self._items: dict[str, Item] = {}

    # ------------------------------------------------------------------ adding members

    def add_dir(
        self, path: str, perm: int = 0o755, uid: int = 0, gid: int = 0, origin: str = ""
    ) -> None:
        """A directory; if the base already has it, the base's exact mode/owner are kept."""
        path = self._path(path, origin)
        self._parents(path, origin)
        self._put_dir(path, perm, uid, gid, origin, implicit=False)

    def add_file(
        self,
        path: str,
        perm: int = 0o644,
        uid: int = 0,
        gid: int = 0,
        *,
        data: bytes | None = None,
        source: Path | None = None,
        md5: str | None = None,
        origin: str = "",
        replace: bool = False,
        compressed: bool = False,
    ) -> None:
        """A regular file from ``data`` or from the file ``source`` (read when packing).

        ``compressed``: the bytes are compressed already (see ``Item.compressed``).
        """
        path = self._path(path, origin)
        self._parents(path, origin)
        if source is not None:
            size = source.stat().st_size
            item = Item(
                path, stat.S_IFREG | perm, uid, gid, b"", source, md5, size, origin,
                compressed=compressed,
            )  # fmt: skip
        else:
            payload = data or b""
            item = Item(
                path, stat.S_IFREG | perm, uid, gid, payload, None, None, len(payload), origin
            )
        self._put_leaf(item, replace)

    def add_symlink(
        self,
        path: str,
        target: str,
        uid: int = 0,
        gid: int = 0,
        *,
        origin: str = "",
        replace: bool = False,
    ) -> None:
        """A symbolic link (kept as a link; the kernel creates it as such)."""
        path = self._path(path, origin)
        self._parents(path, origin)
        data = target.encode()
        item = Item(path, stat.S_IFLNK | 0o777, uid, gid, data, None, None, len(data), origin)
        self._put_leaf(item, replace)

    def _path(self, path: str, origin: str) -> str:
        name = _name(path, origin)
        if self.drops_mnt and "mnt" in name.split("/"):
            raise RemasterError(
                f"{origin or 'the overlay'} puts /{name} on the Pi, but piCore's /init copies "
                "the root filesystem with `tar --exclude=mnt` (cmdline.txt has noembed), which "
                "drops every path component named mnt: it would be missing at boot",
                fix="rename the directory called mnt (in the app, or drop the package or "
                "extension that has one)",
            )
        return name

    def _parents(self, path: str, origin: str) -> None:
        parts = path.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            parent = "/".join(parts[:i])
            if parent not in self._items:
                self._put_dir(parent, 0o755, 0, 0, origin, implicit=True)
            elif not self._items[parent].is_dir:
                raise RemasterError(
                    f"{origin or 'the overlay'} puts /{path} below /{parent}, which "
                    f"{self._items[parent].origin or 'another input'} adds as a file",
                    fix="rename one of them",
                )

    def _put_dir(
        self, path: str, perm: int, uid: int, gid: int, origin: str, *, implicit: bool
    ) -> None:
        old = self._items.get(path)
        if old is not None:
            if not old.is_dir:
                raise RemasterError(
                    f"{origin or 'the overlay'} needs a directory /{path}, but "
                    f"{old.origin or 'another input'} adds a file there",
                    fix="rename one of them",
                )
            if implicit or not old.implicit:
                return  # first explicit declaration wins; implicit never overrides
        base = self.base.dir_meta(path)
        if base is not None:
            # exists in the base: re-emit it exactly as it is, never change / or /tmp
            item = Item(path, base.mode, base.uid, base.gid, origin="base rootfs", implicit=False)
        else:
            item = Item(path, stat.S_IFDIR | perm, uid, gid, origin=origin, implicit=implicit)
        self._items[path] = item

    def _put_leaf(self, item: Item, replace: bool) -> None:
        old = self._items.get(item.path)
        if old is not None and (old.is_dir or not replace):
            raise RemasterError(
                f"{item.origin or 'an input'} and {old.origin or 'another input'} both add "
                f"/{item.path}",
                fix="remove the duplicate from the app or the extension list",
            )
        base = self.base.meta(item.path)
        if base is not None and base.is_dir:
            raise RemasterError(
                f"{item.origin or 'the overlay'} adds a file /{item.path}, but the base rootfs "
                "has a directory there",
                fix="move that file elsewhere",
            )
        self._items[item.path] = item

    # ------------------------------------------------------------------ reading back

    def __contains__(self, path: str) -> bool:
        return path in self._items

    def __len__(self) -> int:
        return len(self._items)

    def items(self) -> list[Item]:
        """Members sorted by path components: every directory before its contents."""
        return [self._items[p] for p in sorted(self._items, key=lambda p: p.split("/"))]

    def payload_bytes(self) -> int:
        """Sum of member sizes (the "pack" phase's total)."""
        return sum(i.size for i in self._items.values())

    # ------------------------------------------------------------------ packing

    def pack(
        self,
        out: BinaryIO,
        mtime: int,
        cancel: threading.Event | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> int:
        """Write the members as gzip(newc) to ``out``; returns the uncompressed cpio size.

        One gzip member and one archive, deflated at ``GZIP_LEVEL`` except the members whose
        bytes are compressed already (TCZs), at ``COMPRESSED_LEVEL`` (``cpio.LevelledGzip``).
        ``progress`` is called with the payload bytes done so far after each member.

        Raises:
            ChecksumError: a TCZ's bytes do not match its md5 any more.
            Cancelled: ``cancel`` was set.
        """
        done = 0
        gz = cpio.LevelledGzip(out, GZIP_LEVEL)

        def entries() -> Iterator[cpio.Entry]:
            nonlocal done
            for item in self.items():
                if cancel is not None and cancel.is_set():
                    raise Cancelled()
                data = item.data if item.source is None else _read_source(item)
                gz.level = COMPRESSED_LEVEL if item.compressed else GZIP_LEVEL
                yield cpio.Entry(item.path, item.mode, item.uid, item.gid, mtime, data)
                done += item.size
                if progress is not None:
                    progress(done)
            gz.level = GZIP_LEVEL  # the trailer

        size = cpio.write(entries(), gz)  # type: ignore[arg-type]
        gz.close()
        return size


def _read_source(item: Item) -> bytes:
    assert item.source is not None
    try:
        data = item.source.read_bytes()
    except OSError as exc:
        raise RemasterError(
            f"cannot read {item.source} ({item.origin}): {exc.strerror}",
            fix="run the build again (the cache may have been cleaned meanwhile)",
        ) from None
    if item.md5 is not None:
        actual = hashlib.md5(data).hexdigest()
        if actual != item.md5:
            raise ChecksumError(item.source.name, item.md5, actual, source=str(item.source))
    return data


def _name(path: str, origin: str) -> str:
    try:
        return cpio.normalise(path)
    except ValueError:
        raise RemasterError(
            f"{origin or 'the overlay'}: {path!r} is not a relative path inside the Pi's "
            "filesystem",
            fix="use a path like opt/firecore/app/main.py (no '..', no empty parts)",
        ) from None


# ---------------------------------------------------------------------- extensions


def check_tcz(name: str, path: Path) -> None:
    """Refuse a file that is not a squashfs image before it reaches the overlay."""
    try:
        with path.open("rb") as fh:
            magic = fh.read(4)
    except OSError as exc:
        raise RemasterError(
            f"extension {name}: cannot read {path}: {exc.strerror}",
            fix="run the extensions step again to download it",
        ) from None
    if magic != SQUASHFS_MAGIC:
        raise RemasterError(
            f"extension {name} ({path}) is not a squashfs image (starts with {magic!r}, "
            "expected b'hsqs')",
            fix="the mirror served something else (an error page?); delete it from the cache "
            "and download it again, or remove it from extensions.names",
        )


def _tcz_file(extset: ExtensionSet, pkg: Extension) -> Path:
    path = extset.files.get(pkg.name)
    if path is None:
        raise RemasterError(
            f"extension {pkg.name} is in the dependency closure but was not downloaded",
            fix="run the extensions step again (it downloads every package of the closure)",
        )
    return Path(path)


def add_builtin(ov: Overlay, extset: ExtensionSet) -> None:
    """Stage the closure for piCore's loader: ``tmp/builtin/onboot.lst`` + ``optional/``.

    tce-setup hands ``/tmp/builtin/onboot.lst`` to tce-bootload (as user tc), which follows the
    ``.dep`` files itself and expands ``KERNEL`` with ``uname -r`` at boot, so the .dep files are
    staged as published and every kernel flavour's module extension is in the closure already.
    """
    ov.add_dir(BUILTIN, 0o755, origin="extensions")
    ov.add_dir(f"{BUILTIN}/optional", 0o755, origin="extensions")
    for pkg in extset.packages:
        path = _tcz_file(extset, pkg)
        check_tcz(pkg.name, path)
        origin = f"extension {pkg.name}"
        ov.add_file(
            f"{BUILTIN}/optional/{pkg.name}", 0o644, source=path, md5=pkg.md5, origin=origin,
            compressed=True,
        )  # fmt: skip
        if pkg.md5:
            ov.add_file(
                f"{BUILTIN}/optional/{pkg.name}.md5.txt",
                0o644,
                data=f"{pkg.md5}  {pkg.name}\n".encode(),
                origin=origin,
            )
        if pkg.dep_text.strip():
            text = pkg.dep_text if pkg.dep_text.endswith("\n") else pkg.dep_text + "\n"
            ov.add_file(
                f"{BUILTIN}/optional/{pkg.name}.dep", 0o644, data=text.encode(), origin=origin
            )
    onboot = "".join(f"{name}\n" for name in extset.requested)
    ov.add_file(f"{BUILTIN}/onboot.lst", 0o644, data=onboot.encode(), origin="extensions")


_LS = re.compile(r"(\S{10})\s+(\d+)/(\d+)\s+(?:\d+|\d+,\s*\d+)\s+\d{4}-\d\d-\d\d \d\d:\d\d (.*)")


def _parse_perm(text: str) -> int:
    """``drwsr-xr-t`` → st_mode bits (type + permissions incl. setuid/setgid/sticky)."""
    kinds = {
        "d": stat.S_IFDIR,
        "-": stat.S_IFREG,
        "l": stat.S_IFLNK,
        "c": stat.S_IFCHR,
        "b": stat.S_IFBLK,
        "p": stat.S_IFIFO,
        "s": stat.S_IFSOCK,
    }
    mode = kinds.get(text[0], stat.S_IFREG)
    bits = [
        (1, "r", stat.S_IRUSR),
        (2, "w", stat.S_IWUSR),
        (4, "r", stat.S_IRGRP),
        (5, "w", stat.S_IWGRP),
        (7, "r", stat.S_IROTH),
        (8, "w", stat.S_IWOTH),
    ]
    for pos, ch, bit in bits:
        if text[pos] == ch:
            mode |= bit
    for pos, xbit, special in (
        (3, stat.S_IXUSR, stat.S_ISUID),
        (6, stat.S_IXGRP, stat.S_ISGID),
        (9, stat.S_IXOTH, stat.S_ISVTX),
    ):
        ch = text[pos]
        if ch in "xst":
            mode |= xbit
        if ch in "sStT":
            mode |= special
    return mode


def squashfs_listing(tcz: Path, cancel: threading.Event | None) -> dict[str, tuple[int, int, int]]:
    """Path → (st_mode, uid, gid) of every member, from ``unsquashfs -lln`` (numeric owners).

    Owners come from the listing, not from the unpacked files, so a build without root still
    stages them exactly as packed.
    """
    out = proc.run("unsquashfs", "-lln", "-d", "", tcz, cancel=cancel).text
    meta: dict[str, tuple[int, int, int]] = {}
    for line in out.splitlines():
        m = _LS.fullmatch(line)
        if not m:
            continue
        perm, uid, gid, name = m.group(1), int(m.group(2)), int(m.group(3)), m.group(4)
        mode = _parse_perm(perm)
        if stat.S_ISLNK(mode) and " -> " in name:
            name = name.rsplit(" -> ", 1)[0]
        name = name.strip("/")
        if name:
            meta[name] = (mode, uid, gid)
    return meta


def add_extracted(
    ov: Overlay, extset: ExtensionSet, workdir: Path, cancel: threading.Event | None = None
) -> list[str]:
    """Unpack every TCZ of the closure into the overlay (load order; later files win).

    Startup scripts (``usr/local/tce.installed/<name>``) are kept: piCore treats them as the
    "installed" markers, and ``tce_runner`` runs the executable ones at boot as piCore's loader
    would. Returns the closure names (for the runner).
    """
    names: list[str] = []
    workdir.mkdir(parents=True, exist_ok=True)
    for pkg in extset.packages:
        if cancel is not None and cancel.is_set():
            raise Cancelled()
        path = _tcz_file(extset, pkg)
        check_tcz(pkg.name, path)
        if pkg.md5:
            actual = md5_file(path)
            if actual != pkg.md5:
                raise ChecksumError(pkg.name, pkg.md5, actual, source=str(path))
        dest = workdir / pkg.name
        proc.run(
            "unsquashfs",
            "-n",
            "-f",
            "-no-xattrs",
            "-d",
            dest,
            path,
            cancel=cancel,
            fix="the TCZ is damaged; delete it from the cache and download it again",
        )
        meta = squashfs_listing(path, cancel)
        _add_tree(ov, dest, meta, f"extension {pkg.name}")
        names.append(pkg.name)
    return names


def _add_tree(
    ov: Overlay, root: Path, meta: Mapping[str, tuple[int, int, int]], origin: str
) -> None:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        rel_dir = os.path.relpath(dirpath, root)
        for name in sorted(dirnames) + sorted(filenames):
            full = Path(dirpath) / name
            rel = name if rel_dir == "." else f"{rel_dir}/{name}"
            st = full.lstat()
            mode, uid, gid = meta.get(rel, (st.st_mode, 0, 0))
            perm = stat.S_IMODE(mode)
            if stat.S_ISDIR(st.st_mode):
                ov.add_dir(rel, perm, uid, gid, origin=origin)
            elif stat.S_ISLNK(st.st_mode):
                ov.add_symlink(rel, os.readlink(full), uid, gid, origin=origin, replace=True)
            elif stat.S_ISREG(st.st_mode):
                ov.add_file(rel, perm, uid, gid, source=full, origin=origin, replace=True)
            else:
                raise RemasterError(
                    f"{origin} contains /{rel}, a device or special file, which the overlay "
                    "cannot carry",
                    fix='use extensions.mode = "builtin" for this extension',
                )


def tce_runner(names: Sequence[str]) -> bytes:
    """Boot-time stand-in for what tce-bootload does after loading (extracted mode only).

    tce-bootload (Core-scripts branch picore) runs ``ldconfig``, ``depmod -b /``, each executable
    ``tce.installed`` script and last ``udevadm trigger``: tc-config's own trigger ran before the
    extensions' kernel modules and udev rules were there, so without it udev never sees them.
    """
    lines = [
        "#!/bin/sh",
        "# firecore: extensions were unpacked into the initramfs, so nothing loop-mounts them;",
        "# do what piCore's loader does after loading: ldconfig, depmod, startup scripts.",
        "/sbin/ldconfig 2>/dev/null",
        "[ -d /lib/modules ] && /sbin/depmod -a 2>/dev/null",
    ]
    for name in names:
        script = f"/usr/local/tce.installed/{name.removesuffix('.tcz')}"
        lines.append(f'[ -x "{script}" ] && [ -s "{script}" ] && "{script}"')
    lines += [
        "# tce-bootload ends with this: udev's first trigger ran before these modules existed",
        "/sbin/udevadm trigger 2>/dev/null",
        "exit 0",
    ]
    return ("\n".join(lines) + "\n").encode()


# ---------------------------------------------------------------------- app and boot glue


def add_app(ov: Overlay, bundle: AppBundle, roots: Iterable[Path]) -> None:
    """The app bundle's files; a source that is a symlink must stay inside ``roots``."""
    allowed = [Path(os.path.realpath(r)) for r in roots]
    for f in bundle.files:
        origin = f"app file /{f.path}"
        if f.path.strip("/") == BOOTLOCAL:
            raise RemasterError(
                "the app bundle contains /opt/bootlocal.sh; its boot lines go in "
                "AppBundle.bootlocal instead",
                fix="remove opt/bootlocal.sh from the app",
            )
        if f.is_dir:
            ov.add_dir(f.path, f.mode & 0o7777, f.uid, f.gid, origin=origin)
        elif f.source is not None:
            src = _checked_source(f.source, allowed, origin)
            ov.add_file(f.path, f.mode & 0o7777, f.uid, f.gid, source=src, origin=origin)
        else:
            ov.add_file(f.path, f.mode & 0o7777, f.uid, f.gid, data=f.data or b"", origin=origin)


def _checked_source(src: Path, allowed: Sequence[Path], origin: str) -> Path:
    try:
        st = src.lstat()
    except FileNotFoundError:
        raise RemasterError(
            f"{origin}: {src} does not exist", fix="check app.path and run the build again"
        ) from None
    if stat.S_ISLNK(st.st_mode):
        real = Path(os.path.realpath(src))
        if not any(real == r or r in real.parents for r in allowed):
            raise RemasterError(
                f"{origin}: {src} is a symlink to {real}, outside the app directory",
                fix="replace the symlink by a copy of the file, or move its target into the app",
            )
        if not real.is_file():
            raise RemasterError(
                f"{origin}: {src} points to {real}, which is not a file",
                fix="fix or remove the symlink",
            )
        return real
    if not stat.S_ISREG(st.st_mode):
        raise RemasterError(
            f"{origin}: {src} is not a regular file",
            fix="only regular files (and in-tree symlinks) can be shipped",
        )
    return src


def bootlocal(base: BaseRootfs, app_lines: str, pre: Sequence[str] = ()) -> bytes:
    """The base /opt/bootlocal.sh, every line kept; ``pre`` after the shebang, app lines last."""
    original = base.text(BOOTLOCAL)
    if original is None:
        original = b"#!/bin/sh\n"
    text = original.decode("utf-8", "surrogateescape")
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    at = 1 if lines and lines[0].startswith("#!") else 0
    lines[at:at] = [f"{p}\n" for p in pre]
    tail = [ln + "\n" for ln in app_lines.splitlines() if ln.strip()]
    if tail:
        lines.append("# --- firecore: start the app (appended by firecore-wizard) ---\n")
        lines.extend(tail)
    return "".join(lines).encode("utf-8", "surrogateescape")


def bootlocal_meta(base: BaseRootfs) -> tuple[int, int, int]:
    """Mode/owner for the overlay's bootlocal.sh: the base's, else 0755 root:root."""
    meta = base.meta(BOOTLOCAL)
    if meta is not None and stat.S_ISREG(meta.mode):
        return meta.perm | 0o100, meta.uid, meta.gid
    return 0o755, 0, 0


def add_ssh_keys(ov: Overlay, keys: Sequence[str]) -> None:
    """``home/tc/.ssh/authorized_keys`` for user tc (1001:50, dir 0700, file 0600)."""
    if not keys:
        return
    ov.add_dir("home", 0o755, origin="ssh keys")
    ov.add_dir("home/tc", 0o755, TC_UID, STAFF_GID, origin="ssh keys")
    ov.add_dir("home/tc/.ssh", 0o700, TC_UID, STAFF_GID, origin="ssh keys")
    text = "".join(k.strip() + "\n" for k in keys)
    ov.add_file(
        "home/tc/.ssh/authorized_keys",
        0o600,
        TC_UID,
        STAFF_GID,
        data=text.encode(),
        origin="ssh keys",
    )


def json_bytes(data: Mapping[str, object]) -> bytes:
    """Canonical, human-readable JSON (sorted keys, trailing newline): stable bytes."""
    return (json.dumps(data, indent=2, sort_keys=True) + "\n").encode()


def write_gz(
    ov: Overlay,
    dest: Path,
    mtime: int,
    cancel: threading.Event | None = None,
    progress: Callable[[int], None] | None = None,
) -> None:
    """Pack ``ov`` into ``dest`` atomically (temp file + rename in the same directory)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            ov.pack(fh, mtime, cancel, progress)
            fh.write(padding(fh.tell()))
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def padding(size: int) -> bytes:
    """Zero bytes that bring an initramfs file of ``size`` bytes to a multiple of 4."""
    return b"\0" * (-size % 4)


def packed(ov: Overlay, mtime: int) -> bytes:
    """``ov`` as gzip(newc) bytes, zero-padded to a multiple of 4 (small archives: pi.gz)."""
    buf = io.BytesIO()
    ov.pack(buf, mtime)
    return buf.getvalue() + padding(buf.tell())


def remove_tree(path: Path) -> None:
    """Remove a work tree, ignoring what is already gone."""
    shutil.rmtree(path, ignore_errors=True)
