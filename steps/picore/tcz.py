"""The TCZ repository of a release: its index files, per-extension info, and search.

A piCore extension repo (``<major>.x/<arch>/tcz/``) publishes repo-wide index files next to the
extensions (picore.md §1.4): ``info.lst.gz`` (names), ``sizelist.gz`` (``NAME.tcz <bytes>``),
``tags.db.gz`` (``NAME.tcz<TAB>words``), ``md5.db.gz`` (``md5sum`` lines) and ``dep.db.gz``
(blank-line separated records: name, then its deps). The wizard searches these; dependency
resolution itself reads the per-extension ``.tcz.dep`` files like piCore's loader
(``steps.picore.deps``).
Every reader is lenient (blank lines, stray whitespace, a missing file) because the files are
maintained by hand and scripts over many years.
"""

from __future__ import annotations

import difflib
import gzip
import zlib
from collections.abc import Generator, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property

from steps.answers import is_extension_name
from steps.events import Event
from steps.fetch.download import Downloader, parse_md5
from steps.fetch.mirror import major_of

#: Index files read by ``load_index`` (all optional; names come from info.lst or sizelist).
INDEX_FILES = ("info.lst.gz", "sizelist.gz", "tags.db.gz", "md5.db.gz", "dep.db.gz")


def repo_path(version: str, arch: str) -> str:
    """``"15.0.0", "armhf"`` → ``"15.x/armhf/tcz/"``."""
    return f"{major_of(version)}.x/{arch}/tcz/"


def decompress(data: bytes) -> str:
    """Text of an index file, gunzipped when it is gzip (some mirrors serve it plain)."""
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error):
            data = b""
    return data.decode("utf-8", "replace")


def _tcz_name(word: str) -> str | None:
    """The name when ``word`` is a valid extension name (the index comes from the mirror)."""
    word = word.strip()
    return word if is_extension_name(word) else None


def parse_info_lst(text: str) -> list[str]:
    """Extension names from ``info.lst`` (one per line)."""
    return [n for line in text.splitlines() if (n := _tcz_name(line))]


def parse_sizelist(text: str) -> dict[str, int]:
    """``NAME.tcz <bytes>`` lines → sizes."""
    sizes: dict[str, int] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 2 and _tcz_name(parts[0]) and parts[1].isdigit() and len(parts[1]) < 16:
            sizes[parts[0]] = int(parts[1])
    return sizes


def parse_tags(text: str) -> dict[str, str]:
    """``tags.db``: first field the name, the rest its description/tag words."""
    tags: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.strip().split(None, 1)
        if parts and _tcz_name(parts[0]):
            tags[parts[0]] = " ".join(parts[1].split()) if len(parts) > 1 else ""
    return tags


def parse_md5db(text: str) -> dict[str, str]:
    """``md5.db``: ``md5sum`` lines → name → md5."""
    sums: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 2 and _tcz_name(parts[-1]):
            md5 = parse_md5(parts[0])
            if md5:
                sums[parts[-1]] = md5
    return sums


def parse_depdb(text: str) -> dict[str, list[str]]:
    """``dep.db``: records separated by blank lines; line 1 the name, then its deps."""
    deps: dict[str, list[str]] = {}
    for record in text.replace("\r\n", "\n").split("\n\n"):
        lines = [n for line in record.splitlines() if (n := _tcz_name(line))]
        if lines:
            deps[lines[0]] = lines[1:]
    return deps


def parse_info(text: str) -> dict[str, str]:
    """A ``.tcz.info`` file: ``Field:<tabs>value`` with indented continuation lines."""
    info: dict[str, str] = {}
    key = ""
    for line in text.splitlines():
        if line[:1] in (" ", "\t") and key:
            info[key] += "\n" + line.strip()
            continue
        head, sep, value = line.partition(":")
        if sep and head.strip() and " " not in head.strip():
            key = head.strip()
            info[key] = value.strip()
    return info


@dataclass(frozen=True)
class IndexEntry:
    """One extension as the index describes it."""

    name: str
    size: int | None
    description: str
    md5: str | None = None
    deps: tuple[str, ...] = ()
    """Direct deps per dep.db (for display; resolution reads the .dep files)."""


@dataclass
class TczIndex:
    """The index of one extension repo."""

    repo: str
    """Repo path below the mirror base, e.g. "15.x/armhf/tcz/"."""
    names: list[str] = field(default_factory=list)
    sizes: dict[str, int] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    md5s: dict[str, str] = field(default_factory=dict)
    deps: dict[str, list[str]] = field(default_factory=dict)
    mirror: str = ""

    @classmethod
    def from_texts(cls, repo: str, texts: Mapping[str, str], mirror: str = "") -> TczIndex:
        """Build from the (decompressed) index files; missing ones are simply empty."""
        index = cls(
            repo=repo,
            sizes=parse_sizelist(texts.get("sizelist.gz", "")),
            tags=parse_tags(texts.get("tags.db.gz", "")),
            md5s=parse_md5db(texts.get("md5.db.gz", "")),
            deps=parse_depdb(texts.get("dep.db.gz", "")),
            mirror=mirror,
        )
        names = parse_info_lst(texts.get("info.lst.gz", ""))
        index.names = sorted(set(names) | set(index.sizes))
        return index

    def __contains__(self, name: object) -> bool:
        return name in self._known

    @cached_property
    def _known(self) -> frozenset[str]:
        return frozenset(self.names)

    def entry(self, name: str) -> IndexEntry:
        """What the index says about ``name``."""
        return IndexEntry(
            name,
            self.sizes.get(name),
            self.tags.get(name, ""),
            self.md5s.get(name),
            tuple(self.deps.get(name, ())),
        )

    def close_matches(self, name: str, n: int = 3) -> list[str]:
        """Index names that look like ``name`` (typos, other Python versions …)."""
        found = difflib.get_close_matches(name, self.names, n=n, cutoff=0.6)
        stem = name.removesuffix(".tcz").split("-")[0]
        if len(found) < n and len(stem) >= 3:
            found += [x for x in self.names if x.startswith(stem) and x not in found][
                : n - len(found)
            ]
        return found

    def search(self, query: str, limit: int = 50) -> list[IndexEntry]:
        """Extensions whose name or description contains every word of ``query``, best first.

        An exact name beats a name prefix, which beats a match in the name, which beats a match
        in the description only. An empty query lists everything by name.
        """
        words = query.lower().split()
        scored: list[tuple[int, str]] = []
        for name in self.names:
            low = name.lower()
            stem = low.removesuffix(".tcz")
            desc = self.tags.get(name, "").lower()
            score = 0
            for word in words:
                if word in (low, stem):
                    score += 100
                elif stem.startswith(word):
                    score += 50
                elif word in low:
                    score += 20
                elif word in desc:
                    score += 5
                else:
                    score = -1
                    break
            if score >= 0:
                scored.append((score, name))
        scored.sort(key=lambda s: (-s[0], s[1]))
        return [self.entry(name) for _, name in scored[:limit]]


def load_index(
    dl: Downloader, repo: str, files: Iterable[str] = INDEX_FILES
) -> Generator[Event, None, TczIndex]:
    """Fetch (or take from the cache) the repo's index files; missing ones are tolerated."""
    paths = [repo + name for name in files]
    raw = yield from dl.meta_many(paths, missing_ok=True, phase="index")
    texts = {p.rsplit("/", 1)[-1]: decompress(data) for p, data in raw.items() if data}
    mirror = next((dl.sources[p] for p in paths if p in dl.sources), "")
    return TczIndex.from_texts(repo, texts, mirror)


def fetch_info(dl: Downloader, repo: str, name: str) -> dict[str, str]:
    """The parsed ``NAME.tcz.info`` ({} if the mirror has none)."""
    data = dl.meta(repo + name + ".info", missing_ok=True)
    return parse_info(data.decode("utf-8", "replace")) if data else {}
