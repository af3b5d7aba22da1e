"""Card images (MBR + FAT32) written by steps.picore.sdcard, read back with sfdisk/mtools/fsck."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from steps.errors import Cancelled, StepError
from steps.events import Progress, drive
from steps.picore.sdcard import START_SECTOR, CardFile, CardImage, geometry, write_card
from tests.support.cards import fsck_partition, read_back


def sample(tmp: Path) -> list[CardFile]:
    src = tmp / "src"
    (src / "overlays").mkdir(parents=True)
    kernel = src / "kernel6647v7.img"
    kernel.write_bytes(os.urandom(300_000))
    renamed = src / "other-name.bin"
    renamed.write_bytes(b"stored under another name\n")
    big = src / "rootfs-piCore-15.0.gz"
    big.write_bytes(os.urandom(17 << 20))  # more than one mcopy batch
    return [
        CardFile("config.txt", data=b"[ALL]\nkernel kernel6647v7.img\n"),
        CardFile("kernel6647v7.img", source=kernel),
        CardFile("rootfs-piCore-15.0.gz", source=big),
        CardFile("bootcode.bin", source=renamed),
        CardFile("overlays/vc4-kms-v3d-pi4.dtbo", data=b"\xd0\x0d\xfe\xed" * 100),
        CardFile("overlays/README", data=b"overlays\n"),
        CardFile("a/b/deep.txt", data=b"deep\n"),
    ]


def test_card_reads_back_byte_for_byte_with_the_standard_tools(tmp_path: Path) -> None:
    files = sample(tmp_path)
    dest = tmp_path / "out" / "card.img"
    events: list[object] = []
    card = drive(
        write_card(
            "t", files, dest, label="FIRECORE", serial=0x1A2B3C4D, mtime=1700000000,
            dirs=["empty"],
        ),
        events.append,
    )  # fmt: skip
    assert isinstance(card, CardImage) and card.path == dest and card.files == len(files)
    assert dest.stat().st_size == card.size
    progress = [e for e in events if isinstance(e, Progress)]
    assert progress[-1].done == progress[-1].total == sum(f.size for f in files)
    assert len(progress) >= 4  # the big file is its own batch

    rb = read_back(dest, tmp_path / "rb")
    assert rb.table["label"] == "dos" and rb.table["id"] == "0x1a2b3c4d"
    (part,) = rb.table["partitions"]
    assert part["start"] == START_SECTOR and part["type"] == "c"
    assert rb.offset == card.partition_offset
    assert (part["start"] + part["size"]) * 512 == card.size
    want = {f.path: (f.data if f.data is not None else f.source.read_bytes()) for f in files}  # type: ignore[union-attr]
    assert rb.files == want
    assert {"overlays", "a", "a/b", "empty"} <= rb.dirs
    assert "FIRECORE" in rb.minfo and "serial number: 1a2b3c4d" in rb.minfo.lower()
    assert "fat bits: 32" in rb.minfo or "FAT32" in rb.minfo
    report = fsck_partition(dest, rb, tmp_path)
    assert f"{len(files) + 5} files" in report  # the files and their 5 directories
    assert not list(dest.parent.glob(".*staging*"))


def test_same_files_give_the_same_bytes_whatever_the_clock(tmp_path: Path) -> None:
    files = sample(tmp_path)
    a = tmp_path / "a.img"
    b = tmp_path / "b.img"
    first = drive(write_card("t", files, a, label="FIRECORE", serial=7, mtime=1600000000))
    for f in files:  # the build host's mtimes must not reach the card
        if f.source is not None:
            os.utime(f.source, (time.time(), time.time() + 3600))
    time.sleep(1.1)  # FAT timestamps have 2 s resolution: a leaked clock would show
    second = drive(write_card("t", files, b, label="FIRECORE", serial=7, mtime=1600000000))
    assert first.sha256 == second.sha256 and a.read_bytes() == b.read_bytes()
    third = drive(write_card("t", files, b, label="FIRECORE", serial=8, mtime=1600000000))
    assert third.sha256 != first.sha256


def test_names_fat_cannot_tell_apart_are_refused(tmp_path: Path) -> None:
    files = [CardFile("Config.txt", data=b"a"), CardFile("config.txt", data=b"b")]
    with pytest.raises(StepError, match="case-insensitive"):
        drive(write_card("t", files, tmp_path / "x.img", label="X", serial=1, mtime=0))
    with pytest.raises(StepError, match="relative path"):
        drive(write_card("t", [CardFile("../x", data=b"")], tmp_path / "x.img", label="X",
                       serial=1, mtime=0))  # fmt: skip
    assert list(tmp_path.iterdir()) == []


def test_cancel_leaves_nothing_behind(tmp_path: Path) -> None:
    cancel = threading.Event()
    gen = write_card("t", sample(tmp_path), tmp_path / "out" / "c.img", label="X", serial=1,
                     mtime=0, cancel=cancel)  # fmt: skip
    next(gen)  # the first progress event: the file system exists
    cancel.set()
    with pytest.raises(Cancelled):
        drive(gen)
    assert list((tmp_path / "out").iterdir()) == []


@pytest.mark.parametrize(
    ("sizes", "spc"),
    [([1000], 1), ([50 << 20], 2), ([200 << 20], 8), ([900 << 20], 8)],
)
def test_geometry_keeps_fat32_cluster_counts(sizes: list[int], spc: int) -> None:
    sectors, got = geometry(sizes)
    assert got == spc
    assert sectors * 512 >= sum(sizes) and sectors % 2048 == 0
    assert sectors // got >= 65525
