"""Boot-load benchmark: a classroom of 100 virtual Pis powering on at once, against one Pi alone.

A lab of network namespaces (``tests.support.lab``): a home router (plain dnsmasq DHCP on a /16,
so 100 leases fit), our server, and one Pi namespace. The server runs what the tool generates and
starts — ``firecore-wizard dnsmasq apply`` (``network.dnsmasq_service = "process"``) then
``firecore-wizard deploy`` of a small realistic boot tree (``tests.support.boot_tree``, ~0.5 MB a
Pi) — so the dnsmasq config under load is the real one, ``tftp-max`` included.

The virtual Pis (``steps.wire.virtualpi``: Pi 3 ROM and Pi 4 bootloader, byte-exact DHCP, the
firmware's TFTP reads) all run in this one process, one thread and one raw socket each (a BPF
filter hands each socket only its own frames): 100 Python start-ups would otherwise be what is
measured. They wait at a barrier and start together; every Pi must reach the last byte of its
last initramfs file (``overlay.gz``) with every file matching the deployed manifest.

Reported: one Pi 3 and one Pi 4 alone, then 100 (50 of each) at once with ``network.fleet_size
= 100`` (tftp-max 200) and, for comparison, with the default fleet of 25 (dnsmasq's own limit of
50 transfers), each with the most transfers dnsmasq had open at once (its sockets, sampled from
/proc): with the default, half the class waits in dnsmasq's queue and gets in only through its
retry timer — short for these virtual Pis, 2 s per RRQ for a Pi 4 (netboot.md §6), undocumented
for a Pi 3 ROM. Needs root.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from steps.answers import Answers, default_answers
from steps.answers_toml import dump_answers
from steps.wire.virtualpi import BootOptions, BootReport, VirtualPi
from tests.support.boot_tree import make_build
from tests.support.lab import Host, Lab
from tests.support.netboot_lab import in_netns, start_router

PIS = 100
WIZARD = str(Path(sys.executable).with_name("firecore-wizard"))
#: A hang-stopper for one batch: a Pi that has not finished by then has failed.
BATCH_LIMIT = 600.0


@dataclass
class Batch:
    """One boot of several Pis at once."""

    wall: float
    reports: list[BootReport]
    errors: list[str]
    transfers: int = 0
    """Most TFTP transfers dnsmasq had open at once (its UDP sockets beyond the idle ones)."""

    def finished(self, manifest: dict[str, Any]) -> int:
        """Pis that booted and received the last byte of their last initramfs file."""
        return sum(1 for r in self.reports if _reached_the_end(r, manifest))

    @property
    def served(self) -> int:
        return sum(s.bytes for r in self.reports for s in r.stages if s.status == "complete")


def _reached_the_end(report: BootReport, manifest: dict[str, Any]) -> bool:
    """The boot passed every stage and read overlay.gz, the board's last initramfs file, whole."""
    if not report.ok:
        return False
    for stage in report.stages:
        wanted = manifest["files"].get(stage.file or "", {})
        if (
            (stage.file or "").endswith("overlay.gz")
            and stage.status == "complete"
            and stage.bytes == wanted.get("size")
            and stage.sha256 == wanted.get("sha256")
        ):
            return True
    return False


def _sockets(pid: int) -> int:
    """How many sockets process ``pid`` has open (dnsmasq: one per TFTP transfer, and its own)."""
    count = 0
    with contextlib.suppress(OSError):
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                count += os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:")
    return count


def boot_at_once(
    pi: Host, jobs: list[tuple[str, str]], manifest: dict[str, Any], dnsmasq: int
) -> Batch:
    """Boot one virtual Pi per (model, serial), all released at the same moment."""
    idle = _sockets(dnsmasq)
    peak = idle
    stop = threading.Event()

    def watch() -> None:
        nonlocal peak
        while not stop.wait(0.01):
            peak = max(peak, _sockets(dnsmasq))

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        batch = _boot(pi, jobs, manifest)
    finally:
        stop.set()
        watcher.join()
    batch.transfers = peak - idle
    return batch


def _boot(pi: Host, jobs: list[tuple[str, str]], manifest: dict[str, Any]) -> Batch:
    gate = threading.Barrier(len(jobs) + 1)
    reports: list[BootReport | None] = [None] * len(jobs)
    ends: list[float] = [0.0] * len(jobs)
    errors: list[str] = []

    def boot(i: int, model: str, serial: str) -> None:
        try:
            with in_netns(pi):
                vpi = VirtualPi(
                    "eth0",
                    model=model,  # type: ignore[arg-type]
                    serial=serial,
                    options=BootOptions(manifest=manifest),
                )
                report = vpi.new_report()
                gate.wait()
                for _ in vpi.boot(report):
                    pass
                reports[i] = report
                ends[i] = time.monotonic()
        except BaseException as exc:  # reported with the figures
            errors.append(f"{model} {serial}: {type(exc).__name__}: {exc}")
            ends[i] = time.monotonic()

    threads = [
        threading.Thread(target=boot, args=(i, m, s), daemon=True) for i, (m, s) in enumerate(jobs)
    ]
    for t in threads:
        t.start()
    gate.wait(timeout=BATCH_LIMIT)
    start = time.monotonic()
    for t in threads:
        t.join(timeout=max(1.0, BATCH_LIMIT - (time.monotonic() - start)))
    done = [r for r in reports if r is not None]
    return Batch(max(ends) - start, done, errors)


def _answers(base: Path, fleet: int) -> Answers:
    a = default_answers()
    a.build.output = str(base / "build")
    a.network.interface = "eth0"
    a.network.tftp_root = str(base / "tftp")
    a.network.dnsmasq_conf = str(base / "etc" / "firecore.conf")
    a.network.dnsmasq_service = "process"
    a.network.state_dir = str(base / "run")
    a.network.backup_dir = str(base / "backups")
    a.network.probe_seconds = 0  # the segment is ours; this benchmark is about TFTP
    a.network.fleet_size = fleet
    return a


def _wizard(host: Host, *args: str) -> None:
    done = host.run([WIZARD, *args], check=False, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"firecore-wizard {' '.join(args)}:\n{done.stdout}\n{done.stderr}")


def _serve(srv: Host, base: Path, fleet: int) -> tuple[str, int]:
    """Apply the network step for ``fleet`` Pis (dnsmasq restarted): its tftp-max line, its pid."""
    answers = base / f"answers-{fleet}.toml"
    answers.write_text(dump_answers(_answers(base, fleet)))
    _wizard(srv, "dnsmasq", "apply", "--answers", str(answers))
    conf = (base / "etc" / "firecore.conf").read_text().splitlines()
    pid = int((base / "run" / "dnsmasq.pid").read_text())
    return next(line for line in conf if line.startswith("tftp-max=")), pid


def main() -> int:
    """Run the benchmark; 0 if every Pi of every batch reached its last initramfs byte."""
    if os.geteuid() != 0:
        print("boot_load: needs root (network namespaces); skipped")
        return 0
    base = Path(tempfile.mkdtemp(prefix="fwb-boot-", dir="/tmp"))
    base.chmod(0o755)  # dnsmasq reads the TFTP root as nobody
    try:
        make_build(base / "build")
        (base / "router").mkdir()
        with Lab() as lab:
            srv = lab.host("srv", "10.99.0.1/16")
            rt = lab.host("rt", "10.99.255.254/16")
            pi = lab.host("pi", None)
            start_router(
                rt, base / "router", first="10.99.1.1", last="10.99.254.254", netmask="255.255.0.0"
            )
            limit, dnsmasq = _serve(srv, base, PIS)
            answers = base / f"answers-{PIS}.toml"
            _wizard(srv, "deploy", "--answers", str(answers))
            manifest = json.loads((base / "tftp" / "current" / "manifest.json").read_text())
            singles = {
                model: boot_at_once(pi, [(model, "00c0ffee")], manifest, dnsmasq)
                for model in ("pi3", "pi4")
            }
            jobs = [("pi3" if n % 2 else "pi4", f"{0x10000000 + n:08x}") for n in range(PIS)]
            fleet = boot_at_once(pi, jobs, manifest, dnsmasq)
            default_limit, dnsmasq = _serve(srv, base, 25)
            default = boot_at_once(pi, jobs, manifest, dnsmasq)
        one = max(b.wall for b in singles.values())
        print(f"boot load ({PIS} virtual Pis, half Pi 3, half Pi 4, one process, real dnsmasq)")
        for model, b in singles.items():
            print(f"  1 {model} alone{'':<27} {b.wall:6.2f} s  {b.finished(manifest)}/1 booted")
        for label, line, b in (
            (f"fleet_size = {PIS}", limit, fleet),
            ("fleet_size = 25 (default)", default_limit, default),
        ):
            ok = b.finished(manifest)
            print(
                f"  {PIS} at once, {label:<26} {b.wall:6.2f} s  {ok}/{PIS} reached the last "
                f"initramfs byte ({b.served / 1e6:.0f} MB served; {line}, at most "
                f"{b.transfers} open at once); {b.wall / one:.1f}× one Pi"
            )
            why = Counter(
                next((f"{s.stage}: {s.code}" for s in r.stages if not s.ok), "incomplete")
                for r in b.reports
                if not _reached_the_end(r, manifest)
            )
            for reason, count in why.most_common(3):
                print(f"    {count} stopped at {reason}")
            for err in b.errors[:5]:
                print(f"    {err}")
        # the target is the class with its fleet_size declared; the default run is the contrast
        return 0 if fleet.finished(manifest) == PIS else 1
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
