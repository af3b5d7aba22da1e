"""The newc writer against GNU cpio, and the reader against GNU cpio's output."""

from __future__ import annotations

import gzip
import io
import os
import subprocess
import zlib
from pathlib import Path

import pytest

from steps.picore import cpio


def _sample() -> list[cpio.Entry]:
    return cpio.sort_entries(
        [
            cpio.regular("tmp/builtin/onboot.lst", b"openssh.tcz\n"),
            cpio.directory("tmp", 0o1777),
            cpio.directory("tmp/builtin"),
            cpio.directory("home/tc", 0o750, 1001, 50),
            cpio.directory("home", 0o755),
            cpio.regular("home/tc/.x", b"abc", 0o600, 1001, 50),
            cpio.symlink("tmp/link", "builtin"),
        ]
    )


def test_gnu_cpio_lists_what_we_wrote(tmp_path: Path) -> None:
    buf = io.BytesIO()
    cpio.write(_sample(), buf)
    archive = tmp_path / "a.cpio"
    archive.write_bytes(buf.getvalue())
    listing = subprocess.run(
        ["cpio", "-itv", "--numeric-uid-gid", "-F", str(archive)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    names = [line.split()[-1] if "->" not in line else line.split()[-3] for line in listing]
    assert names == [
        "home",
        "home/tc",
        "home/tc/.x",
        "tmp",
        "tmp/builtin",
        "tmp/builtin/onboot.lst",
        "tmp/link",
    ]
    assert listing[3].startswith("drwxrwxrwt")
    assert listing[1].split()[:4] == ["drwxr-x---", "1", "1001", "50"]
    # and it extracts
    dest = tmp_path / "x"
    dest.mkdir()
    subprocess.run(["cpio", "-idm", "--quiet", "-F", str(archive)], cwd=dest, check=True)
    assert (dest / "tmp/builtin/onboot.lst").read_bytes() == b"openssh.tcz\n"


def test_deterministic_bytes() -> None:
    a, b = io.BytesIO(), io.BytesIO()
    cpio.write(_sample(), a)
    cpio.write(_sample(), b)
    assert cpio.gzip_bytes(a.getvalue()) == cpio.gzip_bytes(b.getvalue())
    assert gzip.decompress(cpio.gzip_bytes(a.getvalue())) == a.getvalue()


def test_reader_reads_gnu_cpio_output(tmp_path: Path) -> None:
    src = tmp_path / "t"
    (src / "opt").mkdir(parents=True)
    (src / "opt/bootlocal.sh").write_text("#!/bin/sh\n")
    (src / "opt").chmod(0o775)
    raw = subprocess.run(
        "find . | LC_ALL=C sort | cpio -o -H newc -R 0:50 --quiet",
        shell=True,
        cwd=src,
        capture_output=True,
        check=True,
    ).stdout
    entries = {e.name: e for e in cpio.read(io.BytesIO(raw))}
    assert entries["opt"].mode == 0o40775 and entries["opt"].gid == 50
    assert entries["opt/bootlocal.sh"].data == b"#!/bin/sh\n"


def test_sort_rejects_orphans_duplicates_and_dot() -> None:
    with pytest.raises(ValueError, match="no parent"):
        cpio.sort_entries([cpio.regular("a/b", b"")])
    with pytest.raises(ValueError, match="duplicate"):
        cpio.sort_entries([cpio.directory("a"), cpio.directory("./a")])
    with pytest.raises(ValueError):
        cpio.sort_entries([cpio.directory(".")])
    with pytest.raises(ValueError):
        cpio.sort_entries([cpio.directory("a/../b")])


def test_a_levelled_gzip_is_one_member_that_standard_tools_read() -> None:
    """Level changes between writes (TCZs at level 1 in the overlay) keep a single gzip member."""
    parts = [os.urandom(70_000) if n % 3 == 0 else b"firecore %d " % n * 4_000 for n in range(12)]
    buf = io.BytesIO()
    gz = cpio.LevelledGzip(buf, 6)
    for n, part in enumerate(parts):
        gz.level = 1 if n % 3 == 0 else 6
        gz.write(part)
    gz.close()
    data = buf.getvalue()
    assert gzip.decompress(data) == b"".join(parts)
    unzipped = subprocess.run(["gzip", "-dc"], input=data, capture_output=True, check=True)
    assert unzipped.stdout == b"".join(parts)
    listed = subprocess.run(["gzip", "-lv"], input=data, capture_output=True)
    assert listed.returncode == 0, listed.stderr
    # one member: zlib reads the whole input as a single gzip stream with nothing left over
    inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
    assert inflate.decompress(data) == b"".join(parts) and inflate.eof and not inflate.unused_data
    empty = io.BytesIO()
    cpio.LevelledGzip(empty, 6).close()
    assert gzip.decompress(empty.getvalue()) == b""
