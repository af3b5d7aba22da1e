"""What steps hand to later steps (through ``StepContext.results``).

Kept in one module so producers and consumers agree on one shape: the release step puts a
``ReleaseArtifact``, the extensions step an ``ExtensionSet``, the app step an ``AppBundle``, the
remaster step a ``BuildResult``, the deploy step a ``DeployResult``. All are frozen dataclasses;
``to_data()`` gives the JSON-able form used in ``Result.data`` and the build manifest.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

Layout = Literal["zip", "img.gz"]


def _jsonable(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


class _Data:
    def to_data(self) -> dict[str, Any]:
        """JSON-able dict of the fields (Paths as strings)."""
        return {k: _jsonable(v) for k, v in asdict(self).items()}  # type: ignore[call-overload]


@dataclass(frozen=True)
class ReleaseRef(_Data):
    """One piCore release file as listed on a mirror or in the offline catalog."""

    version: str
    """"15.0.0", "16.0.0", "15.0.0-beta2" …"""
    arch: str
    """Mirror architecture directory: armv6, armv7, armv7l, armhf, aarch64."""
    flavour: str
    """"piCore" or "piCore64"."""
    filename: str
    """File name on the mirror, e.g. "piCore-15.0.0.zip", "piCore64-16.0.0.img.gz"."""
    layout: Layout
    path: str
    """Path below the mirror base, e.g. "15.x/armhf/releases/RPi/piCore-15.0.0.zip"."""
    beta: bool = False
    size: int | None = None
    date: str = ""
    """Modification date from the listing (ISO 8601), "" if unknown."""


@dataclass(frozen=True)
class ReleaseArtifact(_Data):
    """The chosen release, downloaded and verified, with what later steps need from it."""

    ref: ReleaseRef
    url: str
    """Where it was downloaded from."""
    mirror: str
    """Base URL of the mirror that served it."""
    file: Path
    """The verified release file in the cache (the .zip or .img.gz as published)."""
    sha256: str
    """sha256 of ``file``."""
    image_name: str
    """Name of the raw image inside (piCore-15.0.0.img)."""
    image_md5: str
    """md5 of the raw image, verified against the published <img>.md5.txt ("" if none)."""
    config_txt: str
    """Text of the boot partition's config.txt."""
    kernels: Mapping[str, str]
    """Board ("pi3") → kernel release ("6.6.47-piCore-v7") read from config.txt."""
    demo: bool = False
    """Built from the demo mirror: will not boot real hardware."""
    glibc: str = ""
    """glibc version of the release's own rootfs ("2.36", from its libc.so.6); "" unknown."""
    libraries: tuple[str, ...] = ()
    """Library file names the base rootfs provides (lib, usr/lib, usr/local/lib)."""


@dataclass(frozen=True)
class Extension(_Data):
    """One extension of the resolved closure."""

    name: str
    """File name, e.g. "openssl.tcz" or "w1-6.6.47-piCore-v7.tcz" (KERNEL expanded)."""
    deps: tuple[str, ...]
    """Direct dependencies, KERNEL expanded, in .dep order."""
    why: tuple[str, ...]
    """Chain that pulled it in, from a requested name to this one (just itself if requested)."""
    size: int | None = None
    """Download size in bytes (sizelist), None if unknown."""
    md5: str | None = None
    """Published md5 (.md5.txt); None in a dry run before it was fetched."""
    kernel: str | None = None
    """Kernel release a module extension was expanded for, else None."""
    dep_text: str = ""
    """The .dep file as published (KERNEL kept), staged next to the .tcz for piCore's loader."""


@dataclass(frozen=True)
class ExtensionSet(_Data):
    """The requested extensions plus their dependency closure, downloaded and verified."""

    requested: tuple[str, ...]
    packages: tuple[Extension, ...]
    """The closure in load order (dependencies before dependants), deterministic."""
    files: Mapping[str, Path] = field(default_factory=dict)
    """Name → verified .tcz file in the cache (empty in a dry run)."""
    mirror: str = ""
    lists: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Name → the files it installs (its ``.tcz.list``; absent when the mirror has none)."""

    def by_name(self, name: str) -> Extension | None:
        """The package called ``name`` in the closure, if any."""
        return next((p for p in self.packages if p.name == name), None)


@dataclass(frozen=True)
class OverlayFile(_Data):
    """One file (or directory, when ``data`` and ``source`` are None) to put in the overlay."""

    path: str
    """Path inside the Pi's filesystem without a leading slash, e.g. "opt/firecore/app/main.py"."""
    mode: int
    """Permission bits (0o755 …); the file type comes from source/data."""
    uid: int = 0
    gid: int = 0
    source: Path | None = None
    """File on the build host whose bytes go in (None: use ``data``)."""
    data: bytes | None = None
    is_dir: bool = False


@dataclass(frozen=True)
class AppBundle(_Data):
    """The app, its Pi wheels and its boot integration, ready for the overlay."""

    files: tuple[OverlayFile, ...]
    """Everything the app adds to the overlay (app tree, site-packages, boot script, config)."""
    bootlocal: str
    """Lines appended to the base rootfs's /opt/bootlocal.sh (which keeps its own lines)."""
    python: str
    """Python version on the Pi, e.g. "3.11" (from the pythonX.Y extension)."""
    platform: str
    """pip platform tag used for the wheels, e.g. "manylinux2014_armv7l"."""
    wheels: Mapping[str, str] = field(default_factory=dict)
    """Installed wheel file name → sha256 (for the manifest)."""
    digest: str = ""
    """sha256 over every file's path, mode and bytes: changes iff the app's overlay part does."""


@dataclass(frozen=True)
class BuildResult(_Data):
    """The boot tree written to ``build.output``."""

    output: Path
    manifest: Path
    build_id: str
    """Short id of the inputs; the app reports it on /health, status compares it."""
    files: int
    bytes: int
    changed: bool
    """False when an identical tree was already in place (nothing rewritten)."""
    profiles: tuple[str, ...] = ()
    demo: bool = False
    sd_image: Path | None = None
    """The SD-card image beside the tree (``build.sd_image``), else None."""


@dataclass(frozen=True)
class NetworkResult(_Data):
    """The dnsmasq config the network step installed and the server it started."""

    interface: str
    addresses: tuple[str, ...]
    """The interface's IPv4 addresses (CIDR) the proxy ranges were derived from."""
    conf: Path
    """The installed dnsmasq config (network.dnsmasq_conf)."""
    backup: Path | None
    """Backup of the config it replaced (None: nothing replaced or unchanged)."""
    changed: bool
    service: str
    """network.dnsmasq_service: systemd, process or none."""
    pid: int | None
    """PID of the serving dnsmasq (None in mode none or a dry run)."""
    tftp_root: Path
    """The TFTP root; dnsmasq serves ``tftp_root / "current"``."""


@dataclass(frozen=True)
class DeployResult(_Data):
    """What deploy published in the TFTP root."""

    tftp_root: Path
    release: str
    """Name of the release directory now live."""
    previous: str | None
    devices: Mapping[str, str] = field(default_factory=dict)
    """Serial → profile of the per-device trees created."""
    host: str = ""
    """"" for this host; ``ssh://user@host`` when the TFTP root is deploy.target's."""

    @property
    def where(self) -> str:
        """The TFTP root as a user reads it: a path, or ``ssh://user@host/path``."""
        return f"{self.host}{self.tftp_root}"
