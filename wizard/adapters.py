"""Adapters from the domain's APIs to the view records the screens show.

Each function calls the same domain functions the steps and the sub-commands call, and turns
what they return into records from ``wizard.views``; none decides anything of its own. They run
in worker threads only. The domain modules are imported inside the functions, so the wizard's
first frame never waits for httpx, psutil or zeroconf; the imports are still ordinary ones,
checked by mypy and by the import contracts. Progress that the library functions yield is not
shown here (``steps.events.drive`` runs them to their result).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING

from steps.answers import Answers, resolve_path
from steps.base import Step, StepContext
from steps.errors import FirecoreError
from steps.events import drive
from steps.paths import cache_dir
from wizard.views import (
    CardProblem,
    CardTarget,
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

if TYPE_CHECKING:
    from steps.fetch.download import Downloader
    from steps.picore.tcz import TczIndex


def _downloader(answers: Answers, cancel: threading.Event, step: str) -> Downloader:
    from steps.fetch.download import Downloader

    return Downloader(answers.release.mirrors, cache_dir(answers), cancel=cancel, step=step)


def mirror_listing(answers: Answers, cancel: threading.Event) -> ReleaseListing:
    """Every release on the first mirror that answers, else the offline catalog."""
    from steps.fetch.catalog import browse_releases

    with _downloader(answers, cancel, "release") as dl:
        found = drive(browse_releases(dl))
    problems = dict(p.split(": ", 1) for p in found.problems if ": " in p)
    from steps.textsafe import redact_url

    states = []
    for given in answers.release.mirrors:
        url = redact_url(given if given.endswith("/") else given + "/")  # shown: no password
        if url == found.mirror:
            states.append(MirrorState(url, True, f"answered: {len(found.refs)} release files"))
        elif url in problems:
            states.append(MirrorState(url, False, problems[url]))
        else:
            states.append(MirrorState(url, False, "not needed" if found.mirror else "no answer"))
    return ReleaseListing(tuple(found.refs), tuple(states), offline=found.offline)


_INDEX_LOCK = threading.Lock()
_INDEXES: dict[tuple[tuple[str, ...], str], TczIndex] = {}


def _index(answers: Answers, cancel: threading.Event) -> TczIndex:
    """The release's TCZ index (cached per mirrors + repo for this session)."""
    from steps.picore.tcz import load_index, repo_path
    from steps.textsafe import redact_url as redact

    repo = repo_path(answers.release.version, answers.release.arch)
    key = (tuple(answers.release.mirrors), repo)
    with _INDEX_LOCK:
        if key in _INDEXES:
            return _INDEXES[key]
    with _downloader(answers, cancel, "extensions") as dl:
        index = drive(load_index(dl, repo))
    if not index.names:
        raise FirecoreError(
            f"no extension index at {repo} on {', '.join(map(redact, answers.release.mirrors))}",
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
    from steps.fetch.catalog import find

    entry = find(answers.release.version, answers.release.arch)
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
    from steps.extensions import check_names, resolve_closure
    from steps.picore.tcz import repo_path

    index = _index(answers, cancel)
    repo = repo_path(answers.release.version, answers.release.arch)
    requested = list(answers.extensions.names)
    kernels, note = _kernels(answers)
    check_names(requested, kernels, index)
    with _downloader(answers, cancel, "extensions") as dl:
        closure = drive(resolve_closure(dl, repo, requested, kernels, index))
    mode = answers.extensions.mode
    ram_note = "RAM: the .tcz sizes" if mode == "builtin" else "RAM: unpacked estimate"
    return Closure(
        closure.packages, closure.download_bytes, closure.ram_bytes(mode), f"{note}; {ram_note}"
    )


def app_checks(answers: Answers, cancel: threading.Event) -> list[Check]:
    """The app step's own checks: entry point and files, Python for the Pi, wheels for it."""
    from steps.app import describe_entry, pip_requirements, read_app
    from steps.artifacts import ExtensionSet
    from steps.picore.wheels import install, python_version, target_for

    checks: list[Check] = []

    def failed(name: str, exc: FirecoreError) -> list[Check]:
        return [*checks, Check(name, False, exc.message, exc.fix)]

    try:
        app = read_app(answers)
    except FirecoreError as exc:
        return failed("entry point", exc)
    checks.append(Check("entry point", True, describe_entry(app.entry)))
    try:
        python = python_version(ExtensionSet(tuple(answers.extensions.names), (), {}, ""))
        # a preview: the build takes the release's own glibc (its libc.so.6); here manylinux2014
        target = target_for(answers.release.arch, python, boards=answers.release.boards)
        wanted = pip_requirements(answers, app)
    except FirecoreError as exc:
        return failed("python", exc)
    checks.append(Check("python", True, f"CPython {python} on {target.platform}"))
    house = resolve_path(answers.app.wheelhouse) if answers.app.wheelhouse else None
    ctx = StepContext(answers=answers, cancel=cancel)
    try:
        got = drive(install("app", ctx, wanted, target, cache_dir(answers), house))
    except FirecoreError as exc:
        return failed("wheels", exc)
    source = "wheelhouse" if house else "PyPI"
    checks.append(Check("wheels", True, f"{len(got.wheels)} wheels for the Pi from {source}"))
    return checks


def interfaces(answers: Answers) -> list[InterfaceRow]:
    """Every interface, best first, with the network step's own advice."""
    from steps.host.netif import assess_all, read_snapshot, recommend

    snapshot = read_snapshot()
    best = recommend(snapshot)
    rows = []
    for assessment in assess_all(snapshot):
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
    from steps.host.dnsmasq import read_installed, render_dnsmasq_conf
    from steps.host.netif import read_snapshot
    from steps.network import chosen_interface

    iface = chosen_interface(answers, read_snapshot())
    text = render_dnsmasq_conf(answers, iface)
    return DnsmasqPreview(answers.network.dnsmasq_conf, text, read_installed(answers))


def router_preview(answers: Answers) -> DnsmasqPreview:
    """Router mode: the DHCP server's config now (read over ssh) and as router mode leaves it."""
    from steps.host.routerapply import preview

    pv = preview(answers)
    return DnsmasqPreview(pv.where, pv.after, pv.before or None)


def preflight(answers: Answers, cancel: threading.Event) -> list[Finding]:
    """The network step's preflight for the chosen interface (no changes made)."""
    from steps import network

    found = network.preflight(answers, cancel=cancel)
    return [Finding(f.severity, f.message, f.fix, f.code) for f in found]


def tftp_state(answers: Answers) -> TftpState:
    """Release directories in the TFTP root (newest first) and which one is live."""
    from steps.host.remotedeploy import RemoteDeploy
    from steps.host.sshrun import ssh_for
    from steps.host.tftproot import list_releases, tftp_root

    ssh = ssh_for(answers)
    where = str(ssh.target) if ssh else str(tftp_root(answers))
    releases = RemoteDeploy(ssh).releases() if ssh else list_releases(tftp_root(answers))
    rows = [TftpRelease(r.id, r.current, r.build_id, None, r.demo) for r in reversed(releases)]
    return TftpState(where, tuple(rows), "" if rows else "nothing deployed yet")


def rollback(answers: Answers) -> str:
    """``steps.deploy.rollback``; returns the release now live."""
    from steps import deploy

    return str(deploy.rollback(answers).release)


def status_step(answers: Answers, wait: float) -> Step:
    """``steps.status.StatusStep`` listening ``wait`` seconds."""
    from steps.status import StatusStep

    return StatusStep(wait=wait)


def selftest_step(answers: Answers, model: str, serial: str, *, rehearse: bool) -> Step:
    """``steps.selftest.SelftestStep`` for the chosen interface (or rehearsal), model, serial."""
    from steps.selftest import SelftestStep

    return SelftestStep(
        interface=answers.network.interface,
        model=model,
        serial=serial or None,
        rehearse=rehearse,
    )


def prepare_step(model: str) -> Step:
    """``steps.prepare.PrepareStep`` for one model."""
    from steps.prepare import PrepareStep

    return PrepareStep(model)


def write_image_step(image: str, device: str, *, force: bool) -> Step:
    """``steps.write_image.WriteImageStep`` (it checks the device again before writing)."""
    from steps.write_image import WriteImageStep

    return WriteImageStep(Path(image), Path(device), force=force)


def card_target(image: str, device: str) -> CardTarget:
    """What ``device`` is and every reason not to write ``image`` to it."""
    from steps.host.blockdev import inspect, refusals

    target = inspect(Path(device))
    try:
        size = Path(image).stat().st_size
    except OSError:
        size = 0
    problems = tuple(CardProblem(r.reason, r.fix, r.forceable) for r in refusals(target, size))
    return CardTarget(device, target.describe(), problems)


def card_devices() -> list[CardTarget]:
    """The removable disks of this machine (what the write dialog offers)."""
    from steps.host.blockdev import candidates

    return [CardTarget(str(t.path), t.describe()) for t in candidates()]
