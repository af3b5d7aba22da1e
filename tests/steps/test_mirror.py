"""Browsing releases on the fixture mirror: catalogue, bounded resolution, failover, catalog."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from steps.artifacts import ReleaseRef
from steps.demo.factory import Mirror
from steps.demo.server import MirrorServer, Status
from steps.errors import AnswersError
from steps.events import Event, LogLine, drive
from steps.fetch.catalog import (
    OFFLINE_NOTE,
    browse_releases,
    catalog_entries,
    find,
    load_catalog,
    offline_catalogue,
    offline_resolved,
)
from steps.fetch.download import Downloader
from steps.fetch.mirror import resolve_release, scan_releases, version_key


def dl(cache: Path, *mirrors: str) -> Downloader:
    return Downloader(list(mirrors), cache, backoff=0.01, connect_timeout=1.0, read_timeout=5.0)


def expected_paths(mirror: Mirror) -> set[str]:
    """Every release file the fixture published (aliases in other arch dirs included)."""
    return {p for r in mirror.releases for p in (r.path, *r.aliases)}


@pytest.mark.parametrize("style", ["apache", "apache-pre", "nginx"])
def test_scan_lists_every_release_in_every_listing_style(
    fake_mirror: Mirror, tmp_path: Path, style: Any
) -> None:
    with MirrorServer(fake_mirror.root, listing=style) as server, dl(tmp_path, server.url) as d:
        cat = drive(scan_releases(d))
        pages = server.count("*/")
    assert cat is not None and cat.mirror == server.url and not cat.offline
    assert {r.path for r in cat.refs} == expected_paths(fake_mirror)
    by_path = {r.path: r for r in cat.refs}
    for rel in fake_mirror.releases:
        ref: ReleaseRef = by_path[rel.path]
        assert (ref.version, ref.arch, ref.filename) == (rel.version, rel.arch, rel.filename)
        assert ref.layout == rel.spec.layout
        assert ref.flavour == rel.spec.flavour
        assert ref.beta == rel.spec.beta
        assert ref.date.startswith(rel.spec.date)
        assert ref.size is not None and abs(ref.size - rel.size) <= max(0.06 * rel.size, 1024)
    keys = [version_key(r.version) for r in cat.refs]
    assert keys == sorted(keys, reverse=True)  # newest first
    assert cat.refs[0].version == "16.0.0" and cat.refs[-1].version == "12.0"
    # bounded: root + each major + each arch + the release dirs that exist, nothing else
    assert pages <= 1 + 3 + 6 + 6, pages
    assert server.count("*/tcz/*") == 0


def test_scan_can_be_limited_to_some_majors(
    fake_mirror: Mirror, mirror_server: MirrorServer, tmp_path: Path
) -> None:
    with dl(tmp_path, mirror_server.url) as d:
        cat = drive(scan_releases(d, majors=[15]))
    assert cat is not None
    assert {r.version for r in cat.refs} == {"15.0.0", "15.0.0-beta2"}
    assert mirror_server.count("/12.x/*") == mirror_server.count("/16.x/*") == 0


@pytest.mark.parametrize(
    ("version", "arch"),
    [("15.0.0", "armhf"), ("16.0.0", "aarch64"), ("15.0.0-beta2", "aarch64"), ("12.0", "armv7")],
)
def test_resolve_reads_only_a_few_pages_and_is_cached(
    fake_mirror: Mirror, mirror_server: MirrorServer, tmp_path: Path, version: str, arch: str
) -> None:
    rel = fake_mirror.release(version, arch)
    with dl(tmp_path, mirror_server.url) as d:
        found = drive(resolve_release(d, version, arch))
    assert found is not None
    assert found.ref.path == rel.path and found.mirror == mirror_server.url
    assert found.ref.beta == rel.spec.beta
    assert found.md5_path == (f"{rel.path}.md5.txt" if rel.spec.publish_md5 else None)
    assert mirror_server.count() <= 3  # the arch dir and one or two release dirs
    mirror_server.reset_counts()
    with dl(tmp_path, mirror_server.url) as d:
        again = drive(resolve_release(d, version, arch))
    assert again == found and mirror_server.count() == 0


def test_resolve_accepts_an_equivalent_version_spelling(
    fake_mirror: Mirror, mirror_server: MirrorServer, tmp_path: Path
) -> None:
    with dl(tmp_path, mirror_server.url) as d:
        found = drive(resolve_release(d, "12.0.0", "armv7"))
    assert found is not None
    assert found.ref.filename == "piCore-12.0.zip" and found.ref.version == "12.0"


def test_unknown_version_names_what_the_mirror_has(
    mirror_server: MirrorServer, tmp_path: Path
) -> None:
    with dl(tmp_path, mirror_server.url) as d, pytest.raises(AnswersError) as err:
        drive(resolve_release(d, "15.1.0", "armhf"))
    assert err.value.key == "release.version"
    assert "15.1.0" in err.value.message and mirror_server.url in err.value.message
    assert "15.0.0" in err.value.fix and err.value.exit_code == 2


def test_unknown_arch_and_major_name_what_exists(
    mirror_server: MirrorServer, tmp_path: Path
) -> None:
    with dl(tmp_path, mirror_server.url) as d, pytest.raises(AnswersError) as err:
        drive(resolve_release(d, "16.0.0", "armv7"))
    assert err.value.key == "release.arch" and "aarch64" in err.value.fix
    with dl(tmp_path, mirror_server.url) as d, pytest.raises(AnswersError) as err:
        drive(resolve_release(d, "14.1.0", "armv7"))
    assert err.value.key == "release.version"
    assert "12.x" in err.value.fix and "16.x" in err.value.fix


def test_failover_skips_a_broken_mirror_and_reports_it(
    fake_mirror: Mirror, mirror_server: MirrorServer, tmp_path: Path
) -> None:
    with MirrorServer(fake_mirror.root) as broken:
        broken.fault("*", Status(503), repeat_last=True)
        events: list[Event] = []
        with dl(tmp_path, broken.url, mirror_server.url) as d:
            found = drive(resolve_release(d, "15.0.0", "armhf"), events.append)
            assert d.mirrors[0] == mirror_server.url  # the broken one goes last
    assert found is not None and found.mirror == mirror_server.url
    texts = [e.text for e in events if isinstance(e, LogLine)]
    assert any(broken.url in t and "did not answer" in t and "HTTP 503" in t for t in texts)


def test_no_mirror_answering_gives_none(fake_mirror: Mirror, tmp_path: Path) -> None:
    server = MirrorServer(fake_mirror.root)
    url = server.url
    server.stop()
    with dl(tmp_path, url) as d:
        assert drive(resolve_release(d, "15.0.0", "armhf")) is None
        assert drive(scan_releases(d)) is None


def test_the_offline_catalog_knows_the_published_releases() -> None:
    entries = catalog_entries()
    assert entries == load_catalog()
    paths = {e.ref.path for e in entries}
    assert "12.x/armv7/releases/RPi/piCore-12.0.zip" in paths
    assert "15.x/armhf/releases/RPi/piCore-15.0.0.zip" in paths
    assert "16.x/aarch64/release/RPi/piCore64-16.0.0.img.gz" in paths
    assert "15.x/aarch64/test_releases/RPi/piCore64-15.0.0-beta2.zip" in paths
    for e in entries:
        assert e.ref.path.endswith("/" + e.ref.filename)
        assert e.ref.path.startswith(f"{e.ref.version.split('.')[0]}.x/{e.ref.arch}/")
        assert e.ref.layout == ("img.gz" if e.ref.filename.endswith(".img.gz") else "zip")
        assert e.ref.beta == ("test_releases" in e.ref.path)
        assert e.ref.flavour == ("piCore64" if e.ref.arch == "aarch64" else "piCore")
    assert entries[0].ref.version == "16.0.0"
    assert find("12.0.0", "armv7") is not None
    assert find("15.0.0", "armhf").kernels["pi4"] == "6.6.47-piCore-v8"  # type: ignore[union-attr]
    assert find("15.0.0", "armv7") is None
    res = offline_resolved("16.0.0", "aarch64")
    assert res is not None and res.offline and res.mirror == ""
    cat = offline_catalogue(["x: down"])
    assert cat.offline and cat.problems == ["x: down"] and len(cat.refs) == len(entries)
    assert "offline catalog" in OFFLINE_NOTE and "downloads will fail" in OFFLINE_NOTE


def test_browse_falls_back_to_the_catalog_and_says_so(
    fake_mirror: Mirror, mirror_server: MirrorServer, tmp_path: Path
) -> None:
    with dl(tmp_path, mirror_server.url) as d:
        online = drive(browse_releases(d))
    assert not online.offline and {r.path for r in online.refs} == expected_paths(fake_mirror)
    server = MirrorServer(fake_mirror.root)
    url = server.url
    server.stop()
    events: list[Event] = []
    with dl(tmp_path, url) as d:
        offline = drive(browse_releases(d), events.append)
    assert offline.offline and offline.mirror == ""
    assert [r.path for r in offline.refs] == [e.ref.path for e in catalog_entries()]
    assert offline.problems == [f"{url}: did not answer"]
    assert any(isinstance(e, LogLine) and e.text == OFFLINE_NOTE for e in events)
