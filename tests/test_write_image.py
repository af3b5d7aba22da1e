"""write-image: to a file and to a real loop device, verified; the unsafe cases refused."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from steps.answers import default_answers
from steps.base import StepContext
from steps.errors import Cancelled
from steps.events import Progress, drive
from steps.host.blockdev import inspect, refusals
from steps.picore.sdcard import CardFile, write_card
from steps.write_image import UnsafeTarget, WriteImageStep, check_target
from tests.conftest import needs_root
from tests.support.cards import read_back
from wizard.cli import main


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small real card image (MBR + FAT32)."""
    tmp = tmp_path_factory.mktemp("img")
    files = [
        CardFile("config.txt", data=b"[all]\n"),
        CardFile("kernel.img", data=os.urandom(3 << 20)),
    ]
    drive(write_card("t", files, tmp / "card.img", label="FIRECORE", serial=5, mtime=0))
    return tmp / "card.img"


def test_write_to_a_file_verifies(
    image: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "out.img"
    assert main(["write-image", str(image), "--device", str(target), "--json"]) == 0
    assert target.read_bytes() == image.read_bytes()
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    result = next(o for o in lines if o["type"] == "result")
    assert result["data"]["verified"] and result["data"]["bytes"] == image.stat().st_size
    phases = {o["phase"] for o in lines if o["type"] == "progress"}
    assert phases == {"write", "verify"}
    # an existing file is overwritten only when confirmed; without a terminal: --yes
    target.write_bytes(b"x" * 10_000_000)
    assert main(["write-image", str(image), "--device", str(target)]) == 2
    assert "--yes" in capsys.readouterr().err
    assert len(target.read_bytes()) == 10_000_000
    assert main(["write-image", str(image), "--device", str(target), "--yes"]) == 0
    assert target.read_bytes() == image.read_bytes()  # longer old content is cut


def test_interrupted_write_says_the_card_is_incomplete(image: Path, tmp_path: Path) -> None:
    ctx = StepContext(answers=default_answers())
    step = WriteImageStep(image, tmp_path / "out.img")
    with pytest.raises(Cancelled, match="incomplete image"):
        for event in step.run(ctx):
            if isinstance(event, Progress) and event.done > 0:
                ctx.cancel.set()


@pytest.mark.parametrize(
    ("device", "match"),
    [("/dev/null", "neither a block device"), ("/dev/sdzz9", "does not exist")],
)
def test_refuses_what_is_not_a_disk(image: Path, device: str, match: str) -> None:
    with pytest.raises(UnsafeTarget, match=match):
        check_target(image, Path(device))
    assert main(["write-image", str(image), "--device", device, "--yes"]) == 2


def test_a_target_that_cannot_be_opened_is_a_clear_step_failure(
    image: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "no-such-dir" / "out.img"
    assert main(["write-image", str(image), "--device", str(target)]) == 1
    err = capsys.readouterr().err
    assert f"cannot open {target} for writing" in err and "directory must exist" in err


def test_bad_usage(image: Path, tmp_path: Path) -> None:
    assert main(["write-image", str(tmp_path / "none.img"), "--device", "/dev/null"]) == 2
    assert main(["write-image", str(image), "--device", str(image), "--yes"]) == 2
    assert main(["write-image", str(image)]) == 2  # --device is required


def _root_disk() -> Path:
    """The block device the running system is mounted from (only ever inspected)."""
    dev = os.stat("/").st_dev
    entry = Path(f"/sys/dev/block/{os.major(dev)}:{os.minor(dev)}")
    if (entry / "partition").exists():
        entry = entry.resolve().parent
    return Path("/dev") / entry.resolve().name


def test_the_system_disk_is_refused_even_with_force(image: Path) -> None:
    disk = _root_disk()
    if not disk.exists():
        pytest.skip(f"/ is not on a block device here ({disk})")
    target = inspect(disk)
    reasons = [r.reason for r in refusals(target, image.stat().st_size)]
    assert any("mounted at" in r and "/" in r for r in reasons)
    with pytest.raises(UnsafeTarget, match="in use"):
        check_target(image, disk, force=True)  # inspection only: nothing is opened


# ---------------------------------------------------------------------- real loop devices


class Loop:
    """A loop device on a sparse file of ``size`` bytes; detached and removed on exit."""

    def __init__(self, backing: Path, size: int) -> None:
        self.backing = backing
        backing.parent.mkdir(parents=True, exist_ok=True)
        with open(backing, "wb") as fh:
            fh.truncate(size)
        proc = subprocess.run(
            ["losetup", "--find", "--show", "--partscan", str(backing)],
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            backing.unlink()
            if os.environ.get("CI"):
                pytest.fail(f"losetup failed in CI: {proc.stderr}")
            pytest.skip(f"no loop device here: {proc.stderr.strip()}")
        self.device = Path(proc.stdout.strip())

    def detach(self) -> None:
        subprocess.run(["losetup", "-d", str(self.device)], check=False)
        self.backing.unlink(missing_ok=True)


@pytest.fixture
def loops(tmp_path: Path) -> Iterator[list[Loop]]:
    needs_root()
    made: list[Loop] = []
    try:
        yield made
    finally:
        for loop in made:
            loop.detach()


def test_write_to_a_loop_device_and_refuse_it_while_mounted(
    image: Path, tmp_path: Path, loops: list[Loop], capsys: pytest.CaptureFixture[str]
) -> None:
    size = image.stat().st_size
    loop = Loop(tmp_path / "card.bin", 2 * size)
    loops.append(loop)
    dev = str(loop.device)
    assert "loop device on" in inspect(loop.device).describe()
    assert main(["write-image", str(image), "--device", dev, "--yes"]) == 0
    with open(loop.backing, "rb") as fh:
        assert fh.read(size) == image.read_bytes()
    rb = read_back(loop.backing, tmp_path / "rb")
    assert rb.files["config.txt"] == b"[all]\n"

    # a partition of it, mounted: refused (the device and the partition), --force or not
    subprocess.run(["partx", "-a", dev], capture_output=True)
    part = Path(f"{dev}p1")
    assert part.exists()
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    # ext4 rather than the card's FAT: kernels without vfat (like CI's) mount it too
    subprocess.run(["mke2fs", "-q", "-F", "-t", "ext4", str(part)], check=True)
    subprocess.run(["mount", "-o", "ro", str(part), str(mnt)], check=True)
    try:
        for args in ([dev], [dev, "--force"], [str(part)]):
            assert main(["write-image", str(image), "--device", *args, "--yes"]) == 2
        err = capsys.readouterr().err
        assert f"mounted at {mnt}" in err and "is a partition of" in err
    finally:
        subprocess.run(["umount", str(mnt)], check=False)
    subprocess.run(["partx", "-d", dev], capture_output=True)


def test_loop_devices_too_small_or_too_large(
    image: Path, tmp_path: Path, loops: list[Loop], capsys: pytest.CaptureFixture[str]
) -> None:
    small = Loop(tmp_path / "small.bin", 1 << 20)
    loops.append(small)
    huge = Loop(tmp_path / "huge.bin", 300 << 30)  # sparse: nothing is allocated
    loops.append(huge)
    assert main(["write-image", str(image), "--device", str(small.device), "--yes"]) == 2
    assert main(["write-image", str(image), "--device", str(huge.device), "--yes"]) == 2
    err = capsys.readouterr().err
    assert "use a larger card" in err and "larger than a card would be" in err
    assert main(["write-image", str(image), "--device", str(huge.device), "--yes", "--force"]) == 0
    assert (
        main(
            ["write-image", str(image), "--device", str(huge.device), "--yes", "--max-size", "400"]
        )
        == 0
    )
