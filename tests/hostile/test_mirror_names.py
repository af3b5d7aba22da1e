"""Names and credentials from a mirror (issue 10, root cause 4 and "mirror credentials").

A hostile or man-in-the-middle mirror (the defaults are plain http) controls every name it
serves: .dep lines, listing links, index names. None may become a path outside the cache. A
mirror's user and password go into the HTTP request and nowhere else.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from steps.errors import DownloadError
from steps.fetch.download import Downloader, Want
from steps.fetch.listing import parse_listing
from steps.fetch.mirror import release_refs
from steps.picore.deps import parse_dep
from steps.picore.tcz import parse_info_lst, parse_sizelist
from tests.hostile.conftest import serving

REPO = "15.x/armhf/tcz/"
PAYLOAD = b"a tcz's bytes"


class _Mirror(BaseHTTPRequestHandler):
    files: dict[str, bytes] = {}
    auth: str | None = None
    seen: list[tuple[str, str]] = []

    def do_GET(self) -> None:
        self.seen.append((self.path, self.headers.get("Authorization", "")))
        if self.auth is not None and self.headers.get("Authorization") != self.auth:
            self.send_response(401)
            self.end_headers()
            return
        data = self.files.get(self.path.lstrip("/"))
        self.send_response(200 if data is not None else 404)
        self.end_headers()
        if data is not None:
            self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def mirror() -> Iterator[tuple[int, type[_Mirror]]]:
    handler = type("M", (_Mirror,), {"files": {}, "seen": [], "auth": None})
    with serving(handler) as port:
        yield port, handler


def test_dep_lines_that_are_not_extension_names_are_dropped() -> None:
    text = "../../../../etc/cron.d/x.tcz\nok.tcz\nsub/dir.tcz\nbad\x1b.tcz\nw1-KERNEL.tcz\n"
    assert parse_dep(text) == ["ok.tcz", "w1-KERNEL.tcz"]


def test_index_names_are_checked_too() -> None:
    assert parse_info_lst("../x.tcz\nfine.tcz\n") == ["fine.tcz"]
    assert parse_sizelist("../x.tcz 10\nfine.tcz 20\n") == {"fine.tcz": 20}


def test_a_hostile_path_never_touches_the_disk_outside_the_cache(
    mirror: tuple[int, type[_Mirror]], tmp_path: Path
) -> None:
    port, _ = mirror
    cache = tmp_path / "deep" / "er" / "cache"
    evil = REPO + "../../../../../../../escape.tcz.dep"
    with (
        Downloader([f"http://127.0.0.1:{port}/"], cache, retries=1) as dl,
        pytest.raises(DownloadError, match="refusing"),
    ):
        gen = dl.meta_many([evil], missing_ok=True)
        while True:
            next(gen)
    outside = [p for p in tmp_path.rglob("*") if p.is_file() and cache not in p.parents]
    assert outside == []


def test_listing_links_cannot_smuggle_a_path() -> None:
    page = (
        '<a href="..%2F..%2Fetc%2Fx">x</a> <a href="piCore-15.0.0.zip%0A">nl</a>'
        '<a href="piCore-15.0.0.zip">ok</a>'
    )
    entries = parse_listing(page, "http://m/15.x/armhf/releases/RPi/")
    assert [e.name for e in entries] == ["piCore-15.0.0.zip"]
    refs = release_refs(
        [*entries, type(entries[0])("piCore-16.0.0.zip\n", False)],
        "armhf",
        "15.x/armhf/releases/RPi",
    )
    assert [r.filename for r in refs] == ["piCore-15.0.0.zip"]


def test_mirror_credentials_go_into_the_request_and_nowhere_else(
    mirror: tuple[int, type[_Mirror]], tmp_path: Path
) -> None:
    port, handler = mirror
    handler.auth = "Basic " + base64.b64encode(b"fc-user:s3cr3t-pw").decode()
    handler.files = {REPO + "x.tcz": PAYLOAD, REPO + "x.tcz.md5.txt": b"x"}
    md5 = hashlib.md5(PAYLOAD).hexdigest()
    cache = tmp_path / "cache"
    with Downloader([f"http://fc-user:s3cr3t-pw@127.0.0.1:{port}/"], cache, retries=1) as dl:
        gen = dl.fetch([Want(REPO + "x.tcz", md5)])
        events = []
        try:
            while True:
                events.append(next(gen))
        except StopIteration as stop:
            got = stop.value[REPO + "x.tcz"]
        meta = dl.meta(REPO + "x.tcz.md5.txt")
    assert meta == b"x" and got.file.read_bytes() == PAYLOAD
    assert all(auth == handler.auth for _, auth in handler.seen)  # the request had them
    shown = json.dumps([str(e) for e in events]) + got.url + got.mirror + json.dumps(dl.sources)
    for secret in ("s3cr3t-pw", "fc-user"):
        assert secret not in shown
        assert not any(secret in str(p) for p in cache.rglob("*"))
        assert not any(secret in p.read_text() for p in cache.rglob("*.json"))
