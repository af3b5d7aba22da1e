"""The TCZ repo's index files and .tcz.info: lenient parsing, search, close matches."""

from __future__ import annotations

import gzip

from steps.picore.tcz import (
    TczIndex,
    decompress,
    parse_depdb,
    parse_info,
    parse_info_lst,
    parse_md5db,
    parse_sizelist,
    parse_tags,
    repo_path,
)

INFO = """Title:          nano.tcz
Description:    Nano editor
Version:        2.2.6
Author:         Various
Original-site:  http://www.nano-editor.org/
Copying-policy: GPL
Size:           88K
Extension_by:   Curaga
Tags:\t\tNano editor
Comments:       The most essential component of any
\t\tunix system, and my personal favourite
\t\teditor: Nano!
                ----
Change-log:     2008/07/05 - First version
                2008/12/09 - Update to 2.0.9,
Current:        2011/05/25 - Update to 2.2.6
"""

TEXTS = {
    "info.lst.gz": "nano.tcz\nopenssh.tcz\nopenssl.tcz\npython3.11.tcz\npython3.11-pip.tcz\n"
    "w1-6.6.47-piCore-v7.tcz\n\n",
    "sizelist.gz": "nano.tcz 90112\nopenssh.tcz 1200000\nopenssl.tcz 2500000\n"
    "python3.11.tcz 15000000\npython3.11-pip.tcz 3000000\nw1-6.6.47-piCore-v7.tcz 8192\n"
    "broken line\nsqlite3.tcz 400000\n",
    "tags.db.gz": "nano.tcz\tNano editor text\nopenssh.tcz\tssh server client secure shell\n"
    "openssl.tcz  TLS crypto library\npython3.11.tcz\tPython interpreter\n"
    "python3.11-pip.tcz\tpip installer for Python\n",
    "md5.db.gz": "02e231701c2d272f81cda33f16eace11  nano.tcz\n"
    "0123456789abcdef0123456789ABCDEF  openssl.tcz\nnot an md5  x.tcz\n",
    "dep.db.gz": "openssh.tcz\nopenssl.tcz\n\npython3.11-pip.tcz\npython3.11.tcz\n\nnano.tcz\n\n\n",
}


def test_index_files_parse_leniently() -> None:
    assert parse_info_lst(TEXTS["info.lst.gz"])[:2] == ["nano.tcz", "openssh.tcz"]
    sizes = parse_sizelist(TEXTS["sizelist.gz"])
    assert sizes["python3.11.tcz"] == 15000000
    assert "broken" not in " ".join(sizes)
    assert parse_tags(TEXTS["tags.db.gz"])["openssl.tcz"] == "TLS crypto library"
    assert parse_md5db(TEXTS["md5.db.gz"]) == {
        "nano.tcz": "02e231701c2d272f81cda33f16eace11",
        "openssl.tcz": "0123456789abcdef0123456789abcdef",
    }
    assert parse_depdb(TEXTS["dep.db.gz"]) == {
        "openssh.tcz": ["openssl.tcz"],
        "python3.11-pip.tcz": ["python3.11.tcz"],
        "nano.tcz": [],
    }


def test_decompress_accepts_gzip_and_plain() -> None:
    assert decompress(gzip.compress(b"a.tcz 1\n")) == "a.tcz 1\n"
    assert decompress(b"a.tcz 1\n") == "a.tcz 1\n"
    assert decompress(b"\x1f\x8bnot really gzip") == ""


def test_info_fields_and_continuations() -> None:
    info = parse_info(INFO)
    assert info["Title"] == "nano.tcz"
    assert info["Description"] == "Nano editor"
    assert info["Tags"] == "Nano editor"
    assert info["Original-site"] == "http://www.nano-editor.org/"
    assert info["Comments"].splitlines() == [
        "The most essential component of any",
        "unix system, and my personal favourite",
        "editor: Nano!",
        "----",
    ]
    assert info["Change-log"].endswith("2008/12/09 - Update to 2.0.9,")
    assert info["Current"] == "2011/05/25 - Update to 2.2.6"


def test_index_names_come_from_info_lst_and_sizelist() -> None:
    index = TczIndex.from_texts("15.x/armhf/tcz/", TEXTS)
    assert "sqlite3.tcz" in index  # only in sizelist
    assert "w1-6.6.47-piCore-v7.tcz" in index  # only in info.lst
    assert "nope.tcz" not in index
    entry = index.entry("openssh.tcz")
    assert (entry.size, entry.description, entry.deps) == (
        1200000,
        "ssh server client secure shell",
        ("openssl.tcz",),
    )
    assert index.entry("w1-6.6.47-piCore-v7.tcz").description == ""


def test_search_ranks_name_over_description() -> None:
    index = TczIndex.from_texts("15.x/armhf/tcz/", TEXTS)
    names = [e.name for e in index.search("python")]
    assert names == ["python3.11-pip.tcz", "python3.11.tcz"]  # equal rank: by name
    assert index.search("openssl")[0].name == "openssl.tcz"
    assert [e.name for e in index.search("secure shell")] == ["openssh.tcz"]  # description only
    assert [e.name for e in index.search("pip python")] == ["python3.11-pip.tcz"]
    assert index.search("no-such-thing") == []
    assert len(index.search("")) == len(index.names)
    assert len(index.search("", limit=2)) == 2


def test_close_matches_for_typos_and_versions() -> None:
    index = TczIndex.from_texts("15.x/armhf/tcz/", TEXTS)
    assert index.close_matches("opensh.tcz")[0] == "openssh.tcz"
    assert "python3.11.tcz" in index.close_matches("python3.8.tcz")


def test_repo_path() -> None:
    assert repo_path("15.0.0", "armhf") == "15.x/armhf/tcz/"
    assert repo_path("12.0", "armv7") == "12.x/armv7/tcz/"
    assert repo_path("15.0.0-beta2", "aarch64") == "15.x/aarch64/tcz/"
