"""Where things live: bundled assets, the user cache, the state directory.

Assets sit at the repository root (``assets/``) in a checkout and inside the wheel as
``steps/_assets`` (see pyproject's force-include), so steps find them either way.
"""

from __future__ import annotations

from pathlib import Path

from steps.answers import Answers, resolve_path

_HERE = Path(__file__).resolve().parent


def assets_dir() -> Path:
    """The directory holding the bundled app, templates, catalog and OUI table."""
    for candidate in (_HERE.parent / "assets", _HERE / "_assets"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError("the firecore-wizard assets directory is missing from this install")


def asset(*parts: str) -> Path:
    """Path of one bundled asset, e.g. ``asset("catalog.json")``."""
    return assets_dir().joinpath(*parts)


def cache_dir(answers: Answers, override: Path | None = None) -> Path:
    """The download/build cache: ``override``, else ``build.cache``, else the user cache dir."""
    if override is not None:
        return override
    if answers.build.cache:
        return resolve_path(answers.build.cache)
    import platformdirs  # only for the default: most runs name build.cache

    return Path(platformdirs.user_cache_dir("firecore-wizard"))


def digests_file(cache_root: Path) -> Path:
    """Where ``fsutil.KnownDigests`` keeps the sha256 of the files the build wrote and read
    (remaster records them, deploy trusts them for the files it copies)."""
    return cache_root / "remaster" / "digests.json"


def parsed_sources_file(cache_root: Path) -> Path:
    """Where ``appbundle.ParsedSources`` lists the app sources that parsed, per target Python."""
    return cache_root / "app" / "parsed.json"


#: Marker file at the demo mirror's root and in every demo release's boot partition
#: (``steps.demo``): what the image reader and ``--demo`` use to tell a demo build.
DEMO_MARKER = "FIRECORE-DEMO"
