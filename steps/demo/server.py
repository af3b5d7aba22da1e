"""A real HTTP server for a mirror directory, with Apache-style listings and fault injection.

tinycorelinux.net is a plain Apache with autoindex, so the wizard's mirror browser must read
Apache's index pages; this server writes them the same way (``<title>Index of /15.x/armhf</title>``,
a table of links, dates, ``apr_strfsize`` sizes, names longer than 23 characters cut to
``name..&gt;`` in the link text but never in the ``href``). The ``listing`` option also gives the
older ``<pre>`` FancyIndexing form and nginx's form, so a parser can be tested against all three.

It speaks HTTP/1.1 with keep-alive, answers HEAD and single ``Range`` requests (206 +
``Content-Range``, 416 when unsatisfiable) and redirects a directory without its slash, like
Apache. For tests, ``fault(pattern, *faults)`` queues misbehaviour for matching paths — an error
status, a connection dropped after K bytes, corrupted bytes, a delay — consumed one per request,
and every request is recorded so a test can assert how many were made (``count``). All state is
guarded by one lock; handler threads are daemons and ``stop()`` releases any delayed response.
"""

from __future__ import annotations

import contextlib
import email.utils
import fnmatch
import html
import mimetypes
import posixpath
import re
import socket
import threading
import time
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Literal

Listing = Literal["apache", "apache-pre", "nginx"]
_CHUNK = 64 * 1024
_NAME_WIDTH = 23


# ---------------------------------------------------------------------- faults


@dataclass(frozen=True)
class Status:
    """Answer with this HTTP status (500, 503, 404 …) instead of the file."""

    code: int


@dataclass(frozen=True)
class Drop:
    """Send the headers (full length) and ``after`` body bytes, then close the connection."""

    after: int = 0


@dataclass(frozen=True)
class Corrupt:
    """Serve the file with the byte at ``offset`` (default: the middle) inverted; same length."""

    offset: int | None = None


@dataclass(frozen=True)
class Delay:
    """Wait ``seconds`` before answering (``after`` > 0: after sending that many body bytes)."""

    seconds: float
    after: int = 0


Fault = Status | Drop | Corrupt | Delay


@dataclass(frozen=True)
class Request:
    """One request as the server saw it."""

    method: str
    path: str
    """URL path below the served prefix, with a leading slash, unquoted ("/15.x/armhf/tcz/")."""
    status: int
    range: str | None
    fault: Fault | None


@dataclass
class _Rule:
    pattern: str
    faults: list[Fault]
    repeat_last: bool


# ---------------------------------------------------------------------- listings


def strfsize(size: int) -> str:
    """Apache's ``apr_strfsize``: "512", "4.0K", "105K", "1.2M" (as its listings show)."""
    if size < 0:
        return "  - "
    if size < 973:
        return f"{size:3d} "
    units = "KMGTPE"
    i = 0
    while True:
        remain = size & 1023
        size >>= 10
        if size >= 973:
            i += 1
            continue
        if size < 9 or (size == 9 and remain < 973):
            remain = ((remain * 5) + 256) // 512
            if remain >= 10:
                size, remain = size + 1, 0
            return f"{size}.{remain}{units[i]}"
        if remain >= 512:
            size += 1
        return f"{size:3d}{units[i]}"


@dataclass(frozen=True)
class _Entry:
    name: str
    is_dir: bool
    size: int
    mtime: float


def _icon(e: _Entry) -> tuple[str, str]:
    if e.is_dir:
        return "folder.gif", "[DIR]"
    if e.name.endswith((".zip", ".gz", ".tcz", ".xz")):
        return "compressed.gif", "[   ]"
    if e.name.endswith((".txt", ".dep", ".info", ".list", ".tree", "README")):
        return "text.gif", "[TXT]"
    return "unknown.gif", "[   ]"


def _shown(name: str) -> str:
    """Apache cuts link text to NameWidth (23) characters: "piCore64-15.0.0-beta..>"."""
    if len(name) > _NAME_WIDTH:
        return html.escape(name[: _NAME_WIDTH - 3]) + "..&gt;"
    return html.escape(name)


def render_listing(
    url_path: str, entries: Iterable[_Entry], style: Listing, host: str, port: int
) -> str:
    """The index page of the directory at ``url_path`` (which ends with "/")."""
    items = sorted(entries, key=lambda e: e.name)
    title = url_path if style == "nginx" else (url_path.rstrip("/") or "/")
    parent = posixpath.dirname(url_path.rstrip("/"))
    parent = parent if parent.endswith("/") else parent + "/"
    esc = html.escape
    if style == "nginx":
        rows = ['<a href="../">../</a>'] if url_path != "/" else []
        for e in items:
            name = e.name + ("/" if e.is_dir else "")
            stamp = time.strftime("%d-%b-%Y %H:%M", time.gmtime(e.mtime))
            size = "-" if e.is_dir else str(e.size)
            shown = name if len(name) <= 50 else name[:47] + "..>"
            pad = " " * max(1, 51 - len(shown))
            rows.append(
                f'<a href="{urllib.parse.quote(name)}">{esc(shown)}</a>{pad}{stamp}{size:>20}'
            )
        return (
            f"<html>\r\n<head><title>Index of {esc(title)}</title></head>\r\n<body>\r\n"
            f"<h1>Index of {esc(title)}</h1><hr><pre>" + "\r\n".join(rows) + "\r\n"
            "</pre><hr></body>\r\n</html>\r\n"
        )
    address = f"<address>Apache/2.4.62 (Debian) Server at {host} Port {port}</address>\n"
    head = (
        '<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 3.2 Final//EN">\n<html>\n <head>\n'
        f"  <title>Index of {esc(title)}</title>\n </head>\n <body>\n"
        f"<h1>Index of {esc(title)}</h1>\n"
    )
    if style == "apache":
        lines = [
            "  <table>",
            '   <tr><th valign="top"><img src="/icons/blank.gif" alt="[ICO]"></th>'
            '<th><a href="?C=N;O=D">Name</a></th><th><a href="?C=M;O=A">Last modified</a></th>'
            '<th><a href="?C=S;O=A">Size</a></th><th><a href="?C=D;O=A">Description</a></th></tr>',
            '   <tr><th colspan="5"><hr></th></tr>',
        ]
        if url_path != "/":
            lines.append(
                '<tr><td valign="top"><img src="/icons/back.gif" alt="[PARENTDIR]"></td>'
                f'<td><a href="{esc(parent)}">Parent Directory</a></td><td>&nbsp;</td>'
                '<td align="right">  - </td><td>&nbsp;</td></tr>'
            )
        for e in items:
            icon, alt = _icon(e)
            name = e.name + ("/" if e.is_dir else "")
            stamp = time.strftime("%Y-%m-%d %H:%M", time.gmtime(e.mtime))
            size = "  - " if e.is_dir else strfsize(e.size)
            lines.append(
                f'<tr><td valign="top"><img src="/icons/{icon}" alt="{alt}"></td>'
                f'<td><a href="{urllib.parse.quote(name)}">{_shown(name)}</a></td>'
                f'<td align="right">{stamp}  </td><td align="right">{size}</td>'
                "<td>&nbsp;</td></tr>"
            )
        lines += ['   <tr><th colspan="5"><hr></th></tr>', "</table>"]
        return head + "\n".join(lines) + "\n" + address + "</body></html>\n"
    # apache-pre: FancyIndexing without HTMLTable
    rows = [
        '<pre><img src="/icons/blank.gif" alt="Icon "> <a href="?C=N;O=D">Name</a>'
        + " " * 20
        + '<a href="?C=M;O=A">Last modified</a>      <a href="?C=S;O=A">Size</a>  '
        '<a href="?C=D;O=A">Description</a><hr>'
        + (
            '<img src="/icons/back.gif" alt="[PARENTDIR]"> '
            f'<a href="{esc(parent)}">Parent Directory</a>' + " " * 29 + "-   "
            if url_path != "/"
            else ""
        )
    ]
    for e in items:
        icon, alt = _icon(e)
        name = e.name + ("/" if e.is_dir else "")
        shown = _shown(name)
        visible = len(html.unescape(shown))
        stamp = time.strftime("%Y-%m-%d %H:%M", time.gmtime(e.mtime))
        size = "  - " if e.is_dir else strfsize(e.size)
        rows.append(
            f'<img src="/icons/{icon}" alt="{alt}"> <a href="{urllib.parse.quote(name)}">'
            f"{shown}</a>{' ' * (_NAME_WIDTH + 1 - visible)} {stamp}  {size:>4}  "
        )
    return head + "\n".join(rows) + "\n<hr></pre>\n" + address + "</body></html>\n"


# ---------------------------------------------------------------------- server


class MirrorServer:
    """Serve ``root`` on ``host:port`` (port 0: a free one) in background threads.

    Use as a context manager, or call ``start()``/``stop()``. ``url`` is the base URL to use as
    a mirror (``http://127.0.0.1:PORT/`` plus ``prefix``).
    """

    def __init__(
        self,
        root: Path,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        prefix: str = "/",
        listing: Listing = "apache",
    ) -> None:
        self.root = Path(root).resolve()
        self.prefix = "/" + prefix.strip("/") + ("/" if prefix.strip("/") else "")
        self.listing: Listing = listing
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._rules: list[_Rule] = []
        self._log: list[Request] = []
        self._delayed = 0
        self._peak_delayed = 0
        self._httpd = _HTTPServer((host, port), _Handler, self)
        self._thread: threading.Thread | None = None

    # -------------------------------------------------------------- lifecycle

    @property
    def host(self) -> str:
        return str(self._httpd.server_address[0])

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        """Base URL of the served mirror, ending with "/"."""
        return f"http://{self.host}:{self.port}{self.prefix}"

    def start(self) -> MirrorServer:
        """Start serving in a daemon thread (idempotent)."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._httpd.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"mirror-server-{self.port}",
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, release delayed responses and close the socket."""
        self._stopping.set()
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(timeout=10)
            self._thread = None
        self._httpd.server_close()

    def __enter__(self) -> MirrorServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -------------------------------------------------------------- faults and counters

    def fault(self, pattern: str, *faults: Fault, repeat_last: bool = False) -> None:
        """Queue ``faults`` for paths matching ``pattern``; each request consumes one.

        ``pattern`` is an fnmatch pattern on the path below the prefix with its leading slash
        ("/15.x/armhf/tcz/openssh.tcz", "*.tcz", "*/openssh.tcz.dep"). With ``repeat_last`` the
        last fault stays forever (a file that is always 404, a server that is always slow).
        Rules are tried in the order they were added.
        """
        if not faults:
            raise ValueError("fault() needs at least one fault")
        with self._lock:
            self._rules.append(_Rule(pattern, list(faults), repeat_last))

    def clear_faults(self) -> None:
        with self._lock:
            self._rules.clear()

    def pending_faults(self) -> int:
        """Faults not consumed yet (repeat_last rules count their last one)."""
        with self._lock:
            return sum(len(r.faults) for r in self._rules)

    def _take_fault(self, path: str) -> Fault | None:
        with self._lock:
            for rule in self._rules:
                if rule.faults and fnmatch.fnmatchcase(path, rule.pattern):
                    if rule.repeat_last and len(rule.faults) == 1:
                        return rule.faults[0]
                    return rule.faults.pop(0)
        return None

    def _record(self, request: Request) -> None:
        with self._lock:
            self._log.append(request)

    @property
    def requests(self) -> list[Request]:
        """Every request so far, in order (a copy)."""
        with self._lock:
            return list(self._log)

    def count(self, pattern: str = "*", method: str | None = None) -> int:
        """How many requests matched ``pattern`` (and ``method``, if given)."""
        with self._lock:
            return sum(
                1
                for r in self._log
                if fnmatch.fnmatchcase(r.path, pattern) and (method is None or r.method == method)
            )

    def reset_counts(self) -> None:
        with self._lock:
            self._log.clear()
            self._peak_delayed = 0

    @property
    def peak_delayed(self) -> int:
        """Most requests held by a ``Delay`` fault at the same moment (a client's parallelism)."""
        with self._lock:
            return self._peak_delayed

    def _hold(self, seconds: float) -> None:
        with self._lock:
            self._delayed += 1
            self._peak_delayed = max(self._peak_delayed, self._delayed)
        try:
            self._stopping.wait(seconds)
        finally:
            with self._lock:
                self._delayed -= 1


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 64  # socketserver's 5 would drop the SYNs of a burst of downloads

    def __init__(
        self, address: tuple[str, int], handler: type[_Handler], owner: MirrorServer
    ) -> None:
        self.owner = owner
        super().__init__(address, handler)

    def handle_error(self, request: object, client_address: object) -> None:
        """Clients that hang up mid-transfer are normal here (tests drop connections)."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "Apache/2.4.62"
    sys_version = ""
    server: _HTTPServer

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (stdlib name)
        """Quiet: the request log is ``MirrorServer.requests``."""

    def do_GET(self) -> None:
        self._serve(head=False)

    def do_HEAD(self) -> None:
        self._serve(head=True)

    # ------------------------------------------------------------------ dispatch

    def _serve(self, head: bool) -> None:
        owner = self.server.owner
        raw_path = urllib.parse.urlsplit(self.path).path
        path = urllib.parse.unquote(raw_path)
        rng = self.headers.get("Range")
        if path + "/" == owner.prefix:
            rel = ""  # the prefix without its slash: redirected below, like any directory
        elif path.startswith(owner.prefix):
            rel = "/" + path[len(owner.prefix) :]
        else:
            self._record(head, path, 404, rng, None)
            self._error(404, head)
            return
        rel = rel or "/"
        fault = owner._take_fault(rel)
        if isinstance(fault, Delay) and fault.after == 0:
            owner._hold(fault.seconds)
        if isinstance(fault, Status):
            self._record(head, rel, fault.code, rng, fault)
            self._error(fault.code, head)
            return
        target = self._resolve(rel)
        if target is None:
            self._record(head, rel, 404, rng, fault)
            self._error(404, head)
            return
        if target.is_dir():
            if not path.endswith("/"):
                self._record(head, rel, 301, rng, fault)
                self._redirect(raw_path + "/", head)
                return
            self._record(head, rel, 200, rng, fault)
            self._listing(target, path, head)
            return
        self._file(target, rel, head, rng, fault)

    def _record(self, head: bool, rel: str, status: int, rng: str | None, f: Fault | None) -> None:
        self.server.owner._record(Request("HEAD" if head else "GET", rel, status, rng, f))

    def _resolve(self, rel: str) -> Path | None:
        parts = [p for p in rel.split("/") if p]
        if any(p in (".", "..") or p.startswith(".") for p in parts):
            return None
        target = self.server.owner.root.joinpath(*parts)
        try:
            target.resolve().relative_to(self.server.owner.root)
        except ValueError:
            return None
        return target if target.exists() else None

    # ------------------------------------------------------------------ responses

    def _error(self, code: int, head: bool) -> None:
        try:
            phrase = HTTPStatus(code).phrase
        except ValueError:
            phrase = "Error"
        body = (
            '<!DOCTYPE HTML PUBLIC "-//IETF//DTD HTML 2.0//EN">\n<html><head>\n'
            f"<title>{code} {phrase}</title>\n</head><body>\n<h1>{phrase}</h1>\n"
            f"<p>{html.escape(self.path)}</p>\n</body></html>\n"
        ).encode()
        self.send_response(code, phrase)
        self.send_header("Content-Type", "text/html; charset=iso-8859-1")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _redirect(self, location: str, head: bool) -> None:
        body = b"Moved Permanently\n"
        self.send_response(301)
        self.send_header("Location", location)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _listing(self, directory: Path, url_path: str, head: bool) -> None:
        entries = []
        for child in directory.iterdir():
            if child.name.startswith("."):
                continue
            st = child.stat()
            entries.append(_Entry(child.name, child.is_dir(), st.st_size, st.st_mtime))
        owner = self.server.owner
        text = render_listing(url_path, entries, owner.listing, owner.host, owner.port)
        body = text.encode("utf-8")
        self.send_response(200)
        self.send_header("Content-Type", "text/html;charset=UTF-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _file(
        self, target: Path, rel: str, head: bool, rng: str | None, fault: Fault | None
    ) -> None:
        size = target.stat().st_size
        mtime = target.stat().st_mtime
        start, end = 0, size - 1
        status = 200
        if rng is not None:
            parsed = _parse_range(rng, size)
            if parsed == "unsatisfiable":
                self._record(head, rel, 416, rng, fault)
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{size}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if parsed is not None:
                start, end = parsed
                status = 206
        length = max(0, end - start + 1)
        self._record(head, rel, status, rng, fault)
        self.send_response(status)
        ctype = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        if target.suffix in (".txt", ".dep", ".info", ".list", ".tree") or target.name == "README":
            ctype = "text/plain"
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(length))
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Last-Modified", email.utils.formatdate(mtime, usegmt=True))
        self.send_header("ETag", f'"{size:x}-{int(mtime * 1e6):x}"')
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.end_headers()
        if head:
            return
        self._body(target, start, length, size, fault)

    def _body(self, target: Path, start: int, length: int, size: int, fault: Fault | None) -> None:
        stop_after = fault.after if isinstance(fault, Drop) else None
        delay_at = fault.after if isinstance(fault, Delay) and fault.after > 0 else None
        corrupt_at: int | None = None
        if isinstance(fault, Corrupt):
            corrupt_at = fault.offset if fault.offset is not None else size // 2
        sent = 0
        with open(target, "rb") as fh:
            fh.seek(start)
            while sent < length:
                want = min(_CHUNK, length - sent)
                for limit in (stop_after, delay_at):
                    if limit is not None and sent < limit:
                        want = min(want, limit - sent)
                chunk = bytearray(fh.read(want))
                if not chunk:
                    break
                pos = start + sent
                if corrupt_at is not None and pos <= corrupt_at < pos + len(chunk):
                    chunk[corrupt_at - pos] ^= 0xFF
                self.wfile.write(chunk)
                sent += len(chunk)
                if stop_after is not None and sent >= stop_after:
                    self._hang_up()
                    return
                if delay_at is not None and sent == delay_at:
                    self.wfile.flush()
                    self.server.owner._stopping.wait(fault.seconds)  # type: ignore[union-attr]
        if stop_after is not None:
            self._hang_up()

    def _hang_up(self) -> None:
        self.wfile.flush()
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)


def _parse_range(header: str, size: int) -> tuple[int, int] | Literal["unsatisfiable"] | None:
    """(start, end) of a single ``bytes=`` range; None to ignore it (serve the whole file)."""
    m = re.fullmatch(r"\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*", header)
    if m is None or (not m.group(1) and not m.group(2)):
        return None  # multiple or malformed ranges: a 200 with the whole file is allowed
    if not m.group(1):
        suffix = int(m.group(2))
        if suffix == 0:
            return "unsatisfiable"
        return max(0, size - suffix), size - 1
    start = int(m.group(1))
    end = int(m.group(2)) if m.group(2) else size - 1
    if start >= size or end < start:
        return "unsatisfiable"
    return start, min(end, size - 1)


__all__ = [
    "Corrupt",
    "Delay",
    "Drop",
    "Fault",
    "MirrorServer",
    "Request",
    "Status",
    "render_listing",
    "strfsize",
]
