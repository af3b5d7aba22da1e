"""What the base initramfs already holds, read from its cpio archives without extracting them.

The overlay is unpacked by the kernel on top of the release's own archives (rootfs-*.gz and
modules-*.gz), and the kernel re-applies a directory entry's mode and owner even when the
directory exists. So the overlay must know the base's directories exactly (to emit them with the
same mode/owner, keeping ``/tmp`` 1777 and ``/opt`` root:staff), where the base has files or
symlinks (an overlay directory there would break the system), and the text of
``/opt/bootlocal.sh`` (which the overlay's copy extends, keeping every original line).
"""

from __future__ import annotations

import stat
import zlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from steps.errors import RemasterError
from steps.picore import cpio

BOOTLOCAL = "opt/bootlocal.sh"
BOOTSYNC = "opt/bootsync.sh"


@dataclass(frozen=True)
class Meta:
    """Mode (type + permission bits), owner and group of one base entry."""

    mode: int
    uid: int
    gid: int

    @property
    def is_dir(self) -> bool:
        return stat.S_ISDIR(self.mode)

    @property
    def perm(self) -> int:
        return stat.S_IMODE(self.mode)


@dataclass(frozen=True)
class BaseRootfs:
    """The merged view of the base archives a board loads before the overlay."""

    entries: Mapping[str, Meta] = field(default_factory=dict)
    """Path (no leading slash) → metadata, later archives overriding earlier ones."""
    files: Mapping[str, bytes] = field(default_factory=dict)
    """Contents of the few files the overlay extends (``opt/bootlocal.sh``)."""
    sources: tuple[str, ...] = ()
    """Names of the archives read, in order."""

    def meta(self, path: str) -> Meta | None:
        """Metadata of ``path`` in the base, or None if the base has no such entry."""
        return self.entries.get(path)

    def dir_meta(self, path: str) -> Meta | None:
        """Metadata of directory ``path``; None if absent; RemasterError if it is not a dir."""
        meta = self.entries.get(path)
        if meta is not None and not meta.is_dir:
            kind = "a symlink" if stat.S_ISLNK(meta.mode) else "a file"
            raise RemasterError(
                f"the overlay needs a directory /{path}, but the base rootfs "
                f"({', '.join(self.sources)}) has {kind} there",
                fix="move that part of the app or extension elsewhere",
            )
        return meta

    def text(self, path: str) -> bytes | None:
        """Bytes of a base file kept by ``read_base`` (``opt/bootlocal.sh``), or None."""
        return self.files.get(path)


def read_base(archives: Iterable[Path], keep: Iterable[str] = (BOOTLOCAL,)) -> BaseRootfs:
    """Read gzip'd newc archives in load order into one BaseRootfs.

    Args:
        archives: the initramfs files a board loads before the overlay, in config.txt order.
        keep: paths whose contents are kept (everything else is only listed).

    Raises:
        RemasterError: an archive is missing, not gzip, or not a newc cpio.
    """
    wanted = set(keep)
    entries: dict[str, Meta] = {}
    files: dict[str, bytes] = {}
    names: list[str] = []
    for path in archives:
        names.append(path.name)
        for name, entry in archive_entries(path):
            entries[name] = Meta(entry.mode, entry.uid, entry.gid)
            if name in wanted and entry.is_file:
                files[name] = entry.data
            elif name in files and not entry.is_file:
                del files[name]
    return BaseRootfs(entries, files, tuple(names))


def archive_entries(path: Path) -> Iterator[tuple[str, cpio.Entry]]:
    """(clean path, entry) of every member of a release's initramfs archive but ``.``.

    Raises:
        RemasterError: the archive is missing, not gzip, or not a newc cpio.
    """
    try:
        for entry in cpio.read_gz(str(path)):
            name = _clean(entry.name)
            if name is not None:
                yield name, entry
    except FileNotFoundError:
        raise RemasterError(
            f"{path.name} is named on an initramfs line of config.txt but is not on the "
            "boot partition",
            fix="the release image is incomplete; download it again or pick another release",
        ) from None
    except (OSError, EOFError, zlib.error, ValueError) as exc:
        raise RemasterError(
            f"{path.name} (an initramfs named in config.txt) is not a gzip'd newc cpio "
            f"archive: {exc}",
            fix="the release image is damaged; download it again or pick another release",
        ) from None


def _clean(name: str) -> str | None:
    """Archive name without ``./`` or ``/``; None for ``.`` (the root itself)."""
    clean = name.strip("/")
    while clean.startswith("./"):
        clean = clean[2:]
    if clean in ("", "."):
        return None
    return clean
