"""Browsing piCore releases on a mirror: which releases exist, and where the chosen one is.

A piCore mirror is a plain directory tree (``<major>.x/<arch>/releases/RPi/piCore-15.0.0.zip``,
from 16.x ``release/RPi/*.img.gz``, betas in ``test_releases/RPi/``) with the web server's index
pages as the only index. Two entry points, both bounded in the number of pages they read:

* ``resolve_release`` finds one version/arch: the arch directory plus at most its three release
  directories (a few requests), and more only to explain a miss (which versions/arches exist).
* ``scan_releases`` lists everything 12.x … for the wizard's catalogue: the root, each major,
  each arch and its release directories (about 30 pages on tinycorelinux.net), read in parallel.

Mirrors are tried in order; a mirror that does not answer is skipped, and when none answers the
caller falls back to the offline catalog (``steps.fetch.catalog``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Generator, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from steps.answers import ARCHES
from steps.artifacts import Layout, ReleaseRef
from steps.errors import AnswersError
from steps.events import Event, LogLine
from steps.fetch.download import Downloader, MirrorNotFound, MirrorUnreachable

if TYPE_CHECKING:  # the listing parser is imported only when a mirror is browsed
    from steps.fetch.listing import Entry

#: The oldest major this tool knows how to remaster (config.txt naming, see picore.md §2.2).
MIN_MAJOR = 12
#: Release directories below ``<major>.x/<arch>/``, in the order they are searched.
RELEASE_DIRS = ("releases/RPi", "release/RPi", "test_releases/RPi")

# fullmatch only: a listed name "piCore-15.0.0.zip\n" must not pass as a release file.
_RELEASE_FILE = re.compile(
    r"(?P<flavour>piCore64|piCore)-"
    r"(?P<version>\d{1,2}\.\d+(?:\.\d+)?(?:-?(?:beta|rc)\d*[a-z]?)?)"
    r"\.(?P<ext>zip|img\.gz)"
)
_VERSION = re.compile(r"(?P<nums>\d+(?:\.\d+)*)(?:-?(?P<pre>beta|rc)(?P<n>\d*)(?P<x>[a-z]?))?")


def major_of(version: str) -> int:
    """``"15.0.0-beta2"`` → 15."""
    return int(version.split(".", 1)[0])


def version_key(version: str) -> tuple[tuple[int, ...], int, int, str]:
    """Sort key: numeric parts (trailing zeros ignored), a release after its betas and rcs."""
    m = _VERSION.fullmatch(version)
    if not m:
        return ((), 0, 0, "")
    nums = [int(n) for n in m["nums"].split(".")]
    while len(nums) > 1 and nums[-1] == 0:
        nums.pop()
    pre = {"beta": 0, "rc": 1, None: 2}[m["pre"]]
    return (tuple(nums), pre, int(m["n"] or 0), m["x"] or "")


def same_version(a: str, b: str) -> bool:
    """``"12.0"`` and ``"12.0.0"`` name the same release; ``"15.0.0-beta2"`` ≠ ``"15.0.0"``."""
    return a == b or (bool(_VERSION.fullmatch(a)) and version_key(a) == version_key(b))


def is_beta(version: str) -> bool:
    """True for "-beta"/"-rc" versions."""
    m = _VERSION.fullmatch(version)
    return bool(m and m["pre"])


def expected_flavour(arch: str) -> str:
    """piCore64 on aarch64, piCore elsewhere."""
    return "piCore64" if arch == "aarch64" else "piCore"


def release_refs(entries: Iterable[Entry], arch: str, directory: str) -> list[ReleaseRef]:
    """The release files in one listed release directory (other files are ignored)."""
    refs: list[ReleaseRef] = []
    major = directory.split(".x/", 1)[0]
    for entry in entries:
        m = _RELEASE_FILE.fullmatch(entry.name)
        if entry.is_dir or not m or major_of(m["version"]) != int(major):
            continue
        layout: Layout = "zip" if m["ext"] == "zip" else "img.gz"
        refs.append(
            ReleaseRef(
                version=m["version"],
                arch=arch,
                flavour=m["flavour"],
                filename=entry.name,
                layout=layout,
                path=f"{directory.rstrip('/')}/{entry.name}",
                beta="test_releases/" in directory or is_beta(m["version"]),
                size=entry.size,
                date=entry.date,
            )
        )
    return refs


def sort_refs(refs: Iterable[ReleaseRef]) -> list[ReleaseRef]:
    """Newest version first; within a version by arch (answers order), flavour and file name."""

    def arch_order(r: ReleaseRef) -> tuple[int, str, str]:
        return (ARCHES.index(r.arch) if r.arch in ARCHES else 99, r.flavour, r.filename)

    by_arch = sorted(refs, key=arch_order)
    return sorted(by_arch, key=lambda r: version_key(r.version), reverse=True)


@dataclass(frozen=True)
class Resolved:
    """A release found on a mirror (or in the offline catalog)."""

    ref: ReleaseRef
    mirror: str
    """Base URL of the mirror that listed it ("" for the offline catalog)."""
    md5_path: str | None = None
    """Path of ``<file>.md5.txt`` when the mirror publishes one next to the release."""
    offline: bool = False


@dataclass
class Catalogue:
    """Every release a mirror lists (or the offline catalog)."""

    refs: list[ReleaseRef]
    mirror: str
    """Mirror that was read ("" when offline)."""
    offline: bool = False
    problems: list[str] = field(default_factory=list)
    """Why earlier mirrors were skipped."""


class _Lister:
    """Reads listings from one mirror through the downloader (retries, timeouts)."""

    def __init__(self, dl: Downloader, mirror: str) -> None:
        self.dl = dl
        self.mirror = mirror

    def entries(self, path: str) -> list[Entry] | None:
        """The listing of ``path`` ("" = root), None on 404."""
        path = path.strip("/")
        path = f"{path}/" if path else ""
        try:
            page = self.dl.get(self.mirror, path)
        except MirrorNotFound:
            return None
        from steps.fetch.listing import parse_listing  # only when a mirror is browsed

        return parse_listing(page.decode("utf-8", "replace"), self.dl.url(self.mirror, path))

    def subdirs(self, path: str) -> list[str]:
        return [e.name for e in self.entries(path) or [] if e.is_dir]


def _majors(names: Iterable[str]) -> list[int]:
    out = []
    for name in names:
        m = re.fullmatch(r"(\d+)\.x", name)
        if m and int(m.group(1)) >= MIN_MAJOR:
            out.append(int(m.group(1)))
    return sorted(out)


def _search_order(version: str) -> list[str]:
    if is_beta(version):
        return ["test_releases/RPi", "releases/RPi", "release/RPi"]
    return list(RELEASE_DIRS)


def _find_on(lister: _Lister, version: str, arch: str) -> Resolved:
    """Look for one release on one mirror.

    Raises:
        AnswersError: the mirror answered but has no such arch or version (names what it has).
        MirrorUnreachable: the mirror did not answer.
    """
    major = major_of(version)
    arch_dir = f"{major}.x/{arch}"
    arch_entries = lister.entries(arch_dir)
    if arch_entries is None:
        arches = lister.subdirs(f"{major}.x")
        if not arches:
            majors = _majors(lister.subdirs(""))
            raise AnswersError(
                "release.version",
                f"{lister.mirror} has no piCore {major}.x",
                fix="available: " + (", ".join(f"{m}.x" for m in majors) or "nothing from 12.x"),
            )
        known = [a for a in arches if a in ARCHES]
        raise AnswersError(
            "release.arch",
            f"{lister.mirror} has no {arch} directory for piCore {major}.x",
            fix=f"{major}.x has: {', '.join(known) or ', '.join(arches)}",
        )
    present = {e.name for e in arch_entries if e.is_dir}
    seen: list[ReleaseRef] = []
    for rel_dir in _search_order(version):
        if rel_dir.split("/")[0] not in present:
            continue
        directory = f"{arch_dir}/{rel_dir}"
        entries = lister.entries(directory) or []
        refs = release_refs(entries, arch, directory)
        seen += refs
        names = {e.name for e in entries}
        matches = [r for r in refs if r.version == version] or [
            r for r in refs if same_version(r.version, version)
        ]
        if matches:
            flavour = expected_flavour(arch)
            ref = next((r for r in matches if r.flavour == flavour), matches[0])
            md5 = f"{ref.filename}.md5.txt"
            return Resolved(ref, lister.mirror, f"{directory}/{md5}" if md5 in names else None)
    versions = sorted({r.version for r in seen}, key=version_key, reverse=True)
    raise AnswersError(
        "release.version",
        f"piCore {version} for {arch} is not on {lister.mirror}",
        fix=f"{major}.x/{arch} has: {', '.join(versions)}"
        if versions
        else f"{major}.x/{arch} lists no release images",
    )


def _cache_key(version: str, arch: str) -> str:
    return f"resolved/{version}-{arch}.json"


def _load_resolved(dl: Downloader, version: str, arch: str) -> Resolved | None:
    found, data = dl.cached_meta(_cache_key(version, arch))
    if not found or data is None:
        return None
    try:
        raw = json.loads(data)
        return Resolved(ReleaseRef(**raw["ref"]), raw["mirror"], raw.get("md5_path"))
    except (ValueError, KeyError, TypeError):
        return None


def resolve_release(
    dl: Downloader, version: str, arch: str
) -> Generator[Event, None, Resolved | None]:
    """Find ``version``/``arch`` on the first mirror that answers (cached after the first time).

    Returns:
        Where the release is, or None when no mirror answered (use the offline catalog).

    Raises:
        AnswersError: a mirror answered but has no such release (names what it has instead).
    """
    cached = _load_resolved(dl, version, arch)
    if cached is not None:
        yield LogLine(dl.step, f"{cached.ref.filename}: location cached from {cached.mirror}")
        return cached
    answered: AnswersError | None = None
    for mirror in dl.mirrors:
        yield LogLine(dl.step, f"looking for piCore {version} ({arch}) on {mirror}")
        try:
            found = _find_on(_Lister(dl, mirror), version, arch)
        except MirrorUnreachable as exc:
            dl.mark_unreachable(mirror)
            yield from dl.drain()
            yield LogLine(dl.step, f"mirror {mirror} did not answer ({exc})", "warning")
            continue
        except AnswersError as exc:
            yield from dl.drain()
            answered = answered or exc
            yield LogLine(dl.step, f"{mirror}: {exc.message}", "warning")
            continue
        yield from dl.drain()
        record = {"ref": found.ref.to_data(), "mirror": found.mirror, "md5_path": found.md5_path}
        dl.store_meta(mirror, _cache_key(version, arch), json.dumps(record).encode())
        return found
    if answered is not None:
        raise answered
    return None


def _scan_arch(lister: _Lister, major: int, arch: str) -> list[ReleaseRef]:
    arch_dir = f"{major}.x/{arch}"
    present = set(lister.subdirs(arch_dir))
    refs: list[ReleaseRef] = []
    for rel_dir in RELEASE_DIRS:
        if rel_dir.split("/")[0] in present:
            directory = f"{arch_dir}/{rel_dir}"
            refs += release_refs(lister.entries(directory) or [], arch, directory)
    return refs


def _scan_mirror(lister: _Lister, majors: Sequence[int] | None, workers: int) -> list[ReleaseRef]:
    root = _majors(lister.subdirs(""))
    wanted = [m for m in root if majors is None or m in majors]
    pairs: list[tuple[int, str]] = []
    from concurrent.futures import ThreadPoolExecutor  # logging, traceback: only when scanning

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="scan") as pool:
        for major, arches in zip(
            wanted, pool.map(lambda m: lister.subdirs(f"{m}.x"), wanted), strict=True
        ):
            pairs += [(major, a) for a in arches if a in ARCHES]
        refs: list[ReleaseRef] = []
        for found in pool.map(lambda p: _scan_arch(lister, *p), pairs):
            refs += found
    return sort_refs(refs)


def scan_releases(
    dl: Downloader, majors: Sequence[int] | None = None
) -> Generator[Event, None, Catalogue | None]:
    """Every release (12.x and later, or just ``majors``) on the first mirror that answers.

    Returns:
        The catalogue, or None when no mirror answered (use the offline catalog).
    """
    problems: list[str] = []
    for mirror in dl.mirrors:
        yield LogLine(dl.step, f"reading the release list of {mirror}")
        try:
            refs = _scan_mirror(_Lister(dl, mirror), majors, dl.workers)
        except MirrorUnreachable as exc:
            dl.mark_unreachable(mirror)
            yield from dl.drain()
            problems.append(f"{mirror}: {exc}")
            yield LogLine(dl.step, f"mirror {mirror} did not answer ({exc})", "warning")
            continue
        yield from dl.drain()
        yield LogLine(dl.step, f"{len(refs)} release file(s) on {mirror}")
        return Catalogue(refs, mirror, problems=problems)
    return None


def answering_mirror(mirrors: Sequence[str], timeout: float = 3.0) -> str | None:
    """The first mirror whose web server answers at all (any HTTP status), or None.

    A cheap reachability check for ``make run`` (offer the demo mirror when offline); it reads
    no listing and caches nothing.
    """
    import httpx

    for url in mirrors:
        try:
            with httpx.Client(timeout=httpx.Timeout(timeout, connect=timeout)) as client:
                client.head(url)
        except httpx.HTTPError:
            continue
        return url
    return None
