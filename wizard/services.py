"""The screens' window onto the domain: lookups and step factories, imported lazily.

Screens ask ``Services`` for what they show (host check, releases on the mirrors, the TCZ index,
the dependency closure, app checks, interfaces, preflight findings, the dnsmasq preview, releases
in the TFTP root, Pis on the LAN) and for the steps they run. Every call happens in a worker
thread (``StepRunner.load``/``start``) and returns small view records defined here, so screens
never depend on a domain module's internals and tests can hand the app a fake ``Services`` with
fixed data. Domain modules are imported inside the methods: the first frame never waits for
httpx, psutil or zeroconf.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from steps.answers import Answers, resolve_path
from steps.artifacts import Extension, ReleaseRef
from steps.base import Step
from steps.errors import FirecoreError

Severity = Literal["error", "warning", "info", "ok"]


# ---------------------------------------------------------------------------- view records
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


#: Pi RAM sizes for the extensions screen's "fits in RAM" line (smallest board selected wins).
BOARD_RAM: dict[str, int] = {
    "pi0": 512 << 20,
    "pi02": 512 << 20,
    "pi1": 256 << 20,
    "pi2": 1 << 30,
    "pi3": 1 << 30,
    "pi4": 1 << 30,
    "pi5": 2 << 30,
}

#: Which boards a release architecture serves (piCore's image layout, reference/picore.md §2).
ARCH_BOARDS: dict[str, tuple[str, ...]] = {
    "armv6": ("pi0", "pi1"),
    "armv7": ("pi0", "pi1", "pi2", "pi3", "pi4"),
    "armv7l": ("pi4",),
    "armhf": ("pi0", "pi02", "pi1", "pi2", "pi3", "pi4", "pi5"),
    "aarch64": ("pi02", "pi3", "pi4", "pi5"),
}

#: Programs the job needs: (program, what for).
HOST_TOOLS: tuple[tuple[str, str], ...] = (
    ("mcopy", "build: reading the image's FAT boot partition"),
    ("sfdisk", "build: reading the image's partition table"),
    ("unsquashfs", "build: extracted extension mode"),
    ("dnsmasq", "network: proxy DHCP + TFTP"),
    ("ip", "network: interfaces"),
)


def _module(name: str, what: str) -> Any:
    """Import a domain module, or say plainly that this install lacks it."""
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name != name:
            raise
        raise FirecoreError(
            f"{what} is not available: module {name} is missing from this install",
            title="Not available",
            fix="update firecore-wizard (`make setup`)",
        ) from None


# ---------------------------------------------------------------------------- the gateway
@dataclass
class Services:
    """Real lookups and steps; tests replace methods or pass a subclass with fixed data."""

    fixed_steps: dict[str, Step] = field(default_factory=dict)
    """Steps to run instead of the plan's, by name (``make_app(steps=...)``; tests)."""

    # ---- welcome
    def host_checks(self) -> list[HostCheck]:
        """Tools, privileges and Python packaging the job needs, with the fix for each."""
        from steps.proc import PACKAGES, which

        checks: list[HostCheck] = []
        for program, needed_for in HOST_TOOLS:
            path = which(program) or _sbin(program)
            package = PACKAGES.get(program, program)
            checks.append(
                HostCheck(
                    program,
                    path is not None,
                    str(path) if path else "not installed",
                    "" if path else f"apt-get install {package}",
                    needed_for,
                )
            )
        root = os.geteuid() == 0
        checks.append(
            HostCheck(
                "privileges",
                root,
                "root" if root else f"uid {os.geteuid()}",
                "" if root else "run the Network/Deploy/self-test parts with sudo",
                "network: install dnsmasq config, start dnsmasq, self-test raw sockets",
            )
        )
        pip = importlib.util.find_spec("pip") is not None
        checks.append(
            HostCheck(
                "pip",
                pip,
                "available" if pip else "missing",
                "" if pip else "python3 -m ensurepip",
                "build: wheels for the Pi",
            )
        )
        return checks

    # ---- release / extensions / app
    def releases(self, answers: Answers, cancel: threading.Event) -> ReleaseListing:
        """Every release on the first mirror that answers, or the offline catalog."""
        mirror = _module("steps.mirror", "release browsing")
        return mirror_listing(mirror, answers, cancel)

    def extension_index(self, answers: Answers, cancel: threading.Event) -> list[ExtensionInfo]:
        """The TCZ index of the chosen release/arch (names, sizes, descriptions)."""
        return tcz_index(answers, cancel)

    def closure(self, answers: Answers, cancel: threading.Event) -> Closure:
        """The dependency closure of ``extensions.names`` for the chosen boards."""
        return tcz_closure(answers, cancel)

    def app_checks(self, answers: Answers, cancel: threading.Event) -> list[Check]:
        """Entry point found, wheels available for the Pi, secrets file usable."""
        return app_checks(answers, cancel)

    # ---- network
    def interfaces(self, answers: Answers) -> list[InterfaceRow]:
        """The host's interfaces with kind, carrier and warnings."""
        return interfaces(answers)

    def preflight(self, answers: Answers, cancel: threading.Event) -> list[Finding]:
        """Conflicts on the chosen interface (other DHCP servers, ports, firewall)."""
        return preflight(answers, cancel)

    def dnsmasq_preview(self, answers: Answers) -> DnsmasqPreview:
        """The dnsmasq drop-in the network step would install, and the installed one."""
        return dnsmasq_preview(answers)

    # ---- deploy / status
    def tftp_state(self, answers: Answers) -> TftpState:
        """Release directories in the TFTP root and which one is live."""
        return tftp_state(answers)

    def rollback(self, answers: Answers) -> str:
        """Switch the TFTP root back to the previous release; returns a summary."""
        deploy = _module("steps.deploy", "rollback")
        result = deploy.rollback(answers)
        return str(getattr(result, "release", result))

    def status_step(self, answers: Answers, wait: float) -> Step:
        """The status step (mDNS browse + health) as the status command runs it."""
        if "status" in self.fixed_steps:
            return self.fixed_steps["status"]
        status = _module("steps.status", "the status scan")
        step: Step = status.StatusStep(wait=wait)
        return step

    # ---- steps
    def steps(self, names: Sequence[str], answers: Answers) -> list[Step]:
        """The plan's steps called ``names``, in plan order (same classes as headless)."""
        if self.fixed_steps:
            return [self.fixed_steps[n] for n in names if n in self.fixed_steps]
        from steps.plan import build_plan

        plan = build_plan(answers, only=list(names))
        found = [s.name for s in plan]
        lacking = [n for n in names if n not in found]
        if lacking:
            raise FirecoreError(
                f"step(s) {', '.join(lacking)} are not in this install's plan",
                title="Not available",
                fix="update firecore-wizard (`make setup`)",
            )
        return plan

    def selftest(self, answers: Answers, model: str, serial: str) -> Step:
        """The virtual-Pi self-test as a step."""
        if "selftest" in self.fixed_steps:
            return self.fixed_steps["selftest"]
        selftest = _module("steps.selftest", "the self-test")
        return selftest_step(selftest, answers, model, serial)


def _sbin(program: str) -> Path | None:
    for base in ("/usr/sbin", "/sbin"):
        candidate = Path(base) / program
        if candidate.exists():
            return candidate
    return None


# The adapters below translate each domain module's API into the view records. Each imports its
# module lazily through ``_module``; generators that return a value are driven by ``_drive``.


def _drive(gen: Any) -> Any:
    """Run a domain generator to its end (its events are not shown) and return its value."""
    while True:
        try:
            next(gen)
        except StopIteration as stop:
            return stop.value


def _downloader(answers: Answers, cancel: threading.Event, step: str) -> Any:
    download = _module("steps.download", "downloads")
    from steps.paths import cache_dir

    return download.Downloader(
        answers.release.mirrors, cache_dir(answers), cancel=cancel, step=step
    )


def mirror_listing(mirror: Any, answers: Answers, cancel: threading.Event) -> ReleaseListing:
    """Every release on the first mirror that answers (``scan_releases``), else the catalog."""
    catalog = _module("steps.catalog", "the offline catalog")
    with _downloader(answers, cancel, "release") as dl:
        found = _drive(mirror.scan_releases(dl))
    if found is None:
        found = catalog.offline_catalogue()
    problems = {p.split(": ", 1)[0]: p.split(": ", 1)[-1] for p in getattr(found, "problems", [])}
    states = []
    for url in answers.release.mirrors:
        if url == found.mirror:
            states.append(MirrorState(url, True, f"answered: {len(found.refs)} release files"))
        elif url in problems:
            states.append(MirrorState(url, False, problems[url]))
        else:
            states.append(MirrorState(url, False, "not needed" if found.mirror else "no answer"))
    return ReleaseListing(tuple(found.refs), tuple(states), offline=bool(found.offline))


_INDEX_LOCK = threading.Lock()
_INDEXES: dict[tuple[tuple[str, ...], str], Any] = {}


def _index(answers: Answers, cancel: threading.Event) -> Any:
    """The release's TCZ index (cached per mirrors + repo for this session)."""
    tcz = _module("steps.tcz", "the extension index")
    repo = tcz.repo_path(answers.release.version, answers.release.arch)
    key = (tuple(answers.release.mirrors), repo)
    with _INDEX_LOCK:
        if key in _INDEXES:
            return _INDEXES[key]
    with _downloader(answers, cancel, "extensions") as dl:
        index = _drive(tcz.load_index(dl, repo))
    if not index.names:
        raise FirecoreError(
            f"no extension index at {repo} on {', '.join(answers.release.mirrors)}",
            title="No extension index",
            fix="check release.version/arch and the mirrors (Release screen)",
        )
    with _INDEX_LOCK:
        _INDEXES[key] = index
    return index


def tcz_index(answers: Answers, cancel: threading.Event) -> list[ExtensionInfo]:
    """Names, sizes and descriptions of the release's extensions."""
    index = _index(answers, cancel)
    return [ExtensionInfo(n, index.sizes.get(n), index.tags.get(n, "")) for n in index.names]


def _kernels(answers: Answers) -> tuple[list[str], str]:
    """Kernel releases of the chosen boards as the catalog knows them (for KERNEL deps)."""
    catalog = _module("steps.catalog", "the offline catalog")
    entry = catalog.find(answers.release.version, answers.release.arch)
    known = dict(entry.kernels) if entry is not None else {}
    kernels = list(dict.fromkeys(known[b] for b in answers.release.boards if b in known))
    if kernels:
        return (
            kernels,
            f"kernel modules shown for {', '.join(kernels)} (the build reads config.txt)",
        )
    return [], "kernel-module dependencies (KERNEL) are resolved by the build"


def tcz_closure(answers: Answers, cancel: threading.Event) -> Closure:
    """The closure of ``extensions.names`` exactly as the extensions step resolves it."""
    deps = _module("steps.deps", "dependency resolution")
    extensions = _module("steps.extensions", "the extensions step")
    index = _index(answers, cancel)
    tcz = _module("steps.tcz", "the extension index")
    repo = tcz.repo_path(answers.release.version, answers.release.arch)
    requested = list(answers.extensions.names)
    kernels, note = _kernels(answers)
    extensions.check_names(requested, kernels, index)
    texts: dict[str, str | None] = {}
    with _downloader(answers, cancel, "extensions") as dl:
        while todo := deps.needed(requested, texts, kernels, index):
            got = _drive(
                dl.meta_many([repo + n + ".dep" for n in todo], missing_ok=True, phase="deps")
            )
            for name in todo:
                data = got.get(repo + name + ".dep")
                texts[name] = data.decode("utf-8", "replace") if data is not None else None
    closure = deps.resolve(requested, texts, kernels, index.sizes, index)
    mode = answers.extensions.mode
    ram_note = "RAM: the .tcz sizes" if mode == "builtin" else "RAM: unpacked estimate"
    return Closure(
        closure.packages, closure.download_bytes, closure.ram_bytes(mode), f"{note}; {ram_note}"
    )


def app_checks(answers: Answers, cancel: threading.Event) -> list[Check]:
    """The app step's own checks: entry point, tree, requirements, wheels for the Pi."""
    app = _module("steps.app", "app checks")
    wheels = _module("steps.wheels", "wheels")
    from steps.artifacts import ExtensionSet
    from steps.base import StepContext

    checks: list[Check] = []
    requirements: list[str] = []

    def failed(name: str, exc: FirecoreError) -> list[Check]:
        return [*checks, Check(name, False, exc.message, exc.fix)]

    if answers.app.path:
        root = resolve_path(answers.app.path)
        if not root.is_dir():
            what = "does not exist" if not root.exists() else "is not a directory"
            return [Check("app directory", False, f"{root} {what}", "check app.path")]
        try:
            entry = app.find_entry(root, answers.app.env)
            app.scan_tree(root, "app.path")
            reqfile = root / "requirements.txt"
            if reqfile.is_file():
                requirements = app.read_requirements(reqfile, "app.path")
        except FirecoreError as exc:
            return failed("entry point", exc)
        checks.append(Check("entry point", True, f"{entry.mode} {entry.module or entry.file}"))
    else:
        checks.append(Check("entry point", True, "the bundled FastAPI app (firecore_app)"))
    try:
        python = wheels.python_version(ExtensionSet(tuple(answers.extensions.names), (), {}, ""))
        target = wheels.target_for(answers.release.arch, answers.release.version, python)
        base = [*app.SERVICE_REQUIREMENTS, *app.ANNOUNCE_REQUIREMENTS]
        wanted = list(
            dict.fromkeys(
                [
                    *base,
                    *(
                        wheels.check_requirement(p, "app.python_packages")
                        for p in answers.app.python_packages
                    ),
                    *requirements,
                ]
            )
        )
    except FirecoreError as exc:
        return failed("python", exc)
    checks.append(Check("python", True, f"CPython {python} on {target.platform}"))
    house = resolve_path(answers.app.wheelhouse) if answers.app.wheelhouse else None
    from steps.paths import cache_dir

    ctx = StepContext(answers=answers, cancel=cancel)
    try:
        got = _drive(wheels.install("app", ctx, wanted, target, cache_dir(answers), house))
    except FirecoreError as exc:
        return failed("wheels", exc)
    source = "wheelhouse" if house else "PyPI"
    checks.append(Check("wheels", True, f"{len(got.wheels)} wheels for the Pi from {source}"))
    return checks


def _snapshot() -> Any:
    netif = _module("steps.netif", "the interface list")
    return netif, netif.read_snapshot()


def interfaces(answers: Answers) -> list[InterfaceRow]:
    """Every interface, best first, with the network step's own advice."""
    netif, snapshot = _snapshot()
    best = netif.recommend(snapshot)
    rows = []
    for assessment in netif.assess_all(snapshot):
        iface = assessment.interface
        if iface.kind == "loopback":
            continue
        rows.append(
            InterfaceRow(
                iface.name,
                tuple(str(a) for a in iface.addresses),
                iface.kind,
                iface.carrier,
                iface.mac,
                tuple(n.message for n in assessment.notes if n.level != "info"),
                iface.name == best,
            )
        )
    return rows


def dnsmasq_preview(answers: Answers) -> DnsmasqPreview:
    """``render_dnsmasq_conf`` for the chosen interface, and the installed file."""
    dnsmasq = _module("steps.dnsmasq", "the dnsmasq preview")
    network = _module("steps.network", "the network step")
    _, snapshot = _snapshot()
    iface = network.chosen_interface(answers, snapshot)
    text = dnsmasq.render_dnsmasq_conf(answers, iface)
    return DnsmasqPreview(answers.network.dnsmasq_conf, text, dnsmasq.read_installed(answers))


def preflight(answers: Answers, cancel: threading.Event) -> list[Finding]:
    """The network step's preflight for the chosen interface (no changes made)."""
    checks = _module("steps.preflight", "the preflight checks")
    network = _module("steps.network", "the network step")
    dnsmasq = _module("steps.dnsmasq", "the dnsmasq preview")
    _, snapshot = _snapshot()
    try:
        iface = network.chosen_interface(answers, snapshot)
        text = dnsmasq.render_dnsmasq_conf(answers, iface)
    except FirecoreError as exc:
        return [Finding("error", exc.message, exc.fix, "config")]
    found = checks.run_preflight(
        answers,
        snapshot,
        text,
        own_pids=network.own_pids(answers),
        cancel=cancel,
        probe=os.geteuid() == 0,
    )
    return [Finding(f.severity, f.message, f.fix, f.code) for f in found]


def tftp_state(answers: Answers) -> TftpState:
    """Release directories in the TFTP root (newest first) and which one is live."""
    deploy = _module("steps.deploy", "deploy")
    root = deploy.tftp_root(answers)
    rows = [
        TftpRelease(r.id, r.current, r.build_id, None, r.demo)
        for r in reversed(deploy.list_releases(root))
    ]
    return TftpState(str(root), tuple(rows), "" if rows else "nothing deployed yet")


def selftest_step(module: Any, answers: Answers, model: str, serial: str) -> Step:
    """``steps.selftest.SelftestStep`` for the chosen interface, model and serial."""
    step: Step = module.SelftestStep(
        interface=answers.network.interface, model=model, serial=serial or None
    )
    return step
