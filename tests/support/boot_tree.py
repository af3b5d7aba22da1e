"""A small but realistic remastered boot tree, written as the remaster step writes it.

Files have the names a piCore 15 boot partition has (bootcode.bin, start*.elf, fixup*.dat, the
PI3/PI4/PI5 kernels and modules, dtbs incl. the Pi 5's two, overlays/), random bytes of modest
size, a config.txt with piCore's sections (a ``dtoverlay=`` in each, so start.elf reads
``overlays/*.dtbo``) and ``overlay.gz`` on every initramfs line, and a ``manifest.json`` in the
remaster format (``files`` → sha256 and size, ``build_id``, ``profiles``). Profiles get
``profiles/<name>/{config.txt,cmdline.txt,pi.gz}`` like the remaster step builds them.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Mapping
from pathlib import Path

CONFIG_TXT = """\
# generated test config.txt (piCore 15 layout)
[PI3]
initramfs rootfs-piCore-15.0.gz,modules-6.6.47-piCore-v7.gz,overlay.gz followkernel
kernel kernel6647v7.img

[PI4]
initramfs rootfs-piCore-15.0.gz,modules-6.6.47-piCore-v8.gz,overlay.gz followkernel
kernel kernel6647v8.img
arm_64bit=1

[PI5]
initramfs rootfs-piCore-15.0.gz,modules-6.6.47-piCore-v8.gz,overlay.gz followkernel
kernel kernel6647v8.img
arm_64bit=1

[ALL]
cmdline cmdline.txt
dtparam=audio=on

[PI4]
dtoverlay=vc4-kms-v3d-pi4

[PI5]
dtoverlay=vc4-kms-v3d
"""

CMDLINE = "console=tty1 root=/dev/ram0 rootwait quiet nortc loglevel=3 noembed norestore\n"

#: name → size in bytes (small enough for fast TFTP, big enough for many blocks)
SIZES = {
    "bootcode.bin": 52_000,
    "start.elf": 60_000,
    "fixup.dat": 7_000,
    "start4.elf": 70_000,
    "fixup4.dat": 5_400,
    "kernel6647v7.img": 90_000,
    "kernel6647v8.img": 110_000,
    "bcm2710-rpi-3-b.dtb": 30_000,
    "bcm2710-rpi-3-b-plus.dtb": 30_500,
    "bcm2711-rpi-4-b.dtb": 50_000,
    "bcm2712-rpi-5-b.dtb": 60_000,
    "bcm2712d0-rpi-5-b.dtb": 60_100,
    "rootfs-piCore-15.0.gz": 120_000,
    "modules-6.6.47-piCore-v7.gz": 40_000,
    "modules-6.6.47-piCore-v8.gz": 45_000,
    "overlay.gz": 80_000,
    "overlays/vc4-kms-v3d.dtbo": 3_000,
    "overlays/vc4-kms-v3d-pi4.dtbo": 3_100,
}


def _bytes(name: str, size: int, salt: str) -> bytes:
    rng = random.Random(f"{salt}:{name}")
    return rng.randbytes(size)


PROFILE_GZ = "pi.gz"


def profile_config(extra: list[str]) -> str:
    """A profile's config.txt: pi.gz added to every initramfs line, its lines appended."""
    text = CONFIG_TXT.replace(",overlay.gz followkernel", f",overlay.gz,{PROFILE_GZ} followkernel")
    return text + "".join(f"{line}\n" for line in ["[all]", *extra]) if extra else text


def make_build(
    out: Path,
    *,
    salt: str = "v1",
    build_id: str | None = None,
    profiles: Mapping[str, list[str]] | None = None,
    extra: Mapping[str, bytes] | None = None,
    omit: tuple[str, ...] = (),
) -> dict[str, bytes]:
    """Write a boot tree + manifest.json to ``out``; returns relative path → bytes.

    ``salt`` changes every binary's bytes (a different build); ``profiles`` maps a profile name
    to the config.txt lines it appends; ``extra`` adds or replaces files; ``omit`` leaves some out.
    """
    files: dict[str, bytes] = {
        name: _bytes(name, size, salt) for name, size in SIZES.items() if name not in omit
    }
    files["config.txt"] = CONFIG_TXT.encode()
    files["cmdline.txt"] = CMDLINE.encode()
    for name, lines in (profiles or {}).items():
        files[f"profiles/{name}/config.txt"] = profile_config(lines).encode()
        files[f"profiles/{name}/cmdline.txt"] = CMDLINE.replace(
            "norestore", f"norestore host={name}"
        ).encode()
        files[f"profiles/{name}/{PROFILE_GZ}"] = _bytes(f"profile-{name}", 2_000, salt)
    files.update(extra or {})
    for rel in omit:
        files.pop(rel, None)
    for rel, data in files.items():
        path = out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    manifest = {
        "format": 1,
        "build_id": build_id or hashlib.sha256(salt.encode()).hexdigest()[:12],
        "demo": True,
        "profiles": sorted(profiles or {}),
        "files": {
            rel: {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
            for rel, data in sorted(files.items())
        },
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return files
