"""Writing files so that a failure or Ctrl-C never leaves a half-written result; their digests.

Every output goes to a temporary name in the same directory and is renamed into place only when
complete (rename is atomic within a filesystem). Directory trees are built in a sibling staging
directory and swapped in with ``renameat2(RENAME_EXCHANGE)`` where the kernel offers it, so the
old tree stays whole until the new one is in place.

``KnownDigests`` remembers the sha256 of files it has read or written, keyed by their identity
(device, inode, size, mtime, ctime) — the check git's index and rsync make: a no-change rebuild
does not read back tens of megabytes it wrote itself. Changing a file's bytes changes its ctime,
which no user tool can set back; a file changed within ``RACY_NS`` of being recorded is read
again anyway (file times come from a clock coarser than the one the record uses).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import functools
import hashlib
import json
import os
import shutil
import stat
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from steps.errors import Cancelled, StepError

if TYPE_CHECKING:
    import ctypes

_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


@functools.cache
def _libc() -> ctypes.CDLL | None:
    """libc, for ``renameat2``: loaded at the first swap (a run that swaps no tree skips ctypes)."""
    import ctypes
    import ctypes.util

    try:  # glibc's soname: find_library would run ldconfig at every start-up
        return ctypes.CDLL("libc.so.6", use_errno=True)
    except OSError:  # pragma: no cover - not glibc
        pass
    try:  # pragma: no cover
        return ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    except OSError:  # pragma: no cover
        return None


def disk_error(path: Path | str, exc: OSError) -> StepError:
    """A StepError for an OSError while writing, with the fix for the common causes."""
    if exc.errno == errno.ENOSPC:
        return StepError(
            f"no space left on the device while writing {path}",
            fix="free some space (or point the path at a larger filesystem) and run again",
        )
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return StepError(
            f"cannot write {path}: {exc.strerror}",
            fix="choose a writable location or run with the needed permissions",
        )
    return StepError(f"cannot write {path}: {exc.strerror or exc}")


def atomic_write(path: Path, data: bytes | str, mode: int = 0o644) -> None:
    """Write ``data`` to ``path`` via a temporary file + fsync + rename."""
    payload = data.encode() if isinstance(data, str) else data
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def staging_dir(final: Path) -> Iterator[Path]:
    """A fresh empty directory next to ``final``; removed again if the block fails."""
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.staging-", dir=final.parent))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths (Linux renameat2); False where the kernel cannot."""
    libc = _libc()
    if libc is None or not hasattr(libc, "renameat2"):
        return False
    res = libc.renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    if res == 0:
        return True
    import ctypes  # loaded by _libc() above

    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):
        return False
    raise OSError(err, os.strerror(err), str(b))


def replace_dir(staged: Path, final: Path) -> None:
    """Put the complete tree ``staged`` at ``final``, replacing what was there.

    The previous tree is swapped out atomically when possible (else renamed aside first), then
    deleted; at no point is ``final`` a partial tree.
    """
    if final.is_symlink() or final.exists():
        if exchange(staged, final):
            shutil.rmtree(staged, ignore_errors=True)
            return
        aside = final.with_name(f".{final.name}.old-{os.getpid()}-{time.monotonic_ns()}")
        os.rename(final, aside)
        try:
            os.rename(staged, final)
        except BaseException:
            os.rename(aside, final)
            raise
        shutil.rmtree(aside, ignore_errors=True)
    else:
        os.rename(staged, final)


def backup(path: Path, backup_dir: Path | None = None) -> Path | None:
    """Copy ``path`` to a timestamped backup before it is replaced; None if it did not exist."""
    if not path.exists():
        return None
    target_dir = backup_dir or path.parent
    target_dir.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target = target_dir / f"{path.name}.{stamp}.bak"
    n = 1
    while target.exists():
        n += 1
        target = target_dir / f"{path.name}.{stamp}-{n}.bak"
    shutil.copy2(path, target)
    return target


@contextlib.contextmanager
def replacing_dir(final: Path) -> Iterator[Path]:
    """Build a tree in a staging directory; on success it replaces ``final`` atomically.

    On any exception (including Ctrl-C) the staging tree is removed and ``final`` is untouched.
    """
    with staging_dir(final) as tmp:
        yield tmp
        replace_dir(tmp, final)


def md5_file(path: Path) -> str:
    """md5 hex of a file (piCore publishes md5 sums for its images and TCZs)."""
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "md5").hexdigest()


@contextlib.contextmanager
def hold_lock(
    lock: Path,
    *,
    wait: float,
    busy: Callable[[str], StepError],
    cancel: threading.Event | None = None,
) -> Iterator[None]:
    """Hold an flock on ``lock`` (created 0644, never through a symlink) for the block.

    Waits up to ``wait`` seconds for another holder; then raises ``busy(holder_pid)``. The lock
    file is opened with O_NOFOLLOW: a symlink planted in its place is refused (ELOOP), never
    followed to truncate its target.
    """
    try:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise StepError(
                f"{lock} is a symlink: it is not opened (it would write its target)",
                fix=f"remove it (`rm {lock}`) and run again",
            ) from None
        raise disk_error(lock, exc) from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise StepError(f"{lock} is not a regular file", fix=f"remove {lock}")
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if cancel is not None and cancel.is_set():
                    raise Cancelled() from None
                if time.monotonic() >= deadline:
                    holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "?"
                    raise busy(holder) from None
                time.sleep(0.05)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def clean_staging(final: Path) -> list[Path]:
    """Remove the staging and set-aside trees a killed run left beside ``final``.

    Only directories named as ``staging_dir``/``replace_dir`` name them, never through a
    symlink; call it while holding ``final``'s lock (another run's staging is then not live).
    """
    removed: list[Path] = []
    try:
        entries = list(final.parent.iterdir())
    except OSError:
        return removed
    for p in entries:
        if not p.name.startswith((f".{final.name}.staging-", f".{final.name}.old-")):
            continue
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
            removed.append(p)
    return removed


def overlaps(a: Path, b: Path) -> bool:
    """True when one of the two directories is the other or inside it (real paths)."""
    ra, rb = a.resolve(), b.resolve()
    return ra == rb or ra in rb.parents or rb in ra.parents


def sha256_file(
    path: Path,
    *,
    cancel: threading.Event | None = None,
    progress: Callable[[int], None] | None = None,
) -> str:
    """sha256 hex of a file, read in 1 MiB chunks; checks ``cancel`` and reports bytes read."""
    h = hashlib.sha256()
    done = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            if cancel is not None and cancel.is_set():
                raise Cancelled()
            h.update(chunk)
            done += len(chunk)
            if progress is not None:
                progress(done)
    return h.hexdigest()


#: A file whose mtime or ctime is this close to when its digest was recorded is read again
#: (file times tick with the kernel's coarse clock, a few milliseconds).
RACY_NS = 20_000_000


def settle(changed_ns: int) -> None:
    """Wait out the racy window of files last changed before ``changed_ns`` (``time.time_ns()``).

    A digest recorded after this is trusted by the next run (``KnownDigests.known``) instead of
    the file being read again. A build calls it once, just before its new tree becomes visible:
    at most ``RACY_NS`` of waiting then spares the first rerun re-reading every file it wrote
    in that window (tens of megabytes).
    """
    delay = changed_ns + RACY_NS - time.time_ns()
    if delay > 0:
        time.sleep(delay / 1e9)


def _identity(st: os.stat_result) -> list[int]:
    return [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]


def load_cache_json(path: Path) -> dict[str, Any]:
    """A JSON object kept in the cache, or {} if it is missing, unreadable or not an object."""
    with contextlib.suppress(OSError, ValueError):
        data = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(data, dict):
            return data
    return {}


def save_cache_json(path: Path, data: Mapping[str, Any]) -> None:
    """Write a cache's JSON object, renamed into place; a cache needs no fsync, and a cache that
    cannot be written only costs the work it would have saved."""
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, separators=(",", ":")), encoding="utf-8")
        os.replace(tmp, path)


class KnownDigests:
    """sha256 of files, remembered in ``store`` (JSON) while each file is unchanged.

    Not thread-safe; one instance per step run. ``save`` writes the store atomically (a store
    lost to a concurrent run only costs a re-read).
    """

    def __init__(self, store: Path) -> None:
        self.store = store
        self._known: dict[str, list[Any]] = load_cache_json(store)
        self._dirty = False

    def known(self, path: Path) -> str | None:
        """The remembered sha256 of ``path`` if the file is still the one recorded, else None."""
        entry = self._known.get(os.fspath(path))
        if not entry:
            return None
        try:
            st = os.stat(path)
        except OSError:
            return None
        try:
            identity, sha, seen = entry[:5], str(entry[5]), int(entry[6])
        except (IndexError, TypeError, ValueError):
            return None  # not an entry this class wrote: read the file
        if identity != _identity(st) or max(st.st_mtime_ns, st.st_ctime_ns) + RACY_NS > seen:
            return None
        return sha

    def record(self, path: Path, sha256: str, st: os.stat_result | None = None) -> None:
        """Remember that ``path`` (as ``st``, else as it is now) holds bytes with this sha256."""
        try:
            st = st or os.stat(path)
        except OSError:
            return
        self._known[os.fspath(path)] = [*_identity(st), sha256, time.time_ns()]
        self._dirty = True

    def sha256(
        self,
        path: Path,
        *,
        cancel: threading.Event | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> str:
        """``sha256_file`` unless the digest is known; reading it records it."""
        sha = self.known(path)
        if sha is not None:
            if progress is not None:
                progress(os.stat(path).st_size)
            return sha
        st = os.stat(path)
        sha = sha256_file(path, cancel=cancel, progress=progress)
        if _identity(os.stat(path)) == _identity(st):  # not changed while it was read
            self.record(path, sha, st)
        return sha

    def forget_under(self, root: Path) -> None:
        """Drop every entry below ``root`` (a tree that is about to be replaced)."""
        prefix = os.fspath(root).rstrip("/") + "/"
        for key in [k for k in self._known if k.startswith(prefix)]:
            del self._known[key]
            self._dirty = True

    def save(self) -> None:
        """Write the store if anything changed."""
        if not self._dirty:
            return
        save_cache_json(self.store, self._known)
        self._dirty = False
