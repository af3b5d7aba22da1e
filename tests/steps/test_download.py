"""Verified cached downloads against the real fixture mirror server, with injected faults."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from steps.demo.factory import Mirror
from steps.demo.server import Corrupt, Delay, Drop, MirrorServer, Status
from steps.errors import Cancelled, ChecksumError, DownloadError
from steps.events import Event, LogLine, Progress, drive
from steps.fetch.download import Downloader, Got, Want, parse_md5

REPO = "15.x/armhf/tcz"


def want(mirror: Mirror, name: str) -> Want:
    pkg = mirror.repos[REPO].packages[name]
    return Want(f"{REPO}/{name}", pkg.md5, pkg.size)


def biggest(mirror: Mirror, n: int = 1) -> list[str]:
    """The largest packages of the repo (a drop/corrupt needs more than one chunk of data)."""
    pkgs = sorted(mirror.repos[REPO].packages.values(), key=lambda p: (-p.size, p.name))
    return [p.name for p in pkgs[:n]]


def cache_is_clean(cache: Path) -> None:
    """Every object is under its own md5; nothing partial or temporary is left."""
    objects = list((cache / "downloads" / "objects").rglob("*"))
    for obj in objects:
        if obj.is_file():
            assert hashlib.md5(obj.read_bytes()).hexdigest() == obj.parent.name, obj
    partial = cache / "downloads" / "partial"
    assert not partial.exists() or not any(partial.iterdir())


@pytest.fixture
def second_server(fake_mirror: Mirror) -> Iterator[MirrorServer]:
    with MirrorServer(fake_mirror.root) as server:
        yield server


def downloader(cache: Path, *mirrors: str, **kw: Any) -> Downloader:
    kw.setdefault("backoff", 0.01)
    kw.setdefault("connect_timeout", 1.0)
    kw.setdefault("read_timeout", 5.0)
    return Downloader(list(mirrors), cache, **kw)


def test_fetch_verifies_caches_and_a_warm_run_makes_no_request(
    fake_mirror: Mirror, mirror_server: MirrorServer, tmp_path: Path
) -> None:
    names = biggest(fake_mirror, 6)
    wants = [want(fake_mirror, n) for n in names]
    events: list[Event] = []
    with downloader(tmp_path, mirror_server.url, workers=3) as dl:
        got = drive(dl.fetch(wants), events.append)
    assert set(got) == {w.path for w in wants}
    for w in wants:
        g: Got = got[w.path]
        assert g.md5 == w.md5 and not g.cached and g.mirror == mirror_server.url
        assert g.file.read_bytes() == fake_mirror.path(w.path).read_bytes()
        assert g.file == tmp_path / "downloads" / "objects" / "md5" / str(w.md5) / w.name
    progress = [e for e in events if isinstance(e, Progress)]
    assert progress[-1].done == progress[-1].total == sum(w.size or 0 for w in wants)
    assert progress[-1].message == f"{len(wants)}/{len(wants)} files"
    assert mirror_server.count("*.tcz") == len(wants)
    cache_is_clean(tmp_path)

    mirror_server.reset_counts()
    with downloader(tmp_path, mirror_server.url) as dl:
        again = drive(dl.fetch(wants))
        assert dl.requests == 0
    assert mirror_server.count() == 0
    assert all(g.cached for g in again.values())
    assert {p: g.file for p, g in again.items()} == {p: g.file for p, g in got.items()}


def test_metadata_is_cached_including_404s(
    fake_mirror: Mirror, mirror_server: MirrorServer, tmp_path: Path
) -> None:
    no_dep = next(n for n, p in fake_mirror.repos[REPO].packages.items() if p.dep_text is None)
    with_dep = next(n for n, p in fake_mirror.repos[REPO].packages.items() if p.dep_text)
    paths = [f"{REPO}/{no_dep}.dep", f"{REPO}/{with_dep}.dep", f"{REPO}/{with_dep}.md5.txt"]
    with downloader(tmp_path, mirror_server.url) as dl:
        first = drive(dl.meta_many(paths, missing_ok=True))
    assert first[paths[0]] is None
    assert first[paths[1]] == fake_mirror.path(paths[1]).read_bytes()
    md5_text = first[paths[2]]
    assert md5_text is not None
    assert parse_md5(md5_text.decode(), with_dep) == fake_mirror.repos[REPO].packages[with_dep].md5
    mirror_server.reset_counts()
    with downloader(tmp_path, mirror_server.url) as dl:
        assert drive(dl.meta_many(paths, missing_ok=True)) == first
        assert dl.meta(paths[0], missing_ok=True) is None
    assert mirror_server.count() == 0
    # a refresh asks the mirror again, once per file
    with downloader(tmp_path, mirror_server.url, refresh=True) as dl:
        assert drive(dl.meta_many(paths, missing_ok=True)) == first
        assert dl.meta(paths[1]) == first[paths[1]]
    assert mirror_server.count() == len(paths)


def test_refresh_env_var_rereads_metadata_but_reuses_verified_files(
    fake_mirror: Mirror,
    mirror_server: MirrorServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    w = want(fake_mirror, biggest(fake_mirror)[0])
    with downloader(tmp_path, mirror_server.url) as dl:
        drive(dl.fetch([w]))
        dl.meta(w.path + ".md5.txt")
    mirror_server.reset_counts()
    monkeypatch.setenv("FIRECORE_REFRESH", "1")
    with downloader(tmp_path, mirror_server.url) as dl:
        assert dl.refresh
        dl.meta(w.path + ".md5.txt")
        got = drive(dl.fetch([w]))
    assert got[w.path].cached
    assert mirror_server.count("*.md5.txt") == 1 and mirror_server.count("*.tcz") == 0


def test_server_errors_are_retried_with_backoff(
    fake_mirror: Mirror, mirror_server: MirrorServer, tmp_path: Path
) -> None:
    w = want(fake_mirror, biggest(fake_mirror)[0])
    mirror_server.fault("/" + w.path, Status(500), Status(503))
    events: list[Event] = []
    with downloader(tmp_path, mirror_server.url, retries=3) as dl:
        got = drive(dl.fetch([w]), events.append)
    assert got[w.path].md5 == w.md5
    assert [r.status for r in mirror_server.requests if r.path == "/" + w.path] == [500, 503, 200]
    retries = [e.text for e in events if isinstance(e, LogLine) and "retrying in" in e.text]
    assert len(retries) == 2 and "HTTP 500" in retries[0] and "HTTP 503" in retries[1]
    cache_is_clean(tmp_path)


def test_a_dropped_connection_resumes_with_range(
    fake_mirror: Mirror, mirror_server: MirrorServer, tmp_path: Path
) -> None:
    w = want(fake_mirror, biggest(fake_mirror)[0])
    cut = (w.size or 0) // 3
    assert cut > 0
    mirror_server.fault("/" + w.path, Drop(after=cut))
    events: list[Event] = []
    with downloader(tmp_path, mirror_server.url) as dl:
        got = drive(dl.fetch([w]), events.append)
    assert got[w.path].file.read_bytes() == fake_mirror.path(w.path).read_bytes()
    requests = [r for r in mirror_server.requests if r.path == "/" + w.path]
    assert [(r.status, r.range) for r in requests] == [(200, None), (206, f"bytes={cut}-")]
    assert any(isinstance(e, LogLine) and f"resuming at byte {cut}" in e.text for e in events)
    cache_is_clean(tmp_path)


def test_corrupt_bytes_fail_md5_and_are_fetched_from_the_next_mirror(
    fake_mirror: Mirror, mirror_server: MirrorServer, second_server: MirrorServer, tmp_path: Path
) -> None:
    w = want(fake_mirror, biggest(fake_mirror)[0])
    mirror_server.fault("/" + w.path, Corrupt())
    events: list[Event] = []
    with downloader(tmp_path, mirror_server.url, second_server.url) as dl:
        got = drive(dl.fetch([w]), events.append)
    assert got[w.path].mirror == second_server.url
    assert got[w.path].file.read_bytes() == fake_mirror.path(w.path).read_bytes()
    warning = next(e.text for e in events if isinstance(e, LogLine) and "md5 is" in e.text)
    assert w.name in warning and f"expected {w.md5}" in warning
    assert f"retrying once from {second_server.url}" in warning
    assert mirror_server.count("/" + w.path) == 1 and second_server.count("/" + w.path) == 1
    cache_is_clean(tmp_path)


def test_corrupt_everywhere_raises_checksum_error_and_caches_nothing(
    fake_mirror: Mirror, mirror_server: MirrorServer, second_server: MirrorServer, tmp_path: Path
) -> None:
    w = want(fake_mirror, biggest(fake_mirror)[0])
    mirror_server.fault("/" + w.path, Corrupt(offset=10))
    second_server.fault("/" + w.path, Corrupt(offset=20))
    with (
        downloader(tmp_path, mirror_server.url, second_server.url) as dl,
        pytest.raises(ChecksumError) as err,
    ):
        drive(dl.fetch([w]))
    exc = err.value
    assert exc.name == w.name and exc.expected == w.md5 and exc.actual != w.md5
    assert w.name in exc.message and str(w.md5) in exc.message and exc.actual in exc.message
    assert exc.exit_code == 1
    assert not list((tmp_path / "downloads" / "objects").rglob(w.name))
    cache_is_clean(tmp_path)


def test_a_slow_mirror_times_out_and_the_next_one_serves(
    fake_mirror: Mirror, mirror_server: MirrorServer, second_server: MirrorServer, tmp_path: Path
) -> None:
    w = want(fake_mirror, biggest(fake_mirror)[0])
    mirror_server.fault("*", Delay(600), repeat_last=True)  # stalled: only a timeout gets past
    events: list[Event] = []
    with downloader(tmp_path, mirror_server.url, second_server.url, read_timeout=2) as dl:
        got = drive(dl.fetch([w]), events.append)
        assert dl.mirrors == [second_server.url, mirror_server.url]  # slow one tried last now
    assert got[w.path].mirror == second_server.url
    assert any(
        isinstance(e, LogLine) and "timed out" in e.text and mirror_server.url in e.text
        for e in events
    )
    # no retry against a slow mirror (the server logs a delayed request only after its delay)
    assert not any(isinstance(e, LogLine) and "retrying in" in e.text for e in events)


def test_an_unreachable_mirror_is_skipped(
    fake_mirror: Mirror, mirror_server: MirrorServer, tmp_path: Path
) -> None:
    dead = MirrorServer(fake_mirror.root)
    dead_url = dead.url
    dead.stop()  # the port is closed now: connections are refused
    w = want(fake_mirror, biggest(fake_mirror)[0])
    with downloader(tmp_path, dead_url, mirror_server.url) as dl:
        got = drive(dl.fetch([w]))
        assert dl.sources[w.path] == mirror_server.url
    assert got[w.path].mirror == mirror_server.url


def test_a_file_missing_everywhere_is_a_download_error(
    mirror_server: MirrorServer, second_server: MirrorServer, tmp_path: Path
) -> None:
    w = Want(f"{REPO}/nothere.tcz", "0" * 32, 10)
    with (
        downloader(tmp_path, mirror_server.url, second_server.url) as dl,
        pytest.raises(DownloadError) as err,
    ):
        drive(dl.fetch([w]))
    assert "nothere.tcz" in err.value.message
    assert mirror_server.url in err.value.message and second_server.url in err.value.message
    assert not isinstance(err.value, ChecksumError)
    with downloader(tmp_path, mirror_server.url) as dl, pytest.raises(DownloadError):
        dl.meta(f"{REPO}/nothere.tcz.md5.txt")


def test_cancel_stops_between_chunks_and_removes_the_partial_file(
    fake_mirror: Mirror, mirror_server: MirrorServer, tmp_path: Path
) -> None:
    w = want(fake_mirror, biggest(fake_mirror)[0])
    mirror_server.fault("/" + w.path, Delay(600, after=1000))
    cancel = threading.Event()
    events: list[Event] = []
    cancelled_at = 0.0
    with downloader(tmp_path, mirror_server.url, cancel=cancel, read_timeout=600) as dl:
        gen = dl.fetch([w])
        with pytest.raises(Cancelled):
            for event in gen:
                events.append(event)
                if isinstance(event, Progress) and event.done >= 1000 and not cancel.is_set():
                    cancel.set()  # the server is now stalled for 600 s in the middle of the file
                    cancelled_at = time.monotonic()
    # stopped by the flag, not by the 600 s read timeout (the bound only stops a hung test)
    assert cancelled_at and time.monotonic() - cancelled_at < 300
    cache_is_clean(tmp_path)
    assert not list((tmp_path / "downloads" / "objects").rglob(w.name))


def test_parallelism_is_bounded(
    fake_mirror: Mirror, mirror_server: MirrorServer, tmp_path: Path
) -> None:
    names = sorted(fake_mirror.repos[REPO].packages)[:8]
    mirror_server.fault("*.tcz", Delay(1.0), repeat_last=True)
    with downloader(tmp_path, mirror_server.url, workers=4) as dl:
        drive(dl.fetch([want(fake_mirror, n) for n in names]))
    # 8 files held 1 s each by the server, 4 workers: never more than 4 at once, and parallel
    assert 2 <= mirror_server.peak_delayed <= 4, mirror_server.peak_delayed


def test_content_check_failure_is_retried_like_a_checksum(
    fake_mirror: Mirror, mirror_server: MirrorServer, second_server: MirrorServer, tmp_path: Path
) -> None:
    rel = fake_mirror.release("15.0.0")
    calls: list[str] = []

    def check(path: Path, name: str) -> None:
        calls.append(name)
        if len(calls) == 1:
            raise ChecksumError(name, "an intact zip file", "corrupt (test)")

    w = Want(rel.path, None, rel.size, check)
    with downloader(tmp_path, mirror_server.url, second_server.url) as dl:
        got = drive(dl.fetch([w]))
    assert calls == [rel.filename, rel.filename]
    assert got[w.path].md5 == rel.md5 and got[w.path].mirror == second_server.url
    # without a published md5 the cache still finds it: the pin records what was verified
    mirror_server.reset_counts()
    second_server.reset_counts()
    with downloader(tmp_path, mirror_server.url, second_server.url) as dl:
        again = drive(dl.fetch([Want(rel.path, None, rel.size, check)]))
    assert again[w.path].cached and again[w.path].mirror == second_server.url
    assert mirror_server.count() == second_server.count() == 0 and len(calls) == 2
