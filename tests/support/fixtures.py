"""Pytest plugin: the fake piCore mirror and its server, and the namespace LAN (conftest.py).

``fake_mirror`` is built once per test session by ``steps.demo.factory.cached_mirror`` in a
directory shared by every xdist worker (a file lock makes the first worker build it and the
others wait), so it costs a few seconds once. Tests must treat its files as read-only: copy a
file before changing it.

``mirror_server`` is a fresh ``MirrorServer`` on 127.0.0.1 for each test, so fault rules and
request counters never leak between tests; ``mirror_server.url`` is the mirror base URL.

``lab`` is a fresh virtual LAN of network namespaces for one test (root only: it fails in CI
and skips elsewhere without root); ``lan`` adds our server, the home router serving DHCP and a
Pi to it (``tests.support.netboot_lab.boot_lan``, which module-scoped fixtures call with a
``Lab`` of their own).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from steps.demo.factory import Mirror, cached_mirror
from steps.demo.server import MirrorServer
from tests.support.lab import Lab, needs_root
from tests.support.netboot_lab import BootLan, boot_lan


@pytest.fixture(scope="session")
def fake_mirror(tmp_path_factory: pytest.TempPathFactory) -> Mirror:
    """The default demo mirror (12.0 armv7 zip, 15.0.0 armhf zip, 16.0.0 aarch64 img.gz, a beta)."""
    shared = tmp_path_factory.getbasetemp().parent / "firecore-fake-mirror"
    return cached_mirror(shared)


@pytest.fixture
def mirror_server(fake_mirror: Mirror) -> Iterator[MirrorServer]:
    """A running server for ``fake_mirror``; stopped after the test."""
    with MirrorServer(fake_mirror.root) as server:
        yield server


@pytest.fixture
def lab() -> Iterator[Lab]:
    """A virtual LAN (``tests.support.lab.Lab``), removed after the test."""
    needs_root()
    with Lab() as lab:
        yield lab


@pytest.fixture
def lan(lab: Lab, tmp_path: Path) -> BootLan:
    """Our server, the home router serving DHCP, and a Pi without an address."""
    return boot_lan(lab, tmp_path)
