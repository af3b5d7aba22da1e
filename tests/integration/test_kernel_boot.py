"""A real Linux kernel unpacks the remastered overlay on top of the release's rootfs.

Debian's armhf kernel under ``qemu-system-arm -M virt`` gets ``cat rootfs.gz modules.gz
tools.gz overlay.gz pi.gz`` as its initramfs — what a profile's config.txt line
``initramfs a,b,overlay.gz,pi.gz`` makes the Pi's firmware do — and the remastered cmdline.txt
(``base`` and all) as its command line. overlay.gz and pi.gz are zero-padded to a multiple of 4
bytes for the Pi 5 bootloader; the kernel must skip the padding between them. ``tools.gz`` is
the stand-in part: a real busybox-static (armhf) and an /init (tests/data/kernel_init.sh) that
prints modes, owners and contents and powers off. Like
piCore's own rootfs (made with ``find | cpio``) it starts with a ``.`` entry of mode 0755, so the
test sees whether the overlay leaves ``/`` alone. The kernel applies every directory entry's mode
and owner even to existing directories, so this catches an overlay that breaks ``/`` or ``/tmp``
or leaves the extensions unreadable for user tc.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import zlib
from pathlib import Path

import pytest

from steps.answers import Profile
from steps.demo.factory import Mirror
from steps.picore import cpio
from tests.support.cards import read_back
from tests.support.debian_arm import ArmhfKit, KitUnavailable, ensure_kit
from tests.test_remaster import Build

pytestmark = pytest.mark.qemu
INIT = Path(__file__).parents[1] / "data" / "kernel_init.sh"


@pytest.fixture(scope="session")
def kit() -> ArmhfKit:
    try:
        return ensure_kit()
    except KitUnavailable as exc:
        if os.environ.get("CI"):
            pytest.fail(f"CI must be able to fetch the armhf kernel: {exc}")
        pytest.skip(f"no Debian armhf packages reachable (needs apt access): {exc}")


def tools_gz(kit: ArmhfKit) -> bytes:
    entries = [
        cpio.directory(".", 0o755),  # like piCore's rootfs, made with `find | cpio`
        cpio.directory("bin", 0o755),
        cpio.regular("bin/busybox", kit.busybox.read_bytes(), 0o755),
        cpio.regular("init", INIT.read_bytes(), 0o755),
    ]
    raw = io.BytesIO()
    cpio.write(entries, raw)
    return cpio.gzip_bytes(raw.getvalue())


def boot(kit: ArmhfKit, initrd: Path, cmdline: str = "quiet") -> str:
    proc = subprocess.run(
        ["qemu-system-arm", "-M", "virt", "-m", "256", "-nographic", "-no-reboot", "-nic", "none",
         "-kernel", str(kit.kernel), "-initrd", str(initrd),
         "-append", f"console=ttyAMA0 panic=-1 {cmdline}"],
        capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    out = proc.stdout.replace("\r", "")
    assert "FIRECORE-END" in out, out[-3000:] + proc.stderr[-2000:]
    return out


def parse(out: str) -> tuple[dict[str, str], dict[str, list[str]], str]:
    stats: dict[str, str] = {}
    marks: dict[str, list[str]] = {}
    body = out[out.index("FIRECORE-BEGIN") : out.index("FIRECORE-END")]
    bootlocal = body[body.index("BOOTLOCAL-BEGIN\n") + 16 : body.index("BOOTLOCAL-END")]
    for line in body.splitlines():
        key, _, rest = line.partition("|")
        if key.startswith("STAT "):
            stats[key[5:]] = rest
        elif key in ("ONBOOT", "TCZREAD", "TMPWRITE", "BUILDJSON", "PROFILEENV", "CMDLINE"):
            marks.setdefault(key, []).append(rest)
    return stats, marks, bootlocal


@pytest.mark.parametrize("mode", ["builtin", "extracted"])
def test_kernel_unpacks_overlay(
    fake_mirror: Mirror,
    kit: ArmhfKit,
    tmp_path: Path,
    mode: str,
) -> None:
    b = Build(fake_mirror, "15.0.0", tmp_path)
    b.answers.extensions.mode = mode  # type: ignore[assignment]
    b.answers.deploy.profiles = {"lab": Profile(hostname="lab-1", env={"ROLE": "bench"})}
    b.run()
    out = b.out
    profile = out / "profiles" / "lab"
    config_line = next(
        ln
        for ln in (profile / "config.txt").read_text().splitlines()
        if ln.startswith("initramfs") and "-v7.gz" in ln
    )  # what a Pi 3 with that profile loads
    files = config_line.split()[1].split(",")
    assert files[-2:] == ["overlay.gz", "pi.gz"]
    padding = []
    for part in (out / "overlay.gz", profile / "pi.gz"):
        data = part.read_bytes()
        assert len(data) % 4 == 0  # Pi 5 bootloaders before 2023-11-20 need this
        rest = zlib.decompressobj(16 + zlib.MAX_WBITS)
        rest.decompress(data)
        assert set(rest.unused_data) <= {0}
        padding.append(len(rest.unused_data))
    assert any(padding), "neither archive needed padding: change the profile's env to test it"
    initrd = tmp_path / "initrd.gz"
    parts = [
        (out / files[0]).read_bytes(),
        *((out / f).read_bytes() for f in files[1:-2]),
        tools_gz(kit),
        (out / "overlay.gz").read_bytes(),
        (profile / "pi.gz").read_bytes(),
    ]
    initrd.write_bytes(b"".join(parts))
    cmdline = (profile / "cmdline.txt").read_text().split()
    kept = [f for f in cmdline if not f.startswith(("console=", "root="))]  # qemu has its own

    stats, marks, bootlocal = parse(boot(kit, initrd, " ".join(kept)))
    assert stats["/"] == "755 0 0 directory"
    assert stats["/tmp"] == "1777 0 0 directory"
    assert stats["/opt"] == "775 0 50 directory"
    assert stats["/home/tc"] == "755 1001 50 directory"
    assert stats["/home/tc/.ssh"] == "700 1001 50 directory"
    assert stats["/home/tc/.ssh/authorized_keys"] == "600 1001 50 regular file"
    assert stats["/usr/local/tce.installed"] == "775 0 50 directory"
    assert stats["/opt/bootlocal.sh"] == "775 0 50 regular file"
    assert stats["/opt/firecore/app/main.py"] == "644 0 0 regular file"
    assert stats["/opt/firecore/boot.sh"] == "755 0 0 regular file"
    assert marks["TMPWRITE"] == ["ok"]  # tc can still write /tmp (tce-bootload's log)
    info = json.loads(marks["BUILDJSON"][0])
    assert info["build_id"] == b.result().build_id
    # pi.gz, behind overlay.gz's zero padding, was unpacked too
    assert stats["/opt/firecore/profile.env"] == "644 0 0 regular file"
    assert "FIRECORE_HOSTNAME='lab-1'" in marks["PROFILEENV"][0]
    # booted with `base`: piCore's tce-setup still loads /tmp/builtin first (it checks base
    # only before scanning disks for a tce/ directory), so the builtins are in place for it
    flags = marks["CMDLINE"][0].split()
    assert {"base", "norestore", "nortc", "host=lab-1", "noembed"} <= set(flags)
    lines = bootlocal.splitlines()
    assert "/usr/local/etc/init.d/openssh start" in lines
    assert lines[-1] == "/opt/firecore/boot.sh &"
    if mode == "builtin":
        assert stats["/tmp/builtin/onboot.lst"] == "644 0 0 regular file"
        assert marks["ONBOOT"] == ["openssh.tcz myapp.tcz "]
        staged = {
            k.rsplit("/", 1)[1]: v
            for k, v in stats.items()
            if k.startswith("/tmp/builtin/optional/") and k.endswith(".tcz")
        }
        assert {"openssh.tcz", "openssl.tcz", "myapp.tcz"} <= set(staged)
        assert all(v == "644 0 0 regular file" for v in staged.values())
        # user tc (as tce-bootload runs) can read every staged TCZ and its md5 checks
        assert len(marks["TCZREAD"]) == len(staged)
        assert all(r.endswith(": OK") for r in marks["TCZREAD"]), marks["TCZREAD"]
    else:
        assert "No such file" in stats["/tmp/builtin"]
        assert stats["/usr/local/tce.installed/openssh"].endswith("regular file")
        assert stats["/opt/firecore/tce-setup.sh"] == "755 0 0 regular file"
        assert lines[1] == "/opt/firecore/tce-setup.sh"


def test_kernel_boots_the_files_taken_out_of_the_sd_image(
    fake_mirror: Mirror, kit: ArmhfKit, tmp_path: Path
) -> None:
    """build.sd_image: what a Pi without netboot reads from the card boots the same system."""
    b = Build(fake_mirror, "15.0.0", tmp_path)
    b.answers.build.sd_image = True
    b.run()
    image = b.result().sd_image
    assert image is not None
    card = read_back(image, tmp_path / "card").files
    config_line = next(
        ln
        for ln in card["config.txt"].decode().splitlines()
        if ln.startswith("initramfs") and "-v7.gz" in ln
    )  # what a Pi 3 loads from the card
    names = config_line.split()[1].split(",")
    assert names[-1] == "overlay.gz"
    initrd = tmp_path / "initrd.gz"
    initrd.write_bytes(b"".join([*(card[n] for n in names[:-1]), tools_gz(kit), card[names[-1]]]))

    stats, marks, _ = parse(boot(kit, initrd))
    assert stats["/"] == "755 0 0 directory"
    assert stats["/tmp"] == "1777 0 0 directory"
    assert stats["/opt/firecore/boot.sh"] == "755 0 0 regular file"
    assert json.loads(marks["BUILDJSON"][0])["build_id"] == b.result().build_id
