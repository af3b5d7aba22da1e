"""What a piCore release's base provides to compiled code: its glibc version and its libraries.

Both come from the release itself, read from its initramfs archives (``rootfs-*.gz``,
``modules-*.gz``) without extracting them:

- the **glibc version** decides which ``manylinux_2_N`` wheels run on the Pi (PEP 600: a wheel
  tagged ``manylinux_2_N`` needs glibc ≥ 2.N). ``lib/libc.so.6`` names it: glibc before 2.34
  installs it as a symlink to ``libc-2.N.so``; every build's libc also carries the banner
  ``… release version 2.N`` (what running ``libc.so.6`` prints) and the symbol versions
  ``GLIBC_2.N`` it defines;
- the **library names** (sonames) in ``lib``, ``usr/lib`` and ``usr/local/lib``: what a wheel's
  ``DT_NEEDED`` entries may name without an extension (piCore's C++ runtime, ``libstdc++.so.6``,
  comes from ``gcc_libs.tcz``, not the base — picore.md "Boot-script facts").

``provides`` reads a repo's ``provides.db.gz`` (blank-line separated records: ``NAME.tcz`` then
its files, picore.md §1.4) to name the extension that ships a missing library.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from steps.picore import cpio
from steps.picore.rootfs import archive_entries

LIBRARY_DIRS = ("lib", "usr/lib", "usr/local/lib")
_BANNER = re.compile(rb"release version (\d+)\.(\d+)")
_SYMVER = re.compile(rb"GLIBC_2\.(\d+)")
_NAMED = re.compile(r"libc-(\d+)\.(\d+)\.so$")


@dataclass(frozen=True)
class SystemLibraries:
    """The base's glibc and library names."""

    glibc: tuple[int, int] | None = None
    """(2, 36); None when the archives hold no libc.so.6."""
    libraries: frozenset[str] = field(default_factory=frozenset)
    """File names in the library directories (files and symlinks): what the loader finds."""

    @property
    def glibc_text(self) -> str:
        """ "2.36", or "" when unknown."""
        return f"{self.glibc[0]}.{self.glibc[1]}" if self.glibc else ""


def glibc_of(data: bytes) -> tuple[int, int] | None:
    """The glibc version of a libc.so.6's bytes: its banner, else its newest GLIBC_2.N."""
    m = _BANNER.search(data)
    if m:
        return int(m.group(1)), int(m.group(2))
    found = [int(n) for n in _SYMVER.findall(data)]
    return (2, max(found)) if found else None


def parse_glibc(text: str) -> tuple[int, int] | None:
    """ "2.36" → (2, 36); None for "" or anything else."""
    m = re.fullmatch(r"(\d+)\.(\d+)", text.strip())
    return (int(m.group(1)), int(m.group(2))) if m else None


def read_system(archives: Iterable[Path]) -> SystemLibraries:
    """Library names and the glibc version from the base archives, in load order.

    Raises:
        RemasterError: an archive is missing or not a gzip'd newc cpio.
    """
    names: set[str] = set()
    libc: dict[str, cpio.Entry] = {}
    files: dict[str, bytes] = {}
    for path in archives:
        for name, entry in archive_entries(path):
            folder, _, base = name.rpartition("/")
            if folder not in LIBRARY_DIRS or entry.is_dir:
                continue
            names.add(base)
            if base == "libc.so.6":
                libc[folder] = entry
            elif _NAMED.fullmatch(base) and entry.is_file:
                files[name] = entry.data
    glibc: tuple[int, int] | None = None
    for folder in LIBRARY_DIRS:
        link = libc.get(folder)
        if link is None:
            continue
        if link.is_symlink:
            target = link.data.decode("utf-8", "replace")
            m = _NAMED.search(target)
            if m:
                glibc = int(m.group(1)), int(m.group(2))
            else:
                resolved = f"{folder}/{target}" if not target.startswith("/") else target[1:]
                glibc = glibc_of(files.get(resolved, b""))
        else:
            glibc = glibc_of(link.data)
        if glibc is not None:
            break
    return SystemLibraries(glibc, frozenset(names))


def provides(index: bytes) -> dict[str, list[str]]:
    """File name → the extensions that ship it, from a ``provides.db`` text."""
    out: dict[str, list[str]] = {}
    for record in index.decode("utf-8", "replace").split("\n\n"):
        lines = [ln.strip() for ln in record.strip().splitlines() if ln.strip()]
        if not lines or not lines[0].endswith(".tcz"):
            continue
        for path in lines[1:]:
            out.setdefault(path.rsplit("/", 1)[-1], []).append(lines[0])
    return out


def listed_names(lists: Mapping[str, Iterable[str]]) -> set[str]:
    """File names (basenames) of the closure's ``.tcz.list`` files."""
    return {path.strip().rsplit("/", 1)[-1] for paths in lists.values() for path in paths}
