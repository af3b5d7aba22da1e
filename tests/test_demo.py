"""The demo factory, the mirror server and the demo command, checked with independent tools."""

from __future__ import annotations

import gzip
import hashlib
import http.client
import io
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import httpx
import pytest

from steps.answers import default_answers
from steps.demo import factory
from steps.demo.factory import Mirror, build_mirror, cached_mirror
from steps.demo.server import Corrupt, Delay, Drop, MirrorServer, Status, strfsize
from steps.demo.specs import ReleaseSpec
from steps.demo.tczrepo import parse_dep
from steps.paths import DEMO_MARKER
from steps.picore import cpio
from wizard.cli import main
from wizard.commands import demo

SMALL = (ReleaseSpec("9.9.0", "armv7", "5.4.51", "12", boot_sectors=12288, tce_sectors=4096),)


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


# ---------------------------------------------------------------------- the factory


def test_mirror_layout(fake_mirror: Mirror) -> None:
    paths = {r.version: r.path for r in fake_mirror.releases}
    assert paths == {
        "12.0": "12.x/armv7/releases/RPi/piCore-12.0.zip",
        "15.0.0": "15.x/armhf/releases/RPi/piCore-15.0.0.zip",
        "16.0.0": "16.x/aarch64/release/RPi/piCore64-16.0.0.img.gz",
        "15.0.0-beta2": "15.x/aarch64/test_releases/RPi/piCore64-15.0.0-beta2.zip",
    }
    for rel in fake_mirror.releases:
        data = fake_mirror.path(rel.path).read_bytes()
        assert len(data) == rel.size
        assert hashlib.md5(data).hexdigest() == rel.md5
        assert hashlib.sha256(data).hexdigest() == rel.sha256
        for alias in rel.aliases:
            assert fake_mirror.path(alias).read_bytes() == data
    assert fake_mirror.release("12.0").aliases == ("12.x/armv6/releases/RPi/piCore-12.0.zip",)
    assert fake_mirror.release("12.0", "armv6") is fake_mirror.release("12.0", "armv7")
    with pytest.raises(KeyError):
        fake_mirror.release("12.0", "aarch64")
    assert (fake_mirror.root / DEMO_MARKER).is_file()
    for rel in fake_mirror.releases:  # partitions small and not at the real sizes
        p1, p2 = rel.partitions
        assert (p1.type, p1.start, p2.type) == (0x0C, 8192, 0x83)
        assert p1.sectors != 131072 and p2.start == p1.start + p1.sectors
    # the sidecar md5 files that are published verify with md5sum -c
    for rel in fake_mirror.releases:
        sidecar = fake_mirror.path(rel.path + ".md5.txt")
        assert sidecar.exists() == rel.spec.publish_md5
        if sidecar.exists():
            subprocess.run(
                ["md5sum", "-c", sidecar.name], cwd=sidecar.parent, check=True, capture_output=True
            )


def test_release_zip_contents(fake_mirror: Mirror) -> None:
    rel = fake_mirror.release("15.0.0")
    with zipfile.ZipFile(fake_mirror.path(rel.path)) as zf:
        assert zf.namelist() == [rel.image_name, f"{rel.image_name}.md5.txt", "README"]
        assert zf.testzip() is None
        assert zf.read(f"{rel.image_name}.md5.txt").decode() == (
            f"{rel.image_md5}  {rel.image_name}\n"
        )
        assert hashlib.md5(zf.read(rel.image_name)).hexdigest() == rel.image_md5
        assert b"does NOT boot real hardware" in zf.read("README")
    with gzip.open(fake_mirror.path(fake_mirror.release("16.0.0").path)) as gz:
        assert gz.read(512)[510:] == b"\x55\xaa"


def _boot_file(fake_mirror: Mirror, version: str, name: str, tmp_path: Path) -> bytes:
    rel = fake_mirror.release(version)
    subprocess.run(
        ["unzip", "-q", "-o", str(fake_mirror.path(rel.path)), rel.image_name, "-d", str(tmp_path)],
        check=True,
    )
    out = subprocess.run(
        ["mtype", "-i", f"{tmp_path / rel.image_name}@@{8192 * 512}", f"::/{name}"],
        capture_output=True,
        check=True,
        env={**os.environ, "MTOOLS_SKIP_CHECK": "1"},
    ).stdout
    return out


def test_rootfs_is_a_realistic_piCore_rootfs(fake_mirror: Mirror, tmp_path: Path) -> None:
    data = _boot_file(fake_mirror, "15.0.0", "rootfs-piCore-15.0.gz", tmp_path)
    assert data[:2] == b"\x1f\x8b"
    raw = gzip.decompress(data)
    entries = {e.name: e for e in cpio.read(io.BytesIO(raw))}
    assert "." not in entries
    assert entries["opt"].mode == 0o40775 and (entries["opt"].uid, entries["opt"].gid) == (0, 50)
    assert entries["tmp"].mode == 0o41777
    assert entries["home/tc"].uid == 1001 and entries["home/tc"].gid == 50
    tce = entries["usr/local/tce.installed"]
    assert (tce.mode, tce.uid, tce.gid) == (0o40775, 0, 50)
    for script in ("opt/bootlocal.sh", "opt/bootsync.sh"):
        assert entries[script].mode == 0o100775 and entries[script].gid == 50
    assert b"/usr/local/etc/init.d/openssh start" in entries["opt/bootlocal.sh"].data
    assert b"/opt/bootlocal.sh &" in entries["opt/bootsync.sh"].data
    assert b"VERSION_ID=15.0\n" in entries["etc/os-release"].data
    # GNU cpio agrees (an independent reader)
    listing = subprocess.run(
        ["cpio", "-itv", "--numeric-uid-gid"], input=raw, capture_output=True, check=True
    ).stdout.decode()
    assert re.search(r"^drwxrwxrwt .* 0 +0 .* tmp$", listing, re.M)
    assert re.search(r"^drwxr-xr-x .* 1001 +50 .* home/tc$", listing, re.M)
    modules = _boot_file(fake_mirror, "15.0.0", "modules-6.6.47-piCore-v8.gz", tmp_path)
    names = {e.name for e in cpio.read(io.BytesIO(gzip.decompress(modules)))}
    assert "lib/modules/6.6.47-piCore-v8/modules.dep" in names


def test_every_boot_flavour_has_module_extensions(fake_mirror: Mirror) -> None:
    for rel in fake_mirror.releases:
        repo = fake_mirror.repo_for(rel)
        for kernel in rel.kernels.values():
            assert f"w1-{kernel}.tcz" in repo.packages
            assert f"alsa-modules-{kernel}.tcz" in repo.packages
            assert f"modules-{kernel}.gz" in rel.boot_files
    assert "python3.8.tcz" in fake_mirror.repos["12.x/armv7/tcz"].packages
    assert "python3.11-pip.tcz" in fake_mirror.repos["15.x/armhf/tcz"].packages


def test_tcz_repo_files_and_indexes(fake_mirror: Mirror) -> None:
    repo = fake_mirror.repos["15.x/armhf/tcz"]
    d = fake_mirror.path(repo.path)
    md5s = sorted(p.name for p in d.glob("*.md5.txt"))
    subprocess.run(["md5sum", "--quiet", "-c", *md5s], cwd=d, check=True)
    for name in ("python3.11.tcz", "openssh.tcz", "w1-6.6.47-piCore-v8.tcz"):
        sb = subprocess.run(
            ["unsquashfs", "-s", str(d / name)], capture_output=True, text=True, check=True
        ).stdout
        assert "Compression gzip" in sb and "Block size 4096" in sb
        assert "Xattrs are not stored" in sb or "No xattrs in archive" in sb
        listed = subprocess.run(
            ["unsquashfs", "-lc", str(d / name)], capture_output=True, text=True, check=True
        ).stdout.split()
        files = sorted(p.removeprefix("squashfs-root/") for p in listed)
        assert files == sorted(repo.packages[name].files)
        assert (d / f"{name}.list").read_text().split() == list(repo.packages[name].files)
    assert "usr/local/bin/python3.11" in repo.packages["python3.11.tcz"].files

    def gz(n: str) -> str:
        return gzip.decompress((d / n).read_bytes()).decode()

    assert gz("info.lst.gz").split() == sorted(repo.packages)
    assert gz("md5.db.gz") == "".join((d / f"{n}.md5.txt").read_text() for n in sorted(repo.names))
    sizes = dict(line.split() for line in gz("sizelist.gz").splitlines())
    assert {n: int(s) for n, s in sizes.items()} == {
        n: (d / n).stat().st_size for n in repo.packages
    }
    tags = dict(line.split("\t", 1) for line in gz("tags.db.gz").splitlines())
    assert "ssh" in tags["openssh.tcz"]
    records = {r.split("\n")[0]: r.split("\n")[1:] for r in gz("dep.db.gz").split("\n\n")}
    assert [x for x in records["openssh.tcz"] if x] == ["openssl.tcz"]
    provides = {r.split("\n")[0]: r for r in gz("provides.db.gz").split("\n\n")}
    assert "usr/local/sbin/sshd" not in provides["openssh.tcz"]
    assert "usr/local/bin/sshd" in provides["openssh.tcz"]
    info = (d / "openssh.tcz.info").read_text()
    assert info.startswith("Title:          openssh.tcz\nDescription:    OpenSSH")
    assert (d / "openssh.tcz.tree").read_text() == "openssh.tcz\n   openssl.tcz\n"


def test_dependency_graph_has_the_hard_cases(fake_mirror: Mirror) -> None:
    repo = fake_mirror.repos["15.x/armhf/tcz"]
    d = fake_mirror.path(repo.path)
    pk = repo.packages
    assert not (d / "openssl.tcz.dep").exists() and pk["openssl.tcz"].dep_text is None
    assert (d / "ncursesw.tcz.dep").read_text() == "" and pk["ncursesw.tcz"].deps == ()
    nano = (d / "nano.tcz.dep").read_text()
    assert "#" in nano and "\n\n" in nano and "\t" in nano and ";" in nano
    assert parse_dep(nano) == pk["nano.tcz"].deps == ("ncursesw.tcz", "file.tcz")
    assert "dbus.tcz" in pk["avahi.tcz"].deps and "avahi.tcz" in pk["dbus.tcz"].deps  # a cycle
    # a diamond: python → readline → ncursesw and python → ncursesw
    assert {"readline.tcz", "ncursesw.tcz"} <= set(pk["python3.11.tcz"].deps)
    assert pk["readline.tcz"].deps == ("ncursesw.tcz",)
    assert pk["myapp.tcz"].deps == ("python3.11.tcz", "w1-KERNEL.tcz")
    assert pk["alsa.tcz"].deps == ("alsa-modules-KERNEL.tcz",)
    fillers = [n for n in pk if pk[n].description and "KERNEL" not in n]
    assert len(fillers) >= 20


def test_p2_holds_the_tce_directory(fake_mirror: Mirror, tmp_path: Path) -> None:
    rel = fake_mirror.release("12.0")
    _boot_file(fake_mirror, "12.0", "config.txt", tmp_path)
    img = tmp_path / rel.image_name
    p2 = rel.partitions[1].start * 512
    ls = subprocess.run(
        ["debugfs", "-R", "ls -l /tce/optional", f"{img}?offset={p2}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert re.search(r"1001\s+50\s+\d+ .* openssh\.tcz\s*$", ls, re.M)
    assert "tce/optional/openssh.tcz" in rel.tce_files and "tce/mydata.tgz" in rel.tce_files


def test_build_is_deterministic(tmp_path: Path) -> None:
    first = build_mirror(tmp_path / "a", SMALL)
    second = build_mirror(tmp_path / "b", SMALL)
    assert _files(tmp_path / "a") == _files(tmp_path / "b")
    assert first.releases[0].image_md5 == second.releases[0].image_md5
    mtimes = {p.stat().st_mtime for p in (tmp_path / "a").rglob("*")}
    assert mtimes <= {float(SMALL[0].epoch)}  # the release date, not the build time
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b"]  # no work dirs left


_CHILD = """
import sys
from pathlib import Path
from steps.demo import factory
from steps.demo.specs import ReleaseSpec

SMALL = (ReleaseSpec("9.9.0", "armv7", "5.4.51", "12", boot_sectors=12288, tce_sectors=4096),)
real = factory.build_mirror

def counting(root, specs):
    with open(sys.argv[2], "a") as fh:
        fh.write("built\\n")
    return real(root, specs)

factory.build_mirror = counting
print(factory.cached_mirror(Path(sys.argv[1]), SMALL).root)
"""


def test_cached_mirror_builds_once_for_concurrent_processes(tmp_path: Path) -> None:
    log = tmp_path / "log"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _CHILD, str(tmp_path / "c"), str(log)],
            stdout=subprocess.PIPE,
            text=True,
            cwd=Path(__file__).resolve().parent.parent,
        )
        for _ in range(3)
    ]
    roots = [p.communicate(timeout=120)[0].strip() for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0]
    assert len(set(roots)) == 1
    assert log.read_text() == "built\n"
    mirror = cached_mirror(tmp_path / "c", SMALL)
    assert str(mirror.root) == roots[0]
    assert mirror.release("9.9.0").kernels["pi4"] == "5.4.51-piCore-v7l"
    assert [p.name for p in (tmp_path / "c").iterdir() if p.name.startswith(".")] == []


# ---------------------------------------------------------------------- the server


def _links(page: str) -> list[str]:
    return [h for h in re.findall(r'<a href="([^"?]+)"', page) if not h.startswith("/")]


@pytest.mark.parametrize("style", ["apache", "apache-pre", "nginx"])
def test_listings(fake_mirror: Mirror, style: str) -> None:
    with MirrorServer(fake_mirror.root, listing=style) as srv:  # type: ignore[arg-type]
        page = httpx.get(srv.url + "15.x/aarch64/test_releases/RPi/").text
        root = httpx.get(srv.url).text
    title = "/15.x/aarch64/test_releases/RPi" + ("/" if style == "nginx" else "")
    assert f"<title>Index of {title}</title>" in page
    links = [h for h in _links(page) if h != "../"]
    assert links == ["piCore64-15.0.0-beta2.zip"]
    assert "2024-06-30 12:00" in page or "30-Jun-2024 12:00" in page
    rel = fake_mirror.release("15.0.0-beta2")
    if style == "nginx":
        assert re.search(rf"\s{rel.size}\s*$", page, re.M)
    else:
        assert strfsize(rel.size).strip() in page
        assert "piCore64-15.0.0-beta..&gt;</a>" in page  # Apache cuts link text, not hrefs
    assert _links(root) == ["12.x/", "15.x/", "16.x/", DEMO_MARKER, "README"]


def test_apache_listing_matches_directory(mirror_server: MirrorServer, fake_mirror: Mirror) -> None:
    page = httpx.get(mirror_server.url + "15.x/armhf/tcz/").text
    expected = sorted(p.name for p in fake_mirror.path("15.x/armhf/tcz").iterdir())
    assert _links(page) == expected
    assert '<a href="/15.x/armhf/">Parent Directory</a>' in page
    row = re.search(r'<a href="openssh.tcz">openssh.tcz</a></td><td align="right">([^<]+)</td>'
                    r'<td align="right">([^<]+)</td>', page)  # fmt: skip
    assert row is not None
    assert row.group(1).strip() == "2024-09-29 12:00"
    assert row.group(2) == strfsize(fake_mirror.path("15.x/armhf/tcz/openssh.tcz").stat().st_size)


def test_strfsize_like_apache() -> None:
    assert [strfsize(n) for n in (0, 972, 973, 4096, 10188, 10240, 105796, 1 << 20, 16 << 20)] == [
        "  0 ", "972 ", "1.0K", "4.0K", "9.9K", " 10K", "103K", "1.0M", " 16M",
    ]  # fmt: skip


def test_ranges_head_and_redirects(mirror_server: MirrorServer, fake_mirror: Mirror) -> None:
    path = fake_mirror.release("12.0").path
    data = fake_mirror.path(path).read_bytes()
    url = mirror_server.url + path
    with httpx.Client() as client:
        r = client.get(url, headers={"Range": "bytes=100-199"})
        assert r.status_code == 206 and r.content == data[100:200]
        assert r.headers["content-range"] == f"bytes 100-199/{len(data)}"
        r = client.get(url, headers={"Range": "bytes=1000-"})
        assert r.status_code == 206 and r.content == data[1000:]
        r = client.get(url, headers={"Range": "bytes=-10"})
        assert r.content == data[-10:]
        r = client.get(url, headers={"Range": f"bytes={len(data)}-"})
        assert r.status_code == 416 and r.headers["content-range"] == f"bytes */{len(data)}"
        r = client.get(url, headers={"Range": "bytes=0-1,5-6"})
        assert r.status_code == 200 and r.content == data
        r = client.head(url)
        assert r.status_code == 200 and r.content == b""
        assert int(r.headers["content-length"]) == len(data)
        assert r.headers["accept-ranges"] == "bytes"
        assert r.headers["last-modified"] == "Sun, 20 Sep 2020 12:00:00 GMT"
        r = client.get(mirror_server.url + "15.x/armhf")
        assert r.status_code == 301 and r.headers["location"] == "/15.x/armhf/"
        assert client.get(mirror_server.url + "17.x/").status_code == 404
    assert mirror_server.count("/" + path) == 6
    assert mirror_server.count("/" + path, method="HEAD") == 1


def test_hidden_and_escaping_paths_are_404(mirror_server: MirrorServer, tmp_path: Path) -> None:
    conn = http.client.HTTPConnection(mirror_server.host, mirror_server.port, timeout=5)
    for path in ("/../../etc/passwd", "/12.x/../../etc/passwd", "/.hidden", "/%2e%2e/etc/passwd"):
        conn.request("GET", path)
        resp = conn.getresponse()
        resp.read()
        assert resp.status == 404, path
    conn.close()


def test_fault_status_then_ok(mirror_server: MirrorServer) -> None:
    url = mirror_server.url + "15.x/armhf/tcz/openssh.tcz.dep"
    mirror_server.fault("*/openssh.tcz.dep", Status(500), Status(503))
    codes = [httpx.get(url).status_code for _ in range(3)]
    assert codes == [500, 503, 200]
    assert httpx.get(url).text == "openssl.tcz\n"
    assert mirror_server.pending_faults() == 0
    assert [r.status for r in mirror_server.requests] == [500, 503, 200, 200]
    assert mirror_server.requests[0].fault == Status(500)


def test_fault_only_hits_matching_paths_and_repeat_last(mirror_server: MirrorServer) -> None:
    base = mirror_server.url + "15.x/armhf/tcz/"
    mirror_server.fault("/15.x/armhf/tcz/nano.tcz.dep", Status(404), repeat_last=True)
    assert httpx.get(base + "openssh.tcz.dep").status_code == 200
    assert [httpx.get(base + "nano.tcz.dep").status_code for _ in range(3)] == [404] * 3
    mirror_server.clear_faults()
    assert httpx.get(base + "nano.tcz.dep").status_code == 200


def test_fault_drop_after_k_bytes(mirror_server: MirrorServer, fake_mirror: Mirror) -> None:
    path = fake_mirror.release("12.0").path
    mirror_server.fault("*.zip", Drop(after=5000))
    received = bytearray()
    with (
        pytest.raises(httpx.RemoteProtocolError),
        httpx.stream("GET", mirror_server.url + path) as r,
    ):
        for chunk in r.iter_bytes():
            received += chunk
    assert bytes(received) == fake_mirror.path(path).read_bytes()[:5000]
    # a resumed download (Range) then completes the file
    rest = httpx.get(mirror_server.url + path, headers={"Range": "bytes=5000-"}).content
    assert hashlib.md5(bytes(received) + rest).hexdigest() == fake_mirror.release("12.0").md5


def test_fault_corrupt(mirror_server: MirrorServer, fake_mirror: Mirror) -> None:
    name = "15.x/armhf/tcz/python3.11.tcz"
    good = fake_mirror.path(name).read_bytes()
    mirror_server.fault("*/python3.11.tcz", Corrupt(), Corrupt(offset=3))
    bad1 = httpx.get(mirror_server.url + name).content
    bad2 = httpx.get(mirror_server.url + name).content
    assert len(bad1) == len(bad2) == len(good)
    assert [i for i in range(len(good)) if bad1[i] != good[i]] == [len(good) // 2]
    assert [i for i in range(len(good)) if bad2[i] != good[i]] == [3]
    assert httpx.get(mirror_server.url + name).content == good


def test_fault_delay(mirror_server: MirrorServer) -> None:
    url = mirror_server.url + "15.x/armhf/tcz/openssh.tcz.dep"
    mirror_server.fault("*.dep", Delay(0.4))
    start = time.monotonic()
    assert httpx.get(url).status_code == 200
    assert time.monotonic() - start >= 0.4
    # a read timeout far below the delay, far above what serving the first bytes takes even on
    # a loaded machine (the fixture stops the server, which releases the delayed handlers)
    mirror_server.fault("*.dep", Delay(120))
    with pytest.raises(httpx.ReadTimeout):
        httpx.get(url, timeout=2)
    mirror_server.fault("*.dep", Delay(120, after=4))
    with (
        pytest.raises(httpx.ReadTimeout),
        httpx.stream("GET", url, timeout=2) as r,
    ):
        got = b""
        for chunk in r.iter_bytes():
            got += chunk
    assert got == b"open"


def test_stop_releases_delayed_requests(fake_mirror: Mirror) -> None:
    srv = MirrorServer(fake_mirror.root).start()
    srv.fault("*", Delay(600))
    results: list[int] = []

    def client() -> None:
        try:
            results.append(httpx.get(srv.url + "README", timeout=30).status_code)
        except httpx.HTTPError:
            results.append(-1)

    t = threading.Thread(target=client)
    t.start()
    while not srv.requests and srv.pending_faults():
        time.sleep(0.01)  # poll until the handler has taken the delay
    srv.stop()
    t.join(120)  # far below the 600 s delay: only a released handler answers in time
    assert not t.is_alive() and results
    with pytest.raises(httpx.ConnectError):
        httpx.get(srv.url, timeout=2)


def test_concurrent_requests_are_all_counted(mirror_server: MirrorServer) -> None:
    url = mirror_server.url + "15.x/armhf/tcz/"
    codes: list[int] = []

    def fetch(i: int) -> None:
        # one client per thread: under load, httpcore's pool shared by 24 threads once handed a
        # request a connection another thread had closed (EBADF, proof run 43); what is tested
        # here is the server's count
        with httpx.Client() as client:
            path = "openssh.tcz" if i % 2 else "openssl.tcz.md5.txt"
            codes.append(client.get(url + path).status_code)

    threads = [threading.Thread(target=fetch, args=(i,)) for i in range(24)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert codes == [200] * 24
    assert mirror_server.count("*.tcz") == 12
    assert mirror_server.count("*.md5.txt") == 12
    mirror_server.reset_counts()
    assert mirror_server.count() == 0


def test_prefix(fake_mirror: Mirror) -> None:
    with MirrorServer(fake_mirror.root, prefix="tinycorelinux") as srv:
        assert srv.url.endswith("/tinycorelinux/")
        assert httpx.get(srv.url + "README").status_code == 200
        base = f"http://{srv.host}:{srv.port}"
        assert httpx.get(base + "/README").status_code == 404
        r = httpx.get(base + "/tinycorelinux")
        assert r.status_code == 301 and r.headers["location"] == "/tinycorelinux/"
        assert '<a href="/tinycorelinux/15.x/">' in httpx.get(srv.url + "15.x/armhf/").text


# ---------------------------------------------------------------------- the demo command


def test_start_demo_reuses_the_cache_and_serves(
    fake_mirror: Mirror,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    cache = tmp_path / "cache"
    shutil.copytree(fake_mirror.root.parent, cache / "demo" / fake_mirror.root.parent.name)

    def no_build(*args: object, **kwargs: object) -> None:
        raise AssertionError("the cached demo mirror must be reused")

    monkeypatch.setattr(factory, "build_mirror", no_build)
    answers = default_answers()
    answers.build.cache = str(cache)
    answers.app.hostname = "kitchen"
    answers.release.version, answers.release.arch = "13.0.3", "armv7"
    try:
        out = demo.start_demo(answers)
        url = out.release.mirrors[0]
        assert url.startswith("http://127.0.0.1:") and out.release.mirrors == [url]
        assert (out.release.version, out.release.arch) == ("15.0.0", "armhf")
        assert out.app.hostname == "kitchen" and answers.release.mirrors != [url]
        assert httpx.get(url + DEMO_MARKER).status_code == 200
        answers.release.version, answers.release.arch = "12.0", "armv7"
        kept = demo.start_demo(answers)
        assert (kept.release.version, kept.release.arch) == ("12.0", "armv7")
        err = capsys.readouterr().err
        assert "DEMO" in err and "does NOT boot real hardware" in err and url in err
        # the app's wheels are stand-ins too, so the demo needs no network at all
        wheels = Path(out.app.wheelhouse)
        assert wheels == cache / "demo" / "wheelhouse"
        assert {p.name.split("-")[0] for p in wheels.glob("*.whl")} >= {
            "fastapi",
            "uvicorn",
            "zeroconf",
        }
        answers.app.wheelhouse = str(tmp_path / "mine")
        assert demo.start_demo(answers).app.wheelhouse == str(tmp_path / "mine")
    finally:
        for srv in demo._servers:
            srv.stop()
        demo._servers.clear()


def test_demo_mirror_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # the default specs are built (and checked) by the fake_mirror fixture; a small one is
    # enough to check the command's own behaviour
    monkeypatch.setattr(demo, "build_mirror", lambda root: build_mirror(root, SMALL))
    out = tmp_path / "mirror"
    assert main(["demo-mirror", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert (
        f"demo mirror written to {out}" in text
        and "9.x/armv7/releases/RPi/piCore-9.9.0.zip" in text
    )
    assert (out / DEMO_MARKER).exists() and (out / "9.x/armv7/tcz/info.lst.gz").exists()
    assert oct(out.stat().st_mode & 0o777) == "0o755"
    (out / "stale").write_text("x")
    assert main(["demo-mirror", "--out", str(out)]) == 0  # an earlier demo mirror is replaced
    assert not (out / "stale").exists()
    other = tmp_path / "other"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    assert main(["demo-mirror", "--out", str(other)]) == 2
    assert "not empty" in capsys.readouterr().err
    assert [p.name for p in other.iterdir()] == ["keep.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mirror", "other"]


def test_headless_demo_refuses_a_release_the_demo_mirror_lacks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An answers file naming 99.9 must not silently build and deploy the demo's 15.0.0."""
    from wizard.cli import main

    answers = tmp_path / "a.toml"
    answers.write_text(
        f'version = 1\n[release]\nversion = "9.9"\n[build]\ncache = "{tmp_path / "cache"}"\n'
        f'output = "{tmp_path / "out"}"\n'
    )
    assert main(["--answers", str(answers), "--demo", "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "release.version/arch 9.9 armhf is not on the demo mirror" in err
    assert "run without --demo" in err
