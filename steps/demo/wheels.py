"""Stand-in wheels for the demo: tiny, real wheel files that pip installs like PyPI's.

The demo mirror's releases are stand-ins, so are its app wheels: ``demo_wheelhouse`` writes
pure-Python wheels named like what the bundled app needs (fastapi, uvicorn, zeroconf and their
dependencies) so ``--demo`` walks the whole flow with no network at all. They hold no real code;
a demo build does not boot a Pi anyway. Tests build their own wheelhouses with ``make_wheel``.
"""

from __future__ import annotations

import base64
import hashlib
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path

PURE = "py3-none-any"

#: (name, version, requirements) of the demo's stand-ins; pure, so they suit every demo release.
DEMO_WHEELS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("fastapi", "0.110.0", ("starlette",)),
    ("starlette", "0.36.0", ()),
    ("uvicorn", "0.29.0", ()),
    ("zeroconf", "0.132.0", ("ifaddr",)),
    ("ifaddr", "0.2.0", ()),
)


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def make_wheel(
    directory: Path,
    name: str,
    version: str = "1.0",
    tag: str = PURE,
    requires: Iterable[str] = (),
    files: Mapping[str, bytes] | None = None,
) -> Path:
    """Write ``<name>-<version>-<tag>.whl`` into ``directory`` and return its path."""
    directory.mkdir(parents=True, exist_ok=True)
    dist = f"{name}-{version}.dist-info"
    content: dict[str, bytes] = dict(files or {f"{name}/__init__.py": f"TAG = {tag!r}\n".encode()})
    content[f"{dist}/METADATA"] = (
        f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
        + "".join(f"Requires-Dist: {r}\n" for r in requires)
    ).encode()
    content[f"{dist}/WHEEL"] = (
        "Wheel-Version: 1.0\nGenerator: firecore-wizard\n"
        f"Root-Is-Purelib: {'true' if tag == PURE else 'false'}\nTag: {tag}\n"
    ).encode()
    record = "".join(f"{path},{_record_hash(data)},{len(data)}\n" for path, data in content.items())
    content[f"{dist}/RECORD"] = (record + f"{dist}/RECORD,,\n").encode()
    path = directory / f"{name}-{version}-{tag}.whl"
    with zipfile.ZipFile(path, "w") as zf:
        for member, data in sorted(content.items()):
            info = zipfile.ZipInfo(member, date_time=(2024, 1, 1, 0, 0, 0))
            zf.writestr(info, data)
    return path


def demo_wheelhouse(directory: Path) -> Path:
    """Write the demo's stand-in wheels into ``directory`` (idempotent) and return it."""
    for name, version, requires in DEMO_WHEELS:
        if not (directory / f"{name}-{version}-{PURE}.whl").exists():
            make_wheel(directory, name, version, requires=requires)
    return directory
