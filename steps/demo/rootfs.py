"""The fake releases' initramfs archives: ``rootfs-*.gz`` and ``modules-<release>.gz``.

Both are gzip-compressed newc cpio archives written with ``steps.picore.cpio``, like piCore's.
The rootfs has the directories and owners that matter to an overlay (picore.md §6.2): ``/opt``
root:staff 0775 with the default ``bootlocal.sh``/``bootsync.sh``, ``/tmp`` 1777,
``/usr/local/tce.installed`` root:staff 0775, ``/home/tc`` owned by tc (1001:50) and an
``/etc/os-release`` whose ``VERSION_ID`` the tool can read. Programs are stand-in bytes.
"""

from __future__ import annotations

import hashlib
import io

from steps.demo import texts
from steps.demo.specs import ReleaseSpec
from steps.picore import cpio

TC_UID = 1001
STAFF_GID = 50


def blob(label: str, size: int) -> bytes:
    """Deterministic stand-in bytes, different for every label."""
    return hashlib.shake_256(label.encode()).digest(size)


def _pack(entries: list[cpio.Entry]) -> bytes:
    buf = io.BytesIO()
    cpio.write(cpio.sort_entries(entries), buf)
    return cpio.gzip_bytes(buf.getvalue())


def rootfs_entries(spec: ReleaseSpec) -> list[cpio.Entry]:
    """Members of the release's rootfs, unsorted (``cpio.sort_entries`` orders them)."""
    t = spec.epoch
    d = cpio.directory
    f = cpio.regular
    staff = {"uid": 0, "gid": STAFF_GID, "mtime": t}
    root = {"mtime": t}
    dirs = [
        "bin", "dev", "etc", "etc/init.d", "etc/sysconfig", "etc/skel", "home", "lib",
        "lib/modules", "mnt", "proc", "run", "sbin", "sys", "usr", "usr/bin", "usr/sbin",
        "usr/lib", "usr/share", "usr/local", "usr/local/bin", "usr/local/etc", "usr/local/lib",
        "usr/local/share", "var", "var/log", "var/run", "var/lib",
    ]  # fmt: skip
    entries = [d(name, 0o755, **root) for name in dirs]
    busybox = blob(f"busybox {spec.flavour} {spec.version}", 2048)
    entries += [
        d("root", 0o700, **root),
        d("tmp", 0o1777, **root),
        d("opt", 0o775, **staff),
        d("usr/local/tce.installed", 0o775, **staff),
        d("home/tc", 0o755, uid=TC_UID, gid=STAFF_GID, mtime=t),
        f("home/tc/.profile", b"# ~/.profile: executed by Bourne-compatible login shells.\n",
          0o644, TC_UID, STAFF_GID, t),
        f("home/tc/.ashrc", b"alias ll='ls -l'\n", 0o644, TC_UID, STAFF_GID, t),
        f("bin/busybox", busybox, 0o755, **root),
        cpio.symlink("bin/sh", "busybox", mtime=t),
        cpio.symlink("bin/ls", "busybox", mtime=t),
        cpio.symlink("sbin/init", "../bin/busybox", mtime=t),
        f("init", b"#!/bin/sh\n# piCore /init (demo stand-in)\nexec /sbin/init\n", 0o755, **root),
        f("etc/os-release", texts.os_release(spec).encode(), 0o644, **root),
        f("etc/hostname", b"box\n", 0o644, **root),
        f("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\nlp:x:7:7:lp:/var/spool/lpd:/bin/sh\n"
          b"nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n", 0o644, **root),
        f("etc/group", b"root:x:0:\nlp:x:7:lp\nstaff:x:50:\nnogroup:x:65534:\n", 0o644, **root),
        f("etc/shadow", b"root:*:13525:0:99999:7:::\n", 0o640, **root),
        f("etc/inittab", b"::sysinit:/etc/init.d/rcS\n::restart:/sbin/init\n", 0o644, **root),
        f("etc/profile", b"# /etc/profile: system-wide .profile\nexport PATH\n", 0o644, **root),
        f("etc/init.d/rcS", b"#!/bin/sh\n/etc/init.d/tc-config\n", 0o755, **root),
        f("etc/init.d/tc-config", b"#!/bin/sh\n# piCore boot configuration (demo stand-in)\n",
          0o755, **root),
        f("etc/init.d/tc-functions", b"# piCore shell functions (demo stand-in)\n", 0o644,
          **root),
        f("etc/init.d/dhcp.sh", b"#!/bin/sh\n/sbin/udhcpc -b -i eth0\n", 0o755, **root),
        f("etc/sysconfig/tcuser", b"tc\n", 0o644, **root),
        f("usr/bin/sethostname", b"#!/bin/sh\nhostname \"$1\"\n", 0o755, **root),
        f("usr/bin/tce-load", b"#!/bin/sh\n# tce-load (demo stand-in)\n", 0o755, **root),
        f("usr/bin/tce-setup", b"#!/bin/sh\n# tce-setup (demo stand-in)\n", 0o755, **root),
        f("usr/bin/tce-bootload", b"# tce-bootload (demo stand-in)\n", 0o755, **root),
        f("opt/bootsync.sh", texts.BOOTSYNC.encode(), 0o775, **staff),
        f("opt/bootlocal.sh", texts.BOOTLOCAL.encode(), 0o775, **staff),
        f("opt/shutdown.sh", b"#!/bin/sh\n# put user shutdown commands here\n", 0o775, **staff),
        f("opt/.filetool.lst", b"opt\nhome\n", 0o664, **staff),
        f("opt/.xfiletool.lst", b"Cache\n.cache\n", 0o664, **staff),
        f("opt/tcemirror", b"http://repo.tinycorelinux.net/\n", 0o664, **staff),
    ]  # fmt: skip
    return entries


#: glibc of each demo release (stand-ins: what matters is that the tool reads it from libc.so.6).
DEMO_GLIBC = {"12": (2, 28), "15": (2, 38), "16": (2, 40)}


def libc_stand_in(spec: ReleaseSpec, version: tuple[int, int]) -> bytes:
    """A libc.so.6 stand-in: ELF magic, glibc's version banner and its GLIBC_2.N nodes."""
    nodes = b"\0".join(f"GLIBC_2.{n}".encode() for n in range(0, version[1] + 1))
    banner = (
        f"GNU C Library (firecore demo) stable release version {version[0]}.{version[1]}.\n"
    ).encode()
    return b"\x7fELF" + blob(f"libc {spec.flavour} {spec.version}", 1020) + nodes + banner


def library_entries(spec: ReleaseSpec) -> list[cpio.Entry]:
    """The base's C libraries: glibc's, libgcc_s (no libstdc++: that is gcc_libs.tcz)."""
    t = spec.epoch
    version = DEMO_GLIBC.get(spec.major, DEMO_GLIBC["16"] if int(spec.major) > 16 else (2, 28))
    loader = "ld-linux-aarch64.so.1" if spec.flavour == "piCore64" else "ld-linux-armhf.so.3"
    entries = [
        cpio.regular(f"lib/{name}", b"\x7fELF" + blob(f"{spec.version} {name}", 508), 0o755,
                     mtime=t)
        for name in (loader, "libm.so.6", "libpthread.so.0", "libdl.so.2", "librt.so.1",
                     "libgcc_s.so.1", "libcrypt.so.1", "libutil.so.1", "libresolv.so.2")
    ]  # fmt: skip
    if version < (2, 34):  # glibc < 2.34 installs libc.so.6 as a link to libc-2.N.so
        real = f"libc-{version[0]}.{version[1]}.so"
        entries += [
            cpio.regular(f"lib/{real}", libc_stand_in(spec, version), 0o755, mtime=t),
            cpio.symlink("lib/libc.so.6", real, mtime=t),
        ]
    else:
        entries.append(cpio.regular("lib/libc.so.6", libc_stand_in(spec, version), 0o755, mtime=t))
    return entries


def rootfs_gz(spec: ReleaseSpec) -> bytes:
    """The release's rootfs-*.gz bytes."""
    return _pack(rootfs_entries(spec) + library_entries(spec))


def modules_entries(spec: ReleaseSpec, kernel_release: str) -> list[cpio.Entry]:
    """Members of modules-<release>.gz: lib/modules/<release>/ with modules.dep and a few .ko."""
    t = spec.epoch
    base = f"lib/modules/{kernel_release}"
    kos = ["kernel/drivers/w1/wire.ko", "kernel/drivers/i2c/i2c-dev.ko", "kernel/net/ipv6/ipv6.ko"]
    dirs = {"lib", "lib/modules", base}
    for ko in kos:
        parts = f"{base}/{ko}".split("/")[:-1]
        dirs.update("/".join(parts[:i]) for i in range(1, len(parts) + 1))
    entries = [cpio.directory(name, 0o755, mtime=t) for name in sorted(dirs)]
    entries += [
        cpio.regular(f"{base}/{ko}", blob(f"{kernel_release} {ko}", 512), 0o644, mtime=t)
        for ko in kos
    ]
    dep = "".join(f"{ko}:\n" for ko in kos)
    entries += [
        cpio.regular(f"{base}/modules.dep", dep.encode(), 0o644, mtime=t),
        cpio.regular(f"{base}/modules.order", "".join(k + "\n" for k in kos).encode(), mtime=t),
    ]
    return entries


def modules_gz(spec: ReleaseSpec, kernel_release: str) -> bytes:
    return _pack(modules_entries(spec, kernel_release))
