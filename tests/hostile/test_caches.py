"""Caches are verified when reused, and what fails is evicted (issue 10, root cause 5).

Each test damages one cache entry the way a bad disk, a crash or a curious user would (same
size, other bytes) and checks that the build never publishes it under a sum it does not have,
and that "run again" — the fix it prints — works.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import json
import shutil
from pathlib import Path

import pytest

from steps.demo.factory import Mirror
from steps.errors import ChecksumError, RemasterError
from steps.fetch.download import Downloader, Want
from tests.test_remaster import Build


def _damage(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def _matches_manifest(out: Path) -> bool:
    manifest = json.loads((out / "manifest.json").read_text())
    return all(
        hashlib.sha256((out / rel).read_bytes()).hexdigest() == meta["sha256"]
        for rel, meta in manifest["files"].items()
    )


def test_a_damaged_cached_overlay_is_rebuilt_not_published(
    fake_mirror: Mirror, tmp_path: Path
) -> None:
    b = Build(fake_mirror, "15.0.0", tmp_path)
    b.run()
    cached = next((tmp_path / "cache" / "remaster" / "overlays").glob("*.gz"))
    _damage(cached)
    b.answers.build.output = str(tmp_path / "out2")
    b.run()
    out = tmp_path / "out2"
    gzip.decompress((out / "overlay.gz").read_bytes())  # a Pi can unpack it
    assert _matches_manifest(out)
    assert (out / "overlay.gz").read_bytes() == (tmp_path / "out" / "overlay.gz").read_bytes()


def test_a_damaged_extracted_boot_file_fails_once_then_run_again_works(
    fake_mirror: Mirror, tmp_path: Path
) -> None:
    b = Build(fake_mirror, "15.0.0", tmp_path)
    b.run()
    entry = next((tmp_path / "cache" / "boot").iterdir())
    victim = next(p for p in sorted((entry / "p1").rglob("*")) if p.is_file() and p.stat().st_size)
    _damage(victim)
    b.answers.build.output = str(tmp_path / "out2")
    with pytest.raises(RemasterError) as err:
        b.run()
    assert "run again" in err.value.fix
    b.run()  # the fix works: the extraction was evicted and is made again
    assert _matches_manifest(tmp_path / "out2")


def test_a_boot_file_of_another_size_is_re_extracted_silently(
    fake_mirror: Mirror, tmp_path: Path
) -> None:
    b = Build(fake_mirror, "15.0.0", tmp_path)
    b.run()
    entry = next((tmp_path / "cache" / "boot").iterdir())
    victim = next(p for p in sorted((entry / "p1").rglob("*")) if p.is_file())
    victim.write_bytes(b"truncated")
    b.answers.build.output = str(tmp_path / "out2")
    b.run()
    assert _matches_manifest(tmp_path / "out2")


def test_a_cached_tcz_that_fails_its_md5_is_evicted(fake_mirror: Mirror, tmp_path: Path) -> None:
    b = Build(fake_mirror, "15.0.0", tmp_path)
    art, ext, bundle = b.inputs()
    objects = tmp_path / "cache" / "downloads" / "objects" / "md5"
    files = {}
    for pkg in ext.packages:  # type: ignore[attr-defined]
        dest = objects / (pkg.md5 or "0" * 32) / pkg.name
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ext.files[pkg.name], dest)  # type: ignore[attr-defined]
        files[pkg.name] = dest
    victim = files[ext.packages[0].name]  # type: ignore[attr-defined]
    _damage(victim)
    fixed = dataclasses.replace(ext, files=files)  # type: ignore[type-var]
    b.inputs = lambda: (art, fixed, bundle)  # type: ignore[method-assign]
    with pytest.raises(ChecksumError) as err:
        b.run()
    assert not victim.exists()  # the next run downloads it afresh
    assert "run again" in err.value.fix


def test_a_hash_named_download_with_other_bytes_is_not_reused(tmp_path: Path) -> None:
    data = b"the real bytes"
    md5 = hashlib.md5(data).hexdigest()
    obj = tmp_path / "downloads" / "objects" / "md5" / md5 / "x.tcz"
    obj.parent.mkdir(parents=True)
    obj.write_bytes(b"other bytes!!!")
    with Downloader(["http://127.0.0.1:9/"], tmp_path) as dl:
        assert dl.cached(Want("15.x/armhf/tcz/x.tcz", md5)) is None
    assert not obj.exists()
