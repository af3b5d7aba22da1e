"""Atomic writes and directory replacement leave the old output intact on failure."""

from __future__ import annotations

from pathlib import Path

import pytest

from steps.fsutil import atomic_write, backup, replacing_dir


def test_atomic_write_sets_mode_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "a" / "f.conf"
    atomic_write(target, "x=1\n", 0o600)
    assert target.read_text() == "x=1\n"
    assert oct(target.stat().st_mode & 0o777) == "0o600"
    assert [p.name for p in target.parent.iterdir()] == ["f.conf"]


def test_replacing_dir_swaps_whole_trees(tmp_path: Path) -> None:
    out = tmp_path / "boot"
    with replacing_dir(out) as stage:
        (stage / "config.txt").write_text("v1")
    with replacing_dir(out) as stage:
        (stage / "config.txt").write_text("v2")
        (stage / "overlay.gz").write_text("o")
    assert sorted(p.name for p in out.iterdir()) == ["config.txt", "overlay.gz"]
    assert (out / "config.txt").read_text() == "v2"
    assert [p.name for p in tmp_path.iterdir()] == ["boot"]


def test_failure_keeps_previous_tree(tmp_path: Path) -> None:
    out = tmp_path / "boot"
    with replacing_dir(out) as stage:
        (stage / "config.txt").write_text("good")
    with pytest.raises(RuntimeError), replacing_dir(out) as stage:
        (stage / "config.txt").write_text("half")
        raise RuntimeError("boom")
    assert (out / "config.txt").read_text() == "good"
    assert [p.name for p in tmp_path.iterdir()] == ["boot"]


def test_backup_keeps_every_version(tmp_path: Path) -> None:
    conf = tmp_path / "firecore.conf"
    assert backup(conf) is None
    conf.write_text("one")
    first = backup(conf, tmp_path / "bak")
    conf.write_text("two")
    second = backup(conf, tmp_path / "bak")
    assert first and second and first != second
    assert first.read_text() == "one" and second.read_text() == "two"
