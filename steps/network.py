"""The Network step: interface → preflight → config → diff → ``dnsmasq --test`` → install → serve.

Nothing is installed when preflight finds an error (unless ``network.preflight_strict`` is off)
or when dnsmasq rejects the config. The TFTP root is created if missing, but ``current`` inside it
belongs to the deploy step: until the first deploy switches it, dnsmasq starts anyway
(``tftp-no-fail``) and serves files as soon as ``current`` exists — it opens ``root/current/name``
per request, so every later switch of ``current`` takes effect for the next request.

In a dry run the step still reads (interfaces, firewall, dnsmasq's version), sends the one probe
DISCOVER, and runs ``dnsmasq --test`` on a temporary copy; it writes nothing and yields a
``Planned`` event for each change it would make, after the diff.

Preflight and ``dnsmasq --test`` only read, and depend on the answers and the interface, not on
the build: ``start_early`` (called by the plan's runner before the release step) begins both in
threads, so the probe's seconds of listening overlap the build instead of adding to it, and the
step collects the results in its turn (if the interface and config are still the same; otherwise
it checks again). The probe DISCOVER is sent only when the step will change something — a new or
different config, or a dnsmasq to (re)start. A rerun that installs nothing checks only what it
can read without running a program (the interface, the ports), in its turn and without a
thread, and says so: no DISCOVER onto the LAN, no firewall or dnsmasq probing, no
``dnsmasq --test`` of the file it tested when it installed it (``firecore-wizard dnsmasq
preflight`` runs every check on demand).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field

from steps.answers import Answers, resolve_path
from steps.artifacts import NetworkResult
from steps.base import StepContext
from steps.errors import FirecoreError, NetworkError
from steps.events import Event, LogLine, Planned, Progress, Result, Stream
from steps.fsutil import disk_error
from steps.host.dnsmasq import (
    backup_dir,
    check_conf,
    drift,
    install_conf,
    read_installed,
    render_dnsmasq_conf,
    unified_diff,
)
from steps.host.dnsmasq_service import process_state, restart, systemd_main_pid
from steps.host.netif import Interface, Snapshot, missing_interface, read_snapshot, recommend
from steps.host.preflight import Finding, run_preflight
from steps.host.udpsockets import udp_ports_of
from steps.relay import Background

_PHASES = 7


def own_pids(answers: Answers) -> set[int]:
    """PIDs of the dnsmasq we manage (not conflicts): our process, or the system service."""
    pids: set[int] = set()
    state = process_state(answers)
    if state.ours and state.pid is not None:
        pids.add(state.pid)
    if answers.network.dnsmasq_service == "systemd":
        main = systemd_main_pid()
        if main is not None:
            pids.add(main)
    return pids


def chosen_interface(answers: Answers, snapshot: Snapshot) -> Interface:
    """The snapshot of ``network.interface``.

    Raises:
        NetworkError: no such interface (names the key and the interfaces there are).
    """
    iface = snapshot.get(answers.network.interface)
    if iface is None:
        message, fix = missing_interface(answers.network.interface, snapshot)
        raise NetworkError(message, fix=fix)
    return iface


def preflight(
    answers: Answers,
    *,
    snapshot: Snapshot | None = None,
    conf_text: str | None = None,
    cancel: threading.Event | None = None,
    segment: list[Finding] | None = None,
    programs: bool = True,
) -> list[Finding]:
    """Every preflight check for ``network.interface``, errors first; changes nothing.

    The network step passes the snapshot and the config it is about to install. Without them
    (``dnsmasq preflight``, the Network screen) the snapshot is read and the config rendered
    here, and problems are findings rather than exceptions: a config that cannot be rendered is
    the error ``config``, a missing interface ``interface-missing``. Our own dnsmasq is never
    a conflict (``own_pids``). ``segment`` and ``programs`` as ``run_preflight`` takes them (the
    step's quick checks when it will change nothing).
    """
    if snapshot is None:
        snapshot = read_snapshot()
    found: list[Finding] = []
    if conf_text is None:
        conf_text = ""
        iface = snapshot.get(answers.network.interface)
        if iface is not None:
            try:
                conf_text = render_dnsmasq_conf(answers, iface)
            except FirecoreError as exc:
                found.append(Finding("config", "error", exc.message, exc.fix))
    own = own_pids(answers)
    return found + run_preflight(
        answers,
        snapshot,
        conf_text,
        own_pids=own,
        cancel=cancel,
        segment=segment,
        programs=programs,
    )


def changes_host(answers: Answers, text: str, old: str | None) -> bool:
    """Will the step change this host: install ``text`` over ``old``, or (re)start dnsmasq?"""
    mode = answers.network.dnsmasq_service
    if text != old or mode == "systemd":  # the systemd service is restarted on every apply
        return True
    if mode == "none":
        return False
    state = process_state(answers)
    return not (state.ours and state.pid is not None and {67, 69} <= udp_ports_of(state.pid))


#: dnsmasq's verdict on a config that is already installed unchanged (it was tested then).
TESTED_AT_INSTALL = "unchanged since `dnsmasq --test` accepted it when it was installed"


def _probe_skipped(conf_path: os.PathLike[str]) -> Finding:
    return Finding(
        "probe-skipped",
        "info",
        f"nothing to install ({os.fspath(conf_path)} and dnsmasq are as the last run left them): "
        "the segment, the firewall and dnsmasq were not probed again",
        "`firecore-wizard dnsmasq preflight` runs every check on demand",
    )


def _preflight(
    answers: Answers,
    snapshot: Snapshot,
    text: str,
    old: str | None,
    cancel: threading.Event | None,
) -> list[Finding]:
    """``run_preflight``, every check only when the step will change the host."""
    if changes_host(answers, text, old):
        return preflight(answers, snapshot=snapshot, conf_text=text, cancel=cancel)
    return preflight(
        answers,
        snapshot=snapshot,
        conf_text=text,
        cancel=cancel,
        segment=[_probe_skipped(resolve_path(answers.network.dnsmasq_conf))],
        programs=False,
    )


def _test_conf(answers: Answers, text: str, old: str | None, cancel: threading.Event | None) -> str:
    """``dnsmasq --test`` of ``text`` unless it is the installed config, unchanged."""
    if not changes_host(answers, text, old):
        return TESTED_AT_INSTALL
    return check_conf(text, cancel=cancel)


@dataclass
class EarlyChecks:
    """The step's read-only work for one interface and config, running since the run began."""

    interface: str
    text: str
    old: str | None
    findings: Background[list[Finding]]
    verdict: Background[str]
    stop: threading.Event = field(default_factory=threading.Event)

    @classmethod
    def start(cls, answers: Answers, snapshot: Snapshot, iface: Interface) -> EarlyChecks | None:
        """The checks, begun in two threads; None when the step will change nothing.

        A rerun that installs nothing has only quick checks to make (no DISCOVER, no
        ``dnsmasq --test``): the step makes them in its turn, and no thread is started (on a
        busy machine, starting one waits for a CPU to run it on).
        """
        text = render_dnsmasq_conf(answers, iface)
        old = read_installed(answers)
        if not changes_host(answers, text, old):
            return None
        stop = threading.Event()
        return cls(
            iface.name,
            text,
            old,
            Background(lambda: _preflight(answers, snapshot, text, old, stop), "network-preflight"),
            Background(lambda: _test_conf(answers, text, old, stop), "network-dnsmasq-test"),
            stop,
        )

    def still_for(self, iface: Interface, text: str, old: str | None) -> bool:
        """Were these checks begun for this interface, config and installed config?"""
        return (self.interface, self.text, self.old) == (iface.name, text, old)


def _finding_line(step: str, f: Finding) -> Iterator[LogLine]:
    stream: Stream = "warning" if f.severity in ("error", "warning") else "info"
    label = {"error": "conflict", "warning": "warning", "info": "info"}[f.severity]
    yield LogLine(step, f"[{label}] {f.message}", stream)
    for ev in f.evidence:
        yield LogLine(step, f"    evidence: {ev}", "info")
    if f.fix and f.severity != "info":
        yield LogLine(step, f"    fix: {f.fix}", "info")


class NetworkStep:
    """Write, check, install and start the proxy-DHCP + TFTP dnsmasq for the chosen interface."""

    name = "network"
    title = "Network"

    def start_early(self, ctx: StepContext) -> None:
        """Begin preflight and ``dnsmasq --test`` in threads (see the module docstring)."""
        if ctx.answers.network.mode == "router":
            return  # the router's DHCP server answers the Pis: nothing here to probe
        try:
            snapshot = read_snapshot()
            iface = snapshot.get(ctx.answers.network.interface)
            if iface is None:
                return  # the step says so, in its turn
            early = EarlyChecks.start(ctx.answers, snapshot, iface)
        except FirecoreError:
            return  # likewise
        if early is None:
            return  # nothing to install: the quick checks wait for the step's turn
        ctx.results.put(early)
        ctx.stoppers.append(early.stop.set)

    def run(self, ctx: StepContext) -> Iterator[Event]:
        """See the module docstring for the order; raises NetworkError on the first blocker."""
        if ctx.answers.network.mode == "router":
            yield from self._router(ctx)
            return
        a = ctx.answers
        net = a.network
        step = self.name
        conf_path = resolve_path(net.dnsmasq_conf)
        tftp_root = resolve_path(net.tftp_root)

        yield Progress(step, "network", 0, _PHASES, "steps", "interface")
        snapshot = read_snapshot()
        iface = chosen_interface(a, snapshot)
        addrs = " ".join(str(x) for x in iface.addresses) or "no IPv4 address"
        yield LogLine(step, f"interface {iface.name} ({iface.kind}): {addrs}")
        best = recommend(snapshot)
        if best and best != iface.name:
            yield LogLine(step, f"note: {best} looks like a better choice for the Pis", "info")
        text = render_dnsmasq_conf(a, iface)
        old = read_installed(a)
        moved = drift(old, iface) if old is not None else None
        if moved is not None and moved.changed:
            yield LogLine(
                step,
                f"the interface address changed since the config was written "
                f"({moved.describe()}): regenerating it",
                "warning",
            )
        ctx.check_cancel()

        yield Progress(step, "network", 1, _PHASES, "steps", "preflight")
        early = ctx.results.take(EarlyChecks)  # used once: a later run checks afresh
        if early is not None and not early.still_for(iface, text, old):
            early.stop.set()  # begun for another interface or config: check again
            early = None
        if early is not None:
            findings = early.findings.result(ctx.cancel)
        else:
            findings = _preflight(a, snapshot, text, old, ctx.cancel)
        for f in findings:
            yield from _finding_line(step, f)
        errors = [f for f in findings if f.severity == "error"]
        if errors and net.preflight_strict:
            first = errors[0]
            more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
            raise NetworkError(
                f"preflight: {first.message}{more}; nothing was installed",
                fix=(f"{first.fix} — or " if first.fix else "")
                + "set network.preflight_strict = false to go on anyway",
                details="\n".join(
                    f"{f.code}: {f.message} | {'; '.join(f.evidence)}" for f in errors
                ),
            )
        ctx.check_cancel()

        yield Progress(step, "network", 2, _PHASES, "steps", "diff")
        diff = unified_diff(old, text, conf_path)
        if diff:
            for line in diff:
                yield LogLine(step, line, "stdout")
        else:
            yield LogLine(step, f"{conf_path} is up to date")

        yield Progress(step, "network", 3, _PHASES, "steps", "dnsmasq --test")
        if early is not None:
            verdict = early.verdict.result(ctx.cancel)
        else:
            verdict = _test_conf(a, text, old, ctx.cancel)
        if verdict == TESTED_AT_INSTALL:
            yield LogLine(step, f"dnsmasq --test: {verdict}")
        else:
            yield LogLine(step, "dnsmasq --test -C <generated config>", "cmd")
            yield LogLine(step, verdict, "stderr")
        ctx.check_cancel()

        data = {
            "interface": iface.to_data(),
            "conf": str(conf_path),
            "service": net.dnsmasq_service,
            "findings": [f.to_data() for f in findings],
            "diff": diff,
            "drift": moved.describe() if moved is not None and moved.changed else None,
        }
        if ctx.dry_run:
            yield from self._plan(ctx, conf_path, tftp_root, old, diff)
            yield Result(step, f"would install {conf_path}", {**data, "dry_run": True})
            return

        yield Progress(step, "network", 4, _PHASES, "steps", "install")
        if not tftp_root.is_dir():
            yield Planned(step, "create", str(tftp_root), "TFTP root (deploy fills it)")
            try:
                tftp_root.mkdir(parents=True, exist_ok=True)
                os.chmod(tftp_root, 0o755)
            except OSError as exc:
                raise disk_error(tftp_root, exc) from None
        if diff:
            yield Planned(step, "write", str(conf_path), f"{len(diff)} diff lines")
        installed = install_conf(a, text)
        if installed.backup is not None:
            yield LogLine(step, f"backed up the previous config to {installed.backup}")
        ctx.check_cancel()

        yield Progress(step, "network", 5, _PHASES, "steps", "service")
        pid = yield from self._serve(ctx, installed.changed)

        yield Progress(step, "network", 6, _PHASES, "steps", "verify")
        if net.dnsmasq_service != "none":
            ports = udp_ports_of(pid)
            missing = sorted({67, 69} - ports)
            if missing:
                raise NetworkError(
                    f"dnsmasq (PID {pid}) is running but not listening on udp/"
                    + ", udp/".join(str(p) for p in missing),
                    fix="check its log (`firecore-wizard dnsmasq status`) for bind errors",
                )
            yield LogLine(step, f"dnsmasq (PID {pid}) listens on udp/67 (DHCP) and udp/69 (TFTP)")
        yield Progress(step, "network", _PHASES, _PHASES, "steps", "done")
        result = NetworkResult(
            interface=iface.name,
            addresses=tuple(str(x) for x in iface.addresses),
            conf=conf_path,
            backup=installed.backup,
            changed=installed.changed,
            service=net.dnsmasq_service,
            pid=pid,
            tftp_root=tftp_root,
        )
        ctx.results.put(result)
        served = {
            "process": f"dnsmasq PID {pid} serving",
            "systemd": f"dnsmasq.service (PID {pid}) serving",
            "none": "not started (network.dnsmasq_service = none);",
        }[net.dnsmasq_service]
        yield Result(
            step,
            f"{served} {iface.name} ({addrs}); config {conf_path}"
            + (" (unchanged)" if not installed.changed else ""),
            {**data, **result.to_data()},
        )

    def _router(self, ctx: StepContext) -> Iterator[Event]:
        """Router mode: the DHCP server gets the boot options (steps.host.routerapply)."""
        a = ctx.answers
        step = self.name
        kind = a.network.router_kind
        yield Progress(step, "network", 0, 4, "steps", "read the DHCP server's config")
        # here, not at the top: a proxy-mode run (every rerun included) never loads ssh/uci
        from steps.host.routerapply import apply as apply_router
        from steps.host.routerapply import preview

        pv = preview(a, cancel=ctx.cancel)
        yield LogLine(step, f"router mode ({kind}): the DHCP server's config is {pv.where}")
        yield Progress(step, "network", 1, 4, "steps", "diff")
        diff = pv.diff
        for line in diff:
            yield LogLine(step, line, "stdout")
        if not diff:
            yield LogLine(step, f"{pv.where} already gives Pis their boot options")
        if kind == "dnsmasq":
            yield LogLine(step, "dnsmasq --test -C <router-mode drop-in>", "cmd")
            yield LogLine(step, check_conf(pv.generated, cancel=ctx.cancel), "stderr")
        data = {
            "mode": "router",
            "router_kind": kind,
            "where": pv.where,
            "generated": pv.generated,
            "diff": diff,
        }
        ctx.check_cancel()
        if ctx.dry_run:
            if diff:
                yield Planned(step, "write", pv.where, f"{len(diff)} diff lines, backup first")
                yield Planned(step, "restart", "dnsmasq on the DHCP server")
            yield Result(step, f"would change {pv.where}", {**data, "dry_run": True})
            return
        if not diff:
            yield Result(step, f"{pv.where} unchanged (router mode)", {**data, "changed": False})
            return
        yield Progress(step, "network", 2, 4, "steps", "apply")
        applied = yield from apply_router(a, pv, step=step, cancel=ctx.cancel)
        yield Progress(step, "network", 4, 4, "steps", "done")
        yield Result(
            step,
            f"{pv.where}: router mode applied, dnsmasq"
            + (f" (PID {applied.pid})" if applied.pid else "")
            + " is serving again",
            {**data, "changed": True, "pid": applied.pid, "backup": applied.router_backup},
        )

    def _plan(
        self,
        ctx: StepContext,
        conf_path: os.PathLike[str],
        tftp_root: os.PathLike[str],
        old: str | None,
        diff: list[str],
    ) -> Iterator[Event]:
        net = ctx.answers.network
        step = self.name
        if not os.path.isdir(tftp_root):
            yield Planned(step, "create", os.fspath(tftp_root), "TFTP root (deploy fills it)")
        if diff:
            yield Planned(step, "write", os.fspath(conf_path), f"{len(diff)} diff lines")
            if old is not None:
                yield Planned(
                    step, "backup", os.fspath(conf_path), f"into {backup_dir(ctx.answers)}"
                )
        else:
            yield Planned(step, "keep", os.fspath(conf_path), "unchanged")
        if net.dnsmasq_service == "process":
            # as _serve decides: our dnsmasq already serving an unchanged config is left alone
            state = process_state(ctx.answers)
            serving = state.ours and state.pid is not None and {67, 69} <= udp_ports_of(state.pid)
            if not diff and serving:
                yield Planned(step, "keep", "dnsmasq", f"PID {state.pid} already serves it")
            else:
                yield Planned(step, "start", "dnsmasq", "background process, stops ours first")
        elif net.dnsmasq_service == "systemd":
            yield Planned(step, "restart", "dnsmasq.service")

    def _serve(self, ctx: StepContext, changed: bool) -> Generator[Event, None, int | None]:
        """Start/restart dnsmasq per network.dnsmasq_service; the generator returns its pid."""
        a = ctx.answers
        mode = a.network.dnsmasq_service
        if mode == "none":
            yield LogLine(self.name, "network.dnsmasq_service = none: config written, not started")
            return None
        if mode == "process" and not changed:
            state = process_state(a)
            if state.ours and state.pid is not None and {67, 69} <= udp_ports_of(state.pid):
                yield LogLine(
                    self.name, f"our dnsmasq (PID {state.pid}) already serves this config"
                )
                return state.pid
        return (yield from restart(self.name, a, cancel=ctx.cancel))
