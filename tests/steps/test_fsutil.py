"""Atomic writes and directory replacement leave the old output intact on failure."""

from __future__ import annotations

import hashlib
import json
import sys
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


def test_cache_stores_that_are_not_what_we_wrote_cost_a_read_not_a_crash(tmp_path: Path) -> None:
    """A damaged digests store or parsed-sources list is ignored entry by entry."""
    from steps.fsutil import KnownDigests
    from steps.picore.appbundle import ParsedSources

    f = tmp_path / "f"
    f.write_bytes(b"x")
    store = tmp_path / "digests.json"
    for entry in ("1", "[1, 2]", '{"a": 1}', '[1,2,3,4,5,"s","not a time"]', "null"):
        store.write_text(json.dumps({str(f): json.loads(entry)}))
        digests = KnownDigests(store)
        assert digests.known(f) is None
        assert digests.sha256(f) == hashlib.sha256(b"x").hexdigest()
    store.write_text("[]")
    assert KnownDigests(store).known(f) is None
    parsed = tmp_path / "parsed.json"
    pair = f"{sys.version_info[0]}.{sys.version_info[1]}>3.11"
    parsed.write_text(json.dumps({pair: [{}, 1, "ab"], "x": "not a list"}))
    assert "ab" in ParsedSources(parsed, "3.11")
