"""Real (tiny) wheel files for offline tests: pure-Python ones and ones tagged for the Pi.

A wheel is a zip with the package, ``<name>-<version>.dist-info/{METADATA,WHEEL,RECORD}``; pip
accepts these exactly as it accepts wheels from PyPI, so the wheels step runs its real pip
against a local wheelhouse.
"""

from __future__ import annotations

import base64
import hashlib
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path

PI_ARMV7_311 = "cp311-cp311-manylinux_2_17_armv7l.manylinux2014_armv7l"
PI_AARCH64_311 = "cp311-cp311-manylinux_2_17_aarch64.manylinux2014_aarch64"
PI_ARMV7_38 = "cp38-cp38-manylinux_2_17_armv7l.manylinux2014_armv7l"
X86_64_311 = "cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64"
PURE = "py3-none-any"


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
        "Wheel-Version: 1.0\nGenerator: firecore-tests\n"
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


def service_wheels(directory: Path) -> None:
    """Stand-ins for what the bundled app needs (fastapi, uvicorn, zeroconf) for 3.11 armv7l."""
    make_wheel(directory, "fastapi", "0.110.0", requires=["starlette"])
    make_wheel(directory, "starlette", "0.36.0")
    make_wheel(directory, "uvicorn", "0.29.0")
    make_wheel(directory, "zeroconf", "0.132.0", PI_ARMV7_311, requires=["ifaddr"])
    make_wheel(directory, "ifaddr", "0.2.0")
