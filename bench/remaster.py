"""Remaster benchmark: the tool's build against a shell pipeline of standard tools, same run.

Inputs: a ~100 MB piCore-style release built with the demo factory (p1 80 MiB, with ~50 MB of
incompressible boot files added the way a real boot partition holds kernels and modules), the
15.x TCZ repo plus one ~15 MB extension, and a small app. Both sides start from the same release
zip in a warm download cache and produce the same kind of tree: boot files, patched config.txt
and cmdline.txt, overlay.gz, and sha256 sums.

- reference: ``unzip`` → ``sfdisk --json`` → ``mcopy -s`` → ``cp`` the TCZs and app into a tree
  → ``find | cpio -o -H newc | gzip`` → ``sed`` on config.txt / cmdline.txt → ``sha256sum``;
- tool cold: RemasterStep with an empty build cache (the boot partition is extracted again);
- tool no-change: the same build again (nothing to do);
- peak RSS of the cold build's process (Python + the tools it runs).

Targets: cold ≤ 1.0× reference, no-change ≤ 0.2× cold, peak RSS ≤ 150 MB.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXTENSIONS = ["openssh.tcz", "python3.11.tcz", "bigdata.tcz"]


def _run(cmd: str, cwd: Path | None = None) -> None:
    subprocess.run(
        cmd,
        shell=True,
        check=True,
        cwd=cwd,
        env={**os.environ, "LC_ALL": "C", "MTOOLS_SKIP_CHECK": "1"},
    )


def make_inputs(work: Path) -> dict[str, str]:
    """Release zip (~100 MB image), repo with a big TCZ, app dir; returns their paths."""
    from steps.demo.release import build_release
    from steps.demo.specs import ReleaseSpec
    from steps.demo.tczrepo import build_repo, package_specs

    spec = ReleaseSpec(
        "15.0.0", "armhf", "6.6.47", "15", boot_sectors=163840, tce_sectors=32768, fat32=True
    )
    mirror = work / "mirror"
    repo = build_repo(
        mirror / spec.repo,
        work / "w1",
        package_specs(spec.python, spec.kernel_releases, spec.arch),
        spec.epoch,
        spec.date,
    )
    built = build_release(spec, mirror, work / "w2", repo)
    rel = mirror / built.path
    # a real boot partition holds ~50 MB of kernels/modules/firmware: add incompressible files
    img_dir = work / "img"
    with zipfile.ZipFile(rel) as z:
        z.extractall(img_dir)
    img = img_dir / spec.image_name
    extra = work / "extra"
    extra.mkdir()
    for i in range(10):
        (extra / f"firmware-{i}.bin").write_bytes(os.urandom(5 * 1024 * 1024))
    _run(f"mcopy -i '{img}@@{8192 * 512}' {extra}/* ::/")
    _run(f"md5sum {img.name} > {img.name}.md5.txt", cwd=img_dir)
    rel.unlink()
    _run(f"zip -q -1 '{rel}' {img.name} {img.name}.md5.txt", cwd=img_dir)
    shutil.rmtree(img_dir)
    # one big extension (a Python runtime is ~15 MB)
    big = work / "bigdata"
    (big / "usr/local/share/big").mkdir(parents=True)
    for i in range(3):
        (big / f"usr/local/share/big/blob{i}").write_bytes(os.urandom(5 * 1024 * 1024))
    tcz = mirror / spec.repo / "bigdata.tcz"
    _run(f"mksquashfs {big} {tcz} -b 4k -no-xattrs -all-root -noappend -quiet -no-progress")
    _run("md5sum bigdata.tcz > bigdata.tcz.md5.txt", cwd=tcz.parent)
    app = work / "app"
    from tests.support.remaster_support import app_bundle

    app_bundle(app)  # writes the app's files
    return {
        "release": str(rel),
        "repo": str(mirror / spec.repo),
        "app": str(app),
        "config": built.config_txt,
        "image": built.image_name,
    }


def tool_build(inputs: dict[str, str], out: Path, cache: Path) -> dict[str, float]:
    """One build in this process; returns seconds and this process's peak RSS (MB)."""
    from steps.answers import default_answers
    from steps.remaster import RemasterStep
    from tests.support import remaster_support as rs

    a = default_answers()
    a.build.output = str(out)
    a.build.cache = str(cache)
    a.extensions.names = list(EXTENSIONS)
    art = rs.release_artifact(
        Path(inputs["release"]),
        version="15.0.0",
        arch="armhf",
        flavour="piCore",
        config_txt=inputs["config"],
        boards=["pi3", "pi4"],
    )
    ext = rs.extension_set(Path(inputs["repo"]), EXTENSIONS, art.kernels.values())
    app = rs.app_bundle(Path(inputs["app"]))
    ctx = rs.context(a, cache, art, ext, app)
    start = time.perf_counter()
    for _ in RemasterStep().run(ctx):
        pass
    took = time.perf_counter() - start
    rss = (
        max(
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
            resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
        )
        / 1024
    )
    return {"seconds": took, "rss_mb": rss}


REFERENCE = r"""
set -euo pipefail
W="$1"; REL="$2"; REPO="$3"; APP="$4"; OUT="$W/ref-out"
rm -rf "$W/ref" "$OUT"; mkdir -p "$W/ref/boot" "$W/ref/ov/tmp/builtin/optional" "$OUT"
cd "$W/ref"
unzip -q -o "$REL"
IMG=$(ls *.img); md5sum -c --quiet "$IMG.md5.txt"
START=$(sfdisk --json "$IMG" | python3 -c \
  'import json,sys; print(json.load(sys.stdin)["partitiontable"]["partitions"][0]["start"])')
mcopy -s -n -m -i "$IMG@@$((START*512))" ::/ boot/
for t in openssh openssl python3.11 bigdata libffi ncursesw readline sqlite3 bzip2-lib; do
  [ -f "$REPO/$t.tcz" ] && cp "$REPO/$t.tcz" "$REPO/$t.tcz.md5.txt" ov/tmp/builtin/optional/
  [ -f "$REPO/$t.tcz.dep" ] && cp "$REPO/$t.tcz.dep" ov/tmp/builtin/optional/ || true
done
printf 'openssh.tcz\npython3.11.tcz\nbigdata.tcz\n' > ov/tmp/builtin/onboot.lst
mkdir -p ov/opt/firecore && cp -a "$APP"/. ov/opt/firecore/app/
zcat boot/rootfs-*.gz | cpio -i --quiet --to-stdout opt/bootlocal.sh > ov/opt/bootlocal.sh
echo '/opt/firecore/boot.sh &' >> ov/opt/bootlocal.sh
(cd ov && find . | cpio -o -H newc -R 0:0 --quiet | gzip) > boot/overlay.gz
sed -i 's/\(initramfs [^ ]*\)/\1,overlay.gz/' boot/config.txt
sed -i '1 s/$/ norestore host=firecore/' boot/cmdline.txt
cp -a boot/. "$OUT"/
(cd "$OUT" && find . -type f -print0 | xargs -0 sha256sum > "$W/ref-manifest.txt")
"""


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="fw-bench-remaster-"))
    try:
        print("building the ~100 MB bench release …", file=sys.stderr)
        inputs = make_inputs(work)
        size = Path(inputs["release"]).stat().st_size
        script = work / "reference.sh"
        script.write_text(REFERENCE)
        # warm the page cache for both sides equally
        Path(inputs["release"]).read_bytes()
        t0 = time.perf_counter()
        _run(f"bash {script} {work} {inputs['release']} {inputs['repo']} {inputs['app']}")
        ref = time.perf_counter() - t0
        child = (
            "import json, sys; sys.path.insert(0, sys.argv[1]);"
            "from pathlib import Path; from bench.remaster import tool_build;"
            "print(json.dumps(tool_build(json.loads(sys.argv[2]), Path(sys.argv[3]),"
            " Path(sys.argv[4]))))"
        )

        def tool() -> dict[str, float]:
            out = subprocess.run(
                [
                    sys.executable,
                    "-c",
                    child,
                    str(ROOT),
                    json.dumps(inputs),
                    str(work / "tool-out"),
                    str(work / "cache"),
                ],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            return dict(json.loads(out.strip().splitlines()[-1]))

        cold = tool()
        again = tool()
        rows = [
            ("release file", f"{size / 1e6:.0f} MB", ""),
            ("reference pipeline (s)", f"{ref:.2f}", ""),
            (
                "tool cold build (s)",
                f"{cold['seconds']:.2f}",
                f"{cold['seconds'] / ref:.2f}× reference (target ≤ 1.0)",
            ),
            (
                "tool no-change rebuild (s)",
                f"{again['seconds']:.3f}",
                f"{again['seconds'] / cold['seconds']:.3f}× cold (target ≤ 0.2)",
            ),
            ("peak RSS cold (MB)", f"{cold['rss_mb']:.0f}", "target ≤ 150"),
        ]
        print("remaster benchmark")
        for name, value, ratio in rows:
            print(f"  {name:<28} {value:>10}  {ratio}")
        ok = (
            cold["seconds"] <= ref
            and again["seconds"] <= 0.2 * cold["seconds"]
            and cold["rss_mb"] <= 150
        )
        return 0 if ok else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
