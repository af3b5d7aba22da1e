"""The HTTP service: /health, /info, /logs and the status page, plus an optional user app.

``create_app(settings)`` builds the FastAPI app. With FIRECORE_APP_MODULE set (a user's app,
``module:attr``), ``asgi(settings)`` puts the user's ASGI app behind a small dispatcher: the
reserved paths (/health, /info, /logs, /firecore) go to this service, everything else — and the
lifespan events — to the user's app, so the user's start-up code runs and their ``/`` is theirs.
Without a user app, ``/`` is the status page. Everything except /health needs the bearer token
when one is configured.
"""

import html
import importlib
import logging
import os
import socket
import sys
import threading
import time
from typing import Any, Awaitable, Callable, Dict, MutableMapping, Optional

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, PlainTextResponse

from firecore_app import __version__, auth, logs, sigauth, sysinfo
from firecore_app.settings import Settings

log = logging.getLogger("firecore_app")

Scope = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Any, Any], Awaitable[None]]
RESERVED = ("/health", "/info", "/logs", "/firecore")


def create_app(settings: Settings, *, status_page_at_root: bool = True) -> FastAPI:
    """The firecore service for ``settings``."""
    started = time.monotonic()
    app = FastAPI(
        title="firecore", version=__version__, docs_url=None, redoc_url=None, openapi_url=None
    )

    nonces = Nonces()

    def signed(request: Request) -> bool:
        """A Firecore-Sig header over a nonce this Pi issued, this request and this Pi."""
        parsed = sigauth.parse_header(request.headers.get("authorization"))
        if parsed is None or not settings.token_pubkey or not nonces.take(parsed[0]):
            return False
        msg = sigauth.message(
            parsed[0],
            request.method,
            request.url.path,
            sysinfo.serial(settings) or "",
            sysinfo.build_id(settings),
        )
        return sigauth.verify(bytes.fromhex(settings.token_pubkey), msg, parsed[1])

    def require_token(request: Request) -> None:
        if signed(request):
            return
        presented = auth.bearer(request.headers.get("authorization"))
        if presented is None:
            presented = request.query_params.get("token")
        protected = bool(settings.token_sha256 or settings.token_pubkey)
        if protected and not (
            settings.token_sha256 and auth.allowed(settings.token_sha256, presented)
        ):
            raise HTTPException(
                status_code=401,
                detail="a valid bearer token is required (Authorization: Bearer <token>)",
                headers={"WWW-Authenticate": "Bearer"},
            )

    @app.get("/health")
    def health() -> Dict[str, Any]:
        return {
            "status": "ok",
            "build_id": sysinfo.build_id(settings),
            "hostname": _hostname(),
            "serial": sysinfo.serial(settings),
            "app_uptime": round(time.monotonic() - started, 1),
        }

    @app.get("/firecore/challenge")
    def challenge() -> Dict[str, Any]:
        """A single-use nonce for a signed request (``firecore-wizard status`` never sends the
        token itself; see sigauth)."""
        return {
            "nonce": nonces.issue(),
            "serial": sysinfo.serial(settings),
            "build_id": sysinfo.build_id(settings),
            "scheme": sigauth.SCHEME,
        }

    @app.get("/info", dependencies=[Depends(require_token)])
    def info() -> Dict[str, Any]:
        return sysinfo.info(settings, started)

    @app.get("/logs", dependencies=[Depends(require_token)], response_class=PlainTextResponse)
    def get_logs(
        lines: int = Query(200, ge=1, le=5000),
        name: str = "all",
    ) -> str:
        if name != "all" and name not in logs.LOG_NAMES:
            raise HTTPException(
                status_code=422, detail="name must be all, app, boot, out or announce"
            )
        names = logs.LOG_NAMES if name == "all" else (name,)
        parts = []
        for n in names:
            path = logs.log_path(settings, n)
            body = logs.tail(path, lines)
            parts.append("==> {} <==\n{}".format(path, "\n".join(body) if body else "(empty)"))
        return "\n\n".join(parts) + "\n"

    def page() -> HTMLResponse:
        return HTMLResponse(render_page(sysinfo.info(settings, started)))

    app.add_api_route(
        "/firecore", page, dependencies=[Depends(require_token)], response_class=HTMLResponse
    )
    if status_page_at_root:
        app.add_api_route(
            "/", page, dependencies=[Depends(require_token)], response_class=HTMLResponse
        )
    return app


def _hostname() -> str:
    return socket.gethostname()


def _fmt_uptime(seconds: Optional[float]) -> str:
    if seconds is None:
        return "?"
    s = int(seconds)
    days, s = divmod(s, 86400)
    hours, s = divmod(s, 3600)
    minutes, s = divmod(s, 60)
    return (f"{days}d " if days else "") + f"{hours:02d}:{minutes:02d}:{s:02d}"


def _mb(n: Optional[int]) -> str:
    return "?" if n is None else f"{n / 1e6:.0f} MB"


def render_page(data: Dict[str, Any]) -> str:
    """The status page: one small self-contained HTML document (no external assets)."""
    e = html.escape
    mem = data.get("memory") or {}
    addrs = data.get("addresses", {}).get("ipv4", {})
    rows = [
        ("Hostname", e(str(data.get("hostname")))),
        ("Model", e(str(data.get("model") or "unknown"))),
        ("Serial", e(str(data.get("serial") or "unknown"))),
        ("Build", e(str(data.get("build_id")))),
        ("Kernel", e(str(data.get("kernel") or "unknown"))),
        ("Python", e(str(data.get("python")))),
        ("Uptime", e(_fmt_uptime(data.get("uptime")))),
        ("Addresses", e(", ".join(f"{k} {v}" for k, v in sorted(addrs.items())) or "-")),
        (
            "Memory",
            e("{} available of {}".format(_mb(mem.get("available")), _mb(mem.get("total")))),
        ),
        ("Extensions", e(", ".join(data.get("extensions") or []) or "-")),
    ]
    body = "\n".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows)
    return (
        "<!doctype html>\n<html><head><meta charset='utf-8'>"
        "<meta http-equiv='refresh' content='15'>"
        "<title>{title}</title>"
        "<style>body{{font-family:sans-serif;margin:2em}}th{{text-align:left;padding-right:1em}}"
        "</style></head><body><h1>{title}</h1><table>\n{body}\n</table>"
        "<p><a href='/info'>/info</a> · <a href='/logs'>/logs</a> · "
        "<a href='/health'>/health</a></p></body></html>\n"
    ).format(title=e("firecore · {}".format(data.get("hostname"))), body=body)


class Nonces:
    """Nonces issued for signed requests: each good once, for NONCE_TTL seconds, at most
    NONCE_MAX outstanding (the oldest is dropped first, so a flood cannot grow memory)."""

    TTL = 30.0
    MAX = 256

    def __init__(self) -> None:
        self._issued: Dict[str, float] = {}
        self._lock = threading.Lock()

    def issue(self) -> str:
        nonce = os.urandom(16).hex()
        with self._lock:
            now = time.monotonic()
            for old in [n for n, t in self._issued.items() if now - t > self.TTL]:
                del self._issued[old]
            while len(self._issued) >= self.MAX:
                del self._issued[next(iter(self._issued))]
            self._issued[nonce] = now
        return nonce

    def take(self, nonce: str) -> bool:
        """True once per issued, unexpired nonce."""
        with self._lock:
            issued = self._issued.pop(nonce, None)
        return issued is not None and time.monotonic() - issued <= self.TTL


class Dispatcher:
    """Reserved paths to the firecore service; everything else (and lifespan) to the user app."""

    def __init__(self, firecore: ASGIApp, user: ASGIApp) -> None:
        self.firecore = firecore
        self.user = user

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] in ("http", "websocket"):
            path = scope.get("path", "")
            if any(path == p or path.startswith(p + "/") for p in RESERVED):
                await self.firecore(scope, receive, send)
                return
        await self.user(scope, receive, send)


def load_user_app(settings: Settings) -> ASGIApp:
    """Import ``module:attr`` from FIRECORE_APP_DIR (the user's app directory)."""
    module_name, _, attr = settings.app_module.partition(":")
    attr = attr or "app"
    if settings.app_dir not in sys.path:
        sys.path.insert(0, settings.app_dir)
    module = importlib.import_module(module_name)
    obj = module
    for part in attr.split("."):
        obj = getattr(obj, part)
    if not callable(obj):
        raise SystemExit(f"firecore_app: {settings.app_module} is not an ASGI app")
    return obj  # type: ignore[return-value]


def asgi(settings: Settings) -> ASGIApp:
    """The ASGI app to serve: the firecore service, wrapped around the user's app if any."""
    if not settings.app_module:
        return create_app(settings)
    user = load_user_app(settings)
    log.info("serving the user app %s behind %s", settings.app_module, ", ".join(RESERVED))
    return Dispatcher(create_app(settings, status_page_at_root=False), user)
