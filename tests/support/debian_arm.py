"""Debian's ARM kernel, busybox-static and CPython userland for the emulated-board tests.

No piCore download is reachable here, so the parts of a Pi's boot that are not ours come from
Debian 12 packages of the board's architecture: the kernel (``linux-image-*-armmp`` for armhf,
``linux-image-*-arm64``), busybox-static, and CPython 3.11 (the version the 15.x/16.x wheels
target) with the glibc and libraries it loads.

The packages are fetched with apt from the machine's own Debian sources but with a PRIVATE apt
state directory and ``APT::Architecture=<arch>``: this is what ``dpkg --add-architecture`` +
``apt-get download`` would give, except that the host's dpkg architectures and package lists are
never touched, so there is nothing to undo afterwards and parallel runs cannot race on dpkg.

Cached per architecture in ``<cache>/debian-<arch>-<KIT_VERSION>/`` where ``<cache>`` is
``$FIRECORE_TEST_CACHE`` or ``~/.cache/firecore-wizard-tests`` (shared by checkouts; CI starts
empty and rebuilds it in ~10 s), under a file lock so parallel pytest workers fetch once.
"""

from __future__ import annotations

import fcntl
import io
import os
import re
import shutil
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from steps.picore import cpio

#: Bump when what a kit holds changes: old kits are then left alone and a new one is built.
KIT_VERSION = "9"

#: busybox-static and CPython 3.11 with the libraries its interpreter and stdlib modules load
#: (piCore: python3.11.tcz and its openssl/libffi/readline/ncursesw/sqlite3/bzip2 deps). Not
#: libstdc++: piCore's base has none either (picore.md "Boot-script facts": gcc_libs.tcz).
USERLAND = (
    "busybox-static", "python3.11-minimal", "libpython3.11-minimal", "libpython3.11-stdlib",
    "libc6", "libgcc-s1", "libssl3", "libffi8", "zlib1g", "libexpat1", "libbz2-1.0",
    "liblzma5", "libsqlite3-0", "libuuid1", "libncursesw6", "libtinfo6", "libreadline8",
    "libdb5.3", "libcrypt1", "libnsl2", "libtirpc3", "libgssapi-krb5-2", "libkrb5-3",
    "libk5crypto3", "libkrb5support0", "libkeyutils1", "libcom-err2",
)  # fmt: skip

#: Modules the emulated board needs: the virtio transport, NIC and RNG (what udev loads on a
#: Pi for its own hardware), and loop + squashfs for the builtin extensions (tc-config does
#: ``modprobe loop``; mounting a TCZ pulls squashfs).
MODULES = ("virtio_mmio", "virtio_net", "virtio_rng", "loop", "squashfs")

#: Parts of the packages no boot needs (documentation, translations, iconv converters).
_PRUNE = ("usr/share", "usr/lib/*/gconv", "etc/ld.so.conf.d")
_UDHCPC_SAMPLE = "usr/share/doc/busybox-static/examples/udhcp/simple.script"


@dataclass(frozen=True)
class DebArch:
    """A Debian architecture and the qemu board that runs it."""

    name: str
    """Debian's name: armhf, arm64."""
    flavour: str
    """Kernel flavour: linux-image-<flavour> names the current kernel package."""
    qemu: str
    cpu: str
    """A CPU of the Pi's generation: Cortex-A15 (ARMv7, like the Pi 2/3 in 32-bit mode),
    Cortex-A57 (ARMv8, like the Pi 3/4's A53/A72)."""
    machine: str
    """``uname -m`` on the board (what the wheels' platform tag names)."""


ARMHF = DebArch("armhf", "armmp", "qemu-system-arm", "cortex-a15", "armv7l")
ARM64 = DebArch("arm64", "arm64", "qemu-system-aarch64", "cortex-a57", "aarch64")

#: piCore's release.arch → the Debian architecture with the same ABI (glibc hard-float / arm64).
FOR_PICORE = {"armv7": ARMHF, "armv7l": ARMHF, "armhf": ARMHF, "aarch64": ARM64}


@dataclass(frozen=True)
class Kit:
    """What a test boots: a kernel for ``-M virt``, busybox, and the userland archive."""

    arch: DebArch
    root: Path

    @property
    def kernel(self) -> Path:
        return self.root / "vmlinuz"

    @property
    def busybox(self) -> Path:
        return self.root / "busybox"

    @property
    def userland(self) -> Path:
        """newc cpio: busybox, Debian's CPython 3.11 + glibc, the kernel's modules. Left
        uncompressed (the kernel takes plain and gzip'd archives alike): inflating ~40 MB on the
        emulated CPU would add seconds to every boot."""
        return self.root / "userland.cpio"

    @property
    def kernel_release(self) -> str:
        return (self.root / "kernel-release").read_text().strip()

    @property
    def glibc(self) -> tuple[int, int]:
        """The userland's glibc (Debian 12: 2.36)."""
        major, minor = (self.root / "glibc").read_text().split(".")[:2]
        return int(major), int(minor)


#: The armhf kit under its old name (tests/test_kernel_boot.py).
ArmhfKit = Kit


class KitUnavailable(RuntimeError):
    """apt could not fetch the packages (no Debian mirror reachable)."""


def cache_root() -> Path:
    """Where kits are cached (shared by checkouts and pytest workers)."""
    env = os.environ.get("FIRECORE_TEST_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "firecore-wizard-tests"


def _apt(arch: DebArch, state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    opts = [
        "-q",
        "-o", f"APT::Architecture={arch.name}",
        "-o", f"APT::Architectures::={arch.name}",
        "-o", f"Dir::State={state / 'state'}",
        "-o", f"Dir::State::status={state / 'status'}",
        "-o", f"Dir::Cache={state / 'cache'}",
        "-o", "Acquire::Retries=3",
        "-o", "APT::Sandbox::User=root",  # the private directories are not _apt's
    ]  # fmt: skip
    tool = "apt-cache" if args[0] in ("depends", "policy") else "apt-get"
    return subprocess.run(
        [tool, *opts, *args], capture_output=True, text=True, timeout=600, cwd=state / "debs"
    )


def _download(arch: DebArch, work: Path) -> tuple[list[Path], Path]:
    """Fetch the userland packages and the kernel; returns (userland .debs, kernel .deb)."""
    for sub in ("state/lists/partial", "cache/archives/partial", "debs"):
        (work / sub).mkdir(parents=True)
    (work / "status").touch()
    update = _apt(arch, work, "update")  # a failing security list is fine if main is there
    lists = list((work / "state" / "lists").glob(f"*_main_binary-{arch.name}_Packages*"))
    if not lists:
        raise KitUnavailable(
            f"apt-get update found no {arch.name} package list: {update.stderr[-400:]}"
        )
    dep = _apt(arch, work, "depends", f"linux-image-{arch.flavour}").stdout
    m = re.search(rf"Depends: (linux-image-[0-9][^\s]*-{arch.flavour})\b", dep)
    if not m:
        raise KitUnavailable(f"no linux-image-*-{arch.flavour} in the lists: {dep[-300:]}")
    got = _apt(arch, work, "download", *USERLAND, m.group(1))
    debs = work / "debs"
    kernel = next(debs.glob("linux-image-*.deb"), None)
    userland = sorted(p for p in debs.glob("*.deb") if p != kernel)
    if got.returncode != 0 or kernel is None or len(userland) != len(USERLAND):
        raise KitUnavailable(f"apt-get download failed: {got.stderr[-400:]}")
    return userland, kernel


def _modinfo_depends(ko: Path) -> list[str]:
    """The ``depends=`` names of a module's .modinfo section (comma separated; may be empty)."""
    m = re.search(rb"(?:^|\0)depends=([^\0]*)\0", ko.read_bytes())
    return [d for d in (m.group(1).decode().split(",") if m else []) if d]


def _module_closure(moddir: Path, wanted: tuple[str, ...]) -> dict[str, list[str]]:
    """Relative .ko path → the relative paths it depends on, for ``wanted`` and their deps.

    Built-in modules (modules.builtin) need nothing. The .deb has no modules.dep (depmod writes
    it on install), so dependencies come from each module's own modinfo.
    """
    by_name = {p.name[: -len(".ko")].replace("-", "_"): p for p in moddir.rglob("*.ko")}
    builtin = {
        Path(line).name.removesuffix(".ko").replace("-", "_")
        for line in (moddir / "modules.builtin").read_text().split()
    }
    deps: dict[str, list[str]] = {}
    todo = [w.replace("-", "_") for w in wanted]
    while todo:
        name = todo.pop()
        if name in builtin:
            continue
        ko = by_name.get(name)
        if ko is None:
            raise KitUnavailable(f"module {name} is neither built in nor in the kernel package")
        rel = ko.relative_to(moddir).as_posix()
        if rel in deps:
            continue
        needs = [n.replace("-", "_") for n in _modinfo_depends(ko)]
        todo += needs
        deps[rel] = [by_name[n].relative_to(moddir).as_posix() for n in needs if n not in builtin]
    return deps


def _modules_dep(deps: dict[str, list[str]]) -> str:
    """modules.dep as depmod writes it: each module with its whole dependency chain."""

    def chain(rel: str, seen: list[str]) -> list[str]:
        for d in deps[rel]:
            if d not in seen:
                seen.append(d)
                chain(d, seen)
        return seen

    return "".join(f"{rel}: {' '.join(chain(rel, []))}".rstrip() + "\n" for rel in sorted(deps))


def _tree_entries(root: Path, prefix: str = "") -> list[cpio.Entry]:
    """Every directory, file and symlink under ``root`` as root-owned archive members."""
    out: list[cpio.Entry] = []
    for path in sorted(root.rglob("*")):
        name = prefix + path.relative_to(root).as_posix()
        st = path.lstat()
        perm = stat.S_IMODE(st.st_mode)
        if stat.S_ISLNK(st.st_mode):
            out.append(cpio.symlink(name, os.readlink(path)))
        elif stat.S_ISDIR(st.st_mode):
            out.append(cpio.directory(name, perm))
        elif stat.S_ISREG(st.st_mode):
            out.append(cpio.regular(name, path.read_bytes(), perm))
    return out


def _parents(names: list[str]) -> list[cpio.Entry]:
    dirs = {"/".join(n.split("/")[:i]) for n in names for i in range(1, n.count("/") + 1)}
    return [cpio.directory(d, 0o755) for d in dirs]


def _compile_stdlib(root: Path) -> None:
    """Byte-compile the standard library, as Debian's postinst (py3compile) does on install.

    Bytecode does not depend on the CPU, and every 3.11.x shares one bytecode format, so this
    machine's interpreter can do it when it is a 3.11 too; otherwise the board compiles in
    memory at each start (slower, same result). ``unchecked-hash``: the archive members carry
    no meaningful mtimes to check against.
    """
    if sys.version_info[:2] != (3, 11):
        return
    stdlib = root / "usr" / "lib" / "python3.11"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "compileall",
            "-q",
            "-j",
            "0",
            "--invalidation-mode",
            "unchecked-hash",
            "-s",
            str(root),
            "-p",
            "/",
            str(stdlib),
        ],
        check=False,
        capture_output=True,
        timeout=600,
    )  # fmt: skip  (a few test modules with deliberate syntax errors fail; that is fine)


def _link_libs(root: Path) -> None:
    """``/lib/<name>`` → ``<triplet>/<name>`` for each library in Debian's multiarch ``/lib``.

    piCore keeps glibc directly in /lib, and the fixture's rootfs has placeholder files there
    (libc.so.6 …); these links replace them, so no placeholder can shadow a real library.
    """
    lib = root / "lib"
    for triplet in [p for p in lib.iterdir() if p.is_dir() and "-linux-" in p.name]:
        for path in triplet.iterdir():
            link = lib / path.name
            if ".so" in path.name and not link.exists() and not link.is_symlink():
                link.symlink_to(f"{triplet.name}/{path.name}")


def _build(arch: DebArch, dest: Path) -> None:
    work = dest.with_name(dest.name + ".work")
    shutil.rmtree(work, ignore_errors=True)
    userland_debs, kernel_deb = _download(arch, work)
    root = work / "root"
    for deb in userland_debs:
        subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
    # busybox's sample udhcpc script where Debian's busybox looks for it (stands in for piCore's
    # /usr/share/udhcpc/default.script)
    dhcp_script = (root / _UDHCPC_SAMPLE).read_bytes()
    for pattern in _PRUNE:
        for p in root.glob(pattern):
            shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()
    script = root / "etc" / "udhcpc" / "default.script"
    script.parent.mkdir(parents=True)
    script.write_bytes(dhcp_script)
    script.chmod(0o755)
    _compile_stdlib(root)
    _link_libs(root)
    kernel = work / "kernel"
    subprocess.run(["dpkg-deb", "-x", str(kernel_deb), str(kernel)], check=True)
    (release,) = [p.name for p in (kernel / "lib" / "modules").iterdir()]
    moddir = kernel / "lib" / "modules" / release
    deps = _module_closure(moddir, MODULES)

    entries = _tree_entries(root)
    mod_prefix = f"lib/modules/{release}/"
    mods = [
        cpio.regular(mod_prefix + rel, (moddir / rel).read_bytes(), 0o644) for rel in sorted(deps)
    ]
    mods.append(cpio.regular(mod_prefix + "modules.dep", _modules_dep(deps).encode(), 0o644))
    have = {e.name for e in entries}
    entries += mods + [d for d in _parents([m.name for m in mods]) if d.name not in have]
    clash = {"tmp", "opt", "home", "root"} & {e.name.split("/")[0] for e in entries}
    if clash:  # the userland must not change what the release's rootfs sets up
        raise KitUnavailable(f"the {arch.name} userland would replace /{', /'.join(clash)}")
    raw = io.BytesIO()
    cpio.write(cpio.sort_entries(entries), raw)

    out = work / "kit"
    out.mkdir()
    (out / "userland.cpio").write_bytes(raw.getvalue())
    shutil.copy(root / "bin" / "busybox", out / "busybox")
    shutil.copy(next((kernel / "boot").glob("vmlinuz-*")), out / "vmlinuz")
    (out / "kernel-release").write_text(release + "\n")
    libc6 = next(p.name for p in userland_debs if p.name.startswith("libc6_"))
    (out / "glibc").write_text(re.split(r"[_-]", libc6)[1] + "\n")  # libc6_2.36-9+deb12u14_…
    shutil.rmtree(dest, ignore_errors=True)
    os.rename(out, dest)
    shutil.rmtree(work, ignore_errors=True)


def ensure_kit(arch: DebArch = ARMHF, cache: Path | None = None) -> Kit:
    """The cached kit for ``arch``, fetching and building it first if needed (once, locked)."""
    base = (cache or cache_root()) / f"debian-{arch.name}-{KIT_VERSION}"
    base.mkdir(parents=True, exist_ok=True)
    kit = Kit(arch, base / "kit")
    with (base / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not all(p.is_file() for p in (kit.kernel, kit.busybox, kit.userland)):
            _build(arch, kit.root)
    return kit
