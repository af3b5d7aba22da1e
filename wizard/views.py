"""View records: what the screens show, as small frozen dataclasses (no domain types leak in).

``wizard.adapters`` fills them from the domain; tests build them by hand (``tests/wizard/fakes``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from steps.artifacts import Extension, ReleaseRef

Severity = Literal["error", "warning", "info", "ok"]


@dataclass(frozen=True)
class HostCheck:
    """One line of the Welcome screen's host check."""

    item: str
    ok: bool
    detail: str
    fix: str = ""
    needed_for: str = ""


@dataclass(frozen=True)
class MirrorState:
    """Whether one mirror answered the release listing."""

    url: str
    ok: bool
    note: str = ""


@dataclass(frozen=True)
class ReleaseListing:
    """Releases found on the mirrors (or in the offline catalog)."""

    releases: tuple[ReleaseRef, ...]
    mirrors: tuple[MirrorState, ...] = ()
    offline: bool = False
    """No mirror answered: the releases come from the built-in catalog."""
    note: str = ""


@dataclass(frozen=True)
class ExtensionInfo:
    """One extension of the release's TCZ index."""

    name: str
    size: int | None
    description: str = ""


@dataclass(frozen=True)
class Closure:
    """The dependency closure of the selected extensions."""

    packages: tuple[Extension, ...]
    download_bytes: int
    ram_bytes: int
    note: str = ""
    """How the RAM figure is estimated."""


@dataclass(frozen=True)
class Check:
    """One inline check (app entry point, wheels for the Pi …)."""

    name: str
    ok: bool
    message: str
    fix: str = ""


@dataclass(frozen=True)
class InterfaceRow:
    """One network interface for the Network screen."""

    name: str
    addresses: tuple[str, ...]
    kind: str
    carrier: bool | None
    mac: str = ""
    warnings: tuple[str, ...] = ()
    recommended: bool = False


@dataclass(frozen=True)
class Finding:
    """One preflight finding with its fix."""

    severity: Severity
    message: str
    fix: str = ""
    code: str = ""


@dataclass(frozen=True)
class DnsmasqPreview:
    """The config the network step would install, and what is installed now."""

    path: str
    new: str
    installed: str | None
    """None: nothing installed at that path yet."""


@dataclass(frozen=True)
class TftpRelease:
    """One release directory in the TFTP root."""

    name: str
    current: bool
    build_id: str = ""
    files: int | None = None
    demo: bool = False


@dataclass(frozen=True)
class TftpState:
    """What the Deploy screen shows about the TFTP root."""

    root: str
    releases: tuple[TftpRelease, ...] = ()
    note: str = ""


@dataclass(frozen=True)
class CardProblem:
    """Why writing to a device is unsafe (``forceable``: Force may override it)."""

    reason: str
    fix: str
    forceable: bool = False


@dataclass(frozen=True)
class CardTarget:
    """A device (or file) a card image could be written to, as the write dialog shows it."""

    path: str
    description: str
    """Path, model, size and how it is attached, e.g. "/dev/sdb (SanDisk Ultra, 31.9 GB, USB)"."""
    problems: tuple[CardProblem, ...] = ()

    @property
    def blocked(self) -> bool:
        """A problem Force cannot override."""
        return any(not p.forceable for p in self.problems)


@dataclass(frozen=True)
class StageLine:
    """One self-test stage as shown on the Deploy screen."""

    stage: str
    ok: bool
    message: str = ""
    code: str = ""


@dataclass(frozen=True)
class PiSeen:
    """One Pi found by the status scan."""

    serial: str
    hostname: str
    address: str
    build_id: str
    healthy: bool
    current: bool | None
    """True: runs the deployed build; False: an older one; None: nothing deployed to compare."""
    uptime: str = ""
    model: str = ""
    netboot: str = ""
    """Network boot as the Pi reports it ("on (OTP 17:3020000a …)", "OFF (…)", "?")."""
