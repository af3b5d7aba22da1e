"""Directory listings of the web servers piCore mirrors run, parsed into entries."""

# ruff: noqa: E501  (the pages are verbatim server markup, long lines included)

from __future__ import annotations

from steps.fetch.listing import Entry, parse_listing, parse_size
from steps.fetch.mirror import release_refs, same_version, sort_refs, version_key

URL = "http://mirror.example/tc/15.x/armhf/releases/RPi/"

APACHE_TABLE = """<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 3.2 Final//EN">
<html>
 <head>
  <title>Index of /tc/15.x/armhf/releases/RPi</title>
 </head>
 <body>
<h1>Index of /tc/15.x/armhf/releases/RPi</h1>
  <table>
   <tr><th valign="top"><img src="/icons/blank.gif" alt="[ICO]"></th><th><a href="?C=N;O=D">Name</a></th><th><a href="?C=M;O=A">Last modified</a></th><th><a href="?C=S;O=A">Size</a></th><th><a href="?C=D;O=A">Description</a></th></tr>
   <tr><th colspan="5"><hr></th></tr>
<tr><td valign="top"><img src="/icons/back.gif" alt="[PARENTDIR]"></td><td><a href="/tc/15.x/armhf/releases/">Parent Directory</a></td><td>&nbsp;</td><td align="right">  - </td><td>&nbsp;</td></tr>
<tr><td valign="top"><img src="/icons/compressed.gif" alt="[   ]"></td><td><a href="piCore-15.0.0.zip">piCore-15.0.0.zip</a></td><td align="right">2024-09-16 10:21  </td><td align="right"> 96M</td><td>&nbsp;</td></tr>
<tr><td valign="top"><img src="/icons/text.gif" alt="[TXT]"></td><td><a href="piCore-15.0.0.zip.md5.txt">piCore-15.0.0.zip.md5.txt</a></td><td align="right">2024-09-16 10:22  </td><td align="right">52 </td><td>&nbsp;</td></tr>
<tr><td valign="top"><img src="/icons/folder.gif" alt="[DIR]"></td><td><a href="src/">src/</a></td><td align="right">2024-09-01 08:00  </td><td align="right">  - </td><td>&nbsp;</td></tr>
<tr><td valign="top"><img src="/icons/unknown.gif" alt="[   ]"></td><td><a href="piCore%2Bextra-1.zip">piCore+extra-1.zip</a></td><td align="right">2023-01-02 03:04  </td><td align="right">1.5K</td><td>&nbsp;</td></tr>
   <tr><th colspan="5"><hr></th></tr>
</table>
<address>Apache/2.4.62 (Debian) Server at mirror.example Port 80</address>
</body></html>
"""

APACHE_PRE = """<html><head><title>Index of /tc/15.x/armhf/releases/RPi</title></head><body>
<h1>Index of /tc/15.x/armhf/releases/RPi</h1>
<pre><img src="/icons/blank.gif" alt="Icon "> <a href="?C=N;O=D">Name</a>                    <a href="?C=M;O=A">Last modified</a>      <a href="?C=S;O=A">Size</a>  <a href="?C=D;O=A">Description</a><hr><img src="/icons/back.gif" alt="[PARENTDIR]"> <a href="/tc/15.x/armhf/releases/">Parent Directory</a>                             -
<img src="/icons/compressed.gif" alt="[   ]"> <a href="piCore-15.0.0.zip">piCore-15.0.0.zip</a>       16-Sep-2024 10:21   96M
<img src="/icons/folder.gif" alt="[DIR]"> <a href="src/">src/</a>                    01-Sep-2024 08:00    -
<hr></pre>
</body></html>
"""

NGINX = """<html>
<head><title>Index of /tc/15.x/armhf/releases/RPi/</title></head>
<body>
<h1>Index of /tc/15.x/armhf/releases/RPi/</h1><hr><pre><a href="../">../</a>
<a href="src/">src/</a>                                               01-Sep-2024 08:00                   -
<a href="piCore-15.0.0.zip">piCore-15.0.0.zip</a>                                  16-Sep-2024 10:21           100663296
<a href="piCore-15.0.0-with-a-really-long-name-beyond-fifty.zip">piCore-15.0.0-with-a-really-long-name-beyond-..&gt;</a> 16-Sep-2024 10:21  7
</pre><hr></body>
</html>
"""

LIGHTTPD = """<?xml version="1.0" encoding="utf-8"?>
<!DOCTYPE html>
<html><head><title>Index of /tc/15.x/armhf/releases/RPi/</title></head>
<body>
<h2>Index of /tc/15.x/armhf/releases/RPi/</h2>
<div class="list">
<table summary="Directory Listing" cellpadding="0" cellspacing="0">
<thead><tr><th class="n">Name</th><th class="m">Last Modified</th><th class="s">Size</th><th class="t">Type</th></tr></thead>
<tbody>
<tr class="d"><td class="n"><a href="../">Parent Directory</a>/</td><td class="m">&nbsp;</td><td class="s">- &nbsp;</td><td class="t">Directory</td></tr>
<tr class="d"><td class="n"><a href="src/">src</a>/</td><td class="m">2024-Sep-01 08:00:00</td><td class="s">- &nbsp;</td><td class="t">Directory</td></tr>
<tr><td class="n"><a href="piCore-15.0.0.zip">piCore-15.0.0.zip</a></td><td class="m">2024-Sep-16 10:21:33</td><td class="s">96.0M</td><td class="t">application/zip</td></tr>
</tbody>
</table>
</div>
<div class="foot">lighttpd/1.4.69</div>
</body>
</html>
"""

PYTHON = """<!DOCTYPE HTML>
<html lang="en"><head><meta charset="utf-8"><title>Directory listing for /tc/15.x/armhf/releases/RPi/</title></head>
<body><h1>Directory listing for /tc/15.x/armhf/releases/RPi/</h1><hr><ul>
<li><a href="piCore-15.0.0.zip">piCore-15.0.0.zip</a></li>
<li><a href="src/">src/</a></li>
<li><a href="http://elsewhere.example/tc/15.x/armhf/releases/RPi/evil.zip">evil</a></li>
<li><a href="src/deeper/file.zip">not a direct child</a></li>
<li><a href='mailto:x@example'>mail</a></li>
</ul><hr></body></html>
"""


def by_name(page: str) -> dict[str, Entry]:
    return {e.name: e for e in parse_listing(page, URL)}


def test_apache_table() -> None:
    entries = parse_listing(APACHE_TABLE, URL)
    assert [e.name for e in entries] == [
        "piCore-15.0.0.zip",
        "piCore-15.0.0.zip.md5.txt",
        "src",
        "piCore+extra-1.zip",
    ]
    e = {x.name: x for x in entries}
    assert e["piCore-15.0.0.zip"] == Entry(
        "piCore-15.0.0.zip", False, 96 * 1024**2, "2024-09-16T10:21"
    )
    assert e["piCore-15.0.0.zip.md5.txt"].size == 52
    assert e["src"] == Entry("src", True, None, "2024-09-01T08:00")
    assert e["piCore+extra-1.zip"].size == 1536


def test_apache_pre() -> None:
    e = by_name(APACHE_PRE)
    assert set(e) == {"piCore-15.0.0.zip", "src"}
    assert e["piCore-15.0.0.zip"] == Entry(
        "piCore-15.0.0.zip", False, 96 * 1024**2, "2024-09-16T10:21"
    )
    assert e["src"].is_dir and e["src"].date == "2024-09-01T08:00"


def test_nginx() -> None:
    e = by_name(NGINX)
    assert set(e) == {
        "src",
        "piCore-15.0.0.zip",
        "piCore-15.0.0-with-a-really-long-name-beyond-fifty.zip",
    }
    assert e["piCore-15.0.0.zip"] == Entry(
        "piCore-15.0.0.zip", False, 100663296, "2024-09-16T10:21"
    )
    assert e["piCore-15.0.0-with-a-really-long-name-beyond-fifty.zip"].size == 7


def test_lighttpd() -> None:
    e = by_name(LIGHTTPD)
    assert set(e) == {"src", "piCore-15.0.0.zip"}
    assert e["piCore-15.0.0.zip"] == Entry(
        "piCore-15.0.0.zip", False, 96 * 1024**2, "2024-09-16T10:21"
    )
    assert e["src"] == Entry("src", True, None, "2024-09-01T08:00")


def test_python_http_server_and_foreign_links() -> None:
    e = by_name(PYTHON)
    assert set(e) == {"piCore-15.0.0.zip", "src"}
    assert e["piCore-15.0.0.zip"].size is None and e["piCore-15.0.0.zip"].date == ""


def test_sizes() -> None:
    assert parse_size("96M") == 96 * 1024**2
    assert parse_size("1.2K") == 1228
    assert parse_size("345") == 345
    assert parse_size("2G") == 2 * 1024**3
    assert parse_size("12KiB") == 12 * 1024
    assert parse_size("-") is None
    assert parse_size("") is None


def test_release_files_in_a_listing() -> None:
    entries = [
        Entry("piCore-15.0.0.zip", False, 100, "2024-09-16T10:21"),
        Entry("piCore-15.0.0.zip.md5.txt", False, 52),
        Entry("piCore64-15.0.0-beta2.zip", False, 90),
        Entry("piCore-16.0.0.img.gz", False, 80),  # wrong major for this directory
        Entry("piCore-15.0.0.img", False, 80),  # a bare image is not a published layout
        Entry("README", False, 1),
        Entry("src", True),
    ]
    refs = release_refs(entries, "armhf", "15.x/armhf/releases/RPi")
    assert [(r.filename, r.version, r.flavour, r.layout, r.beta) for r in refs] == [
        ("piCore-15.0.0.zip", "15.0.0", "piCore", "zip", False),
        ("piCore64-15.0.0-beta2.zip", "15.0.0-beta2", "piCore64", "zip", True),
    ]
    assert refs[0].path == "15.x/armhf/releases/RPi/piCore-15.0.0.zip"
    assert (refs[0].size, refs[0].date) == (100, "2024-09-16T10:21")
    gz = release_refs(
        [Entry("piCore64-16.0.0.img.gz", False, 5)], "aarch64", "16.x/aarch64/release/RPi"
    )
    assert (gz[0].layout, gz[0].flavour, gz[0].beta) == ("img.gz", "piCore64", False)
    beta = release_refs(
        [Entry("piCore-15.0.0.zip", False)], "armhf", "15.x/armhf/test_releases/RPi"
    )
    assert beta[0].beta


def test_versions_compare_and_sort() -> None:
    assert same_version("12.0", "12.0.0")
    assert same_version("13.1", "13.1.0")
    assert not same_version("15.0.0-beta2", "15.0.0")
    assert version_key("15.0.0-beta2") < version_key("15.0.0-rc1") < version_key("15.0.0")
    assert version_key("15.0.0") < version_key("15.1") < version_key("16.0.0")
    refs = release_refs(
        [
            Entry("piCore-15.0.0.zip", False),
            Entry("piCore-15.0.0-beta9.zip", False),
            Entry("piCore-15.1.0.zip", False),
        ],
        "armhf",
        "15.x/armhf/releases/RPi",
    )
    assert [r.version for r in sort_refs(refs)] == ["15.1.0", "15.0.0", "15.0.0-beta9"]
