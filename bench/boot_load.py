"""Boot-load benchmark: 20 virtual Pis boot at once through one dnsmasq, against one Pi alone.

A lab of network namespaces (``tests.support.lab``): a home router (plain dnsmasq DHCP), our server
(dnsmasq proxy + TFTP, config as netboot.md §7.1, serving a deployed release of the test boot
tree), and one Pi namespace in which ``firecore-wizard selftest --json`` runs once alone (the
baseline, each model), then 20 times at once (10 Pi 3, 10 Pi 4, distinct serials and MACs).
Every boot must complete with every file matching the deployed manifest. The subnet is a /16 so
the router's offers to the Pi 3s (which never REQUEST, so nothing is leased) do not collide.

Reported: wall time of the single boots and of the batch, the ratio batch / single, and the
bytes served. Needs root. Not a timed test: the figures go into the README.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from steps.answers import default_answers
from steps.base import StepContext
from steps.deploy import DeployStep
from tests.support.boot_tree import make_build
from tests.support.lab import Host, Lab
from tests.support.netboot_lab import start_proxy, start_router

PIS = 20
WIZARD = str(Path(sys.executable).with_name("firecore-wizard"))


def _selftest(pi: Host, model: str, serial: str, manifest: Path) -> subprocess.Popen[str]:
    return pi.popen(
        [
            WIZARD,
            "selftest",
            "--interface",
            "eth0",
            "--model",
            model,
            "--serial",
            serial,
            "--manifest",
            str(manifest),
            "--json",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(proc: subprocess.Popen[str]) -> tuple[bool, int]:
    out, err = proc.communicate(timeout=300)
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    ok = proc.returncode == 0 and bool(lines) and lines[-1].get("ok") is True
    if not ok:
        sys.stderr.write(out + err)
    served = sum(o.get("bytes", 0) for o in lines if o.get("status") == "complete")
    return ok, served


def _batch(pi: Host, jobs: list[tuple[str, str]], manifest: Path) -> tuple[float, int, int]:
    start = time.monotonic()
    procs = [_selftest(pi, model, serial, manifest) for model, serial in jobs]
    results = [_finish(p) for p in procs]
    wall = time.monotonic() - start
    return wall, sum(ok for ok, _ in results), sum(b for _, b in results)


def main() -> int:
    """Run the benchmark; 0 if every Pi booted."""
    if os.geteuid() != 0:
        print("boot_load: needs root (network namespaces); skipped")
        return 0
    base = Path(tempfile.mkdtemp(prefix="fwb-boot-", dir="/tmp"))
    base.chmod(0o755)
    try:
        answers = default_answers()
        answers.build.output = str(base / "build")
        answers.network.tftp_root = str(base / "tftp")
        make_build(base / "build")
        list(DeployStep().run(StepContext(answers=answers)))
        manifest = base / "tftp" / "current" / "manifest.json"
        with Lab() as lab:
            srv = lab.host("srv", "10.99.0.1/16")
            rt = lab.host("rt", "10.99.255.254/16")
            pi = lab.host("pi", None)
            start_router(rt, base, first="10.99.1.1", last="10.99.254.254", netmask="255.255.0.0")
            start_proxy(srv, base, base / "tftp" / "current")
            singles = {}
            for model in ("pi3", "pi4"):
                wall, ok, _ = _batch(pi, [(model, "00000001")], manifest)
                singles[model] = wall
                if ok != 1:
                    print(f"boot_load: the single {model} did not boot")
                    return 1
            jobs = [("pi3" if n % 2 else "pi4", f"{0x10000000 + n:08x}") for n in range(PIS)]
            wall, ok, served = _batch(pi, jobs, manifest)
        single = sum(singles.values()) / len(singles)
        print(f"boot_load: 1 Pi alone: pi3 {singles['pi3']:.2f} s, pi4 {singles['pi4']:.2f} s")
        print(
            f"boot_load: {PIS} Pis at once: {ok}/{PIS} booted in {wall:.2f} s "
            f"({served / 1e6:.1f} MB served); ratio {wall / single:.2f}x one Pi alone"
        )
        return 0 if ok == PIS else 1
    finally:
        shutil.rmtree(base, ignore_errors=True)
