"""Real (tiny) wheel files for offline tests: pure-Python ones and ones tagged for the Pi.

A wheel is a zip with the package, ``<name>-<version>.dist-info/{METADATA,WHEEL,RECORD}``; pip
accepts these exactly as it accepts wheels from PyPI, so the wheels step runs its real pip
against a local wheelhouse.
"""

from __future__ import annotations

from pathlib import Path

from steps.demo.wheels import PURE, make_wheel

__all__ = ["PURE", "make_wheel", "service_wheels"]

PI_ARMV7_311 = "cp311-cp311-manylinux_2_17_armv7l.manylinux2014_armv7l"
PI_AARCH64_311 = "cp311-cp311-manylinux_2_17_aarch64.manylinux2014_aarch64"
PI_ARMV7_38 = "cp38-cp38-manylinux_2_17_armv7l.manylinux2014_armv7l"
X86_64_311 = "cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64"


def service_wheels(directory: Path) -> None:
    """Stand-ins for what the bundled app needs (fastapi, uvicorn, zeroconf) for 3.11 armv7l."""
    make_wheel(directory, "fastapi", "0.110.0", requires=["starlette"])
    make_wheel(directory, "starlette", "0.36.0")
    make_wheel(directory, "uvicorn", "0.29.0")
    make_wheel(directory, "zeroconf", "0.132.0", PI_ARMV7_311, requires=["ifaddr"])
    make_wheel(directory, "ifaddr", "0.2.0")
