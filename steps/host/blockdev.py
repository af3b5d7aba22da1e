"""The device a card image is written to: what it is, and whether writing it is safe.

Everything is read from sysfs and the kernel's mount tables, never guessed from a name:
``/sys/class/block/<name>/`` gives the size (``size``, 512-byte units), ``removable``, ``ro``,
whether it is a ``partition``, its partitions (sub-directories with a ``partition`` file), its
``holders`` (device-mapper, RAID, LVM), the model (``device/model``, ``device/vendor``; an SD
card's ``device/name``), a loop device's ``loop/backing_file``, and — through the real path of
the sysfs entry — whether it hangs off a USB bus. ``/proc/self/mountinfo`` names every mounted
file system by device number, ``/proc/swaps`` every swap device.

The rules follow Raspberry Pi Imager's: only removable media are offered (a USB drive or an SD
card counts as removable whatever its ``removable`` flag says, as a laptop's built-in SD slot
reports 0), the disk holding the running system never is, and a drive larger than a card would
be is suspicious. Here the unsafe cases are refused with the reason and the fix; the two that
can be legitimate — not removable, larger than ``max_size`` — yield to ``--force``. A mounted
device, a partition, a device in use by device-mapper/RAID, a read-only one or one smaller than
the image never do. A loop device (a file pretending to be a disk) counts as removable.
"""

from __future__ import annotations

import contextlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from steps.units import human_size

Kind = Literal["disk", "loop", "partition", "file", "other"]
#: Larger than this is not an SD card or USB stick one writes a Pi image to (unless forced).
DEFAULT_MAX_SIZE = 256 << 30


@dataclass(frozen=True)
class Target:
    """A write target as the kernel describes it."""

    path: Path
    kind: Kind
    name: str
    """Kernel name ("sdb", "mmcblk0", "loop3") or the file name."""
    size: int
    """Bytes (a file: its current size; 0 if it does not exist yet)."""
    removable: bool
    transport: str
    """"usb", "mmc", "loop", "nvme", "virtio" or "" (unknown)."""
    model: str
    mounted: tuple[str, ...] = ()
    """Mount points of the device or of any of its partitions ("[swap]" for swap)."""
    holders: tuple[str, ...] = ()
    read_only: bool = False
    backing_file: str = ""
    exists: bool = True
    disk: str = ""
    """For a partition: the kernel name of its disk."""

    def describe(self) -> str:
        """One line naming the target: path, model, size, how it is attached."""
        if self.kind == "file":
            state = human_size(self.size) if self.exists else "new file"
            return f"{self.path} (a file, {state})"
        parts = [p for p in (self.model, human_size(self.size)) if p]
        if self.kind == "loop":
            parts.append(f"loop device on {self.backing_file or 'nothing'}")
        elif self.transport:
            parts.append({"usb": "USB", "mmc": "SD/MMC card"}.get(self.transport, self.transport))
        if self.removable and self.kind != "loop":
            parts.append("removable")
        return f"{self.path} ({', '.join(parts)})"


@dataclass(frozen=True)
class Refusal:
    """Why writing to a target is unsafe, how to fix it, and whether ``--force`` may override."""

    reason: str
    fix: str
    forceable: bool = False


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return ""


def _dev_numbers(entry: Path) -> str:
    return _read(entry / "dev")  # "8:16"


def _mounts(proc_root: Path) -> dict[str, list[str]]:
    """ "major:minor" → mount points, from mountinfo (field 3 and 5)."""
    out: dict[str, list[str]] = {}
    for line in _read(proc_root / "self" / "mountinfo").splitlines():
        fields = line.split()
        if len(fields) > 4:
            point = fields[4].replace("\\040", " ")
            out.setdefault(fields[2], []).append(point)
    return out


def _swaps(proc_root: Path) -> set[str]:
    """Kernel names of the block devices used as swap."""
    names: set[str] = set()
    for line in _read(proc_root / "swaps").splitlines()[1:]:
        device = line.split()[0] if line.split() else ""
        if device.startswith("/dev/"):
            names.add(Path(os.path.realpath(device)).name)
    return names


def _transport(name: str, entry: Path) -> str:
    real = os.path.realpath(entry)
    if name.startswith("loop"):
        return "loop"
    if "/usb" in real:
        return "usb"
    if name.startswith("mmcblk"):
        return "mmc"
    if name.startswith("nvme"):
        return "nvme"
    if "/virtio" in real:
        return "virtio"
    return ""


def _model(entry: Path) -> str:
    device = entry / "device"
    words = [_read(device / "vendor"), _read(device / "model") or _read(device / "name")]
    return " ".join(w for w in words if w)


def inspect(
    path: Path, *, sys_root: Path = Path("/sys"), proc_root: Path = Path("/proc")
) -> Target:
    """What ``path`` is: a block device (whole disk, loop, partition), a file, or other."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        kind: Kind = "other" if str(path).startswith("/dev/") else "file"
        return Target(path, kind, path.name, 0, False, "", "", exists=False)
    if stat.S_ISREG(st.st_mode):
        return Target(path, "file", path.name, st.st_size, False, "", "")
    if not stat.S_ISBLK(st.st_mode):
        return Target(path, "other", path.name, 0, False, "", "")
    numbers = f"{os.major(st.st_rdev)}:{os.minor(st.st_rdev)}"
    entry = sys_root / "dev" / "block" / numbers
    name = Path(os.path.realpath(entry)).name
    size = int(_read(entry / "size") or 0) * 512
    if (entry / "partition").exists():
        disk = Path(os.path.realpath(entry)).parent.name
        return Target(path, "partition", name, size, False, "", "", disk=disk)
    children = [p for p in entry.iterdir() if (p / "partition").exists()]
    mounts = _mounts(proc_root)
    swaps = _swaps(proc_root)
    mounted: list[str] = []
    holders: list[str] = []
    for node, node_name in [(entry, name), *((c, c.name) for c in children)]:
        mounted += mounts.get(_dev_numbers(node), [])
        if node_name in swaps:
            mounted.append("[swap]")
        with contextlib.suppress(OSError):
            holders += sorted(h.name for h in (node / "holders").iterdir())
    transport = _transport(name, entry)
    removable = _read(entry / "removable") == "1" or transport in ("usb", "mmc", "loop")
    return Target(
        path=path,
        kind="loop" if name.startswith("loop") else "disk",
        name=name,
        size=size,
        removable=removable,
        transport=transport,
        model=_model(entry),
        mounted=tuple(mounted),
        holders=tuple(holders),
        read_only=_read(entry / "ro") == "1",
        backing_file=_read(entry / "loop" / "backing_file"),
    )


def refusals(target: Target, image_size: int, *, max_size: int = DEFAULT_MAX_SIZE) -> list[Refusal]:
    """Every reason not to write an image of ``image_size`` bytes to ``target``."""
    out: list[Refusal] = []
    where = target.path
    if target.kind == "other":
        if not target.exists:
            return [Refusal(f"{where} does not exist", "plug the card in and check `lsblk`")]
        return [Refusal(f"{where} is neither a block device nor a regular file", "give a disk")]
    if target.kind == "file":
        return out
    if target.kind == "partition":
        return [
            Refusal(
                f"{where} is a partition of /dev/{target.disk}; an image holds its own "
                "partition table",
                f"write to the whole device: /dev/{target.disk}",
            )
        ]
    if target.mounted:
        out.append(
            Refusal(
                f"{where} is in use: mounted at {', '.join(target.mounted)}",
                f"unmount it first (e.g. `umount {where}*`), or pick another device",
            )
        )
    if target.holders:
        out.append(
            Refusal(
                f"{where} is in use by {', '.join(target.holders)} (device-mapper, RAID, LVM)",
                "stop what uses it, or pick another device",
            )
        )
    if target.read_only:
        out.append(Refusal(f"{where} is read-only", "check the card's write-protect switch"))
    if target.size < image_size:
        out.append(
            Refusal(
                f"{where} holds {human_size(target.size)}, the image needs "
                f"{human_size(image_size)}",
                "use a larger card",
            )
        )
    if not target.removable:
        out.append(
            Refusal(
                f"{where} is not a removable device (not USB, not an SD card): it may be a "
                "system disk",
                "pick the card's device (`lsblk -o NAME,SIZE,RM,TRAN,MODEL`), or pass --force "
                "if you are sure",
                forceable=True,
            )
        )
    if target.size > max_size:
        out.append(
            Refusal(
                f"{where} is {human_size(target.size)}, larger than a card would be "
                f"(over {human_size(max_size)})",
                "check the device name, or pass --force if you are sure",
                forceable=True,
            )
        )
    return out


def candidates(sys_root: Path = Path("/sys")) -> list[Target]:
    """The removable whole disks with a medium (and bound loop devices), for a device picker."""
    out: list[Target] = []
    try:
        names = sorted(p.name for p in (sys_root / "block").iterdir())
    except OSError:
        return out
    for name in names:
        if name.startswith(("ram", "zram", "dm-", "md", "sr")):
            continue
        device = Path("/dev") / name
        if not device.exists():
            continue
        target = inspect(device, sys_root=sys_root)
        if target.kind in ("disk", "loop") and target.removable and target.size > 0:
            out.append(target)
    return out
