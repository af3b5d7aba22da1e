"""The write-image step: a card image onto an SD card (or a file), then read back and verified.

Safety first (``steps.host.blockdev``): the target is inspected again right before it is opened
and every refusal stops the step (``--force`` overrides only "not removable" and "larger than a
card"). A block device is opened with ``O_EXCL``, so the kernel itself refuses one that is
mounted or otherwise in use. Confirming with the user is the front end's job (``describe``
names the device, its model and size), done once before the step runs.

The image is copied in 4 MiB chunks with progress, ``fsync``-ed, its page cache dropped
(``posix_fadvise(DONTNEED)``) so the read-back comes from the card and not from memory, read
back and compared by sha256, then everything is synced. Only a verified card is reported as
written; any failure (an I/O error, a short card, a mismatch, Ctrl-C) says that the card now
holds an incomplete image.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from steps.base import StepContext
from steps.errors import Cancelled, StepError, UsageError
from steps.events import Event, LogLine, Progress, Result
from steps.host.blockdev import DEFAULT_MAX_SIZE, Target, inspect, refusals
from steps.units import human_size

NAME = "write_image"
CHUNK = 4 << 20
_BLKRRPART = 0x125F  # <linux/fs.h>: re-read the partition table


class UnsafeTarget(UsageError):
    """Writing there could destroy something: the device is refused (exit code 2)."""

    title = "Refused"


@dataclass(frozen=True)
class WriteResult:
    """A card written and verified."""

    image: Path
    target: Path
    description: str
    bytes: int
    sha256: str

    def to_data(self) -> dict[str, Any]:
        return {
            "image": str(self.image),
            "target": str(self.target),
            "description": self.description,
            "bytes": self.bytes,
            "sha256": self.sha256,
            "verified": True,
        }


def check_target(
    image: Path, device: Path, *, force: bool = False, max_size: int = DEFAULT_MAX_SIZE
) -> Target:
    """The inspected target, if writing ``image`` to it is allowed.

    Raises:
        UsageError: the image is missing or empty.
        UnsafeTarget: the first refusal that applies (forceable ones only without ``force``).
    """
    try:
        size = image.stat().st_size
    except OSError as exc:
        raise UsageError(f"image {image}: {exc.strerror}", fix="give the path of a .img") from None
    if size == 0 or not image.is_file():
        raise UsageError(f"{image} is not a non-empty image file", fix="give the path of a .img")
    if device.resolve() == image.resolve():
        raise UsageError(f"{device} is the image itself", fix="give the card's device")
    target = inspect(device)
    for refusal in refusals(target, size, max_size=max_size):
        if refusal.forceable and force:
            continue
        extra = " (--force does not override this)" if not refusal.forceable and force else ""
        raise UnsafeTarget(refusal.reason + extra, fix=refusal.fix)
    return target


class WriteImageStep:
    """Write ``image`` to ``device`` and verify it (see the module docstring)."""

    name = NAME
    title = "Write card"

    def __init__(
        self, image: Path, device: Path, *, force: bool = False, max_size: int = DEFAULT_MAX_SIZE
    ) -> None:
        self.image = image
        self.device = device
        self.force = force
        self.max_size = max_size

    def run(self, ctx: StepContext) -> Iterator[Event]:
        """Check, write, verify, sync; Result data is ``WriteResult.to_data()``."""
        target = check_target(self.image, self.device, force=self.force, max_size=self.max_size)
        total = self.image.stat().st_size
        label = target.describe()
        yield LogLine(NAME, f"writing {self.image.name} ({human_size(total)}) to {label}")
        if ctx.dry_run:
            return
        digest = yield from self._write(ctx, target, total)
        yield from self._verify(ctx, total, digest)
        os.sync()
        if target.kind in ("disk", "loop"):
            self._reread_partitions()
        result = WriteResult(self.image, self.device, label, total, digest)
        ctx.results.put(result)
        yield Result(
            NAME,
            f"wrote and verified {human_size(total)} on {label}; it is safe to remove",
            result.to_data(),
        )

    def _incomplete(self, what: str) -> str:
        return f"{what}: {self.device} now holds an incomplete image"

    def _write(self, ctx: StepContext, target: Target, total: int) -> Generator[Event, None, str]:
        if target.kind == "file":
            flags = os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC
        else:
            flags = os.O_WRONLY | os.O_EXCL | os.O_CLOEXEC  # EBUSY while mounted or in use
        try:
            fd = os.open(self.device, flags, 0o644)
        except OSError as exc:
            fix = (
                "check the path: its directory must exist and be writable"
                if target.kind == "file"
                else "unmount it / close what uses it, and run as root for a device (sudo)"
            )
            raise StepError(
                f"cannot open {self.device} for writing: {exc.strerror}", fix=fix
            ) from None
        sha = hashlib.sha256()
        done = 0
        try:
            if target.kind == "file":
                os.ftruncate(fd, 0)
            yield Progress(NAME, "write", 0, total, "bytes", str(self.device))
            with open(self.image, "rb") as src:
                while chunk := src.read(CHUNK):
                    if ctx.cancel.is_set():
                        raise Cancelled(self._incomplete("interrupted"))
                    view = memoryview(chunk)
                    while view:
                        written = os.write(fd, view)
                        view = view[written:]
                    sha.update(chunk)
                    done += len(chunk)
                    yield Progress(NAME, "write", done, total, "bytes", str(self.device))
            yield LogLine(NAME, "flushing to the card (fsync)")
            os.fsync(fd)
            with contextlib.suppress(OSError):
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        except OSError as exc:
            raise StepError(
                self._incomplete(f"writing failed at byte {done}: {exc.strerror}"),
                fix="write it again; if it fails again, the card is faulty",
            ) from None
        finally:
            os.close(fd)
        return sha.hexdigest()

    def _verify(self, ctx: StepContext, total: int, digest: str) -> Iterator[Event]:
        sha = hashlib.sha256()
        done = 0
        try:
            with open(self.device, "rb", buffering=0) as dev:
                with contextlib.suppress(OSError):
                    os.posix_fadvise(dev.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
                while done < total:
                    if ctx.cancel.is_set():
                        raise Cancelled(f"interrupted while verifying {self.device}")
                    chunk = dev.read(min(CHUNK, total - done))
                    if not chunk:
                        break
                    sha.update(chunk)
                    done += len(chunk)
                    yield Progress(NAME, "verify", done, total, "bytes", str(self.device))
        except OSError as exc:
            raise StepError(
                self._incomplete(f"reading it back failed at byte {done}: {exc.strerror}"),
                fix="write it again; if it fails again, the card is faulty",
            ) from None
        if done != total or sha.hexdigest() != digest:
            raise StepError(
                self._incomplete(
                    f"the read-back differs from the image (read {done} of {total} bytes)"
                ),
                fix="write it again; a card that keeps failing is faulty or fake-capacity",
            )
        yield LogLine(NAME, f"verified: sha256 {digest}")

    def _reread_partitions(self) -> None:
        """Let the kernel see the card's new partition table (best effort)."""
        with contextlib.suppress(OSError):
            fd = os.open(self.device, os.O_RDONLY | os.O_CLOEXEC)
            try:
                fcntl.ioctl(fd, _BLKRRPART)
            except OSError:
                pass
            finally:
                os.close(fd)
