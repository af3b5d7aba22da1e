"""Verified, cached downloads from piCore mirrors (httpx, a small thread pool).

Everything a build needs from a mirror goes through one ``Downloader``:

* **Failover.** ``release.mirrors`` are tried in order for each file; a mirror that times out or
  refuses connections is moved to the back for the rest of the run. Which mirror served each file
  is reported (``Got.mirror``, log lines).
* **Retries.** Connection errors and HTTP 5xx are retried with exponential backoff; a transfer that
  breaks off mid-file resumes with an HTTP ``Range`` request. A timeout moves on to the next mirror
  at once (a slow mirror stays slow).
* **Verification.** A file is written under ``partial/`` and renamed into the cache only after its
  md5 matched the published ``.md5.txt`` (and an optional content check passed). A mismatch raises
  ``ChecksumError`` naming the file and both sums, after one retry from the next mirror. A corrupt
  or partial file is never left under its final name.
* **Cache.** Verified files are content-addressed: ``downloads/objects/md5/<md5>/<name>``.
  Metadata (``.md5.txt``, ``.dep``, index files, resolved releases, and 404s) is cached per mirror
  under ``downloads/meta/``, so a second run with a warm cache makes no request at all. Set
  ``FIRECORE_REFRESH=1`` (or pass ``refresh=True``) to re-read metadata from the mirror; verified
  files whose md5 is unchanged are still reused.
* **Events.** ``fetch`` and ``meta_many`` are generators: worker threads put progress into a
  queue and the generator yields ``Progress``/``LogLine`` events, so a step can ``yield from``
  them. The cancel flag is checked between chunks; Ctrl-C removes the partial file, a network
  failure keeps it so the next run resumes it.

Environment: ``FIRECORE_REFRESH``, ``FIRECORE_CONNECT_TIMEOUT`` (seconds, default 3),
``FIRECORE_HTTP_TIMEOUT`` (read timeout, default 15).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import queue
import re
import threading
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote, unquote, urlsplit

if TYPE_CHECKING:  # imported on the first request: a run with a warm cache makes none
    import httpx

from steps.errors import Cancelled, ChecksumError, DownloadError
from steps.events import Event, LogLine, Progress, Stream
from steps.fsutil import atomic_write, disk_error
from steps.textsafe import has_control, printable, redact_url

ENV_REFRESH = "FIRECORE_REFRESH"
ENV_CONNECT_TIMEOUT = "FIRECORE_CONNECT_TIMEOUT"
ENV_READ_TIMEOUT = "FIRECORE_HTTP_TIMEOUT"

_CHUNK = 64 * 1024
_PROGRESS_EVERY = 0.1  # seconds between aggregated Progress events
_STOP_GRACE = 2.0  # seconds stopped workers get to clean up before the generator returns
_MD5 = re.compile(r"\b([0-9a-fA-F]{32})\b")
_USER_AGENT = "firecore-wizard (+https://github.com/joholl/fireCore)"

T = TypeVar("T")


class MirrorNotFound(Exception):
    """The mirror answered 404/410 for a path."""


class MirrorUnreachable(Exception):
    """The mirror did not answer usefully (timeout, connection error, 5xx after retries, 403…)."""


@dataclass(frozen=True)
class Want:
    """One file to download and how to verify it."""

    path: str
    """Path below the mirror base, e.g. "15.x/armhf/tcz/openssl.tcz"."""
    md5: str | None = None
    """Published md5 (from .md5.txt); None when the mirror publishes none."""
    size: int | None = None
    """Expected size for the progress total (listing/sizelist); None if unknown."""
    check: Callable[[Path, str], None] | None = None
    """Extra content check ``check(temp_file, name)`` before the file enters the cache; raises
    ChecksumError."""

    @property
    def name(self) -> str:
        """The file name (last path component)."""
        return self.path.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class Got:
    """A verified file in the cache."""

    path: str
    file: Path
    md5: str
    sha256: str
    size: int
    url: str
    """Where it was downloaded from (this run or the run that filled the cache)."""
    mirror: str
    cached: bool
    """True when no request was made for it in this run."""


def parse_md5(text: str, name: str = "") -> str | None:
    """The md5 from ``md5sum`` output (``<32 hex>  NAME``), or None if there is none."""
    for line in text.splitlines():
        m = _MD5.search(line)
        if m and (not name or line.rstrip().endswith(name) or len(line.split()) == 1):
            return m.group(1).lower()
    return None


def _env_float(name: str, default: float) -> float:
    try:
        value = float(os.environ.get(name, ""))
    except ValueError:
        return default
    return value if value > 0 else default


def _key(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", text).strip("_") or "_"


def safe_relpath(path: str) -> str:
    """``path`` (from a mirror, a .dep line, a listing) when it is safe below a cache directory.

    Raises:
        DownloadError: an absolute path, a ``.``/``..`` component or a control character: the
            mirror is hostile or broken, and nothing is written for it.
    """
    parts = path.lstrip("/").split("/")
    if (
        not path
        or path.startswith("/")
        or has_control(path)
        or any(p in ("", ".", "..") for p in parts[:-1])
        or parts[-1] in (".", "..")
        or len(path) > 1024
    ):
        raise DownloadError(
            f"refusing the mirror path {printable(path, 80)!r}: it would leave the cache",
            fix="the mirror (or something between it and you) serves bad names; use another "
            "mirror (https:// if it has one)",
        )
    return path


def split_credentials(mirror: str) -> tuple[str, httpx.BasicAuth | None]:
    """``http://user:pass@host/`` → (``http://host/``, its basic auth); the URL without them
    is the only one logged, cached under or written to a manifest."""
    parts = urlsplit(mirror)
    if parts.username is None and parts.password is None:
        return mirror, None
    import httpx  # only a mirror with credentials needs it before the first request

    auth = httpx.BasicAuth(unquote(parts.username or ""), unquote(parts.password or ""))
    return redact_url(mirror), auth


def _hash_file(path: Path) -> tuple[str, str, int]:
    md5, sha = hashlib.md5(), hashlib.sha256()
    size = 0
    with path.open("rb") as fh:
        while block := fh.read(1 << 20):
            md5.update(block)
            sha.update(block)
            size += len(block)
    return md5.hexdigest(), sha.hexdigest(), size


def evict(path: Path, cache_root: Path) -> bool:
    """Remove a cached download that failed a check when it was read; True if it was one.

    Verified files are content-addressed (``downloads/objects/md5/<md5>/<name>``), so a reader
    that finds other bytes there knows the copy is damaged; removing it makes the next run
    download it afresh (a pin whose object is gone is ignored).
    """
    objects = (cache_root / "downloads" / "objects").resolve()
    try:
        path.resolve().relative_to(objects)
    except ValueError:
        return False
    path.unlink(missing_ok=True)
    return True


class _Stopped(Exception):
    """Internal: the fetch generator was abandoned; workers stop quietly."""


class Downloader:
    """HTTP access to the configured mirrors, with failover, retries, verification and a cache.

    Thread-safe; one instance per step run. Use as a context manager (closes the HTTP client).
    """

    def __init__(
        self,
        mirrors: Sequence[str],
        cache_root: Path,
        *,
        cancel: threading.Event | None = None,
        step: str = "download",
        workers: int = 4,
        retries: int = 3,
        backoff: float = 0.25,
        connect_timeout: float | None = None,
        read_timeout: float | None = None,
        refresh: bool | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not mirrors:
            raise ValueError("at least one mirror is needed")
        self._mirrors: list[str] = []
        self._auth: dict[str, httpx.BasicAuth] = {}
        """Credentials per mirror: they go into the HTTP request and nowhere else."""
        for m in mirrors:
            base, auth = split_credentials(m if m.endswith("/") else m + "/")
            if auth is not None:
                self._auth[base] = auth
            if base not in self._mirrors:
                self._mirrors.append(base)
        self.root = cache_root / "downloads"
        self.cancel = cancel or threading.Event()
        self.step = step
        self.workers = max(1, workers)
        self.retries = max(1, retries)
        self.backoff = backoff
        if refresh is None:
            refresh = os.environ.get(ENV_REFRESH, "") not in ("", "0", "false", "no")
        self.refresh = refresh
        self._timeouts = (
            connect_timeout or _env_float(ENV_CONNECT_TIMEOUT, 3.0),
            read_timeout or _env_float(ENV_READ_TIMEOUT, 15.0),
        )
        self._transport = transport
        self._http: httpx.Client | None = None
        self._lock = threading.Lock()
        self._dead: list[str] = []
        self._fresh: set[Path] = set()
        self._logs: queue.SimpleQueue[LogLine] = queue.SimpleQueue()
        self._open: set[Any] = set()
        self.requests = 0
        """HTTP requests made so far (for reports and tests)."""
        self.sources: dict[str, str] = {}
        """Mirror path → mirror base URL that served it in this run."""

    # ------------------------------------------------------------------ plumbing
    def __enter__(self) -> Downloader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the HTTP connections."""
        with self._lock:
            client, self._http = self._http, None
        if client is not None:
            client.close()

    @property
    def _client(self) -> httpx.Client:
        """The HTTP client, made (and httpx imported, ~0.2 s) when the first request needs it."""
        with self._lock:
            if self._http is None:
                import httpx

                connect, read = self._timeouts
                self._http = httpx.Client(
                    timeout=httpx.Timeout(read, connect=connect),
                    follow_redirects=True,
                    headers={"User-Agent": _USER_AGENT, "Accept-Encoding": "identity"},
                    limits=httpx.Limits(max_connections=self.workers * 2),
                    transport=self._transport,
                )
            return self._http

    @property
    def mirrors(self) -> list[str]:
        """Mirrors in the order they are tried now: preferred first, unreachable ones last."""
        with self._lock:
            alive = [m for m in self._mirrors if m not in self._dead]
            return alive + [m for m in self._mirrors if m in self._dead]

    def prefer(self, mirror: str) -> None:
        """Try ``mirror`` first from now on (the one that served the release)."""
        with self._lock:
            if mirror in self._mirrors:
                self._mirrors.remove(mirror)
                self._mirrors.insert(0, mirror)

    def log(self, text: str, stream: Stream = "info") -> None:
        """Queue a log line (from any thread); ``drain`` yields it."""
        self._logs.put(LogLine(self.step, text, stream))

    def drain(self) -> Iterator[LogLine]:
        """Yield the log lines queued so far (mirror failover, retries …)."""
        while True:
            try:
                yield self._logs.get_nowait()
            except queue.Empty:
                return

    def url(self, mirror: str, path: str) -> str:
        """Full URL of ``path`` on ``mirror``."""
        return mirror + quote(path.lstrip("/"), safe="/+-._~")

    def _stopped(self, stop: threading.Event | None) -> None:
        if self.cancel.is_set():
            raise Cancelled()
        if stop is not None and stop.is_set():
            raise _Stopped()

    def _sleep(self, seconds: float, stop: threading.Event | None) -> None:
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            self._stopped(stop)
            self.cancel.wait(min(left, 0.05))
        self._stopped(stop)

    def mark_unreachable(self, mirror: str) -> None:
        """Try ``mirror`` last from now on (it timed out or refused connections)."""
        self._mark_dead(mirror)

    def _mark_dead(self, mirror: str) -> None:
        with self._lock:
            if mirror not in self._dead:
                self._dead.append(mirror)

    # ------------------------------------------------------------------ HTTP with retries
    def _attempts(
        self,
        mirror: str,
        path: str,
        body: Callable[[httpx.Response], T],
        stop: threading.Event | None = None,
        headers: Callable[[], dict[str, str]] | None = None,
    ) -> T:
        """GET ``path`` from one mirror, retrying connection errors and 5xx with backoff.

        Raises:
            MirrorNotFound: 404/410.
            MirrorUnreachable: timeouts, connection errors/5xx after the last retry, other 4xx.
        """
        import httpx

        url = self.url(mirror, path)
        auth: httpx.BasicAuth | httpx._client.UseClientDefault = self._auth.get(
            mirror, httpx.USE_CLIENT_DEFAULT
        )
        last = ""
        for attempt in range(self.retries):
            self._stopped(stop)
            try:
                with self._client.stream(
                    "GET", url, headers=headers() if headers else None, auth=auth
                ) as r:
                    stream = r.extensions.get("network_stream")
                    with self._lock:
                        self.requests += 1
                        if stream is not None:
                            self._open.add(stream)
                    try:
                        if r.status_code in (404, 410):
                            raise MirrorNotFound(f"{url}: HTTP {r.status_code}")
                        if r.status_code >= 500:
                            last = f"HTTP {r.status_code}"
                        elif r.status_code >= 400 and not (r.status_code == 416 and headers):
                            raise MirrorUnreachable(f"HTTP {r.status_code} {r.reason_phrase}")
                        else:
                            return body(r)
                    finally:
                        with self._lock:
                            self._open.discard(stream)
            except httpx.TimeoutException as exc:
                raise MirrorUnreachable(f"timed out ({type(exc).__name__})") from None
            except httpx.TransportError as exc:
                self._stopped(stop)  # a transfer cut by a cancel is not worth a retry
                last = str(exc) or type(exc).__name__
            if attempt + 1 < self.retries:
                delay = self.backoff * 2**attempt
                self.log(f"{url}: {last}; retrying in {delay:.2f} s", "warning")
                self._sleep(delay, stop)
        raise MirrorUnreachable(f"{last} (after {self.retries} attempts)")

    def get(self, mirror: str, path: str) -> bytes:
        """The body of ``path`` on one mirror (no cache, no failover): for directory listings."""
        return self._attempts(mirror, path, lambda r: r.read())

    # ------------------------------------------------------------------ metadata
    def _meta_file(self, mirror: str, path: str) -> Path:
        base = urlsplit(mirror)
        return self.root / "meta" / _key(base.netloc + base.path) / safe_relpath(path).lstrip("/")

    def _meta_cached(self, mirror: str, path: str) -> tuple[bool, bytes | None]:
        file = self._meta_file(mirror, path)
        absent = file.with_name(file.name + ".absent")
        if self.refresh and file not in self._fresh and absent not in self._fresh:
            return False, None
        with contextlib.suppress(FileNotFoundError):
            return True, file.read_bytes()
        if absent.exists():
            return True, None
        return False, None

    def _meta_store(self, mirror: str, path: str, data: bytes | None) -> None:
        file = self._meta_file(mirror, path)
        absent = file.with_name(file.name + ".absent")
        try:
            if data is None:
                atomic_write(absent, b"")
                file.unlink(missing_ok=True)
            else:
                atomic_write(file, data)
                absent.unlink(missing_ok=True)
        except OSError as exc:
            raise disk_error(file, exc) from None
        with self._lock:
            self._fresh.update((file, absent))

    def store_meta(self, mirror: str, path: str, data: bytes) -> None:
        """Cache ``data`` as the metadata file ``path`` of ``mirror`` (e.g. a resolved release)."""
        self._meta_store(mirror, path, data)

    def cached_meta(self, path: str) -> tuple[bool, bytes | None]:
        """(found, data) from the metadata cache only; data None = the mirror had no such file."""
        for mirror in self._mirrors:
            found, data = self._meta_cached(mirror, path)
            if found:
                return True, data
        return False, None

    def meta(
        self, path: str, *, missing_ok: bool = False, stop: threading.Event | None = None
    ) -> bytes | None:
        """A small metadata file (.md5.txt, .dep, index), from the cache or the first mirror.

        The first mirror that answers is authoritative: a 404 there means "no such file" (None
        when ``missing_ok``); only unreachable mirrors make it try the next one.

        Raises:
            DownloadError: no mirror answered, or the file is missing and not ``missing_ok``.
        """
        found, data = self.cached_meta(path)
        if found and (data is not None or missing_ok):
            return data
        problems: list[str] = []
        for mirror in self.mirrors:
            try:
                data = self._attempts(mirror, path, lambda r: r.read(), stop)
            except MirrorNotFound:
                self._meta_store(mirror, path, None)
                if missing_ok:
                    return None
                problems.append(f"{mirror}: not found")
                continue
            except MirrorUnreachable as exc:
                self._mark_dead(mirror)
                problems.append(f"{mirror}: {exc}")
                self.log(
                    f"mirror {mirror} failed for {path} ({exc}); trying the next one", "warning"
                )
                continue
            self._meta_store(mirror, path, data)
            with self._lock:
                self.sources[path] = mirror
            return data
        raise DownloadError(
            f"cannot fetch {path}: " + "; ".join(problems),
            fix="check the network and release.mirrors (or FIRECORE_REFRESH=1 after a mirror "
            "update)",
        )

    def meta_many(
        self, paths: Sequence[str], *, missing_ok: bool = False, phase: str = "index"
    ) -> Generator[Event, None, dict[str, bytes | None]]:
        """``meta`` for many paths in parallel, yielding progress (unit "files")."""
        todo = list(dict.fromkeys(paths))
        out: dict[str, bytes | None] = {}
        for path in list(todo):
            found, data = self.cached_meta(path)
            if found and (data is not None or missing_ok):
                out[path] = data
                todo.remove(path)
        if not todo:
            return out
        total = len(paths)
        done = total - len(todo)

        def job(path: str, stop: threading.Event, report: Callable[..., None]) -> bytes | None:
            return self.meta(path, missing_ok=missing_ok, stop=stop)

        for kind, item in self._parallel(todo, job):
            if kind == "done":
                path, data = item
                out[path] = data
                done += 1
                yield Progress(self.step, phase, done, total, "files", path.rsplit("/", 1)[-1])
            elif kind == "log":
                yield item
        return out

    # ------------------------------------------------------------------ verified files
    def _object(self, md5: str, name: str) -> Path:
        if not re.fullmatch(r"[0-9a-f]{32}", md5) or "/" in safe_relpath(name):
            raise DownloadError(f"refusing the cache name {printable(name, 80)!r} (md5 {md5!r})")
        return self.root / "objects" / "md5" / md5 / name

    def _pin_file(self, mirror: str, path: str) -> Path:
        file = self._meta_file(mirror, path)
        return file.with_name(file.name + ".pin.json")

    def _pins(self, path: str) -> Iterator[dict[str, Any]]:
        for mirror in self._mirrors:
            with contextlib.suppress(OSError, ValueError):
                yield json.loads(self._pin_file(mirror, path).read_text())

    def cached(self, want: Want) -> Got | None:
        """The verified file for ``want`` if the cache holds it (no request is made)."""
        for pin in self._pins(want.path):
            md5 = str(pin.get("md5", ""))
            if want.md5 is None and self.refresh:
                break  # nothing published to compare with: a refresh downloads it again
            if want.md5 is not None and md5 != want.md5:
                continue
            obj = self._object(md5, want.name)
            if obj.is_file() and obj.stat().st_size == pin.get("size"):
                return Got(
                    want.path,
                    obj,
                    md5,
                    str(pin["sha256"]),
                    int(pin["size"]),
                    str(pin.get("url", "")),
                    str(pin.get("mirror", "")),
                    True,
                )
        if want.md5 is not None:
            obj = self._object(want.md5, want.name)
            if obj.is_file():
                # in the cache under its md5, but no record for these mirrors (another mirror
                # or an older run put it there): read it once and record it, so the next
                # lookup, in this run or the next, trusts the record like any other
                md5, sha, size = _hash_file(obj)
                if md5 == want.md5:
                    pin = {"md5": md5, "sha256": sha, "size": size, "url": "", "mirror": ""}
                    with contextlib.suppress(OSError):  # a read-only cache still serves
                        atomic_write(
                            self._pin_file(self._mirrors[0], want.path),
                            json.dumps(pin, indent=1) + "\n",
                        )
                    return Got(want.path, obj, want.md5, sha, size, "", "", True)
                obj.unlink(missing_ok=True)  # damaged: hash-named, so this is certain
        return None

    def _partial(self, want: Want) -> Path:
        safe_relpath(want.path)
        key = want.md5 or hashlib.sha1(want.path.encode()).hexdigest()[:16]
        return self.root / "partial" / f"{key}-{want.name}.part"

    def _transfer(
        self,
        mirror: str,
        want: Want,
        part: Path,
        report: Callable[[int, int | None], None],
        stop: threading.Event,
    ) -> None:
        """Download (or resume) ``want`` from one mirror into ``part``."""

        def headers() -> dict[str, str]:
            offset = part.stat().st_size if part.exists() else 0
            return {"Range": f"bytes={offset}-"} if offset else {}

        def body(r: httpx.Response) -> None:
            import httpx

            offset = part.stat().st_size if part.exists() else 0
            if r.status_code == 416:  # our partial is already complete (or bogus): start over
                part.unlink(missing_ok=True)
                raise httpx.ReadError("range not satisfiable; restarting")
            append = r.status_code == 206 and _range_start(r) == offset and offset > 0
            pos = offset if append else 0
            length = r.headers.get("content-length")
            total = pos + int(length) if length and length.isdigit() else want.size
            if append:
                self.log(f"{want.name}: resuming at byte {offset} from {mirror}")
            report(pos, total)
            try:
                with part.open("ab" if append else "wb") as fh:
                    for chunk in r.iter_raw():  # unbuffered: a drop keeps every byte received
                        self._stopped(stop)
                        fh.write(chunk)
                        pos += len(chunk)
                        report(pos, total)
            except OSError as exc:
                raise disk_error(part, exc) from None

        self._attempts(mirror, want.path, body, stop, headers)

    def _store(self, mirror: str, want: Want, part: Path) -> Got:
        """Verify ``part`` and move it to its content address."""
        md5, sha, size = _hash_file(part)
        url = self.url(mirror, want.path)
        if want.md5 is not None and md5 != want.md5:
            part.unlink(missing_ok=True)
            raise ChecksumError(want.name, want.md5, md5, source=url)
        if want.check is not None:
            try:
                want.check(part, want.name)
            except BaseException:
                part.unlink(missing_ok=True)
                raise
        obj = self._object(md5, want.name)
        try:
            obj.parent.mkdir(parents=True, exist_ok=True)
            os.replace(part, obj)
            pin = {"md5": md5, "sha256": sha, "size": size, "url": url, "mirror": mirror}
            atomic_write(self._pin_file(mirror, want.path), json.dumps(pin, indent=1) + "\n")
        except OSError as exc:
            raise disk_error(obj, exc) from None
        with self._lock:
            self.sources[want.path] = mirror
        return Got(want.path, obj, md5, sha, size, url, mirror, False)

    def _fetch_one(
        self, want: Want, stop: threading.Event, report: Callable[[int, int | None], None]
    ) -> Got:
        order = self.mirrors
        tries = list(order)
        problems: list[str] = []
        mismatch: ChecksumError | None = None
        part = self._partial(want)
        part.parent.mkdir(parents=True, exist_ok=True)
        try:
            while tries:
                mirror = tries.pop(0)
                try:
                    self._transfer(mirror, want, part, report, stop)
                    return self._store(mirror, want, part)
                except MirrorNotFound:
                    problems.append(f"{mirror}: not found")
                except MirrorUnreachable as exc:
                    self._mark_dead(mirror)
                    problems.append(f"{mirror}: {exc}")
                    if tries:
                        self.log(
                            f"mirror {mirror} failed for {want.name} ({exc}); trying {tries[0]}",
                            "warning",
                        )
                except ChecksumError as exc:
                    if mismatch is not None:
                        raise
                    mismatch = exc
                    nxt = order[(order.index(mirror) + 1) % len(order)]
                    self.log(f"{exc.message}; retrying once from {nxt}", "warning")
                    tries = [nxt]
        except (Cancelled, _Stopped):
            part.unlink(missing_ok=True)
            raise
        if mismatch is not None:
            raise mismatch
        raise DownloadError(
            f"{want.name} could not be downloaded: " + "; ".join(problems),
            fix="check the network and release.mirrors; run again to resume",
        )

    def fetch(
        self, wants: Sequence[Want], *, phase: str = "download"
    ) -> Generator[Event, None, dict[str, Got]]:
        """Download and verify ``wants`` (cached ones make no request), yielding progress.

        Returns:
            Mirror path → ``Got`` for every want.

        Raises:
            ChecksumError: a file's md5 did not match, also after the retry.
            DownloadError: a file was not found or no mirror answered.
            Cancelled: the cancel flag was set (partial files are removed).
        """
        unique = list({w.path: w for w in wants}.values())
        out: dict[str, Got] = {}
        todo: list[Want] = []
        for want in unique:
            hit = self.cached(want)
            if hit is not None:
                out[want.path] = hit
            else:
                todo.append(want)
        if out:
            yield LogLine(self.step, f"{len(out)} verified file(s) already in the cache")
        if not todo:
            return out
        sizes = {w.path: w.size or 0 for w in todo}
        done = dict.fromkeys(sizes, 0)
        files_done = 0
        last = 0.0

        def job(
            want: Want, stop: threading.Event, report: Callable[[str, int, int | None], None]
        ) -> Got:
            return self._fetch_one(want, stop, lambda pos, tot: report(want.path, pos, tot))

        shown = -1
        for kind, item in self._parallel(todo, job):
            if kind == "pos":
                path, pos, total = item
                done[path] = pos
                if total:
                    sizes[path] = max(total, pos)
            elif kind == "done":
                want, got = item
                done[want.path] = sizes[want.path] = got.size
                files_done += 1
                yield LogLine(
                    self.step, f"{want.name}: {got.size} bytes from {got.mirror}, md5 {got.md5} ok"
                )
                out[want.path] = got
            elif kind == "log":
                yield item
            now = time.monotonic()
            total_done = sum(done.values())
            if kind == "done" or (total_done != shown and now - last >= _PROGRESS_EVERY):
                last, shown = now, total_done
                message = f"{files_done}/{len(todo)} files"
                yield Progress(
                    self.step, phase, total_done, sum(sizes.values()) or None, "bytes", message
                )
        return out

    def _parallel(
        self, items: Sequence[T], job: Callable[[T, threading.Event, Callable[..., None]], Any]
    ) -> Iterator[tuple[str, Any]]:
        """Run ``job`` over ``items`` on at most ``workers`` threads, yielding what happens.

        Yields ("pos", args of report), ("done", (item, result)), ("log", LogLine) and ("idle",
        None) every 50 ms without news. The first failure, or the cancel flag, stops the other
        workers: open transfers are cut (their sockets shut down, so a stalled read returns at
        once) and the workers get a moment to remove their partial files. Workers are daemon
        threads, so one stuck in a connect cannot keep the program from exiting.
        """
        events: queue.Queue[tuple[str, Any]] = queue.Queue()
        work: queue.Queue[T] = queue.Queue()
        for item in items:
            work.put(item)
        stop = threading.Event()

        def report(*args: Any) -> None:
            events.put(("pos", args))

        def worker() -> None:
            while not stop.is_set():
                try:
                    item = work.get_nowait()
                except queue.Empty:
                    return
                try:
                    result = job(item, stop, report)
                except BaseException as exc:
                    events.put(("error", exc))
                else:
                    events.put(("done", (item, result)))

        threads = [
            threading.Thread(target=worker, name=f"{self.step}-download-{i}", daemon=True)
            for i in range(min(self.workers, len(items)))
        ]
        errors: list[BaseException] = []
        try:
            for thread in threads:
                thread.start()
            remaining = len(items)
            while remaining:
                yield from (("log", line) for line in self.drain())
                try:
                    kind, got = events.get(timeout=0.05)
                except queue.Empty:
                    if self.cancel.is_set():
                        raise Cancelled() from None
                    yield "idle", None
                    continue
                if kind == "error":
                    errors.append(got)
                    break
                if kind == "done":
                    remaining -= 1
                yield kind, got
            yield from (("log", line) for line in self.drain())
        finally:
            stop.set()
            self._abort_transfers()
            deadline = time.monotonic() + _STOP_GRACE
            for thread in threads:
                thread.join(max(0.0, deadline - time.monotonic()))
        while True:
            try:
                kind, got = events.get_nowait()
            except queue.Empty:
                break
            if kind == "error":
                errors.append(got)
        if errors:
            raise _first_error(errors) from None

    def _abort_transfers(self) -> None:
        """Shut down the sockets of open transfers (wakes up reads blocked in another thread)."""
        import socket  # loaded by then with the HTTP client; a cached run never gets here

        with self._lock:
            streams = list(self._open)
        for stream in streams:
            sock = stream.get_extra_info("socket") if hasattr(stream, "get_extra_info") else None
            if isinstance(sock, socket.socket):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


def _first_error(errors: Sequence[BaseException]) -> BaseException:
    """The most telling of the workers' errors: Cancelled first, then a real failure."""
    for exc in errors:
        if isinstance(exc, Cancelled):
            return exc
    for exc in errors:
        if not isinstance(exc, _Stopped):
            return exc
    return Cancelled()


def _range_start(r: httpx.Response) -> int | None:
    m = re.match(r"bytes (\d+)-", r.headers.get("content-range", ""))
    return int(m.group(1)) if m else None
