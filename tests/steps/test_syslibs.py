"""What compiled code finds on the Pi: DT_NEEDED of ELF files, the release's glibc and libraries."""

from __future__ import annotations

import _ssl
import gzip
import io
from pathlib import Path

import pytest

from steps.demo.factory import Mirror
from steps.picore import cpio
from steps.picore.elf import needed
from steps.picore.syslibs import glibc_of, listed_names, provides, read_system
from tests.support.elf import shared_object


@pytest.mark.parametrize(("bits", "big"), [(32, False), (64, False), (32, True), (64, True)])
def test_dt_needed_of_crafted_shared_objects(bits: int, big: bool) -> None:
    names = ["libstdc++.so.6", "libm.so.6", "libc.so.6"]
    assert needed(shared_object(names, bits=bits, big_endian=big)) == names


def test_dt_needed_of_a_real_extension_module() -> None:
    """The interpreter's own _ssl module links OpenSSL and libc dynamically."""
    data = Path(_ssl.__file__).read_bytes()
    assert {"libssl.so.3", "libc.so.6"} <= set(needed(data))


def test_not_elf_and_static_files_need_nothing() -> None:
    assert needed(b"#!/bin/sh\n") == []
    assert needed(shared_object([])) == []


def test_glibc_from_the_banner_or_the_symbol_versions() -> None:
    assert glibc_of(
        b"\x7fELF...GNU C Library (Debian GLIBC 2.36-9) stable release version 2.36."
    ) == (
        2,
        36,
    )
    assert glibc_of(b"GLIBC_2.4\0GLIBC_2.28\0GLIBC_2.17\0GLIBC_PRIVATE") == (2, 28)
    assert glibc_of(b"no version here") is None


def _archive(tmp: Path, entries: list[cpio.Entry]) -> Path:
    raw = io.BytesIO()
    cpio.write(cpio.sort_entries(entries), raw)
    path = tmp / "rootfs.gz"
    path.write_bytes(gzip.compress(raw.getvalue()))
    return path


def test_read_system_follows_the_libc_link_of_old_glibc(tmp_path: Path) -> None:
    rootfs = _archive(
        tmp_path,
        [
            cpio.directory("lib"),
            cpio.regular("lib/libc-2.28.so", b"\x7fELF stand-in"),
            cpio.symlink("lib/libc.so.6", "libc-2.28.so"),
            cpio.regular("lib/libm.so.6", b"\x7fELF"),
            cpio.directory("usr"),
            cpio.directory("usr/share"),
            cpio.regular("usr/share/libnot.so.1", b"not a library dir"),
        ],
    )
    system = read_system([rootfs])
    assert system.glibc == (2, 28) and system.glibc_text == "2.28"
    assert {"libc.so.6", "libm.so.6", "libc-2.28.so"} <= system.libraries
    assert "libnot.so.1" not in system.libraries


@pytest.mark.parametrize(("version", "glibc"), [("12.0", (2, 28)), ("15.0.0", (2, 38))])
def test_read_system_of_the_demo_releases(
    fake_mirror: Mirror, tmp_path: Path, version: str, glibc: tuple[int, int]
) -> None:
    from steps.demo.release import boot_partition_files

    release = fake_mirror.release(version)
    files = boot_partition_files(release.spec)
    rootfs = tmp_path / release.spec.rootfs
    rootfs.write_bytes(files[release.spec.rootfs])
    system = read_system([rootfs])
    assert system.glibc == glibc
    assert "libc.so.6" in system.libraries and "libstdc++.so.6" not in system.libraries


def test_provides_and_lists_name_what_ships_a_library() -> None:
    index = (
        b"gcc_libs.tcz\nusr/local/lib/libstdc++.so.6\nusr/local/lib/libgomp.so.1\n\n"
        b"zlib.tcz\nusr/local/lib/libz.so.1\n"
    )
    where = provides(index)
    assert where["libstdc++.so.6"] == ["gcc_libs.tcz"] and where["libz.so.1"] == ["zlib.tcz"]
    assert listed_names({"a.tcz": ("usr/local/lib/liba.so.1", "usr/local/bin/a")}) == {
        "liba.so.1",
        "a",
    }
