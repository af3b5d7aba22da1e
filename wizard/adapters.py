"""Adapters from the domain's APIs to the view records the screens show.

Each function imports its domain module lazily (``_module``: a clear "not available" error if an
install lacks it) and returns records from ``wizard.services``. They run in worker threads only.
Generators that return a value (the domain's ``yield from`` style) are driven by ``_drive``.
"""

from __future__ import annotations

import importlib
import os
import threading
from typing import Any

from steps.answers import Answers, resolve_path
from steps.base import Step
from steps.errors import FirecoreError
from wizard.views import (
    Check,
    Closure,
    DnsmasqPreview,
    ExtensionInfo,
    Finding,
    InterfaceRow,
    MirrorState,
    ReleaseListing,
    TftpRelease,
    TftpState,
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


def _drive(gen: Any) -> Any:
    """Run a domain generator to its end (its events are not shown) and return its value."""
    while True:
        try:
            next(gen)
        except StopIteration as stop:
            return stop.value


def _downloader(answers: Answers, cancel: threading.Event, step: str) -> Any:
    download = _module("steps.fetch.download", "downloads")
    from steps.paths import cache_dir

    return download.Downloader(
        answers.release.mirrors, cache_dir(answers), cancel=cancel, step=step
    )


def mirror_listing(answers: Answers, cancel: threading.Event) -> ReleaseListing:
    """Every release on the first mirror that answers (``scan_releases``), else the catalog."""
    mirror = _module("steps.fetch.mirror", "release browsing")
    catalog = _module("steps.fetch.catalog", "the offline catalog")
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
    tcz = _module("steps.picore.tcz", "the extension index")
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
    catalog = _module("steps.fetch.catalog", "the offline catalog")
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
    deps = _module("steps.picore.deps", "dependency resolution")
    extensions = _module("steps.extensions", "the extensions step")
    index = _index(answers, cancel)
    tcz = _module("steps.picore.tcz", "the extension index")
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
    wheels = _module("steps.picore.wheels", "wheels")
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
    netif = _module("steps.host.netif", "the interface list")
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
    dnsmasq = _module("steps.host.dnsmasq", "the dnsmasq preview")
    network = _module("steps.network", "the network step")
    _, snapshot = _snapshot()
    iface = network.chosen_interface(answers, snapshot)
    text = dnsmasq.render_dnsmasq_conf(answers, iface)
    return DnsmasqPreview(answers.network.dnsmasq_conf, text, dnsmasq.read_installed(answers))


def preflight(answers: Answers, cancel: threading.Event) -> list[Finding]:
    """The network step's preflight for the chosen interface (no changes made)."""
    checks = _module("steps.host.preflight", "the preflight checks")
    network = _module("steps.network", "the network step")
    dnsmasq = _module("steps.host.dnsmasq", "the dnsmasq preview")
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


def rollback(answers: Answers) -> str:
    """``steps.deploy.rollback``; returns the release now live."""
    deploy = _module("steps.deploy", "rollback")
    return str(deploy.rollback(answers).release)


def status_step(answers: Answers, wait: float) -> Step:
    """``steps.status.StatusStep`` listening ``wait`` seconds."""
    status = _module("steps.status", "the status scan")
    step: Step = status.StatusStep(wait=wait)
    return step


def selftest_step(answers: Answers, model: str, serial: str, *, rehearse: bool) -> Step:
    """``steps.selftest.SelftestStep`` for the chosen interface (or rehearsal), model, serial."""
    module = _module("steps.selftest", "the self-test")
    step: Step = module.SelftestStep(
        interface=answers.network.interface,
        model=model,
        serial=serial or None,
        rehearse=rehearse,
    )
    return step
