"""build.sd_image: the built tree as an SD-card image beside it, read back with real tools."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

from steps.demo.factory import Mirror
from steps.events import LogLine, Planned
from tests.support import remaster_support as rs
from tests.support.cards import fsck_partition, read_back
from tests.test_remaster import Build


def build(mirror: Mirror, tmp: Path) -> Build:
    b = Build(mirror, "15.0.0", tmp)
    b.answers.build.sd_image = True
    return b


def manifest(b: Build) -> dict:
    return json.loads((b.out / "manifest.json").read_text())  # type: ignore[no-any-return]


def test_image_holds_exactly_the_served_tree(fake_mirror: Mirror, tmp_path: Path) -> None:
    b = build(fake_mirror, tmp_path)
    b.run()
    res = b.result()
    image = b.out.parent / f"firecore-{res.build_id}.img"
    assert res.sd_image == image and image.is_file()
    m = manifest(b)
    assert m["sd_image"]["file"] == image.name
    assert m["sd_image"]["sha256"] == hashlib.sha256(image.read_bytes()).hexdigest()
    assert m["sd_image"]["size"] == image.stat().st_size

    rb = read_back(image, tmp_path / "rb")
    assert rb.table["label"] == "dos" and rb.table["id"] == f"0x{res.build_id[:8]}"
    assert [p["type"] for p in rb.table["partitions"]] == ["c"]
    tree = {rel: (b.out / rel).read_bytes() for rel in m["files"]}
    assert rb.files == tree  # every served file, byte for byte, and nothing else
    assert "manifest.json" not in rb.files
    assert "overlays" in rb.dirs  # empty directories of the boot partition too
    assert f"serial number: {res.build_id[:8]}" in rb.minfo.lower()
    fsck_partition(image, rb, tmp_path)


def test_same_build_same_image_bytes(fake_mirror: Mirror, tmp_path: Path) -> None:
    b = build(fake_mirror, tmp_path)
    b.run()
    first = b.result().sd_image
    assert first is not None
    data = first.read_bytes()
    shutil.rmtree(b.out)
    first.unlink()
    shutil.rmtree(tmp_path / "cache")
    b.run()
    assert b.result().sd_image == first and first.read_bytes() == data


def test_rebuilds_keep_remake_and_replace_the_image(fake_mirror: Mirror, tmp_path: Path) -> None:
    b = build(fake_mirror, tmp_path)
    b.run()
    image = b.result().sd_image
    assert image is not None
    stamp = image.stat().st_mtime_ns, image.stat().st_ino

    events = b.run()  # nothing changed: the image is verified, not rewritten
    assert (image.stat().st_mtime_ns, image.stat().st_ino) == stamp
    assert any(isinstance(e, LogLine) and "up to date" in e.text for e in events)

    image.unlink()  # gone: an unchanged tree gets its image back
    b.run()
    assert b.result().changed is False and image.is_file()
    assert manifest(b)["sd_image"]["sha256"] == hashlib.sha256(image.read_bytes()).hexdigest()

    b.bundle = rs.app_bundle(b.app_dir, message="changed")
    b.run()  # a new build: a new image, and the old one is removed
    new = b.result().sd_image
    assert new is not None and new != image and new.is_file() and not image.exists()
    assert manifest(b)["sd_image"]["file"] == new.name


def test_off_by_default_and_planned_in_a_dry_run(fake_mirror: Mirror, tmp_path: Path) -> None:
    b = Build(fake_mirror, "15.0.0", tmp_path)
    b.run()
    assert b.result().sd_image is None and "sd_image" not in manifest(b)
    assert not list(b.out.parent.glob("firecore-*.img"))
    b2 = build(fake_mirror, tmp_path / "dry")
    events = b2.run(dry_run=True)
    planned = [e.target for e in events if isinstance(e, Planned) and "/firecore-" in e.target]
    assert len(planned) == 1 and planned[0].endswith(".img")
    assert not b2.out.exists()
