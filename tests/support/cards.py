"""Reading card images back with the real tools, independently of the code that wrote them.

``sfdisk --json`` for the partition table, ``mcopy -s`` for the files, ``fsck.fat -n`` on the
partition's bytes for the file system's integrity, ``minfo`` for its parameters.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ENV = {**os.environ, "MTOOLS_SKIP_CHECK": "1", "LC_ALL": "C"}


@dataclass
class ReadBack:
    """What a card image holds, as the standard tools see it."""

    table: dict[str, Any]
    """``sfdisk --json`` → ["partitiontable"]."""
    offset: int
    """Byte offset of the first partition."""
    files: dict[str, bytes]
    """Relative path → bytes of every file on the FAT partition."""
    dirs: set[str]
    """Every directory on the FAT partition (relative, no trailing slash)."""
    minfo: str


def read_back(image: Path, scratch: Path) -> ReadBack:
    """Table, files and parameters of ``image`` (files copied out below ``scratch``)."""
    table = json.loads(
        subprocess.run(
            ["sfdisk", "--json", str(image)], check=True, capture_output=True, text=True
        ).stdout
    )["partitiontable"]
    offset = int(table["partitions"][0]["start"]) * int(table.get("sectorsize", 512))
    out = scratch / "files"
    out.mkdir(parents=True)
    subprocess.run(
        ["mcopy", "-s", "-n", "-i", f"{image}@@{offset}", "::/", f"{out}/"],
        check=True, capture_output=True, env=ENV,
    )  # fmt: skip
    files = {
        p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()
    }
    dirs = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_dir()}
    info = subprocess.run(
        ["minfo", "-i", f"{image}@@{offset}", "::"],
        check=True, capture_output=True, text=True, env=ENV,
    ).stdout  # fmt: skip
    return ReadBack(table, offset, files, dirs, info)


def fsck_partition(image: Path, rb: ReadBack, scratch: Path) -> str:
    """``fsck.fat -n`` (check only) on a copy of the partition; its output (raises on errors)."""
    part = rb.table["partitions"][0]
    size = int(part["size"]) * 512
    copy = scratch / "partition.fat"
    with open(image, "rb") as src, open(copy, "wb") as dst:
        src.seek(rb.offset)
        left = size
        while left:
            chunk = src.read(min(left, 1 << 20))
            assert chunk, "image shorter than its partition"
            dst.write(chunk)
            left -= len(chunk)
    proc = subprocess.run(
        ["fsck.fat", "-n", "-v", str(copy)], capture_output=True, text=True, env=ENV
    )
    copy.unlink()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout
