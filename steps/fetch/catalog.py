"""The offline catalog: piCore releases known without asking a mirror (``assets/catalog.json``).

Used when no mirror answers, so the wizard can still show what exists and plan a build; the step
says so, because nothing can be downloaded until a mirror is reachable. Entries come from
picore.md §1.1/§2.2 (mirror paths seen in public scripts, kernel releases from the Core-scripts
config.txt templates). The kernels here are for display only: the release step reads each board's
kernel release from the downloaded image's own config.txt.
"""

from __future__ import annotations

import json
from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from steps.artifacts import ReleaseRef
from steps.events import Event, LogLine
from steps.fetch.download import Downloader
from steps.fetch.mirror import Catalogue, Resolved, same_version, scan_releases, sort_refs
from steps.paths import asset

OFFLINE_NOTE = (
    "no mirror answered; using the offline catalog — downloads will fail until a mirror is "
    "reachable"
)


@dataclass(frozen=True)
class CatalogEntry:
    """One known release file."""

    ref: ReleaseRef
    kernels: Mapping[str, str]
    """Board → kernel release per the release's config.txt template ({} when unknown)."""
    source: str
    """Where the entry comes from (for the curious)."""


def load_catalog(path: Path | None = None) -> list[CatalogEntry]:
    """The entries of the catalog file (the bundled one by default), newest first."""
    data = json.loads((path or asset("catalog.json")).read_text(encoding="utf-8"))
    entries = []
    for raw in data["releases"]:
        raw = dict(raw)
        kernels = raw.pop("kernels", {})
        source = raw.pop("source", "")
        entries.append(CatalogEntry(ReleaseRef(**raw), kernels, source))
    order = {id(r): i for i, r in enumerate(sort_refs(e.ref for e in entries))}
    return sorted(entries, key=lambda e: order[id(e.ref)])


@cache
def _bundled() -> tuple[CatalogEntry, ...]:
    return tuple(load_catalog())


def catalog_entries() -> list[CatalogEntry]:
    """The bundled catalog (read once)."""
    return list(_bundled())


def find(version: str, arch: str) -> CatalogEntry | None:
    """The bundled catalog's entry for ``version``/``arch``, if it knows one."""
    entries = [e for e in _bundled() if e.ref.arch == arch]
    return next((e for e in entries if e.ref.version == version), None) or next(
        (e for e in entries if same_version(e.ref.version, version)), None
    )


def offline_catalogue(problems: list[str] | None = None) -> Catalogue:
    """The bundled catalog in the shape ``scan_releases`` returns, marked offline."""
    return Catalogue([e.ref for e in _bundled()], "", offline=True, problems=problems or [])


def offline_resolved(version: str, arch: str) -> Resolved | None:
    """``find`` as a ``Resolved`` without a mirror."""
    entry = find(version, arch)
    return None if entry is None else Resolved(entry.ref, "", None, offline=True)


def browse_releases(
    dl: Downloader, majors: Sequence[int] | None = None
) -> Generator[Event, None, Catalogue]:
    """What the wizard's release screen lists: the first mirror that answers, else the catalog.

    Returns a ``Catalogue`` with ``offline=True`` (and says so in a warning) when no mirror
    answered.
    """
    found = yield from scan_releases(dl, majors)
    if found is not None:
        return found
    yield LogLine(dl.step, OFFLINE_NOTE, "warning")
    return offline_catalogue([f"{m}: did not answer" for m in dl.mirrors])
