"""Whole-run benchmark: ``firecore-wizard --answers`` against a plain-tools pipeline, same run.

What a user waits for is the whole headless run, start-up and network step included, so that is
what is timed — in a network namespace (``tests.support.lab``) with a home router (plain dnsmasq
DHCP) beside our host, so the network step's preflight really probes the segment.

The fixture is a realistic mirror, served over HTTP from the namespace: piCore 15.0.0 armhf
(~38 MB zip; kernels, modules and firmware on the boot partition), boards pi3 + pi4,
``openssh.tcz`` + ``python3.11.tcz`` (8 TCZs with their dependencies, ~16 MB), a small user app
with an offline wheelhouse, ``network.dnsmasq_service = none``.

- **reference**: ``REFERENCE``, a shell script of standard tools doing the same work: ``unzip`` +
  the image's md5, ``sfdisk --json``, ``mcopy`` of the boot partition, md5-checked copies of the 8
  TCZs, the app and its installed wheels, ``find | cpio | gzip -9n``, ``sed`` on config.txt and
  cmdline.txt, a sha256 manifest, a copy to a TFTP root, ``dnsmasq --test``;
- **cold**: the tool with the download cache warm (the release, TCZs and the installed wheels:
  what came from the network) and everything derived from them removed (the extracted boot
  partition, cached overlays, digests), output, TFTP root and dnsmasq config empty;
- **no-change rerun**: the same command again right after;
- **warm**: output, TFTP root and config empty but every cache kept (shown, no target);
- **peak RSS**: the largest process of the cold run (GNU time's maximum resident set size).

Each figure is the median of ``ROUNDS`` rounds, the three runs of a round back to back.
Targets: cold ≤ 1.0× reference, rerun ≤ 0.2× cold, peak RSS ≤ 150 MB. Needs root.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WIZARD = str(Path(sys.executable).with_name("firecore-wizard"))
ROUNDS = 3

#: TCZ → size of the incompressible payload it carries (about what the real ones weigh).
PAYLOAD = {
    "python3.11.tcz": 8_000_000,
    "openssl.tcz": 3_000_000,
    "openssh.tcz": 1_500_000,
    "sqlite3.tcz": 1_200_000,
    "ncursesw.tcz": 700_000,
    "readline.tcz": 500_000,
    "libffi.tcz": 300_000,
    "bzip2-lib.tcz": 300_000,
}
#: Boot partition files a real release carries besides the demo's small stand-ins.
BOOT_EXTRA = {
    "kernel6647v7.img.full": 7_000_000,
    "kernel6647v8.img.full": 9_000_000,
    "modules-6.6.47.gz": 12_000_000,
    "start4.elf.full": 2_300_000,
    "start.elf.full": 2_900_000,
}
APP_MAIN = """from fastapi import FastAPI

app = FastAPI()


@app.get("/hello")
def hello() -> dict[str, str]:
    return {"hello": "pi"}
"""


@dataclass
class Fixture:
    """The mirror, the app and the wheelhouse, built once per benchmark run."""

    mirror: Path
    release: Path
    repo: Path
    app: Path
    wheelhouse: Path


def _sh(cmd: str, cwd: Path | None = None) -> None:
    env = {**os.environ, "LC_ALL": "C", "MTOOLS_SKIP_CHECK": "1"}
    subprocess.run(cmd, shell=True, check=True, cwd=cwd, env=env)


def build_fixture(work: Path) -> Fixture:
    """The realistic mirror (see the module docstring) under ``work``."""
    from steps.demo.release import build_release
    from steps.demo.rootfs import blob
    from steps.demo.specs import ReleaseSpec
    from steps.demo.tczrepo import PackageSpec, build_repo, package_specs
    from tests.support.wheelhouse import service_wheels

    spec = ReleaseSpec(
        "15.0.0", "armhf", "6.6.47", "15", boot_sectors=163840, tce_sectors=65536, fat32=True,
        date="2024-09-29",
    )  # fmt: skip
    mirror = work / "mirror"
    packages = []
    for p in package_specs(spec.python, spec.kernel_releases, spec.arch):
        if p.name in PAYLOAD:
            payload = (f"usr/local/share/{p.name}/payload", blob(p.name, PAYLOAD[p.name]), 0o644)
            files = (*p.files, payload)
            p = PackageSpec(p.name, p.description, p.dep_text, files, p.version, p.tags)
        packages.append(p)
    repo = build_repo(mirror / spec.repo, work / "repo-work", packages, spec.epoch, spec.date)
    built = build_release(spec, mirror, work / "release-work", repo)
    release = mirror / built.path
    unpacked = work / "img"
    with zipfile.ZipFile(release) as z:
        z.extractall(unpacked)
    extra = work / "boot-extra"
    extra.mkdir()
    for name, size in BOOT_EXTRA.items():
        (extra / name).write_bytes(blob(name, size))
    _sh(f"mcopy -i '{unpacked / spec.image_name}@@{8192 * 512}' {extra}/* ::/")
    _sh(f"md5sum {spec.image_name} > {spec.image_name}.md5.txt", cwd=unpacked)
    release.unlink()
    _sh(f"zip -q -X '{release}' {spec.image_name} {spec.image_name}.md5.txt", cwd=unpacked)
    shutil.rmtree(unpacked)
    shutil.rmtree(extra)
    app = work / "myapp"
    app.mkdir()
    (app / "main.py").write_text(APP_MAIN)
    (app / "requirements.txt").write_text("fastapi\n")
    service_wheels(work / "wheelhouse")
    return Fixture(mirror, release, mirror / spec.repo, app, work / "wheelhouse")


REFERENCE = r"""
set -euo pipefail
W="$1"; ZIP="$2"; REPO="$3"; APP="$4"; SITE="$5"; OUT="$W/ref-out"; TFTP="$W/ref-tftp"
export LC_ALL=C MTOOLS_SKIP_CHECK=1
rm -rf "$W/ref" "$OUT" "$TFTP"; mkdir -p "$W/ref" "$OUT/ov/tmp/builtin/optional" "$TFTP/releases"
cd "$W/ref"
unzip -q "$ZIP"
IMG=$(ls *.img); md5sum -c --quiet "$IMG.md5.txt"
START=$(sfdisk --json "$IMG" | sed -n 's/.*"start": *\([0-9]*\).*/\1/p' | head -1)
mkdir boot; mcopy -s -n -m -i "$IMG@@$((START*512))" ::/ boot/
OV="$OUT/ov"
for t in openssh openssl python3.11 libffi ncursesw readline sqlite3 bzip2-lib; do
  (cd "$REPO" && md5sum -c --quiet "$t.tcz.md5.txt")
  cp "$REPO/$t.tcz" "$REPO/$t.tcz.md5.txt" "$OV/tmp/builtin/optional/"
  if [ -f "$REPO/$t.tcz.dep" ]; then cp "$REPO/$t.tcz.dep" "$OV/tmp/builtin/optional/"; fi
done
printf 'openssh.tcz\npython3.11.tcz\n' > "$OV/tmp/builtin/onboot.lst"
mkdir -p "$OV/opt/firecore"
cp -a "$APP" "$OV/opt/firecore/app"; cp -a "$SITE" "$OV/opt/firecore/site-packages"
printf '#!/bin/sh\n/opt/firecore/boot.sh &\n' > "$OV/opt/bootlocal.sh"
(cd "$OV" && find . | sort | cpio -o -H newc -R 0:0 --reproducible --quiet | gzip -9n) \
  > boot/overlay.gz
sed -i 's/^\(initramfs [^ ]*\)/\1,overlay.gz/' boot/config.txt
sed -i '1 s/$/ nortc norestore host=firecore/' boot/cmdline.txt
(cd boot && find . -type f | sort | xargs sha256sum > ../manifest.txt) && cp manifest.txt boot/
cp -a boot "$TFTP/releases/ref"; ln -sfn releases/ref "$TFTP/current"
printf 'port=0\ninterface=eth0\nbind-dynamic\ndhcp-range=10.99.0.1,proxy\n' > "$W/ref.conf"
printf 'pxe-service=0,"Raspberry Pi Boot"\nenable-tftp\ntftp-root=%s/current\n' "$TFTP" \
  >> "$W/ref.conf"
dnsmasq --test -C "$W/ref.conf" 2>/dev/null
"""


def main() -> int:
    """Run the benchmark; 0 when every target is met."""
    if os.geteuid() != 0:
        print("headless: needs root (network namespaces); skipped")
        return 0
    from steps.answers import default_answers
    from steps.answers_toml import dump_answers
    from steps.demo.server import MirrorServer
    from tests.support.lab import Lab
    from tests.support.netboot_lab import in_netns, start_router

    work = Path(tempfile.mkdtemp(prefix="fwb-headless-", dir="/tmp"))
    work.chmod(0o755)
    # a user's install has its .pyc files; this shell's environment may say not to write them
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    try:
        print("building the bench mirror …", file=sys.stderr)
        fx = build_fixture(work)
        cache = work / "cache"
        with Lab() as lab:
            srv = lab.host("srv", "10.99.0.1/24")
            rt = lab.host("rt", "10.99.0.254/24")
            (work / "router").mkdir()
            start_router(rt, work / "router")
            with in_netns(srv):
                server = MirrorServer(fx.mirror).start()
            try:
                a = default_answers()
                a.release.mirrors = [server.url]
                a.release.boards = ["pi3", "pi4"]
                a.app.path = str(fx.app)
                a.app.wheelhouse = str(fx.wheelhouse)
                a.build.output = str(work / "out")
                a.build.cache = str(cache)
                a.network.interface = "eth0"
                a.network.tftp_root = str(work / "tftp")
                a.network.dnsmasq_conf = str(work / "etc" / "firecore.conf")
                a.network.dnsmasq_service = "none"
                a.network.state_dir = str(work / "run")
                a.network.backup_dir = str(work / "backups")
                answers = work / "answers.toml"
                answers.write_text(dump_answers(a))
                rss = work / "rss"

                def tool() -> float:
                    start = time.perf_counter()
                    done = srv.run(
                        ["/usr/bin/time", "-f", "%M %U %S", "-o", str(rss), WIZARD, "--answers",
                         str(answers)],
                        check=False, env=env, timeout=600,
                    )  # fmt: skip
                    took = time.perf_counter() - start
                    if done.returncode != 0:
                        raise RuntimeError(f"the tool failed:\n{done.stderr[-3000:]}")
                    return took

                def empty_outputs(*, derived: bool) -> None:
                    for p in ("out", "tftp", "etc", "run", "backups"):
                        shutil.rmtree(work / p, ignore_errors=True)
                    if derived:  # what the tool made from the downloads, not the downloads
                        for p in ("boot", "remaster"):
                            shutil.rmtree(cache / p, ignore_errors=True)

                site = None
                tool()  # fills the download cache (and writes the .pyc files)
                site = next((cache / "wheels").glob("*/site-packages"))
                ref_script = work / "reference.sh"
                ref_script.write_text(REFERENCE)
                refs, colds, reruns, warms, peaks = [], [], [], [], []
                cpu: dict[str, list[float]] = {"cold": [], "rerun": []}

                def usage() -> tuple[float, float]:
                    """(peak RSS MB, CPU seconds) of the last tool run."""
                    kb, user, system = rss.read_text().split()[-3:]
                    return int(kb) / 1024, float(user) + float(system)

                for _ in range(ROUNDS):
                    start = time.perf_counter()
                    _sh(
                        f"bash {ref_script} {work} {fx.release} {fx.repo} {fx.app} {site}",
                        cwd=work,
                    )
                    refs.append(time.perf_counter() - start)
                    empty_outputs(derived=True)
                    colds.append(tool())
                    peak, seconds = usage()
                    peaks.append(peak)
                    cpu["cold"].append(seconds)
                    reruns.append(tool())
                    cpu["rerun"].append(usage()[1])
                    empty_outputs(derived=False)
                    warms.append(tool())
            finally:
                server.stop()
        ref, cold, rerun, warm = (statistics.median(x) for x in (refs, colds, reruns, warms))
        peak = max(peaks)
        print(f"headless --answers run (median of {ROUNDS} rounds, each run as a user starts it)")
        rows = [
            ("plain-tools pipeline", f"{ref:.2f} s", ""),
            ("tool, cold", f"{cold:.2f} s", f"{cold / ref:.2f}× pipeline (target ≤ 1.0)"),
            ("tool, no-change rerun", f"{rerun:.2f} s", f"{rerun / cold:.2f}× cold (target ≤ 0.2)"),
            ("tool, warm caches", f"{warm:.2f} s", f"{warm / ref:.2f}× pipeline"),
            ("peak RSS, cold", f"{peak:.0f} MB", "target ≤ 150"),
        ]
        for name, value, ratio in rows:
            print(f"  {name:<24} {value:>9}  {ratio}")
        cold_cpu, rerun_cpu = (statistics.median(cpu[k]) for k in ("cold", "rerun"))
        print(
            f"  CPU time (user+sys): cold {cold_cpu:.2f} s, rerun {rerun_cpu:.2f} s "
            f"({rerun_cpu / cold_cpu:.2f}×; less sensitive to other load on the machine)"
        )
        print(
            "  (all runs: pipeline "
            + " ".join(f"{x:.2f}" for x in refs)
            + "; cold "
            + " ".join(f"{x:.2f}" for x in colds)
            + "; rerun "
            + " ".join(f"{x:.2f}" for x in reruns)
            + ")"
        )
        return 0 if cold <= ref and rerun <= 0.2 * cold and peak <= 150 else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
