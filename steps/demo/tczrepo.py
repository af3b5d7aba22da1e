"""A fake TCZ repository (``<major>.x/<arch>/tcz/``) with real squashfs extensions.

Every package gets the files a real repo has (picore.md §1.3–1.4): ``NAME.tcz`` (squashfs, gzip,
4 KiB blocks, no xattrs, root-owned), ``.tcz.md5.txt``, ``.tcz.info``, ``.tcz.list``,
``.tcz.tree`` and, when it has dependencies, ``.tcz.dep``; plus the repo-wide indexes
``info.lst.gz``, ``tags.db.gz``, ``md5.db.gz``, ``sizelist.gz``, ``dep.db.gz``,
``provides.db.gz``.

The dependency graph is built to exercise a resolver: a diamond (pythonX.Y → readline →
ncursesw and pythonX.Y → ncursesw), a cycle (avahi ↔ dbus), ``KERNEL`` placeholders (myapp →
w1-KERNEL, alsa → alsa-modules-KERNEL) with one module extension per kernel flavour, an empty
.dep (ncursesw), packages without a .dep file (openssl …) and one .dep with comments, blank
lines, blanks around names, a ``;`` line and lines too short or not ending in .tcz (nano).
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from steps import proc
from steps.demo.rootfs import blob


@dataclass(frozen=True)
class PackageSpec:
    """One extension: its description, .dep text (None: no .dep file) and its files."""

    name: str
    description: str
    dep_text: str | None
    files: tuple[tuple[str, bytes, int], ...]
    """(path relative to /, contents, mode)."""
    version: str = "1.0"
    tags: str = ""


def parse_dep(text: str) -> tuple[str, ...]:
    """Dependencies as piCore's loader reads a .dep file (picore.md §1.3, tc.py readtczlist)."""
    out: list[str] = []
    for raw in text.splitlines():
        line = "".join(raw.split())
        if len(line) <= 4 or line.startswith(("#", ";")) or not line.endswith(".tcz"):
            continue
        if line not in out:
            out.append(line)
    return tuple(out)


def _bin(name: str, arch: str) -> tuple[str, bytes, int]:
    return (f"usr/local/bin/{name}", b"\x7fELF" + blob(f"{arch} {name}", 1020), 0o755)


def _deps(*names: str) -> str:
    return "".join(f"{n}\n" for n in names)


NANO_DEP = (
    "# nano needs the wide-character ncurses\n"
    "\n"
    "   ncursesw.tcz   \n"
    "; file.tcz gives nano its syntax detection\n"
    "\tfile.tcz\t \n"
    "abc\n"
    "README\n"
    "ncursesw.tcz\n"
)

#: Ordinary packages: name → (description, deps (None = no .dep file), programs, tags).
_FILLERS: dict[str, tuple[str, str | None, tuple[str, ...], str]] = {
    "openssl": ("OpenSSL cryptography libraries and tools", None, ("openssl",), "ssl tls crypto"),
    "ca-certificates": ("Mozilla CA certificate bundle", None, (), "ssl certificates"),
    "libffi": ("Foreign function interface library", None, (), "library ffi"),
    "ncursesw": ("Wide-character terminal handling library", "", (), "library terminal"),
    "readline": ("GNU readline line editing library", _deps("ncursesw.tcz"), (), "library"),
    "sqlite3": ("SQLite database library", _deps("readline.tcz"), ("sqlite3",), "database sql"),
    "bzip2-lib": ("bzip2 compression library", None, (), "library compression"),
    "expat2": ("XML parser library", None, (), "library xml"),
    "libdaemon": ("Library for writing UNIX daemons", None, (), "library"),
    "libevent": ("Event notification library", None, (), "library events"),
    "libnl": ("Netlink protocol library", None, (), "library netlink"),
    "libusb": ("USB device access library", None, (), "library usb"),
    "glib2": ("GLib low-level core library", _deps("libffi.tcz"), (), "library gtk"),
    "openssh": (
        "OpenSSH secure shell client and server",
        _deps("openssl.tcz"),
        ("ssh", "sshd", "scp"),
        "ssh sshd remote login secure shell",
    ),
    "avahi": ("Zeroconf mDNS/DNS-SD service discovery daemon", _deps("dbus.tcz", "libdaemon.tcz"),
              ("avahi-daemon",), "mdns zeroconf bonjour"),
    "dbus": ("D-Bus message bus (its .dep names avahi: a deliberate cycle)",
             _deps("avahi.tcz", "expat2.tcz"), ("dbus-daemon",), "ipc bus"),
    "nano": ("Nano text editor", NANO_DEP, ("nano",), "editor text"),
    "file": ("Determine file type", None, ("file",), "magic utility"),
    "htop": ("Interactive process viewer", _deps("ncursesw.tcz"), ("htop",), "monitor process"),
    "curl": ("Command line tool for transferring data with URLs",
             _deps("openssl.tcz", "ca-certificates.tcz"), ("curl",), "http download"),
    "wget": ("Non-interactive network downloader", _deps("openssl.tcz", "ca-certificates.tcz"),
             ("wget",), "http download"),
    "git": ("Distributed version control system", _deps("curl.tcz", "expat2.tcz", "openssl.tcz"),
            ("git",), "vcs scm development"),
    "rsync": ("Fast incremental file transfer", None, ("rsync",), "backup sync copy"),
    "tmux": ("Terminal multiplexer", _deps("libevent.tcz", "ncursesw.tcz"), ("tmux",),
             "terminal multiplexer"),
    "mc": ("Midnight Commander file manager", _deps("glib2.tcz", "ncursesw.tcz"), ("mc",),
           "file manager"),
    "i2c-tools": ("I2C bus probing and access tools", None, ("i2cdetect", "i2cget"),
                  "i2c hardware gpio"),
    "wireless_tools": ("Wireless extensions tools (iwconfig)", None, ("iwconfig",),
                       "wifi wireless network"),
    "wpa_supplicant": ("WPA/WPA2 wireless supplicant", _deps("openssl.tcz", "libnl.tcz"),
                       ("wpa_supplicant",), "wifi wireless network"),
    "usbutils": ("USB utilities (lsusb)", _deps("libusb.tcz"), ("lsusb",), "usb hardware"),
    "bash": ("GNU Bourne Again shell", _deps("readline.tcz"), ("bash",), "shell"),
    "coreutils": ("GNU core utilities", None, ("ls", "cp"), "utilities"),
    "e2fsprogs": ("ext2/3/4 file system utilities", None, ("mke2fs", "e2fsck"), "filesystem"),
}  # fmt: skip


PYTHON_DEPS = (
    "openssl.tcz",
    "libffi.tcz",
    "ncursesw.tcz",
    "readline.tcz",
    "sqlite3.tcz",
    "bzip2-lib.tcz",
)


def package_specs(python: str, kernel_releases: Sequence[str], arch: str) -> list[PackageSpec]:
    """The packages of one repo, for its Python version, kernel flavours and arch."""
    py = f"python{python}"
    out: list[PackageSpec] = []
    for name, (desc, dep, programs, tags) in _FILLERS.items():
        files = tuple(_bin(p, arch) for p in programs) or (
            (f"usr/local/lib/lib{name}.so.1", blob(f"{arch} lib{name}", 768), 0o755),
        )
        if name == "openssh":
            files += (
                ("usr/local/etc/init.d/openssh", b"#!/bin/sh\n# start/stop sshd\n", 0o755),
                ("usr/local/tce.installed/openssh", b"#!/bin/sh\n# create host keys\n", 0o775),
            )
        out.append(PackageSpec(f"{name}.tcz", desc, dep, files, tags=tags))
    lib = f"usr/local/lib/{py}"
    out += [
        PackageSpec(
            "gcc_libs.tcz",
            "GCC runtime libraries (the C++ standard library)",
            None,
            (
                ("usr/local/lib/libstdc++.so.6.0.32", blob(f"{arch} libstdc++", 1024), 0o755),
                ("usr/local/lib/libstdc++.so.6", blob(f"{arch} libstdc++ link", 16), 0o755),
            ),
            tags="library c++ runtime",
        ),
        PackageSpec(
            f"{py}.tcz",
            f"Python {python} interpreter and standard library",
            _deps(*PYTHON_DEPS),
            (
                _bin(py, arch),
                ("usr/local/bin/python3", b"#!/bin/sh\nexec " + py.encode() + b' "$@"\n', 0o755),
                (f"{lib}/os.py", b"# stand-in for the standard library\n", 0o644),
                (f"{lib}/lib-dynload/_ssl.so", blob(f"{arch} {py} _ssl", 512), 0o755),
                (f"usr/local/lib/lib{py}.so.1.0", blob(f"{arch} lib{py}", 2048), 0o755),
            ),
            version=python,
            tags="python programming language",
        ),
        PackageSpec(
            f"{py}-setuptools.tcz",
            f"Python {python} setuptools",
            _deps(f"{py}.tcz"),
            ((f"{lib}/site-packages/setuptools/__init__.py", b"# setuptools\n", 0o644),),
            tags="python packaging",
        ),
        PackageSpec(
            f"{py}-pip.tcz",
            f"The Python {python} package installer (pip)",
            _deps(f"{py}.tcz", f"{py}-setuptools.tcz"),
            (
                (f"{lib}/site-packages/pip/__init__.py", b"# pip\n", 0o644),
                ("usr/local/bin/pip3", b"#!/bin/sh\nexec " + py.encode() + b" -m pip\n", 0o755),
            ),
            tags="python packaging pip",
        ),
        PackageSpec(
            f"{py}-wheel.tcz",
            f"Python {python} wheel support",
            _deps(f"{py}.tcz"),
            ((f"{lib}/site-packages/wheel/__init__.py", b"# wheel\n", 0o644),),
            tags="python packaging",
        ),
        PackageSpec(
            "myapp.tcz",
            "Example application that reads 1-Wire sensors",
            _deps(f"{py}.tcz", "w1-KERNEL.tcz"),
            (("usr/local/bin/myapp", b"#!/bin/sh\nexec python3 -m myapp\n", 0o755),),
            tags="example sensors 1-wire",
        ),
        PackageSpec(
            "alsa.tcz",
            "ALSA sound utilities",
            _deps("alsa-modules-KERNEL.tcz"),
            (_bin("aplay", arch),),
            tags="sound audio",
        ),
    ]
    for kver in kernel_releases:
        for mod, desc, ko in (
            ("w1", "1-Wire bus kernel modules", "kernel/drivers/w1/masters/w1-gpio.ko.gz"),
            ("alsa-modules", "ALSA sound kernel modules", "kernel/sound/core/snd.ko.gz"),
        ):
            out.append(
                PackageSpec(
                    f"{mod}-{kver}.tcz",
                    f"{desc} for {kver}",
                    None,
                    ((f"usr/local/lib/modules/{kver}/{ko}", blob(f"{kver} {ko}", 600), 0o644),),
                    version=kver,
                    tags="kernel modules",
                )
            )
    return out


@dataclass(frozen=True)
class BuiltPackage:
    """A package as published: what tests assert against."""

    name: str
    md5: str
    size: int
    dep_text: str | None
    """The .dep file's text; None when the repo has no .dep file for it."""
    deps: tuple[str, ...]
    """Direct dependencies as piCore's loader reads the .dep (KERNEL kept)."""
    files: tuple[str, ...]
    """The .tcz.list lines."""
    description: str


def _human(size: int) -> str:
    return f"{max(1, (size + 1023) // 1024)}K"


def _tree(name: str, graph: dict[str, tuple[str, ...]], depth: int, path: tuple[str, ...]) -> str:
    out = "   " * depth + name + "\n"
    if name in path:
        return out
    for dep in graph.get(name, ()):
        out += _tree(dep, graph, depth + 1, (*path, name))
    return out


def _gz(text: str) -> bytes:
    return gzip.compress(text.encode(), compresslevel=9, mtime=0)


def _squash(src: Path, dest: Path, epoch: int) -> None:
    proc.run(
        "mksquashfs", src, dest, "-b", "4k", "-no-xattrs", "-all-root", "-noappend", "-quiet",
        "-no-progress", "-mkfs-time", str(epoch), "-all-time", str(epoch), "-processors", "1",
    )  # fmt: skip


def build_repo(
    repo: Path, work: Path, packages: Sequence[PackageSpec], epoch: int, date: str
) -> dict[str, BuiltPackage]:
    """Write the repo directory ``repo`` (created) from ``packages``; returns what was built."""
    repo.mkdir(parents=True, exist_ok=True)
    stage = work / "tcz-src"
    for spec in packages:
        root = stage / spec.name
        for rel, data, mode in spec.files:
            target = root / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            os.chmod(target, mode)
        for dirpath, _, _ in os.walk(root):
            os.chmod(dirpath, 0o755)
    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        list(
            pool.map(
                lambda s: _squash(stage / s.name, repo / s.name, epoch),
                packages,
            )
        )
    shutil.rmtree(stage)
    graph = {p.name: parse_dep(p.dep_text) if p.dep_text is not None else () for p in packages}
    built: dict[str, BuiltPackage] = {}
    for spec in sorted(packages, key=lambda p: p.name):
        tcz = repo / spec.name
        data = tcz.read_bytes()
        md5 = hashlib.md5(data).hexdigest()
        listing = tuple(sorted(rel for rel, _, _ in spec.files))
        (repo / f"{spec.name}.md5.txt").write_text(f"{md5}  {spec.name}\n")
        (repo / f"{spec.name}.list").write_text("".join(f"{p}\n" for p in listing))
        (repo / f"{spec.name}.tree").write_text(_tree(spec.name, graph, 0, ()))
        if spec.dep_text is not None:
            (repo / f"{spec.name}.dep").write_text(spec.dep_text)
        (repo / f"{spec.name}.info").write_text(_info(spec, len(data), date))
        built[spec.name] = BuiltPackage(
            spec.name,
            md5,
            len(data),
            spec.dep_text,
            graph[spec.name],
            listing,
            spec.description,
        )
    _indexes(repo, built, packages)
    for path in repo.iterdir():
        os.chmod(path, 0o644)
    return built


def _info(spec: PackageSpec, size: int, date: str) -> str:
    day = date.replace("-", "/")
    return (
        f"Title:          {spec.name}\n"
        f"Description:    {spec.description}\n"
        f"Version:        {spec.version}\n"
        "Author:         Various\n"
        "Original-site:  http://tinycorelinux.net/\n"
        "Copying-policy: GPL\n"
        f"Size:           {_human(size)}\n"
        "Extension_by:   firecore demo factory\n"
        f"Tags:           {spec.tags}\n"
        "Comments:       Built by firecore-wizard's demo factory: the layout is\n"
        "                piCore's, the programs inside are stand-in bytes.\n"
        f"Change-log:     {day} - First version\n"
        f"Current:        {day} - First version\n"
    )


def _indexes(repo: Path, built: dict[str, BuiltPackage], specs: Sequence[PackageSpec]) -> None:
    names = sorted(built)
    by_name = {s.name: s for s in specs}
    (repo / "info.lst.gz").write_bytes(_gz("".join(f"{n}\n" for n in names)))
    tags = "".join(
        f"{n}\t{by_name[n].tags} {by_name[n].description.lower()}\n".replace("  ", " ")
        for n in names
    )
    (repo / "tags.db.gz").write_bytes(_gz(tags))
    (repo / "md5.db.gz").write_bytes(_gz("".join(f"{built[n].md5}  {n}\n" for n in names)))
    (repo / "sizelist.gz").write_bytes(_gz("".join(f"{n} {built[n].size}\n" for n in names)))
    dep_records = [n + "\n" + "".join(d + "\n" for d in built[n].deps) for n in names]
    (repo / "dep.db.gz").write_bytes(_gz("\n".join(dep_records)))
    provides = [n + "\n" + "".join(f + "\n" for f in built[n].files) for n in names]
    (repo / "provides.db.gz").write_bytes(_gz("\n".join(provides)))
